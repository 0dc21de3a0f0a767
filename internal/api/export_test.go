package api

import (
	"github.com/go-chi/chi/v5"
)

// Routes is the router without the guard, for tests that walk it.
func Routes(s *Server) chi.Routes { return s.routes() }

// Policy describes a route's entry in the route table: kind is open, any, server-admin or
// team; role the role it needs in the resource's team (team routes); approve whether it
// needs an approver instead.
func Policy(method, pattern string) (kind, role string, approve, ok bool) {
	p, ok := policyFor(method, pattern)
	if !ok {
		return "", "", false, false
	}
	kind = [...]string{authOpen: "open", authAny: "any", authServerAdmin: "server-admin", authTeam: "team"}[p.auth]
	return kind, p.role.String(), p.approve, true
}
