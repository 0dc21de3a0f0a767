package junit

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

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
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n got: %s\nwant: %s", path, got, want)
	}
}

// Reports written by real runners (pytest 7.2 in both JUnit families, gotestsum 1.x over
// go test, Maven Surefire 2.22 with JUnit 4) and a hand-written one for nesting.
func TestParseGolden(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("testdata/*.xml")
	if len(files) < 5 {
		t.Fatalf("only %d reports in testdata", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := Parse(bytes.NewReader(src))
			if err != nil {
				t.Fatal(err)
			}
			out, _ := json.MarshalIndent(rep, "", "  ")
			golden(t, strings.TrimSuffix(f, ".xml")+".golden.json", append(out, '\n'))
		})
	}
}

func TestParseCountsOfRealRunners(t *testing.T) {
	t.Parallel()
	for file, want := range map[string][4]int{ // passed, failed, errored, skipped
		"pytest-xunit2.xml":   {4, 1, 1, 2},
		"pytest-xunit1.xml":   {4, 1, 1, 2},
		"gotestsum.xml":       {2, 3, 0, 1},
		"surefire-junit4.xml": {2, 1, 1, 1},
	} {
		f, err := os.Open(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Parse(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if got := [4]int{rep.Passed, rep.Failed, rep.Errored, rep.Skipped}; got != want {
			t.Errorf("%s: passed, failed, errored, skipped = %v, want %v", file, got, want)
		}
	}
}

func TestParseRefusesWhatIsNotAReport(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("testdata/invalid/*.xml")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			src, _ := os.ReadFile(f)
			_, err := Parse(bytes.NewReader(src))
			if err == nil {
				t.Fatal("parsed")
			}
			golden(t, strings.TrimSuffix(f, ".xml")+".golden.txt", []byte(err.Error()+"\n"))
		})
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.xml")
	more, _ := filepath.Glob("testdata/invalid/*.xml")
	for _, p := range append(files, more...) {
		src, _ := os.ReadFile(p)
		f.Add(src)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		rep, err := Parse(bytes.NewReader(src))
		if err != nil {
			return
		}
		if n := rep.Passed + rep.Failed + rep.Errored + rep.Skipped; n != len(rep.Cases) {
			t.Fatalf("counts add to %d for %d cases", n, len(rep.Cases))
		}
		for _, c := range rep.Cases {
			if c.Name == "" || c.DurationMS < 0 || len([]rune(c.Message)) > 200 {
				t.Fatalf("case %+v", c)
			}
		}
	})
}
