package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"

	"github.com/paved/paved/internal/access"
	"github.com/paved/paved/internal/access/oidctest"
	"github.com/paved/paved/internal/audit"
	"github.com/paved/paved/internal/store"
)

// TestOIDCLoginThroughTheAPI: a browser (a client with a cookie jar, following redirects)
// goes from GET /api/v1/login/oidc to the provider and back to the callback, and ends on the
// UI with a session cookie for the user, who was made with the mapping's roles; the login is
// audited; a callback without the flow's cookie is refused.
func TestOIDCLoginThroughTheAPI(t *testing.T) {
	t.Parallel()
	e := newAccessEnv(t)
	op := oidctest.New(t)
	m, err := access.ParseOIDCMapping("red-devs=red:developer")
	if err != nil {
		t.Fatal(err)
	}
	var opts struct{ OIDC bool }
	e.call("none", "GET", "/api/v1/login/options", nil, 200, &opts)
	if opts.OIDC {
		t.Error("login options say SSO before it is set up")
	}
	if _, err := e.acc.NewOIDC(t.Context(), access.OIDCConfig{Issuer: op.URL, ClientID: op.ClientID, ClientSecret: op.ClientSecret,
		RedirectURL: func() string { return e.url + "/api/v1/login/oidc/callback" }, Map: []access.OIDCMapping{m}}); err != nil {
		t.Fatal(err)
	}
	e.call("none", "GET", "/api/v1/login/options", nil, 200, &opts)
	if !opts.OIDC {
		t.Error("login options do not say SSO once it is set up")
	}

	op.SetUser(map[string]any{"preferred_username": "sam", "groups": []string{"red-devs"}})
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	resp, err := browser.Get(e.url + "/api/v1/login/oidc")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/" || op.Logins() != 1 {
		t.Fatalf("the SSO login ended at %s with %d after %d logins at the provider; want the UI, 200, 1", resp.Request.URL, resp.StatusCode, op.Logins())
	}
	resp, err = browser.Get(e.url + "/api/v1/me")
	if err != nil {
		t.Fatal(err)
	}
	var me struct {
		User    string
		Session bool
		Teams   []struct{ Team, Role string }
	}
	json.NewDecoder(resp.Body).Decode(&me)
	resp.Body.Close()
	if resp.StatusCode != 200 || me.User != "sam" || !me.Session || len(me.Teams) != 1 || me.Teams[0].Role != "developer" {
		t.Errorf("GET /me after the SSO login = %d %+v; want sam, a developer of red", resp.StatusCode, me)
	}

	// The callback alone (no flow cookie: another browser, or a forged link) is refused.
	if got, _, body := e.do("none", "GET", "/api/v1/login/oidc/callback?state=x&code=y", nil, nil); got != 401 || !strings.Contains(string(body), "start the login again") {
		t.Errorf("a callback without the flow's cookie = %d %s, want 401", got, body)
	}
	if got, _, _ := e.do("none", "GET", "/api/v1/login/oidc/callback?error=access_denied&error_description=no", nil, nil); got != 401 {
		t.Errorf("a callback with the provider's error = %d, want 401", got)
	}

	var list struct{ Entries []store.AuditEntry }
	e.call("root", "GET", "/api/v1/audit?limit=1000", nil, 200, &list)
	var got []string
	for _, en := range list.Entries {
		if en.Action == audit.ActionLogin || en.Action == audit.ActionLoginFailed {
			got = append(got, en.Actor+" "+en.Action)
		}
	}
	if want := "sam login\nsso login.failed\nsso login.failed"; strings.Join(got, "\n") != want {
		t.Errorf("logins in the audit log:\n%s\nwant:\n%s", strings.Join(got, "\n"), want)
	}
}
