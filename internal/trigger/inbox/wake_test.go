package inbox

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/store/sqlite"
	"github.com/paved/paved/internal/trigger"
)

// listCounter is the real store, counting the pending lists that have returned.
type listCounter struct {
	*sqlite.Store
	lists atomic.Int64
}

func (c *listCounter) TriggerList(ctx context.Context, p store.TriggerListParams) ([]store.TriggerRecord, error) {
	defer c.lists.Add(1)
	return c.Store.TriggerList(ctx, p)
}

// TestWakeProcessesAnotherProcessesTrigger: a trigger that another process put in the
// shared store is processed when Wake ticks, long before the next Poll.
func TestWakeProcessesAnotherProcessesTrigger(t *testing.T) {
	t.Parallel()
	sq, err := sqlite.Open(t.Context(), sqlite.Memory)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sq.Close() })
	st := &listCounter{Store: sq}
	wake := make(chan struct{}, 1)
	in, err := New(Config{Store: st, Poll: time.Hour, Wake: wake,
		Launcher: &Launcher{Git: &trigger.Git{Dir: t.TempDir()}, Scheduler: &recorder{}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Stop)
	// Start's own look at the store has found nothing: from now on only Wake (or an
	// hour's Poll) makes the workers look again.
	waitFor(t, "the first look at pending triggers", func() bool { return st.lists.Load() >= 1 })

	tr := trigger.Trigger{ID: "t1", Provider: "github", Kind: trigger.KindPush, Repo: "acme/unknown",
		Ref: "refs/heads/main", Branch: "main", SHA: "aaa", ReceivedAt: time.Now()}
	if _, err := sq.TriggerAdd(t.Context(), store.TriggerAddParams{Triggers: []trigger.Trigger{tr}}); err != nil {
		t.Fatal(err)
	}
	wake <- struct{}{}
	waitFor(t, "the trigger to be processed", func() bool {
		r, err := sq.TriggerGet(t.Context(), "t1")
		return err == nil && r.ProcessedAt != nil
	})
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
}

// TestClaimReplacesList: with Config.Claim (servers sharing PostgreSQL) the workers take
// only what the claim gives them, never the pending list: a trigger another server claimed
// is left to it.
func TestClaimReplacesList(t *testing.T) {
	t.Parallel()
	sq, err := sqlite.Open(t.Context(), sqlite.Memory)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sq.Close() })
	st := &listCounter{Store: sq}
	for _, id := range []string{"mine", "theirs"} {
		tr := trigger.Trigger{ID: id, Provider: "github", Kind: trigger.KindPush, Repo: "acme/unknown",
			Ref: "refs/heads/main", Branch: "main", SHA: id, ReceivedAt: time.Now()}
		if _, err := sq.TriggerAdd(t.Context(), store.TriggerAddParams{Triggers: []trigger.Trigger{tr}}); err != nil {
			t.Fatal(err)
		}
	}
	var claims atomic.Int64
	claim := func(ctx context.Context, n int) ([]store.TriggerRecord, error) {
		if claims.Add(1) > 1 {
			return nil, nil // the one trigger this server claimed is processed
		}
		r, err := sq.TriggerGet(ctx, "mine")
		return []store.TriggerRecord{r}, err
	}
	in, err := New(Config{Store: st, Poll: time.Hour, Claim: claim,
		Launcher: &Launcher{Git: &trigger.Git{Dir: t.TempDir()}, Scheduler: &recorder{}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Stop)
	waitFor(t, "the claimed trigger to be processed", func() bool {
		r, err := sq.TriggerGet(t.Context(), "mine")
		return err == nil && r.ProcessedAt != nil
	})
	waitFor(t, "the claim to come back empty", func() bool { return claims.Load() >= 2 })
	if r, err := sq.TriggerGet(t.Context(), "theirs"); err != nil || r.ProcessedAt != nil {
		t.Errorf("the trigger another server claimed was processed here (%v)", err)
	}
	if n := st.lists.Load(); n != 0 {
		t.Errorf("the pending list was read %d times; want only claims", n)
	}
}
