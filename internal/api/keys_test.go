package api_test

import (
	"context"
	"crypto"
	"encoding/json"
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/paved/paved/internal/api"
	"github.com/paved/paved/internal/execute/fake"
	"github.com/paved/paved/internal/gate/sign"
	"github.com/paved/paved/internal/schedule"
	"github.com/paved/paved/internal/store/sqlite"
	"github.com/paved/paved/internal/trigger"
)

// keysServer is the API over a real key store, rotated once.
func keysServer(t *testing.T, keys api.KeyLister) string {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "paved.db"))
	if err != nil {
		t.Fatal(err)
	}
	sched, err := schedule.New(schedule.Config{}, st, &fake.Executor{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := api.Config{Access: newAccess(t, st), Store: st, Scheduler: sched, Git: &trigger.Git{Dir: t.TempDir()}, Hub: api.NewHub()}
	if keys != nil {
		cfg.Keys = keys
	}
	srv, err := api.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); st.Close() })
	return hs.URL
}

func get(t *testing.T, url string, wantStatus int) (string, string) {
	t.Helper()
	resp, err := rootGet(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		t.Fatalf("GET %s: %d, want %d: %s", url, resp.StatusCode, wantStatus, b)
	}
	return resp.Header.Get("Content-Type"), string(b)
}

func TestKeysRoute(t *testing.T) {
	t.Parallel()
	keys, err := sign.OpenKeys(sign.KeysConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	blob := "artifact bytes"
	_, oldSig, err := keys.SignBlob(ctx, strings.NewReader(blob))
	if err != nil {
		t.Fatal(err)
	}
	next, err := keys.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	url := keysServer(t, keys)

	ctype, body := get(t, url+"/api/v1/keys", 200)
	var list struct {
		Keys []struct {
			ID      string    `json:"id"`
			Active  bool      `json:"active"`
			Created time.Time `json:"created"`
			PEM     string    `json:"pem"`
		} `json:"keys"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil || !strings.HasPrefix(ctype, "application/json") {
		t.Fatalf("%s %v\n%s", ctype, err, body)
	}
	if len(list.Keys) != 2 || list.Keys[0].ID != oldSig.KeyID || list.Keys[0].Active ||
		list.Keys[1].ID != next.ID || !list.Keys[1].Active || list.Keys[1].Created.IsZero() {
		t.Fatalf("keys: %s", body)
	}

	// The active key as PEM: what cosign --key reads; the full bundle verifies old signatures.
	ctype, active := get(t, url+"/api/v1/keys?format=pem&active=true", 200)
	if ctype != "application/x-pem-file" || active != next.PEM {
		t.Fatalf("active PEM (%s):\n%s", ctype, active)
	}
	_, bundle := get(t, url+"/api/v1/keys?format=pem", 200)
	if strings.Count(bundle, "BEGIN PUBLIC KEY") != 2 || !strings.HasPrefix(bundle, next.PEM) {
		t.Fatalf("PEM bundle:\n%s", bundle)
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey([]byte(list.Keys[0].PEM))
	if err != nil {
		t.Fatal(err)
	}
	v, _ := signature.LoadVerifier(pub, crypto.SHA256)
	if err := v.VerifySignature(strings.NewReader(string(oldSig.Sig)), strings.NewReader(blob)); err != nil {
		t.Fatalf("the served old key does not verify its signature: %v", err)
	}

	get(t, url+"/api/v1/keys?format=der", 400)
	get(t, keysServer(t, nil)+"/api/v1/keys", 404)
}
