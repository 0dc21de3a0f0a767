package schedule

import (
	"fmt"
	"strings"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/paved/paved/internal/execute"
	"github.com/paved/paved/internal/insight/coverage"
	"github.com/paved/paved/internal/pipeline"
	"github.com/paved/paved/internal/run"
)

// reportGlobs is what the executor reads after a stage's steps: its JUnit and its coverage
// reports, in one list (the executor does not care which is which).
func reportGlobs(r *pipeline.Reports) []string {
	if r == nil {
		return nil
	}
	var out []string
	for _, g := range []string{r.JUnit, r.Coverage} {
		if g != "" {
			out = append(out, g)
		}
	}
	return out
}

// splitReports separates the coverage files (those matching reports.coverage) from the
// JUnit ones, and gives back the job and result testsReported expects: JUnit only.
func splitReports(r *pipeline.Reports, job execute.Job, res execute.Result) (execute.Job, execute.Result, []execute.Report) {
	if r == nil || r.Coverage == "" {
		return job, res, nil
	}
	var junit, cov []execute.Report
	for _, f := range res.Reports {
		if ok, _ := doublestar.Match(r.Coverage, f.Path); ok && !(r.JUnit != "" && matches(r.JUnit, f.Path)) {
			cov = append(cov, f)
		} else {
			junit = append(junit, f)
		}
	}
	job.Reports = nil
	if r.JUnit != "" {
		job.Reports = []string{r.JUnit}
	}
	res.Reports = junit
	return job, res, cov
}

func matches(glob, path string) bool {
	ok, _ := doublestar.Match(glob, path)
	return ok
}

// coverageReported sums a stage's coverage reports into its CoverageReported payload; nil
// when there are none. Like test reports, a file that does not parse is said, never fatal.
func coverageReported(files []execute.Report, declared bool, log func(string)) *run.Coverage {
	if !declared {
		return nil
	}
	c := &run.Coverage{Files: []string{}}
	var reps []coverage.Report
	var notes []string
	for _, f := range files {
		r, err := coverage.Parse(f.Path, f.Data)
		if err != nil {
			notes = append(notes, err.Error())
			continue
		}
		c.Files = append(c.Files, f.Path)
		reps = append(reps, r)
	}
	if len(files) == 0 {
		notes = append(notes, "no file matched reports.coverage")
	}
	m := coverage.Merge(reps)
	c.Format, c.Covered, c.Total, c.Percent = m.Format, m.Covered, m.Total, m.Percent()
	c.Note = strings.Join(notes, "; ")
	if c.Note != "" {
		log("paved: coverage reports: " + c.Note)
	}
	if len(c.Files) > 0 {
		log(fmt.Sprintf("paved: coverage %.1f%% (%d of %d, %s: %s)", c.Percent, c.Covered, c.Total, c.Format, strings.Join(c.Files, ", ")))
	}
	return c
}
