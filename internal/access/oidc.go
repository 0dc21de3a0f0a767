package access

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// OIDCConfig signs users in through an OpenID Provider: the authorization code flow with
// PKCE, state and nonce.
type OIDCConfig struct {
	Issuer       string // the provider's issuer URL; its discovery document is read at start
	ClientID     string
	ClientSecret string
	// RedirectURL is paved's callback as the provider knows it:
	// EXTERNAL_URL/api/v1/login/oidc/callback. A func: the URL may be known only once the
	// server listens.
	RedirectURL func() string
	// UserClaim names the ID token claim that becomes the paved user name. Default
	// "preferred_username"; the name must be a valid paved name (ValidName).
	UserClaim string
	// TeamClaim names the claim listing the user's groups (a string or a list of strings),
	// which Map turns into team roles. Default "groups".
	TeamClaim string
	// Scopes are asked for besides openid, profile and email, e.g. "groups" for providers
	// that send the groups claim only when asked (Dex).
	Scopes []string
	// Map gives a role in a team to the members of a group. On every login the user's role
	// in each team Map names is set from their groups: the highest role any of their groups
	// gives, or no membership when none does. Teams Map does not name are left alone.
	Map []OIDCMapping
}

// OIDCMapping gives members of Group the role Role in Team.
type OIDCMapping struct {
	Group string
	Team  string
	Role  Role
}

// ParseOIDCMapping reads GROUP=TEAM:ROLE. The group may hold '=' (an LDAP DN): the last
// one ends it, since team names have none.
func ParseOIDCMapping(s string) (OIDCMapping, error) {
	i := strings.LastIndex(s, "=")
	ok := i >= 0
	group, rest := s, ""
	if ok {
		group, rest = s[:i], s[i+1:]
	}
	team, role, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 || group == "" {
		return OIDCMapping{}, fmt.Errorf("%w: OIDC mapping %q: want GROUP=TEAM:ROLE, e.g. platform-devs=payments:developer", ErrInvalid, s)
	}
	if err := ValidName("team", team); err != nil {
		return OIDCMapping{}, fmt.Errorf("OIDC mapping %q: %w", s, err)
	}
	r, err := ParseRole(role)
	if err != nil {
		return OIDCMapping{}, fmt.Errorf("OIDC mapping %q: %w", s, err)
	}
	return OIDCMapping{Group: group, Team: team, Role: r}, nil
}

// OIDC signs users in through an OpenID Provider. A user signing in for the first time is
// made (with no password, belonging to the issuer); a local user of the same name is never
// signed in this way.
type OIDC struct {
	svc      *Service
	cfg      OIDCConfig
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
}

// NewOIDC reads the provider's discovery document and returns the login flow.
func (s *Service) NewOIDC(ctx context.Context, cfg OIDCConfig) (*OIDC, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" || cfg.RedirectURL == nil {
		return nil, fmt.Errorf("%w: OIDC login needs an issuer URL, a client ID and a redirect URL", ErrInvalid)
	}
	if cfg.UserClaim == "" {
		cfg.UserClaim = "preferred_username"
	}
	if cfg.TeamClaim == "" {
		cfg.TeamClaim = "groups"
	}
	p, err := oidc.NewProvider(ctx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("access: OIDC issuer %s: %w (is --oidc-issuer the provider's issuer URL, reachable from the server?)", cfg.Issuer, err)
	}
	o := &OIDC{svc: s, cfg: cfg, verifier: p.Verifier(&oidc.Config{ClientID: cfg.ClientID})}
	o.oauth = oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, Endpoint: p.Endpoint(),
		Scopes: append([]string{oidc.ScopeOpenID, "profile", "email"}, cfg.Scopes...)}
	for _, m := range cfg.Map {
		if _, err := s.st.TeamGet(ctx, m.Team); errors.Is(err, ErrNotFound) {
			s.cfg.Logger.Warn("access: an OIDC mapping names a team that does not exist; its members get no role there until it is made (paved team add)", "team", m.Team, "group", m.Group)
		}
	}
	s.oidc.Store(o)
	return o, nil
}

// OIDC is the SSO login NewOIDC set up; nil when there is none.
func (s *Service) OIDC() *OIDC { return s.oidc.Load() }

// oauthConfig is the OAuth2 client with the redirect URL of now.
func (o *OIDC) oauthConfig() *oauth2.Config {
	c := o.oauth
	c.RedirectURL = o.cfg.RedirectURL()
	return &c
}

// OIDCFlow is what the login's start hands to its callback (through a cookie): the state,
// the PKCE verifier and the nonce.
type OIDCFlow struct {
	State, Verifier, Nonce string
}

// Encode writes the flow as one cookie-safe string.
func (f OIDCFlow) Encode() string { return f.State + "." + f.Verifier + "." + f.Nonce }

// DecodeOIDCFlow reads what Encode wrote.
func DecodeOIDCFlow(s string) (OIDCFlow, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || slices.Contains(parts, "") {
		return OIDCFlow{}, fmt.Errorf("%w: the SSO login's cookie is missing or damaged; start the login again", ErrUnauthenticated)
	}
	return OIDCFlow{State: parts[0], Verifier: parts[1], Nonce: parts[2]}, nil
}

func randomString() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail
	return base64.RawURLEncoding.EncodeToString(b)
}

// Start begins a login: the provider's URL to send the browser to, and the flow to keep
// for the callback.
func (o *OIDC) Start() (authURL string, f OIDCFlow) {
	f = OIDCFlow{State: randomString(), Verifier: oauth2.GenerateVerifier(), Nonce: randomString()}
	return o.oauthConfig().AuthCodeURL(f.State, oauth2.S256ChallengeOption(f.Verifier), oidc.Nonce(f.Nonce)), f
}

// Finish completes a login from the callback's state and code: it exchanges the code (with
// the PKCE verifier), verifies the ID token and its nonce, makes the user on their first
// login, sets their team roles from their groups, and starts a session.
func (o *OIDC) Finish(ctx context.Context, f OIDCFlow, state, code string) (Token, string, error) {
	if state == "" || state != f.State {
		return Token{}, "", fmt.Errorf("%w: the SSO login's state does not match; start the login again", ErrUnauthenticated)
	}
	if code == "" {
		return Token{}, "", fmt.Errorf("%w: the identity provider sent no code", ErrUnauthenticated)
	}
	tok, err := o.oauthConfig().Exchange(ctx, code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		return Token{}, "", fmt.Errorf("%w: the identity provider refused the code: %v", ErrUnauthenticated, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Token{}, "", fmt.Errorf("%w: the identity provider sent no ID token", ErrUnauthenticated)
	}
	idt, err := o.verifier.Verify(ctx, raw)
	if err != nil {
		return Token{}, "", fmt.Errorf("%w: the ID token does not verify: %v", ErrUnauthenticated, err)
	}
	if idt.Nonce != f.Nonce {
		return Token{}, "", fmt.Errorf("%w: the ID token's nonce does not match; start the login again", ErrUnauthenticated)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return Token{}, "", fmt.Errorf("%w: the ID token's claims: %v", ErrUnauthenticated, err)
	}
	name, _ := claims[o.cfg.UserClaim].(string)
	if err := ValidName("user", name); err != nil {
		return Token{}, "", fmt.Errorf("%w: the ID token's %q claim is not a paved user name: %v", ErrUnauthenticated, o.cfg.UserClaim, err)
	}
	u, err := o.user(ctx, name)
	if err != nil {
		return Token{}, "", err
	}
	if err := o.setRoles(ctx, name, groupsOf(claims[o.cfg.TeamClaim])); err != nil {
		return Token{}, "", err
	}
	return o.svc.mint(ctx, Token{Name: "sso session", User: u.Name, Session: true, AllTeams: u.Admin}, o.svc.cfg.SessionTTL, "")
}

// user finds or makes the user of a login; a user of that name who is local, or of
// another issuer, is not theirs.
func (o *OIDC) user(ctx context.Context, name string) (User, error) {
	u, err := o.svc.st.UserGet(ctx, name)
	if errors.Is(err, ErrNotFound) {
		u = User{Name: name, CreatedAt: o.svc.cfg.Now().UTC(), Issuer: o.cfg.Issuer}
		if err := o.svc.st.UserCreate(ctx, u); err != nil && !errors.Is(err, ErrExists) {
			return User{}, err
		}
		u, err = o.svc.st.UserGet(ctx, name)
	}
	if err != nil {
		return User{}, err
	}
	if u.Issuer != o.cfg.Issuer {
		return User{}, fmt.Errorf("%w: %s is a local user of paved, not one of %s; they log in with their password", ErrUnauthenticated, name, o.cfg.Issuer)
	}
	return u, nil
}

// setRoles gives the user, in each team the mapping names, the highest role their groups
// give there, or removes them from it.
func (o *OIDC) setRoles(ctx context.Context, user string, groups []string) error {
	want := map[string]Role{}
	for _, m := range o.cfg.Map {
		if _, ok := want[m.Team]; !ok {
			want[m.Team] = NoRole
		}
		if slices.Contains(groups, m.Group) {
			want[m.Team] = max(want[m.Team], m.Role)
		}
	}
	have, err := o.svc.st.MemberList(ctx, MemberListParams{User: user})
	if err != nil {
		return err
	}
	for team, role := range want {
		i := slices.IndexFunc(have, func(m Member) bool { return m.Team == team })
		switch {
		case role == NoRole && i >= 0:
			if err := o.svc.st.MemberDelete(ctx, team, user); err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
		case role == NoRole, i >= 0 && have[i].Role == role:
		default:
			if _, err := o.svc.MemberSet(ctx, team, user, role); errors.Is(err, ErrNotFound) {
				o.svc.cfg.Logger.Warn("access: an OIDC mapping names a team that does not exist", "team", team, "user", user)
			} else if err != nil {
				return err
			}
		}
	}
	return nil
}

// groupsOf reads a groups claim: a list of strings, or one string.
func groupsOf(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, g := range v {
			if s, ok := g.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
