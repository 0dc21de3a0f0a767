package stack

import (
	"bytes"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/paved/paved/internal/pipeline"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestGolden runs detection on each sample repository in testdata/repos and compares the
// pipeline with testdata/golden/NAME.yml; every pipeline must compile as this build and
// as one with every gate and deploy enabled.
func TestGolden(t *testing.T) {
	t.Parallel()
	entries, err := os.ReadDir("testdata/repos")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d, err := Detect(os.DirFS(filepath.Join("testdata/repos", name)))
			if err != nil {
				t.Fatal(err)
			}
			got := d.Pipeline(Options{Name: name})
			if _, err := pipeline.Compile(name+".yml", got, pipeline.Options{}); err != nil {
				t.Fatalf("the generated pipeline does not compile:\n%v\n%s", err, got)
			}
			all := []string{"gate/secrets", "gate/sbom", "gate/vulns", "gate/policy", "deploy"}
			full := d.Pipeline(Options{Name: name, Kinds: all})
			p, err := pipeline.Compile(name+".yml", full, pipeline.Options{Kinds: all})
			if err != nil {
				t.Fatalf("with every kind enabled, the pipeline does not compile:\n%v\n%s", err, full)
			}
			if last := p.Stages[len(p.Stages)-1]; last.Deploy == nil || len(last.Needs) < 2 {
				t.Errorf("with deploy enabled, the last stage is %s (needs %v), not the deploy stage after the others", last.Name, last.Needs)
			}
			for _, st := range p.Stages {
				// Gates run in parallel with the tests: they wait for no build or test stage.
				if strings.HasPrefix(st.Uses, "gate/") && len(st.Needs) > 0 && (st.Uses != "gate/vulns" || strings.Join(st.Needs, ",") != "sbom") {
					t.Errorf("gate stage %s needs %v: it would not run in parallel with the tests", st.Name, st.Needs)
				}
			}
			checkGolden(t, filepath.Join("testdata/golden", name+".gates.yml"), full)
			golden := filepath.Join("testdata/golden", name+".yml")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs (go test -update rewrites it); got:\n%s", golden, got)
			}
		})
	}
}

// checkGolden compares got with the golden file (go test -update rewrites it).
func checkGolden(t *testing.T, golden string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it); got:\n%s", golden, got)
	}
}

// The monorepo has one stage set per project, named after its directory.
func TestMonorepoProjects(t *testing.T) {
	t.Parallel()
	d, err := Detect(os.DirFS("testdata/repos/monorepo"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.Compile("m.yml", d.Pipeline(Options{}), pipeline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range p.Stages {
		names = append(names, s.Name)
	}
	want := "api-build api-test api-image charts-web-chart deploy-manifests infra-terraform web-build web-test"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("stages %s, want %s", got, want)
	}
	for _, s := range p.Stages {
		if s.Name == "api-build" {
			if len(s.Artifacts) != 1 || s.Artifacts[0] != "api/out/*" || s.Cache[0].KeyFiles[1] != "api/go.sum" {
				t.Errorf("api-build: artifacts %v, cache %+v: paths must be in api/", s.Artifacts, s.Cache)
			}
			if !strings.HasPrefix(s.Steps[0].Run, "cd api && ") {
				t.Errorf("api-build runs %q, not in api/", s.Steps[0].Run)
			}
		}
	}
}

func TestNothingFound(t *testing.T) {
	t.Parallel()
	_, err := Detect(fstest.MapFS{"README.md": {Data: []byte("# hi")}, "docs/a.yml": {Data: []byte("a: b")}})
	if !errors.Is(err, ErrNothingFound) {
		t.Fatalf("err %v, want ErrNothingFound", err)
	}
}

// Odd inputs make a plainer pipeline, never a broken one.
func TestOddManifests(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{
		"package.json":        {Data: []byte("{not json")},
		"pom.xml":             {Data: []byte("<project><artifactId>x</artifactId>")},
		"Cargo.toml":          {Data: []byte("[package\nname = \"a: b #c\"\n[[bin]]\n")},
		"Chart.yaml":          {Data: []byte("version: [")},
		"go.mod":              {Data: []byte("module \"ex ample.com/x\"\n")},
		"main.go":             {Data: []byte("package main\n")},
		"pyproject.toml":      {Data: []byte("[project]\nname = 'we\"ird: name'\n")},
		"build.gradle":        {Data: []byte("plugins { id 'java' }")},
		"Dockerfile":          {Data: []byte("FROM scratch")},
		"weird dir/main.tf":   {Data: []byte("")},
		"weird-dir/main.tf":   {Data: []byte("")},
		"weird dir/x.yaml":    {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")},
		"a/b/c/d.yaml":        {Data: []byte("apiVersion: v1\nkind: Pod\nmetadata: {}\n")},
		"k8s/list.yaml":       {Data: []byte("apiVersion: [1]\nkind: Pod\n---\n: :\n")},
		"node_modules/go.mod": {Data: []byte("module x\n")},
	}
	d, err := Detect(fsys)
	if err != nil {
		t.Fatal(err)
	}
	src := d.Pipeline(Options{Name: "odd: name #1"})
	if _, err := pipeline.Compile("odd.yml", src, pipeline.Options{}); err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	if !bytes.Contains(src, []byte("weird-dir-terraform-2:")) || !bytes.Contains(src, []byte("cd 'weird dir' && ")) {
		t.Errorf("the project in \"weird dir\" is missing or not quoted:\n%s", src)
	}
	if bytes.Contains(src, []byte("node_modules")) {
		t.Errorf("node_modules was inspected:\n%s", src)
	}
}

func TestScalarRoundTrip(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"plain", "-trimpath", "yes", "a: b", "x #y", "out/*", `say "hi"`, "'q'", "1.20", "", " lead", "trail ", "&anchor", "!tag", "@at", "{a}", "[a]", "%p", "a\nb", "tab\there", "ü"} {
		named := []byte("name: " + scalar(s) + "\nstages:\n  b:\n    steps: [" + scalar(s) + "]\n")
		if p, err := pipeline.Compile("s.yml", named, pipeline.Options{}); err != nil || p.Name != s || p.Stages[0].Steps[0].Run != s {
			if s != "" { // an empty step is an error of its own
				t.Errorf("%q: %v\n%s", s, err, named)
			}
		}
		src := []byte("name: " + scalar(s) + "\nstages:\n  b:\n    steps: [x]\n    artifacts: " + flow([]string{s, "x"}) + "\n")
		p, err := pipeline.Compile("s.yml", src, pipeline.Options{})
		if s == "" || strings.HasPrefix(s, " ") || strings.HasSuffix(s, " ") || strings.ContainsAny(s, "\n\t:") {
			continue // not a valid artifact glob
		}
		if err != nil {
			t.Errorf("%q: %v\n%s", s, err, src)
			continue
		}
		if p.Name != s || p.Stages[0].Artifacts[0] != s {
			t.Errorf("%q read back as name %q, artifact %q", s, p.Name, p.Stages[0].Artifacts[0])
		}
	}
}

// FuzzManifests feeds detection odd manifests and directory names: whatever they hold,
// the generated pipeline compiles.
func FuzzManifests(f *testing.F) {
	f.Add([]byte("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\nkind: x\n"), []byte("[package]\nname = \"a\"\n[[bin]]\n"), "svc")
	f.Add([]byte("a: &a [*a]\n"), []byte("x = 'y"), "we ird\n\"dir")
	f.Add([]byte("name: c\nversion: 1\ndependencies: [x]\n"), []byte("[tool.poetry]\nname = \"p\\u0000\"\n"), "a'b")
	f.Fuzz(func(t *testing.T, y, toml []byte, dir string) {
		manifestKinds(y)
		parseTOML(toml).str("package", "name")
		fsys := fstest.MapFS{"Cargo.toml": {Data: toml}, "pyproject.toml": {Data: toml}, "k8s/a.yaml": {Data: y}, "Chart.yaml": {Data: y}}
		if fs.ValidPath(dir) && !strings.Contains(dir, "/") && dir != "." {
			fsys[dir+"/go.mod"] = &fstest.MapFile{Data: toml}
			fsys[dir+"/main.go"] = &fstest.MapFile{Data: []byte("package main")}
			fsys[dir+"/x.yaml"] = &fstest.MapFile{Data: y}
			fsys[dir+"/package.json"] = &fstest.MapFile{Data: []byte(`{"scripts": {"build": "x"}}`)}
			fsys[dir+"/Dockerfile"] = &fstest.MapFile{Data: y}
		}
		det, err := Detect(fsys)
		if err != nil {
			return
		}
		src := det.Pipeline(Options{Name: string(toml)})
		if _, err := pipeline.Compile("f.yml", src, pipeline.Options{}); err != nil {
			t.Fatalf("%v\n%s", err, src)
		}
	})
}
