package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/paved/paved/internal/store"
)

// AuditStore is the hash-chained audit log every store keeps (internal/audit computes the
// hashes; the store appends atomically against the head it reads).
type AuditStore interface {
	AuditAppend(ctx context.Context, seal func(store.AuditHead) (store.AuditEntry, error)) (store.AuditEntry, error)
	AuditHead(ctx context.Context) (store.AuditHead, error)
	AuditAnchor(ctx context.Context) (store.AuditHead, error)
	AuditList(ctx context.Context, p store.AuditListParams) ([]store.AuditEntry, error)
	AuditPrune(ctx context.Context, p store.AuditPruneParams) (int64, error)
}

var auditT0 = time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)

// chainSeal makes an entry after head whose hash is a stand-in for internal/audit's: what
// the suite checks is that each entry names the hash of the one before it.
func chainSeal(actor, action string, at time.Time) func(store.AuditHead) (store.AuditEntry, error) {
	return func(h store.AuditHead) (store.AuditEntry, error) {
		seq := h.Seq + 1
		return store.AuditEntry{Seq: seq, Time: at, Actor: actor, Action: action, Team: "payments", Target: "t",
			Details: []byte(`{"k":"v"}`), PrevHash: h.Hash, Hash: fmt.Sprintf("h%d<%s", seq, h.Hash)}, nil
	}
}

func testAuditAppendList(t *testing.T, h Harness) {
	s, ctx := h.Open(t), t.Context()
	head, err := s.AuditHead(ctx)
	if err != nil || head != (store.AuditHead{}) {
		t.Fatalf("empty head = %+v, %v", head, err)
	}
	for i, a := range []string{"secret.create", "secret.read", "approval.grant", "secret.read"} {
		actor := "ana"
		if i%2 == 1 {
			actor = "ben"
		}
		if _, err := s.AuditAppend(ctx, chainSeal(actor, a, auditT0.Add(time.Duration(i)*time.Hour))); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.AuditList(ctx, store.AuditListParams{})
	if err != nil || len(all) != 4 {
		t.Fatalf("AuditList = %d, %v", len(all), err)
	}
	for i, e := range all {
		if e.Seq != int64(i+1) || string(e.Details) != `{"k":"v"}` || !e.Time.Equal(auditT0.Add(time.Duration(i)*time.Hour)) {
			t.Fatalf("entry %d = %+v", i, e)
		}
		if i > 0 && e.PrevHash != all[i-1].Hash {
			t.Fatalf("entry %d prev_hash %q, want %q", e.Seq, e.PrevHash, all[i-1].Hash)
		}
	}
	for _, c := range []struct {
		p    store.AuditListParams
		want int
	}{
		{store.AuditListParams{Actor: "ben"}, 2},
		{store.AuditListParams{Action: "secret.read"}, 2},
		{store.AuditListParams{Since: auditT0.Add(time.Hour), Until: auditT0.Add(3 * time.Hour)}, 2},
		{store.AuditListParams{AfterSeq: 3}, 1},
		{store.AuditListParams{Limit: 1}, 1},
		{store.AuditListParams{Team: "other"}, 0},
	} {
		got, err := s.AuditList(ctx, c.p)
		if err != nil || len(got) != c.want || got == nil {
			t.Errorf("AuditList(%+v) = %d, %v; want %d", c.p, len(got), err, c.want)
		}
	}
	if _, err := s.AuditList(ctx, store.AuditListParams{Limit: -1}); err == nil {
		t.Error("negative limit accepted")
	}
	// An entry that does not follow the head is refused and nothing is stored.
	_, err = s.AuditAppend(ctx, func(h store.AuditHead) (store.AuditEntry, error) {
		return store.AuditEntry{Seq: h.Seq + 2, Time: auditT0, Actor: "x", Action: "y", Hash: "z"}, nil
	})
	if err == nil {
		t.Fatal("AuditAppend with a gap succeeded")
	}
	if head, _ := s.AuditHead(ctx); head.Seq != 4 || head.Hash != all[3].Hash {
		t.Fatalf("head = %+v, want seq 4", head)
	}
}

// testAuditAppendRace appends from many goroutines at once: the chain must not fork (every
// seq once, each prev_hash the hash before it).
func testAuditAppendRace(t *testing.T, h Harness) {
	s, ctx := h.Open(t), t.Context()
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.AuditAppend(ctx, chainSeal(fmt.Sprintf("u%d", i), "token.use", auditT0))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.AuditList(ctx, store.AuditListParams{Limit: 1000})
	if err != nil || len(all) != n {
		t.Fatalf("AuditList = %d, %v; want %d", len(all), err, n)
	}
	for i, e := range all {
		if e.Seq != int64(i+1) || (i > 0 && e.PrevHash != all[i-1].Hash) || (i == 0 && e.PrevHash != "") {
			t.Fatalf("chain forks at entry %d: %+v", i, e)
		}
	}
}

func testAuditPrune(t *testing.T, h Harness) {
	s, ctx := h.Open(t), t.Context()
	// Times out of order on purpose: entry 3 is old but comes after entry 2, which is
	// not; pruning takes only the prefix 1.
	for i, d := range []time.Duration{0, 48 * time.Hour, 0, 72 * time.Hour} {
		if _, err := s.AuditAppend(ctx, chainSeal("ana", fmt.Sprint("a", i), auditT0.Add(d))); err != nil {
			t.Fatal(err)
		}
	}
	all, _ := s.AuditList(ctx, store.AuditListParams{})
	n, err := s.AuditPrune(ctx, store.AuditPruneParams{Before: auditT0.Add(24 * time.Hour)})
	if err != nil || n != 1 {
		t.Fatalf("AuditPrune = %d, %v; want 1", n, err)
	}
	anchor, err := s.AuditAnchor(ctx)
	if err != nil || anchor.Seq != 1 || anchor.Hash != all[0].Hash {
		t.Fatalf("anchor = %+v, %v; want entry 1", anchor, err)
	}
	left, _ := s.AuditList(ctx, store.AuditListParams{})
	if len(left) != 3 || left[0].Seq != 2 || left[0].PrevHash != anchor.Hash {
		t.Fatalf("left after prune = %+v", left)
	}
	// Nothing old at the front: nothing goes, the anchor stays.
	if n, err := s.AuditPrune(ctx, store.AuditPruneParams{Before: auditT0.Add(24 * time.Hour)}); err != nil || n != 0 {
		t.Fatalf("second AuditPrune = %d, %v; want 0", n, err)
	}
	// Everything: the next entry continues from the anchor.
	if n, err := s.AuditPrune(ctx, store.AuditPruneParams{Before: auditT0.Add(100 * time.Hour)}); err != nil || n != 3 {
		t.Fatalf("full AuditPrune = %d, %v; want 3", n, err)
	}
	head, err := s.AuditHead(ctx)
	if err != nil || head.Seq != 4 || head.Hash != all[3].Hash {
		t.Fatalf("head after full prune = %+v, %v; want entry 4", head, err)
	}
	e, err := s.AuditAppend(ctx, chainSeal("ana", "after", auditT0.Add(200*time.Hour)))
	if err != nil || e.Seq != 5 || e.PrevHash != all[3].Hash {
		t.Fatalf("append after prune = %+v, %v", e, err)
	}
}
