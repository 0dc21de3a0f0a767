package forge

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strings"
)

// Change is how one object differs between base and head.
type Change struct {
	Key    string        // Object.Key
	Op     string        // added, removed or changed
	Fields []FieldChange // set for changed, in path order
}

// FieldChange is one differing field: Path as kubectl's JSONPath-ish users read it, a
// list of named items (containers, env, ports) indexed by name:
// spec.template.spec.containers[app].image. Old or New is empty when the field is absent
// on that side (Absent says which).
type FieldChange struct {
	Path     string
	Old, New string
	Absent   string `json:",omitempty"` // "old", "new" or ""
}

func (f FieldChange) String() string {
	switch f.Absent {
	case "old":
		return f.Path + ": (none) → " + f.New
	case "new":
		return f.Path + ": " + f.Old + " → (none)"
	}
	return f.Path + ": " + f.Old + " → " + f.New
}

// Diff compares two renderings object by object, by kind, namespace and name.
func Diff(base, head []Object) []Change {
	b, h := index(base), index(head)
	var out []Change
	for _, k := range slices.Sorted(maps.Keys(unionKeys(b, h))) {
		bo, inBase := b[k]
		ho, inHead := h[k]
		switch {
		case !inBase:
			out = append(out, Change{Key: k, Op: "added"})
		case !inHead:
			out = append(out, Change{Key: k, Op: "removed"})
		default:
			var fs []FieldChange
			diffValues("", bo.Doc, ho.Doc, &fs)
			if len(fs) > 0 {
				out = append(out, Change{Key: k, Op: "changed", Fields: fs})
			}
		}
	}
	return out
}

// index keys objects; a key seen twice keeps the last, as kubectl apply would.
func index(objs []Object) map[string]Object {
	m := map[string]Object{}
	for _, o := range objs {
		m[o.Key()] = o
	}
	return m
}

func unionKeys(a, b map[string]Object) map[string]bool {
	m := map[string]bool{}
	for k := range a {
		m[k] = true
	}
	for k := range b {
		m[k] = true
	}
	return m
}

var plainKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

func join(path, key string) string {
	if !plainKey.MatchString(key) {
		return path + "[" + strconvQuote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func diffValues(path string, a, b any, out *[]FieldChange) {
	am, aIsMap := a.(map[string]any)
	bm, bIsMap := b.(map[string]any)
	if aIsMap && bIsMap {
		keys := map[string]bool{}
		for k := range am {
			keys[k] = true
		}
		for k := range bm {
			keys[k] = true
		}
		for _, k := range slices.Sorted(maps.Keys(keys)) {
			av, aok := am[k]
			bv, bok := bm[k]
			switch {
			case !aok:
				*out = append(*out, FieldChange{Path: join(path, k), New: compact(bv), Absent: "old"})
			case !bok:
				*out = append(*out, FieldChange{Path: join(path, k), Old: compact(av), Absent: "new"})
			default:
				diffValues(join(path, k), av, bv, out)
			}
		}
		return
	}
	al, aIsList := a.([]any)
	bl, bIsList := b.([]any)
	if aIsList && bIsList {
		if an, bn := names(al), names(bl); an != nil && bn != nil {
			for _, n := range slices.Sorted(maps.Keys(unionNames(an, bn))) {
				p := path + "[" + n + "]"
				av, aok := an[n]
				bv, bok := bn[n]
				switch {
				case !aok:
					*out = append(*out, FieldChange{Path: p, New: compact(bv), Absent: "old"})
				case !bok:
					*out = append(*out, FieldChange{Path: p, Old: compact(av), Absent: "new"})
				default:
					diffValues(p, av, bv, out)
				}
			}
			return
		}
		for i := range max(len(al), len(bl)) {
			p := fmt.Sprintf("%s[%d]", path, i)
			switch {
			case i >= len(al):
				*out = append(*out, FieldChange{Path: p, New: compact(bl[i]), Absent: "old"})
			case i >= len(bl):
				*out = append(*out, FieldChange{Path: p, Old: compact(al[i]), Absent: "new"})
			default:
				diffValues(p, al[i], bl[i], out)
			}
		}
		return
	}
	if !reflect.DeepEqual(a, b) && !(isNaN(a) && isNaN(b)) {
		*out = append(*out, FieldChange{Path: path, Old: compact(a), New: compact(b)})
	}
}

// names indexes a list whose items are all maps with a distinct string name (containers,
// env, ports, volumes), or returns nil.
func names(l []any) map[string]any {
	if len(l) == 0 {
		return nil
	}
	m := map[string]any{}
	for _, it := range l {
		im, ok := it.(map[string]any)
		if !ok {
			return nil
		}
		n, ok := im["name"].(string)
		if !ok || n == "" || m[n] != nil {
			return nil
		}
		m[n] = it
	}
	return m
}

func unionNames(a, b map[string]any) map[string]bool {
	m := map[string]bool{}
	for k := range a {
		m[k] = true
	}
	for k := range b {
		m[k] = true
	}
	return m
}

// compact shows a value on one line: a scalar as written, a map or list as JSON cut to
// 80 characters.
func compact(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		if x == "" {
			return `""`
		}
		return truncate(strings.ReplaceAll(x, "\n", `\n`), 80)
	case map[string]any, []any:
		b, _ := json.Marshal(x)
		return truncate(string(b), 80)
	default:
		return fmt.Sprint(x)
	}
}

func isNaN(v any) bool {
	f, ok := v.(float64)
	return ok && math.IsNaN(f)
}
