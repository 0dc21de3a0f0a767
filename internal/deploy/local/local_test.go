package local

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// The test binary doubles as the replicas' service: with PAVED_TEST_SERVE set it serves on
// $PORT instead of running tests. Modes: ok, crash, sick (healthz fails).
func TestMain(m *testing.M) {
	if mode := os.Getenv("PAVED_TEST_SERVE"); mode != "" {
		serve(mode)
		return
	}
	os.Exit(m.Run())
}

func serve(mode string) {
	if mode == "crash" {
		fmt.Fprintln(os.Stderr, "crashing on purpose")
		os.Exit(3)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, os.Getenv("NAME")) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(300 * time.Millisecond)
		fmt.Fprint(w, "slow done")
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if mode == "sick" {
			http.Error(w, "sick", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "ok")
	})
	_ = http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), mux)
}

func spec(t *testing.T, mode, name string) ReplicaSpec {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return ReplicaSpec{Binary: exe, Version: name, Env: []string{"PAVED_TEST_SERVE=" + mode, "NAME=" + name},
		Readiness: &Probe{Path: "/healthz", Period: 20 * time.Millisecond}, RestartBackoff: 20 * time.Millisecond, StopGrace: time.Second}
}

func start(t *testing.T, s ReplicaSpec, id string) *Replica {
	t.Helper()
	r, err := StartReplica(id, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Stop(0) })
	return r
}

func waitReady(t *testing.T, rs ...*Replica) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for _, r := range rs {
		if err := r.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func TestQuantile(t *testing.T) {
	t.Parallel()
	c := newCounter()
	for i := 1; i <= 1000; i++ {
		c.observe(200, time.Duration(i)*time.Millisecond)
	}
	c.observe(503, time.Millisecond)
	s := c.snapshot()
	for q, want := range map[float64]time.Duration{0.5: 500 * time.Millisecond, 0.99: 990 * time.Millisecond} {
		got := s.Quantile(q)
		if got < want*8/10 || got > want*12/10 {
			t.Errorf("q%.2f = %s, want about %s", q, got, want)
		}
	}
	if s.Requests != 1001 || s.Errors != 1 {
		t.Errorf("counts %d, %d", s.Requests, s.Errors)
	}
	w := c.snapshot().Sub(s)
	if w.Requests != 0 || w.Quantile(0.99) != 0 || w.ErrorRate() != 0 {
		t.Errorf("empty window %+v", w)
	}
}

// TestCrashedReplicaRestarts: a process that exits is restarted and counted; it is never
// ready, and WaitReady says why.
func TestCrashedReplicaRestarts(t *testing.T) {
	t.Parallel()
	r := start(t, spec(t, "crash", "c"), "c-1")
	deadline := time.Now().Add(10 * time.Second)
	for r.Restarts() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d restarts after 10s", r.Restarts())
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err := r.WaitReady(ctx)
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "crashing on purpose") {
		t.Errorf("WaitReady: %v", err)
	}
}

// TestLivenessRestarts: a failing liveness probe kills and restarts the process.
func TestLivenessRestarts(t *testing.T) {
	t.Parallel()
	s := spec(t, "sick", "s")
	s.Readiness = nil // ready when the port is open
	s.Liveness = &Probe{Path: "/healthz", Period: 20 * time.Millisecond, FailureThreshold: 2}
	r := start(t, s, "s-1")
	deadline := time.Now().Add(10 * time.Second)
	for r.Restarts() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no restart after 10s of failing liveness")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := r.Status(); !strings.Contains(st.LastExit, "liveness probe /healthz failed 2 times") {
		t.Errorf("last exit %q", st.LastExit)
	}
}

// TestProxySplitsAndDrains: traffic follows the weights; a replica taken out of the table
// and stopped finishes its request in flight.
func TestProxySplitsAndDrains(t *testing.T) {
	t.Parallel()
	a, b := start(t, spec(t, "ok", "a"), "a-1"), start(t, spec(t, "ok", "b"), "b-1")
	waitReady(t, a, b)
	if rss := a.Status().RSSBytes; rss <= 0 {
		t.Errorf("rss %d", rss)
	}
	p, err := NewProxy("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	p.SetPools([]Pool{{Name: "stable", Weight: 80, Replicas: []*Replica{a}}, {Name: "canary", Weight: 20, Replicas: []*Replica{b}}})
	counts := map[string]int{}
	for range 500 {
		counts[body(t, p.URL()+"/")]++
	}
	if counts["b"] < 60 || counts["b"] > 140 {
		t.Errorf("canary got %d of 500 at weight 20", counts["b"])
	}
	// A request is counted once its response is written: the last may still be on its way.
	deadline := time.Now().Add(5 * time.Second)
	for {
		m := p.Metrics()
		if m["canary"].Requests == int64(counts["b"]) && p.VersionMetrics()["a"].Requests == int64(counts["a"]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics %v, %v vs %v", m["canary"].Summary(), p.VersionMetrics()["a"].Summary(), counts)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A slow request to b, then b leaves: the request still completes.
	p.SetPools([]Pool{{Name: "canary", Weight: 100, Replicas: []*Replica{b}}})
	var wg sync.WaitGroup
	var slow string
	wg.Go(func() { slow = body(t, p.URL()+"/slow") })
	for b.inflight.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	p.SetPools([]Pool{{Name: "stable", Weight: 100, Replicas: []*Replica{a}}})
	b.Stop(5 * time.Second)
	wg.Wait()
	if slow != "slow done" {
		t.Errorf("request in flight during the drain got %q", slow)
	}
	if got := body(t, p.URL()+"/"); got != "a" {
		t.Errorf("after the switch: %q", got)
	}
}

func body(t *testing.T, url string) string {
	resp, err := http.Get(url)
	if err != nil {
		t.Error(err)
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
