package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/trigger"
)

// TriggerStore is the inbox part of Store.
type TriggerStore interface {
	TriggerAdd(ctx context.Context, p store.TriggerAddParams) ([]store.TriggerAdded, error)
	TriggerGet(ctx context.Context, id string) (store.TriggerRecord, error)
	TriggerList(ctx context.Context, p store.TriggerListParams) ([]store.TriggerRecord, error)
	TriggerDone(ctx context.Context, p store.TriggerDoneParams) error
}

func testTrigger(id, delivery, sha string, received time.Time) trigger.Trigger {
	return trigger.Trigger{
		ID: id, Provider: "github", Kind: trigger.KindPush, Repo: "acme/payments", Ref: "refs/heads/main",
		Branch: "main", SHA: sha, DeliveryID: delivery, ReceivedAt: received,
		Author:  trigger.Author{Login: "ada"},
		Changes: &trigger.Changes{Added: []string{"a.go"}, Modified: []string{}, Removed: []string{}},
	}
}

func addTriggers(t *testing.T, s Store, window time.Duration, ts ...trigger.Trigger) []store.TriggerAdded {
	t.Helper()
	got, err := s.TriggerAdd(t.Context(), store.TriggerAddParams{Triggers: ts, Window: window})
	if err != nil {
		t.Fatalf("TriggerAdd: %v", err)
	}
	if len(got) != len(ts) {
		t.Fatalf("TriggerAdd answered %d of %d triggers", len(got), len(ts))
	}
	return got
}

func testTriggerDedup(t *testing.T, h Harness) {
	s := h.Open(t)
	const window = 10 * time.Minute
	got := addTriggers(t, s, window,
		testTrigger("t1", "d1", "aaa", at(0)),
		testTrigger("t2", "d1", "bbb", at(time.Second)),   // redelivery: same delivery id
		testTrigger("t3", "d3", "aaa", at(2*time.Second)), // same key inside the window
		testTrigger("t4", "", "ccc", at(3*time.Second)),   // no delivery id: new
		testTrigger("t5", "", "ccc", at(4*time.Second)),   // same key, no delivery id
	)
	want := []store.TriggerAdded{{ID: "t1"}, {ID: "t1", Duplicate: true}, {ID: "t1", Duplicate: true}, {ID: "t4"}, {ID: "t4", Duplicate: true}}
	if !slices.Equal(got, want) {
		t.Errorf("TriggerAdd = %v, want %v", got, want)
	}
	// Another branch, the same commit: not a duplicate.
	other := testTrigger("t6", "d6", "aaa", at(5*time.Second))
	other.Ref, other.Branch = "refs/heads/release", "release"
	// After the window the key is free again; the delivery id never is.
	late := testTrigger("t7", "d7", "aaa", at(window+time.Second))
	again := testTrigger("t8", "d1", "zzz", at(window+2*time.Second))
	got = addTriggers(t, s, window, other, late, again)
	want = []store.TriggerAdded{{ID: "t6"}, {ID: "t7"}, {ID: "t1", Duplicate: true}}
	if !slices.Equal(got, want) {
		t.Errorf("TriggerAdd = %v, want %v", got, want)
	}
	// Window 0: only delivery ids count.
	got = addTriggers(t, s, 0, testTrigger("t9", "", "aaa", at(window+3*time.Second)))
	if got[0] != (store.TriggerAdded{ID: "t9"}) {
		t.Errorf("window 0: %v, want t9 added", got[0])
	}
	list, err := s.TriggerList(t.Context(), store.TriggerListParams{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range list {
		ids = append(ids, r.ID)
	}
	if w := []string{"t9", "t7", "t6", "t4", "t1"}; !slices.Equal(ids, w) {
		t.Errorf("TriggerList = %v, want %v (newest first, no duplicates stored)", ids, w)
	}
}

func testTriggerRoundTrip(t *testing.T, h Harness) {
	s := h.Open(t)
	in := testTrigger("t1", "d1", "aaa", at(0).In(time.FixedZone("UTC+1", 3600)))
	in.PR = &trigger.PR{Number: 7, SourceBranch: "x", TargetBranch: "main", Labels: []string{"perf"}}
	addTriggers(t, s, time.Minute, in)
	r, err := s.TriggerGet(t.Context(), "t1")
	if err != nil {
		t.Fatal(err)
	}
	if r.ProcessedAt != nil || len(r.Runs) != 0 || r.Note != "" {
		t.Errorf("a new trigger is pending with no runs, got %+v", r)
	}
	if !r.ReceivedAt.Equal(in.ReceivedAt) || r.PR == nil || r.PR.Labels[0] != "perf" || r.Changes.Added[0] != "a.go" {
		t.Errorf("TriggerGet = %+v, want %+v", r.Trigger, in)
	}
	if _, err := s.TriggerGet(t.Context(), "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TriggerGet(unknown) = %v, want ErrNotFound", err)
	}
	if err := s.TriggerDone(t.Context(), store.TriggerDoneParams{ID: "nope", At: at(1)}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TriggerDone(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := s.TriggerAdd(t.Context(), store.TriggerAddParams{Triggers: []trigger.Trigger{{ID: "x"}}}); err == nil {
		t.Error("TriggerAdd accepted a trigger without ReceivedAt, Provider and Repo")
	}
	if _, err := s.TriggerList(t.Context(), store.TriggerListParams{Limit: -1}); err == nil {
		t.Error("TriggerList accepted a negative limit")
	}
}

func testTriggerPending(t *testing.T, h Harness) {
	s := h.Open(t)
	for i := range 5 {
		addTriggers(t, s, time.Minute, testTrigger(fmt.Sprintf("t%d", i), "", fmt.Sprint(i), at(time.Duration(i))))
	}
	if err := s.TriggerDone(t.Context(), store.TriggerDoneParams{ID: "t1", At: at(time.Hour), Runs: []string{"r1", "r2"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.TriggerDone(t.Context(), store.TriggerDoneParams{ID: "t3", At: at(time.Hour), Note: "no pipeline matches"}); err != nil {
		t.Fatal(err)
	}
	pending, err := s.TriggerList(t.Context(), store.TriggerListParams{Pending: true, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 2 || pending[0].ID != "t0" || pending[1].ID != "t2" {
		t.Errorf("pending = %v, want t0, t2 (oldest first, limited)", pending)
	}
	r, err := s.TriggerGet(t.Context(), "t1")
	if err != nil {
		t.Fatal(err)
	}
	if r.ProcessedAt == nil || !r.ProcessedAt.Equal(at(time.Hour)) || !slices.Equal(r.Runs, []string{"r1", "r2"}) {
		t.Errorf("done trigger = %+v", r)
	}
	if r, _ := s.TriggerGet(t.Context(), "t3"); r.Note != "no pipeline matches" || r.Runs == nil {
		t.Errorf("note or runs lost: %+v", r)
	}
}

// testTriggerRace adds the same deliveries from many goroutines at once: each must be
// stored exactly once, and every caller told the same id.
func testTriggerRace(t *testing.T, h Harness) {
	s := h.Open(t)
	const writers, deliveries = 8, 20
	ids := make([][]store.TriggerAdded, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for d := range deliveries {
				tr := testTrigger(fmt.Sprintf("w%d-%d", w, d), fmt.Sprintf("d%d", d), fmt.Sprint(d), at(time.Duration(d)))
				got, err := s.TriggerAdd(t.Context(), store.TriggerAddParams{Triggers: []trigger.Trigger{tr}, Window: time.Minute})
				if err != nil {
					t.Error(err)
					return
				}
				ids[w] = append(ids[w], got...)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for d := range deliveries {
		fresh := 0
		for w := range writers {
			if !ids[w][d].Duplicate {
				fresh++
			}
			if ids[w][d].ID != ids[0][d].ID {
				t.Errorf("delivery %d: writers were told different ids %s and %s", d, ids[w][d].ID, ids[0][d].ID)
			}
		}
		if fresh != 1 {
			t.Errorf("delivery %d stored %d times, want once", d, fresh)
		}
	}
	all, err := s.TriggerList(t.Context(), store.TriggerListParams{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != deliveries {
		t.Errorf("%d triggers stored, want %d", len(all), deliveries)
	}
}

// testTriggerReopen: triggers and their dedup keys outlive a restart.
func testTriggerReopen(t *testing.T, h Harness) {
	if h.Reopen == nil {
		t.Skip("the store does not outlive Close")
	}
	s := h.Open(t)
	addTriggers(t, s, time.Hour, testTrigger("t1", "d1", "aaa", at(0)))
	s = h.Reopen(t, s)
	got := addTriggers(t, s, time.Hour,
		testTrigger("t2", "d1", "bbb", at(time.Second)), testTrigger("t3", "d3", "aaa", at(time.Second)))
	if want := []store.TriggerAdded{{ID: "t1", Duplicate: true}, {ID: "t1", Duplicate: true}}; !slices.Equal(got, want) {
		t.Errorf("after reopen TriggerAdd = %v, want %v", got, want)
	}
	if _, err := s.TriggerGet(t.Context(), "t1"); err != nil {
		t.Errorf("t1 lost in reopen: %v", err)
	}
}
