package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/paved/paved/internal/access"
)

// testAccessUsersTeams: users and teams are created once, read back whole, listed by name.
func testAccessUsersTeams(t *testing.T, h Harness) {
	s := h.Open(t)
	ctx := t.Context()
	if us, err := s.UserList(ctx); err != nil || us == nil || len(us) != 0 {
		t.Errorf("UserList on an empty store = %#v, %v; want empty, non-nil", us, err)
	}
	ann := access.User{Name: "ann", PasswordHash: "$2a$04$hash", Admin: true, CreatedAt: at(0)}
	for _, u := range []access.User{ann, {Name: "bob", CreatedAt: at(time.Second)}} {
		if err := s.UserCreate(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.UserCreate(ctx, access.User{Name: "ann", CreatedAt: at(0)}); !errors.Is(err, access.ErrExists) {
		t.Errorf("UserCreate(taken) = %v, want ErrExists", err)
	}
	got, err := s.UserGet(ctx, "ann")
	if err != nil || got.Name != "ann" || got.PasswordHash != ann.PasswordHash || !got.Admin || !got.CreatedAt.Equal(ann.CreatedAt) {
		t.Errorf("UserGet(ann) = %+v, %v; want %+v", got, err, ann)
	}
	if _, err := s.UserGet(ctx, "nobody"); !errors.Is(err, access.ErrNotFound) {
		t.Errorf("UserGet(unknown) = %v, want ErrNotFound", err)
	}
	if err := s.UserSetPassword(ctx, "bob", "$2a$04$new"); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.UserGet(ctx, "bob"); u.PasswordHash != "$2a$04$new" || u.Admin {
		t.Errorf("after UserSetPassword bob = %+v", u)
	}
	if err := s.UserSetPassword(ctx, "nobody", "x"); !errors.Is(err, access.ErrNotFound) {
		t.Errorf("UserSetPassword(unknown) = %v, want ErrNotFound", err)
	}
	us, err := s.UserList(ctx)
	if err != nil || len(us) != 2 || us[0].Name != "ann" || us[1].Name != "bob" {
		t.Errorf("UserList = %+v, %v", us, err)
	}

	for _, name := range []string{"payments", "checkout"} {
		if err := s.TeamCreate(ctx, access.Team{Name: name, CreatedAt: at(time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.TeamCreate(ctx, access.Team{Name: "payments", CreatedAt: at(0)}); !errors.Is(err, access.ErrExists) {
		t.Errorf("TeamCreate(taken) = %v, want ErrExists", err)
	}
	if tm, err := s.TeamGet(ctx, "payments"); err != nil || !tm.CreatedAt.Equal(at(time.Minute)) {
		t.Errorf("TeamGet = %+v, %v", tm, err)
	}
	if _, err := s.TeamGet(ctx, "nope"); !errors.Is(err, access.ErrNotFound) {
		t.Errorf("TeamGet(unknown) = %v, want ErrNotFound", err)
	}
	ts, err := s.TeamList(ctx)
	if err != nil || len(ts) != 2 || ts[0].Name != "checkout" || ts[1].Name != "payments" {
		t.Errorf("TeamList = %+v, %v", ts, err)
	}
}

// testAccessMembers: memberships and approvers, their filters, and that removing a member
// removes their approvals in that team.
func testAccessMembers(t *testing.T, h Harness) {
	s := h.Open(t)
	ctx := t.Context()
	for _, u := range []string{"ann", "bob"} {
		if err := s.UserCreate(ctx, access.User{Name: u, CreatedAt: at(0)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tm := range []string{"a", "b"} {
		if err := s.TeamCreate(ctx, access.Team{Name: tm, CreatedAt: at(0)}); err != nil {
			t.Fatal(err)
		}
	}
	put := func(team, user string, r access.Role) {
		t.Helper()
		if err := s.MemberPut(ctx, access.Member{Team: team, User: user, Role: r, CreatedAt: at(0)}); err != nil {
			t.Fatal(err)
		}
	}
	put("a", "ann", access.Viewer)
	put("a", "ann", access.Admin) // a change of role, not a second membership
	put("a", "bob", access.Developer)
	put("b", "bob", access.Viewer)
	if err := s.MemberPut(ctx, access.Member{Team: "zzz", User: "ann", Role: access.Viewer, CreatedAt: at(0)}); !errors.Is(err, access.ErrNotFound) {
		t.Errorf("MemberPut(unknown team) = %v, want ErrNotFound", err)
	}
	if err := s.MemberPut(ctx, access.Member{Team: "a", User: "zzz", Role: access.Viewer, CreatedAt: at(0)}); !errors.Is(err, access.ErrNotFound) {
		t.Errorf("MemberPut(unknown user) = %v, want ErrNotFound", err)
	}
	members := func(p access.MemberListParams) []string {
		t.Helper()
		ms, err := s.MemberList(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range ms {
			out = append(out, m.Team+"/"+m.User+"="+m.Role.String())
		}
		return out
	}
	if got, want := members(access.MemberListParams{}), []string{"a/ann=admin", "a/bob=developer", "b/bob=viewer"}; !slices.Equal(got, want) {
		t.Errorf("MemberList() = %v, want %v", got, want)
	}
	if got, want := members(access.MemberListParams{User: "bob"}), []string{"a/bob=developer", "b/bob=viewer"}; !slices.Equal(got, want) {
		t.Errorf("MemberList(bob) = %v, want %v", got, want)
	}
	if got, want := members(access.MemberListParams{Team: "a", User: "ann"}), []string{"a/ann=admin"}; !slices.Equal(got, want) {
		t.Errorf("MemberList(a, ann) = %v, want %v", got, want)
	}

	for _, a := range []access.Approver{{Team: "a", Environment: "prod", User: "bob"}, {Team: "a", Environment: "prod", User: "bob"},
		{Team: "a", Environment: "dev", User: "bob"}, {Team: "b", Environment: "prod", User: "bob"}} {
		a.CreatedAt = at(0)
		if err := s.ApproverPut(ctx, a); err != nil {
			t.Fatalf("ApproverPut(%+v): %v", a, err)
		}
	}
	if err := s.ApproverPut(ctx, access.Approver{Team: "b", Environment: "prod", User: "ann", CreatedAt: at(0)}); !errors.Is(err, access.ErrNotFound) {
		t.Errorf("ApproverPut(not a member) = %v, want ErrNotFound", err)
	}
	approvers := func(p access.ApproverListParams) []string {
		t.Helper()
		as, err := s.ApproverList(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		out := []string{}
		for _, a := range as {
			out = append(out, a.Team+"/"+a.Environment+"/"+a.User)
		}
		return out
	}
	if got, want := approvers(access.ApproverListParams{User: "bob"}), []string{"a/dev/bob", "a/prod/bob", "b/prod/bob"}; !slices.Equal(got, want) {
		t.Errorf("ApproverList(bob) = %v, want %v", got, want)
	}
	if err := s.ApproverDelete(ctx, "a", "dev", "bob"); err != nil {
		t.Fatal(err)
	}
	if err := s.ApproverDelete(ctx, "a", "dev", "bob"); !errors.Is(err, access.ErrNotFound) {
		t.Errorf("ApproverDelete twice = %v, want ErrNotFound", err)
	}
	if err := s.MemberDelete(ctx, "b", "bob"); err != nil {
		t.Fatal(err)
	}
	if err := s.MemberDelete(ctx, "b", "bob"); !errors.Is(err, access.ErrNotFound) {
		t.Errorf("MemberDelete twice = %v, want ErrNotFound", err)
	}
	if got, want := approvers(access.ApproverListParams{}), []string{"a/prod/bob"}; !slices.Equal(got, want) {
		t.Errorf("after removing bob from b, approvers = %v, want %v", got, want)
	}
}

// testAccessTokens: a token round-trips whole, is found by its hash, revoked once, touched,
// and listed newest first per user.
func testAccessTokens(t *testing.T, h Harness) {
	s := h.Open(t)
	ctx := t.Context()
	for _, u := range []string{"ann", "bob"} {
		if err := s.UserCreate(ctx, access.User{Name: u, CreatedAt: at(0)}); err != nil {
			t.Fatal(err)
		}
	}
	tok := access.Token{ID: "tok_1", Hash: "h1", Name: "ci", User: "ann", Team: "payments", Role: access.Developer,
		CreatedAt: at(time.Second), ExpiresAt: at(time.Hour)}
	for _, tk := range []access.Token{tok,
		{ID: "tok_2", Hash: "h2", Name: "all", User: "ann", AllTeams: true, Role: access.Admin, CreatedAt: at(2 * time.Second)},
		{ID: "tok_3", Hash: "h3", Name: "session", User: "bob", Session: true, CreatedAt: at(3 * time.Second)}} {
		if err := s.TokenCreate(ctx, tk); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.TokenCreate(ctx, access.Token{ID: "tok_4", Hash: "h1", User: "ann", CreatedAt: at(0)}); !errors.Is(err, access.ErrExists) {
		t.Errorf("TokenCreate(taken hash) = %v, want ErrExists", err)
	}
	if err := s.TokenCreate(ctx, access.Token{ID: "tok_5", Hash: "h5", User: "zed", CreatedAt: at(0)}); !errors.Is(err, access.ErrNotFound) {
		t.Errorf("TokenCreate(unknown user) = %v, want ErrNotFound", err)
	}
	same := func(a, b access.Token) bool {
		ok := a.CreatedAt.Equal(b.CreatedAt) && a.ExpiresAt.Equal(b.ExpiresAt) && a.LastUsedAt.Equal(b.LastUsedAt) && a.RevokedAt.Equal(b.RevokedAt)
		a.CreatedAt, a.ExpiresAt, a.LastUsedAt, a.RevokedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		b.CreatedAt, b.ExpiresAt, b.LastUsedAt, b.RevokedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		return ok && a == b
	}
	if got, err := s.TokenByHash(ctx, "h1"); err != nil || !same(got, tok) {
		t.Errorf("TokenByHash(h1) = %+v, %v; want %+v", got, err, tok)
	}
	if got, err := s.TokenGet(ctx, "tok_1"); err != nil || !same(got, tok) {
		t.Errorf("TokenGet(tok_1) = %+v, %v; want %+v", got, err, tok)
	}
	if _, err := s.TokenByHash(ctx, "nope"); !errors.Is(err, access.ErrNotFound) {
		t.Errorf("TokenByHash(unknown) = %v, want ErrNotFound", err)
	}
	if err := s.TokenTouch(ctx, "tok_1", at(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.TokenRevoke(ctx, "tok_1", at(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.TokenRevoke(ctx, "tok_1", at(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.TokenRevoke(ctx, "tok_9", at(0)); !errors.Is(err, access.ErrNotFound) {
		t.Errorf("TokenRevoke(unknown) = %v, want ErrNotFound", err)
	}
	got, err := s.TokenGet(ctx, "tok_1")
	if err != nil || !got.LastUsedAt.Equal(at(time.Minute)) || !got.RevokedAt.Equal(at(2*time.Minute)) {
		t.Errorf("after touch and two revokes tok_1 = %+v, %v; want used at +1m, revoked at +2m", got, err)
	}
	ids := func(p access.TokenListParams) []string {
		t.Helper()
		ts, err := s.TokenList(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		out := []string{}
		for _, tk := range ts {
			out = append(out, tk.ID)
		}
		return out
	}
	if got, want := ids(access.TokenListParams{}), []string{"tok_3", "tok_2", "tok_1"}; !slices.Equal(got, want) {
		t.Errorf("TokenList() = %v, want %v", got, want)
	}
	if got, want := ids(access.TokenListParams{User: "ann"}), []string{"tok_2", "tok_1"}; !slices.Equal(got, want) {
		t.Errorf("TokenList(ann) = %v, want %v", got, want)
	}
	if tk, _ := s.TokenGet(ctx, "tok_2"); !tk.AllTeams || tk.Role != access.Admin || tk.Team != "" {
		t.Errorf("tok_2 = %+v, want all teams as admin", tk)
	}
	if tk, _ := s.TokenGet(ctx, "tok_3"); !tk.Session || tk.Role != access.NoRole || !tk.ExpiresAt.IsZero() {
		t.Errorf("tok_3 = %+v, want a session without role or expiry", tk)
	}
}
