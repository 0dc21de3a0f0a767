package schedule

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/paved/paved/internal/execute/fake"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/store/sqlite"
)

// appendLog is the real store, noting the event types of every append it is given.
type appendLog struct {
	*sqlite.Store
	mu      sync.Mutex
	appends [][]run.Type
}

func (l *appendLog) EventAppend(ctx context.Context, p store.EventAppendParams) error {
	types := make([]run.Type, len(p.Events))
	for i, e := range p.Events {
		types[i] = e.Type
	}
	l.mu.Lock()
	l.appends = append(l.appends, types)
	l.mu.Unlock()
	return l.Store.EventAppend(ctx, p)
}

// A run's first append holds RunCreated with its root stages queued, and a stage's result
// is appended with the stages it makes ready: the writes the store's one writer sees under
// a burst.
func TestAppendsCarryTheNextDecisions(t *testing.T) {
	t.Parallel()
	st, err := sqlite.Open(t.Context(), sqlite.Memory)
	if err != nil {
		t.Fatal(err)
	}
	log := &appendLog{Store: st}
	s, err := New(Config{Capacity: 4}, log, &fake.Executor{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop(); st.Close() })

	p := stages([3]string{"a", "", "echo"}, [3]string{"b", "", "echo"}, [3]string{"c", "a,b", "echo"})
	id, err := s.Create(t.Context(), CreateParams{Info: run.Info{Repo: "a/b", Trigger: run.Trigger{Kind: "push"}, Pipeline: p}})
	if err != nil {
		t.Fatal(err)
	}
	if state, err := s.Wait(t.Context(), id); err != nil || state.Phase != run.Succeeded {
		t.Fatalf("run: %v, %v", state, err)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if got, want := log.appends[0], []run.Type{run.RunCreated, run.StageQueued, run.StageQueued}; !slices.Equal(got, want) {
		t.Errorf("first append %v, want %v", got, want)
	}
	var cQueued, finished []run.Type
	for _, a := range log.appends {
		if a[0] == run.StageFinished && slices.Contains(a, run.StageQueued) {
			cQueued = a
		}
		if slices.Contains(a, run.RunFinished) {
			finished = a
		}
	}
	if want := []run.Type{run.StageFinished, run.StageQueued}; !slices.Equal(cQueued, want) {
		t.Errorf("no append of a result with the stage it made ready (%v): %v", want, log.appends)
	}
	if want := []run.Type{run.StageFinished, run.RunFinished}; !slices.Equal(finished, want) {
		t.Errorf("the last result and RunFinished: %v, want one append %v", finished, want)
	}
}

// Creating a run whose id is being driven is refused, and leaves the run as it was.
func TestCreateDuplicateOfActiveRun(t *testing.T) {
	t.Parallel()
	h := newHarness(t, ":memory:", nil)
	info := run.Info{Repo: "a/b", Trigger: run.Trigger{Kind: "push"}, Pipeline: stages([3]string{"a", "", "gate hold"})}
	id, err := h.sched.Create(context.Background(), CreateParams{ID: "delivery-1", Info: info})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.sched.Create(context.Background(), CreateParams{ID: id, Info: info}); !errors.Is(err, ErrRunExists) {
		t.Fatalf("second create: %v, want ErrRunExists", err)
	}
	h.exec.Open("hold")
	if st := h.wait(id); st.Phase != run.Succeeded {
		t.Fatalf("the first run ended %s", st.Phase)
	}
	checkGapFree(t, h.events(id))
	if n := len(h.exec.Jobs()); n != 1 {
		t.Fatalf("%d jobs ran, want 1", n)
	}
}
