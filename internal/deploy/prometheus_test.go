package deploy_test

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/paved/paved/internal/deploy"
	"github.com/paved/paved/internal/deploy/promtest"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// TestPrometheusSource: the analysis reads the canary's and baseline's metrics from a real
// Prometheus scraping the controller's exported metrics, and rolls the bad version back.
func TestPrometheusSource(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	reg := prometheus.NewRegistry()
	reg.MustRegister(h.c)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	promURL := promtest.Start(t, srv.Listener.Addr().String())

	spec := fastSpec("promenv", deploy.Canary, 2)
	h.deploy(spec, v1)
	spec.Analysis.Source = "prometheus"
	spec.Analysis.Prometheus = &deploy.Prometheus{URL: promURL}
	spec.Analysis.Interval = time.Second
	spec.Analysis.MinSamples = 20
	l := startLoad(h.url("promenv"), 300, 6)
	rec, out := h.deploy(spec, vErr20)
	l.stop()
	if out != store.DeploymentRolledBack {
		t.Fatalf("outcome %s\n%s", out, rec.text())
	}
	rb := rec.find(run.RollbackStarted)
	if len(rb) != 1 {
		t.Fatalf("rollback events %+v", rb)
	}
	found := false
	for _, m := range rb[0].Deployment.Analysis.Metrics {
		if m.Name == "error_rate" && m.Outcome == run.AnalysisFail && m.Value > 0.05 && m.Value < 0.5 {
			found = true
		}
	}
	if !found {
		t.Errorf("deciding analysis %+v\n%s", rb[0].Deployment.Analysis, rec.text())
	}
}
