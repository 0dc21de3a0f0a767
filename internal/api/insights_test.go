package api_test

import (
	"testing"
)

func TestInsightRuns(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.repo("acme/app", "stages:\n  build: {steps: [echo built]}\n  test: {needs: [build], steps: [exit 3]}\n")
	var created struct{ ID string }
	for range 2 {
		e.do("POST", "/api/v1/runs", map[string]string{"repo": "acme/app", "ref": "main"}, 201, &created)
		e.waitDone(created.ID)
	}
	var got struct {
		Report struct {
			Runs struct {
				Total       int
				FailureRate float64 `json:"failure_rate"`
			}
			Stages []struct {
				Name   string
				Runs   int
				Failed int
				Causes map[string]int
			}
			Failures map[string]int `json:"failures_by_cause"`
		}
	}
	e.do("GET", "/api/v1/insights/runs?since=1h&repo=acme/app", nil, 200, &got)
	r := got.Report
	if r.Runs.Total != 2 || r.Runs.FailureRate != 1 || r.Failures["test_failure"] != 2 || len(r.Stages) != 2 ||
		r.Stages[1].Name != "test" || r.Stages[1].Failed != 2 || r.Stages[0].Failed != 0 {
		t.Fatalf("report %+v", r)
	}
	e.do("GET", "/api/v1/insights/runs?repo=other/app", nil, 200, &got)
	if got.Report.Runs.Total != 0 {
		t.Fatalf("another repo's runs: %+v", got.Report.Runs)
	}
	for _, bad := range []string{"since=yesterday", "since=-1h", "since=1h&until=2h"} {
		e.do("GET", "/api/v1/insights/runs?"+bad, nil, 400, nil)
	}
}

func TestLogSearch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.repo("acme/app", "stages:\n  build: {steps: [\"echo compiling widgets\\necho linking gadgets\"]}\n")
	var created struct{ ID string }
	e.do("POST", "/api/v1/runs", map[string]string{"repo": "acme/app", "ref": "main"}, 201, &created)
	e.waitDone(created.ID)
	var got struct {
		Lines []struct {
			RunID string `json:"run_id"`
			Stage string
			Text  string
		}
	}
	e.do("GET", "/api/v1/logs/search?q=gadgets&repo=acme/app", nil, 200, &got)
	if len(got.Lines) != 1 || got.Lines[0].Text != "linking gadgets" || got.Lines[0].RunID != created.ID || got.Lines[0].Stage != "build" {
		t.Fatalf("search: %+v", got)
	}
	e.do("GET", "/api/v1/logs/search?q=gadgets&team=other", nil, 200, &got)
	if len(got.Lines) != 0 {
		t.Fatalf("another team's search found %+v", got)
	}
	for _, bad := range []string{"q=", "q=x&limit=0", "q=x&since=today"} {
		e.do("GET", "/api/v1/logs/search?"+bad, nil, 400, nil)
	}
}

func TestInsightTests(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	report := `<testsuite name=\"unit\"><testcase classname=\"pkg\" name=\"TestA\" time=\"0.5\"/><testcase classname=\"pkg\" name=\"TestB\" time=\"1\"><failure message=\"x\"/></testcase></testsuite>`
	e.repo("acme/app", "stages:\n  test:\n    steps: [\"artifact out/unit.xml "+report+"\\nexit 1\"]\n    reports: {junit: out/*.xml}\n")
	var created struct{ ID string }
	e.do("POST", "/api/v1/runs", map[string]string{"repo": "acme/app", "ref": "main"}, 201, &created)
	e.waitDone(created.ID)
	var got struct {
		Tests []struct {
			Test       string
			Runs       int
			Failed     int
			LastStatus string `json:"last_status"`
			MeanMS     int64  `json:"mean_ms"`
		}
		Flaky []any
	}
	e.do("GET", "/api/v1/insights/tests?repo=acme/app&stage=test", nil, 200, &got)
	if len(got.Tests) != 2 || got.Tests[0].Test != "pkg.TestB" || got.Tests[0].Failed != 1 || got.Tests[0].MeanMS != 1000 ||
		got.Tests[1].Test != "pkg.TestA" || got.Tests[1].LastStatus != "passed" || got.Flaky == nil || len(got.Flaky) != 0 {
		t.Fatalf("tests %+v", got)
	}
	e.do("GET", "/api/v1/insights/tests?repo=acme/app&stage=other", nil, 200, &got)
	if len(got.Tests) != 0 {
		t.Fatalf("another stage's tests: %+v", got.Tests)
	}
}

func TestInsightCost(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.repo("acme/app", "stages:\n  build: {steps: [\"use 72s 1048576\"]}\n")
	var created struct{ ID string }
	e.do("POST", "/api/v1/runs", map[string]string{"repo": "acme/app", "ref": "main"}, 201, &created)
	e.waitDone(created.ID)
	var got struct {
		Price float64 `json:"cpu_hour_price"`
		Total struct {
			Runs       int
			CPUSeconds float64 `json:"cpu_seconds"`
			MaxRSS     int64   `json:"max_rss_bytes"`
			Cost       float64
		}
		Runs []struct{ ID string }
	}
	e.do("GET", "/api/v1/insights/cost?repo=acme/app&since=1h", nil, 200, &got)
	// 72 s is 0.02 CPU-hours, at the default 0.05 a CPU-hour.
	if got.Price != 0.05 || got.Total.Runs != 1 || got.Total.CPUSeconds != 72 || got.Total.MaxRSS != 1<<20 || got.Total.Cost != 0.001 ||
		len(got.Runs) != 1 || got.Runs[0].ID != created.ID {
		t.Fatalf("cost %+v", got)
	}
	e.do("GET", "/api/v1/insights/cost?since=never", nil, 400, nil)
}
