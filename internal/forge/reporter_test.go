package forge_test

import (
	"context"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/paved/paved/internal/execute/fake"
	"github.com/paved/paved/internal/forge"
	"github.com/paved/paved/internal/pipeline"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/schedule"
	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/store/sqlite"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs (go test -update rewrites it)\n--- want\n%s--- got\n%s", path, want, got)
	}
}

const sha = "0123456789abcdef0123456789abcdef01234567"

var repos = map[string]string{"github": "acme/app", "gitlab": "group/sub/app", "bitbucket": "ws/app"}

func client(vendor, base string) forge.Forge {
	switch vendor {
	case "github":
		return forge.NewGitHub(base, fakeToken, nil)
	case "gitlab":
		return forge.NewGitLab(base, fakeToken, nil)
	default:
		return forge.NewBitbucket(base, fakeToken, nil)
	}
}

// env is a scheduler on a real SQLite store whose events feed a reporter to a fake forge.
type env struct {
	f     *fakeForge
	st    *sqlite.Store
	sched *schedule.Scheduler
	rep   *forge.Reporter
}

func newEnv(t *testing.T, vendor string, mod func(*forge.Config)) *env {
	t.Helper()
	e := &env{f: newFakeForge(t, vendor)}
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "paved.db"))
	if err != nil {
		t.Fatal(err)
	}
	e.st = st
	cfg := forge.Config{
		Forge: func(context.Context, string) (forge.Forge, error) { return client(vendor, e.f.srv.URL), nil },
		Events: func(ctx context.Context, id string) ([]run.Event, error) {
			return st.EventList(ctx, store.EventListParams{RunID: id})
		},
		URL: func() string { return "https://paved.example.com" }, Dir: t.TempDir(),
		Backoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, MaxAttempts: 4,
	}
	if mod != nil {
		mod(&cfg)
	}
	if e.rep, err = forge.NewReporter(cfg); err != nil {
		t.Fatal(err)
	}
	if err := e.rep.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.sched, err = schedule.New(schedule.Config{OnEvent: e.rep.OnEvent, LogFlush: 5 * time.Millisecond}, st, &fake.Executor{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.sched.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.sched.Stop(); e.rep.Stop(); st.Close() })
	return e
}

// failingPipeline: build succeeds, test fails, publish is skipped.
func failingPipeline(t *testing.T) *pipeline.Pipeline {
	t.Helper()
	p, err := pipeline.Compile(".paved.yml", []byte(`name: app
stages:
  build: {steps: [echo built]}
  test: {needs: [build], steps: ["exit 1"]}
  publish: {needs: [test], steps: [echo never]}
`), pipeline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (e *env) run(t *testing.T, info run.Info) (string, *run.State) {
	t.Helper()
	id, err := e.sched.Create(t.Context(), schedule.CreateParams{Info: info})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	st, err := e.sched.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return id, st
}

// finalStatus is true once the run's own context got a final state.
func finalStatus(f *fakeForge, vendor string) bool {
	final := map[string]string{"github": `"state":"failure"`, "gitlab": `"state":"failed"`, "bitbucket": `"state":"FAILED"`}[vendor]
	for _, r := range f.recorded() {
		if r.Answer/100 == 2 && strings.Contains(mustJSON(r.Body), final) && strings.Contains(mustJSON(r.Body), `"paved/app"`) {
			return true
		}
	}
	return false
}

// A run with a failing stage reaches each forge as pending, running, then failure, for
// the run and each stage, in order; failed requests are retried (500 and 429 with
// Retry-After) and the retries show in the requests and the metric.
func TestStatusesInOrderWithRetries(t *testing.T) {
	t.Parallel()
	for _, vendor := range []string{"github", "gitlab", "bitbucket"} {
		t.Run(vendor, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, vendor, nil)
			e.f.fail = []failure{{status: http.StatusInternalServerError}, {status: http.StatusTooManyRequests, retryAfter: "1"}}
			id, st := e.run(t, run.Info{Repo: repos[vendor], SHA: sha, Ref: "refs/heads/main",
				Trigger: run.Trigger{Kind: "push", Branch: "main"}, Pipeline: failingPipeline(t)})
			if st.Phase != run.Failed {
				t.Fatalf("phase %s", st.Phase)
			}
			waitFor(t, "the run's final status", func() bool { return finalStatus(e.f, vendor) })
			reqs := e.f.recorded()
			golden(t, filepath.Join("testdata", vendor+".statuses.golden"), lines(reqs, id))
			// The 429's Retry-After was waited out.
			if len(reqs) > 2 && reqs[2].At.Sub(reqs[1].At) < time.Second {
				t.Errorf("retry %v after a 429 with Retry-After: 1", reqs[2].At.Sub(reqs[1].At))
			}
		})
	}
}

// An update that keeps failing is dropped after MaxAttempts, counted, and the run's next
// updates go on.
func TestUpdateDroppedAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "github", func(c *forge.Config) { c.RunOnly = true })
	e.f.fail = []failure{{status: 502}, {status: 502}, {status: 502}, {status: 502}}
	_, _ = e.run(t, run.Info{Repo: "acme/app", SHA: sha, Ref: "refs/heads/main",
		Trigger: run.Trigger{Kind: "push", Branch: "main"}, Pipeline: failingPipeline(t)})
	waitFor(t, "the run's final status", func() bool { return finalStatus(e.f, "github") })
	// pending dropped after 4 tries; running and failure sent.
	want := `
# HELP paved_forge_updates_total Commit statuses and pull request comments sent to forges, by kind and result (sent, retried, dropped).
# TYPE paved_forge_updates_total counter
paved_forge_updates_total{kind="status",result="dropped"} 1
paved_forge_updates_total{kind="status",result="retried"} 3
paved_forge_updates_total{kind="status",result="sent"} 2
`
	if err := testutil.CollectAndCompare(e.rep, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}

// Updates queued when the server stops are sent, in order, by the next one.
func TestQueueSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e := newEnv(t, "gitlab", func(c *forge.Config) { c.Dir, c.RunOnly, c.MaxAttempts = dir, true, 1000 })
	for range 1000 {
		e.f.fail = append(e.f.fail, failure{status: 503})
	}
	id, _ := e.run(t, run.Info{Repo: "group/app", SHA: sha, Trigger: run.Trigger{Kind: "push"}, Pipeline: failingPipeline(t)})
	waitFor(t, "a few failed tries", func() bool { return len(e.f.recorded()) >= 3 })
	e.rep.Stop()
	e.f.mu.Lock()
	e.f.fail, e.f.requests = nil, nil
	e.f.mu.Unlock()

	again, err := forge.NewReporter(forge.Config{
		Forge:  func(context.Context, string) (forge.Forge, error) { return client("gitlab", e.f.srv.URL), nil },
		Events: func(context.Context, string) ([]run.Event, error) { return nil, nil },
		URL:    func() string { return "https://paved.example.com" }, Dir: dir, Backoff: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(again.Stop)
	waitFor(t, "the queued statuses", func() bool { return finalStatus(e.f, "gitlab") })
	golden(t, filepath.Join("testdata", "restart.statuses.golden"), lines(e.f.recorded(), id))
	waitFor(t, "the queue directory emptied", func() bool {
		left, _ := filepath.Glob(filepath.Join(dir, "*", "*.json"))
		return len(left) == 0
	})
}
