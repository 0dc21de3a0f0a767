package promote_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paved/paved/internal/promote"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestConfigGolden parses every testdata/config/*.yml and compares the result (or the
// error) with its .golden file.
func TestConfigGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/config/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, in := range files {
		t.Run(filepath.Base(in), func(t *testing.T) {
			t.Parallel()
			b, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			got := render(promote.ParseConfig(filepath.Base(in), b))
			golden := strings.TrimSuffix(in, ".yml") + ".golden"
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
				t.Errorf("%s:\n got: %s\nwant: %s", in, got, want)
			}
		})
	}
}

func render(c promote.Config, err error) string {
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	return string(b) + "\n"
}

func FuzzParseConfig(f *testing.F) {
	files, _ := filepath.Glob("testdata/config/*.yml")
	for _, in := range files {
		b, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := promote.ParseConfig("fuzz.yml", b)
		if err != nil {
			return
		}
		for i, e := range c.Environments {
			if e.Name == "" || e.AutoPromote == nil || (e.Approval.Mode != promote.ApprovalRisk && e.Approval.Mode != promote.ApprovalNone) {
				t.Fatalf("environment %d accepted half-checked: %+v", i, e)
			}
		}
	})
}

func TestRiskScore(t *testing.T) {
	t.Parallel()
	r := promote.DefaultRisk
	for _, c := range []struct {
		files []string
		known bool
		want  string
	}{
		{nil, false, promote.RiskMedium},
		{nil, true, promote.RiskLow},
		{[]string{"README.md", "docs/a/b.png"}, true, promote.RiskLow},
		{[]string{"README.md", "cmd/main.go"}, true, promote.RiskMedium},
		{[]string{"cmd/main.go", "migrations/0001.sql"}, true, promote.RiskHigh},
		{[]string{"internal/auth/token.go"}, true, promote.RiskHigh},
		{[]string{"infra/main.tf"}, true, promote.RiskHigh},
	} {
		if got, why := r.Score(c.files, c.known); got != c.want {
			t.Errorf("Score(%v, %v) = %s (%s), want %s", c.files, c.known, got, why, c.want)
		}
	}
}
