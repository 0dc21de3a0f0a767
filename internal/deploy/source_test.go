package deploy

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestParsePromValue: every answer in testdata/prom gives the value or error in its
// .golden.txt (go test -update rewrites them).
func TestParsePromValue(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "prom", "*.json"))
	if len(files) == 0 {
		t.Fatal("no testdata")
	}
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		v, err := parsePromValue(body)
		got := fmt.Sprintf("value %g\n", v)
		if err != nil {
			got = "error: " + err.Error() + "\n"
		}
		golden := strings.TrimSuffix(f, ".json") + ".golden.txt"
		if *update {
			if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (go test -update creates it)", err)
		}
		if got != string(want) {
			t.Errorf("%s: got %q, want %q", f, got, want)
		}
	}
}

// FuzzParsePromValue: no answer, however broken, panics or yields a NaN.
func FuzzParsePromValue(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "prom", "*.json"))
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		v, err := parsePromValue(body)
		if err == nil && v != v {
			t.Fatalf("NaN from %q", body)
		}
	})
}
