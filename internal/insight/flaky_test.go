package insight

import (
	"fmt"
	"testing"
	"time"
)

// suite runs a test suite of three tests n times on its own commit each, at one-hour steps
// from start: "stable" always passes, "broken" always fails, "order" fails on every run
// where fail(i) says so.
func suite(start time.Time, n int, fail func(i int) bool) []TestOutcome {
	var out []TestOutcome
	for i := range n {
		at := start.Add(time.Duration(i) * time.Hour)
		sha := fmt.Sprintf("%040x", start.Unix()+int64(i))
		mk := func(test, status string) TestOutcome {
			return TestOutcome{Repo: "a/shop", Pipeline: "shop", Stage: "test", Test: test, SHA: sha, RunID: fmt.Sprint(i),
				Status: status, DurationMS: 1200, At: at}
		}
		order := "passed"
		if fail(i) {
			order = "failed"
		}
		out = append(out, mk("shop.stable", "passed"), mk("shop.broken", "errored"), mk("shop.order", order), mk("shop.gpu", "skipped"))
	}
	return out
}

func TestFlakyByRateThenReleasedByACleanWindow(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	// Week 1: 100 runs, "order" fails deterministically on every 20th (5% > 3%).
	hist := suite(t0, 100, func(i int) bool { return i%20 == 7 })
	now := t0.Add(100 * time.Hour)
	got := DetectFlaky(hist, now, FlakyConfig{})
	if len(got) != 1 {
		t.Fatalf("flaky %+v, want only shop.order", got)
	}
	f := got[0]
	if f.Test != "shop.order" || f.Runs != 100 || f.Failures != 5 || f.Rate != 0.05 || f.WastedMS != 5*1200 ||
		f.Reason != "failure rate 5.7% over 7 days" /* 5 of the 88 runs up to its last failure */ || !f.LastFail.Equal(t0.Add(87*time.Hour)) {
		t.Errorf("flaky %+v", f)
	}
	// Below the threshold (2 in 100, never above 3% as of either failure) it is not flaky; too few runs are no evidence.
	if got := DetectFlaky(suite(t0, 100, func(i int) bool { return i%50 == 40 }), now, FlakyConfig{}); len(got) != 0 {
		t.Errorf("2%% is flaky: %+v", got)
	}
	if got := DetectFlaky(suite(t0, 10, func(i int) bool { return i == 3 }), now, FlakyConfig{}); len(got) != 0 {
		t.Errorf("10 runs are evidence: %+v", got)
	}
	// Week 2 and after: 200 clean runs. Once the last failure is out of the window, released.
	hist = append(hist, suite(t0.Add(100*time.Hour), 200, func(int) bool { return false })...)
	if got := DetectFlaky(hist, t0.Add(87*time.Hour+7*24*time.Hour-time.Minute), FlakyConfig{}); len(got) != 1 {
		t.Errorf("released before its last failure left the window: %+v", got)
	}
	if got := DetectFlaky(hist, t0.Add(87*time.Hour+7*24*time.Hour+time.Minute), FlakyConfig{}); len(got) != 0 {
		t.Errorf("still quarantined after a clean window: %+v", got)
	}
}

func TestFlakyByAFailureAndAPassOnOneCommit(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	hist := suite(t0, 3, func(int) bool { return false })
	retry := hist[2*4+2] // "order" on run 2, re-run on the same commit and failing
	retry.Status, retry.RunID, retry.At = "failed", "2-retry", retry.At.Add(time.Minute)
	hist = append(hist, retry)
	got := DetectFlaky(hist, t0.Add(5*time.Hour), FlakyConfig{})
	if len(got) != 1 || got[0].Test != "shop.order" || got[0].Reason != "failed and passed on commit "+retry.SHA {
		t.Fatalf("flaky %+v", got)
	}
}
