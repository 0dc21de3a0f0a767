package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

const hotfixPipeline = `stages:
  build:
    steps:
      - |
        mkdir -p out
        printf '#!/bin/sh\nexec python3 -m http.server "$PORT" --bind 127.0.0.1\n' > out/service
        chmod +x out/service
    artifacts: [out/service]
  test:
    steps:
      - |
        printf 'mode: set\nexample.com/web/x.go:1.1,2.2 1 1\nexample.com/web/x.go:3.1,4.2 1 0\n' > cover.out
    reports: {coverage: cover.out}
  scan:
    steps: [cp tools/report.sarif gosec.sarif]
    artifacts: [gosec.sarif]
  sast:
    needs: [scan]
    uses: gate/sarif
    with: {files: ["*.sarif"], environment: dev}
  deploy:
    needs: [build, test, sast]
    deploy:
      environment: dev
`

const hotfixEnvironments = `tick: 100ms
environments:
  - name: dev
  - name: prod
    soak: 1h
    approval: none
    coverage: {min: 80}
    hotfix_users: [carol]
`

// TestHotfixThroughServer is issue #8's hotfix acceptance: prod is closed to the freight
// (a SAST finding, 50% coverage under prod's 80%, an hour of soak); a hotfix by a user
// allowed to ask for one deploys it anyway, lists what it skipped, and its follow-up run of
// the skipped gates runs and is linked from the promotion with its findings.
func TestHotfixThroughServer(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 serves the test's service; not installed")
	}
	repo := gitRepo(t, map[string]string{".paved.yml": hotfixPipeline,
		"tools/report.sarif": `{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "gosec"}}, "results": [
  {"ruleId": "G104", "level": "warning", "message": {"text": "Errors unhandled"},
   "locations": [{"physicalLocation": {"artifactLocation": {"uri": "main.go"}, "region": {"startLine": 3}}}]}]}]}`})
	cfg := filepath.Join(t.TempDir(), "environments.yml")
	if err := os.WriteFile(cfg, []byte(hotfixEnvironments), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startPavedServer(t, t.TempDir(), "--environments", cfg)
	s.post(t, "/api/v1/repos", map[string]string{"full_name": "acme/hot", "clone_url": repo, "team": "web", "provider": "local"})
	s.post(t, "/api/v1/runs", map[string]string{"repo": "acme/hot", "ref": "main"})

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
	until("freight of the run", "/api/v1/freight", &freight, func() bool { return len(freight) == 1 })
	f := freight[0]
	if f.Coverage == nil || f.Coverage.Percent != 50 || f.Coverage.Format != "go" {
		t.Fatalf("freight coverage = %+v, want 50%% from the go coverprofile", f.Coverage)
	}

	// bo and carol are developers of team web, each acting with a token of their own; only
	// carol is in prod's hotfix_users.
	s.cli(t, "team", "add", "web")
	bo, carol := s.userToken(t, "web", "bo", "developer"), s.userToken(t, "web", "carol", "developer")

	// The normal way in is blocked by the SAST finding.
	out, _ := exec.Command(pavedBin, "promote", f.Alias, "--to", "prod", "--server", s.url, "--token", bo).CombinedOutput()
	if !strings.Contains(string(out), ": blocked") || !strings.Contains(string(out), "gate gate/sarif") {
		t.Fatalf("a normal promotion to prod: %s\nwant it blocked by gate/sarif", out)
	}
	// bo may not ask for a hotfix; carol must say why.
	out, err := exec.Command(pavedBin, "promote", f.Alias, "--to", "prod", "--hotfix", "--reason", "outage", "--server", s.url, "--token", bo).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "hotfixes into prod may be asked for by carol") {
		t.Fatalf("bo's hotfix: %v\n%s\nwant it refused", err, out)
	}
	if out, err := exec.Command(pavedBin, "promote", f.Alias, "--to", "prod", "--hotfix", "--server", s.url, "--token", carol).CombinedOutput(); err == nil {
		t.Fatalf("a hotfix without --reason: %s\nwant a usage error", out)
	}
	// carol's hotfix supersedes the blocked promotion and deploys.
	out, err = exec.Command(pavedBin, "promote", f.Alias, "--to", "prod", "--hotfix", "--reason", "checkout is down", "--wait", "--server", s.url, "--token", carol).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": succeeded") {
		t.Fatalf("carol's hotfix: %v\n%s\nserver log:\n%s", err, out, s.stderr)
	}
	var prod []store.Promotion
	s.get(t, "/api/v1/promotions?environment=prod", &prod)
	if len(prod) != 2 || prod[1].State != store.PromotionRejected || !strings.Contains(prod[1].Reason, "superseded by hotfix "+prod[0].ID) {
		t.Fatalf("prod promotions = %+v, want the hotfix and the one it superseded", prod)
	}
	hot := prod[0]
	skipped := strings.Join(hot.Skipped, "\n")
	for _, want := range []string{"gate gate/sarif (would block: gate gate/sarif: 1 ", "coverage (would block: coverage 50.0% < 80%", "soak (would block: soak: "} {
		if !strings.Contains(skipped, want) {
			t.Errorf("skipped:\n%s\nwant %q", skipped, want)
		}
	}
	if !hot.Hotfix || hot.HotfixReason != "checkout is down" || hot.FollowUp == nil || hot.FollowUp.RunID == "" {
		t.Fatalf("hotfix promotion = %+v, want flagged with its reason and a follow-up run", hot)
	}
	if got := strings.Join(hot.FollowUp.Stages, ","); got != "test,scan,sast" {
		t.Errorf("follow-up stages %s, want test,scan,sast (the skipped gate, what it needs, the coverage stage; no deploy)", got)
	}

	// The follow-up run happens and its result is linked from the promotion.
	until("the follow-up's result on the promotion", "/api/v1/promotions/"+hot.ID, &hot, func() bool { return hot.FollowUp.Phase != "" })
	if hot.FollowUp.Phase != string(run.Succeeded) || !strings.Contains(hot.FollowUp.Summary, "gate/sarif") ||
		!strings.Contains(hot.FollowUp.Summary, "coverage 50.0% (test)") || len(hot.FollowUp.Gates) != 1 || len(hot.FollowUp.Gates[0].Findings) != 1 {
		t.Errorf("follow-up = %+v, want SUCCEEDED with the sarif finding and the coverage", hot.FollowUp)
	}
	var fuEvents struct{ Events []run.Event }
	s.get(t, "/api/v1/runs/"+hot.FollowUp.RunID+"/events", &fuEvents)
	if info := fuEvents.Events[0].Info; info == nil || info.SHA != f.SHA || !strings.Contains(info.Trigger.Message, hot.ID) {
		t.Errorf("follow-up run created from %+v, want the freight's sha and the hotfix named", info)
	}
	// The audit trail in the freight's run flags the hotfix and links the follow-up.
	var events struct{ Events []run.Event }
	s.get(t, "/api/v1/runs/"+f.RunID+"/events", &events)
	var trail []string
	for _, e := range events.Events {
		if e.Type == run.PromotionRecorded {
			trail = append(trail, e.Status+": "+e.Reason)
		}
	}
	joined := strings.Join(trail, "\n")
	if !strings.Contains(joined, "hotfix: HOTFIX "+hot.ID) || !strings.Contains(joined, "by carol: checkout is down") ||
		!strings.Contains(joined, "follow-up: follow-up run "+hot.FollowUp.RunID) {
		t.Errorf("the run's promotion events:\n%s\nwant the hotfix flagged and its follow-up linked", joined)
	}
}
