package vuln

import (
	"archive/zip"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paved/paved/internal/gate"
	"github.com/paved/paved/internal/gate/sbom"
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

// TestRecordsGolden parses every record of the test database and of testdata/bad, and
// records each one's rating (or the error).
func TestRecordsGolden(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("testdata/osv/*/*.json")
	bad, _ := filepath.Glob("testdata/bad/*.json")
	var got strings.Builder
	for _, f := range append(files, bad...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r, err := ParseRecord(filepath.ToSlash(f), b)
		if err != nil {
			got.WriteString("error: " + err.Error() + "\n")
			continue
		}
		for i := range r.Affected {
			sev, score, src := r.Rating(&r.Affected[i], gate.High)
			fmt.Fprintf(&got, "%s %s/%s: %s %.1f %s withdrawn=%v\n", r.ID, r.Affected[i].Package.Ecosystem, r.Affected[i].Package.Name, sev, score, src, r.Withdrawn != "")
		}
	}
	golden(t, "testdata/records.golden", got.String())
}

func TestMatchUsesEachEcosystemsVersionOrder(t *testing.T) {
	t.Parallel()
	db, err := Load("testdata/osv")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		c    sbom.Component
		want string // matched ids and fixed versions
	}{
		{sbom.Component{Ecosystem: sbom.Go, Name: "golang.org/x/text", Version: "v0.3.7"}, "GHSA-69ch-w2m2-3vjp fixed 0.3.8"},
		{sbom.Component{Ecosystem: sbom.Go, Name: "golang.org/x/text", Version: "v0.3.8"}, ""},
		{sbom.Component{Ecosystem: sbom.Go, Name: "golang.org/x/text", Version: "v0.14.0"}, ""},
		{sbom.Component{Ecosystem: sbom.Go, Name: "example.com/unrated", Version: "v1.4.1"}, "GO-2099-0001 fixed "},
		{sbom.Component{Ecosystem: sbom.Go, Name: "example.com/unrated", Version: "v1.4.2"}, ""},
		{sbom.Component{Ecosystem: sbom.Go, Name: "example.com/unrated", Version: "v1.1.9"}, ""},
		{sbom.Component{Ecosystem: sbom.NPM, Name: "lodash", Version: "4.17.20"}, "GHSA-35jh-r3h4-6jhm fixed 4.17.21"},
		{sbom.Component{Ecosystem: sbom.NPM, Name: "lodash", Version: "4.17.21"}, ""},
		{sbom.Component{Ecosystem: sbom.PyPI, Name: "django", Version: "3.2.0"}, "GHSA-qm57-vhq3-3fwj fixed 3.2.1"},
		{sbom.Component{Ecosystem: sbom.PyPI, Name: "django", Version: "3.1.10"}, ""},
		{sbom.Component{Ecosystem: sbom.PyPI, Name: "django", Version: "3.1"}, "GHSA-qm57-vhq3-3fwj fixed "},
		{sbom.Component{Ecosystem: sbom.Maven, Name: "org.apache.logging.log4j:log4j-core", Version: "2.14.1"}, "GHSA-jfh8-c2jp-5v3q fixed 2.15.0"},
		{sbom.Component{Ecosystem: sbom.Maven, Name: "org.apache.logging.log4j:log4j-core", Version: "2.3"}, "GHSA-jfh8-c2jp-5v3q fixed 2.3.1"},
		{sbom.Component{Ecosystem: sbom.Maven, Name: "org.apache.logging.log4j:log4j-core", Version: "2.10.0"}, ""},
		{sbom.Component{Ecosystem: sbom.Cargo, Name: "smallvec", Version: "1.6.0"}, "RUSTSEC-2021-0003 fixed 1.6.1"},
		{sbom.Component{Ecosystem: sbom.Cargo, Name: "smallvec", Version: "0.7.0"}, ""},
		{sbom.Component{Ecosystem: sbom.Cargo, Name: "smallvec"}, ""},
	}
	for _, c := range cases {
		ms, err := db.Match(c.c)
		if err != nil {
			t.Errorf("%+v: %v", c.c, err)
			continue
		}
		var got []string
		for _, m := range ms {
			got = append(got, m.Record.ID+" fixed "+m.Fixed)
		}
		if g := strings.Join(got, ", "); g != c.want {
			t.Errorf("%s@%s: got %q, want %q", c.c.Name, c.c.Version, g, c.want)
		}
	}
}

func TestLoadReadsAllZipLikeADirectory(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("testdata/osv/*/*.json")
	zp := filepath.Join(t.TempDir(), "all.zip")
	f, err := os.Create(zp)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for _, p := range files {
		b, _ := os.ReadFile(p)
		w, _ := zw.Create(filepath.Base(p))
		w.Write(b)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	fromZip, err := Load(zp)
	if err != nil {
		t.Fatal(err)
	}
	fromDir, err := Load("testdata/osv")
	if err != nil {
		t.Fatal(err)
	}
	if fromZip.Records != fromDir.Records || fromDir.Records != len(files)-1 {
		t.Errorf("zip %d records, directory %d, want %d (the withdrawn one left out)", fromZip.Records, fromDir.Records, len(files)-1)
	}
	var c Cache
	a, _ := c.Get("testdata/osv")
	b, _ := c.Get("testdata/osv")
	if a != b {
		t.Error("the cache loaded an unchanged database twice")
	}
	if _, err := Load("testdata/nonexistent"); err == nil || !strings.Contains(err.Error(), "all.zip") {
		t.Errorf("a missing database: %v, want advice on where to get one", err)
	}
	if _, err := Load("testdata/bad"); !errors.Is(err, ErrRecord) {
		t.Errorf("a bad record: %v", err)
	}
}

func TestFindingsCarryTheRating(t *testing.T) {
	t.Parallel()
	db, err := Load("testdata/osv")
	if err != nil {
		t.Fatal(err)
	}
	fs, err := Findings(db, []sbom.Component{
		{Ecosystem: sbom.Go, Name: "golang.org/x/text", Version: "v0.3.7", File: "go.mod"},
		{Ecosystem: sbom.Go, Name: "example.com/unrated", Version: "v1.3.0", File: "go.mod"},
		{Ecosystem: sbom.Cargo, Name: "smallvec", Version: "1.6.0", File: "Cargo.lock"},
	}, gate.Medium)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fs {
		got = append(got, f.Rule+" "+f.Severity+" "+f.Package+"@"+f.Version+" "+f.File+": "+f.Message)
	}
	golden(t, "testdata/findings.golden", strings.Join(got, "\n")+"\n")
}

func FuzzParseRecord(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*/*.json")
	bad, _ := filepath.Glob("testdata/bad/*.json")
	for _, p := range append(files, bad...) {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRecord("r.json", b)
		if err != nil {
			if !errors.Is(err, ErrRecord) {
				t.Fatalf("error does not wrap ErrRecord: %v", err)
			}
			return
		}
		for i := range r.Affected {
			r.Rating(&r.Affected[i], gate.High)
			affects(&r.Affected[i], ecosystemBase(r.Affected[i].Package.Ecosystem), "1.0.0")
		}
	})
}
