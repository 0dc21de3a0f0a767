package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paved/paved/internal/store"
)

// TestPullRequestPreview: a pull request labelled preview deploys to pr-<number> on the
// local target (not to the stage's dev), a new push to it updates that preview, and closing
// it stops the replicas and frees the port. Previews make no freight.
func TestPullRequestPreview(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 serves the test's service; not installed")
	}
	repo := gitRepo(t, map[string]string{".paved.yml": promotePipeline, "VERSION": "v1 good"})
	gitIn(t, repo, "checkout", "-q", "-b", "feature")
	if err := os.WriteFile(filepath.Join(repo, "VERSION"), []byte("v2 good"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitIn(t, repo, "commit", "-q", "-am", "v2")
	v2 := gitIn(t, repo, "rev-parse", "HEAD")
	v1 := gitIn(t, repo, "rev-parse", "HEAD~1")
	cfg := filepath.Join(t.TempDir(), "environments.yml")
	if err := os.WriteFile(cfg, []byte("tick: 100ms\nenvironments:\n  - name: dev\n  - name: prod\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startPavedServer(t, t.TempDir(), "--environments", cfg)
	const secret = "s3cret"
	s.post(t, "/api/v1/repos", map[string]string{"full_name": "acme/pr", "clone_url": repo, "team": "web", "provider": "local", "webhook_secret": secret})

	hook := func(action, sha string, labels ...string) {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"repo": "acme/pr", "kind": "pull_request", "action": action, "sha": sha,
			"ref": "refs/pull/7/head", "author": map[string]string{"login": "ana"},
			"pull_request": map[string]any{"number": 7, "source_branch": "feature", "target_branch": "main", "labels": labels}})
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		req, _ := http.NewRequest(http.MethodPost, s.url+"/hooks/generic", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Paved-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("%s webhook: %s", action, resp.Status)
		}
	}
	type envStatus struct {
		URL string `json:"url"`
	}
	// serves polls the preview until its service answers with want.
	serves := func(want string) string {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			var st envStatus
			if code := s.getStatus(t, "/api/v1/environments/pr-7", &st); code == http.StatusOK && st.URL != "" {
				if resp, err := http.Get(st.URL + "/service"); err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if strings.Contains(string(b), want) {
						return st.URL
					}
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("pr-7 never served %q\nserver log:\n%s", want, s.stderr)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	hook("opened", v1, "preview")
	first := serves("v1 good")
	// The webhook went through the trigger inbox, which the API lists with the run it started.
	var inbox struct{ Triggers []store.TriggerRecord }
	s.get(t, "/api/v1/triggers", &inbox)
	if len(inbox.Triggers) != 1 || inbox.Triggers[0].Repo != "acme/pr" || inbox.Triggers[0].Action != "opened" || len(inbox.Triggers[0].Runs) != 1 {
		t.Errorf("trigger inbox %+v, want the opened pull request with the run it started", inbox.Triggers)
	}
	hook("synchronize", v2, "preview")
	if second := serves("v2 good"); second != first {
		t.Errorf("the preview moved from %s to %s: a push must update it in place", first, second)
	}
	if code := s.getStatus(t, "/api/v1/environments/dev", nil); code != http.StatusNotFound {
		t.Errorf("dev: %d, want 404: a labelled pull request deploys to its preview only", code)
	}
	var freight []store.Freight
	s.get(t, "/api/v1/freight", &freight)
	if len(freight) != 0 {
		t.Errorf("freight %+v: previews make none", freight)
	}

	hook("closed", v2, "preview")
	deadline := time.Now().Add(time.Minute)
	for s.getStatus(t, "/api/v1/environments/pr-7", nil) != http.StatusNotFound {
		if time.Now().After(deadline) {
			t.Fatalf("pr-7 still up after the pull request closed\n%s", s.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	u, _ := url.Parse(first)
	if c, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after the teardown", u.Host)
	}
}

// getStatus GETs path and decodes a 200 answer into out (when not nil); it returns the
// status code.
func (s *pavedServer) getStatus(t *testing.T, path string, out any) int {
	t.Helper()
	resp, err := authGet(s.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK && out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}
