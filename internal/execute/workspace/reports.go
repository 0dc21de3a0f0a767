package workspace

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/paved/paved/internal/cache"
	"github.com/paved/paved/internal/execute"
)

// Reports reads the regular files the globs match in the workspace, sorted by path, at
// most limit bytes in all. Like artifacts, they are read through an os.Root and a symlink is
// never followed: a step must not get a host file read into the event log as a report.
// Nothing here fails the stage; what was left out is said in the note.
func Reports(ws string, globs []string, limit int64) ([]execute.Report, string) {
	if len(globs) == 0 {
		return nil, ""
	}
	root, err := os.OpenRoot(ws)
	if err != nil {
		return nil, "reports: " + err.Error()
	}
	defer root.Close()
	var notes []string
	var paths []string
	for _, g := range globs {
		found, err := cache.Glob(root, g)
		if err != nil {
			notes = append(notes, fmt.Sprintf("report %q: %v", g, err))
			continue
		}
		if len(found) == 0 {
			notes = append(notes, fmt.Sprintf("report %q matched nothing in the workspace", g))
		}
		paths = append(paths, found...)
	}
	slices.Sort(paths)
	paths = slices.Compact(paths)
	var out []execute.Report
	left := limit
	for _, p := range paths {
		fi, err := root.Lstat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue // a directory matched by ** or a symlink: not a report
		}
		if fi.Size() > left {
			notes = append(notes, fmt.Sprintf("report %s left out: its %d bytes would pass the stage's limit of %d bytes", p, fi.Size(), limit))
			continue
		}
		f, err := root.Open(p)
		if err != nil {
			notes = append(notes, fmt.Sprintf("report %s: %v", p, err))
			continue
		}
		// Read one byte past what is left: the file may have grown since Lstat.
		data, err := io.ReadAll(io.LimitReader(f, left+1))
		f.Close()
		switch {
		case err != nil:
			notes = append(notes, fmt.Sprintf("report %s: %v", p, err))
		case int64(len(data)) > left:
			notes = append(notes, fmt.Sprintf("report %s left out: over the stage's limit of %d bytes", p, limit))
		default:
			left -= int64(len(data))
			out = append(out, execute.Report{Path: p, Data: data})
		}
	}
	return out, strings.Join(notes, "; ")
}
