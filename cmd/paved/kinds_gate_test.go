package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/paved/paved/internal/gate/secrets"
	"github.com/paved/paved/internal/pipeline"
)

// TestGatesDocExamples keeps docs/gates.md honest: every YAML example compiles with the
// gate kinds and with: keys this binary declares (or, for the baseline, parses).
func TestGatesDocExamples(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/gates.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
	if len(blocks) < 3 {
		t.Fatalf("only %d YAML examples in docs/gates.md", len(blocks))
	}
	for i, b := range blocks {
		src := b[1]
		switch {
		case strings.HasPrefix(src, "suppressions:"):
			if _, err := secrets.ParseBaseline("gates.md", []byte(src)); err != nil {
				t.Errorf("example %d: %v", i+1, err)
			}
			continue
		case !strings.HasPrefix(src, "stages:"):
			src = "stages:\n" + src // a fragment of stages
		}
		opt := compileOptions()
		if !slices.Contains(opt.Kinds, "deploy") {
			opt.Kinds = append(opt.Kinds, "deploy") // the examples deploy; the deploy kind is another part's
		}
		if _, err := pipeline.Compile("gates.md", []byte(src), opt); err != nil {
			t.Errorf("example %d does not compile:\n%v\n%s", i+1, err, src)
		}
	}
}
