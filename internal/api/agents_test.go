package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/paved/paved/internal/api"
	"github.com/paved/paved/internal/cache"
	"github.com/paved/paved/internal/execute/agent"
	"github.com/paved/paved/internal/execute/fake"
	"github.com/paved/paved/internal/schedule"
	"github.com/paved/paved/internal/store/sqlite"
	"github.com/paved/paved/internal/trigger"
)

// agentsCall is the one way this file calls the API, with token as its Bearer token: a
// server admin's (rootToken) for the admin routes, an agent's for the agent protocol.
func agentsCall(t *testing.T, method, url, token string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, r)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

// TestAgentTokens: a token made by the admin routes admits its agent to the protocol
// routes until it is revoked; names are checked and taken once.
func TestAgentTokens(t *testing.T) {
	t.Parallel()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "paved.db"))
	if err != nil {
		t.Fatal(err)
	}
	sched, err := schedule.New(schedule.Config{}, st, &fake.Executor{})
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := cache.NewBlobs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	disp, err := agent.NewDispatcher(agent.DispatcherConfig{Tokens: st, Blobs: blobs, PollWait: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Access: newAccess(t, st), Store: st, Scheduler: sched, Git: &trigger.Git{Dir: t.TempDir()}, Hub: api.NewHub(),
		AgentTokens: st, Agents: disp})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); st.Close() })
	u := hs.URL

	if code, body := agentsCall(t, "POST", u+"/api/v1/agents", rootToken, map[string]string{"name": "../evil"}); code != 400 {
		t.Errorf("bad name: %d %s, want 400", code, body)
	}
	code, body := agentsCall(t, "POST", u+"/api/v1/agents", rootToken, map[string]string{"name": "builder-1"})
	var made struct{ Name, Token string }
	if code != 201 || json.Unmarshal(body, &made) != nil || made.Token == "" {
		t.Fatalf("create: %d %s", code, body)
	}
	if code, body := agentsCall(t, "POST", u+"/api/v1/agents", rootToken, map[string]string{"name": "builder-1"}); code != 409 {
		t.Errorf("second token for a valid name: %d %s, want 409", code, body)
	}
	claim := map[string]any{"agent": "x", "labels": map[string]string{}}
	if code, body := agentsCall(t, "POST", u+"/api/v1/agent/claim", made.Token, claim); code != 204 {
		t.Errorf("claim with the token: %d %s, want 204 (no job)", code, body)
	}
	if code, _ := agentsCall(t, "POST", u+"/api/v1/agent/claim", "pva_nope", claim); code != 401 {
		t.Errorf("claim with a wrong token: %d, want 401", code)
	}
	var list struct {
		Tokens    []map[string]any
		Connected []agent.Seen
	}
	code, body = agentsCall(t, "GET", u+"/api/v1/agents", rootToken, nil)
	if code != 200 || json.Unmarshal(body, &list) != nil || len(list.Tokens) != 1 || len(list.Connected) != 1 {
		t.Errorf("list: %d %s", code, body)
	}
	if bytes.Contains(body, []byte(made.Token)) || bytes.Contains(body, []byte(agent.HashToken(made.Token))) {
		t.Error("the list shows the token or its hash")
	}
	if code, body := agentsCall(t, "DELETE", u+"/api/v1/agents/builder-1", rootToken, nil); code != 204 {
		t.Errorf("revoke: %d %s", code, body)
	}
	if code, _ := agentsCall(t, "POST", u+"/api/v1/agent/claim", made.Token, claim); code != 401 {
		t.Errorf("claim with a revoked token: %d, want 401", code)
	}
	if code, _ := agentsCall(t, "DELETE", u+"/api/v1/agents/builder-1", rootToken, nil); code != 404 {
		t.Errorf("revoking twice: %d, want 404", code)
	}
}
