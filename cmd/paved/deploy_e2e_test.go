package main

import (
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/paved/paved/internal/run"
)

// deployPipeline builds a "service" (a script serving its own directory with python3's
// http.server, so no compiler is needed) and deploys it; the smoke check wants "good" in
// the script, so a version without it fails its verification and rolls back.
const deployPipeline = `stages:
  build:
    steps:
      - |
        mkdir -p out
        printf '#!/bin/sh\n# %s\nexec python3 -m http.server "$PORT" --bind 127.0.0.1\n' "$(cat VERSION)" > out/service
        chmod +x out/service
    artifacts: [out/service]
  deploy:
    needs: [build]
    deploy:
      environment: web
      replicas: 2
      max_surge: 100%
      smoke: [{path: /service, body: good}]
`

// TestDeployThroughServer: deploy: stages run in the server; a version that fails its
// verification rolls back and its run ends ROLLED_BACK; the history and rollback API and
// `paved rollback` redeploy earlier versions; a restarted server brings the environment
// back on its address.
func TestDeployThroughServer(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 serves the test's service; not installed")
	}
	t.Parallel()
	repo := gitRepo(t, map[string]string{".paved.yml": deployPipeline, "VERSION": "v1 good"})
	data := t.TempDir()
	s := startPavedServer(t, data)
	s.post(t, "/api/v1/repos", map[string]string{"full_name": "acme/web", "clone_url": repo, "team": "web", "provider": "local"})
	runTo := func(version string, want run.Phase) {
		t.Helper()
		if version != "" {
			writeAndCommit(t, repo, "VERSION", version)
		}
		id := s.post(t, "/api/v1/runs", map[string]string{"repo": "acme/web", "ref": "main"})["id"].(string)
		var sum run.Summary
		deadline := time.Now().Add(2 * time.Minute)
		for !sum.Phase.Done() {
			if time.Now().After(deadline) {
				t.Fatalf("run %s (%s) not done: %s", id, version, sum.Phase)
			}
			time.Sleep(50 * time.Millisecond)
			s.get(t, "/api/v1/runs/"+id, &sum)
		}
		if sum.Phase != want {
			var logs any
			s.get(t, "/api/v1/runs/"+id+"/logs?stage=deploy", &logs)
			t.Fatalf("run of %q ended %s, want %s; deploy log: %v", version, sum.Phase, want, logs)
		}
	}
	type env struct {
		URL    string `json:"url"`
		Stable struct {
			ID, Artifact, Outcome string
		} `json:"stable"`
	}
	serves := func(url, want string) {
		t.Helper()
		resp, err := http.Get(url + "/service")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), want) {
			t.Fatalf("%s serves %q, want %q", url, b, want)
		}
	}

	runTo("", run.Succeeded)
	var e env
	s.get(t, "/api/v1/environments/web", &e)
	serves(e.URL, "v1 good")
	runTo("v2 bad", run.RolledBack)
	serves(e.URL, "v1 good")
	runTo("v3 good", run.Succeeded)
	serves(e.URL, "v3 good")

	var hist []struct{ ID, Outcome, Version string }
	s.get(t, "/api/v1/environments/web/deployments", &hist)
	if len(hist) != 3 || hist[0].Outcome != "succeeded" || hist[1].Outcome != "rolled_back" || hist[2].Outcome != "succeeded" {
		t.Fatalf("history %+v", hist)
	}
	d := s.post(t, "/api/v1/environments/web/rollback", map[string]string{"by": "test"})
	if d["outcome"] != "succeeded" || d["rollback_of"] != hist[2].ID {
		t.Fatalf("rollback %v", d)
	}
	serves(e.URL, "v1 good")
	out, err := exec.Command(pavedBin, "rollback", "web", "--server", s.url, "--token", e2eToken).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "succeeded") {
		t.Fatalf("paved rollback: %v\n%s", err, out)
	}
	serves(e.URL, "v3 good")

	// A restart brings the environment back, on its address.
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s = startPavedServer(t, data)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var st struct {
			Pools []struct{ Replicas []struct{ State string } }
		}
		s.get(t, "/api/v1/environments/web", &st)
		if len(st.Pools) == 1 && len(st.Pools[0].Replicas) == 2 && st.Pools[0].Replicas[0].State == "ready" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("environment not restored: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	serves(e.URL, "v3 good")
}

func writeAndCommit(t *testing.T, repo, name, content string) {
	t.Helper()
	cmd := exec.Command("sh", "-c", "printf '%s' \"$1\" > \"$2\"", "sh", content, name)
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	gitIn(t, repo, "commit", "--quiet", "-am", content)
}
