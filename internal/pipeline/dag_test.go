package pipeline

import (
	"slices"
	"strings"
	"testing"
)

func mustCompile(t *testing.T, src string) *Pipeline {
	t.Helper()
	p, err := Compile("t.yml", []byte(src), Options{Kinds: testKinds})
	if err != nil {
		t.Fatalf("compile:\n%v", err)
	}
	return p
}

func names(p *Pipeline) []string {
	var out []string
	for _, s := range p.Stages {
		out = append(out, s.Name)
	}
	return out
}

func TestTopologicalOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"file order without needs", `
stages:
  c: {steps: [x]}
  a: {steps: [x]}
  b: {steps: [x]}
`, []string{"c", "a", "b"}},
		{"a need written later moves first", `
stages:
  deploy: {needs: [test], steps: [x]}
  test: {needs: [build], steps: [x]}
  build: {steps: [x]}
`, []string{"build", "test", "deploy"}},
		{"ready stages in file order", `
stages:
  z: {needs: [b], steps: [x]}
  a: {steps: [x]}
  b: {steps: [x]}
  y: {needs: [a], steps: [x]}
`, []string{"a", "b", "z", "y"}},
		{"diamond", `
stages:
  end: {needs: [left, right], steps: [x]}
  right: {needs: [start], steps: [x]}
  left: {needs: [start], steps: [x]}
  start: {steps: [x]}
`, []string{"start", "right", "left", "end"}},
		{"matrix expansions stay together in combination order", `
stages:
  report: {needs: [test], steps: [x]}
  test:
    matrix: {os: [linux, mac], go: ["1.22", "1.21"]}
    steps: [x]
`, []string{"test[linux,1.22]", "test[linux,1.21]", "test[mac,1.22]", "test[mac,1.21]", "report"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := names(mustCompile(t, tt.src)); !slices.Equal(got, tt.want) {
				t.Errorf("order = %v, want %v", got, tt.want)
			}
		})
	}
}

const graph = `
stages:
  build: {steps: [x]}
  lint: {steps: [x]}
  test:
    needs: [build]
    matrix: {go: ["1.21", "1.22"]}
    steps: [x]
  e2e: {needs: ["test[1.22]"], steps: [x]}
  secrets: {uses: gate/secrets}
  deploy: {needs: [e2e, secrets, lint], deploy: {environment: dev}}
  verify: {needs: [deploy], steps: [x]}
  docs: {steps: [x]}
`

func TestDownstreamUpstream(t *testing.T) {
	t.Parallel()
	p := mustCompile(t, graph)
	tests := []struct {
		dir, name string
		want      []string
	}{
		{"down", "build", []string{"test[1.21]", "test[1.22]", "e2e", "deploy", "verify"}},
		{"down", "test", []string{"e2e", "deploy", "verify"}},
		{"down", "test[1.21]", nil},
		{"down", "test[1.22]", []string{"e2e", "deploy", "verify"}},
		{"down", "lint", []string{"deploy", "verify"}},
		{"down", "verify", nil},
		{"down", "docs", nil},
		{"down", "nope", nil},
		{"up", "verify", []string{"build", "lint", "test[1.22]", "e2e", "secrets", "deploy"}},
		{"up", "test", []string{"build"}},
		{"up", "e2e", []string{"build", "test[1.22]"}},
		{"up", "build", nil},
		{"up", "nope", nil},
	}
	for _, tt := range tests {
		t.Run(tt.dir+" "+tt.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			if tt.dir == "down" {
				got = p.Downstream(tt.name)
			} else {
				got = p.Upstream(tt.name)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("%s(%q) = %v, want %v", tt.dir, tt.name, got, tt.want)
			}
		})
	}
}

// A Pipeline built by hand, out of order, still gets complete answers.
func TestDownstreamHandBuilt(t *testing.T) {
	t.Parallel()
	p := &Pipeline{Stages: []*Stage{
		{Name: "c", Base: "c", Needs: []string{"b"}},
		{Name: "b", Base: "b", Needs: []string{"a"}},
		{Name: "a", Base: "a"},
	}}
	if got := p.Downstream("a"); !slices.Equal(got, []string{"c", "b"}) {
		t.Errorf("Downstream(a) = %v", got)
	}
	if got := p.Upstream("c"); !slices.Equal(got, []string{"b", "a"}) {
		t.Errorf("Upstream(c) = %v", got)
	}
	// Even a cycle, which Compile never returns, neither loops nor lists the stage asked about.
	p.Stages[2].Needs = []string{"c"}
	if got := p.Downstream("a"); !slices.Equal(got, []string{"c", "b"}) {
		t.Errorf("Downstream(a) in a cycle = %v", got)
	}
}

func TestMatrixExpansion(t *testing.T) {
	t.Parallel()
	p := mustCompile(t, `
env: {go: pipeline, OTHER: x}
stages:
  test:
    matrix: {go: ["1.21", "1.22"], os: [linux, mac]}
    steps: [x]
`)
	want := []string{"test[1.21,linux]", "test[1.21,mac]", "test[1.22,linux]", "test[1.22,mac]"}
	if got := names(p); !slices.Equal(got, want) {
		t.Fatalf("stages = %v, want %v", got, want)
	}
	s := p.Stage("test[1.22,mac]")
	if s.Base != "test" || s.Matrix["go"] != "1.22" || s.Matrix["os"] != "mac" || len(s.Matrix) != 2 {
		t.Errorf("expansion = base %q matrix %v", s.Base, s.Matrix)
	}
	if s.Env["go"].Value != "1.22" || s.Env["OTHER"].Value != "x" {
		t.Errorf("env = %v; the matrix value should win over the pipeline's", s.Env)
	}
	// Expansions share nothing: changing one leaves the others alone.
	s.Steps[0].Run = "changed"
	if p.Stage("test[1.21,linux]").Steps[0].Run != "x" {
		t.Error("expansions share their steps")
	}
}

func TestMatrixLimit(t *testing.T) {
	t.Parallel()
	vals := func(n int) string {
		var v []string
		for i := range n {
			v = append(v, "v"+strings.Repeat("x", i))
		}
		return "[" + strings.Join(v, ", ") + "]"
	}
	// 16 * 16 = 256 is the largest matrix allowed.
	mustCompile(t, "stages:\n  m:\n    matrix: {a: "+vals(16)+", b: "+vals(16)+"}\n    steps: [x]\n")
	_, err := Compile("t.yml", []byte("stages:\n  m:\n    matrix: {a: "+vals(16)+", b: "+vals(17)+"}\n    steps: [x]\n"), Options{})
	if err == nil || !strings.Contains(err.Error(), "272 combinations; the limit is 256") {
		t.Errorf("want the limit error, got %v", err)
	}
	// Exclusion brings 17 * 16 back under the limit.
	mustCompile(t, "stages:\n  m:\n    matrix:\n      a: "+vals(16)+"\n      b: "+vals(17)+"\n      exclude: [{b: v}]\n    steps: [x]\n")
}

func TestOptionsKinds(t *testing.T) {
	t.Parallel()
	src := []byte("stages:\n  s: {uses: gate/secrets}\n  d: {deploy: {environment: dev}}\n")
	if _, err := Compile("t.yml", src, Options{Kinds: []string{"gate/secrets", "deploy"}}); err != nil {
		t.Errorf("with the kinds: %v", err)
	}
	_, err := Compile("t.yml", src, Options{})
	want := "t.yml:2:13: uses: \"gate/secrets\" is not a stage kind this build can run (none in this build; use steps: instead)\n" +
		"t.yml:3:7: deploy: stages are not available in this build (none in this build)"
	if err == nil || err.Error() != want {
		t.Errorf("without kinds:\n%v\nwant:\n%s", err, want)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	p := mustCompile(t, "stages:\n  b: {steps: [x]}\n")
	s := p.Stages[0]
	if p.Name != "pipeline" || s.Shell != "sh" || s.Timeout != DefaultTimeout || s.Phase != "build" || s.Base != "b" {
		t.Errorf("defaults: name %q shell %q timeout %v phase %q base %q", p.Name, s.Shell, s.Timeout, s.Phase, s.Base)
	}
	if p.On.Push == nil || p.On.PullRequest == nil || !p.On.Manual || p.On.Tag != nil {
		t.Errorf("default on: %+v", p.On)
	}
	if s.Steps[0].Pos != (Pos{Line: 2, Col: 15}) || s.Pos != (Pos{Line: 2, Col: 3}) {
		t.Errorf("positions: stage %v step %v", s.Pos, s.Steps[0].Pos)
	}
}

func TestSuggest(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{"step", "steps"}, {"tset", "test"}, {"Steps", "steps"}, {"script", "steps"},
		{"xyzzy", ""}, {"ab", ""}, {"nedes", "needs"},
	} {
		if got := suggest(tt.in, append(slices.Clone(stageKeys), "test")); got != tt.want {
			t.Errorf("suggest(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
