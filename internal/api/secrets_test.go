package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paved/paved/internal/access"
	"github.com/paved/paved/internal/api"
	"github.com/paved/paved/internal/audit"
	"github.com/paved/paved/internal/egress"
	"github.com/paved/paved/internal/execute/fake"
	"github.com/paved/paved/internal/schedule"
	"github.com/paved/paved/internal/secret"
	"github.com/paved/paved/internal/store/sqlite"
	"github.com/paved/paved/internal/trigger"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// secEnv is the API with secrets, the audit log and the egress policy, behind the body
// limits, as the server wires it. Each user the tests act as has a token of their own
// (tokens; "" is the server admin of rootToken): the audit log names a token's user.
type secEnv struct {
	url    string
	h      http.Handler
	tokens map[string]string
}

// secUsers are the users of secEnv: the team they are in with the least role their
// requests need, or a server admin (team ""). golden is one so that the golden answers are
// the handlers' own (an unknown repo, an invalid team name), not the 404 the guard gives
// anyone else for what is not theirs (TestAccessMatrix checks that).
var secUsers = []struct {
	name, team string
	role       access.Role
}{
	{"ana", "payments", access.Admin}, {"ben", "payments", access.Admin},
	{"carol", "t", access.Developer}, {"dan", "t", access.Admin},
	{"golden", "", access.Admin},
}

func newSecEnv(t testing.TB) *secEnv {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "paved.db"))
	if err != nil {
		t.Fatal(err)
	}
	hub := api.NewHub()
	sched, err := schedule.New(schedule.Config{OnEvent: hub.PublishEvent, OnLog: hub.PublishLogs, LogFlush: 5 * time.Millisecond}, st, &fake.Executor{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sched.Start(ctx); err != nil {
		t.Fatal(err)
	}
	log, err := audit.New(audit.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := secret.NewKey()
	ring, _ := secret.NewKeyring(key)
	secrets, err := secret.New(secret.Config{Store: st, Keys: ring, Audit: log})
	if err != nil {
		t.Fatal(err)
	}
	pol, err := egress.New(egress.Config{Allow: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	acc := newAccess(t, st)
	tokens := map[string]string{"": rootToken}
	for _, team := range []string{"payments", "t"} {
		if _, err := acc.TeamAdd(ctx, team); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range secUsers {
		if _, err := acc.UserAdd(ctx, access.UserAddParams{Name: u.name, Admin: u.team == ""}); err != nil {
			t.Fatal(err)
		}
		p := access.TokenCreateParams{User: u.name, Team: u.team, Role: u.role, AllTeams: u.team == ""}
		if u.team != "" {
			if _, err := acc.MemberSet(ctx, u.team, u.name, u.role); err != nil {
				t.Fatal(err)
			}
		}
		_, secret, err := acc.TokenCreate(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		tokens[u.name] = secret
	}
	srv, err := api.New(api.Config{Access: acc, Store: st, Scheduler: sched, Git: &trigger.Git{Dir: t.TempDir()}, Hub: hub,
		Secrets: secrets, Audit: log, Egress: pol})
	if err != nil {
		t.Fatal(err)
	}
	h := api.Limits(srv.Handler(), api.Timeouts{})
	hs := httptest.NewServer(h)
	t.Cleanup(func() { hs.Close(); sched.Stop(); st.Close() })
	return &secEnv{url: hs.URL, h: h, tokens: tokens}
}

// token is the token user's requests carry.
func (e *secEnv) token(t testing.TB, user string) string {
	t.Helper()
	tok, ok := e.tokens[user]
	if !ok {
		t.Fatalf("no token for user %q: add them to secUsers", user)
	}
	return tok
}

// call makes every HTTP call of this file: one place for an Authorization header later.
func (e *secEnv) call(t *testing.T, method, path, user string, body io.Reader, contentLength int64) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, e.url+path, body)
	if contentLength >= 0 {
		req.ContentLength = contentLength
	}
	resp, err := http.DefaultClient.Do(withToken(req, e.token(t, user)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (e *secEnv) json(t *testing.T, method, path, user string, body any) (int, string) {
	t.Helper()
	b, _ := json.Marshal(body)
	return e.call(t, method, path, user, bytes.NewReader(b), int64(len(b)))
}

func TestSecretRoutes(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t)
	put := func(name string, body any, want int) string {
		t.Helper()
		code, b := e.json(t, "PUT", "/api/v1/teams/payments/secrets/"+name, "ana", body)
		if code != want {
			t.Fatalf("PUT %s: %d %s, want %d", name, code, b, want)
		}
		return b
	}
	put("DB_PASSWORD", map[string]string{"value": "hunter2-pw"}, http.StatusCreated)
	b := put("DB_PASSWORD", map[string]string{"value": "hunter3-pw"}, http.StatusOK)
	put("DB_PASSWORD", map[string]string{"value": "prod-pw", "environment": "prod"}, http.StatusCreated)
	if strings.Contains(b, "hunter") {
		t.Fatalf("PUT answers the value: %s", b)
	}
	for name, body := range map[string]any{
		"1BAD": map[string]string{"value": "v"},
		"OK":   map[string]string{"environment": "prod"},
		"OK2":  map[string]any{"value": "v", "extra": 1},
	} {
		put(name, body, http.StatusBadRequest)
	}
	code, list := e.call(t, "GET", "/api/v1/teams/payments/secrets", "", nil, -1)
	if code != 200 || strings.Contains(list, "pw") || strings.Count(list, `"name": "DB_PASSWORD"`) != 2 || !strings.Contains(list, `"updated_by": "ana"`) {
		t.Fatalf("list: %d %s", code, list)
	}
	if code, b := e.call(t, "DELETE", "/api/v1/teams/payments/secrets/DB_PASSWORD?environment=prod", "ben", nil, -1); code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", code, b)
	}
	if code, _ := e.call(t, "DELETE", "/api/v1/teams/payments/secrets/DB_PASSWORD?environment=prod", "ben", nil, -1); code != http.StatusNotFound {
		t.Fatalf("second delete: %d", code)
	}
	code, au := e.call(t, "GET", "/api/v1/audit?team=payments", "", nil, -1)
	var got struct {
		Entries []struct{ Actor, Action, Target string }
	}
	if err := json.Unmarshal([]byte(au), &got); err != nil || code != 200 {
		t.Fatalf("audit: %d %s", code, au)
	}
	var seen []string
	for _, en := range got.Entries {
		seen = append(seen, en.Actor+" "+en.Action)
	}
	want := "ana secret.create, ana secret.update, ana secret.create, ben secret.delete"
	if strings.Join(seen, ", ") != want {
		t.Fatalf("audited %q, want %q", strings.Join(seen, ", "), want)
	}
	if code, _ := e.call(t, "GET", "/api/v1/audit?actor=ben&since=2000-01-01T00:00:00Z", "", nil, -1); code != 200 {
		t.Fatal(code)
	}
	for _, q := range []string{"since=yesterday", "limit=-1", "limit=5000", "after=x"} {
		if code, b := e.call(t, "GET", "/api/v1/audit?"+q, "", nil, -1); code != http.StatusBadRequest {
			t.Errorf("?%s: %d %s", q, code, b)
		}
	}
}

func TestBodyLimits(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t)
	big := `{"value": "` + strings.Repeat("x", 2<<20) + `"}`
	// Declared too big: refused before the handler reads it.
	code, b := e.call(t, "PUT", "/api/v1/teams/t/secrets/BIG", "", strings.NewReader(big), int64(len(big)))
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(b, "over the 1048576 bytes") {
		t.Fatalf("declared big body: %d %s", code, b)
	}
	// Chunked (no length): cut off while read.
	code, b = e.call(t, "PUT", "/api/v1/teams/t/secrets/BIG", "", io.MultiReader(strings.NewReader(big)), 0)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(b, "over 1048576 bytes") {
		t.Fatalf("chunked big body: %d %s", code, b)
	}
	for _, path := range []string{"/api/v1/repos", "/api/v1/runs", "/api/v1/pipelines/validate", "/api/v1/teams/t/quota"} {
		method := "POST"
		if strings.HasSuffix(path, "quota") {
			method = "PUT"
		}
		if code, b := e.call(t, method, path, "", strings.NewReader(big), int64(len(big))); code != http.StatusRequestEntityTooLarge {
			t.Errorf("%s %s: %d %s", method, path, code, b)
		}
	}
}

func TestCloneURLEgress(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t)
	for u, want := range map[string]int{
		"http://169.254.169.254/latest/meta-data/": http.StatusUnprocessableEntity,
		"https://bot:tok3n@10.0.0.7/acme/x.git":    http.StatusUnprocessableEntity,
		"http://127.0.0.1:1/acme/x.git":            http.StatusCreated, // allowed in this config
	} {
		code, b := e.json(t, "POST", "/api/v1/repos", "", map[string]string{"full_name": "acme/x", "clone_url": u, "team": "t"})
		if code != want || strings.Contains(b, "tok3n") {
			t.Errorf("clone_url %s: %d %s, want %d", u, code, b, want)
		}
	}
}

func TestHotfixAndQuotaAudited(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t)
	dir := gitRepoDir(t, "stages:\n  a:\n    steps: [echo hi]\n")
	if code, b := e.json(t, "POST", "/api/v1/repos", "", map[string]string{"full_name": "acme/hot", "clone_url": dir, "team": "t"}); code != 201 {
		t.Fatal(code, b)
	}
	if code, b := e.json(t, "POST", "/api/v1/runs", "carol", map[string]any{"repo": "acme/hot", "hotfix": true}); code != 201 {
		t.Fatal(code, b)
	}
	if code, b := e.json(t, "PUT", "/api/v1/teams/t/quota", "dan", map[string]int{"limit": 3}); code != 200 {
		t.Fatal(code, b)
	}
	_, b := e.call(t, "GET", "/api/v1/audit?team=t", "", nil, -1)
	if !strings.Contains(b, `"actor": "carol",`) || !strings.Contains(b, `"action": "hotfix"`) ||
		!strings.Contains(b, `"actor": "dan",`) || !strings.Contains(b, `"limit": 3`) {
		t.Fatalf("audit: %s", b)
	}
}

func gitRepoDir(t testing.TB, pipeline string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".paved.yml"), []byte(pipeline), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "-A"}, {"-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"}} {
		if out, err := gitCmd(dir, args...); err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
	}
	return dir
}

func gitCmd(dir string, args ...string) ([]byte, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	return cmd.CombinedOutput()
}

// Agents move build artifacts by digest: those uploads get the registry's limit, not the
// API's 1 MiB; the rest of the agent protocol keeps the API's.
func TestBodyLimitsLetAgentArtifactsThrough(t *testing.T) {
	t.Parallel()
	h := api.Limits(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}), api.Timeouts{})
	big := strings.Repeat("x", 3<<20)
	for path, want := range map[string]int{
		"/api/v1/agent/blobs/sha256:" + strings.Repeat("a", 64): http.StatusNoContent,
		"/api/v1/agent/claim": http.StatusRequestEntityTooLarge,
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPut, path, strings.NewReader(big)))
		if rec.Code != want {
			t.Errorf("PUT %s with 3 MiB: %d %s, want %d", path, rec.Code, rec.Body, want)
		}
	}
}
