package forge_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/paved/paved/internal/forge"
)

// renderDiff renders every manifest directory of two trees and writes the diff as a
// comment shows it.
func renderDiff(t *testing.T, baseDir, headDir string) string {
	t.Helper()
	base, head := os.DirFS(baseDir), os.DirFS(headDir)
	dirs := forge.DetectManifests(head)
	var b strings.Builder
	b.WriteString("dirs: " + strings.Join(dirs, " ") + "\n")
	for _, d := range dirs {
		bo, err := forge.Render(base, d)
		if err != nil {
			t.Fatal(err)
		}
		ho, err := forge.Render(head, d)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("# " + d + "\n")
		for _, c := range forge.Diff(bo, ho) {
			b.WriteString(c.Op + " " + c.Key + "\n")
			for _, f := range c.Fields {
				b.WriteString("    " + f.String() + "\n")
			}
		}
	}
	return b.String()
}

func TestManifestDiffGolden(t *testing.T) {
	t.Parallel()
	cases, _ := filepath.Glob(filepath.Join("testdata", "manifests", "*"))
	if len(cases) == 0 {
		t.Fatal("no cases")
	}
	for _, c := range cases {
		if fi, err := os.Stat(c); err != nil || !fi.IsDir() {
			continue
		}
		t.Run(filepath.Base(c), func(t *testing.T) {
			t.Parallel()
			golden(t, c+".diff.golden", renderDiff(t, filepath.Join(c, "base"), filepath.Join(c, "head")))
		})
	}
}

func TestRenderSaysWhatItCannot(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, text string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("chart/Chart.yaml", "apiVersion: v2\nname: c\nversion: 0.1.0\n")
	write("bad/x.yaml", "kind: [\n")
	write("kbad/kustomization.yaml", "resources: [missing.yaml]\n")
	fsys := os.DirFS(dir)
	for dir, want := range map[string]string{"chart": "helm charts are not rendered", "bad": "bad/x.yaml: not valid YAML", "kbad": "kustomize kbad"} {
		if _, err := forge.Render(fsys, dir); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Render(%s) = %v, want an error with %q", dir, err, want)
		}
	}
	if objs, err := forge.Render(fsys, "gone"); err != nil || objs != nil {
		t.Errorf("a missing directory: %v %v", objs, err)
	}
}

// FuzzDiff: any two YAML documents decode and diff without panicking, and a rendering
// never differs from itself.
func FuzzDiff(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "manifests", "*", "*", "*.yaml"))
	for i, a := range files {
		b := files[(i+1)%len(files)]
		ab, _ := os.ReadFile(a)
		bb, _ := os.ReadFile(b)
		f.Add(ab, bb)
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		fsys := fstest.MapFS{"a/m.yaml": {Data: a}, "b/m.yaml": {Data: b}}
		ao, aerr := forge.Render(fsys, "a")
		bo, berr := forge.Render(fsys, "b")
		if aerr != nil || berr != nil {
			return
		}
		_ = forge.Diff(ao, bo)
		if d := forge.Diff(ao, ao); len(d) != 0 {
			t.Fatalf("a rendering differs from itself: %+v", d)
		}
	})
}
