package deploy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/paved/paved/internal/deploy"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// TestCanaryRollsBackBadVersion: a version failing 20% of requests is cut off by the first
// failing analysis, to 0% canary traffic in well under a second; the requests that failed
// meanwhile are bounded by the canary's share; the environment keeps serving v1.
func TestCanaryRollsBackBadVersion(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	spec := fastSpec("prod", deploy.Canary, 3)
	if _, out := h.deploy(spec, v1); out != store.DeploymentSucceeded {
		t.Fatalf("first deployment %s", out)
	}
	// Enough samples that 20% errors cannot look like less than 5% by chance.
	spec.Analysis.MinSamples = 40
	l := startLoad(h.url("prod"), 400, 8)
	rec, out := h.deploy(spec, vErr20)
	l.stop()
	if out != store.DeploymentRolledBack {
		t.Fatalf("outcome %s, want rolled_back\n%s", out, rec.text())
	}
	rb := rec.find(run.RollbackStarted)
	if len(rb) != 1 {
		t.Fatalf("%d RollbackStarted events", len(rb))
	}
	d := rb[0].Deployment
	if d.RollbackMS >= 1000 || d.Weights["canary"] != 0 {
		t.Errorf("rollback took %.3f ms to weights %v", d.RollbackMS, d.Weights)
	}
	var errRate *run.MetricValue
	for i, m := range d.Analysis.Metrics {
		if m.Name == "error_rate" {
			errRate = &d.Analysis.Metrics[i]
		}
	}
	// On a loaded machine the fresh canary may also fail on latency; its error rate is
	// what must show.
	if errRate == nil || errRate.Value < 0.05 || errRate.Threshold != 0.001 {
		t.Errorf("deciding error_rate %+v in %+v", errRate, d.Analysis)
	}
	// The canary had 25% of the traffic and fails 20% of it: about 5% of the requests.
	total, failed := l.total(), l.failed.Load()+l.lost.Load()
	t.Logf("%d of %d requests failed during the canary; cut off %.3f ms after the failing analysis", failed, total, d.RollbackMS)
	if total < 100 || float64(failed) > 0.25*float64(total) {
		t.Errorf("%d of %d requests failed; want at most the canary's share (25%%)", failed, total)
	}
	st, _ := h.c.Status("prod")
	if len(st.Pools) != 1 || st.Pools[0].Name != "stable" || st.Stable.Version != digestVersion(v1) {
		t.Errorf("after rollback: pools %+v, stable %+v", st.Pools, st.Stable)
	}
	// And no request fails any more.
	l = startLoad(h.url("prod"), 200, 4)
	waitFor(t, func() bool { return l.total() >= 50 })
	l.stop()
	if n := l.failed.Load() + l.lost.Load(); n != 0 {
		t.Errorf("%d requests failed after the rollback", n)
	}
}

// TestCanaryPromotesHealthyVersion: a good version passes every step and serves 100%.
func TestCanaryPromotesHealthyVersion(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	spec := fastSpec("prod", deploy.Canary, 2)
	h.deployOK(spec, v1)
	l := startLoad(h.url("prod"), 400, 8)
	rec, out := h.deploy(spec, v2)
	l.stop()
	if out != store.DeploymentSucceeded {
		t.Fatalf("outcome %s\n%s", out, rec.text())
	}
	if got := len(rec.find(run.DeploymentStepAdvanced)); got != 3 {
		t.Errorf("%d steps, want 3 (25, 50, 100)", got)
	}
	if n := l.failed.Load() + l.lost.Load(); n != 0 {
		t.Errorf("%d requests failed during a healthy canary", n)
	}
	st, _ := h.c.Status("prod")
	if st.Stable.Version != digestVersion(v2) || len(st.Pools) != 1 || len(st.Pools[0].Replicas) != 2 || st.Pools[0].Weight != 100 {
		t.Errorf("after promotion: stable %s, pools %+v", st.Stable.Version, st.Pools)
	}
}

// TestCanaryInconclusivePauses: without traffic the analysis cannot judge: the deployment
// pauses, and when the pause outlasts inconclusive_timeout it rolls back, never promoting.
func TestCanaryInconclusivePauses(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	spec := fastSpec("quiet", deploy.Canary, 1)
	h.deployOK(spec, v1)
	spec.Analysis.InconclusiveTimeout = 600 * time.Millisecond
	rec, out := h.deploy(spec, v2)
	if out != store.DeploymentRolledBack {
		t.Fatalf("outcome %s, want rolled_back\n%s", out, rec.text())
	}
	paused := false
	for _, e := range rec.find(run.AnalysisRun) {
		if e.Deployment.Phase == "paused" && e.Deployment.Analysis.Outcome == run.AnalysisInconclusive {
			paused = true
		}
		if e.Deployment.Analysis.Outcome == run.AnalysisPass {
			t.Errorf("a measurement passed without traffic: %+v", e.Deployment.Analysis)
		}
	}
	if !paused {
		t.Errorf("no paused, inconclusive AnalysisRun\n%s", rec.text())
	}
	for _, e := range rec.find(run.DeploymentStepAdvanced) {
		if e.Deployment.Step > 1 {
			t.Errorf("advanced to step %d on no data", e.Deployment.Step)
		}
	}
	rb := rec.find(run.RollbackStarted)
	if len(rb) != 1 || !strings.Contains(rb[0].Deployment.Reason, "not promoting on no data") {
		t.Errorf("rollback events %+v", rb)
	}
}

// TestRollingZeroLoss: a rolling update of 3 replicas under load loses no request.
func TestRollingZeroLoss(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	spec := fastSpec("web", deploy.Rolling, 3)
	spec.MaxSurge = "1"
	h.deployOK(spec, v1)
	l := startLoad(h.url("web"), 300, 6)
	waitFor(t, func() bool { return l.total() >= 100 })
	rec, out := h.deploy(spec, v2)
	waitFor(t, func() bool { return countVersion(l, v2) >= 100 })
	l.stop()
	if out != store.DeploymentSucceeded {
		t.Fatalf("outcome %s\n%s", out, rec.text())
	}
	if n := l.failed.Load() + l.lost.Load(); n != 0 || l.ok.Load() < 100 {
		t.Errorf("%d failed, %d lost of %d requests", l.failed.Load(), l.lost.Load(), l.total())
	}
	if got := len(rec.find(run.DeploymentStepAdvanced)); got != 3 {
		t.Errorf("%d batches, want 3 (max_surge 1)", got)
	}
}

// TestBlueGreenZeroLoss: a blue-green switch of 3 replicas under load loses no request and
// keeps blue warm; a rollback then switches back to it.
func TestBlueGreenZeroLoss(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	spec := fastSpec("bg", deploy.BlueGreen, 3)
	h.deployOK(spec, v1)
	l := startLoad(h.url("bg"), 300, 6)
	waitFor(t, func() bool { return l.total() >= 100 })
	rec, out := h.deploy(spec, v2)
	waitFor(t, func() bool { return countVersion(l, v2) >= 100 })
	l.stop()
	if out != store.DeploymentSucceeded {
		t.Fatalf("outcome %s\n%s", out, rec.text())
	}
	if n := l.failed.Load() + l.lost.Load(); n != 0 || l.ok.Load() < 100 {
		t.Errorf("%d failed, %d lost of %d requests", l.failed.Load(), l.lost.Load(), l.total())
	}
	st, _ := h.c.Status("bg")
	if st.Warm != digestVersion(v1) {
		t.Errorf("warm %q, want %s", st.Warm, digestVersion(v1))
	}
	if !strings.Contains(rec.text(), "preview") {
		t.Errorf("no preview in the log:\n%s", rec.text())
	}
	// Rolling back within keep_warm switches to blue's replicas: no process starts.
	rb := &recorder{}
	d, err := h.c.Rollback(t.Context(), deploy.RollbackParams{Environment: "bg"}, rb)
	if err != nil || d.Outcome != store.DeploymentSucceeded {
		t.Fatalf("rollback: %+v, %v\n%s", d, err, rb.text())
	}
	if !strings.Contains(rb.text(), "kept warm") {
		t.Errorf("rollback did not switch to the warm release:\n%s", rb.text())
	}
	if body := get(t, h.url("bg")+"/"); !strings.Contains(body, v1) {
		t.Errorf("after rollback: %q", body)
	}
	if st, _ := h.c.Status("bg"); st.Warm != digestVersion(v2) {
		t.Errorf("warm after rollback %q, want %s", st.Warm, digestVersion(v2))
	}
}

// TestRollingNotReadyRollsBack: a version that never becomes ready is rolled back and the
// environment keeps serving the old one.
func TestRollingNotReadyRollsBack(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	spec := fastSpec("crashy", deploy.Rolling, 2)
	h.deployOK(spec, v1)
	spec.ReadinessTimeout = time.Second
	rec, out := h.deploy(spec, vCrash)
	if out != store.DeploymentRolledBack {
		t.Fatalf("outcome %s\n%s", out, rec.text())
	}
	if rb := rec.find(run.RollbackStarted); len(rb) != 1 || !strings.Contains(rb[0].Deployment.Reason, "readiness_timeout") {
		t.Errorf("rollback %+v", rb)
	}
	st, _ := h.c.Status("crashy")
	if st.Stable.Version != digestVersion(v1) || len(st.Pools[0].Replicas) != 2 {
		t.Errorf("after rollback: %+v", st)
	}
}

// TestRestartRestoresAndRollback: a new controller over the same store and directory
// brings the environment back at the same address with its last successful deployment;
// Rollback redeploys the one before.
func TestRestartRestoresAndRollback(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	spec := fastSpec("svc", deploy.Rolling, 1)
	first, _ := h.c.Deploy(t.Context(), deploy.Request{Spec: spec, Artifact: digests[v1], TriggeredBy: "test"}, nil)
	h.deploy(spec, v2)
	url := h.url("svc")
	h.c.Stop()
	h.start()
	waitFor(t, func() bool {
		st, err := h.c.Status("svc")
		return err == nil && st.Stable != nil && len(st.Pools) == 1
	})
	if got := h.url("svc"); got != url {
		t.Errorf("restored at %s, was %s", got, url)
	}
	if body := get(t, url+"/"); !strings.Contains(body, v2) {
		t.Errorf("after restart it serves %q, want %s", body, v2)
	}
	d, err := h.c.Rollback(t.Context(), deploy.RollbackParams{Environment: "svc", By: "ana"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Outcome != store.DeploymentSucceeded || d.RollbackOf != first.ID || d.Artifact != digests[v1] {
		t.Errorf("rollback %+v", d)
	}
	if body := get(t, url+"/"); !strings.Contains(body, v1) {
		t.Errorf("after rollback it serves %q, want %s", body, v1)
	}
	list, _ := h.store.DeploymentList(t.Context(), store.DeploymentListParams{Environment: "svc"})
	if len(list) != 3 || list[0].TriggeredBy != "ana" {
		t.Errorf("history %+v", list)
	}
	if _, err := h.c.Rollback(t.Context(), deploy.RollbackParams{Environment: "nope"}, nil); err == nil {
		t.Error("rollback of an unknown environment: no error")
	}
}

// TestCanaryScalesWithItsShare: at 50% of 4 replicas the canary and the baseline run 2
// each; a healthy canary then takes all 4.
func TestCanaryScalesWithItsShare(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	spec := fastSpec("wide", deploy.Canary, 4)
	spec.Steps = []int{25, 50}
	h.deployOK(spec, v1)
	l := startLoad(h.url("wide"), 400, 8)
	rec, out := h.deploy(spec, v2)
	l.stop()
	if out != store.DeploymentSucceeded {
		t.Fatalf("outcome %s\n%s", out, rec.text())
	}
	for _, want := range []string{"canary 25% on 1 replica, baseline 25% on 1 replica", "canary 50% on 2 replicas, baseline 50% on 2 replicas"} {
		if !strings.Contains(rec.text(), want) {
			t.Errorf("log lacks %q:\n%s", want, rec.text())
		}
	}
	st, _ := h.c.Status("wide")
	if len(st.Pools) != 1 || len(st.Pools[0].Replicas) != 4 {
		t.Errorf("after promotion: %+v", st.Pools)
	}
	if n := l.failed.Load() + l.lost.Load(); n != 0 {
		t.Errorf("%d requests failed", n)
	}
}
