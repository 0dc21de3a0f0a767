package access_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paved/paved/internal/access"
)

// TestParseOIDCMappingGolden: each line of testdata/oidc-maps.txt parsed, against
// oidc-maps.golden.
func TestParseOIDCMappingGolden(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "oidc-maps.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for _, line := range strings.Split(strings.TrimRight(string(in), "\n"), "\n") {
		m, err := access.ParseOIDCMapping(line)
		fmt.Fprintf(&out, "%q -> group %q team %q role %v; %v\n", line, m.Group, m.Team, m.Role, err)
	}
	checkGolden(t, "ParseOIDCMapping", "oidc-maps.golden", out.String())
}

func FuzzParseOIDCMapping(f *testing.F) {
	in, _ := os.ReadFile(filepath.Join("testdata", "oidc-maps.txt"))
	for _, line := range strings.Split(string(in), "\n") {
		f.Add(line)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := access.ParseOIDCMapping(s)
		if err != nil {
			return
		}
		// A mapping that parses is written back as one that parses to itself.
		back, err := access.ParseOIDCMapping(m.Group + "=" + m.Team + ":" + m.Role.String())
		if err != nil || back != m {
			t.Errorf("ParseOIDCMapping(%q) = %+v, which written back parses to %+v, %v", s, m, back, err)
		}
		if m.Group == "" || access.ValidName("team", m.Team) != nil || m.Role < access.Viewer {
			t.Errorf("ParseOIDCMapping(%q) = %+v: an empty group, a bad team or no role", s, m)
		}
	})
}
