package deploy_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/paved/paved/internal/deploy"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// startPrometheus runs Debian's prometheus, scraping target every 200ms, and returns its URL.
func startPrometheus(t *testing.T, target string) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus is not installed (make deps installs Debian's package as root)")
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf("global: {scrape_interval: 200ms, evaluation_interval: 1s}\nscrape_configs:\n  - job_name: paved\n    static_configs: [{targets: [%q]}]\n", target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	url := "http://" + addr
	waitFor(t, func() bool {
		resp, err := http.Get(url + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return url
}

// TestPrometheusSource: the analysis reads the canary's and baseline's metrics from a real
// Prometheus scraping the controller's exported metrics, and rolls the bad version back.
func TestPrometheusSource(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	reg := prometheus.NewRegistry()
	reg.MustRegister(h.c)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	promURL := startPrometheus(t, srv.Listener.Addr().String())

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
