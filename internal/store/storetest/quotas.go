package storetest

import (
	"context"
	"maps"
	"testing"
)

// QuotaStore keeps team quotas set through the API across restarts.
type QuotaStore interface {
	TeamQuotaPut(ctx context.Context, team string, limit int) error
	TeamQuotaList(ctx context.Context) (map[string]int, error)
}

func testTeamQuotas(t *testing.T, h Harness) {
	s, ctx := h.Open(t), t.Context()
	got, err := s.TeamQuotaList(ctx)
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("empty store: quotas %v, %v; want an empty, non-nil map", got, err)
	}
	for _, bad := range []struct {
		team  string
		limit int
	}{{"", 2}, {"web", -1}} {
		if err := s.TeamQuotaPut(ctx, bad.team, bad.limit); err == nil {
			t.Errorf("TeamQuotaPut(%q, %d) = nil; want an error", bad.team, bad.limit)
		}
	}
	for _, q := range []struct {
		team  string
		limit int
	}{{"web", 2}, {"data", 0}, {"web", 5}} {
		if err := s.TeamQuotaPut(ctx, q.team, q.limit); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]int{"web": 5, "data": 0}
	if got, err := s.TeamQuotaList(ctx); err != nil || !maps.Equal(got, want) {
		t.Fatalf("quotas %v, %v; want %v", got, err, want)
	}
	if h.Reopen == nil {
		return
	}
	s = h.Reopen(t, s)
	if got, err := s.TeamQuotaList(ctx); err != nil || !maps.Equal(got, want) {
		t.Fatalf("after reopen: quotas %v, %v; want %v", got, err, want)
	}
}
