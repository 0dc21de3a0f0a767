package agent_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/paved/paved/internal/cache"
	"github.com/paved/paved/internal/execute"
	"github.com/paved/paved/internal/execute/agent"
	"github.com/paved/paved/internal/execute/local"
	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/store/sqlite"
)

// TestMain lets the test binary be the sandbox init of the agents' local executors.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == local.InitArg {
		os.Exit(local.RunInit(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// recorder is an Observer that keeps what it was told.
type recorder struct {
	mu     sync.Mutex
	out    bytes.Buffer
	steps  []string
	output chan struct{}
}

func (r *recorder) StepStarted(i int) {
	r.mu.Lock()
	r.steps = append(r.steps, fmt.Sprint("start ", i))
	r.mu.Unlock()
}
func (r *recorder) Output(_ int, p []byte) {
	r.mu.Lock()
	r.out.Write(p)
	r.mu.Unlock()
	if r.output != nil {
		select {
		case r.output <- struct{}{}:
		default:
		}
	}
}
func (r *recorder) StepFinished(i, code int, _ time.Duration) {
	r.mu.Lock()
	r.steps = append(r.steps, fmt.Sprintf("finish %d %d", i, code))
	r.mu.Unlock()
}
func (r *recorder) Cache(execute.CacheReport) {}

type env struct {
	st     *sqlite.Store
	disp   *agent.Dispatcher
	url    string
	blobs  *cache.Blobs
	tokens map[string]string
}

func newEnv(t *testing.T, lease time.Duration) *env {
	t.Helper()
	st, err := sqlite.Open(context.Background(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	blobs, err := cache.NewBlobs(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := agent.NewDispatcher(agent.DispatcherConfig{Tokens: st, Blobs: blobs, Lease: lease, PollWait: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	r.Mount("/api/v1/agent", d.Handler())
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &env{st: st, disp: d, url: srv.URL, blobs: blobs, tokens: map[string]string{}}
}

func (e *env) token(t *testing.T, name string) string {
	t.Helper()
	tok := agent.NewToken()
	if err := e.st.AgentTokenCreate(context.Background(), store.AgentToken{Name: name, Hash: agent.HashToken(tok), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return tok
}

// startAgent runs an agent until the returned stop is called (or the test ends).
func (e *env) startAgent(t *testing.T, name string, labels map[string]string) (stop func()) {
	t.Helper()
	dir := t.TempDir()
	blobs, err := cache.NewBlobs(filepath.Join(dir, "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	ex, err := local.New(local.Config{Root: filepath.Join(dir, "workspaces"), Sandbox: local.SandboxProcessGroup, Artifacts: blobs})
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Config{Servers: []string{e.url}, Token: e.token(t, name), Labels: labels, Capacity: 2, Executor: ex, Blobs: blobs})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

func job(t *testing.T, steps ...string) execute.Job {
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "in.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	j := execute.Job{RunID: "r1", Stage: "s", Attempt: 1, Source: execute.Source{Dir: src}, Env: map[string]string{"PATH": os.Getenv("PATH")}}
	for i, s := range steps {
		j.Steps = append(j.Steps, execute.Step{Name: fmt.Sprint("step ", i), Run: s})
	}
	return j
}

// TestRunOnAgent: a job runs on an agent with the labels it asks for, its output arrives
// whole and in order, and its artifacts are uploaded to the server's blob store.
func TestRunOnAgent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2*time.Second)
	e.startAgent(t, "other", map[string]string{"os": "plan9"})
	e.startAgent(t, "linux-1", map[string]string{"os": "linux"})
	j := job(t, "for i in $(seq 1 2000); do echo line $i; done", "cat in.txt > out.txt; echo done")
	j.Labels = map[string]string{"os": "linux"}
	j.Artifacts = []string{"out.txt"}
	rec := &recorder{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := e.disp.Run(ctx, j, rec)
	if err != nil || res.Failed {
		t.Fatalf("Run = %+v, %v", res, err)
	}
	var want strings.Builder
	for i := 1; i <= 2000; i++ {
		fmt.Fprintf(&want, "line %d\n", i)
	}
	want.WriteString("done\n")
	if got := rec.out.String(); got != want.String() {
		t.Errorf("output differs: got %d bytes, want %d", len(got), want.Len())
	}
	if got := strings.Join(rec.steps, ","); got != "start 0,finish 0 0,start 1,finish 1 0" {
		t.Errorf("steps = %s", got)
	}
	if len(res.Artifacts) != 1 {
		t.Fatalf("artifacts = %+v", res.Artifacts)
	}
	f, err := e.blobs.Open(res.Artifacts[0].Digest)
	if err != nil {
		t.Fatalf("artifact not on the server: %v", err)
	}
	f.Close()
	for _, s := range e.disp.Agents() {
		if s.Name == "other" && s.Running != 0 {
			t.Errorf("the plan9 agent got a linux job")
		}
	}
}

// TestAgentLost: an agent that stops mid-job loses it after the lease: Run ends with
// execute.ErrLost, and another agent can take the next attempt.
func TestAgentLost(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 300*time.Millisecond)
	stop := e.startAgent(t, "doomed", nil)
	rec := &recorder{output: make(chan struct{}, 1)}
	errc := make(chan error, 1)
	go func() {
		_, err := e.disp.Run(context.Background(), job(t, "echo started; sleep 30"), rec)
		errc <- err
	}()
	select {
	case <-rec.output:
	case <-time.After(20 * time.Second):
		t.Fatal("the job never started")
	}
	stop()
	select {
	case err := <-errc:
		if !errors.Is(err, execute.ErrLost) {
			t.Fatalf("Run = %v, want ErrLost", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not notice the lost agent")
	}
	e.startAgent(t, "spare", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if res, err := e.disp.Run(ctx, job(t, "true"), &recorder{}); err != nil || res.Failed {
		t.Fatalf("second attempt = %+v, %v", res, err)
	}
}

// TestCancelReachesAgent: a cancelled Run kills the job on its agent and returns only once
// the agent reported.
func TestCancelReachesAgent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 400*time.Millisecond)
	e.startAgent(t, "a", nil)
	rec := &recorder{output: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := e.disp.Run(ctx, job(t, "echo started; sleep 30"), rec)
		errc <- err
	}()
	select {
	case <-rec.output:
	case <-time.After(20 * time.Second):
		t.Fatal("the job never started")
	}
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancel did not reach the agent")
	}
}

// TestProtocolRefuses: a revoked token is refused, and a progress gap is refused with the
// last seq applied.
func TestProtocolRefuses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 5*time.Second)
	tok := e.token(t, "gappy")
	rec := &recorder{}
	go func() { _, _ = e.disp.Run(t.Context(), job(t, "true"), rec) }()
	post := func(path, body string, token string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, e.url+"/api/v1/agent"+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, strings.TrimSpace(b.String())
	}
	code, body := post("/claim", `{"labels":{}}`, tok)
	if code != http.StatusOK {
		t.Fatalf("claim = %d %s", code, body)
	}
	id := body[strings.Index(body, `"id":"`)+6:]
	id = id[:strings.Index(id, `"`)]
	if code, body := post("/jobs/"+id+"/progress", `{"items":[{"seq":2,"kind":"step_started","step":0}]}`, tok); code != http.StatusConflict || body != `{"acked":0}` {
		t.Errorf("progress with a gap = %d %s, want 409 {\"acked\":0}", code, body)
	}
	if code, body := post("/jobs/"+id+"/progress", `{"items":[{"seq":1,"kind":"step_started","step":0},{"seq":1,"kind":"step_started","step":0}]}`, tok); code != http.StatusOK || body != `{"acked":1}` {
		t.Errorf("progress = %d %s, want 200 {\"acked\":1}", code, body)
	}
	if err := e.st.AgentTokenRevoke(context.Background(), store.AgentToken{Name: "gappy", RevokedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if code, _ := post("/jobs/"+id+"/heartbeat", `{}`, tok); code != http.StatusUnauthorized {
		t.Errorf("heartbeat with a revoked token = %d, want 401", code)
	}
	if got := strings.Join(rec.steps, ","); got != "start 0" {
		t.Errorf("steps applied = %q, want one start (the duplicate ignored)", got)
	}
}
