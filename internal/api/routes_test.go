package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/paved/paved/internal/audit"
	"github.com/paved/paved/internal/deploy"
	"github.com/paved/paved/internal/execute/agent"
	kubeexec "github.com/paved/paved/internal/execute/kube"
	"github.com/paved/paved/internal/identity"
	"github.com/paved/paved/internal/promote"
	"github.com/paved/paved/internal/secret"
	"github.com/paved/paved/internal/store/sqlite"
	"github.com/paved/paved/internal/trigger/inbox"
)

// TestRouteTable: every route of a server with every optional part configured has an
// access policy. A route added without one fails here (and is refused at run time).
func TestRouteTable(t *testing.T) {
	t.Parallel()
	s := &Server{cfg: Config{
		Registry: http.NotFoundHandler(), Metrics: http.NotFoundHandler(), Inbox: &inbox.Inbox{},
		Environments: (*deploy.Controller)(nil), Deployments: (*sqlite.Store)(nil), Promote: (*promote.Service)(nil),
		Secrets: (*secret.Service)(nil), Audit: (*audit.Log)(nil), Identity: (*identity.Issuer)(nil),
		Agents: (*agent.Dispatcher)(nil), AgentTokens: (*sqlite.Store)(nil), Pods: (*kubeexec.Executor)(nil).Handler(),
	}}
	n := 0
	err := chi.Walk(s.routes(), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		n++
		if _, ok := policyFor(method, route); !ok {
			t.Errorf("%s %s has no entry in routeTable (internal/api/routes.go): say who may call it and how its team is found", method, route)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 50 {
		t.Errorf("walked %d routes; the walk missed some", n)
	}
	// Every entry of the table is a route: a stale entry would hide a renamed route.
	seen := map[string]bool{}
	_ = chi.Walk(s.routes(), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		seen[method+" "+route], seen["* "+route] = true, true
		return nil
	})
	for key := range routeTable {
		if !seen[key] {
			t.Errorf("routeTable has %q, which is no route", key)
		}
	}
}

// FuzzCredentials: any Authorization header is read without panicking, and a Bearer token
// comes back as sent.
func FuzzCredentials(f *testing.F) {
	for _, s := range []string{"Bearer pvd_abc", "bearer  pvd_abc ", "Basic dXNlcjpwdmRfYWJj", "Basic !!", "Token x", "", "Bearer"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		r, _ := http.NewRequest("GET", "http://x/", nil)
		r.Header.Set("Authorization", h)
		secret, byCookie := credentials(r)
		if byCookie {
			t.Errorf("%q: read as a cookie", h)
		}
		if tok, ok := strings.CutPrefix(h, "Bearer "); ok && secret != strings.TrimSpace(tok) {
			t.Errorf("%q: token %q", h, secret)
		}
	})
}
