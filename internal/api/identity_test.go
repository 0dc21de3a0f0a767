package api_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/paved/paved/internal/api"
	"github.com/paved/paved/internal/execute/fake"
	"github.com/paved/paved/internal/identity"
	"github.com/paved/paved/internal/pipeline"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/schedule"
	"github.com/paved/paved/internal/store/sqlite"
	"github.com/paved/paved/internal/trigger"
)

// The discovery document and the JWKS are served where go-oidc looks for them, and a
// token the issuer signed verifies against them.
func TestIdentityRoutesVerifyWithGoOIDC(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "paved.db"))
	if err != nil {
		t.Fatal(err)
	}
	sched, err := schedule.New(schedule.Config{}, st, &fake.Executor{})
	if err != nil {
		t.Fatal(err)
	}
	var url string
	iss, err := identity.New(identity.Config{Dir: t.TempDir(), URL: func() string { return url }})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Access: newAccess(t, st), Store: st, Scheduler: sched, Git: &trigger.Git{Dir: t.TempDir()}, Hub: api.NewHub(), Identity: iss})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); st.Close() })
	url = hs.URL

	get(t, hs.URL+"/.well-known/jwks", 200)
	tok, err := iss.Issue(ctx, identity.Request{Info: &run.Info{Repo: "o/r", Ref: "refs/heads/main",
		Trigger: run.Trigger{Kind: "push"}, Pipeline: &pipeline.Pipeline{Name: "p"}}, RunID: "1", Stage: "s", Audience: "vault"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := oidc.NewProvider(ctx, hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: "vault"}).Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if idt.Subject != "repo:o/r:ref:refs/heads/main" {
		t.Fatalf("sub %q", idt.Subject)
	}
}
