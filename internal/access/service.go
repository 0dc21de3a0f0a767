package access

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// TokenPrefix starts every token paved makes, so that secret scanners (and people) can tell
// one when they see it.
const TokenPrefix = "pvd_"

// Config configures a Service.
type Config struct {
	Store Store // required
	// SessionTTL is how long a login session lasts. Default 12h.
	SessionTTL time.Duration
	// BcryptCost is the cost of password hashes. Default bcrypt.DefaultCost (10); tests use
	// bcrypt.MinCost.
	BcryptCost int
	// RecheckEvery is how often the credentials of open streams are checked again (Hold):
	// a revoked token, a logged-out session or a removed user ends them within this.
	// Default 10s.
	RecheckEvery time.Duration
	// Now is the clock. Default time.Now.
	Now    func() time.Time
	Logger *slog.Logger // default slog.Default()
}

// Service manages users, teams, roles and tokens, and authenticates requests. Its methods
// may be called from any number of goroutines.
type Service struct {
	st    Store
	cfg   Config
	dummy []byte // a hash to compare against for unknown users, so they take as long
	holds holds
	oidc  atomic.Pointer[OIDC] // set by NewOIDC
}

// New checks the config and makes a service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("access: Config.Store is required")
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.RecheckEvery <= 0 {
		cfg.RecheckEvery = 10 * time.Second
	}
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = bcrypt.DefaultCost
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte("no such user"), cfg.BcryptCost)
	if err != nil {
		return nil, fmt.Errorf("access: %w", err)
	}
	return &Service{st: cfg.Store, cfg: cfg, dummy: dummy}, nil
}

// Store is the service's store, for callers that read memberships directly.
func (s *Service) Store() Store { return s.st }

// HashToken is the SHA-256 of a token's secret, as the store keeps it.
func HashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func newSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

func newID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "tok_" + hex.EncodeToString(b), nil
}

// UserAddParams makes a user.
type UserAddParams struct {
	Name     string
	Password string // empty: the user has only tokens
	Admin    bool
}

// UserAdd makes a local user.
func (s *Service) UserAdd(ctx context.Context, p UserAddParams) (User, error) {
	if err := ValidName("user", p.Name); err != nil {
		return User{}, err
	}
	u := User{Name: p.Name, Admin: p.Admin, CreatedAt: s.cfg.Now().UTC()}
	if p.Password != "" {
		h, err := s.hashPassword(p.Password)
		if err != nil {
			return User{}, err
		}
		u.PasswordHash = h
	}
	if err := s.st.UserCreate(ctx, u); err != nil {
		return User{}, err
	}
	return u, nil
}

// SetPassword sets a user's password, making the user (a server admin when admin) if there
// is none of that name.
func (s *Service) SetPassword(ctx context.Context, user, password string, admin bool) error {
	if _, err := s.st.UserGet(ctx, user); errors.Is(err, ErrNotFound) {
		_, err = s.UserAdd(ctx, UserAddParams{Name: user, Password: password, Admin: admin})
		return err
	} else if err != nil {
		return err
	}
	h, err := s.hashPassword(password)
	if err != nil {
		return err
	}
	return s.st.UserSetPassword(ctx, user, h)
}

// TeamAdd makes a team.
func (s *Service) TeamAdd(ctx context.Context, name string) (Team, error) {
	if err := ValidName("team", name); err != nil {
		return Team{}, err
	}
	t := Team{Name: name, CreatedAt: s.cfg.Now().UTC()}
	if err := s.st.TeamCreate(ctx, t); err != nil {
		return Team{}, err
	}
	return t, nil
}

// MemberSet gives a user a role in a team. Both must exist.
func (s *Service) MemberSet(ctx context.Context, team, user string, role Role) (Member, error) {
	if role < Viewer || role > Admin {
		return Member{}, fmt.Errorf("%w: role %v: want viewer, developer or admin", ErrInvalid, role)
	}
	if _, err := s.st.TeamGet(ctx, team); err != nil {
		return Member{}, err
	}
	if _, err := s.st.UserGet(ctx, user); err != nil {
		return Member{}, err
	}
	m := Member{Team: team, User: user, Role: role, CreatedAt: s.cfg.Now().UTC()}
	return m, s.st.MemberPut(ctx, m)
}

// ApproverAdd lets a member of team approve promotions into env.
func (s *Service) ApproverAdd(ctx context.Context, team, env, user string) (Approver, error) {
	if err := ValidName("environment", env); err != nil {
		return Approver{}, err
	}
	ms, err := s.st.MemberList(ctx, MemberListParams{Team: team, User: user})
	if err != nil {
		return Approver{}, err
	}
	if len(ms) == 0 {
		return Approver{}, fmt.Errorf("%w: %s is not a member of team %s; add them first", ErrInvalid, user, team)
	}
	a := Approver{Team: team, Environment: env, User: user, CreatedAt: s.cfg.Now().UTC()}
	return a, s.st.ApproverPut(ctx, a)
}

// TokenCreateParams makes an API token for a user.
type TokenCreateParams struct {
	User string
	Name string // a label, e.g. "ci"
	// Team and Role scope it; AllTeams (server admins only) makes a token for every team.
	Team     string
	Role     Role
	AllTeams bool
	// TTL: how long it is valid; 0 never expires.
	TTL time.Duration
	// Secret, when set, is the token's value instead of a random one (PAVED_BOOTSTRAP_TOKEN).
	Secret string
}

// TokenCreate makes a token and returns its secret, which is never shown again. A token
// can have no more than its user has: their role in Team, or every team for a server admin.
func (s *Service) TokenCreate(ctx context.Context, p TokenCreateParams) (Token, string, error) {
	u, err := s.st.UserGet(ctx, p.User)
	if err != nil {
		return Token{}, "", err
	}
	if p.Name == "" {
		p.Name = "token"
	}
	if p.TTL < 0 {
		return Token{}, "", fmt.Errorf("%w: a token's lifetime must be positive (or 0 for none)", ErrInvalid)
	}
	switch {
	case p.AllTeams:
		if !u.Admin {
			return Token{}, "", fmt.Errorf("%w: only a server admin can make a token for every team", ErrForbidden)
		}
		p.Team, p.Role = "", Admin
	case p.Team == "":
		return Token{}, "", fmt.Errorf("%w: a token needs a team (or all teams, for a server admin)", ErrInvalid)
	default:
		if p.Role < Viewer || p.Role > Admin {
			return Token{}, "", fmt.Errorf("%w: a token needs a role: viewer, developer or admin", ErrInvalid)
		}
		if !u.Admin {
			have, err := s.memberRole(ctx, p.Team, p.User)
			if err != nil {
				return Token{}, "", err
			}
			if have < p.Role {
				return Token{}, "", fmt.Errorf("%w: %s is %v in team %s and cannot make a %v token for it", ErrForbidden, p.User, roleOrNone(have), p.Team, p.Role)
			}
		}
	}
	return s.mint(ctx, Token{Name: p.Name, User: p.User, Team: p.Team, Role: p.Role, AllTeams: p.AllTeams}, p.TTL, p.Secret)
}

func roleOrNone(r Role) string {
	if r == NoRole {
		return "not a member"
	}
	return r.String()
}

func (s *Service) memberRole(ctx context.Context, team, user string) (Role, error) {
	ms, err := s.st.MemberList(ctx, MemberListParams{Team: team, User: user})
	if err != nil || len(ms) == 0 {
		return NoRole, err
	}
	return ms[0].Role, nil
}

func (s *Service) mint(ctx context.Context, t Token, ttl time.Duration, secret string) (Token, string, error) {
	var err error
	if secret == "" {
		if secret, err = newSecret(); err != nil {
			return Token{}, "", fmt.Errorf("access: %w", err)
		}
	}
	if t.ID, err = newID(); err != nil {
		return Token{}, "", fmt.Errorf("access: %w", err)
	}
	now := s.cfg.Now().UTC()
	t.Hash, t.CreatedAt = HashToken(secret), now
	if ttl > 0 {
		t.ExpiresAt = now.Add(ttl)
	}
	if err := s.st.TokenCreate(ctx, t); err != nil {
		return Token{}, "", err
	}
	return t, secret, nil
}

// Bootstrap makes sure a server-admin token with the given secret exists, for a user named
// "admin" (made when missing, with no password). It does nothing when the token exists,
// revoked or not, so it is safe on every start. The secret must be at least 16 characters.
func (s *Service) Bootstrap(ctx context.Context, secret string) (created bool, err error) {
	if len(strings.TrimSpace(secret)) < 16 {
		return false, fmt.Errorf("%w: the bootstrap token must have at least 16 characters (make one with: head -c 32 /dev/urandom | base64)", ErrInvalid)
	}
	if _, err := s.st.TokenByHash(ctx, HashToken(secret)); err == nil {
		return false, nil
	} else if !errors.Is(err, ErrNotFound) {
		return false, err
	}
	if _, err := s.st.UserGet(ctx, "admin"); errors.Is(err, ErrNotFound) {
		if _, err := s.UserAdd(ctx, UserAddParams{Name: "admin", Admin: true}); err != nil && !errors.Is(err, ErrExists) {
			return false, err
		}
	} else if err != nil {
		return false, err
	}
	if _, _, err := s.TokenCreate(ctx, TokenCreateParams{User: "admin", Name: "bootstrap", AllTeams: true, Secret: secret}); err != nil {
		return false, err
	}
	return true, nil
}

// Login checks a user's password and starts a session. Unknown users and wrong passwords
// get the same error, after the same work.
func (s *Service) Login(ctx context.Context, user, password string) (Token, string, error) {
	u, err := s.st.UserGet(ctx, user)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Token{}, "", err
	}
	hash := []byte(u.PasswordHash)
	if err != nil || len(hash) == 0 {
		hash = s.dummy
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || u.PasswordHash == "" {
		return Token{}, "", fmt.Errorf("%w: wrong user name or password", ErrUnauthenticated)
	}
	return s.mint(ctx, Token{Name: "session", User: u.Name, Session: true, AllTeams: u.Admin}, s.cfg.SessionTTL, "")
}

// touchEvery bounds how often a token's last-used time is written.
const touchEvery = time.Minute

// Authenticate finds who a token's secret stands for. Unknown, expired and revoked tokens,
// and tokens of deleted users, are ErrUnauthenticated, with the reason.
func (s *Service) Authenticate(ctx context.Context, secret string) (*Principal, error) {
	if secret == "" {
		return nil, fmt.Errorf("%w: no token", ErrUnauthenticated)
	}
	t, err := s.st.TokenByHash(ctx, HashToken(secret))
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: unknown token", ErrUnauthenticated)
	}
	if err != nil {
		return nil, err
	}
	// The lookup was by hash; compare again in constant time so that an index's behaviour
	// cannot leak anything.
	if subtle.ConstantTimeCompare([]byte(t.Hash), []byte(HashToken(secret))) != 1 {
		return nil, fmt.Errorf("%w: unknown token", ErrUnauthenticated)
	}
	u, err := s.standing(ctx, t)
	if err != nil {
		return nil, err
	}
	p := &Principal{User: u.Name, TokenID: t.ID, Session: t.Session, expires: t.ExpiresAt, roles: map[string]Role{}, approve: map[string]map[string]bool{}}
	switch {
	case u.Admin && (t.AllTeams || t.Session):
		p.Admin = true
	default:
		ms, err := s.st.MemberList(ctx, MemberListParams{User: u.Name})
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			switch {
			case t.Session:
				p.roles[m.Team] = m.Role
			case m.Team == t.Team:
				p.roles[m.Team] = min(m.Role, t.Role)
			}
		}
		if u.Admin && !t.Session { // a server admin's team token: the scope, not their membership
			p.roles = map[string]Role{t.Team: t.Role}
		}
		as, err := s.st.ApproverList(ctx, ApproverListParams{User: u.Name})
		if err != nil {
			return nil, err
		}
		for _, a := range as {
			if p.roles[a.Team] == NoRole {
				continue
			}
			if p.approve[a.Team] == nil {
				p.approve[a.Team] = map[string]bool{}
			}
			p.approve[a.Team][a.Environment] = true
		}
	}
	if now := s.cfg.Now(); now.Sub(t.LastUsedAt) >= touchEvery {
		if err := s.st.TokenTouch(ctx, t.ID, now.UTC()); err != nil {
			s.cfg.Logger.Warn("access: recording a token's use failed", "token", t.ID, "err", err)
		}
	}
	return p, nil
}

// TokenList lists tokens: a user's own, or everyone's for user "".
func (s *Service) TokenList(ctx context.Context, user string) ([]Token, error) {
	return s.st.TokenList(ctx, TokenListParams{User: user})
}

// TokenRevoke revokes a token. Only its user or a server admin may; for anyone else it does
// not exist.
func (s *Service) TokenRevoke(ctx context.Context, by *Principal, id string) (Token, error) {
	t, err := s.st.TokenGet(ctx, id)
	if err != nil {
		return Token{}, err
	}
	if !by.Admin && t.User != by.User {
		return Token{}, fmt.Errorf("access: token %s: %w", id, ErrNotFound)
	}
	if err := s.st.TokenRevoke(ctx, id, s.cfg.Now().UTC()); err != nil {
		return Token{}, err
	}
	return s.st.TokenGet(ctx, id)
}

// standing says whether a token found in the store still stands, and returns its user:
// ErrUnauthenticated with the reason when it was revoked, has expired, its user is gone, or
// it is for every team and its user is no longer a server admin. Authenticate asks it at
// the start of a request, Hold's recheck while a stream is open.
func (s *Service) standing(ctx context.Context, t Token) (User, error) {
	switch {
	case !t.RevokedAt.IsZero():
		return User{}, fmt.Errorf("%w: token %s was revoked", ErrUnauthenticated, t.ID)
	case !t.ExpiresAt.IsZero() && !s.cfg.Now().Before(t.ExpiresAt):
		return User{}, fmt.Errorf("%w: token %s expired at %s", ErrUnauthenticated, t.ID, t.ExpiresAt.Format(time.RFC3339))
	}
	u, err := s.st.UserGet(ctx, t.User)
	switch {
	case errors.Is(err, ErrNotFound):
		return User{}, fmt.Errorf("%w: token %s belongs to a user who no longer exists", ErrUnauthenticated, t.ID)
	case err != nil:
		return User{}, err
	case t.AllTeams && !u.Admin:
		// The user was a server admin when the token was made and is no more.
		return User{}, fmt.Errorf("%w: token %s is for every team but %s is no longer a server admin", ErrUnauthenticated, t.ID, u.Name)
	}
	return u, nil
}
