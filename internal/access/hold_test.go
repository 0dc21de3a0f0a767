package access_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/paved/paved/internal/access"
	"github.com/paved/paved/internal/store/postgres"
	"github.com/paved/paved/internal/store/postgres/pgtest"
)

// recheck is the tests' Config.RecheckEvery: short, so that an ended stream shows at once.
const recheck = 20 * time.Millisecond

func fastService(t *testing.T, st access.Store) *access.Service {
	t.Helper()
	svc, err := access.New(access.Config{Store: st, BcryptCost: bcrypt.MinCost, RecheckEvery: recheck})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// ended waits for ctx to end, and says why; it fails the test after a deadline of many
// recheck intervals.
func ended(t *testing.T, ctx context.Context, what string) error {
	t.Helper()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: the held context did not end", what)
		return nil
	}
}

func stillOpen(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	select {
	case <-ctx.Done():
		t.Errorf("%s: the held context ended: %v", what, context.Cause(ctx))
	case <-time.After(5 * recheck):
	}
}

// TestHold: a held context ends, with a cause that says why, when its token is revoked, its
// session logged out (or the password changed), its user removed, or it expires; and not
// for anyone else's token.
func TestHold(t *testing.T) {
	t.Parallel()
	_, st, _ := newService(t)
	svc := fastService(t, st)
	setup(t, svc)
	ctx := t.Context()
	must[access.User](t)(svc.UserAdd(ctx, access.UserAddParams{Name: "bo", Password: "bo's password"}))
	must[access.Member](t)(svc.MemberSet(ctx, "red", "bo", access.Viewer))

	hold := func(secret string) (context.Context, context.CancelFunc, *access.Principal) {
		t.Helper()
		p := must[*access.Principal](t)(svc.Authenticate(ctx, secret))
		c, stop := svc.Hold(ctx, p)
		t.Cleanup(stop)
		return c, stop, p
	}

	// Revoked: both streams of the token end, another token's does not.
	tok := token(t, svc, access.TokenCreateParams{User: "ann", Team: "red", Role: access.Viewer})
	other := token(t, svc, access.TokenCreateParams{User: "bo", Team: "red", Role: access.Viewer})
	a1, _, p := hold(tok)
	a2, _, _ := hold(tok)
	b, _, _ := hold(other)
	stillOpen(t, a1, "a live token")
	must[access.Token](t)(svc.TokenRevoke(ctx, p, p.TokenID))
	for _, c := range []context.Context{a1, a2} {
		if err := ended(t, c, "revoked"); !errors.Is(err, access.ErrUnauthenticated) || !strings.Contains(err.Error(), "revoked") {
			t.Errorf("cause after revocation = %v", err)
		}
	}
	stillOpen(t, b, "another user's token")

	// Logged out, and ended by a password change made in another session.
	_, s1 := must2(t)(svc.Login(ctx, "ann", "correct horse"))
	_, s2 := must2(t)(svc.Login(ctx, "ann", "correct horse"))
	c1, _, _ := hold(s1)
	c2, _, p2 := hold(s2)
	n, err := svc.PasswordChange(ctx, p2, access.PasswordChangeParams{User: "ann", Current: "correct horse", New: "battery staple"})
	if err != nil || n != 1 {
		t.Fatalf("PasswordChange = %d, %v; want 1 session ended", n, err)
	}
	if err := ended(t, c1, "the other session"); !strings.Contains(err.Error(), "session") {
		t.Errorf("cause after a password change = %v", err)
	}
	stillOpen(t, c2, "the session the password was changed in")
	must[access.Token](t)(svc.TokenRevoke(ctx, p2, p2.TokenID)) // logout
	ended(t, c2, "logged out")

	// The user removed: every stream of theirs ends.
	_, bs := must2(t)(svc.Login(ctx, "bo", "bo's password"))
	c3, _, _ := hold(bs)
	if err := svc.UserRemove(ctx, "bo"); err != nil {
		t.Fatal(err)
	}
	ended(t, c3, "user removed")
	ended(t, b, "user removed (their API token)")

	// Expired: at the token's expiry, without waiting for a recheck.
	short := token(t, svc, access.TokenCreateParams{User: "ann", Team: "red", Role: access.Viewer, TTL: 50 * time.Millisecond})
	c4, _, _ := hold(short)
	if err := ended(t, c4, "expiry"); !strings.Contains(err.Error(), "expired") {
		t.Errorf("cause at expiry = %v", err)
	}

	// Stopped by its caller: context.Canceled, and nothing left to recheck.
	c5, stop, _ := hold(token(t, svc, access.TokenCreateParams{User: "root", AllTeams: true}))
	stop()
	if err := context.Cause(c5); !errors.Is(err, context.Canceled) {
		t.Errorf("cause after stop = %v", err)
	}
}

func must2(t *testing.T) func(access.Token, string, error) (access.Token, string) {
	return func(tk access.Token, s string, err error) (access.Token, string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return tk, s
	}
}

// TestHoldAcrossServers: two services on one PostgreSQL store, as two paved servers: a
// token revoked, and a user removed, on one end the streams held on the other.
func TestHoldAcrossServers(t *testing.T) {
	t.Parallel()
	dsn := pgtest.ForTest(t, pgtest.Config{}).NewDatabase(t)
	open := func() *access.Service {
		st, err := postgres.Open(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return fastService(t, st)
	}
	one, two := open(), open()
	setup(t, one)
	ctx := t.Context()
	tok := token(t, one, access.TokenCreateParams{User: "ann", Team: "red", Role: access.Viewer})
	p := must[*access.Principal](t)(one.Authenticate(ctx, tok))
	held, stop := one.Hold(ctx, p)
	defer stop()
	_, sess := must2(t)(one.Login(ctx, "ann", "correct horse"))
	ps := must[*access.Principal](t)(one.Authenticate(ctx, sess))
	heldSession, stop2 := one.Hold(ctx, ps)
	defer stop2()

	root := access.NewPrincipal("root", true, nil)
	must[access.Token](t)(two.TokenRevoke(ctx, root, p.TokenID))
	if err := ended(t, held, "revoked on the other server"); !strings.Contains(err.Error(), "revoked") {
		t.Errorf("cause = %v", err)
	}
	stillOpen(t, heldSession, "ann's session, before her removal")
	if err := two.UserRemove(ctx, "ann"); err != nil {
		t.Fatal(err)
	}
	ended(t, heldSession, "user removed on the other server")
}

// TestPasswordChangeAndRemoval: who may change a password, with what; the last server
// admin stays; a removed user cannot log in, and a new user of that name has nothing of
// the old one's.
func TestPasswordChangeAndRemoval(t *testing.T) {
	t.Parallel()
	svc, _, _ := newService(t)
	setup(t, svc)
	ctx := t.Context()
	ann := access.NewPrincipal("ann", false, nil)
	root := access.NewPrincipal("root", true, nil)
	for _, c := range []struct {
		by   *access.Principal
		p    access.PasswordChangeParams
		want error
	}{
		{ann, access.PasswordChangeParams{User: "ann", Current: "wrong", New: "new password"}, access.ErrForbidden},
		{ann, access.PasswordChangeParams{User: "root", Current: "root password", New: "new password"}, access.ErrForbidden},
		{ann, access.PasswordChangeParams{User: "ann", Current: "correct horse", New: "short"}, access.ErrInvalid},
		{root, access.PasswordChangeParams{User: "nobody", New: "new password"}, access.ErrNotFound},
		{ann, access.PasswordChangeParams{User: "ann", Current: "correct horse", New: "ann's new password"}, nil},
		{root, access.PasswordChangeParams{User: "ann", New: "set by root!"}, nil}, // no current password needed
	} {
		if _, err := svc.PasswordChange(ctx, c.by, c.p); !errors.Is(err, c.want) && (c.want != nil || err != nil) {
			t.Errorf("PasswordChange by %s of %+v = %v, want %v", c.by.User, c.p, err, c.want)
		}
	}
	if _, _, err := svc.Login(ctx, "ann", "ann's new password"); err == nil {
		t.Error("the old password still logs in")
	}
	must2(t)(svc.Login(ctx, "ann", "set by root!"))

	if err := svc.UserRemove(ctx, "root"); !errors.Is(err, access.ErrLastAdmin) {
		t.Errorf("removing the last server admin = %v, want ErrLastAdmin", err)
	}
	tok := token(t, svc, access.TokenCreateParams{User: "ann", Team: "red", Role: access.Developer})
	if err := svc.UserRemove(ctx, "ann"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.Login(ctx, "ann", "set by root!"); !errors.Is(err, access.ErrUnauthenticated) {
		t.Errorf("a removed user's login = %v", err)
	}
	if _, err := svc.Authenticate(ctx, tok); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("a removed user's token = %v, want revoked", err)
	}
	must[access.User](t)(svc.UserAdd(ctx, access.UserAddParams{Name: "ann", Password: "a new ann's"}))
	if _, err := svc.Authenticate(ctx, tok); err == nil {
		t.Error("the old ann's token works for the new ann")
	}
	if ms, _ := svc.Store().MemberList(ctx, access.MemberListParams{User: "ann"}); len(ms) != 0 {
		t.Errorf("the new ann has the old one's memberships: %+v", ms)
	}
}
