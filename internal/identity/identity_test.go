package identity_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/paved/paved/internal/identity"
	"github.com/paved/paved/internal/pipeline"
	"github.com/paved/paved/internal/run"
)

// clock is a settable time for the issuer and the verifier alike.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// serve publishes the issuer's two public documents as the API does.
func serve(t *testing.T, cfg identity.Config) (*identity.Issuer, *httptest.Server) {
	t.Helper()
	var iss *identity.Issuer
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+identity.DiscoveryPath, func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(iss.Discovery())
	})
	mux.HandleFunc("GET "+identity.JWKSPath, func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(iss.JWKS())
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	cfg.URL = func() string { return srv.URL }
	var err error
	if iss, err = identity.New(cfg); err != nil {
		t.Fatal(err)
	}
	return iss, srv
}

func info() *run.Info {
	return &run.Info{Repo: "acme/payments", Ref: "refs/heads/main", SHA: "0123abcd",
		Trigger:  run.Trigger{Kind: "push", Branch: "main", Author: "alice"},
		Pipeline: &pipeline.Pipeline{Name: "payments"}}
}

func verifier(t *testing.T, srv *httptest.Server, aud string, now func() time.Time) *oidc.IDTokenVerifier {
	t.Helper()
	p, err := oidc.NewProvider(t.Context(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return p.Verifier(&oidc.Config{ClientID: aud, Now: now})
}

func TestTokenVerifiesWithGoOIDCAndExpires(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Now()}
	iss, srv := serve(t, identity.Config{Dir: t.TempDir(), Now: clk.Now})
	tok, err := iss.Issue(t.Context(), identity.Request{Info: info(), RunID: "run-1", Stage: "deploy-prod",
		Attempt: 2, Environment: "prod", Audience: "sts.amazonaws.com"})
	if err != nil {
		t.Fatal(err)
	}
	v := verifier(t, srv, "sts.amazonaws.com", clk.Now)
	idt, err := v.Verify(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"iss": srv.URL, "sub": "repo:acme/payments:environment:prod", "aud": "sts.amazonaws.com",
		"repository": "acme/payments", "repository_owner": "acme", "ref": "refs/heads/main", "ref_type": "branch",
		"sha": "0123abcd", "pipeline": "payments", "stage": "deploy-prod", "run_id": "run-1", "run_attempt": "2",
		"environment": "prod", "event_name": "push", "actor": "alice"}
	for k, w := range want {
		if c[k] != w {
			t.Errorf("claim %s = %v, want %v", k, c[k], w)
		}
	}
	for _, k := range []string{"exp", "iat", "nbf", "jti"} {
		if c[k] == nil {
			t.Errorf("claim %s missing", k)
		}
	}
	if exp, iat := c["exp"].(float64), c["iat"].(float64); exp-iat != identity.DefaultLifetime.Seconds() {
		t.Errorf("lifetime %vs, want the default %v", exp-iat, identity.DefaultLifetime)
	}
	if _, err := verifier(t, srv, "vault", clk.Now).Verify(t.Context(), tok); err == nil {
		t.Error("a token for sts.amazonaws.com verified for audience vault")
	}
	clk.Add(identity.DefaultLifetime + time.Second)
	if _, err := v.Verify(t.Context(), tok); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired token: %v", err)
	}
}

func TestSubjects(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ ref, kind, env, want string }{
		{"refs/heads/main", "push", "", "repo:o/r:ref:refs/heads/main"},
		{"refs/tags/v1", "tag", "", "repo:o/r:ref:refs/tags/v1"},
		{"refs/pull/7/head", "pull_request", "", "repo:o/r:pull_request"},
		{"refs/heads/main", "push", "prod", "repo:o/r:environment:prod"},
	} {
		if got := identity.Subject("o/r", c.ref, c.kind, c.env); got != c.want {
			t.Errorf("Subject(%q, %q, %q) = %q, want %q", c.ref, c.kind, c.env, got, c.want)
		}
	}
}

// A rotation keeps the old key published until its tokens expired, and the keys survive a
// restart of the issuer.
func TestRotationKeepsOldKeyUntilItsTokensExpired(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Now()}
	dir := t.TempDir()
	cfg := identity.Config{Dir: dir, Now: clk.Now, RotateEvery: 24 * time.Hour, MaxLifetime: 30 * time.Minute}
	iss, srv := serve(t, cfg)
	req := identity.Request{Info: info(), RunID: "r", Stage: "s", Audience: "aud", Lifetime: 30 * time.Minute}
	old, err := iss.Issue(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(24 * time.Hour) // due: the next Issue rotates
	fresh, err := iss.Issue(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(iss.JWKS().Keys); n != 2 {
		t.Fatalf("%d keys after rotation, want 2", n)
	}
	v := verifier(t, srv, "aud", func() time.Time { return clk.Now().Add(-24 * time.Hour) })
	if _, err := v.Verify(t.Context(), old); err != nil {
		t.Fatalf("old token after rotation: %v", err)
	}
	if _, err := verifier(t, srv, "aud", clk.Now).Verify(t.Context(), fresh); err != nil {
		t.Fatalf("new token: %v", err)
	}
	// Restarted from the same directory: the same keys.
	cfg.URL = func() string { return srv.URL }
	again, err := identity.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := again.JWKS().Keys, iss.JWKS().Keys; len(a) != 2 || a[0].KeyID != b[0].KeyID || a[1].KeyID != b[1].KeyID {
		t.Fatalf("keys after restart differ: %v vs %v", a, b)
	}
	if fi, err := os.Stat(filepath.Join(dir, "keys.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	clk.Add(31*time.Minute + time.Minute)
	if n := len(iss.JWKS().Keys); n != 1 {
		t.Fatalf("%d keys once the old key's tokens expired, want 1", n)
	}
}

func TestIssueRefusesBadRequests(t *testing.T) {
	t.Parallel()
	iss, _ := serve(t, identity.Config{Dir: t.TempDir()})
	for _, r := range []identity.Request{
		{Info: info(), Audience: ""},
		{Info: nil, Audience: "a"},
		{Info: info(), Audience: "a", Lifetime: 2 * time.Hour},
	} {
		if _, err := iss.Issue(context.Background(), r); err == nil {
			t.Errorf("%+v: no error", r)
		}
	}
}

func TestCorruptKeyFileSaysWhatToDo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "keys.json"), []byte("{nope"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := identity.New(identity.Config{Dir: dir, URL: func() string { return "http://x" }})
	if err == nil || !strings.Contains(err.Error(), "move it away") {
		t.Fatalf("got %v", err)
	}
}

// A manual run's short ref is claimed in full, as trust policies match it.
func TestShortRefQualified(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Now()}
	iss, srv := serve(t, identity.Config{Dir: t.TempDir(), Now: clk.Now})
	in := info()
	in.Ref, in.Trigger.Kind = "main", "manual"
	tok, err := iss.Issue(t.Context(), identity.Request{Info: in, RunID: "r", Stage: "s", Audience: "a"})
	if err != nil {
		t.Fatal(err)
	}
	idt, err := verifier(t, srv, "a", clk.Now).Verify(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Sub     string `json:"sub"`
		Ref     string `json:"ref"`
		RefType string `json:"ref_type"`
	}
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if c.Sub != "repo:acme/payments:ref:refs/heads/main" || c.Ref != "refs/heads/main" || c.RefType != "branch" {
		t.Fatalf("claims %+v", c)
	}
}
