package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/paved/paved/internal/access"
)

var _ access.Store = (*Store)(nil)

// UserCreate adds a user; a taken name is an error wrapping access.ErrExists. The name of
// a removed user is free: the row is made afresh.
func (s *Store) UserCreate(ctx context.Context, u access.User) error {
	res, err := s.w.ExecContext(ctx, `INSERT INTO users (name, password_hash, admin, created_at, issuer) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash, admin = excluded.admin,
			created_at = excluded.created_at, issuer = excluded.issuer, removed_at = NULL
		WHERE users.removed_at IS NOT NULL`,
		u.Name, u.PasswordHash, u.Admin, formatTime(u.CreatedAt), u.Issuer)
	if err != nil {
		return fmt.Errorf("sqlite: create user %s: %w", u.Name, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: create user %s: %w", u.Name, err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: user %s: %w", u.Name, access.ErrExists)
	}
	return nil
}

// UserGet returns a user, or an error wrapping access.ErrNotFound.
func (s *Store) UserGet(ctx context.Context, name string) (access.User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT name, password_hash, admin, created_at, issuer FROM users WHERE name = ? AND removed_at IS NULL`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return access.User{}, fmt.Errorf("sqlite: user %s: %w", name, access.ErrNotFound)
	}
	if err != nil {
		return access.User{}, fmt.Errorf("sqlite: user %s: %w", name, err)
	}
	return u, nil
}

// UserList lists every user by name.
func (s *Store) UserList(ctx context.Context) ([]access.User, error) {
	return queryAll(ctx, s.r, "list users", scanUser, `SELECT name, password_hash, admin, created_at, issuer FROM users WHERE removed_at IS NULL ORDER BY name`)
}

// UserSetPassword replaces a user's password hash.
func (s *Store) UserSetPassword(ctx context.Context, name, hash string) error {
	return s.execOne(ctx, "user "+name, `UPDATE users SET password_hash = ? WHERE name = ? AND removed_at IS NULL`, hash, name)
}

// UserRemove revokes a user's tokens, drops their memberships and approvals and marks them
// removed, in one transaction (the write lock is taken at BEGIN, so two removals of the
// last two admins cannot both pass the check).
func (s *Store) UserRemove(ctx context.Context, name string, at time.Time) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: remove user %s: %w", name, err)
	}
	defer tx.Rollback()
	var admin bool
	err = tx.QueryRowContext(ctx, `SELECT admin FROM users WHERE name = ? AND removed_at IS NULL`, name).Scan(&admin)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlite: user %s: %w", name, access.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("sqlite: remove user %s: %w", name, err)
	}
	if admin {
		var others int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE admin AND removed_at IS NULL AND name <> ?`, name).Scan(&others); err != nil {
			return fmt.Errorf("sqlite: remove user %s: %w", name, err)
		}
		if others == 0 {
			return fmt.Errorf("sqlite: user %s: %w", name, access.ErrLastAdmin)
		}
	}
	ts := formatTime(at)
	for _, w := range []struct {
		q    string
		args []any
	}{
		{`UPDATE tokens SET revoked_at = ? WHERE user = ? AND revoked_at IS NULL`, []any{ts, name}},
		{`DELETE FROM approvers WHERE user = ?`, []any{name}},
		{`DELETE FROM members WHERE user = ?`, []any{name}},
		{`UPDATE users SET removed_at = ? WHERE name = ?`, []any{ts, name}},
	} {
		if _, err := tx.ExecContext(ctx, w.q, w.args...); err != nil {
			return fmt.Errorf("sqlite: remove user %s: %w", name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: remove user %s: %w", name, err)
	}
	return nil
}

// SessionsRevoke revokes a user's live sessions but one.
func (s *Store) SessionsRevoke(ctx context.Context, user, except string, at time.Time) (int, error) {
	res, err := s.w.ExecContext(ctx, `UPDATE tokens SET revoked_at = ? WHERE user = ? AND session AND revoked_at IS NULL AND id <> ?`,
		formatTime(at), user, except)
	if err != nil {
		return 0, fmt.Errorf("sqlite: revoke sessions of %s: %w", user, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: revoke sessions of %s: %w", user, err)
	}
	return int(n), nil
}

func scanUser(row interface{ Scan(...any) error }) (access.User, error) {
	var u access.User
	var created string
	if err := row.Scan(&u.Name, &u.PasswordHash, &u.Admin, &created, &u.Issuer); err != nil {
		return u, err
	}
	var err error
	u.CreatedAt, err = parseTime(created)
	return u, err
}

// TeamCreate adds a team; a taken name is an error wrapping access.ErrExists.
func (s *Store) TeamCreate(ctx context.Context, t access.Team) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO teams (name, created_at) VALUES (?, ?)`, t.Name, formatTime(t.CreatedAt))
	if isPrimaryKeyViolation(err) {
		return fmt.Errorf("sqlite: team %s: %w", t.Name, access.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("sqlite: create team %s: %w", t.Name, err)
	}
	return nil
}

// TeamGet returns a team, or an error wrapping access.ErrNotFound.
func (s *Store) TeamGet(ctx context.Context, name string) (access.Team, error) {
	t, err := scanTeam(s.r.QueryRowContext(ctx, `SELECT name, created_at FROM teams WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return access.Team{}, fmt.Errorf("sqlite: team %s: %w", name, access.ErrNotFound)
	}
	if err != nil {
		return access.Team{}, fmt.Errorf("sqlite: team %s: %w", name, err)
	}
	return t, nil
}

// TeamList lists every team by name.
func (s *Store) TeamList(ctx context.Context) ([]access.Team, error) {
	return queryAll(ctx, s.r, "list teams", scanTeam, `SELECT name, created_at FROM teams ORDER BY name`)
}

func scanTeam(row interface{ Scan(...any) error }) (access.Team, error) {
	var t access.Team
	var created string
	if err := row.Scan(&t.Name, &created); err != nil {
		return t, err
	}
	var err error
	t.CreatedAt, err = parseTime(created)
	return t, err
}

// MemberPut adds a membership or changes its role (keeping its created_at). An unknown
// team or user is an error wrapping access.ErrNotFound.
func (s *Store) MemberPut(ctx context.Context, m access.Member) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO members (team, user, role, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (team, user) DO UPDATE SET role = excluded.role`, m.Team, m.User, m.Role.String(), formatTime(m.CreatedAt))
	if isForeignKeyViolation(err) {
		return fmt.Errorf("sqlite: member %s of %s: no such team or user: %w", m.User, m.Team, access.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("sqlite: put member %s of %s: %w", m.User, m.Team, err)
	}
	return nil
}

// MemberDelete removes a membership and the user's approvals in that team.
func (s *Store) MemberDelete(ctx context.Context, team, user string) error {
	return s.execOne(ctx, "member "+user+" of "+team, `DELETE FROM members WHERE team = ? AND user = ?`, team, user)
}

// MemberList lists memberships by team, then user.
func (s *Store) MemberList(ctx context.Context, p access.MemberListParams) ([]access.Member, error) {
	return queryAll(ctx, s.r, "list members", scanMember, `SELECT team, user, role, created_at FROM members
		WHERE (? = '' OR team = ?) AND (? = '' OR user = ?) ORDER BY team, user`, p.Team, p.Team, p.User, p.User)
}

func scanMember(row interface{ Scan(...any) error }) (access.Member, error) {
	var m access.Member
	var role, created string
	if err := row.Scan(&m.Team, &m.User, &role, &created); err != nil {
		return m, err
	}
	var err error
	if m.Role, err = access.ParseRole(role); err != nil {
		return m, err
	}
	m.CreatedAt, err = parseTime(created)
	return m, err
}

// ApproverPut adds an approver; the user must be a member of the team (access.ErrNotFound
// otherwise). Adding one twice is not an error.
func (s *Store) ApproverPut(ctx context.Context, a access.Approver) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO approvers (team, environment, user, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT DO NOTHING`, a.Team, a.Environment, a.User, formatTime(a.CreatedAt))
	if isForeignKeyViolation(err) {
		return fmt.Errorf("sqlite: approver %s of %s/%s: not a member: %w", a.User, a.Team, a.Environment, access.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("sqlite: put approver %s of %s/%s: %w", a.User, a.Team, a.Environment, err)
	}
	return nil
}

// ApproverDelete removes an approver.
func (s *Store) ApproverDelete(ctx context.Context, team, env, user string) error {
	return s.execOne(ctx, "approver "+user+" of "+team+"/"+env,
		`DELETE FROM approvers WHERE team = ? AND environment = ? AND user = ?`, team, env, user)
}

// ApproverList lists approvers by team, environment, then user.
func (s *Store) ApproverList(ctx context.Context, p access.ApproverListParams) ([]access.Approver, error) {
	return queryAll(ctx, s.r, "list approvers", scanApprover, `SELECT team, environment, user, created_at FROM approvers
		WHERE (? = '' OR team = ?) AND (? = '' OR user = ?) ORDER BY team, environment, user`, p.Team, p.Team, p.User, p.User)
}

func scanApprover(row interface{ Scan(...any) error }) (access.Approver, error) {
	var a access.Approver
	var created string
	if err := row.Scan(&a.Team, &a.Environment, &a.User, &created); err != nil {
		return a, err
	}
	var err error
	a.CreatedAt, err = parseTime(created)
	return a, err
}

const tokenColumns = `id, hash, name, user, team, role, all_teams, session, created_at, expires_at, last_used_at, revoked_at`

// TokenCreate stores a token. An unknown user is an error wrapping access.ErrNotFound; a
// taken ID or hash one wrapping access.ErrExists.
func (s *Store) TokenCreate(ctx context.Context, t access.Token) error {
	role := ""
	if t.Role != access.NoRole {
		role = t.Role.String()
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO tokens (`+tokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.Hash, t.Name, t.User, t.Team, role, t.AllTeams, t.Session, formatTime(t.CreatedAt),
		formatTimeOrNull(t.ExpiresAt), formatTimeOrNull(t.LastUsedAt), formatTimeOrNull(t.RevokedAt))
	switch {
	case isPrimaryKeyViolation(err):
		return fmt.Errorf("sqlite: token %s: %w", t.ID, access.ErrExists)
	case isForeignKeyViolation(err):
		return fmt.Errorf("sqlite: token %s: user %s: %w", t.ID, t.User, access.ErrNotFound)
	case err != nil:
		return fmt.Errorf("sqlite: create token %s: %w", t.ID, err)
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
	t, err := scanToken(s.r.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE `+col+` = ?`, v))
	if errors.Is(err, sql.ErrNoRows) {
		return access.Token{}, fmt.Errorf("sqlite: token: %w", access.ErrNotFound)
	}
	if err != nil {
		return access.Token{}, fmt.Errorf("sqlite: token: %w", err)
	}
	return t, nil
}

// TokenList lists tokens, newest first.
func (s *Store) TokenList(ctx context.Context, p access.TokenListParams) ([]access.Token, error) {
	return queryAll(ctx, s.r, "list tokens", scanToken, `SELECT `+tokenColumns+` FROM tokens
		WHERE (? = '' OR user = ?) ORDER BY created_at DESC, id DESC`, p.User, p.User)
}

// TokenRevoke sets a token's revoked_at, once.
func (s *Store) TokenRevoke(ctx context.Context, id string, at time.Time) error {
	if _, err := s.TokenGet(ctx, id); err != nil {
		return err
	}
	_, err := s.w.ExecContext(ctx, `UPDATE tokens SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?`, formatTime(at), id)
	if err != nil {
		return fmt.Errorf("sqlite: revoke token %s: %w", id, err)
	}
	return nil
}

// TokenTouch sets a token's last_used_at.
func (s *Store) TokenTouch(ctx context.Context, id string, at time.Time) error {
	return s.execOne(ctx, "token "+id, `UPDATE tokens SET last_used_at = ? WHERE id = ?`, formatTime(at), id)
}

func scanToken(row interface{ Scan(...any) error }) (access.Token, error) {
	var (
		t                      access.Token
		role, created          string
		expires, used, revoked sql.NullString
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
	if t.CreatedAt, err = parseTime(created); err != nil {
		return t, err
	}
	if t.ExpiresAt, err = parseTimeOrNull(expires); err != nil {
		return t, err
	}
	if t.LastUsedAt, err = parseTimeOrNull(used); err != nil {
		return t, err
	}
	t.RevokedAt, err = parseTimeOrNull(revoked)
	return t, err
}

// execOne runs a write that must change one row; none is access.ErrNotFound.
func (s *Store) execOne(ctx context.Context, what, q string, args ...any) error {
	res, err := s.w.ExecContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("sqlite: %s: %w", what, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: %s: %w", what, err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: %s: %w", what, access.ErrNotFound)
	}
	return nil
}

func queryAll[T any](ctx context.Context, db *sql.DB, what string, scan func(interface{ Scan(...any) error }) (T, error), q string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return out, nil
}
