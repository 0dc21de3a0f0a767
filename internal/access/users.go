package access

import (
	"context"
	"fmt"

	"golang.org/x/crypto/bcrypt"
)

// PasswordChangeParams changes a user's password.
type PasswordChangeParams struct {
	User string
	// Current is the user's password now. A server admin need not give it; anyone else
	// changes only their own password, with it.
	Current string
	New     string
}

// PasswordChange sets a user's password and ends their other login sessions: all of them,
// but the one the change was made with when the user made it in the UI. API tokens stay
// (revoke them with TokenRevoke). It says how many sessions it ended.
func (s *Service) PasswordChange(ctx context.Context, by *Principal, p PasswordChangeParams) (ended int, err error) {
	if by == nil {
		return 0, fmt.Errorf("%w: no caller", ErrUnauthenticated)
	}
	if !by.Admin && by.User != p.User {
		return 0, fmt.Errorf("%w: only a server admin may change another user's password", ErrForbidden)
	}
	u, err := s.st.UserGet(ctx, p.User)
	if err != nil {
		return 0, err
	}
	if !by.Admin {
		if u.PasswordHash == "" {
			return 0, fmt.Errorf("%w: %s has no password to change (signs in with tokens or SSO); a server admin can set one", ErrForbidden, u.Name)
		}
		if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(p.Current)) != nil {
			return 0, fmt.Errorf("%w: the current password is wrong", ErrForbidden)
		}
	}
	h, err := s.hashPassword(p.New)
	if err != nil {
		return 0, err
	}
	if err := s.st.UserSetPassword(ctx, u.Name, h); err != nil {
		return 0, err
	}
	keep := ""
	if by.User == u.Name && by.Session {
		keep = by.TokenID
	}
	return s.st.SessionsRevoke(ctx, u.Name, keep, s.cfg.Now().UTC())
}

func (s *Service) hashPassword(pw string) (string, error) {
	if len(pw) < 8 {
		return "", fmt.Errorf("%w: the password must have at least 8 characters", ErrInvalid)
	}
	if len(pw) > 72 {
		return "", fmt.Errorf("%w: the password must have at most 72 bytes (bcrypt reads no more)", ErrInvalid)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), s.cfg.BcryptCost)
	if err != nil {
		return "", fmt.Errorf("access: hash password: %w", err)
	}
	return string(h), nil
}

// UserRemove removes a user: every token and session of theirs is revoked, their
// memberships and approvals dropped; what they did stays in the audit log under their
// name. The last server admin cannot be removed (ErrLastAdmin).
func (s *Service) UserRemove(ctx context.Context, name string) error {
	return s.st.UserRemove(ctx, name, s.cfg.Now().UTC())
}
