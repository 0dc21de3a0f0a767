// Package policy evaluates Kubernetes manifests with OPA: a built-in bundle (privileged
// containers, host namespaces and paths, resource limits, image tags and registries,
// non-root users, capabilities) plus a repository's own policy/*.rego. A deny is a finding
// that blocks, a warn one that warns; each names its rule and the object.
package policy

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

//go:embed bundle/*.rego
var bundleFS embed.FS

// BuiltinPackage is the package of the built-in bundle.
const BuiltinPackage = "paved.kubernetes"

// Version names the built-in bundle's revision, recorded with each decision.
const Version = "paved-kubernetes@1"

// Rules are the built-in bundle's rule ids, deny rules first.
var Rules = []string{"privileged-container", "host-namespace", "host-path", "resource-limits", "image-tag",
	"image-registry", "run-as-root", "capabilities-not-dropped", "capabilities-added",
	"resource-requests", "read-only-root-filesystem"}

// Params are the built-in bundle's options (data.paved.params), from a stage's with:.
type Params struct {
	// ExemptImages are images no rule checks; a trailing * matches any suffix. Default: none.
	ExemptImages []string `json:"exempt_images"`
	// AllowedRegistries, when set, are the prefixes every image must start with (a trailing
	// * is allowed). Default: none, which turns image-registry off.
	AllowedRegistries []string `json:"allowed_registries"`
	// AllowedHostPaths are host path prefixes a hostPath volume may use. Default: none.
	AllowedHostPaths []HostPath `json:"allowed_host_paths"`
	// MaxCPU and MaxMemory cap the limits (Kubernetes quantities); "-1" stops requiring that
	// limit. Default: both required, no cap.
	MaxCPU    string `json:"max_cpu"`
	MaxMemory string `json:"max_memory"`
	// DisallowedTags are image tags refused. Default: latest.
	DisallowedTags []string `json:"disallowed_tags"`
	// AllowedCapabilities may be added ("*": any). Default: none.
	AllowedCapabilities []string `json:"allowed_capabilities"`
	// RequiredDropCapabilities must be dropped (dropping ALL drops all). Default: ALL.
	RequiredDropCapabilities []string `json:"required_drop_capabilities"`
	// Disable lists rules (built-in ids, or PACKAGE.deny for a repository's) not evaluated.
	Disable []string `json:"-"`
}

// HostPath is an allowed host path prefix, read-only when ReadOnly.
type HostPath struct {
	PathPrefix string `json:"path_prefix"`
	ReadOnly   bool   `json:"read_only"`
}

// DefaultParams are the built-in bundle's defaults.
func DefaultParams() Params {
	return Params{DisallowedTags: []string{"latest"}, RequiredDropCapabilities: []string{"ALL"}}
}

// ErrParam is wrapped when a with: option is wrong.
var ErrParam = errors.New("policy: bad option")

// ParamsFrom reads the built-in bundle's options from a stage's with:. Host paths are
// written PREFIX or PREFIX:ro.
func ParamsFrom(with map[string][]string) (Params, error) {
	p := DefaultParams()
	lists := map[string]*[]string{
		"exempt_images": &p.ExemptImages, "allowed_registries": &p.AllowedRegistries,
		"disallowed_tags": &p.DisallowedTags, "allowed_capabilities": &p.AllowedCapabilities,
		"required_drop_capabilities": &p.RequiredDropCapabilities, "disable": &p.Disable,
	}
	for k, dst := range lists {
		if v, ok := with[k]; ok {
			*dst = slices.Clone(v)
		}
	}
	for k, dst := range map[string]*string{"max_cpu": &p.MaxCPU, "max_memory": &p.MaxMemory} {
		if v := with[k]; len(v) > 0 {
			*dst = v[0]
		}
	}
	for _, h := range with["allowed_host_paths"] {
		prefix, ro := strings.CutSuffix(h, ":ro")
		if !strings.HasPrefix(prefix, "/") {
			return p, fmt.Errorf("%w: allowed_host_paths: %q is not an absolute path (write /PREFIX or /PREFIX:ro)", ErrParam, h)
		}
		p.AllowedHostPaths = append(p.AllowedHostPaths, HostPath{PathPrefix: prefix, ReadOnly: ro})
	}
	for _, d := range p.Disable {
		if !slices.Contains(Rules, d) && !strings.Contains(d, ".") {
			return p, fmt.Errorf("%w: disable: %q is no built-in rule (they are %s; a repository rule is PACKAGE.deny or PACKAGE.warn)", ErrParam, d, strings.Join(Rules, ", "))
		}
	}
	return p, nil
}

func (p Params) data() map[string]any {
	hp := []any{}
	for _, h := range p.AllowedHostPaths {
		hp = append(hp, map[string]any{"path_prefix": h.PathPrefix, "read_only": h.ReadOnly})
	}
	list := func(s []string) []any {
		out := []any{}
		for _, x := range s {
			out = append(out, x)
		}
		return out
	}
	return map[string]any{"paved": map[string]any{"params": map[string]any{
		"exempt_images": list(p.ExemptImages), "allowed_registries": list(p.AllowedRegistries),
		"allowed_host_paths": hp, "max_cpu": p.MaxCPU, "max_memory": p.MaxMemory,
		"disallowed_tags": list(p.DisallowedTags), "allowed_capabilities": list(p.AllowedCapabilities),
		"required_drop_capabilities": list(p.RequiredDropCapabilities),
	}}}
}

// Result is one deny or warn for one object.
type Result struct {
	Action  string // deny or warn
	Rule    string // built-in id, or the repository's rule id / PACKAGE.deny
	Message string
	Package string
}

// Engine evaluates objects against the compiled policies. It is safe for concurrent use.
type Engine struct {
	queries []query
	disable map[string]bool
	// Packages are the policy packages evaluated, the built-in one first.
	Packages []string
}

type query struct {
	pkg, action string
	pq          rego.PreparedEvalQuery
}

// ErrPolicy is wrapped when a repository's policy does not parse or compile.
var ErrPolicy = errors.New("policy: bad policy")

// New compiles the built-in bundle (unless builtin is false) with the repository's
// modules (file name -> Rego source). Rego v1 is tried first, then v0 (the syntax of
// older conftest policies).
func New(ctx context.Context, params Params, builtin bool, modules map[string]string) (*Engine, error) {
	var parsed []*ast.Module
	if builtin {
		entries, _ := bundleFS.ReadDir("bundle")
		for _, e := range entries {
			src, _ := bundleFS.ReadFile("bundle/" + e.Name())
			m, err := ast.ParseModuleWithOpts("builtin/"+e.Name(), string(src), ast.ParserOptions{RegoVersion: ast.RegoV1})
			if err != nil {
				return nil, fmt.Errorf("policy: the built-in bundle: %w", err)
			}
			parsed = append(parsed, m)
		}
	}
	names := make([]string, 0, len(modules))
	for n := range modules {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		m, err := ast.ParseModuleWithOpts(n, modules[n], ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			m0, err0 := ast.ParseModuleWithOpts(n, modules[n], ast.ParserOptions{RegoVersion: ast.RegoV0})
			if err0 != nil {
				return nil, fmt.Errorf("%w: %v", ErrPolicy, err)
			}
			m = m0
		}
		parsed = append(parsed, m)
	}
	comp := ast.NewCompiler()
	comp.Compile(modulesMap(parsed))
	if comp.Failed() {
		return nil, fmt.Errorf("%w: %v", ErrPolicy, comp.Errors)
	}
	store := inmem.NewFromObject(params.data())
	e := &Engine{disable: map[string]bool{}}
	for _, d := range params.Disable {
		e.disable[d] = true
	}
	seen := map[string]bool{}
	for _, m := range parsed {
		pkg := strings.TrimPrefix(m.Package.Path.String(), "data.")
		if seen[pkg] {
			continue
		}
		seen[pkg] = true
		e.Packages = append(e.Packages, pkg)
		for _, action := range []string{"deny", "warn", "violation"} {
			if !defines(parsed, pkg, action) {
				continue
			}
			pq, err := rego.New(rego.Query("data."+pkg+"."+action), rego.Compiler(comp), rego.Store(store)).PrepareForEval(ctx)
			if err != nil {
				return nil, fmt.Errorf("%w: %s.%s: %v", ErrPolicy, pkg, action, err)
			}
			a := action
			if a == "violation" {
				a = "deny" // gatekeeper's name for it
			}
			e.queries = append(e.queries, query{pkg: pkg, action: a, pq: pq})
		}
	}
	return e, nil
}

func modulesMap(ms []*ast.Module) map[string]*ast.Module {
	out := map[string]*ast.Module{}
	for i, m := range ms {
		out[fmt.Sprintf("%03d-%s", i, m.Package.Location.File)] = m
	}
	return out
}

// defines reports whether some module of pkg has a rule named name.
func defines(ms []*ast.Module, pkg, name string) bool {
	for _, m := range ms {
		if strings.TrimPrefix(m.Package.Path.String(), "data.") != pkg {
			continue
		}
		for _, r := range m.Rules {
			if r.Head.Name.String() == name || len(r.Head.Reference) > 0 && r.Head.Reference[0].Value.String() == name {
				return true
			}
		}
	}
	return false
}

var (
	cacheMu sync.Mutex
	engines = map[string]*Engine{}
)

// Cached is New, remembered for the same params, bundle choice and modules: compiling the
// bundle costs more than evaluating a repository's manifests, and most stages of a server
// ask for the same. At most 64 engines are kept; the 65th empties the cache.
func Cached(ctx context.Context, params Params, builtin bool, modules map[string]string) (*Engine, error) {
	h := sha256.New()
	b, _ := json.Marshal(struct {
		P       map[string]any
		D       []string
		Builtin bool
		M       map[string]string
	}{params.data(), params.Disable, builtin, modules})
	h.Write(b)
	key := hex.EncodeToString(h.Sum(nil))
	cacheMu.Lock()
	e, ok := engines[key]
	cacheMu.Unlock()
	if ok {
		return e, nil
	}
	e, err := New(ctx, params, builtin, modules)
	if err != nil {
		return nil, err
	}
	cacheMu.Lock()
	if len(engines) >= 64 {
		clear(engines)
	}
	engines[key] = e
	cacheMu.Unlock()
	return e, nil
}

// Eval evaluates one object (a decoded manifest document).
func (e *Engine) Eval(ctx context.Context, obj map[string]any) ([]Result, error) {
	var out []Result
	for _, q := range e.queries {
		if e.disable[q.pkg+"."+q.action] {
			continue
		}
		rs, err := q.pq.Eval(ctx, rego.EvalInput(obj))
		if err != nil {
			return nil, fmt.Errorf("policy: %s.%s: %w", q.pkg, q.action, err)
		}
		for _, r := range rs {
			for _, ex := range r.Expressions {
				for _, v := range asList(ex.Value) {
					res := Result{Action: q.action, Package: q.pkg, Rule: q.pkg + "." + q.action}
					switch x := v.(type) {
					case string:
						res.Message = x
					case map[string]any:
						if s, ok := x["msg"].(string); ok {
							res.Message = s
						}
						if s, ok := x["rule"].(string); ok && s != "" {
							res.Rule = s
							if q.pkg != BuiltinPackage {
								res.Rule = q.pkg + "." + s
							}
						}
					default:
						res.Message = fmt.Sprint(x)
					}
					if e.disable[res.Rule] {
						continue
					}
					out = append(out, res)
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Action != b.Action {
			return a.Action < b.Action
		}
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		return a.Message < b.Message
	})
	return out, nil
}

// asList flattens a rule's value: a set arrives as a list, a boolean true as one result.
func asList(v any) []any {
	switch x := v.(type) {
	case []any:
		return x
	case bool:
		if x {
			return []any{"denied"}
		}
		return nil
	case nil:
		return nil
	}
	return []any{v}
}
