package access

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Role is what a user may do in a team. Roles are ordered: each may do what the ones below
// it may.
type Role int

// The roles. Approving a promotion is not a role but a grant per (team, environment): see
// Approver.
const (
	NoRole    Role = iota
	Viewer         // reads everything of the team
	Developer      // also triggers and cancels runs, registers repos, promotes and rolls back
	Admin          // also manages the team's members, approvers and quota
)

var roleNames = []string{"", "viewer", "developer", "admin"}

func (r Role) String() string {
	if r < 0 || int(r) >= len(roleNames) {
		return fmt.Sprintf("role(%d)", int(r))
	}
	return roleNames[r]
}

// ParseRole reads viewer, developer or admin.
func ParseRole(s string) (Role, error) {
	if i := slices.Index(roleNames, strings.ToLower(strings.TrimSpace(s))); i > 0 {
		return Role(i), nil
	}
	return NoRole, fmt.Errorf("%w: role %q: want viewer, developer or admin", ErrInvalid, s)
}

// MarshalText writes the role's name.
func (r Role) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads a role's name.
func (r *Role) UnmarshalText(b []byte) error {
	v, err := ParseRole(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// User is a local account.
type User struct {
	Name string `json:"name"`
	// PasswordHash is bcrypt's; empty for a user who cannot log in with a password (the
	// bootstrap admin, who has only tokens).
	PasswordHash string `json:"-"`
	// Admin makes a server admin: every team, and users and teams themselves.
	Admin     bool      `json:"admin"`
	CreatedAt time.Time `json:"created_at"`
	// Issuer is the OIDC issuer of a user made by an SSO login, who signs in only through
	// it; "" for a local user, whom no SSO login can take over.
	Issuer string `json:"issuer,omitempty"`
}

// Team owns repos, their runs, environments and everything made from them.
type Team struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Member is a user's role in a team.
type Member struct {
	Team      string    `json:"team"`
	User      string    `json:"user"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

// Approver lets a user approve promotions into one environment of a team.
type Approver struct {
	Team        string    `json:"team"`
	Environment string    `json:"environment"`
	User        string    `json:"user"`
	CreatedAt   time.Time `json:"created_at"`
}

// Token is an API token or a login session, without its secret.
type Token struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	User string `json:"user"`
	// Team and Role scope the token; Team "" with AllTeams is a server admin's token.
	Team     string `json:"team,omitempty"`
	Role     Role   `json:"role,omitempty"`
	AllTeams bool   `json:"all_teams,omitempty"`
	// Session: made by Login; it carries the user's roles in all their teams.
	Session    bool      `json:"session,omitempty"`
	Hash       string    `json:"-"` // hex SHA-256 of the secret
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"` // zero: never
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
}

// MemberListParams filters memberships; zero fields do not filter.
type MemberListParams struct {
	Team string
	User string
}

// ApproverListParams filters approvers; zero fields do not filter.
type ApproverListParams struct {
	Team string
	User string
}

// TokenListParams filters tokens, newest first; User "" lists every user's.
type TokenListParams struct {
	User string
}

// Store is what the service keeps. Both stores (internal/store/sqlite, postgres) implement
// it; internal/store/storetest holds its conformance tests.
//
// Create methods fail with an error wrapping ErrExists when the name or ID is taken; get
// methods with one wrapping ErrNotFound. Lists are ordered by name (tokens: newest first)
// and empty, non-nil when nothing matches.
type Store interface {
	UserCreate(ctx context.Context, u User) error
	UserGet(ctx context.Context, name string) (User, error)
	UserList(ctx context.Context) ([]User, error)
	// UserSetPassword replaces a user's password hash.
	UserSetPassword(ctx context.Context, name, hash string) error
	// UserRemove removes a user at once: it revokes every token and session of theirs (at
	// at), drops their memberships and approvals, and marks the user removed, keeping the
	// row so that their tokens and audit entries still name someone. A removed user is not
	// found by UserGet or listed; UserCreate may use the name again, for a new user with
	// nothing of the old one's. It fails with ErrNotFound for no such user and with
	// ErrLastAdmin for the only server admin left, checked in the same transaction.
	UserRemove(ctx context.Context, name string, at time.Time) error
	// SessionsRevoke revokes a user's login sessions not yet revoked, but the one with ID
	// except (may be ""), and says how many it revoked. API tokens stay.
	SessionsRevoke(ctx context.Context, user, except string, at time.Time) (int, error)
	TeamCreate(ctx context.Context, t Team) error
	TeamGet(ctx context.Context, name string) (Team, error)
	TeamList(ctx context.Context) ([]Team, error)
	// MemberPut adds a membership or changes its role.
	MemberPut(ctx context.Context, m Member) error
	// MemberDelete removes one; removing what is not there is ErrNotFound.
	MemberDelete(ctx context.Context, team, user string) error
	MemberList(ctx context.Context, p MemberListParams) ([]Member, error)
	// ApproverPut adds an approver; adding one twice is not an error.
	ApproverPut(ctx context.Context, a Approver) error
	ApproverDelete(ctx context.Context, team, env, user string) error
	ApproverList(ctx context.Context, p ApproverListParams) ([]Approver, error)
	TokenCreate(ctx context.Context, t Token) error
	TokenGet(ctx context.Context, id string) (Token, error)
	// TokenByHash finds a token by the SHA-256 of its secret, revoked or expired ones too.
	TokenByHash(ctx context.Context, hash string) (Token, error)
	TokenList(ctx context.Context, p TokenListParams) ([]Token, error)
	// TokenRevoke sets RevokedAt once; revoking again keeps the first time.
	TokenRevoke(ctx context.Context, id string, at time.Time) error
	// TokenTouch sets LastUsedAt.
	TokenTouch(ctx context.Context, id string, at time.Time) error
}

// Errors. The API maps them to statuses.
var (
	ErrNotFound        = errors.New("access: not found")
	ErrExists          = errors.New("access: already exists")
	ErrInvalid         = errors.New("access: invalid request")
	ErrUnauthenticated = errors.New("access: not authenticated")
	ErrForbidden       = errors.New("access: not allowed")
	// ErrLastAdmin: removing the user would leave the server without a server admin, and
	// nobody could manage users and teams any more.
	ErrLastAdmin = errors.New("access: the last server admin cannot be removed; make another user a server admin first")
)

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// ValidName checks a user, team or environment name: lowercase letters, digits, '_', '.' and
// '-', starting with a letter or digit, at most 63 characters.
func ValidName(kind, name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%w: %s name %q: use 1 to 63 lowercase letters, digits, '_', '.' or '-', starting with a letter or digit", ErrInvalid, kind, name)
	}
	return nil
}
