package access_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paved/paved/internal/access"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestParseRoleGolden: each line of testdata/roles.txt parsed, against roles.golden.
func TestParseRoleGolden(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "roles.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for _, line := range strings.Split(strings.TrimRight(string(in), "\n"), "\n") {
		r, err := access.ParseRole(line)
		fmt.Fprintf(&out, "%q -> %v %v\n", line, r, err)
	}
	checkGolden(t, "ParseRole", "roles.golden", out.String())
}

func FuzzParseRole(f *testing.F) {
	in, _ := os.ReadFile(filepath.Join("testdata", "roles.txt"))
	for _, line := range strings.Split(string(in), "\n") {
		f.Add(line)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := access.ParseRole(s)
		if err != nil {
			if r != access.NoRole {
				t.Errorf("ParseRole(%q) = %v with an error", s, r)
			}
			return
		}
		// A role that parses prints as a name that parses to itself.
		if back, err := access.ParseRole(r.String()); err != nil || back != r {
			t.Errorf("ParseRole(%q) = %v, whose name %q parses to %v, %v", s, r, r.String(), back, err)
		}
	})
}

// checkGolden compares what a parser made of testdata's inputs with testdata/name, which
// go test -update rewrites.
func checkGolden(t *testing.T, parser, name, got string) {
	t.Helper()
	golden := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s (go test -update rewrites it):\n%s", parser, golden, got)
	}
}
