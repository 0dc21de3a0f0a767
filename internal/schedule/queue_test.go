package schedule

import (
	"context"
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

func (h *harness) createInfo(info run.Info) string {
	h.t.Helper()
	if info.Repo == "" {
		info.Repo = "a/b"
	}
	if info.Trigger.Kind == "" {
		info.Trigger.Kind = "push"
	}
	id, err := h.sched.Create(context.Background(), CreateParams{Info: info})
	if err != nil {
		h.t.Fatal(err)
	}
	return id
}

func one(script string) *pipeline.Pipeline { return stages([3]string{"s", "", script}) }

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// starts records the order in which stages start, as run ids.
type starts struct {
	mu  sync.Mutex
	ids []string
}

func (s *starts) hook(c *Config) {
	c.OnEvent = func(e run.Event) {
		if e.Type == run.StageStarted {
			s.mu.Lock()
			s.ids = append(s.ids, e.RunID)
			s.mu.Unlock()
		}
	}
}

func (s *starts) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ids...)
}

func TestClassify(t *testing.T) {
	t.Parallel()
	h := newHarness(t, ":memory:", nil)
	for _, c := range []struct {
		info run.Info
		want string
	}{
		{run.Info{Trigger: run.Trigger{Kind: "push", Branch: "hotfix/login"}}, ClassHotfix},
		{run.Info{Hotfix: true, Trigger: run.Trigger{Kind: "push", Branch: "feature"}}, ClassHotfix},
		{run.Info{Trigger: run.Trigger{Kind: "pull_request", Branch: "main", SourceBranch: "hotfix/x"}}, ClassHotfix},
		{run.Info{Trigger: run.Trigger{Kind: "push", Branch: "main"}}, ClassDefault},
		{run.Info{DefaultBranch: "trunk", Trigger: run.Trigger{Kind: "push", Branch: "trunk"}}, ClassDefault},
		{run.Info{DefaultBranch: "trunk", Trigger: run.Trigger{Kind: "push", Branch: "main"}}, ClassBranch},
		{run.Info{Trigger: run.Trigger{Kind: "tag", Tag: "v1"}}, ClassDefault},
		{run.Info{Trigger: run.Trigger{Kind: "pull_request", Branch: "main", SourceBranch: "feat"}}, ClassBranch},
		{run.Info{Trigger: run.Trigger{Kind: "cron", Branch: "main"}}, ClassScheduled},
	} {
		if got := h.sched.classify(&c.info); got != c.want {
			t.Errorf("%+v: class %s, want %s", c.info.Trigger, got, c.want)
		}
	}
}

// Acceptance: the executor is full of feature-branch work; a hotfix that arrives last starts
// first when a slot frees, and the queue says why each stage waits.
func TestHotfixStartsBeforeQueuedFeatureWork(t *testing.T) {
	t.Parallel()
	var s starts
	h := newHarness(t, ":memory:", func(c *Config) { c.Capacity = 1; s.hook(c) })
	feature := run.Trigger{Kind: "push", Branch: "feature/x"}
	first := h.createInfo(run.Info{Trigger: feature, Pipeline: one("gate first")})
	eventually(t, "the first feature stage to start", func() bool { return len(s.list()) == 1 })
	var queued []string
	for range 3 {
		queued = append(queued, h.createInfo(run.Info{Trigger: feature, Pipeline: one("echo f")}))
	}
	hot := h.createInfo(run.Info{Trigger: run.Trigger{Kind: "push", Branch: "hotfix/pay"}, Pipeline: one("echo hot")})

	w := h.sched.Waiting(hot)["s"]
	if w.Position != 1 || !strings.HasPrefix(w.Reason, "capacity: 1/1") {
		t.Errorf("hotfix waiting %+v, want position 1 and capacity", w)
	}
	w = h.sched.Waiting(queued[0])["s"]
	if w.Position != 2 || !strings.HasPrefix(w.Reason, "behind higher-priority work") {
		t.Errorf("feature waiting %+v, want position 2 behind higher priority", w)
	}
	h.exec.Open("first")
	for _, id := range append(queued, hot, first) {
		if st := h.wait(id); st.Phase != run.Succeeded {
			t.Fatalf("run %s: %s", id, st.Phase)
		}
	}
	if got := s.list(); got[1] != hot {
		t.Fatalf("start order %v: the hotfix %s is not second", got, hot)
	}
	if p := h.wait(hot).Info.Priority; p != ClassHotfix {
		t.Fatalf("RunCreated records priority %q", p)
	}
}

// Acceptance: two teams at quota 2 with 10 runs each both progress at once, neither above
// its quota.
func TestTeamQuotasShareCapacity(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	team := map[string]string{}
	running, peak := map[string]int{}, map[string]int{}
	both := false
	h := newHarness(t, ":memory:", func(c *Config) {
		c.Capacity = 8
		c.TeamQuotas = map[string]int{"red": 2, "blue": 2}
		c.OnEvent = func(e run.Event) {
			mu.Lock()
			defer mu.Unlock()
			if e.Type == run.RunCreated {
				team[e.RunID] = e.Info.Team
			}
			tm := team[e.RunID]
			switch e.Type {
			case run.StageStarted:
				running[tm]++
				peak[tm] = max(peak[tm], running[tm])
				if running["red"] > 0 && running["blue"] > 0 {
					both = true
				}
			case run.StageFinished:
				running[tm]--
			}
		}
	})
	var ids []string
	for _, tm := range []string{"red", "blue"} { // all of red first: blue must not wait for it
		for range 10 {
			ids = append(ids, h.createInfo(run.Info{Team: tm, Pipeline: stages(
				[3]string{"a", "", "sleep 5ms"}, [3]string{"b", "", "sleep 5ms"}, [3]string{"c", "a,b", "sleep 5ms"})}))
		}
	}
	q := h.sched.TeamQuota("red")
	if q.Limit != 2 || q.Running > 2 {
		t.Errorf("red quota %+v", q)
	}
	for _, id := range ids {
		if st := h.wait(id); st.Phase != run.Succeeded {
			t.Fatalf("run %s: %s", id, st.Phase)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if peak["red"] != 2 || peak["blue"] != 2 || !both {
		t.Fatalf("peaks %v, both at once %v; want 2 each, at once", peak, both)
	}
}

// Inside a class, a free slot goes to the team running the fewest stages, not to the oldest
// stage of a team that has many running.
func TestFairShareFavoursTeamRunningLess(t *testing.T) {
	t.Parallel()
	var s starts
	h := newHarness(t, ":memory:", func(c *Config) { c.Capacity = 3; s.hook(c) })
	for _, g := range []string{"a1", "a2", "a3"} {
		h.createInfo(run.Info{Team: "a", Pipeline: one("gate " + g)})
	}
	eventually(t, "team a to fill the executor", func() bool { return len(s.list()) == 3 })
	olderA := h.createInfo(run.Info{Team: "a", Pipeline: one("echo a")})
	b := h.createInfo(run.Info{Team: "b", Pipeline: one("echo b")})
	h.exec.Open("a1")
	h.wait(b)
	if got := s.list(); got[3] != b {
		t.Fatalf("4th start %s, want team b's %s (team a's older %s)", got[3], b, olderA)
	}
	if q := h.sched.TeamQuota("a"); q.Limit != 0 || q.Running < 2 {
		t.Errorf("team a quota view %+v, want no limit and a2, a3 running", q)
	}
	if err := h.sched.SetTeamQuota("a", -1); err == nil {
		t.Error("negative quota accepted")
	}
	h.exec.Open("a2")
	h.exec.Open("a3")
	h.wait(olderA)
}

func grouped(script string, limit int, supersede bool) *pipeline.Pipeline {
	p := one(script)
	p.Concurrency = &pipeline.Concurrency{Group: "deploy-$PAVED_BRANCH", Limit: limit, CancelSuperseded: supersede}
	return p
}

// limit: 1 runs a group's runs one at a time in trigger order; the waiting ones queue
// nothing and say so.
func TestGroupLimitRunsInTriggerOrder(t *testing.T) {
	t.Parallel()
	var s starts
	h := newHarness(t, ":memory:", func(c *Config) { s.hook(c) })
	tr := run.Trigger{Kind: "push", Branch: "main"}
	r1 := h.createInfo(run.Info{Trigger: tr, Pipeline: grouped("gate g1", 1, false)})
	r2 := h.createInfo(run.Info{Trigger: tr, Pipeline: grouped("echo 2", 1, false)})
	r3 := h.createInfo(run.Info{Trigger: tr, Pipeline: grouped("echo 3", 1, false)})
	other := h.createInfo(run.Info{Trigger: run.Trigger{Kind: "push", Branch: "dev"}, Pipeline: grouped("echo dev", 1, false)})
	h.wait(other) // another group is not held back
	if w := h.sched.Waiting(r3)["s"]; !strings.HasPrefix(w.Reason, "group limit: 2 of 1") {
		t.Errorf("r3 waiting %+v", w)
	}
	for _, e := range h.events(r2) {
		if e.Type == run.StageQueued {
			t.Fatal("a run beyond the group limit queued a stage")
		}
		if e.Type == run.RunCreated && e.Info.Group != "deploy-main" {
			t.Fatalf("group %q, want deploy-main", e.Info.Group)
		}
	}
	h.exec.Open("g1")
	h.wait(r3)
	var order []string
	for _, id := range s.list() {
		if id != other {
			order = append(order, id)
		}
	}
	if strings.Join(order, " ") != strings.Join([]string{r1, r2, r3}, " ") {
		t.Fatalf("group ran %v, want %v", order, []string{r1, r2, r3})
	}
	if h.wait(r2).Stage("s").StartedAt.Before(h.wait(r1).FinishedAt) {
		t.Fatal("r2 started before r1 finished")
	}
}

// Acceptance: three quick pushes to one branch with cancel_superseded leave the last run
// going; the others end CANCELLED naming the run that superseded them.
func TestCancelSupersededLeavesLastRun(t *testing.T) {
	t.Parallel()
	var s starts
	h := newHarness(t, ":memory:", func(c *Config) { s.hook(c) })
	tr := run.Trigger{Kind: "push", Branch: "feature"}
	r1 := h.createInfo(run.Info{Trigger: tr, Pipeline: grouped("gate never", 1, true)})
	eventually(t, "r1 to start", func() bool { return len(s.list()) == 1 })
	r2 := h.createInfo(run.Info{Trigger: tr, Pipeline: grouped("gate never", 1, true)})
	r3 := h.createInfo(run.Info{Trigger: tr, Pipeline: grouped("echo last", 1, true)})
	if st := h.wait(r3); st.Phase != run.Succeeded {
		t.Fatalf("last run %s: %s", st.Phase, st.Reason)
	}
	for id, by := range map[string]string{r1: r2, r2: r3} {
		st := h.wait(id)
		if st.Phase != run.Cancelled || st.Reason != "superseded by run "+by {
			t.Errorf("run %s: %s %q, want CANCELLED superseded by %s", id, st.Phase, st.Reason, by)
		}
		checkGapFree(t, h.events(id))
	}
}

// A crash between a run's RunCreated and its cancelling of the run it supersedes: the next
// Start derives the cancel from the log.
func TestSupersedeDerivedAtRecovery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for i, id := range []string{"old", "new"} {
		info := &run.Info{Repo: "a/b", Trigger: run.Trigger{Kind: "push", Branch: "x"}, Pipeline: grouped("echo", 1, true), Group: "deploy-x", Priority: ClassBranch}
		state := &run.State{}
		e := run.Event{RunID: id, Seq: 1, Type: run.RunCreated, Time: now.Add(time.Duration(i) * time.Millisecond), Info: info}
		if err := state.Apply(e); err != nil {
			t.Fatal(err)
		}
		if err := st.EventAppend(ctx, store.EventAppendParams{RunID: id, Events: []run.Event{e}, Summary: state.Summary()}); err != nil {
			t.Fatal(err)
		}
	}
	sched, err := New(Config{}, st, &fake.Executor{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sched.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sched.Stop(); st.Close() })
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	old, err := sched.Wait(wctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	if old.Phase != run.Cancelled || old.Reason != "superseded by run new" {
		t.Fatalf("old: %s %q", old.Phase, old.Reason)
	}
	if nw, err := sched.Wait(wctx, "new"); err != nil || nw.Phase != run.Succeeded {
		t.Fatalf("new: %v %v", nw, err)
	}
}
