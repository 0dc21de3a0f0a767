package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/paved/paved/internal/access"
)

// testAccessUserRemove: removing a user revokes all their tokens, drops memberships and
// approvals, hides the user, keeps the token rows; the name can be taken again, afresh.
func testAccessUserRemove(t *testing.T, h Harness) {
	s := h.Open(t)
	ctx := t.Context()
	for _, u := range []access.User{{Name: "root", Admin: true, CreatedAt: at(0)}, {Name: "ann", PasswordHash: "$2a$04$old", CreatedAt: at(0)}} {
		if err := s.UserCreate(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.TeamCreate(ctx, access.Team{Name: "red", CreatedAt: at(0)}); err != nil {
		t.Fatal(err)
	}
	if err := s.MemberPut(ctx, access.Member{Team: "red", User: "ann", Role: access.Admin, CreatedAt: at(0)}); err != nil {
		t.Fatal(err)
	}
	if err := s.ApproverPut(ctx, access.Approver{Team: "red", Environment: "prod", User: "ann", CreatedAt: at(0)}); err != nil {
		t.Fatal(err)
	}
	early := at(-time.Hour)
	for _, tk := range []access.Token{
		{ID: "tok_a", Hash: "ha", User: "ann", Team: "red", Role: access.Admin, CreatedAt: at(0)},
		{ID: "tok_s", Hash: "hs", User: "ann", Session: true, CreatedAt: at(0)},
		{ID: "tok_old", Hash: "ho", User: "ann", Team: "red", Role: access.Viewer, CreatedAt: at(0), RevokedAt: early},
		{ID: "tok_r", Hash: "hr", User: "root", AllTeams: true, Role: access.Admin, CreatedAt: at(0)},
	} {
		if err := s.TokenCreate(ctx, tk); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.UserRemove(ctx, "nobody", at(time.Minute)); !errors.Is(err, access.ErrNotFound) {
		t.Errorf("UserRemove(unknown) = %v, want ErrNotFound", err)
	}
	if err := s.UserRemove(ctx, "root", at(time.Minute)); !errors.Is(err, access.ErrLastAdmin) {
		t.Errorf("UserRemove(the only admin) = %v, want ErrLastAdmin", err)
	}
	if err := s.UserRemove(ctx, "ann", at(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.UserRemove(ctx, "ann", at(2*time.Minute)); !errors.Is(err, access.ErrNotFound) {
		t.Errorf("UserRemove(removed) = %v, want ErrNotFound", err)
	}
	if _, err := s.UserGet(ctx, "ann"); !errors.Is(err, access.ErrNotFound) {
		t.Errorf("UserGet(removed) = %v, want ErrNotFound", err)
	}
	if us, err := s.UserList(ctx); err != nil || len(us) != 1 || us[0].Name != "root" {
		t.Errorf("UserList after removing ann = %+v, %v; want root only", us, err)
	}
	if err := s.UserSetPassword(ctx, "ann", "$2a$04$x"); !errors.Is(err, access.ErrNotFound) {
		t.Errorf("UserSetPassword(removed) = %v, want ErrNotFound", err)
	}
	for id, want := range map[string]time.Time{"tok_a": at(time.Minute), "tok_s": at(time.Minute), "tok_old": early, "tok_r": {}} {
		tk, err := s.TokenGet(ctx, id)
		if err != nil || !tk.RevokedAt.Equal(want) {
			t.Errorf("TokenGet(%s) after removing ann = revoked %v, %v; want %v", id, tk.RevokedAt, err, want)
		}
	}
	if ms, err := s.MemberList(ctx, access.MemberListParams{User: "ann"}); err != nil || len(ms) != 0 {
		t.Errorf("ann's memberships after removal = %+v, %v", ms, err)
	}
	if as, err := s.ApproverList(ctx, access.ApproverListParams{User: "ann"}); err != nil || len(as) != 0 {
		t.Errorf("ann's approvals after removal = %+v, %v", as, err)
	}
	// A new ann starts afresh: her own password, no admin, nothing of the old one's.
	if err := s.UserCreate(ctx, access.User{Name: "ann", CreatedAt: at(time.Hour), Issuer: "https://idp.example"}); err != nil {
		t.Fatalf("UserCreate(a removed user's name) = %v", err)
	}
	if u, err := s.UserGet(ctx, "ann"); err != nil || u.PasswordHash != "" || !u.CreatedAt.Equal(at(time.Hour)) || u.Issuer != "https://idp.example" {
		t.Errorf("the new ann = %+v, %v", u, err)
	}
	if err := s.UserCreate(ctx, access.User{Name: "ann", CreatedAt: at(time.Hour)}); !errors.Is(err, access.ErrExists) {
		t.Errorf("UserCreate(live name) = %v, want ErrExists", err)
	}
	if tk, _ := s.TokenGet(ctx, "tok_a"); tk.RevokedAt.IsZero() {
		t.Errorf("the old ann's token is live again: %+v", tk)
	}
	// Another admin: now root may go.
	if err := s.UserCreate(ctx, access.User{Name: "bea", Admin: true, CreatedAt: at(0)}); err != nil {
		t.Fatal(err)
	}
	if err := s.UserRemove(ctx, "root", at(time.Minute)); err != nil {
		t.Errorf("UserRemove(root, with bea an admin too) = %v", err)
	}
}

// testAccessLastAdminRace: two admins removing each other at once leave one.
func testAccessLastAdminRace(t *testing.T, h Harness) {
	s := h.Open(t)
	ctx := t.Context()
	for _, n := range []string{"a1", "a2"} {
		if err := s.UserCreate(ctx, access.User{Name: n, Admin: true, CreatedAt: at(0)}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, n := range []string{"a1", "a2"} {
		wg.Go(func() { errs[i] = s.UserRemove(ctx, n, at(time.Minute)) })
	}
	wg.Wait()
	removed := 0
	for _, err := range errs {
		switch {
		case err == nil:
			removed++
		case !errors.Is(err, access.ErrLastAdmin):
			t.Errorf("UserRemove = %v, want nil or ErrLastAdmin", err)
		}
	}
	if us, err := s.UserList(ctx); err != nil || removed != 1 || len(us) != 1 {
		t.Errorf("after two admins removed each other: %d removed, users %+v, %v; want one left", removed, us, err)
	}
}

// testAccessSessionsRevoke: a user's live sessions but one are revoked; tokens and other
// users' sessions stay.
func testAccessSessionsRevoke(t *testing.T, h Harness) {
	s := h.Open(t)
	ctx := t.Context()
	for _, u := range []string{"ann", "bob"} {
		if err := s.UserCreate(ctx, access.User{Name: u, CreatedAt: at(0)}); err != nil {
			t.Fatal(err)
		}
	}
	early := at(-time.Hour)
	for _, tk := range []access.Token{
		{ID: "s1", Hash: "h1", User: "ann", Session: true, CreatedAt: at(0)},
		{ID: "s2", Hash: "h2", User: "ann", Session: true, CreatedAt: at(0)},
		{ID: "s3", Hash: "h3", User: "ann", Session: true, CreatedAt: at(0)},
		{ID: "s4", Hash: "h4", User: "ann", Session: true, CreatedAt: at(0), RevokedAt: early},
		{ID: "t1", Hash: "h5", User: "ann", Team: "red", Role: access.Viewer, CreatedAt: at(0)},
		{ID: "b1", Hash: "h6", User: "bob", Session: true, CreatedAt: at(0)},
	} {
		if err := s.TokenCreate(ctx, tk); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.SessionsRevoke(ctx, "ann", "s2", at(time.Minute))
	if err != nil || n != 2 {
		t.Errorf("SessionsRevoke(ann, but s2) = %d, %v; want 2", n, err)
	}
	for id, want := range map[string]time.Time{"s1": at(time.Minute), "s2": {}, "s3": at(time.Minute), "s4": early, "t1": {}, "b1": {}} {
		if tk, err := s.TokenGet(ctx, id); err != nil || !tk.RevokedAt.Equal(want) {
			t.Errorf("%s revoked at %v, %v; want %v", id, tk.RevokedAt, err, want)
		}
	}
	if n, err := s.SessionsRevoke(ctx, "ann", "", at(2*time.Minute)); err != nil || n != 1 {
		t.Errorf("SessionsRevoke(ann, all) = %d, %v; want 1", n, err)
	}
}
