package storetest

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// LeaseStore is the lease part of Store: what servers sharing a database use to own runs
// and environments one at a time.
type LeaseStore interface {
	LeaseAcquire(ctx context.Context, p store.LeaseParams) (bool, error)
	LeaseRenew(ctx context.Context, p store.LeaseRenewParams) ([]string, error)
	LeaseRelease(ctx context.Context, p store.LeaseParams) error
	RunLeaseClaim(ctx context.Context, p store.RunLeaseClaimParams) ([]string, error)
}

func acquire(t *testing.T, s Store, name, owner string, now time.Time) bool {
	t.Helper()
	ok, err := s.LeaseAcquire(t.Context(), store.LeaseParams{Name: name, Owner: owner, Now: now, Until: now.Add(10 * time.Second)})
	if err != nil {
		t.Fatalf("LeaseAcquire(%s, %s): %v", name, owner, err)
	}
	return ok
}

// testLeases: a lease is held by one owner until it expires or is released; its owner
// renews it, even late, until another took it.
func testLeases(t *testing.T, h Harness) {
	s := h.Open(t)
	if !acquire(t, s, "env/dev", "a", at(0)) {
		t.Fatal("a could not take a free lease")
	}
	if acquire(t, s, "env/dev", "b", at(5*time.Second)) {
		t.Error("b took a's live lease")
	}
	if !acquire(t, s, "env/dev", "a", at(5*time.Second)) {
		t.Error("a could not renew its own lease by acquiring it")
	}
	// a's lease now runs to 15 s.
	held, err := s.LeaseRenew(t.Context(), store.LeaseRenewParams{Owner: "a", Names: []string{"env/dev", "env/prod"}, Until: at(20 * time.Second)})
	if err != nil || !slices.Equal(held, []string{"env/dev"}) {
		t.Errorf("LeaseRenew(a) = %v, %v; want [env/dev]", held, err)
	}
	if acquire(t, s, "env/dev", "b", at(19*time.Second)) {
		t.Error("b took a's renewed lease before it expired")
	}
	if !acquire(t, s, "env/dev", "b", at(20*time.Second)) {
		t.Error("b could not take a lease that expired")
	}
	held, err = s.LeaseRenew(t.Context(), store.LeaseRenewParams{Owner: "a", Names: []string{"env/dev"}, Until: at(time.Minute)})
	if err != nil || len(held) != 0 {
		t.Errorf("LeaseRenew(a) after b took it = %v, %v; want none held", held, err)
	}
	if err := s.LeaseRelease(t.Context(), store.LeaseParams{Name: "env/dev", Owner: "a"}); err != nil {
		t.Fatal(err)
	}
	if acquire(t, s, "env/dev", "c", at(21*time.Second)) {
		t.Error("a's release freed b's lease")
	}
	if err := s.LeaseRelease(t.Context(), store.LeaseParams{Name: "env/dev", Owner: "b"}); err != nil {
		t.Fatal(err)
	}
	if !acquire(t, s, "env/dev", "c", at(21*time.Second)) {
		t.Error("c could not take a released lease")
	}
	if _, err := s.LeaseAcquire(t.Context(), store.LeaseParams{Name: "x", Owner: "a", Now: at(0), Until: at(0)}); err == nil {
		t.Error("LeaseAcquire with Until not after Now succeeded")
	}
}

// testLeaseRace: owners racing for one expired lease: exactly one gets it.
func testLeaseRace(t *testing.T, h Harness) {
	s := h.Open(t)
	acquire(t, s, "run/x", "dead", at(0))
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		won []string
	)
	for i := range 8 {
		owner := string(rune('a' + i))
		wg.Go(func() {
			ok, err := s.LeaseAcquire(context.Background(), store.LeaseParams{Name: "run/x", Owner: owner, Now: at(time.Minute), Until: at(2 * time.Minute)})
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				won = append(won, owner)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(won) != 1 {
		t.Errorf("owners that took the expired lease: %v, want exactly one", won)
	}
}

// testRunLeaseClaim: unfinished runs without a live lease are claimed once each, oldest
// first; finished runs and live leases are left alone; an expired lease is claimed again.
func testRunLeaseClaim(t *testing.T, h Harness) {
	s := h.Open(t)
	var all []string
	for i := range 6 {
		sum := createRun(t, s, summary("run-"+string(rune('a'+i)), at(time.Duration(i)*time.Second)))
		all = append(all, sum.ID)
		if i == 5 {
			sum.Phase, sum.FinishedAt = run.Succeeded, at(time.Minute)
			appendNext(t, s, &sum, run.Event{Type: run.RunFinished, Status: string(run.Succeeded)})
		}
	}
	// run-b is held alive by its server.
	acquire(t, s, store.RunLeasePrefix+"run-b", "live", at(time.Minute))
	claim := func(owner string, now time.Time, n int) []string {
		t.Helper()
		ids, err := s.RunLeaseClaim(t.Context(), store.RunLeaseClaimParams{Owner: owner, Now: now, Until: now.Add(10 * time.Second), Limit: n})
		if err != nil {
			t.Fatalf("RunLeaseClaim(%s): %v", owner, err)
		}
		return ids
	}
	if got := claim("a", at(time.Minute), 2); !slices.Equal(got, []string{"run-a", "run-c"}) {
		t.Errorf("first claim = %v, want [run-a run-c]", got)
	}
	if got := claim("b", at(time.Minute), 0); !slices.Equal(got, []string{"run-d", "run-e"}) {
		t.Errorf("second claim = %v, want [run-d run-e]", got)
	}
	if got := claim("c", at(time.Minute+time.Second), 0); len(got) != 0 {
		t.Errorf("claim with every run held = %v, want none", got)
	}
	// After 10 s every lease but live's renewed one expired.
	if _, err := s.LeaseRenew(t.Context(), store.LeaseRenewParams{Owner: "live", Names: []string{store.RunLeasePrefix + "run-b"}, Until: at(2 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	got := claim("c", at(time.Minute+10*time.Second), 0)
	slices.Sort(got)
	if !slices.Equal(got, []string{"run-a", "run-c", "run-d", "run-e"}) {
		t.Errorf("claim after expiry = %v, want [run-a run-c run-d run-e]", got)
	}
	_ = all
}

// testRunLeaseClaimRace: servers claiming at once get disjoint runs, and all of them.
func testRunLeaseClaimRace(t *testing.T, h Harness) {
	s := h.Open(t)
	for i := range 40 {
		createRun(t, s, summary("run-"+string(rune('A'+i)), at(time.Duration(i)*time.Millisecond)))
	}
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		got = map[string]string{}
	)
	for w := range 4 {
		owner := string(rune('a' + w))
		wg.Go(func() {
			for {
				ids, err := s.RunLeaseClaim(context.Background(), store.RunLeaseClaimParams{Owner: owner, Now: at(time.Minute), Until: at(2 * time.Minute), Limit: 3})
				if err != nil {
					t.Error(err)
					return
				}
				if len(ids) == 0 {
					return
				}
				mu.Lock()
				for _, id := range ids {
					if prev, ok := got[id]; ok {
						t.Errorf("run %s claimed by %s and %s", id, prev, owner)
					}
					got[id] = owner
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(got) != 40 {
		t.Errorf("claimed %d runs, want 40", len(got))
	}
}
