package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paved/paved/internal/audit"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store/postgres"
	"github.com/paved/paved/internal/store/postgres/pgtest"
)

// secretCall makes every HTTP call of this file that the shared helpers do not (a PUT, a
// status to check, a body that is not JSON), as the server admin.
func secretCall(t *testing.T, method, u string, body any, header map[string]string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e2eToken)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// The secret has bytes that every encoding changes: '/', '+', '@', '=', a space.
const e2eSecret = "s3cr3t/v@lue+x y=z-Q9"

// TestSecretNeverShown: a step prints a stored secret in plain, base64 (standard and
// URL-safe) and URL-encoded form; no form of the value appears in the stored logs, the SSE
// stream, log search or any API answer, and its read is in the audit log. Then the key is
// rotated under the running server and the secret still reaches the next run.
func TestSecretNeverShown(t *testing.T) {
	t.Parallel()
	dir := gitRepo(t, map[string]string{".paved.yml": `
stages:
  leak:
    env: {TOKEN: {secret: API_TOKEN}}
    steps:
      - echo "plain $TOKEN"
      - echo "b64 $(printf '%s' "$TOKEN" | base64 | tr -d '\n')"
      - echo "b64url $(printf '%s' "$TOKEN" | base64 | tr -d '\n=' | tr '+/' '-_')"
      - |
        s="$TOKEN"; out=""
        while [ -n "$s" ]; do
          c=${s%"${s#?}"}; s=${s#?}
          case $c in [a-zA-Z0-9.~_-]) out="$out$c";; *) out="$out$(printf '%%%02X' "'$c")";; esac
        done
        echo "url $out"
        echo "query $(echo "$out" | sed 's/%20/+/g')"
      - test "$(printf '%s' "$TOKEN" | sha256sum | cut -c1-64)" = 0f50dd317d64708ef9eb6ba5311aa7031712aaf2049773c1f5a0420ef1cbf3c6
`})
	data := t.TempDir()
	s := startPavedServer(t, data)
	s.post(t, "/api/v1/repos", map[string]string{"full_name": "e2e/secrets", "clone_url": dir, "team": "e2e"})

	code, b := secretCall(t, "PUT", s.url+"/api/v1/teams/e2e/secrets/API_TOKEN", map[string]string{"value": e2eSecret}, nil)
	if code != http.StatusCreated {
		t.Fatalf("PUT secret: %d %s", code, b)
	}
	if fi, err := os.Stat(filepath.Join(data, "secret.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	id := runToEnd(t, s, run.Succeeded)

	forms := []string{e2eSecret, base64.StdEncoding.EncodeToString([]byte(e2eSecret)),
		base64.RawURLEncoding.EncodeToString([]byte(e2eSecret)), url.QueryEscape(e2eSecret), url.PathEscape(e2eSecret),
		strings.ReplaceAll(url.QueryEscape(e2eSecret), "+", "%20")}
	leaks := func(what string, b []byte) {
		t.Helper()
		for _, f := range forms {
			if bytes.Contains(b, []byte(f)) {
				t.Errorf("%s shows the secret as %q:\n%s", what, f, b)
			}
		}
	}
	_, logs := secretCall(t, "GET", s.url+"/api/v1/runs/"+id+"/logs?stage=leak", nil, nil)
	leaks("stored logs", logs)
	for _, want := range []string{"plain ***", "b64 ***", "b64url ***", "url ***", "query ***"} {
		if !bytes.Contains(logs, []byte(want)) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	// SSE of the finished stage: its backlog, then the end.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.url+"/api/v1/runs/"+id+"/logs?stage=leak", nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+e2eToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var sse bytes.Buffer
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && !strings.Contains(sse.String(), "query ***") {
		sse.WriteString(sc.Text() + "\n")
	}
	resp.Body.Close()
	leaks("the SSE stream", sse.Bytes())
	if !strings.Contains(sse.String(), "plain ***") {
		t.Errorf("SSE stream lacks the masked lines:\n%s", sse.String())
	}
	for _, q := range []string{"plain", "b64", "url", "query", "s3cr3t", "Q9"} {
		_, b := secretCall(t, "GET", s.url+"/api/v1/logs/search?q="+q, nil, nil)
		leaks("log search "+q, b)
	}
	for _, p := range []string{"/api/v1/runs/" + id, "/api/v1/runs/" + id + "/events", "/api/v1/runs", "/api/v1/teams/e2e/secrets",
		"/api/v1/audit", "/api/v1/repos"} {
		_, b := secretCall(t, "GET", s.url+p, nil, nil)
		leaks(p, b)
	}
	var list struct {
		Secrets []map[string]any `json:"secrets"`
	}
	_, b = secretCall(t, "GET", s.url+"/api/v1/teams/e2e/secrets", nil, nil)
	if json.Unmarshal(b, &list) != nil || len(list.Secrets) != 1 || list.Secrets[0]["name"] != "API_TOKEN" || list.Secrets[0]["value"] != nil {
		t.Fatalf("secret list: %s", b)
	}
	var entries struct {
		Entries []struct{ Actor, Action, Target string }
	}
	_, b = secretCall(t, "GET", s.url+"/api/v1/audit?action=secret.read", nil, nil)
	if json.Unmarshal(b, &entries) != nil || len(entries.Entries) != 1 || entries.Entries[0].Actor != "run:"+id {
		t.Fatalf("audit of the read: %s", b)
	}

	// Rotate the key next to the running server; the next run still gets the secret.
	out, err := exec.Command(pavedBin, "secrets", "rotate-key", "--data", data).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "re-sealed 1 secrets") {
		t.Fatalf("rotate-key: %v\n%s", err, out)
	}
	runToEnd(t, s, run.Succeeded)

	// The chain verifies; one changed byte of one entry makes verify fail naming it.
	out, err = exec.Command(pavedBin, "audit", "verify", "--data", data).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok: ") {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}
	db, err := sql.Open("sqlite", filepath.Join(data, "paved.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE audit SET target = 'API_TOKEM' WHERE seq = 2`); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(pavedBin, "audit", "verify", "--data", data).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "entry 2 ") {
		t.Fatalf("audit verify after tampering: %v\n%s", err, out)
	}
}

// runToEnd starts a run of e2e/secrets and waits for it to end in want.
func runToEnd(t *testing.T, s *pavedServer, want run.Phase) string {
	t.Helper()
	id := s.post(t, "/api/v1/runs", map[string]string{"repo": "e2e/secrets", "ref": "main"})["id"].(string)
	deadline := time.Now().Add(60 * time.Second)
	for {
		var view struct {
			Phase  run.Phase `json:"phase"`
			Reason string    `json:"reason"`
		}
		s.get(t, "/api/v1/runs/"+id, &view)
		if view.Phase.Done() {
			if view.Phase != want {
				_, logs := secretCall(t, "GET", s.url+"/api/v1/runs/"+id+"/logs", nil, nil)
				t.Fatalf("run %s ended %s (%s), want %s\n%s", id, view.Phase, view.Reason, want, logs)
			}
			return id
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s still %s\n%s", id, view.Phase, s.stderr)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
}

// TestAuditVerifyPostgres: one changed byte of one entry in PostgreSQL fails `paved audit
// verify --database` naming the entry.
func TestAuditVerifyPostgres(t *testing.T) {
	t.Parallel()
	dsn := pgtest.ForTest(t, pgtest.Config{}).NewDatabase(t)
	st, err := postgres.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l, err := audit.New(audit.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{audit.ActionSecretCreate, audit.ActionApprove, audit.ActionDeploy, audit.ActionRollback} {
		if err := l.Record(t.Context(), audit.Entry{Actor: "ana", Action: a, Team: "e2e", Details: map[string]string{"why": "test"}}); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command(pavedBin, "audit", "verify", "--database", dsn).CombinedOutput(); err != nil || !strings.Contains(string(out), "ok: 4 entries") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// One byte of the details: "test" becomes "tesu".
	if _, err := conn.Exec(t.Context(), `UPDATE audit SET details = convert_to(replace(convert_from(details, 'UTF8'), 'test', 'tesu'), 'UTF8') WHERE seq = 3`); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(pavedBin, "audit", "verify", "--database", dsn).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "entry 3 (deployment.start by ana") {
		t.Fatalf("verify after tampering: %v\n%s", err, out)
	}
}
