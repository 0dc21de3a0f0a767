package insight

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// TestOutcome is one test's result in one stage attempt (from a JUnit report).
type TestOutcome struct {
	Repo, Pipeline, Stage string
	Test                  string // junit.Case.ID(): class and name
	SHA                   string
	RunID                 string
	Status                string // passed, failed, errored, skipped
	DurationMS            int64
	At                    time.Time
}

func (o TestOutcome) failed() bool { return o.Status == "failed" || o.Status == "errored" }

// FlakyConfig says when a test is flaky. Zero fields take the defaults.
type FlakyConfig struct {
	// Window is how far back outcomes count. Default: 7 days.
	Window time.Duration
	// Threshold is the failure rate above which a test that also passes is flaky. Default: 0.03.
	Threshold float64
	// MinRuns is how many outcomes the rate needs before it can call a test flaky (a test
	// run twice that failed once is not evidence of 50%). Default: 20. A failure and a pass
	// on one commit need no minimum: that is flakiness by definition.
	MinRuns int
}

func (c FlakyConfig) withDefaults() FlakyConfig {
	if c.Window == 0 {
		c.Window = 7 * 24 * time.Hour
	}
	if c.Threshold == 0 {
		c.Threshold = 0.03
	}
	if c.MinRuns == 0 {
		c.MinRuns = 20
	}
	return c
}

// Flaky is a test found flaky in the window: it is quarantined (still run, its failures do
// not fail the stage) until a window passes with no evidence against it.
type Flaky struct {
	Repo     string `json:"repo"`
	Pipeline string `json:"pipeline"`
	Stage    string `json:"stage"`
	Test     string `json:"test"`
	// Reason is "failed and passed on commit <sha>" or "failure rate 4.0% over 7 days".
	Reason   string  `json:"reason"`
	Runs     int     `json:"runs"`
	Failures int     `json:"failures"`
	Rate     float64 `json:"flake_rate"`
	// WastedMS is the time spent in the test's failed attempts: what flakiness cost.
	WastedMS int64     `json:"wasted_ms"`
	LastFail time.Time `json:"last_failure"`
}

// DetectFlaky finds the flaky tests among outcomes as of now. It keeps no state of its own:
// a test is quarantined while one of its failures inside the window was, when it happened,
// the failure of a flaky test (judged on the window before it). So a test that turned flaky
// stays quarantined until a whole window has passed with no failure that still makes it
// flaky, and a clean window releases it by itself. A test that fails every time is broken,
// not flaky, and is never listed.
func DetectFlaky(outcomes []TestOutcome, now time.Time, cfg FlakyConfig) []Flaky {
	cfg = cfg.withDefaults()
	type key struct{ repo, pipeline, stage, test string }
	tests := map[key][]TestOutcome{}
	for _, o := range outcomes {
		// A failure at the window's start is judged on the window before it.
		if o.At.Before(now.Add(-2*cfg.Window)) || o.At.After(now) || o.Status == "skipped" {
			continue
		}
		k := key{o.Repo, o.Pipeline, o.Stage, o.Test}
		tests[k] = append(tests[k], o)
	}
	var out []Flaky
	for k, outs := range tests {
		slices.SortStableFunc(outs, func(a, b TestOutcome) int { return a.At.Compare(b.At) })
		reason := ""
		for _, o := range outs {
			if o.failed() && !o.At.Before(now.Add(-cfg.Window)) {
				if r := judge(outs, o.At.Add(-cfg.Window), o.At, cfg).reason; r != "" {
					reason = r // the latest evidence explains it best
				}
			}
		}
		if reason == "" {
			continue
		}
		w := judge(outs, now.Add(-cfg.Window), now, cfg)
		out = append(out, Flaky{Repo: k.repo, Pipeline: k.pipeline, Stage: k.stage, Test: k.test, Reason: reason,
			Runs: w.runs, Failures: w.fails, Rate: float64(w.fails) / float64(w.runs), WastedMS: w.wasted, LastFail: w.lastFail})
	}
	slices.SortFunc(out, func(a, b Flaky) int {
		return cmp.Or(cmp.Compare(b.Rate, a.Rate), cmp.Compare(a.Repo, b.Repo), cmp.Compare(a.Pipeline, b.Pipeline),
			cmp.Compare(a.Stage, b.Stage), cmp.Compare(a.Test, b.Test))
	})
	return out
}

// verdict is what one test's outcomes in [from, to] say.
type verdict struct {
	runs, fails, passes int
	wasted              int64
	lastFail            time.Time
	reason              string // why it is flaky; "" when it is not
}

func judge(outs []TestOutcome, from, to time.Time, cfg FlakyConfig) verdict {
	var v verdict
	bySHA := map[string][2]bool{} // failed, passed
	flip := ""
	for _, o := range outs {
		if o.At.Before(from) || o.At.After(to) {
			continue
		}
		v.runs++
		seen := bySHA[o.SHA]
		if o.failed() {
			v.fails++
			v.wasted += o.DurationMS
			v.lastFail = o.At
			seen[0] = true
		} else {
			v.passes++
			seen[1] = true
		}
		bySHA[o.SHA] = seen
		if o.SHA != "" && seen[0] && seen[1] && (flip == "" || o.SHA < flip) {
			flip = o.SHA
		}
	}
	rate := 0.0
	if v.runs > 0 {
		rate = float64(v.fails) / float64(v.runs)
	}
	switch {
	case v.fails == 0 || v.passes == 0:
	case flip != "":
		v.reason = "failed and passed on commit " + flip
	case v.runs >= cfg.MinRuns && rate > cfg.Threshold:
		v.reason = "failure rate " + formatPercent(rate) + " over " + formatWindow(cfg.Window)
	}
	return v
}

func formatPercent(r float64) string { return fmt.Sprintf("%.1f%%", r*100) }

func formatWindow(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		if n := int(d / (24 * time.Hour)); n != 1 {
			return fmt.Sprintf("%d days", n)
		}
		return "1 day"
	}
	return d.String()
}
