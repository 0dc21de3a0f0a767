package secret_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paved/paved/internal/audit"
	"github.com/paved/paved/internal/secret"
	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/store/sqlite"
)

// recorder keeps what was audited.
type recorder struct {
	mu      sync.Mutex
	entries []audit.Entry
}

func (r *recorder) Record(_ context.Context, e audit.Entry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries = append(r.entries, e)
	return nil
}

func (r *recorder) actions() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.entries {
		out = append(out, e.Action+":"+e.Target)
	}
	return out
}

func openStore(t *testing.T) (*sqlite.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "paved.db")
	st, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, path
}

func newService(t *testing.T, keys *secret.Keyring) (*secret.Service, *sqlite.Store, *recorder, string) {
	t.Helper()
	st, path := openStore(t)
	rec := &recorder{}
	svc, err := secret.New(secret.Config{Store: st, Keys: keys, Audit: rec})
	if err != nil {
		t.Fatal(err)
	}
	return svc, st, rec, path
}

func TestKeyFileCreatedPrivateAndKept(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "data", "secret.key")
	k1, err := secret.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	k2, err := secret.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := k1.Keys()
	b, _ := k2.Keys()
	if len(a) != 1 || a[0].ID != b[0].ID {
		t.Fatalf("second open has other keys: %v vs %v", a[0].ID, b[0].ID)
	}
	id, sealed, err := k1.Seal([]byte("v"), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := k2.Open(id, sealed, []byte("ad")); err != nil || string(got) != "v" {
		t.Fatalf("Open = %q, %v", got, err)
	}
}

func TestKeyFileErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	open := func(name, content string, mode os.FileMode) error {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		_, err := secret.OpenFile(p)
		return err
	}
	k, _ := secret.NewKey()
	good := k.ID + " " + base64.StdEncoding.EncodeToString(k.Raw) + "\n"
	for _, c := range []struct {
		name, content string
		mode          os.FileMode
		want          string
	}{
		{"readable", good, 0o644, "chmod 600"},
		{"edited", "# c\n" + "0000000000000000 " + base64.StdEncoding.EncodeToString(k.Raw) + "\n", 0o600, "edited:2: id 0000000000000000 does not match"},
		{"garbage", "hello\n", 0o600, "garbage:1: want"},
		{"empty", "# nothing\n", 0o600, "has no keys"},
	} {
		err := open(c.name, c.content, c.mode)
		if !errors.Is(err, secret.ErrBadKey) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want ErrBadKey saying %q", c.name, err, c.want)
		}
	}
}

func TestParseKeys(t *testing.T) {
	t.Parallel()
	k, _ := secret.NewKey()
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawURLEncoding} {
		keys, err := secret.ParseKeys(enc.EncodeToString(k.Raw) + ", " + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)))
		if err != nil || len(keys) != 2 || keys[0].ID != k.ID {
			t.Fatalf("ParseKeys = %v, %v", keys, err)
		}
	}
	for _, bad := range []string{"", "not base64!", base64.StdEncoding.EncodeToString([]byte("short"))} {
		if _, err := secret.ParseKeys(bad); !errors.Is(err, secret.ErrBadKey) {
			t.Errorf("ParseKeys(%q) = %v, want ErrBadKey", bad, err)
		}
	}
}

func TestSealBindsScopeAndKey(t *testing.T) {
	t.Parallel()
	k, _ := secret.NewKey()
	ring, err := secret.NewKeyring(k)
	if err != nil {
		t.Fatal(err)
	}
	id, sealed, err := ring.Seal([]byte("hunter2"), []byte("team-a"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("hunter2")) {
		t.Fatal("ciphertext holds the plaintext")
	}
	if _, err := ring.Open(id, sealed, []byte("team-b")); err == nil {
		t.Fatal("opened under another scope")
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := ring.Open(id, sealed, []byte("team-a")); err == nil {
		t.Fatal("opened a changed ciphertext")
	}
	if _, err := ring.Open("feedfeedfeedfeed", sealed, []byte("team-a")); !errors.Is(err, secret.ErrUnknownKey) {
		t.Fatalf("unknown key: %v", err)
	}
}

func TestServicePutListResolveDelete(t *testing.T) {
	t.Parallel()
	k, _ := secret.NewKey()
	ring, _ := secret.NewKeyring(k)
	svc, st, rec, _ := newService(t, ring)
	ctx := t.Context()
	put := func(team, env, name, value string) {
		t.Helper()
		if _, _, err := svc.Put(ctx, secret.PutParams{Team: team, Environment: env, Name: name, Value: value, Actor: "ana"}); err != nil {
			t.Fatal(err)
		}
	}
	put("payments", "", "DB_PASSWORD", "team-wide-pw")
	put("payments", "prod", "DB_PASSWORD", "prod-pw")
	put("search", "", "DB_PASSWORD", "search-pw")
	_, created, err := svc.Put(ctx, secret.PutParams{Team: "payments", Name: "DB_PASSWORD", Value: "team-wide-pw2", Actor: "ben"})
	if err != nil || created {
		t.Fatalf("update: created=%v, %v", created, err)
	}

	// The store holds no value.
	rows, _ := st.SecretList(ctx, store.SecretListParams{})
	for _, r := range rows {
		if bytes.Contains(r.Ciphertext, []byte("pw")) {
			t.Fatalf("store holds a value in the clear: %q", r.Ciphertext)
		}
	}
	list, err := svc.List(ctx, "payments")
	if err != nil || len(list) != 2 || list[0].Ciphertext != nil || list[0].CreatedBy != "ana" || list[0].UpdatedBy != "ben" {
		t.Fatalf("List = %+v, %v", list, err)
	}

	resolve := func(team, env string) (string, error) {
		return svc.Resolve(ctx, secret.ResolveParams{Team: team, Environment: env, Name: "DB_PASSWORD", Actor: "run:r1", RunID: "r1", Stage: "deploy"})
	}
	for _, c := range []struct{ team, env, want string }{
		{"payments", "", "team-wide-pw2"},
		{"payments", "prod", "prod-pw"},
		{"payments", "dev", "team-wide-pw2"},
		{"search", "prod", "search-pw"},
	} {
		if got, err := resolve(c.team, c.env); err != nil || got != c.want {
			t.Errorf("Resolve(%s, %q) = %q, %v; want %q", c.team, c.env, got, err, c.want)
		}
	}
	if _, err := resolve("other", ""); !errors.Is(err, secret.ErrNotFound) {
		t.Errorf("another team's secret: %v, want ErrNotFound", err)
	}
	if err := svc.Delete(ctx, "payments", "prod", "DB_PASSWORD", "ana"); err != nil {
		t.Fatal(err)
	}
	if got, _ := resolve("payments", "prod"); got != "team-wide-pw2" {
		t.Errorf("after delete, prod resolves %q", got)
	}
	if err := svc.Delete(ctx, "payments", "prod", "DB_PASSWORD", "ana"); !errors.Is(err, secret.ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
	want := []string{"secret.create:DB_PASSWORD", "secret.create:DB_PASSWORD", "secret.create:DB_PASSWORD", "secret.update:DB_PASSWORD",
		"secret.read:DB_PASSWORD", "secret.read:DB_PASSWORD", "secret.read:DB_PASSWORD", "secret.read:DB_PASSWORD",
		"secret.delete:DB_PASSWORD", "secret.read:DB_PASSWORD"}
	if got := rec.actions(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("audited %v\nwant     %v", got, want)
	}

	for _, bad := range []secret.PutParams{
		{Team: "payments", Name: "1BAD", Value: "v"},
		{Team: "pay/ments", Name: "OK", Value: "v"},
		{Team: "payments", Environment: "../x", Name: "OK", Value: "v"},
		{Team: "payments", Name: "OK"},
		{Team: "payments", Name: "OK", Value: strings.Repeat("x", secret.MaxValue+1)},
	} {
		if _, _, err := svc.Put(ctx, bad); !errors.Is(err, secret.ErrInvalid) {
			t.Errorf("Put(%+v) = %v, want ErrInvalid", bad.Name, err)
		}
	}
}

func TestRotateKeyFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "secret.key")
	ring, err := secret.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	svc, st, _, _ := newService(t, ring)
	ctx := t.Context()
	for _, n := range []string{"A", "B", "C"} {
		if _, _, err := svc.Put(ctx, secret.PutParams{Team: "t", Name: n, Value: "value-" + n, Actor: "ana"}); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := ring.Keys()
	// A second service on the same key file, as a running server next to the CLI.
	other, _ := secret.OpenFile(path)
	res, err := svc.Rotate(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	after, _ := ring.Keys()
	if res.Resealed != 3 || len(after) != 1 || after[0].ID == before[0].ID || res.Key != after[0].ID ||
		len(res.Dropped) != 1 || res.Dropped[0] != before[0].ID {
		t.Fatalf("Rotate = %+v; keys %v -> %v", res, before[0].ID, after[0].ID)
	}
	rows, _ := st.SecretList(ctx, store.SecretListParams{NotKeyID: after[0].ID})
	if len(rows) != 0 {
		t.Fatalf("%d secrets still under an old key", len(rows))
	}
	svc2, err := secret.New(secret.Config{Store: st, Keys: other})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"A", "B", "C"} {
		got, err := svc2.Resolve(ctx, secret.ResolveParams{Team: "t", Name: n, Actor: "x"})
		if err != nil || got != "value-"+n {
			t.Fatalf("after rotation, the other keyring resolves %s = %q, %v", n, got, err)
		}
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("rotated key file mode %v", fi.Mode().Perm())
	}
}

func TestRotateEnvKeys(t *testing.T) {
	t.Parallel()
	oldKey, _ := secret.NewKey()
	newKey, _ := secret.NewKey()
	enc := base64.StdEncoding.EncodeToString
	ring, err := secret.FromEnv(enc(oldKey.Raw))
	if err != nil {
		t.Fatal(err)
	}
	svc, st, _, _ := newService(t, ring)
	ctx := t.Context()
	if _, _, err := svc.Put(ctx, secret.PutParams{Team: "t", Name: "A", Value: "va", Actor: "ana"}); err != nil {
		t.Fatal(err)
	}
	// The operator puts the new key first and keeps the old one until rotation is done.
	both, err := secret.FromEnv(enc(newKey.Raw) + "," + enc(oldKey.Raw))
	if err != nil {
		t.Fatal(err)
	}
	svc2, _ := secret.New(secret.Config{Store: st, Keys: both})
	res, err := svc2.Rotate(ctx, "admin")
	if err != nil || res.Resealed != 1 || res.Key != newKey.ID {
		t.Fatalf("Rotate = %+v, %v", res, err)
	}
	only, _ := secret.FromEnv(enc(newKey.Raw))
	svc3, _ := secret.New(secret.Config{Store: st, Keys: only, Now: func() time.Time { return time.Now() }})
	if v, err := svc3.Resolve(ctx, secret.ResolveParams{Team: "t", Name: "A", Actor: "x"}); err != nil || v != "va" {
		t.Fatalf("with only the new key: %q, %v", v, err)
	}
}
