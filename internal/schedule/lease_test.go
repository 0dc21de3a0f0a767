package schedule

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paved/paved/internal/execute"
	"github.com/paved/paved/internal/execute/fake"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/store/sqlite"
)

// flakyLeases is the store's leases with a switch that makes renewals fail, as they do
// for a server cut off from its database.
type flakyLeases struct {
	*sqlite.Store
	cut atomic.Bool
}

func (f *flakyLeases) LeaseRenew(ctx context.Context, p store.LeaseRenewParams) ([]string, error) {
	if f.cut.Load() {
		return nil, errors.New("connection refused")
	}
	return f.Store.LeaseRenew(ctx, p)
}

func startLeased(t *testing.T, st *sqlite.Store, leases Leases, owner string, ex execute.Executor, mod func(*Config)) *Scheduler {
	t.Helper()
	// Long enough that a loaded test machine does not let leases lapse between renewals.
	cfg := Config{Capacity: 4, LogFlush: 5 * time.Millisecond, Leases: leases, Owner: owner, LeaseTTL: time.Second}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg, st, ex)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// TestLeaseTakeover: a server that cannot renew its lease stops its stage unrecorded, and
// another server takes the run over after the lease time, records the stage as
// interrupted and runs it again: the run ends once, on the new owner.
func TestLeaseTakeover(t *testing.T) {
	t.Parallel()
	st, err := sqlite.Open(context.Background(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	la := &flakyLeases{Store: st}
	exA := &fake.Executor{Started: make(chan string, 4)}
	a := startLeased(t, st, la, "a", exA, nil)
	b := startLeased(t, st, st, "b", &fake.Executor{}, nil)

	id, err := a.Create(context.Background(), CreateParams{Info: run.Info{Repo: "a/b", Trigger: run.Trigger{Kind: "push", Branch: "main"},
		Pipeline: stages([3]string{"s", "", "attempt 1 block\necho second"}, [3]string{"t", "s", "echo t"})}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-exA.Started:
	case <-time.After(10 * time.Second):
		t.Fatal("stage never started on a")
	}
	la.cut.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	final, err := b.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if final.Phase != run.Succeeded {
		t.Fatalf("phase %s: %s", final.Phase, final.Reason)
	}
	evs, err := st.EventList(ctx, store.EventListParams{RunID: id})
	if err != nil {
		t.Fatal(err)
	}
	checkGapFree(t, evs)
	finished, interrupted := 0, 0
	for _, e := range evs {
		if e.Stage == "s" && e.Type == run.StageFinished {
			finished++
		}
		if e.Stage == "s" && e.Type == run.StageInterrupted {
			interrupted++
		}
	}
	if finished != 1 || interrupted != 1 {
		t.Errorf("stage s: %d StageFinished, %d StageInterrupted; want 1 and 1", finished, interrupted)
	}
	if a.get(id) != nil {
		t.Error("a still drives the run it lost")
	}
}

// TestLeaseHandoverOnStop: a server that stops releases its leases; another takes the runs
// at once, without waiting for the lease time.
func TestLeaseHandoverOnStop(t *testing.T) {
	t.Parallel()
	st, err := sqlite.Open(context.Background(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	exA := &fake.Executor{Started: make(chan string, 4)}
	a := startLeased(t, st, st, "a", exA, func(c *Config) { c.LeaseTTL = time.Hour })
	b := startLeased(t, st, st, "b", &fake.Executor{}, func(c *Config) { c.LeaseTTL = time.Hour })
	id, err := a.Create(context.Background(), CreateParams{Info: run.Info{Repo: "a/b", Trigger: run.Trigger{Kind: "push", Branch: "main"},
		Pipeline: stages([3]string{"s", "", "attempt 1 block\necho second"})}})
	if err != nil {
		t.Fatal(err)
	}
	<-exA.Started
	// b does not take a live run, even when asked to cancel it; the cancel waits for a.
	if err := b.claimOrphans(context.Background()); err != nil || b.get(id) != nil {
		t.Fatalf("b claimed a's live run (err %v)", err)
	}
	a.Stop()
	if err := b.claimOrphans(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	final, err := b.Wait(ctx, id)
	if err != nil || final.Phase != run.Succeeded {
		t.Fatalf("Wait = %v, %v; want SUCCEEDED", final, err)
	}
}

// TestAgentLostRetried: a stage whose agent is lost runs again as a new attempt, with
// agent_lost in the events; past LostRetries it fails with that reason.
func TestAgentLostRetried(t *testing.T) {
	t.Parallel()
	remote := &lostRemote{lose: 1}
	h := newHarness(t, ":memory:", func(c *Config) { c.Remote = remote; c.LostRetries = 1 })
	p := stages([3]string{"s", "", "echo ok"})
	p.Stages[0].RunsOn = map[string]string{"os": "linux"}
	id := h.create(p)
	final := h.wait(id)
	if final.Phase != run.Succeeded || final.Stage("s").Attempt != 2 {
		t.Fatalf("phase %s, attempt %d; want SUCCEEDED on attempt 2", final.Phase, final.Stage("s").Attempt)
	}
	found := false
	for _, e := range h.events(id) {
		found = found || (e.Type == run.StageInterrupted && strings.HasPrefix(e.Reason, "agent_lost"))
	}
	if !found {
		t.Error("no StageInterrupted with reason agent_lost")
	}

	remote.lose = 5
	final = h.wait(h.create(p))
	if final.Phase != run.Failed || !strings.HasPrefix(final.Stage("s").Reason, "agent_lost") {
		t.Fatalf("phase %s, reason %q; want FAILED with agent_lost", final.Phase, final.Stage("s").Reason)
	}
}

// lostRemote loses the agent of the first lose attempts of each stage; it must be chosen
// for runs_on stages only.
type lostRemote struct {
	fake.Executor
	lose int
}

func (l *lostRemote) Run(ctx context.Context, job execute.Job, obs execute.Observer) (execute.Result, error) {
	if job.Labels["os"] != "linux" {
		return execute.Result{}, errors.New("the remote executor got a job without its labels")
	}
	if job.Attempt <= l.lose {
		return execute.Result{}, errors.Join(errors.New("agent builder-1: no heartbeat"), execute.ErrLost)
	}
	return l.Executor.Run(ctx, job, obs)
}
