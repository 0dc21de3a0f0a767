package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/store/postgres/pgtest"
)

const promotePipeline = `stages:
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
      environment: dev
      smoke: [{path: /service, body: good}]
`

const promoteEnvironments = `tick: 100ms
environments:
  - name: dev
  - name: staging
    soak: 1s
    approval: none
  - name: prod
    approvers: [ana, bo]
`

// TestPromoteThroughServer is issue #8's acceptance: a push (by ana) deploys to dev,
// auto-promotes to staging after its soak, and waits for prod approval; ana's own approval
// is refused, bo's deploys the digest that ran in staging.
func TestPromoteThroughServer(t *testing.T) {
	t.Parallel()
	testPromote(t)
}

// TestPromoteThroughServerOnPostgres: the same with freight and promotions in PostgreSQL.
func TestPromoteThroughServerOnPostgres(t *testing.T) {
	t.Parallel()
	testPromote(t, "--database", pgtest.ForTest(t, pgtest.Config{}).NewDatabase(t))
}

func testPromote(t *testing.T, serverArgs ...string) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 serves the test's service; not installed")
	}
	repo := gitRepo(t, map[string]string{".paved.yml": promotePipeline, "VERSION": "v1 good"})
	cfg := filepath.Join(t.TempDir(), "environments.yml")
	if err := os.WriteFile(cfg, []byte(promoteEnvironments), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startPavedServer(t, t.TempDir(), append([]string{"--environments", cfg}, serverArgs...)...)
	const secret = "s3cret"
	s.post(t, "/api/v1/repos", map[string]string{"full_name": "acme/web", "clone_url": repo, "team": "web", "provider": "local", "webhook_secret": secret})

	// The push, as a signed generic webhook naming its author.
	sha := gitIn(t, repo, "rev-parse", "HEAD")
	body, _ := json.Marshal(map[string]any{"repo": "acme/web", "ref": "refs/heads/main", "sha": sha, "kind": "push",
		"author": map[string]string{"login": "ana", "name": "Ana"}})
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
		t.Fatalf("push webhook: %s", resp.Status)
	}

	// until polls GET path into out until ok says so.
	until := func(what, path string, out any, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			s.get(t, path, out)
			if ok() {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: still %+v\nserver log:\n%s", what, out, s.stderr)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	var freight []store.Freight
	until("freight from the push's run", "/api/v1/freight", &freight, func() bool { return len(freight) == 1 })
	f := freight[0]
	if f.SHA != sha || f.Author != "ana" || len(f.Artifacts) != 1 {
		t.Fatalf("freight = %+v, want sha %s by ana with one artifact", f, sha)
	}
	var staging []store.Promotion
	until("auto-promotion to staging", "/api/v1/promotions?environment=staging", &staging, func() bool {
		return len(staging) == 1 && store.PromotionFinal(staging[0].State)
	})
	if staging[0].State != store.PromotionSucceeded || staging[0].RequestedBy != "auto-promote" {
		t.Fatalf("staging promotion = %+v, want succeeded by auto-promote", staging[0])
	}
	var prod []store.Promotion
	s.get(t, "/api/v1/promotions?environment=prod", &prod)
	if len(prod) != 0 {
		t.Fatalf("prod promotions = %+v, want none: prod has auto_promote off", prod)
	}

	// ana (who pushed) and bo are developers of team web and approvers of its prod; each
	// acts with a token of their own, made by the server admin with the CLI.
	tokens := map[string]string{}
	s.cli(t, "team", "add", "web")
	for _, u := range []string{"ana", "bo"} {
		tokens[u] = s.userToken(t, "web", u, "developer", "prod")
	}
	out, err := exec.Command(pavedBin, "promote", f.Alias, "--to", "prod", "--server", s.url, "--token", tokens["bo"]).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": pending") {
		t.Fatalf("paved promote: %v\n%s", err, out)
	}
	var approvals []struct {
		Promotion store.Promotion `json:"promotion"`
		Rollback  string          `json:"rollback"`
	}
	s.get(t, "/api/v1/approvals", &approvals)
	if len(approvals) != 1 || approvals[0].Promotion.Environment != "prod" || approvals[0].Promotion.RequiredApprovals != 1 {
		t.Fatalf("approvals = %+v, want prod's, needing one approver", approvals)
	}
	id := approvals[0].Promotion.ID

	out, err = exec.Command(pavedBin, "approve", id, "--server", s.url, "--token", tokens["ana"]).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "cannot approve") {
		t.Fatalf("the author's approval: %v\n%s\nwant it refused", err, out)
	}
	out, err = exec.Command(pavedBin, "approve", id, "--server", s.url, "--token", tokens["bo"], "--reason", "staging is fine", "--wait").CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": succeeded") {
		t.Fatalf("bo's approval: %v\n%s\nserver log:\n%s", err, out, s.stderr)
	}

	var stagingDeps, prodDeps []store.Deployment
	s.get(t, "/api/v1/environments/staging/deployments", &stagingDeps)
	s.get(t, "/api/v1/environments/prod/deployments", &prodDeps)
	if len(prodDeps) != 1 || len(stagingDeps) != 1 || prodDeps[0].Artifact != stagingDeps[0].Artifact || prodDeps[0].Outcome != store.DeploymentSucceeded {
		t.Fatalf("prod deployed %+v, staging %+v: want the same digest", prodDeps, stagingDeps)
	}
	for _, a := range f.Artifacts {
		if a != prodDeps[0].Artifact {
			t.Errorf("prod runs %s, want the freight's %s", prodDeps[0].Artifact, a)
		}
	}
	// The run's events hold the audit trail: the refused approval is not in it, bo's is,
	// with its reason.
	var events struct{ Events []run.Event }
	s.get(t, "/api/v1/runs/"+f.RunID+"/events", &events)
	var trail []string
	for _, e := range events.Events {
		if e.Type == run.PromotionRecorded {
			trail = append(trail, e.Status+": "+e.Reason)
		}
	}
	joined := strings.Join(trail, "\n")
	if !strings.Contains(joined, "approved: "+id+" to prod approved by bo: staging is fine") || strings.Contains(joined, "by ana") ||
		!strings.Contains(joined, "succeeded: "+id+" to prod") {
		t.Errorf("the run's promotion events:\n%s\nwant bo's approval with its reason and the prod deployment", joined)
	}
	var done store.Promotion
	s.get(t, "/api/v1/promotions/"+id, &done)
	if len(done.Decisions) != 1 || done.Decisions[0].By != "bo" || done.Decisions[0].Reason != "staging is fine" {
		t.Errorf("decisions = %+v, want bo's with its reason", done.Decisions)
	}
}
