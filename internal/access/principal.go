package access

import (
	"maps"
	"slices"
	"time"
)

// Principal is who a request acts as, and what they may do.
type Principal struct {
	User string
	// Admin: a server admin's session or all-teams token: every team, as admin.
	Admin bool
	// TokenID is the token or session the request came with.
	TokenID string
	// Session: it came with a login session (the UI), not an API token.
	Session bool
	// expires is when the token or session ends; zero: never. Hold ends streams then.
	expires time.Time
	roles   map[string]Role
	approve map[string]map[string]bool // team → environment
}

// NewPrincipal is a principal with the given roles, for tests and for callers that are not
// HTTP requests.
func NewPrincipal(user string, admin bool, roles map[string]Role) *Principal {
	return &Principal{User: user, Admin: admin, roles: maps.Clone(roles)}
}

// Role is the principal's role in team; NoRole when they are not in it.
func (p *Principal) Role(team string) Role {
	if p == nil {
		return NoRole
	}
	if p.Admin {
		return Admin
	}
	return p.roles[team]
}

// Teams lists the teams the principal has a role in, sorted; for a server admin, who has
// every team, it is nil and All is true.
func (p *Principal) Teams() (teams []string, all bool) {
	if p == nil {
		return nil, false
	}
	if p.Admin {
		return nil, true
	}
	return slices.Sorted(maps.Keys(p.roles)), false
}

// Sees says whether the principal may read what belongs to team.
func (p *Principal) Sees(team string) bool { return p.Role(team) >= Viewer }

// CanApprove says whether the principal may approve promotions into env of team: a team
// admin may, and so may an approver of that environment.
func (p *Principal) CanApprove(team, env string) bool {
	if p.Role(team) >= Admin {
		return true
	}
	return p.Role(team) >= Viewer && p.approve[team][env]
}
