package schedule

import (
	"context"
	"testing"
	"time"

	"github.com/paved/paved/internal/execute/fake"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store/postgres"
	"github.com/paved/paved/internal/store/postgres/pgtest"
)

// TestCancelReachesOwner: on PostgreSQL, a cancel asked of a server that does not drive the
// run reaches the one that does (NOTIFY), which kills the stage and ends the run.
func TestCancelReachesOwner(t *testing.T) {
	t.Parallel()
	dsn := pgtest.ForTest(t, pgtest.Config{}).NewDatabase(t)
	open := func() *postgres.Store {
		st, err := postgres.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	start := func(st *postgres.Store, owner string, ex *fake.Executor) *Scheduler {
		s, err := New(Config{Leases: st, CancelRelay: st, Owner: owner, LeaseTTL: time.Hour, LogFlush: 5 * time.Millisecond}, st, ex)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Stop)
		return s
	}
	exA := &fake.Executor{Started: make(chan string, 1)}
	a := start(open(), "a", exA)
	b := start(open(), "b", &fake.Executor{})
	id, err := a.Create(context.Background(), CreateParams{Info: run.Info{Repo: "a/b", Trigger: run.Trigger{Kind: "push", Branch: "main"},
		Pipeline: stages([3]string{"s", "", "block"})}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-exA.Started:
	case <-time.After(20 * time.Second):
		t.Fatal("the stage never started")
	}
	if err := b.Cancel(context.Background(), id, "stop it"); err != nil {
		t.Fatalf("Cancel on the other server: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	final, err := b.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if final.Phase != run.Cancelled || final.CancelReason != "stop it" {
		t.Fatalf("phase %s, cancel reason %q; want CANCELLED by \"stop it\"", final.Phase, final.CancelReason)
	}
	if b.get(id) != nil {
		t.Error("b took the run over although a holds it")
	}
}
