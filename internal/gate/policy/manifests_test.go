package policy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paved/paved/internal/gate"
)

// TestManifestsGolden parses and evaluates testdata/manifests/* with the default bundle.
func TestManifestsGolden(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	eng, err := New(ctx, DefaultParams(), true, nil)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("testdata/manifests/*")
	for _, f := range files {
		if strings.HasSuffix(f, ".golden") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var got strings.Builder
		ms, err := ParseManifests(filepath.Base(f), b)
		if err != nil {
			got.WriteString("error: " + err.Error() + "\n")
		}
		for _, m := range ms {
			rs, err := eng.Eval(ctx, m.Object)
			if err != nil {
				t.Fatal(err)
			}
			for _, fd := range Findings(m, rs) {
				fmt.Fprintf(&got, "%s:%d %s %s %s: %s\n", fd.File, fd.Line, fd.Object, fd.Severity, fd.Rule, fd.Message)
			}
			if len(rs) == 0 {
				fmt.Fprintf(&got, "%s:%d %s: clean\n", m.File, m.Line, m.Name())
			}
		}
		golden(t, strings.TrimSuffix(f, filepath.Ext(f))+".golden", got.String())
	}
}

func TestRepositoryPoliciesInRegoV1AndV0(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mods := map[string]string{
		"policy/labels.rego": `package main

deny contains msg if {
	not input.metadata.labels.team
	msg := sprintf("%s %s has no team label", [input.kind, input.metadata.name])
}
`,
		"policy/legacy.rego": `package legacy

warn[{"rule": "replicas", "msg": "one replica"}] {
	input.spec.replicas == 1
}
`,
	}
	eng, err := New(ctx, DefaultParams(), false, mods)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := eng.Eval(ctx, map[string]any{"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web"}, "spec": map[string]any{"replicas": 1}})
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(rs)
	want := "[{deny main.deny Deployment web has no team label main} {warn legacy.replicas one replica legacy}]"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	_, err = New(ctx, DefaultParams(), true, map[string]string{"policy/bad.rego": "package x\n\ndeny contains msg if {\n\tmsg := \n}\n"})
	if !errors.Is(err, ErrPolicy) || !strings.Contains(err.Error(), "policy/bad.rego:") {
		t.Errorf("a broken policy: %v, want ErrPolicy naming policy/bad.rego:LINE", err)
	}
}

func TestKindReadsPathsAndThePolicyDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("k8s/pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: nginx}]\n")
	write("chart/templates/dep.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: {{ .Release.Name }}}\n")
	write("policy/extra.rego", "package extra\n\ndeny contains \"always\" if input.kind == \"Pod\"\n")
	write("policy/ignored.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: not-a-manifest}\n")
	var logs []string
	out, err := Kind()(context.Background(), gate.Input{Dir: dir, With: map[string][]string{"disable": {"read-only-root-filesystem"}},
		Log: func(s string) { logs = append(logs, s) }})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range out.Findings {
		got = append(got, f.Severity+" "+f.Rule+" "+f.Object+" "+f.File)
	}
	want := "HIGH capabilities-not-dropped Pod/p k8s/pod.yaml,HIGH extra.deny Pod/p k8s/pod.yaml,HIGH image-tag Pod/p k8s/pod.yaml," +
		"HIGH resource-limits Pod/p k8s/pod.yaml,HIGH resource-limits Pod/p k8s/pod.yaml,HIGH run-as-root Pod/p k8s/pod.yaml,LOW resource-requests Pod/p k8s/pod.yaml"
	if strings.Join(got, ",") != want {
		t.Errorf("findings:\n%s\nwant\n%s", strings.Join(got, ","), want)
	}
	if !strings.Contains(strings.Join(logs, "\n"), "skipped chart/templates/dep.yaml (a template") {
		t.Errorf("logs %q do not say the template was skipped", logs)
	}
	_, err = Kind()(context.Background(), gate.Input{Dir: dir, With: map[string][]string{"disable": {"no-such-rule"}}, Log: func(string) {}})
	if !errors.Is(err, gate.ErrOption) {
		t.Errorf("an unknown rule to disable: %v", err)
	}
}

func FuzzParseManifests(f *testing.F) {
	files, _ := filepath.Glob("testdata/manifests/*")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := ParseManifests("m.yaml", b)
		if err != nil && !errors.Is(err, ErrManifest) {
			t.Fatalf("error does not wrap ErrManifest: %v", err)
		}
		for _, m := range ms {
			_ = m.Name()
		}
	})
}
