package access_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/paved/paved/internal/access"
	"github.com/paved/paved/internal/store/sqlite"
)

// clock is a test's time, moved by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newService(t *testing.T) (*access.Service, *sqlite.Store, *clock) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), sqlite.Memory)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	svc, err := access.New(access.Config{Store: st, BcryptCost: bcrypt.MinCost, Now: c.now, SessionTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return svc, st, c
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// setup: teams red and blue; ann is red's developer and blue's viewer; root a server admin.
func setup(t *testing.T, svc *access.Service) {
	t.Helper()
	ctx := t.Context()
	for _, team := range []string{"red", "blue"} {
		must[access.Team](t)(svc.TeamAdd(ctx, team))
	}
	must[access.User](t)(svc.UserAdd(ctx, access.UserAddParams{Name: "ann", Password: "correct horse"}))
	must[access.User](t)(svc.UserAdd(ctx, access.UserAddParams{Name: "root", Password: "root password", Admin: true}))
	must[access.Member](t)(svc.MemberSet(ctx, "red", "ann", access.Developer))
	must[access.Member](t)(svc.MemberSet(ctx, "blue", "ann", access.Viewer))
}

func token(t *testing.T, svc *access.Service, p access.TokenCreateParams) string {
	t.Helper()
	_, secret, err := svc.TokenCreate(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

func TestTokenScope(t *testing.T) {
	t.Parallel()
	svc, _, _ := newService(t)
	setup(t, svc)
	ctx := t.Context()

	// A team token acts in its team only, with its role.
	secret := token(t, svc, access.TokenCreateParams{User: "ann", Team: "red", Role: access.Viewer})
	if !strings.HasPrefix(secret, access.TokenPrefix) || len(secret) < 40 {
		t.Errorf("secret %q: want %s and 32 random bytes", secret, access.TokenPrefix)
	}
	p := must[*access.Principal](t)(svc.Authenticate(ctx, secret))
	if p.User != "ann" || p.Admin || p.Role("red") != access.Viewer || p.Role("blue") != access.NoRole {
		t.Errorf("red viewer token: user %s admin %v red %v blue %v", p.User, p.Admin, p.Role("red"), p.Role("blue"))
	}
	if teams, all := p.Teams(); all || len(teams) != 1 || teams[0] != "red" {
		t.Errorf("Teams() = %v, %v", teams, all)
	}

	// No more than one has.
	for _, c := range []access.TokenCreateParams{
		{User: "ann", Team: "blue", Role: access.Developer},
		{User: "ann", Team: "green", Role: access.Viewer},
		{User: "ann", AllTeams: true},
	} {
		if _, _, err := svc.TokenCreate(ctx, c); !errors.Is(err, access.ErrForbidden) {
			t.Errorf("TokenCreate(%+v) = %v, want ErrForbidden", c, err)
		}
	}
	if _, _, err := svc.TokenCreate(ctx, access.TokenCreateParams{User: "ann", Team: "red"}); !errors.Is(err, access.ErrInvalid) {
		t.Errorf("a token without role = %v, want ErrInvalid", err)
	}

	// Demoting the member demotes their tokens; removing them disarms the tokens.
	dev := token(t, svc, access.TokenCreateParams{User: "ann", Team: "red", Role: access.Developer})
	must[access.Member](t)(svc.MemberSet(ctx, "red", "ann", access.Viewer))
	if p := must[*access.Principal](t)(svc.Authenticate(ctx, dev)); p.Role("red") != access.Viewer {
		t.Errorf("after demotion the developer token is %v in red, want viewer", p.Role("red"))
	}
	if err := svc.Store().MemberDelete(ctx, "red", "ann"); err != nil {
		t.Fatal(err)
	}
	if p := must[*access.Principal](t)(svc.Authenticate(ctx, dev)); p.Sees("red") {
		t.Errorf("after removal the token still sees red")
	}

	// A server admin's all-teams token is admin everywhere; their team token only there.
	all := token(t, svc, access.TokenCreateParams{User: "root", AllTeams: true})
	if p := must[*access.Principal](t)(svc.Authenticate(ctx, all)); !p.Admin || p.Role("anything") != access.Admin {
		t.Errorf("all-teams token: admin %v", p.Admin)
	}
	red := token(t, svc, access.TokenCreateParams{User: "root", Team: "red", Role: access.Viewer})
	if p := must[*access.Principal](t)(svc.Authenticate(ctx, red)); p.Admin || p.Role("red") != access.Viewer || p.Sees("blue") {
		t.Errorf("a server admin's red viewer token: admin %v red %v", p.Admin, p.Role("red"))
	}
}

func TestTokenLifecycle(t *testing.T) {
	t.Parallel()
	svc, st, clk := newService(t)
	setup(t, svc)
	ctx := t.Context()
	info, secret, err := svc.TokenCreate(ctx, access.TokenCreateParams{User: "ann", Team: "red", Role: access.Viewer, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := st.TokenGet(ctx, info.ID)
	if err != nil || stored.Hash != access.HashToken(secret) || strings.Contains(stored.Hash, secret) {
		t.Fatalf("stored %+v: want only the SHA-256 of the secret", stored)
	}
	must[*access.Principal](t)(svc.Authenticate(ctx, secret))
	if got, _ := st.TokenGet(ctx, info.ID); !got.LastUsedAt.Equal(clk.t) {
		t.Errorf("last used %v, want %v", got.LastUsedAt, clk.t)
	}
	// Within a minute the use is not written again.
	clk.t = clk.t.Add(30 * time.Second)
	must[*access.Principal](t)(svc.Authenticate(ctx, secret))
	if got, _ := st.TokenGet(ctx, info.ID); got.LastUsedAt.Equal(clk.t) {
		t.Errorf("last used written twice within a minute")
	}
	clk.t = clk.t.Add(time.Hour)
	if _, err := svc.Authenticate(ctx, secret); !errors.Is(err, access.ErrUnauthenticated) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("an expired token = %v", err)
	}

	other := token(t, svc, access.TokenCreateParams{User: "ann", Team: "red", Role: access.Viewer})
	otherInfo, _ := st.TokenByHash(ctx, access.HashToken(other))
	rootP := access.NewPrincipal("root", true, nil)
	bob := access.NewPrincipal("bob", false, map[string]access.Role{"red": access.Admin})
	if _, err := svc.TokenRevoke(ctx, bob, otherInfo.ID); !errors.Is(err, access.ErrNotFound) {
		t.Errorf("revoking another user's token = %v, want ErrNotFound", err)
	}
	if _, err := svc.TokenRevoke(ctx, rootP, otherInfo.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Authenticate(ctx, other); !errors.Is(err, access.ErrUnauthenticated) || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("a revoked token = %v", err)
	}
	for _, s := range []string{"", "pvd_unknown", secret + "x"} {
		if _, err := svc.Authenticate(ctx, s); !errors.Is(err, access.ErrUnauthenticated) {
			t.Errorf("Authenticate(%q) = %v, want ErrUnauthenticated", s, err)
		}
	}
}

func TestLoginAndApprovers(t *testing.T) {
	t.Parallel()
	svc, _, clk := newService(t)
	setup(t, svc)
	ctx := t.Context()
	for _, c := range [][2]string{{"ann", "wrong"}, {"nobody", "correct horse"}, {"ann", ""}} {
		if _, _, err := svc.Login(ctx, c[0], c[1]); !errors.Is(err, access.ErrUnauthenticated) {
			t.Errorf("Login(%q, %q) = %v, want ErrUnauthenticated", c[0], c[1], err)
		}
	}
	must[access.Approver](t)(svc.ApproverAdd(ctx, "red", "prod", "ann"))
	if _, err := svc.ApproverAdd(ctx, "green", "prod", "ann"); !errors.Is(err, access.ErrInvalid) {
		t.Errorf("an approver of a team they are not in = %v", err)
	}
	info, secret, err := svc.Login(ctx, "ann", "correct horse")
	if err != nil || !info.Session || !info.ExpiresAt.Equal(clk.t.Add(time.Hour)) {
		t.Fatalf("Login = %+v, %v", info, err)
	}
	p := must[*access.Principal](t)(svc.Authenticate(ctx, secret))
	if !p.Session || p.Role("red") != access.Developer || p.Role("blue") != access.Viewer {
		t.Errorf("a session carries every team's role: red %v blue %v", p.Role("red"), p.Role("blue"))
	}
	if !p.CanApprove("red", "prod") || p.CanApprove("red", "dev") || p.CanApprove("blue", "prod") {
		t.Errorf("CanApprove: red/prod %v red/dev %v blue/prod %v", p.CanApprove("red", "prod"), p.CanApprove("red", "dev"), p.CanApprove("blue", "prod"))
	}
	// A team token carries the approvals of its team only.
	blue := token(t, svc, access.TokenCreateParams{User: "ann", Team: "blue", Role: access.Viewer})
	if p := must[*access.Principal](t)(svc.Authenticate(ctx, blue)); p.CanApprove("red", "prod") {
		t.Errorf("ann's blue token can approve into red's prod")
	}
	clk.t = clk.t.Add(2 * time.Hour)
	if _, err := svc.Authenticate(ctx, secret); !errors.Is(err, access.ErrUnauthenticated) {
		t.Errorf("an expired session = %v", err)
	}
	if err := svc.SetPassword(ctx, "ann", "battery staple", false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.Login(ctx, "ann", "battery staple"); err != nil {
		t.Errorf("login with the new password: %v", err)
	}
}

func TestBootstrap(t *testing.T) {
	t.Parallel()
	svc, st, _ := newService(t)
	ctx := t.Context()
	if _, err := svc.Bootstrap(ctx, "short"); !errors.Is(err, access.ErrInvalid) {
		t.Errorf("a short bootstrap token = %v, want ErrInvalid", err)
	}
	const secret = "automation-secret-0123456789"
	for i, want := range []bool{true, false} {
		created, err := svc.Bootstrap(ctx, secret)
		if err != nil || created != want {
			t.Fatalf("Bootstrap #%d = %v, %v; want created %v", i+1, created, err, want)
		}
	}
	p := must[*access.Principal](t)(svc.Authenticate(ctx, secret))
	if p.User != "admin" || !p.Admin {
		t.Errorf("bootstrap token: %+v", p)
	}
	if ts, _ := st.TokenList(ctx, access.TokenListParams{}); len(ts) != 1 {
		t.Errorf("%d tokens after two bootstraps, want 1", len(ts))
	}
	if _, _, err := svc.Login(ctx, "admin", ""); err == nil {
		t.Errorf("the bootstrap admin logs in with no password")
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	svc, _, _ := newService(t)
	ctx := t.Context()
	for _, n := range []string{"", "Red", "a b", "-x", strings.Repeat("a", 64), "../etc"} {
		if _, err := svc.TeamAdd(ctx, n); !errors.Is(err, access.ErrInvalid) {
			t.Errorf("TeamAdd(%q) = %v, want ErrInvalid", n, err)
		}
	}
	if _, err := svc.UserAdd(ctx, access.UserAddParams{Name: "ann", Password: "short"}); !errors.Is(err, access.ErrInvalid) {
		t.Errorf("a 5-character password = %v", err)
	}
	must[access.Team](t)(svc.TeamAdd(ctx, "red"))
	if _, err := svc.TeamAdd(ctx, "red"); !errors.Is(err, access.ErrExists) {
		t.Errorf("a second team red = %v", err)
	}
}

// BenchmarkAuthenticate: what every API request pays to find its caller, on a SQLite file:
// a team token of a member with an approval (token, user, members, approvers).
func BenchmarkAuthenticate(b *testing.B) {
	st, err := sqlite.Open(b.Context(), b.TempDir()+"/paved.db")
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	svc, err := access.New(access.Config{Store: st, BcryptCost: bcrypt.MinCost})
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	if _, err := svc.TeamAdd(ctx, "red"); err != nil {
		b.Fatal(err)
	}
	if _, err := svc.UserAdd(ctx, access.UserAddParams{Name: "ann"}); err != nil {
		b.Fatal(err)
	}
	if _, err := svc.MemberSet(ctx, "red", "ann", access.Developer); err != nil {
		b.Fatal(err)
	}
	if _, err := svc.ApproverAdd(ctx, "red", "prod", "ann"); err != nil {
		b.Fatal(err)
	}
	_, secret, err := svc.TokenCreate(ctx, access.TokenCreateParams{User: "ann", Team: "red", Role: access.Developer})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := svc.Authenticate(ctx, secret); err != nil {
			b.Fatal(err)
		}
	}
}
