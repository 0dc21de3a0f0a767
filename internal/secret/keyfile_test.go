package secret_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paved/paved/internal/secret"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func describeKeys(keys []secret.Key, err error) string {
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	var b strings.Builder
	for i, k := range keys {
		state := "readable"
		if i == 0 {
			state = "current"
		}
		b.WriteString(k.ID + " " + state + "\n")
	}
	return b.String()
}

// TestKeyFileGolden: each key file in testdata/keyfiles parses to the keys (or the error,
// with file:line) in its .golden file; go test -update rewrites them.
func TestKeyFileGolden(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob(filepath.Join("testdata", "keyfiles", "*.txt"))
	if len(files) == 0 {
		t.Fatal("no testdata/keyfiles/*.txt")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got := describeKeys(secret.ParseKeyFile(f, b))
		golden := strings.TrimSuffix(f, ".txt") + ".golden"
		if *update {
			if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test -update)", err)
		}
		if got != string(want) {
			t.Errorf("%s:\ngot  %s\nwant %s", f, got, want)
		}
	}
}

// FuzzParseKeyFile: any bytes give keys of the right size or an error, never a panic.
func FuzzParseKeyFile(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "keyfiles", "*.txt"))
	for _, file := range files {
		b, _ := os.ReadFile(file)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := secret.ParseKeyFile("fuzz", b)
		if err == nil && len(keys) == 0 {
			t.Fatal("no keys and no error")
		}
		for _, k := range keys {
			if len(k.Raw) != secret.KeySize {
				t.Fatalf("key of %d bytes", len(k.Raw))
			}
		}
	})
}
