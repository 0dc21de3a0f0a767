package secrets

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestBaselineGolden parses every testdata/baseline/*.yml and compares the result (or the
// error) with its .golden file.
func TestBaselineGolden(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("testdata/baseline/*.yml")
	if len(files) == 0 {
		t.Fatal("no golden inputs")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var got string
			base, err := ParseBaseline(filepath.Base(f), b)
			if err != nil {
				got = "error: " + err.Error() + "\n"
			} else {
				j, _ := json.MarshalIndent(base, "", "  ")
				got = string(j) + "\n"
			}
			golden := strings.TrimSuffix(f, ".yml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if got != string(want) {
				t.Errorf("%s:\ngot  %s\nwant %s", f, got, want)
			}
		})
	}
}

func FuzzParseBaseline(f *testing.F) {
	files, _ := filepath.Glob("testdata/baseline/*.yml")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		base, err := ParseBaseline("b.yml", b)
		if err == nil && base == nil {
			t.Fatal("nil baseline without an error")
		}
		if err != nil && !strings.HasPrefix(err.Error(), "secrets: bad baseline file: b.yml") {
			t.Fatalf("error without the file name: %v", err)
		}
	})
}
