package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"syscall"
	"testing"
)

// A quota set through the API is the operator's later word: it outlives a restart and wins
// over the --team-quota flag the server starts with again.
func TestTeamQuotaOutlivesRestart(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	s := startPavedServer(t, data, "--team-quota", "red=1")
	var q struct {
		Limit int `json:"limit"`
	}
	s.get(t, "/api/v1/teams/red/quota", &q)
	if q.Limit != 1 {
		t.Fatalf("quota from the flag: %+v, want limit 1", q)
	}
	req, _ := http.NewRequest(http.MethodPut, s.url+"/api/v1/teams/red/quota", bytes.NewReader([]byte(`{"limit": 4}`)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e2eToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&q)
	resp.Body.Close()
	if resp.StatusCode != 200 || q.Limit != 4 {
		t.Fatalf("PUT quota: %s %+v", resp.Status, q)
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	s.cmd.Wait()

	s2 := startPavedServer(t, data, "--team-quota", "red=1")
	s2.get(t, "/api/v1/teams/red/quota", &q)
	if q.Limit != 4 {
		t.Fatalf("quota after restart: %+v, want the 4 set through the API", q)
	}
}
