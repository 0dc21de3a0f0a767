package policy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/paved/paved/internal/gate"
	"github.com/paved/paved/internal/run"
)

// Manifest is one Kubernetes object of a manifest file.
type Manifest struct {
	File   string // slash-separated, relative to the scanned root
	Line   int    // where the document starts
	Object map[string]any
}

// Name is kind/namespace/name (kind/name without a namespace).
func (m Manifest) Name() string {
	kind, _ := m.Object["kind"].(string)
	md, _ := m.Object["metadata"].(map[string]any)
	name, _ := md["name"].(string)
	if ns, _ := md["namespace"].(string); ns != "" {
		return kind + "/" + ns + "/" + name
	}
	return kind + "/" + name
}

var yamlLine = regexp.MustCompile(`^line (\d+): (.*)$`)

// ErrManifest is wrapped when a file looks like a manifest but does not parse.
var ErrManifest = errors.New("policy: bad manifest")

// ParseManifests reads the Kubernetes objects of a YAML (multi-document) or JSON file:
// documents with apiVersion and kind, the items of a List. Other documents are ignored.
func ParseManifests(file string, b []byte) ([]Manifest, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var out []Manifest
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			msg := strings.TrimPrefix(err.Error(), "yaml: ")
			if m := yamlLine.FindStringSubmatch(msg); m != nil {
				return nil, fmt.Errorf("%w: %s:%s: %s", ErrManifest, file, m[1], m[2])
			}
			return nil, fmt.Errorf("%w: %s: %s", ErrManifest, file, msg)
		}
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("%w: %s:%d: %s", ErrManifest, file, n.Line, strings.TrimPrefix(err.Error(), "yaml: "))
		}
		obj, ok := normalise(v).(map[string]any)
		if !ok {
			continue
		}
		line := n.Line
		if len(n.Content) > 0 {
			line = n.Content[0].Line
		}
		if k, _ := obj["kind"].(string); strings.HasSuffix(k, "List") {
			items, _ := obj["items"].([]any)
			for _, it := range items {
				if o, ok := it.(map[string]any); ok && isObject(o) {
					out = append(out, Manifest{File: file, Line: line, Object: o})
				}
			}
			continue
		}
		if isObject(obj) {
			out = append(out, Manifest{File: file, Line: line, Object: obj})
		}
	}
}

func isObject(o map[string]any) bool {
	a, _ := o["apiVersion"].(string)
	k, _ := o["kind"].(string)
	return a != "" && k != ""
}

// normalise makes YAML's values JSON's: string keys everywhere.
func normalise(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalise(e)
		}
		return x
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = normalise(e)
		}
		return m
	case []any:
		for i, e := range x {
			x[i] = normalise(e)
		}
		return x
	}
	return v
}

// skipDirs are never searched for manifests.
var skipDirs = map[string]bool{".git": true, "node_modules": true, "vendor": true, ".paved": true}

// Load finds the manifests under root at paths (files or directories, relative; default
// the whole tree). Helm templates (files with {{ ) are not manifests until rendered and are
// skipped, as are YAML files that do not parse outside the named paths; skipped says which.
func Load(ctx context.Context, root string, paths []string, policyDir string) (ms []Manifest, skipped []string, err error) {
	if len(paths) == 0 {
		paths = []string{"."}
	}
	for _, p := range paths {
		if !fs.ValidPath(p) {
			return nil, nil, fmt.Errorf("%w: paths: %q is not a relative path inside the repository", gate.ErrOption, p)
		}
		start := filepath.Join(root, filepath.FromSlash(p))
		explicit := p != "."
		err := filepath.WalkDir(start, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			rel, _ := filepath.Rel(root, path)
			rel = filepath.ToSlash(rel)
			if d.IsDir() {
				if path != start && (skipDirs[d.Name()] || rel == policyDir) {
					return filepath.SkipDir
				}
				return nil
			}
			ext := filepath.Ext(path)
			if ext != ".yaml" && ext != ".yml" && ext != ".json" || !d.Type().IsRegular() {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if bytes.Contains(b, []byte("{{")) {
				skipped = append(skipped, rel+" (a template: render it in a step and pass the output as an artifact)")
				return nil
			}
			got, err := ParseManifests(rel, b)
			if err != nil {
				if explicit {
					return err
				}
				skipped = append(skipped, rel+" (not YAML: "+err.Error()+")")
				return nil
			}
			ms = append(ms, got...)
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
	}
	return ms, skipped, nil
}

// DefaultPolicyDir is where a repository keeps its own Rego policies.
const DefaultPolicyDir = "policy"

// Kind is gate/policy's scanner. with: paths (default: the whole workspace, rendered
// manifests from upstream artifacts included), policy_dir (default policy), builtin
// (default true; false evaluates only the repository's policies), and the built-in
// bundle's options (Params). A deny is a HIGH finding, a warn a LOW one.
func Kind() gate.ScanFunc {
	return func(ctx context.Context, in gate.Input) (gate.Output, error) {
		params, err := ParamsFrom(in.With)
		if err != nil {
			return gate.Output{}, fmt.Errorf("%w: %w", gate.ErrOption, err)
		}
		dir := DefaultPolicyDir
		if v := in.With["policy_dir"]; len(v) > 0 && v[0] != "" {
			dir = strings.Trim(v[0], "/")
		}
		builtin := true
		if v := in.With["builtin"]; len(v) > 0 {
			builtin = v[0] != "false"
		}
		modules := map[string]string{}
		files, _ := filepath.Glob(filepath.Join(in.Dir, filepath.FromSlash(dir), "*.rego"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.rego") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				return gate.Output{}, err
			}
			modules[dir+"/"+filepath.Base(f)] = string(b)
		}
		eng, err := Cached(ctx, params, builtin, modules)
		if err != nil {
			return gate.Output{}, err
		}
		ms, skipped, err := Load(ctx, in.Dir, in.With["paths"], dir)
		if err != nil {
			return gate.Output{}, err
		}
		for _, s := range skipped {
			in.Log("skipped " + s)
		}
		in.Log(fmt.Sprintf("%d objects against %s (%s)", len(ms), strings.Join(eng.Packages, ", "), Version))
		var out gate.Output
		for _, m := range ms {
			rs, err := eng.Eval(ctx, m.Object)
			if err != nil {
				return gate.Output{}, fmt.Errorf("%s:%d: %w", m.File, m.Line, err)
			}
			out.Findings = append(out.Findings, Findings(m, rs)...)
		}
		return out, nil
	}
}

// Findings are the results for one manifest as findings: deny HIGH, warn LOW.
func Findings(m Manifest, rs []Result) []run.Finding {
	var out []run.Finding
	for _, r := range rs {
		sev := gate.Low
		if r.Action == "deny" {
			sev = gate.High
		}
		out = append(out, run.Finding{Rule: r.Rule, Severity: sev.String(), Message: r.Action + ": " + r.Message,
			File: m.File, Line: m.Line, Object: m.Name(), Fingerprint: r.Rule + ":" + m.Name()})
	}
	return out
}
