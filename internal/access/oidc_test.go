package access_test

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/paved/paved/internal/access"
	"github.com/paved/paved/internal/access/oidctest"
)

// noRedirect stops at the first redirect, as a test of a login flow wants.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// authorize sends the browser to the provider and returns the callback's state and code.
func authorize(t *testing.T, authURL string) (state, code string) {
	t.Helper()
	resp, err := noRedirect.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("authorize = %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return loc.Query().Get("state"), loc.Query().Get("code")
}

func TestOIDCLogin(t *testing.T) {
	t.Parallel()
	svc, st, _ := newService(t)
	setup(t, svc) // teams red and blue; local users ann and root
	ctx := t.Context()
	op := oidctest.New(t)
	var maps []access.OIDCMapping
	for _, m := range []string{"devs=red:developer", "leads=red:admin", "readers=blue:viewer"} {
		maps = append(maps, must[access.OIDCMapping](t)(access.ParseOIDCMapping(m)))
	}
	o, err := svc.NewOIDC(ctx, access.OIDCConfig{Issuer: op.URL, ClientID: op.ClientID, ClientSecret: op.ClientSecret,
		RedirectURL: func() string { return "http://127.0.0.1:1/api/v1/login/oidc/callback" }, Map: maps})
	if err != nil {
		t.Fatal(err)
	}
	login := func() (access.Token, string, error) {
		authURL, flow := o.Start()
		if u, _ := url.Parse(authURL); u.Query().Get("code_challenge_method") != "S256" || u.Query().Get("nonce") == "" {
			t.Fatalf("the authorization URL asks for no PKCE or nonce: %s", authURL)
		}
		state, code := authorize(t, authURL)
		return o.Finish(ctx, flow, state, code)
	}

	// First login: the user is made, their roles come from their groups.
	op.SetUser(map[string]any{"preferred_username": "sam", "groups": []string{"devs", "leads", "readers", "other"}})
	tk, secret, err := login()
	if err != nil || !tk.Session || tk.User != "sam" {
		t.Fatalf("first login = %+v, %v", tk, err)
	}
	p := must[*access.Principal](t)(svc.Authenticate(ctx, secret))
	if p.Role("red") != access.Admin || p.Role("blue") != access.Viewer || p.Admin {
		t.Errorf("sam after the first login: red %v, blue %v, admin %v; want admin, viewer", p.Role("red"), p.Role("blue"), p.Admin)
	}
	if u, err := st.UserGet(ctx, "sam"); err != nil || u.Issuer != op.URL || u.PasswordHash != "" {
		t.Errorf("sam = %+v, %v; want a user of the issuer, with no password", u, err)
	}

	// Next login: roles follow the groups, both ways; a team the mapping does not name stays.
	must[access.Team](t)(svc.TeamAdd(ctx, "green"))
	must[access.Member](t)(svc.MemberSet(ctx, "green", "sam", access.Viewer))
	op.SetUser(map[string]any{"preferred_username": "sam", "groups": "devs"})
	_, secret, err = login()
	if err != nil {
		t.Fatal(err)
	}
	p = must[*access.Principal](t)(svc.Authenticate(ctx, secret))
	if p.Role("red") != access.Developer || p.Role("blue") != access.NoRole || p.Role("green") != access.Viewer {
		t.Errorf("sam after the second login: red %v, blue %v, green %v; want developer, none, viewer", p.Role("red"), p.Role("blue"), p.Role("green"))
	}

	// A local user's name is not the provider's to sign in.
	op.SetUser(map[string]any{"preferred_username": "ann", "groups": []string{"leads"}})
	if _, _, err := login(); !errors.Is(err, access.ErrUnauthenticated) || !strings.Contains(err.Error(), "local user") {
		t.Errorf("an SSO login as local user ann = %v, want refused", err)
	}
	// A name paved cannot take.
	op.SetUser(map[string]any{"preferred_username": "Sam Smith"})
	if _, _, err := login(); !errors.Is(err, access.ErrUnauthenticated) {
		t.Errorf("an SSO login as %q = %v, want refused", "Sam Smith", err)
	}

	// A forged callback: another state, a code used twice, no cookie.
	op.SetUser(map[string]any{"preferred_username": "sam"})
	authURL, flow := o.Start()
	state, code := authorize(t, authURL)
	if _, _, err := o.Finish(ctx, flow, "forged", code); !errors.Is(err, access.ErrUnauthenticated) {
		t.Errorf("a callback with another state = %v", err)
	}
	if _, _, err := o.Finish(ctx, flow, state, code); err != nil {
		t.Fatal(err)
	}
	if _, _, err := o.Finish(ctx, flow, state, code); !errors.Is(err, access.ErrUnauthenticated) {
		t.Errorf("a code used twice = %v", err)
	}
	if _, err := access.DecodeOIDCFlow(""); !errors.Is(err, access.ErrUnauthenticated) {
		t.Errorf("no flow cookie = %v", err)
	}
	if f, err := access.DecodeOIDCFlow(flow.Encode()); err != nil || f != flow {
		t.Errorf("the flow through its cookie = %+v, %v", f, err)
	}
	// A removed SSO user's next login makes them afresh.
	if err := svc.UserRemove(ctx, "sam"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := login(); err != nil {
		t.Errorf("login after removal = %v", err)
	}
}

func TestParseOIDCMapping(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "devs", "devs=red", "=red:viewer", "devs=Red:viewer", "devs=red:owner"} {
		if _, err := access.ParseOIDCMapping(bad); !errors.Is(err, access.ErrInvalid) {
			t.Errorf("ParseOIDCMapping(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	m, err := access.ParseOIDCMapping("cn=devs,ou=groups=red:admin")
	if err != nil || m.Group != "cn=devs,ou=groups" || m.Team != "red" || m.Role != access.Admin {
		t.Errorf("a group with '=' in it: %+v, %v", m, err)
	}
}
