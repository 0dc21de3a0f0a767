package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/paved/paved/internal/access/oidctest"
)

// pavedAs runs a `paved` command against s with token and stdin, and returns its stdout,
// stderr and exit code.
func (s *pavedServer) pavedAs(t *testing.T, token, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(pavedBin, append(args, "--server", s.url)...)
	cmd.Env = append(os.Environ(), "PAVED_TOKEN="+token)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(stdout.String()), stderr.String(), code
}

func (s *pavedServer) loginStatus(t *testing.T, user, password string) int {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"user": user, "password": password})
	resp, err := http.Post(s.url+"/api/v1/login", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestUserPasswdAndRemoveCLI: `paved user passwd` reads passwords from stdin (a server
// admin's: the new one; a user's own: current, then new), `paved user remove` disarms the
// user's tokens, and the last server admin stays.
func TestUserPasswdAndRemoveCLI(t *testing.T) {
	t.Parallel()
	s := startPavedServer(t, t.TempDir(), "--stream-recheck", "1s")
	s.cli(t, "team", "add", "red")
	tok := s.userToken(t, "red", "ann", "developer") // ann has no password yet

	if out, stderr, code := s.pavedAs(t, e2eToken, "first password\n", "user", "passwd", "ann"); code != 0 || !strings.Contains(out, "password of ann changed") {
		t.Fatalf("paved user passwd ann as the admin = %d %q %s", code, out, stderr)
	}
	if got := s.loginStatus(t, "ann", "first password"); got != 200 {
		t.Fatalf("login with the password the admin set = %d", got)
	}
	if _, stderr, code := s.pavedAs(t, tok, "wrong password\nsecond password\n", "user", "passwd", "ann"); code != 1 || !strings.Contains(stderr, "current password is wrong") {
		t.Errorf("paved user passwd with a wrong current password = %d %s", code, stderr)
	}
	if _, stderr, code := s.pavedAs(t, tok, "first password\n", "user", "passwd", "ann"); code != 2 || !strings.Contains(stderr, "new password") {
		t.Errorf("paved user passwd without a new password on stdin = %d %s, want 2 and what is missing", code, stderr)
	}
	if out, stderr, code := s.pavedAs(t, tok, "first password\nsecond password\n", "user", "passwd", "ann"); code != 0 {
		t.Fatalf("paved user passwd ann as ann = %d %q %s", code, out, stderr)
	}
	if got := s.loginStatus(t, "ann", "second password"); got != 200 {
		t.Errorf("login with ann's new password = %d", got)
	}

	if out := s.cli(t, "user", "remove", "ann"); out != "user ann removed" {
		t.Errorf("paved user remove ann: %q", out)
	}
	if _, stderr, code := s.pavedAs(t, tok, "", "token", "list"); code != 1 || !strings.Contains(stderr, "revoked") {
		t.Errorf("a removed user's token: paved token list = %d %s, want 1 and revoked", code, stderr)
	}
	if _, stderr, code := s.pavedAs(t, e2eToken, "", "user", "remove", "admin"); code != 1 || !strings.Contains(stderr, "last server admin") {
		t.Errorf("paved user remove of the last server admin = %d %s", code, stderr)
	}
}

// TestLoginOIDCServer: `paved server --oidc-issuer ...` signs a browser in through the
// provider, making the user with the mapped team role.
func TestLoginOIDCServer(t *testing.T) {
	t.Parallel()
	op := oidctest.New(t)
	s := startPavedServer(t, t.TempDir(), "--oidc-issuer", op.URL, "--oidc-client-id", op.ClientID,
		"--oidc-client-secret", op.ClientSecret, "--oidc-map", "eng=red:viewer")
	s.cli(t, "team", "add", "red")
	op.SetUser(map[string]any{"preferred_username": "sam", "groups": []string{"eng"}})
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	resp, err := browser.Get(s.url + "/api/v1/login/oidc")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/" {
		t.Fatalf("the SSO login ended at %s with %d", resp.Request.URL, resp.StatusCode)
	}
	resp, err = browser.Get(s.url + "/api/v1/me")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var me struct {
		User  string
		Teams []struct{ Team, Role string }
	}
	json.NewDecoder(resp.Body).Decode(&me)
	if resp.StatusCode != 200 || me.User != "sam" || len(me.Teams) != 1 || me.Teams[0] != (struct{ Team, Role string }{"red", "viewer"}) {
		t.Errorf("GET /me after the SSO login = %d %+v", resp.StatusCode, me)
	}
}
