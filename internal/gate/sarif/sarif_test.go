package sarif

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const corpus = "../../../../shared/corpora/sarif"

// TestCorpusCountsPerLevel ingests every SARIF log of the corpus (the SARIF SDK's converter
// outputs and the SARIF tutorials) and checks the counts per level against
// testdata/corpus-levels.tsv, computed by an independent reading of the spec.
func TestCorpusCountsPerLevel(t *testing.T) {
	t.Parallel()
	want, err := os.ReadFile("testdata/corpus-levels.tsv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(corpus); err != nil {
		t.Skip("no corpus at ../shared/corpora/sarif")
	}
	n := 0
	for _, line := range strings.Split(string(want), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, "\t")
		b, err := os.ReadFile(filepath.Join(corpus, fields[0]))
		if err != nil {
			t.Fatal(err)
		}
		l, err := Parse(fields[0], b)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		fs, c := l.Findings(fields[0])
		got := fmt.Sprintf("%s\t%d\t%d\t%d\t%d\t%d", fields[0], c.Error, c.Warning, c.Note, c.None, c.Suppressed)
		if got != line {
			t.Errorf("counts:\ngot  %s\nwant %s", got, line)
		}
		if len(fs) != c.Error+c.Warning+c.Note+c.None {
			t.Errorf("%s: %d findings for %+v", fields[0], len(fs), c)
		}
		n++
	}
	if n < 40 {
		t.Errorf("only %d corpus files checked", n)
	}
}

// TestFindingsGolden records the findings of a few logs of distinct tools and features.
func TestFindingsGolden(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("testdata/*.sarif")
	if len(files) == 0 {
		t.Fatal("no golden inputs")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var got strings.Builder
		if l, err := Parse(filepath.Base(f), b); err != nil {
			got.WriteString("error: " + err.Error() + "\n")
		} else {
			fs, c := l.Findings(filepath.Base(f))
			fmt.Fprintf(&got, "%+v\n", c)
			for _, x := range fs {
				fmt.Fprintf(&got, "%s %s [%s] %s:%d %s\n", x.Severity, x.Rule, x.Tool, x.File, x.Line, x.Message)
			}
		}
		golden := strings.TrimSuffix(f, ".sarif") + ".golden"
		if *update {
			os.WriteFile(golden, []byte(got.String()), 0o644)
			continue
		}
		w, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test -update)", err)
		}
		if got.String() != string(w) {
			t.Errorf("%s:\ngot:\n%s\nwant:\n%s", f, got.String(), w)
		}
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.sarif")
	more, _ := filepath.Glob(corpus + "/sarif-tutorials/*.sarif")
	for _, p := range append(files, more...) {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := Parse("f.sarif", b)
		if err != nil {
			if !errors.Is(err, ErrSARIF) {
				t.Fatalf("error does not wrap ErrSARIF: %v", err)
			}
			return
		}
		fs, c := l.Findings("f.sarif")
		if len(fs) != c.Error+c.Warning+c.Note+c.None {
			t.Fatalf("%d findings for %+v", len(fs), c)
		}
	})
}
