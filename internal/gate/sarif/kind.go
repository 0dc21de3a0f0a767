package sarif

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/paved/paved/internal/gate"
)

// DefaultFiles are the globs gate/sarif reads without with: files.
var DefaultFiles = []string{"**/*.sarif", "**/*.sarif.json"}

// Kind is gate/sarif's scanner: every file the with: files globs match in the workspace
// (the checkout plus upstream artifacts, where a scanning stage's report arrives).
// Matching nothing is an error: a gate that ingests nothing would pass for the wrong reason.
func Kind() gate.ScanFunc {
	return func(ctx context.Context, in gate.Input) (gate.Output, error) {
		globs := in.With["files"]
		if len(globs) == 0 {
			globs = DefaultFiles
		}
		fsys := os.DirFS(in.Dir)
		var files []string
		for _, g := range globs {
			if !doublestar.ValidatePattern(g) {
				return gate.Output{}, fmt.Errorf("%w: files: %q is not a valid glob", gate.ErrOption, g)
			}
			m, err := doublestar.Glob(fsys, g, doublestar.WithFilesOnly())
			if err != nil {
				return gate.Output{}, err
			}
			files = append(files, m...)
		}
		slices.Sort(files)
		files = slices.Compact(files)
		if len(files) == 0 {
			return gate.Output{}, fmt.Errorf("sarif: no file matches %q: list the report under artifacts: of the stage that writes it and add that stage to this one's needs", globs)
		}
		var out gate.Output
		for _, f := range files {
			if ctx.Err() != nil {
				return gate.Output{}, ctx.Err()
			}
			b, err := os.ReadFile(filepath.Join(in.Dir, filepath.FromSlash(f)))
			if err != nil {
				return gate.Output{}, err
			}
			l, err := Parse(f, b)
			if err != nil {
				return gate.Output{}, err
			}
			fs, c := l.Findings(f)
			in.Log(fmt.Sprintf("%s: %s, %d error, %d warning, %d note, %d none, %d suppressed", f, tools(l), c.Error, c.Warning, c.Note, c.None, c.Suppressed))
			out.Findings = append(out.Findings, fs...)
			out.Suppressed += c.Suppressed
		}
		return out, nil
	}
}

func tools(l *Log) string {
	var names []string
	for _, r := range l.Runs {
		names = append(names, r.Tool.Driver.Name)
	}
	if len(names) == 0 {
		return "no runs"
	}
	return fmt.Sprint(names)
}
