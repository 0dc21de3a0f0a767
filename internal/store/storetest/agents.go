package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/paved/paved/internal/store"
)

// AgentStore is the agent token part of Store.
type AgentStore interface {
	AgentTokenCreate(ctx context.Context, t store.AgentToken) error
	AgentTokenRevoke(ctx context.Context, t store.AgentToken) error
	AgentTokenList(ctx context.Context) ([]store.AgentToken, error)
	AgentTokenFind(ctx context.Context, hash string) (store.AgentToken, error)
}

// testAgentTokens: a token is found by its hash until revoked; a name is taken while its
// token is valid and free again once it is revoked.
func testAgentTokens(t *testing.T, h Harness) {
	s := h.Open(t)
	ctx := t.Context()
	if list, err := s.AgentTokenList(ctx); err != nil || list == nil || len(list) != 0 {
		t.Errorf("AgentTokenList on an empty store = %v, %v; want an empty list", list, err)
	}
	if err := s.AgentTokenCreate(ctx, store.AgentToken{Name: "builder-1", Hash: "h1", CreatedAt: at(0)}); err != nil {
		t.Fatal(err)
	}
	if err := s.AgentTokenCreate(ctx, store.AgentToken{Name: "builder-1", Hash: "h2", CreatedAt: at(1)}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("a second token for a valid name: %v, want ErrConflict", err)
	}
	got, err := s.AgentTokenFind(ctx, "h1")
	if err != nil || got.Name != "builder-1" || !got.CreatedAt.Equal(at(0)) || !got.RevokedAt.IsZero() {
		t.Errorf("AgentTokenFind(h1) = %+v, %v", got, err)
	}
	if _, err := s.AgentTokenFind(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("AgentTokenFind(unknown) = %v, want ErrNotFound", err)
	}
	if err := s.AgentTokenRevoke(ctx, store.AgentToken{Name: "builder-1", RevokedAt: at(2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AgentTokenFind(ctx, "h1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("AgentTokenFind of a revoked token = %v, want ErrNotFound", err)
	}
	if err := s.AgentTokenRevoke(ctx, store.AgentToken{Name: "builder-1", RevokedAt: at(3)}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoking twice = %v, want ErrNotFound", err)
	}
	list, err := s.AgentTokenList(ctx)
	if err != nil || len(list) != 1 || !list[0].RevokedAt.Equal(at(2)) {
		t.Errorf("AgentTokenList = %+v, %v; want builder-1 revoked at %v", list, err, at(2))
	}
	if err := s.AgentTokenCreate(ctx, store.AgentToken{Name: "builder-1", Hash: "h3", CreatedAt: at(4)}); err != nil {
		t.Errorf("a new token for a revoked name: %v", err)
	}
	if got, err := s.AgentTokenFind(ctx, "h3"); err != nil || got.Name != "builder-1" {
		t.Errorf("AgentTokenFind(h3) = %+v, %v", got, err)
	}
}
