package sbom

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// TestLockfilesGolden parses the lockfile in each testdata/lockfiles/* directory and
// compares the components (or the error) with the directory's golden file.
func TestLockfilesGolden(t *testing.T) {
	t.Parallel()
	dirs, _ := filepath.Glob("testdata/lockfiles/*")
	if len(dirs) < 12 {
		t.Fatalf("only %d golden inputs", len(dirs))
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			files, _ := filepath.Glob(filepath.Join(dir, "*"))
			var got strings.Builder
			for _, f := range files {
				if strings.HasSuffix(f, ".golden") {
					continue
				}
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				cs, err := Parse(filepath.Base(f), b)
				if err != nil {
					got.WriteString("error: " + err.Error() + "\n")
					continue
				}
				for _, c := range cs {
					got.WriteString(c.PURL() + "\t" + c.File + "\n")
				}
			}
			golden(t, filepath.Join(dir, "components.golden"), got.String())
		})
	}
}

func TestScanSkipsInstalledDependenciesAndPrunedGoSum(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module m\n\nrequire golang.org/x/text v0.3.7\n")
	write("go.sum", "golang.org/x/text v0.3.0 h1:x=\n")
	write("web/node_modules/x/package-lock.json", `{"lockfileVersion":3,"packages":{"node_modules/y":{"version":"1.0.0"}}}`)
	write("web/package-lock.json", `{"lockfileVersion":3,"packages":{"node_modules/lodash":{"version":"4.17.20"}}}`)
	cs, err := Scan(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cs {
		got = append(got, c.PURL()+" "+c.File)
	}
	want := []string{"pkg:golang/golang.org/x/text@v0.3.7 go.mod", "pkg:npm/lodash@4.17.20 web/package-lock.json"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestBOMRoundTripsThroughTheSchema(t *testing.T) {
	t.Parallel()
	in := []Component{
		{Ecosystem: Go, Name: "golang.org/x/text", Version: "v0.3.7", File: "go.mod"},
		{Ecosystem: NPM, Name: "@babel/core", Version: "7.22.5", File: "package-lock.json"},
		{Ecosystem: PyPI, Name: "django", Version: "3.2.0", File: "requirements.txt"},
		{Ecosystem: Cargo, Name: "smallvec", Version: "1.6.0", File: "Cargo.lock"},
		{Ecosystem: Maven, Name: "org.apache.logging.log4j:log4j-core", Version: "2.14.1", File: "pom.xml"},
	}
	b, err := Encode(New("acme/shop", "abc123", in))
	if err != nil {
		t.Fatal(err)
	}
	bom, err := Decode("sbom.cdx.json", b)
	if err != nil {
		t.Fatalf("our own BOM does not validate: %v", err)
	}
	out := Components(bom)
	if !reflect.DeepEqual(out, dedup(in)) {
		t.Errorf("round trip:\ngot  %+v\nwant %+v", out, in)
	}
}

// TestCycloneDXCorpus reads the CycloneDX specification's own examples: every valid-* file
// decodes and every invalid-* one is rejected saying where.
func TestCycloneDXCorpus(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("../../../../shared/corpora/cyclonedx/*.json")
	if len(files) == 0 {
		t.Skip("no corpus at ../shared/corpora/cyclonedx")
	}
	var got strings.Builder
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(f)
		_, err = Decode(name, b)
		switch valid := strings.HasPrefix(name, "valid-"); {
		case valid && err != nil:
			t.Errorf("%s: %v", name, err)
		case !valid && err == nil:
			t.Errorf("%s: accepted", name)
		case !valid && !errors.Is(err, ErrInvalid):
			t.Errorf("%s: %v does not wrap ErrInvalid", name, err)
		}
		if err != nil {
			got.WriteString(err.Error() + "\n")
		} else {
			got.WriteString(name + ": valid\n")
		}
	}
	golden(t, "testdata/corpus.golden", got.String())
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/lockfiles/*/*")
	for _, p := range files {
		if strings.HasSuffix(p, ".golden") {
			continue
		}
		b, _ := os.ReadFile(p)
		f.Add(filepath.Base(p), b)
	}
	f.Fuzz(func(t *testing.T, name string, b []byte) {
		cs, err := Parse(name, b)
		if err != nil {
			if !errors.Is(err, ErrLockfile) {
				t.Fatalf("error does not wrap ErrLockfile: %v", err)
			}
			return
		}
		for _, c := range cs {
			if _, err := json.Marshal(c); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("../../../../shared/corpora/cyclonedx/*.json")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Add([]byte(`{"bomFormat":"CycloneDX","specVersion":"1.6"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if bom, err := Decode("f.json", b); err == nil {
			Components(bom)
		} else if !errors.Is(err, ErrInvalid) {
			t.Fatalf("error does not wrap ErrInvalid: %v", err)
		}
	})
}
