package pipeline

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The reference must not drift from the code: every full example in docs/pipeline.md (a
// yaml block with a top-level stages:) compiles.
func TestDocExamplesCompile(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "pipeline.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(doc, -1)
	n := 0
	for _, b := range blocks {
		src := b[1]
		if !regexp.MustCompile(`(?m)^stages:`).Match(src) {
			continue
		}
		n++
		if _, err := Compile("pipeline.md", src, Options{Kinds: testKinds}); err != nil {
			first, _, _ := strings.Cut(string(src), "\n")
			t.Errorf("example starting %q:\n%v", first, err)
		}
	}
	if n < 10 {
		t.Errorf("found %d examples; the pattern no longer matches the document", n)
	}
}
