package storetest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/paved/paved/internal/store"
)

// SecretStore is the encrypted secrets every store keeps (internal/secret seals and opens
// them; the store only keeps bytes).
type SecretStore interface {
	SecretPut(ctx context.Context, s store.Secret) error
	SecretGet(ctx context.Context, team, environment, name string) (store.Secret, error)
	SecretList(ctx context.Context, p store.SecretListParams) ([]store.Secret, error)
	SecretRekey(ctx context.Context, p store.SecretRekeyParams) (bool, error)
	SecretDelete(ctx context.Context, team, environment, name string) error
}

var secretT0 = time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)

func secretRow(team, env, name, key string, at time.Time) store.Secret {
	return store.Secret{Team: team, Environment: env, Name: name, KeyID: key, Ciphertext: []byte("sealed:" + name + "\x00\xff"),
		UpdatedAt: at, UpdatedBy: "ana"}
}

func testSecrets(t *testing.T, h Harness) {
	s, ctx := h.Open(t), t.Context()
	for _, sec := range []store.Secret{
		secretRow("payments", "", "DB_PASSWORD", "k1", secretT0),
		secretRow("payments", "prod", "DB_PASSWORD", "k1", secretT0),
		secretRow("search", "", "API_TOKEN", "k1", secretT0),
	} {
		if err := s.SecretPut(ctx, sec); err != nil {
			t.Fatal(err)
		}
	}
	// A second put replaces the value and keeps when and by whom it was created.
	upd := secretRow("payments", "prod", "DB_PASSWORD", "k2", secretT0.Add(time.Hour))
	upd.Ciphertext, upd.UpdatedBy = []byte("other"), "ben"
	if err := s.SecretPut(ctx, upd); err != nil {
		t.Fatal(err)
	}
	got, err := s.SecretGet(ctx, "payments", "prod", "DB_PASSWORD")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Ciphertext, []byte("other")) || got.KeyID != "k2" || !got.CreatedAt.Equal(secretT0) ||
		!got.UpdatedAt.Equal(secretT0.Add(time.Hour)) || got.CreatedBy != "ana" || got.UpdatedBy != "ben" {
		t.Fatalf("after update: %+v", got)
	}
	got, err = s.SecretGet(ctx, "payments", "", "DB_PASSWORD")
	if err != nil || !bytes.Equal(got.Ciphertext, []byte("sealed:DB_PASSWORD\x00\xff")) {
		t.Fatalf("team-wide secret = %+v, %v", got, err)
	}
	if _, err := s.SecretGet(ctx, "payments", "dev", "DB_PASSWORD"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SecretGet of another environment = %v, want ErrNotFound", err)
	}
	list, err := s.SecretList(ctx, store.SecretListParams{Team: "payments"})
	if err != nil || len(list) != 2 || list[0].Environment != "" || list[1].Environment != "prod" {
		t.Fatalf("SecretList(payments) = %+v, %v", list, err)
	}
	all, err := s.SecretList(ctx, store.SecretListParams{})
	if err != nil || len(all) != 3 {
		t.Fatalf("SecretList(all) = %d, %v; want 3", len(all), err)
	}
	old, err := s.SecretList(ctx, store.SecretListParams{NotKeyID: "k2"})
	if err != nil || len(old) != 2 {
		t.Fatalf("SecretList(not k2) = %d, %v; want 2", len(old), err)
	}
	none, err := s.SecretList(ctx, store.SecretListParams{Team: "nobody"})
	if err != nil || none == nil || len(none) != 0 {
		t.Fatalf("SecretList(nobody) = %#v, %v; want empty, non-nil", none, err)
	}

	// Rekey only replaces what is still under the old key.
	ok, err := s.SecretRekey(ctx, store.SecretRekeyParams{Team: "search", Name: "API_TOKEN", OldKeyID: "k1", KeyID: "k2", Ciphertext: []byte("re")})
	if err != nil || !ok {
		t.Fatalf("SecretRekey = %v, %v; want true", ok, err)
	}
	ok, err = s.SecretRekey(ctx, store.SecretRekeyParams{Team: "search", Name: "API_TOKEN", OldKeyID: "k1", KeyID: "k3", Ciphertext: []byte("stale")})
	if err != nil || ok {
		t.Fatalf("stale SecretRekey = %v, %v; want false", ok, err)
	}
	got, _ = s.SecretGet(ctx, "search", "", "API_TOKEN")
	if got.KeyID != "k2" || string(got.Ciphertext) != "re" || !got.UpdatedAt.Equal(secretT0) {
		t.Fatalf("after rekey: %+v", got)
	}

	if err := s.SecretDelete(ctx, "payments", "prod", "DB_PASSWORD"); err != nil {
		t.Fatal(err)
	}
	if err := s.SecretDelete(ctx, "payments", "prod", "DB_PASSWORD"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete = %v, want ErrNotFound", err)
	}
	if _, err := s.SecretGet(ctx, "payments", "", "DB_PASSWORD"); err != nil {
		t.Fatalf("the team-wide secret went with the environment's: %v", err)
	}
	if err := s.SecretPut(ctx, store.Secret{Team: "x"}); err == nil {
		t.Fatal("SecretPut without name, key and ciphertext succeeded")
	}
}
