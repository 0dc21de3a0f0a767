package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paved/paved/internal/access"
)

var _ access.Store = (*Store)(nil)

// UserCreate adds a user; a taken name is an error wrapping access.ErrExists. The name of
// a removed user is free: the row is made afresh.
func (s *Store) UserCreate(ctx context.Context, u access.User) error {
	tag, err := s.pool.Exec(ctx, `INSERT INTO users (name, password_hash, admin, created_at, issuer) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash, admin = excluded.admin,
			created_at = excluded.created_at, issuer = excluded.issuer, removed_at = NULL
		WHERE users.removed_at IS NOT NULL`,
		u.Name, u.PasswordHash, u.Admin, nanos(u.CreatedAt), u.Issuer)
	if err != nil {
		return fmt.Errorf("postgres: create user %s: %w", u.Name, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: user %s: %w", u.Name, access.ErrExists)
	}
	return nil
}

// UserGet returns a user, or an error wrapping access.ErrNotFound.
func (s *Store) UserGet(ctx context.Context, name string) (access.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT name, password_hash, admin, created_at, issuer FROM users WHERE name = $1 AND removed_at IS NULL`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return access.User{}, fmt.Errorf("postgres: user %s: %w", name, access.ErrNotFound)
	}
	if err != nil {
		return access.User{}, fmt.Errorf("postgres: user %s: %w", name, err)
	}
	return u, nil
}

// UserList lists every user by name.
func (s *Store) UserList(ctx context.Context) ([]access.User, error) {
	return queryAll(ctx, s.pool, "list users", scanUser, `SELECT name, password_hash, admin, created_at, issuer FROM users WHERE removed_at IS NULL ORDER BY name`)
}

// UserSetPassword replaces a user's password hash.
func (s *Store) UserSetPassword(ctx context.Context, name, hash string) error {
	return s.execOne(ctx, "user "+name, `UPDATE users SET password_hash = $1 WHERE name = $2 AND removed_at IS NULL`, hash, name)
}

// UserRemove revokes a user's tokens, drops their memberships and approvals and marks them
// removed, in one transaction. The live admins' rows are locked first, so two removals of
// the last two admins cannot both pass the check.
func (s *Store) UserRemove(ctx context.Context, name string, at time.Time) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT name FROM users WHERE (admin OR name = $1) AND removed_at IS NULL ORDER BY name FOR UPDATE`, name)
		if err != nil {
			return err
		}
		live, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		var admin bool
		err = tx.QueryRow(ctx, `SELECT admin FROM users WHERE name = $1 AND removed_at IS NULL`, name).Scan(&admin)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("user %s: %w", name, access.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if admin && len(live) < 2 {
			return fmt.Errorf("user %s: %w", name, access.ErrLastAdmin)
		}
		ts := nanos(at)
		if _, err := tx.Exec(ctx, `UPDATE tokens SET revoked_at = $1 WHERE "user" = $2 AND revoked_at IS NULL`, ts, name); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM approvers WHERE "user" = $1`, name); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM members WHERE "user" = $1`, name); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE users SET removed_at = $1 WHERE name = $2`, ts, name)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: remove user %s: %w", name, err)
	}
	return nil
}

// SessionsRevoke revokes a user's live sessions but one.
func (s *Store) SessionsRevoke(ctx context.Context, user, except string, at time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE tokens SET revoked_at = $1 WHERE "user" = $2 AND session AND revoked_at IS NULL AND id <> $3`,
		nanos(at), user, except)
	if err != nil {
		return 0, fmt.Errorf("postgres: revoke sessions of %s: %w", user, err)
	}
	return int(tag.RowsAffected()), nil
}

func scanUser(row interface{ Scan(...any) error }) (access.User, error) {
	var u access.User
	var created *int64
	if err := row.Scan(&u.Name, &u.PasswordHash, &u.Admin, &created, &u.Issuer); err != nil {
		return u, err
	}
	u.CreatedAt = fromNanos(created)
	return u, nil
}

// TeamCreate adds a team; a taken name is an error wrapping access.ErrExists.
func (s *Store) TeamCreate(ctx context.Context, t access.Team) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO teams (name, created_at) VALUES ($1, $2)`, t.Name, nanos(t.CreatedAt))
	if sqlState(err) == uniqueViolation {
		return fmt.Errorf("postgres: team %s: %w", t.Name, access.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("postgres: create team %s: %w", t.Name, err)
	}
	return nil
}

// TeamGet returns a team, or an error wrapping access.ErrNotFound.
func (s *Store) TeamGet(ctx context.Context, name string) (access.Team, error) {
	t, err := scanTeam(s.pool.QueryRow(ctx, `SELECT name, created_at FROM teams WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return access.Team{}, fmt.Errorf("postgres: team %s: %w", name, access.ErrNotFound)
	}
	if err != nil {
		return access.Team{}, fmt.Errorf("postgres: team %s: %w", name, err)
	}
	return t, nil
}

// TeamList lists every team by name.
func (s *Store) TeamList(ctx context.Context) ([]access.Team, error) {
	return queryAll(ctx, s.pool, "list teams", scanTeam, `SELECT name, created_at FROM teams ORDER BY name`)
}

func scanTeam(row interface{ Scan(...any) error }) (access.Team, error) {
	var t access.Team
	var created *int64
	if err := row.Scan(&t.Name, &created); err != nil {
		return t, err
	}
	t.CreatedAt = fromNanos(created)
	return t, nil
}

// MemberPut adds a membership or changes its role (keeping its created_at). An unknown
// team or user is an error wrapping access.ErrNotFound.
func (s *Store) MemberPut(ctx context.Context, m access.Member) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO members (team, "user", role, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (team, "user") DO UPDATE SET role = excluded.role`, m.Team, m.User, m.Role.String(), nanos(m.CreatedAt))
	if sqlState(err) == foreignKeyViolation {
		return fmt.Errorf("postgres: member %s of %s: no such team or user: %w", m.User, m.Team, access.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("postgres: put member %s of %s: %w", m.User, m.Team, err)
	}
	return nil
}

// MemberDelete removes a membership and the user's approvals in that team.
func (s *Store) MemberDelete(ctx context.Context, team, user string) error {
	return s.execOne(ctx, "member "+user+" of "+team, `DELETE FROM members WHERE team = $1 AND "user" = $2`, team, user)
}

// MemberList lists memberships by team, then user.
func (s *Store) MemberList(ctx context.Context, p access.MemberListParams) ([]access.Member, error) {
	return queryAll(ctx, s.pool, "list members", scanMember, `SELECT team, "user", role, created_at FROM members
		WHERE ($1 = '' OR team = $2) AND ($3 = '' OR "user" = $4) ORDER BY team, "user"`, p.Team, p.Team, p.User, p.User)
}

func scanMember(row interface{ Scan(...any) error }) (access.Member, error) {
	var m access.Member
	var role string
	var created *int64
	if err := row.Scan(&m.Team, &m.User, &role, &created); err != nil {
		return m, err
	}
	var err error
	m.Role, err = access.ParseRole(role)
	m.CreatedAt = fromNanos(created)
	return m, err
}

// ApproverPut adds an approver; the user must be a member of the team (access.ErrNotFound
// otherwise). Adding one twice is not an error.
func (s *Store) ApproverPut(ctx context.Context, a access.Approver) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO approvers (team, environment, "user", created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT DO NOTHING`, a.Team, a.Environment, a.User, nanos(a.CreatedAt))
	if sqlState(err) == foreignKeyViolation {
		return fmt.Errorf("postgres: approver %s of %s/%s: not a member: %w", a.User, a.Team, a.Environment, access.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("postgres: put approver %s of %s/%s: %w", a.User, a.Team, a.Environment, err)
	}
	return nil
}

// ApproverDelete removes an approver.
func (s *Store) ApproverDelete(ctx context.Context, team, env, user string) error {
	return s.execOne(ctx, "approver "+user+" of "+team+"/"+env,
		`DELETE FROM approvers WHERE team = $1 AND environment = $2 AND "user" = $3`, team, env, user)
}

// ApproverList lists approvers by team, environment, then user.
func (s *Store) ApproverList(ctx context.Context, p access.ApproverListParams) ([]access.Approver, error) {
	return queryAll(ctx, s.pool, "list approvers", scanApprover, `SELECT team, environment, "user", created_at FROM approvers
		WHERE ($1 = '' OR team = $2) AND ($3 = '' OR "user" = $4) ORDER BY team, environment, "user"`, p.Team, p.Team, p.User, p.User)
}

func scanApprover(row interface{ Scan(...any) error }) (access.Approver, error) {
	var a access.Approver
	var created *int64
	if err := row.Scan(&a.Team, &a.Environment, &a.User, &created); err != nil {
		return a, err
	}
	a.CreatedAt = fromNanos(created)
	return a, nil
}

const tokenColumns = `id, hash, name, "user", team, role, all_teams, session, created_at, expires_at, last_used_at, revoked_at`

// TokenCreate stores a token. An unknown user is an error wrapping access.ErrNotFound; a
// taken ID or hash one wrapping access.ErrExists.
func (s *Store) TokenCreate(ctx context.Context, t access.Token) error {
	role := ""
	if t.Role != access.NoRole {
		role = t.Role.String()
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO tokens (`+tokenColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		t.ID, t.Hash, t.Name, t.User, t.Team, role, t.AllTeams, t.Session, nanos(t.CreatedAt),
		nanos(t.ExpiresAt), nanos(t.LastUsedAt), nanos(t.RevokedAt))
	switch {
	case sqlState(err) == uniqueViolation:
		return fmt.Errorf("postgres: token %s: %w", t.ID, access.ErrExists)
	case sqlState(err) == foreignKeyViolation:
		return fmt.Errorf("postgres: token %s: user %s: %w", t.ID, t.User, access.ErrNotFound)
	case err != nil:
		return fmt.Errorf("postgres: create token %s: %w", t.ID, err)
	}
	return nil
}

// TokenGet returns a token by its ID.
func (s *Store) TokenGet(ctx context.Context, id string) (access.Token, error) {
	return s.tokenWhere(ctx, "id", id)
}

// TokenByHash returns a token by the SHA-256 of its secret.
func (s *Store) TokenByHash(ctx context.Context, hash string) (access.Token, error) {
	return s.tokenWhere(ctx, "hash", hash)
}

func (s *Store) tokenWhere(ctx context.Context, col, v string) (access.Token, error) {
	t, err := scanToken(s.pool.QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE `+col+` = $1`, v))
	if errors.Is(err, pgx.ErrNoRows) {
		return access.Token{}, fmt.Errorf("postgres: token: %w", access.ErrNotFound)
	}
	if err != nil {
		return access.Token{}, fmt.Errorf("postgres: token: %w", err)
	}
	return t, nil
}

// TokenList lists tokens, newest first.
func (s *Store) TokenList(ctx context.Context, p access.TokenListParams) ([]access.Token, error) {
	return queryAll(ctx, s.pool, "list tokens", scanToken, `SELECT `+tokenColumns+` FROM tokens
		WHERE ($1 = '' OR "user" = $2) ORDER BY created_at DESC, id DESC`, p.User, p.User)
}

// TokenRevoke sets a token's revoked_at, once.
func (s *Store) TokenRevoke(ctx context.Context, id string, at time.Time) error {
	if _, err := s.TokenGet(ctx, id); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `UPDATE tokens SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2`, nanos(at), id)
	if err != nil {
		return fmt.Errorf("postgres: revoke token %s: %w", id, err)
	}
	return nil
}

// TokenTouch sets a token's last_used_at.
func (s *Store) TokenTouch(ctx context.Context, id string, at time.Time) error {
	return s.execOne(ctx, "token "+id, `UPDATE tokens SET last_used_at = $1 WHERE id = $2`, nanos(at), id)
}

func scanToken(row interface{ Scan(...any) error }) (access.Token, error) {
	var (
		t                               access.Token
		role                            string
		created, expires, used, revoked *int64
	)
	if err := row.Scan(&t.ID, &t.Hash, &t.Name, &t.User, &t.Team, &role, &t.AllTeams, &t.Session, &created, &expires, &used, &revoked); err != nil {
		return t, err
	}
	var err error
	if role != "" {
		if t.Role, err = access.ParseRole(role); err != nil {
			return t, err
		}
	}
	t.CreatedAt, t.ExpiresAt, t.LastUsedAt, t.RevokedAt = fromNanos(created), fromNanos(expires), fromNanos(used), fromNanos(revoked)
	return t, nil
}

// execOne runs a write that must change one row; none is access.ErrNotFound.
func (s *Store) execOne(ctx context.Context, what, q string, args ...any) error {
	tag, err := s.pool.Exec(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("postgres: %s: %w", what, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: %s: %w", what, access.ErrNotFound)
	}
	return nil
}

func queryAll[T any](ctx context.Context, db *pgxpool.Pool, what string, scan func(interface{ Scan(...any) error }) (T, error), q string, args ...any) ([]T, error) {
	rows, err := db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", what, err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", what, err)
	}
	return out, nil
}
