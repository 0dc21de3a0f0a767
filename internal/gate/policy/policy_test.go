package policy

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const corpus = "../../../../shared/corpora/k8s-manifests"

// covered maps a gatekeeper library policy to the built-in rules that cover it.
var covered = map[string][]string{
	"privileged-containers": {"privileged-container"},
	"host-namespaces":       {"host-namespace"},
	"host-filesystem":       {"host-path"},
	"containerlimits":       {"resource-limits"},
	"disallowedtags":        {"image-tag"},
	"allowedrepos":          {"image-registry"},
	"allowedreposv2":        {"image-registry"},
	"users":                 {"run-as-root"},
	"capabilities":          {"capabilities-added", "capabilities-not-dropped"},
}

// paramsFor translates a gatekeeper constraint's parameters to the built-in bundle's.
func paramsFor(t *testing.T, raw string) Params {
	var c struct {
		ExemptImages     []string `json:"exemptImages"`
		Repos            []string `json:"repos"`
		AllowedImages    []string `json:"allowedImages"`
		AllowedHostPaths []struct {
			PathPrefix string `json:"pathPrefix"`
			ReadOnly   bool   `json:"readOnly"`
		} `json:"allowedHostPaths"`
		CPU                      string   `json:"cpu"`
		Memory                   string   `json:"memory"`
		Tags                     []string `json:"tags"`
		AllowedCapabilities      []string `json:"allowedCapabilities"`
		RequiredDropCapabilities []string `json:"requiredDropCapabilities"`
	}
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		t.Fatalf("constraint parameters %s: %v", raw, err)
	}
	p := DefaultParams()
	p.ExemptImages = c.ExemptImages
	p.AllowedRegistries = append(c.Repos, c.AllowedImages...)
	for _, h := range c.AllowedHostPaths {
		p.AllowedHostPaths = append(p.AllowedHostPaths, HostPath{PathPrefix: h.PathPrefix, ReadOnly: h.ReadOnly})
	}
	p.MaxCPU, p.MaxMemory = c.CPU, c.Memory
	if c.Tags != nil {
		p.DisallowedTags = c.Tags
	}
	p.AllowedCapabilities = c.AllowedCapabilities
	p.RequiredDropCapabilities = c.RequiredDropCapabilities // the constraint's own: none unless set
	return p
}

// TestGatekeeperCorpus runs the built-in bundle over the gatekeeper library's allowed and
// disallowed examples of the policies it covers, each with its constraint's parameters:
// the covering rules deny every disallowed example and none of the allowed ones.
func TestGatekeeperCorpus(t *testing.T) {
	t.Parallel()
	index, err := os.ReadFile(filepath.Join(corpus, "INDEX.tsv"))
	if err != nil {
		t.Skip("no corpus at ../shared/corpora/k8s-manifests")
	}
	ctx := context.Background()
	var report strings.Builder
	cases := 0
	for _, line := range strings.Split(strings.TrimSpace(string(index)), "\n")[1:] {
		f := strings.Split(line, "\t")
		policy, file, expect, params, match := f[0], f[1], f[3] == "yes", f[7], f[8]
		rules, ok := covered[policy]
		if !ok {
			continue
		}
		cases++
		eng, err := New(ctx, paramsFor(t, params), true, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(corpus, policy, file))
		if err != nil {
			t.Fatal(err)
		}
		ms, err := ParseManifests(policy+"/"+file, b)
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			ExcludedNamespaces []string `json:"excludedNamespaces"`
		}
		json.Unmarshal([]byte(match), &m)
		var hits []string
		for _, man := range ms {
			md, _ := man.Object["metadata"].(map[string]any)
			if ns, _ := md["namespace"].(string); slices.Contains(m.ExcludedNamespaces, ns) {
				continue // the constraint does not apply there
			}
			rs, err := eng.Eval(ctx, man.Object)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				if r.Action == "deny" && slices.Contains(rules, r.Rule) {
					hits = append(hits, r.Rule+": "+r.Message)
				}
			}
		}
		if got := len(hits) > 0; got != expect {
			t.Errorf("%s/%s with %s: denied=%v, want %v %q", policy, file, params, got, expect, hits)
		}
		fmt.Fprintf(&report, "%s/%s %s\n", policy, file, params)
		for _, h := range hits {
			fmt.Fprintf(&report, "\tdeny %s\n", h)
		}
	}
	if cases < 30 {
		t.Errorf("only %d corpus cases", cases)
	}
	golden(t, "testdata/corpus.golden", report.String())
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}
