package coverage

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

type golden struct {
	Report
	Percent float64 `json:"percent"`
}

func goldenFiles(t testing.TB) []string {
	var out []string
	for _, g := range []string{"testdata/*.out", "testdata/*.xml", "testdata/*.info"} {
		m, _ := filepath.Glob(g)
		out = append(out, m...)
	}
	if len(out) < 6 {
		t.Fatalf("only %d reports in testdata", len(out))
	}
	return out
}

// Reports in the shapes real tools write them: go test -coverprofile (set, and atomic
// with -coverpkg concatenating profiles), coverage.py's and Cobertura's own XML (with and
// without the totals), Istanbul's and grcov's LCOV (with and without LF/LH).
func TestParseGolden(t *testing.T) {
	t.Parallel()
	for _, f := range goldenFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Parse(f, src)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.MarshalIndent(golden{r, r.Percent()}, "", "  ")
			got = append(got, '\n')
			path := f + ".golden.json"
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
		})
	}
}

func TestParseNumbers(t *testing.T) {
	t.Parallel()
	for file, want := range map[string][2]int64{
		"go-set.out":               {8, 11},
		"go-atomic-coverpkg.out":   {3, 6}, // the first profile's zeros do not undo the second's hits
		"cobertura-coveragepy.xml": {89, 125},
		"cobertura-no-totals.xml":  {3, 4}, // line 7 of Cart.java counts once
		"lcov-istanbul.info":       {4, 7},
		"lcov-no-lf.info":          {2, 3},
	} {
		src, _ := os.ReadFile(filepath.Join("testdata", file))
		r, err := Parse(file, src)
		if err != nil || r.Covered != want[0] || r.Total != want[1] {
			t.Errorf("%s: %+v, %v; want %d of %d", file, r, err, want[0], want[1])
		}
	}
}

func TestPercentRoundsDown(t *testing.T) {
	t.Parallel()
	if p := (Report{Covered: 7999, Total: 10000}).Percent(); p != 79.9 {
		t.Errorf("79.99%% shows as %v, want 79.9", p)
	}
	if p := (Report{Covered: 89, Total: 125}).Percent(); p != 71.2 {
		t.Errorf("got %v, want 71.2", p)
	}
	if p := (Report{}).Percent(); p != 0 {
		t.Errorf("empty: %v", p)
	}
}

func TestParseInvalid(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("testdata/invalid/*")
	if len(files) < 5 {
		t.Fatalf("only %d invalid reports", len(files))
	}
	for _, f := range files {
		src, _ := os.ReadFile(f)
		if r, err := Parse(f, src); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %+v, %v; want ErrFormat", f, r, err)
		}
	}
}

func TestMerge(t *testing.T) {
	t.Parallel()
	m := Merge([]Report{{Format: GoCover, Covered: 1, Total: 2}, {Format: LCOV, Covered: 3, Total: 4}})
	if m != (Report{Format: "mixed", Covered: 4, Total: 6}) {
		t.Errorf("%+v", m)
	}
}

func FuzzParse(f *testing.F) {
	for _, g := range goldenFiles(f) {
		b, _ := os.ReadFile(g)
		f.Add(b)
	}
	files, _ := filepath.Glob("testdata/invalid/*")
	for _, g := range files {
		b, _ := os.ReadFile(g)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse("fuzz", data)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error without ErrFormat: %v", err)
			}
			return
		}
		if r.Covered < 0 || r.Total < 0 || (r.Format != GoCover && r.Covered > r.Total) {
			t.Fatalf("impossible report %+v", r)
		}
		if p := r.Percent(); p < 0 || (r.Covered <= r.Total && p > 100) {
			t.Fatalf("percent %v of %+v", p, r)
		}
	})
}
