package deploy

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/paved/paved/internal/cache"
	"github.com/paved/paved/internal/store/sqlite"
)

// TestEnvironmentLease: of two controllers sharing a store, one acts on an environment at a
// time; the other waits, and takes it once the first stops (released) or dies (expired).
func TestEnvironmentLease(t *testing.T) {
	t.Parallel()
	st, err := sqlite.Open(context.Background(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	blobs, err := cache.NewBlobs(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	newController := func(owner string) *Controller {
		c, err := New(Config{Dir: t.TempDir(), Blobs: blobs, History: st, Leases: st, Owner: owner, LeaseTTL: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Stop)
		return c
	}
	a, b := newController("a"), newController("b")
	ctx := context.Background()
	if ok, err := a.holds(ctx, "dev"); !ok || err != nil {
		t.Fatalf("a could not take dev: %v", err)
	}
	if ok, _ := b.holds(ctx, "dev"); ok {
		t.Fatal("b took dev while a holds it")
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := b.waitHold(short, "dev"); err == nil {
		t.Fatal("b's wait for dev ended while a holds it")
	}
	// a renews: past the lease time, dev is still a's.
	deadline := time.Now().Add(600 * time.Millisecond)
	for time.Now().Before(deadline) {
		if ok, _ := b.holds(ctx, "dev"); ok {
			t.Fatal("b took dev although a renews it")
		}
		time.Sleep(50 * time.Millisecond) // sampling over a span of time, not a synchronisation
	}
	a.Stop()
	long, cancel2 := context.WithTimeout(ctx, 5*time.Second)
	defer cancel2()
	if err := b.waitHold(long, "dev"); err != nil {
		t.Fatalf("b did not get dev after a stopped: %v", err)
	}

	// A controller that dies (its lease is never renewed) loses the environment after the
	// lease time.
	dead, err := New(Config{Dir: t.TempDir(), Blobs: blobs, History: st, Leases: st, Owner: "dead", LeaseTTL: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := dead.holds(ctx, "prod"); !ok {
		t.Fatal("dead could not take prod")
	}
	if err := b.waitHold(long, "prod"); err != nil {
		t.Fatalf("b did not get prod after its holder died: %v", err)
	}
}
