package workspace

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReportsBounded: files past the stage's limit are left out and named in the note; the
// ones that fit are kept.
func TestReportsBounded(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	for name, size := range map[string]int{"a.xml": 6, "b.xml": 6, "c.xml": 3} {
		if err := os.WriteFile(filepath.Join(ws, name), []byte(strings.Repeat("x", size)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, note := Reports(ws, []string{"*.xml"}, 10)
	if len(got) != 2 || got[0].Path != "a.xml" || got[1].Path != "c.xml" {
		t.Errorf("reports %+v", got)
	}
	if !strings.Contains(note, "report b.xml left out: its 6 bytes would pass the stage's limit of 10 bytes") {
		t.Errorf("note %q", note)
	}
}
