package schedule

import (
	"strings"
	"testing"

	"github.com/paved/paved/internal/execute"
	"github.com/paved/paved/internal/pipeline"
)

func TestCoverageReportsApartFromJUnit(t *testing.T) {
	t.Parallel()
	reports := &pipeline.Reports{JUnit: "out/*.xml", Coverage: "out/cover.*"}
	job := execute.Job{Reports: reportGlobs(reports)}
	if len(job.Reports) != 2 {
		t.Fatalf("globs %v", job.Reports)
	}
	res := execute.Result{Reports: []execute.Report{
		{Path: "out/a.xml", Data: []byte(`<testsuite tests="1"><testcase name="x"/></testsuite>`)},
		{Path: "out/cover.out", Data: []byte("mode: set\na.go:1.1,2.2 3 1\na.go:3.1,4.2 1 0\n")},
		{Path: "out/cover.info", Data: []byte("not a report")},
	}}
	jj, jr, cov := splitReports(reports, job, res)
	if len(jj.Reports) != 1 || len(jr.Reports) != 1 || len(cov) != 2 {
		t.Fatalf("split: %v %v %v", jj.Reports, jr.Reports, cov)
	}
	var logged []string
	c := coverageReported(cov, true, func(l string) { logged = append(logged, l) })
	if c.Percent != 75 || c.Format != "go" || len(c.Files) != 1 || !strings.Contains(c.Note, "out/cover.info") {
		t.Errorf("coverage %+v", c)
	}
	if tests := testsReported(jj, jr, func(string) {}); tests == nil || tests.Passed != 1 {
		t.Errorf("tests %+v", tests)
	}
	if c := coverageReported(nil, true, func(string) {}); c == nil || c.Note != "no file matched reports.coverage" {
		t.Errorf("no files: %+v", c)
	}
	if c := coverageReported(nil, false, func(string) {}); c != nil {
		t.Errorf("undeclared: %+v", c)
	}
}
