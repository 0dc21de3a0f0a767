package run

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/paved/paved/internal/pipeline"
)

// dag builds a pipeline from "name:need1,need2" specs, in topological order as given.
func dag(specs ...string) *pipeline.Pipeline {
	p := &pipeline.Pipeline{Name: "t"}
	for _, s := range specs {
		name, needs, _ := strings.Cut(s, ":")
		st := &pipeline.Stage{Name: name, Base: name, Phase: "build", Shell: "sh", Timeout: time.Minute,
			Steps: []pipeline.Step{{Name: "x", Run: "true"}}}
		if needs != "" {
			st.Needs = strings.Split(needs, ",")
		}
		p.Stages = append(p.Stages, st)
	}
	return p
}

// sim drives a run the way the scheduler does, without executing anything.
type sim struct {
	t   *testing.T
	s   *State
	now time.Time
	log []Event
}

func newSim(t *testing.T, p *pipeline.Pipeline, trig Trigger) *sim {
	t.Helper()
	x := &sim{t: t, s: &State{}, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	x.apply(Event{RunID: "r1", Seq: 1, Type: RunCreated, Info: &Info{Repo: "a/b", Trigger: trig, Pipeline: p}})
	x.next()
	return x
}

func (x *sim) apply(events ...Event) {
	x.t.Helper()
	for _, e := range events {
		if e.Seq == 0 {
			e.Seq = x.s.Seq + 1
		}
		e.RunID, e.Time = "r1", x.now
		if err := x.s.Apply(e); err != nil {
			x.t.Fatal(err)
		}
		x.log = append(x.log, e)
	}
}

func (x *sim) next() []Event {
	x.t.Helper()
	evs := Next(x.s, x.now)
	x.apply(evs...)
	return evs
}

func (x *sim) finish(stage, status string) {
	x.t.Helper()
	x.now = x.now.Add(time.Second)
	x.apply(Event{Type: StageStarted, Stage: stage}, Event{Type: StageFinished, Stage: stage, Status: status})
	x.next()
}

func (x *sim) statuses() string {
	var parts []string
	for _, st := range x.s.Stages {
		parts = append(parts, st.Name()+"="+st.Status)
	}
	return strings.Join(parts, " ")
}

func TestNextDiamond(t *testing.T) {
	t.Parallel()
	x := newSim(t, dag("a", "b:a", "c:a", "d:b,c"), Trigger{Kind: "push"})
	if got, want := x.statuses(), "a=queued b=pending c=pending d=pending"; got != want {
		t.Fatalf("after create: %s, want %s", got, want)
	}
	x.finish("a", StatusSucceeded)
	if got, want := x.statuses(), "a=succeeded b=queued c=queued d=pending"; got != want {
		t.Fatalf("after a: %s, want %s", got, want)
	}
	x.finish("b", StatusSucceeded)
	if x.s.Stage("d").Status != StatusPending {
		t.Fatalf("d must wait for c too: %s", x.statuses())
	}
	x.finish("c", StatusSucceeded)
	x.finish("d", StatusSucceeded)
	if x.s.Phase != Succeeded {
		t.Fatalf("phase %s, want SUCCEEDED (%s)", x.s.Phase, x.statuses())
	}
	// The log replays to the same state.
	again, err := Fold(x.log)
	if err != nil {
		t.Fatal(err)
	}
	if again.Phase != Succeeded || again.Seq != x.s.Seq {
		t.Fatalf("replay: phase %s seq %d, want SUCCEEDED %d", again.Phase, again.Seq, x.s.Seq)
	}
}

func TestNextFailureSkipsOnlyDownstream(t *testing.T) {
	t.Parallel()
	x := newSim(t, dag("a", "b:a", "c", "d:b", "e:c"), Trigger{Kind: "push"})
	x.finish("a", StatusFailed)
	if got, want := x.statuses(), "a=failed b=skipped c=queued d=skipped e=pending"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if r := x.s.Stage("d").Reason; r != "need b skipped" {
		t.Errorf("d reason %q", r)
	}
	if x.s.Done() {
		t.Fatal("run finished while c and e can still run")
	}
	x.finish("c", StatusSucceeded)
	x.finish("e", StatusSucceeded)
	if x.s.Phase != Failed || x.s.Reason != "failed: a" {
		t.Fatalf("phase %s reason %q, want FAILED failed: a", x.s.Phase, x.s.Reason)
	}
}

func TestNextRetries(t *testing.T) {
	t.Parallel()
	p := dag("a", "b:a")
	p.Stages[0].Retries = 2
	x := newSim(t, p, Trigger{Kind: "push"})
	x.finish("a", StatusFailed)
	st := x.s.Stage("a")
	if st.Status != StatusQueued || st.Attempt != 2 || !strings.HasPrefix(st.Reason, "retry 1 of 2") {
		t.Fatalf("after first failure: %s attempt %d reason %q", st.Status, st.Attempt, st.Reason)
	}
	x.finish("a", StatusFailed)
	x.finish("a", StatusFailed)
	if st.Attempt != 3 || x.s.Phase != Failed || x.s.Stage("b").Status != StatusSkipped {
		t.Fatalf("after 3 failures: attempt %d phase %s (%s)", st.Attempt, x.s.Phase, x.statuses())
	}
}

func TestNextInterruptedReRunIsFree(t *testing.T) {
	t.Parallel()
	p := dag("a")
	x := newSim(t, p, Trigger{Kind: "push"})
	x.apply(Event{Type: StageStarted, Stage: "a"}, Event{Type: StageInterrupted, Stage: "a", Reason: "server died"})
	x.next()
	st := x.s.Stage("a")
	if st.Status != StatusQueued || st.Attempt != 2 || st.Reason != "re-run: server died" {
		t.Fatalf("got %s attempt %d reason %q", st.Status, st.Attempt, st.Reason)
	}
	// A failure after a re-run is final: retries 0 still means one attempt that counts.
	x.finish("a", StatusFailed)
	if x.s.Phase != Failed {
		t.Fatalf("phase %s", x.s.Phase)
	}
}

func TestNextCancel(t *testing.T) {
	t.Parallel()
	x := newSim(t, dag("a", "b", "c:a"), Trigger{Kind: "push"})
	x.apply(Event{Type: StageStarted, Stage: "a"}, Event{Type: RunCancelRequested, Reason: "by test"})
	x.next()
	if got, want := x.statuses(), "a=running b=cancelled c=cancelled"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if x.s.Done() {
		t.Fatal("finished while a runs")
	}
	x.apply(Event{Type: StageFinished, Stage: "a", Status: StatusCancelled})
	x.next()
	if x.s.Phase != Cancelled {
		t.Fatalf("phase %s", x.s.Phase)
	}
}

func TestNextWhen(t *testing.T) {
	t.Parallel()
	p := dag("build", "deploy:build", "notify:deploy")
	p.Stages[1].When = &pipeline.When{Branches: []string{"main"}}
	x := newSim(t, p, Trigger{Kind: "push", Branch: "feature/x"})
	if got, want := x.statuses(), "build=queued deploy=skipped notify=skipped"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	x.finish("build", StatusSucceeded)
	if x.s.Phase != Succeeded {
		t.Fatalf("phase %s: a stage skipped by when: is not a failure", x.s.Phase)
	}
}

func TestPhaseFollowsActiveStages(t *testing.T) {
	t.Parallel()
	p := dag("build", "test:build", "deploy:test")
	p.Stages[1].Phase, p.Stages[2].Phase = "test", "deploy"
	x := newSim(t, p, Trigger{Kind: "push"})
	var phases []Phase
	phases = append(phases, x.s.Phase)
	for _, s := range []string{"build", "test", "deploy"} {
		x.apply(Event{Type: StageStarted, Stage: s})
		phases = append(phases, x.s.Phase)
		x.apply(Event{Type: StageFinished, Stage: s, Status: StatusSucceeded})
		x.next()
	}
	phases = append(phases, x.s.Phase)
	want := []Phase{Building, Building, Testing, Deploying, Succeeded}
	if !slices.Equal(phases, want) {
		t.Fatalf("phases %v, want %v", phases, want)
	}
}

func TestApplyRejectsGapsAndUnknownStages(t *testing.T) {
	t.Parallel()
	s := &State{}
	if err := s.Apply(Event{RunID: "r", Seq: 2, Type: RunCreated}); err == nil {
		t.Fatal("seq 2 first: want error")
	}
	if err := s.Apply(Event{RunID: "r", Seq: 1, Type: RunCreated, Info: &Info{Pipeline: dag("a")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(Event{RunID: "r", Seq: 2, Type: StageQueued, Stage: "zz"}); err == nil {
		t.Fatal("unknown stage: want error")
	}
	if err := s.Apply(Event{RunID: "r", Seq: 3, Type: StageQueued, Stage: "a"}); err == nil {
		t.Fatal("gap: want error")
	}
}

// FuzzNext drives random DAGs with random outcomes and checks the invariants the scheduler
// relies on: every run ends, a stage runs only after its needs succeeded, and replay agrees.
func FuzzNext(f *testing.F) {
	f.Add(uint64(1), uint8(4))
	f.Add(uint64(42), uint8(9))
	f.Fuzz(func(t *testing.T, seed uint64, n uint8) {
		n = n%10 + 1
		rng := seed
		rand := func(k uint64) uint64 { rng = rng*6364136223846793005 + 1442695040888963407; return (rng >> 33) % k }
		var specs []string
		for i := range int(n) {
			spec := fmt.Sprintf("s%d", i)
			var needs []string
			for j := range i {
				if rand(3) == 0 {
					needs = append(needs, fmt.Sprintf("s%d", j))
				}
			}
			if len(needs) > 0 {
				spec += ":" + strings.Join(needs, ",")
			}
			specs = append(specs, spec)
		}
		p := dag(specs...)
		for _, st := range p.Stages {
			st.Retries = int(rand(2))
		}
		x := newSim(t, p, Trigger{Kind: "push"})
		for steps := 0; !x.s.Done(); steps++ {
			if steps > 100 {
				t.Fatalf("run never finished: %s", x.statuses())
			}
			var queued []*StageState
			for _, st := range x.s.Stages {
				if st.Status == StatusQueued {
					queued = append(queued, st)
				}
			}
			if len(queued) == 0 {
				t.Fatalf("stuck: nothing queued and not done: %s", x.statuses())
			}
			st := queued[rand(uint64(len(queued)))]
			for _, need := range st.Def.Needs {
				if x.s.Stage(need).Status != StatusSucceeded {
					t.Fatalf("%s queued before need %s succeeded", st.Name(), need)
				}
			}
			status := StatusSucceeded
			if rand(3) == 0 {
				status = StatusFailed
			}
			x.finish(st.Name(), status)
		}
		again, err := Fold(x.log)
		if err != nil || again.Phase != x.s.Phase {
			t.Fatalf("replay: %v, phase %v vs %v", err, again, x.s.Phase)
		}
	})
}
