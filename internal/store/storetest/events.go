package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// testEventRoundTrip stores an event of every kind, with every field set somewhere, and
// reads them back unchanged.
func testEventRoundTrip(t *testing.T, h Harness) {
	s := h.Open(t)
	sum := summary("run-1", at(0))
	first := created(sum)
	// Another location, to check that instants survive whatever the store keeps.
	first.Time = sum.CreatedAt.In(time.FixedZone("UTC+5:30", 5*3600+1800))
	first.Info.Trigger = run.Trigger{Kind: "push", Branch: "main", Tag: "v1.2.3", Author: "ada", Paths: []string{"cmd/app/main.go", "go.sum"}}
	first.Info.Source = run.Source{Repo: "/srv/git/payments.git", SHA: sum.SHA, Dir: "svc"}
	appendNext(t, s, &sum, first)

	rest := []run.Event{
		{Type: run.StageQueued, Stage: "build[1.26]", Attempt: 2, Reason: "retry 1 of 2"},
		{Type: run.StageStarted, Stage: "build[1.26]", Attempt: 2},
		{Type: run.StepStarted, Stage: "build[1.26]", Step: 1, StepName: "compile"},
		{Type: run.StepFinished, Stage: "build[1.26]", Step: 1, ExitCode: ptr(0), DurationMS: 1234},
		{Type: run.StageFinished, Stage: "build[1.26]", Status: run.StatusFailed, ExitCode: ptr(2),
			Reason: "exit status 2: \"quoted\" ünïcødé ✗\nsecond line", Sandbox: "bubblewrap"},
		{Type: run.StageInterrupted, Stage: "build[1.26]", Reason: "server restarted"},
		{Type: run.RunCancelRequested, Reason: "cancelled by ada"},
		{Type: run.RunFinished, Status: string(run.Cancelled), Time: at(time.Hour).Add(7)},
	}
	sum.Phase, sum.FinishedAt = run.Cancelled, at(time.Hour).Add(7)
	p := nextParams(&sum, rest...)
	if err := s.EventAppend(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	want := append([]run.Event{first}, p.Events...)
	got := listEvents(t, s, store.EventListParams{RunID: "run-1"})
	if d := diffEvents(got, want); d != "" {
		t.Fatal(d)
	}
}

// testEventAppendRejectsBadBatch: a batch that cannot be right is refused whole, with an
// error that is not ErrConflict (re-reading the run would not help).
func testEventAppendRejectsBadBatch(t *testing.T, h Harness) {
	s := h.Open(t)
	sum := createRun(t, s, summary("run-1", at(0)))
	ev := func(seq int64) run.Event {
		e := stageEvent(run.StageQueued)
		e.RunID, e.Seq, e.Time = "run-1", seq, at(time.Duration(seq)*time.Second)
		return e
	}
	withLast := func(n int64) run.Summary { s := sum; s.LastSeq = n; return s }
	for _, c := range []struct {
		name string
		p    store.EventAppendParams
	}{
		{"gap before the batch", store.EventAppendParams{RunID: "run-1", ExpectedSeq: 1, Events: []run.Event{ev(3)}, Summary: withLast(3)}},
		{"gap inside the batch", store.EventAppendParams{RunID: "run-1", ExpectedSeq: 1, Events: []run.Event{ev(2), ev(4)}, Summary: withLast(4)}},
		{"repeated seq", store.EventAppendParams{RunID: "run-1", ExpectedSeq: 1, Events: []run.Event{ev(2), ev(2)}, Summary: withLast(2)}},
		{"event of another run", store.EventAppendParams{RunID: "run-1", ExpectedSeq: 1,
			Events: []run.Event{ev(2), func() run.Event { e := ev(3); e.RunID = "run-2"; return e }()}, Summary: withLast(3)}},
		{"no events", store.EventAppendParams{RunID: "run-1", ExpectedSeq: 1, Summary: withLast(1)}},
		{"summary of another run", store.EventAppendParams{RunID: "run-1", ExpectedSeq: 1, Events: []run.Event{ev(2)},
			Summary: func() run.Summary { s := withLast(2); s.ID = "run-2"; return s }()}},
		{"summary behind the events", store.EventAppendParams{RunID: "run-1", ExpectedSeq: 1, Events: []run.Event{ev(2), ev(3)}, Summary: withLast(2)}},
	} {
		err := s.EventAppend(t.Context(), c.p)
		if err == nil || errors.Is(err, store.ErrConflict) {
			t.Errorf("%s: EventAppend = %v, want an error that is not ErrConflict", c.name, err)
		}
	}
	if got := seqs(listEvents(t, s, store.EventListParams{RunID: "run-1"})); !slices.Equal(got, []int64{1}) {
		t.Errorf("after rejected batches the run has events %v, want [1]", got)
	}
	if got, err := s.RunGet(t.Context(), "run-1"); err != nil || got.LastSeq != 1 {
		t.Errorf("after rejected batches RunGet = %+v, %v; want last seq 1", got, err)
	}
	if _, err := s.RunGet(t.Context(), "run-2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a rejected batch created run-2: RunGet = %v", err)
	}
}

// testEventAppendConflict: an append whose expected seq is not the run's last seq fails
// with ErrConflict and changes nothing.
func testEventAppendConflict(t *testing.T, h Harness) {
	s := h.Open(t)
	sum := createRun(t, s, summary("run-1", at(0)))
	sum.Phase = run.Building
	appendNext(t, s, &sum, stageEvent(run.StageQueued))

	for _, expected := range []int64{0, 1, 3, 10} {
		stale := sum
		stale.LastSeq = expected
		stale.Phase = run.Failed // must not reach the projection
		p := nextParams(&stale, stageEvent(run.StageStarted))
		if err := s.EventAppend(t.Context(), p); !errors.Is(err, store.ErrConflict) {
			t.Errorf("EventAppend with expected seq %d on a run at 2 = %v, want ErrConflict", expected, err)
		}
	}
	if got := seqs(listEvents(t, s, store.EventListParams{RunID: "run-1"})); !slices.Equal(got, []int64{1, 2}) {
		t.Errorf("after conflicts the run has events %v, want [1 2]", got)
	}
	got, err := s.RunGet(t.Context(), "run-1")
	if err != nil {
		t.Fatal(err)
	}
	if d := diffSummary(got, sum); d != "" {
		t.Errorf("after conflicts: %s", d)
	}
	// The right expected seq still works.
	appendNext(t, s, &sum, stageEvent(run.StageStarted))
}

// testEventAppendRace: writers that read the same state and append the same seq at once:
// exactly one wins, the others get ErrConflict, and the log holds the winner's event.
func testEventAppendRace(t *testing.T, h Harness) {
	s := h.Open(t)
	for round := range 20 {
		writers := 2
		if round%5 == 4 {
			writers = 8
		}
		sum := createRun(t, s, summary(fmt.Sprintf("run-%02d", round), at(time.Duration(round)*time.Minute)))
		start := make(chan struct{})
		errs := make([]error, writers)
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				e := stageEvent(run.StageQueued)
				e.Reason = fmt.Sprintf("writer %d", w)
				p := nextParams(&sum, e)
				<-start
				errs[w] = s.EventAppend(t.Context(), p)
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for w, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("round %d: writers %d and %d both appended seq 2", round, winner, w)
			case err == nil:
				winner = w
			case !errors.Is(err, store.ErrConflict):
				t.Fatalf("round %d: writer %d: %v, want ErrConflict", round, w, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no writer won: %v", round, errs)
		}
		evs := listEvents(t, s, store.EventListParams{RunID: sum.ID})
		if len(evs) != 2 || evs[1].Reason != fmt.Sprintf("writer %d", winner) {
			t.Fatalf("round %d: writer %d won but the log is %+v", round, winner, evs)
		}
	}
}

// testEventAppendManyRuns: many runs appended to at once, as the scheduler does, all
// succeed and none sees another's events.
func testEventAppendManyRuns(t *testing.T, h Harness) {
	s := h.Open(t)
	const runs, perRun = 50, 24
	var wg sync.WaitGroup
	errs := make(chan error, runs)
	for i := range runs {
		wg.Go(func() {
			sum := summary(fmt.Sprintf("run-%02d", i), at(time.Duration(i)*time.Second))
			p := nextParams(&sum, created(sum))
			for {
				if err := s.EventAppend(t.Context(), p); err != nil {
					errs <- fmt.Errorf("run %s: append after %d: %w", sum.ID, p.ExpectedSeq, err)
					return
				}
				sum = p.Summary
				if sum.LastSeq == perRun {
					return
				}
				// Alternate single events and batches of three, as stages report.
				evs := make([]run.Event, min(1+2*int(sum.LastSeq%2), perRun-int(sum.LastSeq)))
				for j := range evs {
					evs[j] = stageEvent(run.StepStarted)
				}
				p = nextParams(&sum, evs...)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i := range runs {
		id := fmt.Sprintf("run-%02d", i)
		evs := listEvents(t, s, store.EventListParams{RunID: id})
		if got := seqs(evs); !slices.Equal(got, seqRange(1, perRun)) {
			t.Errorf("run %s has events %v, want 1..%d", id, got, perRun)
		}
		for _, e := range evs {
			if e.RunID != id {
				t.Errorf("run %s lists an event of run %s", id, e.RunID)
			}
		}
		if got, err := s.RunGet(t.Context(), id); err != nil || got.LastSeq != perRun {
			t.Errorf("RunGet(%s) = last seq %d, %v; want %d", id, got.LastSeq, err, perRun)
		}
	}
}

func testEventListAfterSeqLimit(t *testing.T, h Harness) {
	s := h.Open(t)
	sum := createRun(t, s, summary("run-1", at(0)))
	for range 9 {
		appendNext(t, s, &sum, stageEvent(run.StepStarted))
	}
	for _, c := range []struct {
		after int64
		limit int
		want  []int64
	}{
		{0, 0, seqRange(1, 10)},
		{4, 0, seqRange(5, 10)},
		{0, 3, []int64{1, 2, 3}},
		{4, 3, []int64{5, 6, 7}},
		{8, 5, []int64{9, 10}},
		{10, 0, nil},
		{20, 0, nil},
	} {
		got := listEvents(t, s, store.EventListParams{RunID: "run-1", AfterSeq: c.after, Limit: c.limit})
		if !slices.Equal(seqs(got), c.want) && !(len(got) == 0 && len(c.want) == 0) {
			t.Errorf("EventList(after %d, limit %d) = %v, want %v", c.after, c.limit, seqs(got), c.want)
		}
	}
	if got := listEvents(t, s, store.EventListParams{RunID: "no-such-run"}); len(got) != 0 {
		t.Errorf("EventList of an unknown run = %v, want none", seqs(got))
	}
}

// testEventListWhileAppending: a reader never sees a gap or a part of a batch, however it
// interleaves with a writer (the API streams events while stages append them).
func testEventListWhileAppending(t *testing.T, h Harness) {
	s := h.Open(t)
	sum := createRun(t, s, summary("run-1", at(0)))
	done := make(chan struct{})
	var wg sync.WaitGroup
	readerErrs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			var seen int
			for {
				select {
				case <-done:
					return
				default:
				}
				evs, err := s.EventList(t.Context(), store.EventListParams{RunID: "run-1"})
				if err != nil {
					readerErrs <- err
					return
				}
				// Batches are of 3 after the first event: 1, 4, 7, ...
				if len(evs) < seen || (len(evs)-1)%3 != 0 || !slices.Equal(seqs(evs), seqRange(1, int64(len(evs)))) {
					readerErrs <- fmt.Errorf("reader saw %v after seeing %d events", seqs(evs), seen)
					return
				}
				seen = len(evs)
			}
		})
	}
	for range 100 {
		appendNext(t, s, &sum, stageEvent(run.StepStarted), stageEvent(run.StepFinished), stageEvent(run.StepStarted))
	}
	close(done)
	wg.Wait()
	close(readerErrs)
	for err := range readerErrs {
		t.Error(err)
	}
}
