package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/paved/paved/internal/access"
	"github.com/paved/paved/internal/store"
)

// SessionCookie holds a login session's token for the UI. It is HttpOnly and
// SameSite=Strict; a mutating request authenticated by it must also carry CSRFHeader, which
// a cross-site form cannot set.
const (
	SessionCookie = "paved_session"
	CSRFHeader    = "X-Paved-CSRF"
)

type principalKey struct{}

// principal is who the request acts as; nil on open routes.
func principal(r *http.Request) *access.Principal {
	p, _ := r.Context().Value(principalKey{}).(*access.Principal)
	return p
}

// WithPrincipal returns ctx acting as p, for callers that serve the API's handlers from
// elsewhere (tests).
func WithPrincipal(ctx context.Context, p *access.Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// credentials finds the token of a request: the Authorization header (Bearer, or Basic
// with the token as password, which is what registry clients send), else the session
// cookie.
func credentials(r *http.Request) (secret string, byCookie bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, rest, _ := strings.Cut(h, " ")
		switch strings.ToLower(scheme) {
		case "bearer":
			return strings.TrimSpace(rest), false
		case "basic":
			if _, pw, ok := r.BasicAuth(); ok {
				return pw, false
			}
		}
		return "", false
	}
	if c, err := r.Cookie(SessionCookie); err == nil {
		return c.Value, true
	}
	return "", false
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// guard authenticates and authorizes every request before mux routes it: it finds the
// route's pattern, its policy in the route table (routes.go), the team of the resource the
// route names, and the caller's role in that team. A route with no policy is refused: a
// route added without one fails closed (and TestRouteTable fails).
func (s *Server) guard(mux *chi.Mux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rctx := chi.NewRouteContext()
		path := r.URL.RawPath
		if path == "" {
			path = r.URL.Path
		}
		pattern := mux.Find(rctx, r.Method, path)
		if pattern == "" { // no such route: chi answers 404 or 405
			mux.ServeHTTP(w, r)
			return
		}
		pol, ok := policyFor(r.Method, pattern)
		if !ok {
			s.log.Error("api: a route has no access policy; add it to the route table (internal/api/routes.go)", "method", r.Method, "route", pattern)
			s.writeError(w, r, errorf(http.StatusForbidden, "this route has no access policy yet"))
			return
		}
		if pol.auth == authOpen {
			mux.ServeHTTP(w, r)
			return
		}
		secret, byCookie := credentials(r)
		p, err := s.cfg.Access.Authenticate(r.Context(), secret)
		if err != nil {
			s.unauthorized(w, r, err)
			return
		}
		if byCookie && !safeMethod(r.Method) && r.Header.Get(CSRFHeader) == "" {
			s.writeError(w, r, errorf(http.StatusForbidden, "a request authenticated by the session cookie that changes something must send the %s header", CSRFHeader))
			return
		}
		r = r.WithContext(WithPrincipal(r.Context(), p))
		if err := s.authorize(r, rctx, pol, p); err != nil {
			s.writeError(w, r, err)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func (s *Server) unauthorized(w http.ResponseWriter, r *http.Request, err error) {
	if !errors.Is(err, access.ErrUnauthenticated) {
		s.writeError(w, r, err)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/v2") {
		// Registry clients (docker, oras, crane) answer a Basic challenge with the
		// credentials they were given: the token as password; a Bearer challenge would make
		// them look for a token service.
		w.Header().Set("WWW-Authenticate", `Basic realm="paved registry"`)
	} else {
		w.Header().Set("WWW-Authenticate", `Bearer realm="paved"`)
	}
	writeJSON(w, http.StatusUnauthorized, map[string]string{
		"error": strings.TrimPrefix(err.Error(), access.ErrUnauthenticated.Error()+": ") +
			"; send Authorization: Bearer TOKEN (paved token create, or POST /api/v1/login)",
	})
}

var (
	errHidden    = &apiError{status: http.StatusNotFound, msg: "not found"}
	errForbidden = &apiError{status: http.StatusForbidden, msg: "your role does not allow this"}
)

// authorize applies a policy: server-admin routes, routes any caller may use (their
// handlers show only the caller's teams), and routes on one resource, whose team is found
// by the policy's resolver. A resource of a team the caller is not in is 404, as if it did
// not exist; too low a role in its team is 403.
func (s *Server) authorize(r *http.Request, rctx *chi.Context, pol policy, p *access.Principal) error {
	switch pol.auth {
	case authAny:
		return nil
	case authServerAdmin:
		if p.Admin {
			return nil
		}
		return &apiError{status: http.StatusForbidden, msg: "only a server admin may do this"}
	}
	res, err := pol.find(s, r, rctx)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, access.ErrNotFound) {
		if p.Admin {
			return nil // the handler says what is missing
		}
		return errHidden
	}
	if err != nil {
		return err
	}
	if res.anyUser {
		return nil
	}
	if res.adminOnly {
		switch {
		case p.Admin:
			return nil
		case res.env != "":
			return errHidden // an environment of no team yet: not yours, like another team's
		}
		return &apiError{status: http.StatusForbidden, msg: "only a server admin may do this"}
	}
	if !p.Sees(res.team) {
		return errHidden
	}
	if pol.approve {
		if !p.CanApprove(res.team, res.env) {
			return &apiError{status: http.StatusForbidden, msg: "you are not an approver of environment " + res.env + " of team " + res.team}
		}
		return nil
	}
	if need := max(pol.role, res.minRole); p.Role(res.team) < need {
		return &apiError{status: http.StatusForbidden, msg: "this needs the " + need.String() + " role in team " + res.team + "; you are " + p.Role(res.team).String()}
	}
	return nil
}
