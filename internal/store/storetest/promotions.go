package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// PromotionStore is the freight and promotions every store keeps (internal/promote reads
// and writes them; the API lists them).
type PromotionStore interface {
	FreightPut(ctx context.Context, f store.Freight) error
	FreightGet(ctx context.Context, idOrAlias string) (store.Freight, error)
	FreightList(ctx context.Context, limit int) ([]store.Freight, error)
	PromotionAppend(ctx context.Context, p store.Promotion) error
	PromotionUpdate(ctx context.Context, p store.Promotion) (store.Promotion, error)
	PromotionGet(ctx context.Context, id string) (store.Promotion, error)
	PromotionList(ctx context.Context, p store.PromotionListParams) ([]store.Promotion, error)
}

var promoteT0 = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

func freight(id, alias string, at time.Time) store.Freight {
	return store.Freight{
		ID: id, Alias: alias, Artifacts: map[string]string{"deploy-dev": "sha256:" + fmt.Sprintf("%064d", 9)},
		Repo: "acme/app", SHA: "abc", ConfigHash: "cfg", RunID: "run-1", Author: "ana", CreatedAt: at,
		Coverage: &run.Coverage{Files: []string{"test:cover.out"}, Format: "go", Covered: 712, Total: 1000, Percent: 71.2},
	}
}

func promotion(id, env, fr string, at time.Time) store.Promotion {
	return store.Promotion{
		ID: id, Freight: fr, Environment: env, State: store.PromotionPending, Risk: "medium",
		RiskReason: "src/a.go is business logic", Files: []string{"src/a.go"}, RequiredApprovals: 1,
		Author: "ana", RequestedBy: "auto", CreatedAt: at, UpdatedAt: at,
		// The hotfix and timeout fields round-trip like the rest.
		BaseSHA: "0abc", PendingSince: at, Hotfix: true, HotfixReason: "outage", Skipped: []string{"coverage (passes)"},
		FollowUp:     &store.FollowUp{RunID: "run-2", Stages: []string{"sast"}, Phase: "SUCCEEDED", Summary: "SUCCEEDED: gate/sarif pass (no findings)"},
		GitOpsCommit: "c0ffee",
	}
}

func testFreight(t *testing.T, h Harness) {
	s, ctx := h.Open(t), t.Context()
	f := freight("sha256:f1", "f1", promoteT0)
	if err := s.FreightPut(ctx, f); err != nil {
		t.Fatal(err)
	}
	// Immutable: a second put of the same ID is a no-op, even with other content.
	g := f
	g.SHA = "changed"
	if err := s.FreightPut(ctx, g); err != nil {
		t.Fatalf("FreightPut again = %v, want nil", err)
	}
	for _, key := range []string{"sha256:f1", "f1"} {
		got, err := s.FreightGet(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(f, got) {
			t.Errorf("FreightGet(%s) = %+v, want %+v", key, got, f)
		}
	}
	if err := s.FreightPut(ctx, freight("sha256:f2", "f1", promoteT0)); !errors.Is(err, store.ErrConflict) {
		t.Errorf("FreightPut with a taken alias = %v, want ErrConflict", err)
	}
	if _, err := s.FreightGet(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("FreightGet(nope) = %v, want ErrNotFound", err)
	}
	if err := s.FreightPut(ctx, freight("sha256:f3", "f3", promoteT0.Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	list, err := s.FreightList(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != "sha256:f3" || list[1].ID != "sha256:f1" {
		t.Errorf("FreightList = %+v, want f3 then f1", list)
	}
	if _, err := s.FreightList(ctx, -1); err == nil {
		t.Error("FreightList(-1) = nil error")
	}
}

func testPromotionRoundTrip(t *testing.T, h Harness) {
	s, ctx := h.Open(t), t.Context()
	p := promotion("p1", "prod", "sha256:f1", promoteT0)
	if err := s.PromotionAppend(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := s.PromotionAppend(ctx, p); !errors.Is(err, store.ErrConflict) {
		t.Errorf("PromotionAppend twice = %v, want ErrConflict", err)
	}
	got, err := s.PromotionGet(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	p.Version = 1
	if !reflect.DeepEqual(p, got) {
		t.Errorf("PromotionGet = %+v, want %+v", got, p)
	}
	got.Decisions = append(got.Decisions, store.Decision{By: "bo", Approved: true, Reason: "ok", At: promoteT0.Add(time.Second)})
	got.State = store.PromotionApproved
	up, err := s.PromotionUpdate(ctx, got)
	if err != nil {
		t.Fatal(err)
	}
	if up.Version != 2 {
		t.Errorf("Version after update = %d, want 2", up.Version)
	}
	again, err := s.PromotionGet(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(up, again) {
		t.Errorf("PromotionGet after update = %+v, want %+v", again, up)
	}
	if _, err := s.PromotionUpdate(ctx, got); !errors.Is(err, store.ErrConflict) {
		t.Errorf("PromotionUpdate with a stale version = %v, want ErrConflict", err)
	}
	if _, err := s.PromotionUpdate(ctx, promotion("nope", "prod", "f", promoteT0)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("PromotionUpdate(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := s.PromotionGet(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("PromotionGet(nope) = %v, want ErrNotFound", err)
	}
	if err := s.PromotionAppend(ctx, store.Promotion{ID: "x"}); err == nil || errors.Is(err, store.ErrConflict) {
		t.Errorf("PromotionAppend without fields = %v, want a plain error", err)
	}
}

// Two approvers deciding at once: exactly one update wins, the other must re-read.
func testPromotionUpdateRace(t *testing.T, h Harness) {
	s, ctx := h.Open(t), t.Context()
	if err := s.PromotionAppend(ctx, promotion("p1", "prod", "f", promoteT0)); err != nil {
		t.Fatal(err)
	}
	p, err := s.PromotionGet(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			q := p
			q.Decisions = []store.Decision{{By: fmt.Sprint("u", i), Approved: true, At: promoteT0}}
			_, errs[i] = s.PromotionUpdate(ctx, q)
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("PromotionUpdate = %v, want nil or ErrConflict", err)
		}
	}
	if won != 1 {
		t.Errorf("%d updates won, want 1", won)
	}
}

func testPromotionList(t *testing.T, h Harness) {
	s, ctx := h.Open(t), t.Context()
	for i, p := range []store.Promotion{
		promotion("a", "staging", "f1", promoteT0),
		promotion("b", "prod", "f1", promoteT0.Add(time.Minute)),
		promotion("c", "prod", "f2", promoteT0.Add(2*time.Minute)),
	} {
		if i == 2 {
			p.State = store.PromotionBlocked
		}
		if err := s.PromotionAppend(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		p    store.PromotionListParams
		want []string
	}{
		{store.PromotionListParams{}, []string{"c", "b", "a"}},
		{store.PromotionListParams{Environment: "prod"}, []string{"c", "b"}},
		{store.PromotionListParams{State: store.PromotionPending}, []string{"b", "a"}},
		{store.PromotionListParams{Freight: "f1"}, []string{"b", "a"}},
		{store.PromotionListParams{Limit: 1}, []string{"c"}},
		{store.PromotionListParams{Environment: "none"}, []string{}},
	} {
		list, err := s.PromotionList(ctx, c.p)
		if err != nil {
			t.Fatal(err)
		}
		got := []string{}
		for _, p := range list {
			got = append(got, p.ID)
		}
		if !reflect.DeepEqual(c.want, got) {
			t.Errorf("PromotionList(%+v) = %+v, want %+v", c.p, got, c.want)
		}
	}
	if _, err := s.PromotionList(ctx, store.PromotionListParams{Limit: -1}); err == nil {
		t.Error("PromotionList(Limit -1) = nil error")
	}
}

func testPromotionReopen(t *testing.T, h Harness) {
	if h.Reopen == nil {
		t.Skip("the store does not outlive Close")
	}
	s, ctx := h.Open(t), t.Context()
	if err := s.FreightPut(ctx, freight("sha256:f1", "f1", promoteT0)); err != nil {
		t.Fatal(err)
	}
	if err := s.PromotionAppend(ctx, promotion("p1", "prod", "sha256:f1", promoteT0)); err != nil {
		t.Fatal(err)
	}
	s = h.Reopen(t, s)
	if _, err := s.FreightGet(ctx, "f1"); err != nil {
		t.Errorf("FreightGet after reopen = %v", err)
	}
	if _, err := s.PromotionGet(ctx, "p1"); err != nil {
		t.Errorf("PromotionGet after reopen = %v", err)
	}
}
