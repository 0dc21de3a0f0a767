package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/paved/paved/internal/access"
	"github.com/paved/paved/internal/audit"
	"github.com/paved/paved/internal/insight"
	"github.com/paved/paved/internal/store"
)

func (s *Server) accessRoutes(r chi.Router) {
	r.Post("/login", s.login)
	r.Post("/logout", s.logout)
	r.Get("/login/options", s.loginOptions)
	r.Get("/login/oidc", s.loginOIDC)
	r.Get("/login/oidc/callback", s.loginOIDCCallback)
	r.Get("/me", s.me)
	r.Get("/users", s.userList)
	r.Post("/users", s.userAdd)
	r.Put("/users/{name}/password", s.userPassword)
	r.Delete("/users/{name}", s.userRemove)
	r.Get("/teams", s.teamList)
	r.Post("/teams", s.teamAdd)
	r.Get("/teams/{team}/members", s.memberList)
	r.Put("/teams/{team}/members/{user}", s.memberPut)
	r.Delete("/teams/{team}/members/{user}", s.memberDelete)
	r.Get("/teams/{team}/approvers", s.approverList)
	r.Put("/teams/{team}/approvers/{env}/{user}", s.approverPut)
	r.Delete("/teams/{team}/approvers/{env}/{user}", s.approverDelete)
	r.Get("/tokens", s.tokenList)
	r.Post("/tokens", s.tokenCreate)
	r.Delete("/tokens/{id}", s.tokenRevoke)
}

// login checks a user's password and answers a session token; it also sets it as an
// HttpOnly, SameSite=Strict cookie, which the UI (and its EventSource streams) send.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var body struct {
		User     string `json:"user"`
		Password string `json:"password"`
	}
	if err := decode(w, r, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	t, secret, err := s.cfg.Access.Login(r.Context(), body.User, body.Password)
	if err != nil {
		// A refused login is worth an entry (password guessing shows here); the password
		// never is.
		if aerr := s.auditRecord(r, audit.Entry{Actor: body.User, Action: audit.ActionLoginFailed,
			Details: map[string]any{"reason": err.Error(), "remote": r.RemoteAddr}}); aerr != nil {
			s.log.Error("api: cannot record a refused login in the audit log", "user", body.User, "err", aerr)
		}
		s.unauthorized(w, r, err)
		return
	}
	if err := s.auditRecord(r, audit.Entry{Actor: t.User, Action: audit.ActionLogin, Target: t.ID,
		Details: map[string]any{"expires_at": t.ExpiresAt, "remote": r.RemoteAddr}}); err != nil {
		s.writeError(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: secret, Path: "/", Expires: t.ExpiresAt,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	writeJSON(w, http.StatusOK, map[string]any{"token": secret, "user": t.User, "expires_at": t.ExpiresAt})
}

// oidcCookie carries an SSO login's state, PKCE verifier and nonce from its start to its
// callback. SameSite=Lax: the callback is a top-level navigation from the provider's site,
// which a Strict cookie would not come back with.
const oidcCookie = "paved_oidc"

// loginOptions says how the UI's login page may sign in.
func (s *Server) loginOptions(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"password": true, "oidc": s.cfg.Access.OIDC() != nil})
}

// loginOIDC starts an SSO login: it keeps the flow in a cookie and sends the browser to the
// identity provider.
func (s *Server) loginOIDC(w http.ResponseWriter, r *http.Request) {
	o := s.cfg.Access.OIDC()
	if o == nil {
		s.writeError(w, r, errorf(http.StatusNotFound, "SSO login is not set up on this server (paved server --oidc-issuer ...; docs/access.md)"))
		return
	}
	authURL, flow := o.Start()
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: flow.Encode(), Path: "/api/v1/login/oidc", MaxAge: 600,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
	http.Redirect(w, r, authURL, http.StatusFound)
}

// loginOIDCCallback finishes an SSO login: the provider's code for a session, in the same
// cookie as a password login's, and back to the UI.
func (s *Server) loginOIDCCallback(w http.ResponseWriter, r *http.Request) {
	o := s.cfg.Access.OIDC()
	if o == nil {
		s.writeError(w, r, errorf(http.StatusNotFound, "SSO login is not set up on this server"))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: "", Path: "/api/v1/login/oidc", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
	q := r.URL.Query()
	var t access.Token
	var secret string
	err := fmt.Errorf("%w: the identity provider said %s: %s", access.ErrUnauthenticated, q.Get("error"), q.Get("error_description"))
	if q.Get("error") == "" {
		var flow access.OIDCFlow
		c, cerr := r.Cookie(oidcCookie)
		if cerr == nil {
			flow, err = access.DecodeOIDCFlow(c.Value)
		} else {
			_, err = access.DecodeOIDCFlow("")
		}
		if err == nil {
			t, secret, err = o.Finish(r.Context(), flow, q.Get("state"), q.Get("code"))
		}
	}
	if err != nil {
		if aerr := s.auditRecord(r, audit.Entry{Actor: "sso", Action: audit.ActionLoginFailed,
			Details: map[string]any{"method": "oidc", "reason": err.Error(), "remote": r.RemoteAddr}}); aerr != nil {
			s.log.Error("api: cannot record a refused SSO login in the audit log", "err", aerr)
		}
		s.writeError(w, r, err)
		return
	}
	if err := s.auditRecord(r, audit.Entry{Actor: t.User, Action: audit.ActionLogin, Target: t.ID,
		Details: map[string]any{"method": "oidc", "expires_at": t.ExpiresAt, "remote": r.RemoteAddr}}); err != nil {
		s.writeError(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: secret, Path: "/", Expires: t.ExpiresAt,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, "/", http.StatusFound)
}

// logout ends the request's session (an API token is revoked with DELETE /tokens/{id}) and
// clears the cookie.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	if p.Session {
		if err := s.auditRecord(r, audit.Entry{Action: audit.ActionLogout, Target: p.TokenID}); err != nil {
			s.writeError(w, r, err)
			return
		}
		if _, err := s.cfg.Access.TokenRevoke(r.Context(), p, p.TokenID); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	w.WriteHeader(http.StatusNoContent)
}

type teamRole struct {
	Team string      `json:"team"`
	Role access.Role `json:"role"`
}

// me says who the caller is and their role in each team.
func (s *Server) me(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	teams, all := p.Teams()
	roles := []teamRole{}
	for _, t := range teams {
		roles = append(roles, teamRole{Team: t, Role: p.Role(t)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": p.User, "admin": all, "session": p.Session, "teams": roles})
}

func (s *Server) userList(w http.ResponseWriter, r *http.Request) {
	us, err := s.cfg.Access.Store().UserList(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": us})
}

func (s *Server) userAdd(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name     string `json:"name"`
		Password string `json:"password"`
		Admin    bool   `json:"admin"`
	}
	if err := decode(w, r, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.auditRecord(r, audit.Entry{Action: audit.ActionAccessChange, Target: "user/" + body.Name,
		Details: map[string]any{"change": "user.add", "admin": body.Admin}}); err != nil {
		s.writeError(w, r, err)
		return
	}
	u, err := s.cfg.Access.UserAdd(r.Context(), access.UserAddParams{Name: body.Name, Password: body.Password, Admin: body.Admin})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, u)
}

// userPassword changes a user's password: {"current", "password"}. Users change their own
// with their current password, server admins anyone's without. The user's other sessions
// end (streams too, within the recheck interval); API tokens stay.
func (s *Server) userPassword(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Current  string `json:"current"`
		Password string `json:"password"`
	}
	if err := decode(w, r, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	name, p := chi.URLParam(r, "name"), principal(r)
	if !p.Admin && p.User != name {
		s.writeError(w, r, errorf(http.StatusForbidden, "only a server admin may change another user's password"))
		return
	}
	if err := s.auditRecord(r, audit.Entry{Action: audit.ActionAccessChange, Target: "user/" + name,
		Details: map[string]any{"change": "user.password", "by_admin": p.User != name}}); err != nil {
		s.writeError(w, r, err)
		return
	}
	ended, err := s.cfg.Access.PasswordChange(r.Context(), p, access.PasswordChangeParams{User: name, Current: body.Current, New: body.Password})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": name, "sessions_ended": ended})
}

// userRemove removes a user: their tokens and sessions are revoked, their memberships and
// approvals dropped; their audit entries stay. The last server admin stays (409).
func (s *Server) userRemove(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	if _, err := s.cfg.Access.Store().UserGet(r.Context(), name); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.auditRecord(r, audit.Entry{Action: audit.ActionAccessChange, Target: "user/" + name,
		Details: map[string]any{"change": "user.remove"}}); err != nil {
		s.writeError(w, r, err)
		return
	}
	err := s.cfg.Access.UserRemove(r.Context(), name)
	if errors.Is(err, access.ErrLastAdmin) {
		s.writeError(w, r, errorf(http.StatusConflict, "%s is the last server admin; make another user a server admin first", name))
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// teamList lists the teams the caller is in (every team, for a server admin).
func (s *Server) teamList(w http.ResponseWriter, r *http.Request) {
	ts, err := s.cfg.Access.Store().TeamList(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"teams": visible(r, ts, func(t access.Team) (string, bool) { return t.Name, true })})
}

func (s *Server) teamAdd(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name string `json:"name"`
	}
	if err := decode(w, r, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.auditRecord(r, audit.Entry{Action: audit.ActionAccessChange, Team: body.Name, Target: "team/" + body.Name,
		Details: map[string]any{"change": "team.add"}}); err != nil {
		s.writeError(w, r, err)
		return
	}
	t, err := s.cfg.Access.TeamAdd(r.Context(), body.Name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, t)
}

func (s *Server) memberList(w http.ResponseWriter, r *http.Request) {
	ms, err := s.cfg.Access.Store().MemberList(r.Context(), access.MemberListParams{Team: chi.URLParam(r, "team")})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"members": ms})
}

func (s *Server) memberPut(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Role access.Role `json:"role"`
	}
	if err := decode(w, r, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.auditAccessChange(r, "member.set", "user/"+chi.URLParam(r, "user"), map[string]any{"role": body.Role}); err != nil {
		s.writeError(w, r, err)
		return
	}
	m, err := s.cfg.Access.MemberSet(r.Context(), chi.URLParam(r, "team"), chi.URLParam(r, "user"), body.Role)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

func (s *Server) memberDelete(w http.ResponseWriter, r *http.Request) {
	if err := s.auditAccessChange(r, "member.delete", "user/"+chi.URLParam(r, "user"), nil); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.cfg.Access.Store().MemberDelete(r.Context(), chi.URLParam(r, "team"), chi.URLParam(r, "user")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) approverList(w http.ResponseWriter, r *http.Request) {
	as, err := s.cfg.Access.Store().ApproverList(r.Context(), access.ApproverListParams{Team: chi.URLParam(r, "team")})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"approvers": as})
}

func (s *Server) approverPut(w http.ResponseWriter, r *http.Request) {
	if err := s.auditAccessChange(r, "approver.grant", "user/"+chi.URLParam(r, "user"), map[string]any{"environment": chi.URLParam(r, "env")}); err != nil {
		s.writeError(w, r, err)
		return
	}
	a, err := s.cfg.Access.ApproverAdd(r.Context(), chi.URLParam(r, "team"), chi.URLParam(r, "env"), chi.URLParam(r, "user"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func (s *Server) approverDelete(w http.ResponseWriter, r *http.Request) {
	if err := s.auditAccessChange(r, "approver.revoke", "user/"+chi.URLParam(r, "user"), map[string]any{"environment": chi.URLParam(r, "env")}); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.cfg.Access.Store().ApproverDelete(r.Context(), chi.URLParam(r, "team"), chi.URLParam(r, "env"), chi.URLParam(r, "user")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// tokenList lists the caller's tokens; a server admin lists everyone's with ?all=true.
func (s *Server) tokenList(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	user := p.User
	if p.Admin && r.URL.Query().Get("all") == "true" {
		user = ""
	}
	ts, err := s.cfg.Access.TokenList(r.Context(), user)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": ts})
}

// tokenCreate makes a token for the caller: {"name", "team", "role", "expires_in" (a Go
// duration, e.g. "720h"; empty never expires), "all_teams" (server admins)}. The secret is
// in this answer only.
func (s *Server) tokenCreate(w http.ResponseWriter, r *http.Request) {
	var body struct {
		User      string      `json:"user"` // a server admin may make one for another user
		Name      string      `json:"name"`
		Team      string      `json:"team"`
		Role      access.Role `json:"role"`
		AllTeams  bool        `json:"all_teams"`
		ExpiresIn string      `json:"expires_in"`
	}
	if err := decode(w, r, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	var ttl time.Duration
	if body.ExpiresIn != "" {
		d, err := time.ParseDuration(body.ExpiresIn)
		if err != nil || d <= 0 {
			s.writeError(w, r, errorf(http.StatusBadRequest, `"expires_in" %q: give a duration such as "720h", or nothing for a token that does not expire`, body.ExpiresIn))
			return
		}
		ttl = d
	}
	p := principal(r)
	if body.User == "" {
		body.User = p.User
	}
	if body.User != p.User && !p.Admin {
		s.writeError(w, r, errorf(http.StatusForbidden, "only a server admin may make a token for another user"))
		return
	}
	t, secret, err := s.cfg.Access.TokenCreate(r.Context(), access.TokenCreateParams{User: body.User, Name: body.Name,
		Team: body.Team, Role: body.Role, AllTeams: body.AllTeams, TTL: ttl})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// After the fact: the token's ID exists only now. A failed record revokes it again, so
	// no token lives that the audit log does not know.
	if err := s.auditRecord(r, audit.Entry{Action: audit.ActionTokenCreate, Team: t.Team, Target: t.ID,
		Details: map[string]any{"user": t.User, "name": t.Name, "role": t.Role, "all_teams": t.AllTeams, "expires_at": t.ExpiresAt}}); err != nil {
		if _, rerr := s.cfg.Access.TokenRevoke(r.Context(), p, t.ID); rerr != nil {
			s.log.Error("api: cannot revoke a token whose creation was not audited", "token", t.ID, "err", rerr)
		}
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"token": secret, "info": t})
}

func (s *Server) tokenRevoke(w http.ResponseWriter, r *http.Request) {
	t, err := s.cfg.Access.TokenRevoke(r.Context(), principal(r), chi.URLParam(r, "id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.auditRecord(r, audit.Entry{Action: audit.ActionTokenRevoke, Team: t.Team, Target: t.ID,
		Details: map[string]any{"user": t.User, "name": t.Name}}); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// auditAccessChange records a change to who may do what in the route's team, before it is
// made.
func (s *Server) auditAccessChange(r *http.Request, change, target string, details map[string]any) error {
	if details == nil {
		details = map[string]any{}
	}
	details["change"] = change
	return s.auditRecord(r, audit.Entry{Action: audit.ActionAccessChange, Team: chi.URLParam(r, "team"), Target: target, Details: details})
}

// alertsFor keeps the alerts a caller may see: those about the whole server, and those
// about pipelines that ran in the caller's teams.
func (s *Server) alertsFor(r *http.Request, alerts []insight.Alert) []insight.Alert {
	p := principal(r)
	if p == nil || p.Admin || len(alerts) == 0 {
		return alerts
	}
	runs, err := s.store(r).RunList(r.Context(), store.RunListParams{Limit: 1000})
	if err != nil {
		s.log.Warn("api: listing runs to filter alerts failed", "err", err)
		runs = nil
	}
	mine := map[string]bool{}
	for _, sum := range runs {
		mine[sum.Pipeline] = true
	}
	return slices.DeleteFunc(alerts, func(a insight.Alert) bool { return a.Subject != "" && !mine[a.Subject] })
}
