package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// testKinds is what the test files may use unless their first line says otherwise.
var testKinds = []string{"gate/secrets", "gate/sbom", "gate/vuln", "deploy"}

// testKindKeys are the with: keys of testKinds (gate/sbom takes none).
var testKindKeys = map[string][]string{"gate/secrets": {"baseline", "diffs"}, "gate/vuln": {"db", "policy"}}

// optionsFor reads Options.Kinds from a first line "# kinds: a, b" (or "# kinds: none"), so
// a test file carries the build it is compiled for.
func optionsFor(src []byte) Options {
	first, _, _ := bytes.Cut(src, []byte("\n"))
	rest, ok := strings.CutPrefix(string(first), "# kinds:")
	if !ok {
		return Options{Kinds: testKinds, KindKeys: testKindKeys}
	}
	var kinds []string
	for k := range strings.SplitSeq(rest, ",") {
		if k = strings.TrimSpace(k); k != "" && k != "none" {
			kinds = append(kinds, k)
		}
	}
	return Options{Kinds: kinds, KindKeys: testKindKeys}
}

func ymlFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files in testdata/%s: %v", dir, err)
	}
	return files
}

func TestCompileValid(t *testing.T) {
	t.Parallel()
	for _, file := range ymlFiles(t, "valid") {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			p, err := Compile(filepath.Base(file), src, optionsFor(src))
			if err != nil {
				t.Fatalf("want a pipeline, got errors:\n%v", err)
			}
			checkPipeline(t, p)
			got, err := json.MarshalIndent(p, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, strings.TrimSuffix(file, ".yml")+".golden.json", append(got, '\n'))
		})
	}
}

func TestCompileInvalid(t *testing.T) {
	t.Parallel()
	for _, file := range ymlFiles(t, "invalid") {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			base := filepath.Base(file)
			p, err := Compile(base, src, optionsFor(src))
			if err == nil {
				t.Fatalf("want errors, got a pipeline of %d stages", len(p.Stages))
			}
			if p != nil {
				t.Errorf("want no pipeline with errors, got one")
			}
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("want a non-empty ErrorList, got %T %v", err, err)
			}
			checkErrors(t, base, list)
			golden(t, strings.TrimSuffix(file, ".yml")+".golden.txt", []byte(err.Error()+"\n"))
		})
	}
}

// checkErrors holds for every ErrorList: positioned in the file, sorted, without repeats.
func checkErrors(t *testing.T, file string, list ErrorList) {
	t.Helper()
	for i, e := range list {
		if e.File != file || e.Pos.Line < 1 || e.Pos.Col < 1 || e.Msg == "" {
			t.Errorf("error %d is not positioned in %s: %q", i, file, e.Error())
		}
		if e.Msg != strings.TrimSpace(e.Msg) || strings.Contains(e.Msg, "\n") {
			t.Errorf("error %d is not one trimmed line: %q", i, e.Msg)
		}
		if i > 0 {
			p := list[i-1]
			if p.Pos.Line > e.Pos.Line || p.Pos.Line == e.Pos.Line && p.Pos.Col > e.Pos.Col {
				t.Errorf("errors out of order: %q before %q", p.Error(), e.Error())
			}
			if p == e {
				t.Errorf("error repeated: %q", e.Error())
			}
		}
	}
}

// checkPipeline holds for every compiled pipeline: unique names, needs that exist and come
// earlier, the defaults filled in, and an exact round trip through JSON (a run stores the
// pipeline in its first event and replays from it).
func checkPipeline(t *testing.T, p *Pipeline) {
	t.Helper()
	if p.Name == "" || len(p.Stages) == 0 {
		t.Fatalf("pipeline without name or stages: %+v", p)
	}
	seen := map[string]bool{}
	for _, s := range p.Stages {
		if seen[s.Name] {
			t.Errorf("stage %q appears twice", s.Name)
		}
		for _, n := range s.Needs {
			if !seen[n] {
				t.Errorf("stage %q needs %q, which does not come before it", s.Name, n)
			}
		}
		seen[s.Name] = true
		if s.Base == "" || s.Shell == "" || s.Timeout <= 0 || s.Phase == "" {
			t.Errorf("stage %q lacks a default: %+v", s.Name, s)
		}
		kinds := 0
		for _, set := range []bool{len(s.Steps) > 0, s.Uses != "", s.Deploy != nil} {
			if set {
				kinds++
			}
		}
		if kinds != 1 {
			t.Errorf("stage %q has %d of steps, uses and deploy", s.Name, kinds)
		}
		for _, st := range s.Steps {
			if st.Name == "" || st.Run == "" {
				t.Errorf("stage %q has a step without name or run: %+v", s.Name, st)
			}
		}
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back Pipeline
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p, &back) {
		b2, _ := json.Marshal(&back)
		t.Errorf("JSON round trip changed the pipeline:\n%s\n%s", b, b2)
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it):\n%s", path, lineDiff(string(want), string(got)))
	}
}

// lineDiff shows the first lines that differ, enough to see what changed.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return "line " + strconv.Itoa(i+1) + ":\n- " + a + "\n+ " + b
		}
	}
	return "(same lines, different bytes)"
}
