package deploy_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paved/paved/internal/cache"
	"github.com/paved/paved/internal/deploy"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store/sqlite"
)

// versions of examples/hello-service built once for the package's tests, by digest in
// blobs; their behaviour comes from the version string (see the example's main.go).
var (
	blobs   *cache.Blobs
	digests = map[string]string{}
)

const (
	v1     = "1.0.0"
	v2     = "1.1.0"
	vErr20 = "1.2.0-err20"
	vCrash = "1.3.0-crash"
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "paved-deploy-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		if blobs, err = cache.NewBlobs(filepath.Join(dir, "blobs")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := buildVersions(dir, v1, v2, vErr20, vCrash); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

func buildVersions(dir string, versions ...string) error {
	_, file, _, _ := runtime.Caller(0)
	src := filepath.Join(filepath.Dir(file), "..", "..", "examples", "hello-service")
	var wg sync.WaitGroup
	errs := make([]error, len(versions))
	var mu sync.Mutex
	for i, v := range versions {
		wg.Go(func() {
			out := filepath.Join(dir, "hello-"+v)
			cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-X main.version="+v, "-o", out, ".")
			cmd.Dir = src
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
			if b, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("build hello-service %s: %v: %s", v, err, b)
				return
			}
			f, err := os.Open(out)
			if err != nil {
				errs[i] = err
				return
			}
			defer f.Close()
			d, _, err := blobs.Put(f)
			if err != nil {
				errs[i] = err
				return
			}
			mu.Lock()
			digests[v] = d
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// harness is a controller over a real SQLite store and a data dir of its own.
type harness struct {
	t     *testing.T
	dir   string
	store *sqlite.Store
	c     *deploy.Controller
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "paved.db"))
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, dir: dir, store: st}
	h.start()
	t.Cleanup(func() {
		h.c.Stop()
		st.Close()
	})
	return h
}

func (h *harness) start() {
	h.t.Helper()
	c, err := deploy.New(deploy.Config{Dir: filepath.Join(h.dir, "deploy"), Blobs: blobs, History: h.store})
	if err != nil {
		h.t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	h.c = c
}

// fastSpec is a spec with windows compressed for tests.
func fastSpec(env, strategy string, replicas int) deploy.Spec {
	return deploy.Spec{
		Environment: env, Strategy: strategy, Replicas: replicas,
		Readiness:        &probeFast,
		ReadinessTimeout: 20 * time.Second,
		Drain:            5 * time.Second,
		Steps:            []int{25, 50, 100},
		KeepWarm:         time.Minute,
		Analysis: deploy.Analysis{Interval: 150 * time.Millisecond, Count: 2, MinSamples: 15, FailureLimit: 1,
			InconclusiveTimeout: 30 * time.Second, P99Slack: 50 * time.Millisecond},
		Smoke: []deploy.Smoke{{Path: "/healthz", Body: "ok"}},
	}
}

var probeFast = localProbe("/healthz")

// recorder keeps what a deployment reports.
type recorder struct {
	mu     sync.Mutex
	events []run.Event
	logs   []string
}

func (r *recorder) Log(line string) {
	r.mu.Lock()
	r.logs = append(r.logs, line)
	r.mu.Unlock()
}

func (r *recorder) Event(e run.Event) error {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	return nil
}

func (r *recorder) find(t run.Type) []run.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []run.Event
	for _, e := range r.events {
		if e.Type == t {
			out = append(out, e)
		}
	}
	return out
}

func (r *recorder) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.logs, "\n")
}

func (h *harness) deploy(spec deploy.Spec, v string) (*recorder, string) {
	h.t.Helper()
	rec := &recorder{}
	d, err := h.c.Deploy(h.t.Context(), deploy.Request{Spec: spec, Artifact: digests[v], TriggeredBy: "test"}, rec)
	if err != nil {
		h.t.Fatalf("deploy %s: %v\n%s", v, err, rec.text())
	}
	return rec, d.Outcome
}

func (h *harness) url(env string) string {
	h.t.Helper()
	st, err := h.c.Status(env)
	if err != nil {
		h.t.Fatal(err)
	}
	return st.URL
}

// load is a bounded load generator: workers send GET / to url at about rps in total until
// stop; every request that did not get a response, or got a 5xx, is counted.
type load struct {
	ok, failed, lost atomic.Int64
	versions         sync.Map // body -> count
	stopc            chan struct{}
	wg               sync.WaitGroup
}

func startLoad(url string, rps, workers int) *load {
	l := &load{stopc: make(chan struct{})}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	per := time.Second * time.Duration(workers) / time.Duration(rps)
	for range workers {
		l.wg.Go(func() {
			t := time.NewTicker(per)
			defer t.Stop()
			for {
				select {
				case <-l.stopc:
					return
				case <-t.C:
				}
				resp, err := client.Get(url + "/?name=load")
				if err != nil {
					l.lost.Add(1)
					continue
				}
				var buf [128]byte
				n, _ := resp.Body.Read(buf[:])
				resp.Body.Close()
				if resp.StatusCode >= 500 {
					l.failed.Add(1)
					continue
				}
				l.ok.Add(1)
				v, _ := l.versions.LoadOrStore(strings.TrimSpace(string(buf[:n])), new(atomic.Int64))
				v.(*atomic.Int64).Add(1)
			}
		})
	}
	return l
}

func (l *load) stop() {
	close(l.stopc)
	l.wg.Wait()
}

func (l *load) total() int64 { return l.ok.Load() + l.failed.Load() + l.lost.Load() }

func digestVersion(v string) string { return strings.TrimPrefix(digests[v], "sha256:")[:12] }

func countVersion(l *load, v string) int64 {
	var n int64
	l.versions.Range(func(k, c any) bool {
		if strings.Contains(k.(string), "version "+v+")") {
			n += c.(*atomic.Int64).Load()
		}
		return true
	})
	return n
}

// waitFor polls cond until it holds, failing the test after 20 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	n, _ := resp.Body.Read(buf)
	b.Write(buf[:n])
	return b.String()
}

// deployOK deploys v and fails the test unless it succeeded.
func (h *harness) deployOK(spec deploy.Spec, v string) {
	h.t.Helper()
	rec, out := h.deploy(spec, v)
	if out != "succeeded" {
		h.t.Fatalf("deploy %s: %s\n%s", v, out, rec.text())
	}
}
