package schedule

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paved/paved/internal/execute/fake"
	"github.com/paved/paved/internal/pipeline"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/store/sqlite"
)

// stages builds a pipeline from (name, needs, script) triples in topological order.
func stages(defs ...[3]string) *pipeline.Pipeline {
	p := &pipeline.Pipeline{Name: "t"}
	for _, d := range defs {
		st := &pipeline.Stage{Name: d[0], Base: d[0], Shell: "sh", Phase: "build", Timeout: time.Minute,
			Steps: []pipeline.Step{{Name: "script", Run: d[2]}}}
		if d[1] != "" {
			st.Needs = strings.Split(d[1], ",")
		}
		p.Stages = append(p.Stages, st)
	}
	return p
}

type harness struct {
	t     *testing.T
	store *sqlite.Store
	exec  *fake.Executor
	sched *Scheduler
	cfg   Config
	mu    sync.Mutex
	logs  []run.LogLine
}

func newHarness(t *testing.T, dbPath string, mod func(*Config)) *harness {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, store: st, exec: &fake.Executor{}}
	h.cfg = Config{Capacity: 4, LogFlush: 5 * time.Millisecond,
		OnLog: func(l []run.LogLine) { h.mu.Lock(); h.logs = append(h.logs, l...); h.mu.Unlock() }}
	if mod != nil {
		mod(&h.cfg)
	}
	h.sched, err = New(h.cfg, st, h.exec)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.sched.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.sched.Stop(); st.Close() })
	return h
}

func (h *harness) create(p *pipeline.Pipeline) string {
	h.t.Helper()
	id, err := h.sched.Create(context.Background(), CreateParams{Info: run.Info{Repo: "a/b", Trigger: run.Trigger{Kind: "push", Branch: "main"}, Pipeline: p}})
	if err != nil {
		h.t.Fatal(err)
	}
	return id
}

func (h *harness) wait(id string) *run.State {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := h.sched.Wait(ctx, id)
	if err != nil {
		h.t.Fatal(err)
	}
	return st
}

func (h *harness) events(id string) []run.Event {
	h.t.Helper()
	evs, err := h.store.EventList(context.Background(), store.EventListParams{RunID: id})
	if err != nil {
		h.t.Fatal(err)
	}
	return evs
}

func checkGapFree(t *testing.T, evs []run.Event) {
	t.Helper()
	for i, e := range evs {
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d", i, e.Seq)
		}
	}
}

func TestDiamondRunsInParallel(t *testing.T) {
	t.Parallel()
	h := newHarness(t, ":memory:", nil)
	id := h.create(stages(
		[3]string{"a", "", "echo a"},
		[3]string{"b", "a", "sleep 300ms"},
		[3]string{"c", "a", "sleep 300ms"},
		[3]string{"d", "b,c", "echo d"},
	))
	st := h.wait(id)
	if st.Phase != run.Succeeded {
		t.Fatalf("phase %s: %s", st.Phase, st.Reason)
	}
	b, c, d := st.Stage("b"), st.Stage("c"), st.Stage("d")
	if d.StartedAt.Before(b.FinishedAt) || d.StartedAt.Before(c.FinishedAt) {
		t.Fatalf("d started %v before b %v / c %v finished", d.StartedAt, b.FinishedAt, c.FinishedAt)
	}
	if b.StartedAt.After(c.FinishedAt) || c.StartedAt.After(b.FinishedAt) {
		t.Fatalf("b and c did not overlap: b %v-%v c %v-%v", b.StartedAt, b.FinishedAt, c.StartedAt, c.FinishedAt)
	}
	checkGapFree(t, h.events(id))
}

func TestFailureSkipsDownstreamAndRetries(t *testing.T) {
	t.Parallel()
	h := newHarness(t, ":memory:", nil)
	p := stages(
		[3]string{"flaky", "", "attempt 1 exit 3\necho ok"},
		[3]string{"bad", "", "echo boom\nexit 2"},
		[3]string{"after-bad", "bad", "echo never"},
		[3]string{"after-flaky", "flaky", "echo yes"},
	)
	p.Stages[0].Retries = 1
	st := h.wait(h.create(p))
	if st.Phase != run.Failed {
		t.Fatalf("phase %s", st.Phase)
	}
	want := map[string]string{"flaky": "succeeded", "bad": "failed", "after-bad": "skipped", "after-flaky": "succeeded"}
	for name, status := range want {
		if got := st.Stage(name).Status; got != status {
			t.Errorf("%s: %s, want %s", name, got, status)
		}
	}
	if a := st.Stage("flaky").Attempt; a != 2 {
		t.Errorf("flaky attempts %d, want 2", a)
	}
	if r := st.Stage("bad").Reason; r != "step 1 (script) exited with code 2" {
		t.Errorf("bad reason %q", r)
	}
}

func TestCancelStopsRunningStages(t *testing.T) {
	t.Parallel()
	started := make(chan string, 4)
	h := newHarness(t, ":memory:", nil)
	h.exec.Started = started
	id := h.create(stages([3]string{"long", "", "block"}, [3]string{"next", "long", "echo no"}))
	<-started
	if err := h.sched.Cancel(context.Background(), id, "test"); err != nil {
		t.Fatal(err)
	}
	st := h.wait(id)
	if st.Phase != run.Cancelled || st.Stage("long").Status != run.StatusCancelled || st.Stage("next").Status != run.StatusCancelled {
		t.Fatalf("phase %s long %s next %s", st.Phase, st.Stage("long").Status, st.Stage("next").Status)
	}
}

func TestTimeoutFailsStage(t *testing.T) {
	t.Parallel()
	h := newHarness(t, ":memory:", nil)
	p := stages([3]string{"slow", "", "block"})
	p.Stages[0].Timeout = 50 * time.Millisecond
	st := h.wait(h.create(p))
	if s := st.Stage("slow"); s.Status != run.StatusFailed || s.Reason != "timed out after 50ms" {
		t.Fatalf("status %s reason %q", s.Status, s.Reason)
	}
}

func TestCapacityBoundsRunningStages(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	running, peak := 0, 0
	h := newHarness(t, ":memory:", func(c *Config) {
		c.Capacity = 2
		c.OnEvent = func(e run.Event) {
			mu.Lock()
			defer mu.Unlock()
			switch e.Type {
			case run.StageStarted:
				running++
				peak = max(peak, running)
			case run.StageFinished:
				running--
			}
		}
	})
	var defs [][3]string
	for _, n := range []string{"a", "b", "c", "d", "e", "f"} {
		defs = append(defs, [3]string{n, "", "sleep 20ms"})
	}
	if st := h.wait(h.create(stages(defs...))); st.Phase != run.Succeeded {
		t.Fatal(st.Phase)
	}
	if peak != 2 {
		t.Fatalf("peak running %d, want 2", peak)
	}
}

func TestSecretsMaskedInLogs(t *testing.T) {
	t.Parallel()
	h := newHarness(t, ":memory:", func(c *Config) {
		c.Secrets = func(_ context.Context, p SecretParams) (string, error) {
			name := p.Name
			if name == "TOKEN" {
				return "s3cr3t-value", nil
			}
			return "", errors.New("no such secret")
		}
	})
	p := stages([3]string{"a", "", "echo token is s3cr3t-value here"})
	p.Stages[0].Env = map[string]pipeline.EnvVar{"T": {Secret: "TOKEN"}}
	id := h.create(p)
	if st := h.wait(id); st.Phase != run.Succeeded {
		t.Fatal(st.Phase, st.Reason)
	}
	lines, err := h.store.LogList(context.Background(), store.LogListParams{RunID: id, Stage: "a"})
	if err != nil {
		t.Fatal(err)
	}
	var text []string
	for _, l := range lines {
		text = append(text, l.Text)
	}
	got := strings.Join(text, "\n")
	if strings.Contains(got, "s3cr3t") || !strings.Contains(got, "token is *** here") {
		t.Fatalf("log not masked:\n%s", got)
	}
	if h.exec.Jobs()[0].Env["T"] != "s3cr3t-value" {
		t.Fatal("the step did not get the secret")
	}
	for _, e := range h.events(id) {
		if strings.Contains(e.Reason+e.StepName, "s3cr3t") {
			t.Fatalf("secret in event %+v", e)
		}
	}
}

func TestMissingSecretFailsStageClearly(t *testing.T) {
	t.Parallel()
	h := newHarness(t, ":memory:", nil)
	p := stages([3]string{"a", "", "echo hi"})
	p.Stages[0].Env = map[string]pipeline.EnvVar{"T": {Secret: "NOPE"}}
	st := h.wait(h.create(p))
	if s := st.Stage("a"); s.Status != run.StatusFailed || !strings.Contains(s.Reason, "secret NOPE") {
		t.Fatalf("status %s reason %q", s.Status, s.Reason)
	}
	if len(h.exec.Jobs()) != 0 {
		t.Fatal("the stage ran without its secret")
	}
}

// A scheduler that stops mid-run (as a killed server does) leaves the run to the next one,
// which records the interruption and runs the stage again.
func TestRecoveryReRunsInterruptedStages(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "paved.db")
	started := make(chan string, 8)
	h1 := newHarness(t, db, nil)
	h1.exec.Started = started
	id := h1.create(stages(
		[3]string{"a", "", "echo a"},
		[3]string{"b", "a", "attempt 1 block\necho b done"},
		[3]string{"c", "b", "echo c"},
	))
	for s := range started {
		if s == "b" {
			break
		}
	}
	h1.sched.Stop()
	h1.store.Close()

	h2 := newHarness(t, db, nil)
	st := h2.wait(id)
	if st.Phase != run.Succeeded {
		t.Fatalf("phase %s: %s", st.Phase, st.Reason)
	}
	evs := h2.events(id)
	checkGapFree(t, evs)
	var interrupted, requeued bool
	for _, e := range evs {
		if e.Type == run.StageInterrupted && e.Stage == "b" {
			interrupted = true
		}
		if e.Type == run.StageQueued && e.Stage == "b" && e.Attempt == 2 && strings.HasPrefix(e.Reason, "re-run:") {
			requeued = true
		}
	}
	if !interrupted || !requeued {
		t.Fatalf("events do not say b was re-run (interrupted %v, requeued %v)", interrupted, requeued)
	}
	if n := len(h2.exec.Jobs()); n != 2 {
		t.Fatalf("second scheduler ran %d jobs, want b and c", n)
	}
}

func TestCreateWithExistingIDStartsNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, ":memory:", nil)
	p := stages([3]string{"a", "", "echo a"})
	info := run.Info{Repo: "a/b", Trigger: run.Trigger{Kind: "push"}, Pipeline: p}
	id, err := h.sched.Create(context.Background(), CreateParams{ID: "delivery-1", Info: info})
	if err != nil || id != "delivery-1" {
		t.Fatalf("create: %q %v", id, err)
	}
	h.wait(id)
	if _, err := h.sched.Create(context.Background(), CreateParams{ID: "delivery-1", Info: info}); !errors.Is(err, ErrRunExists) {
		t.Fatalf("second create: %v, want ErrRunExists", err)
	}
	if n := len(h.exec.Jobs()); n != 1 {
		t.Fatalf("%d jobs ran, want 1", n)
	}
}

func TestSecretsMaskedInStageReasons(t *testing.T) {
	t.Parallel()
	h := newHarness(t, ":memory:", func(c *Config) {
		c.Secrets = func(context.Context, SecretParams) (string, error) { return "hunter2-token", nil }
	})
	p := stages([3]string{"a", "", "infra clone failed for https://x:hunter2-token@example.invalid"})
	p.Stages[0].Env = map[string]pipeline.EnvVar{"T": {Secret: "TOKEN"}}
	st := h.wait(h.create(p))
	if r := st.Stage("a").Reason; strings.Contains(r, "hunter2") || !strings.Contains(r, "***") {
		t.Fatalf("reason %q", r)
	}
}
