package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paved/paved/internal/run"
)

// planted are fake credentials assembled at run time, so that this repository holds no
// string a secret scanner or a push protection would flag.
var planted = struct{ AWS, GitHub, KeyBody, PrivateKey string }{
	AWS:     "AKIA" + "QYLPMN5HZ3TRWX7B",
	GitHub:  "ghp_" + "R8x2kLq9ZtV4mN7pW1cY6bH3jD5fG0sA9eUo",
	KeyBody: "MIIEpAIBAAKCAQEA" + "3Tz2mr7SZiAMfQyuvBjM2wKx7yN5pQ8rW4hL6vB1cD9eF0gH",
}

func init() {
	planted.PrivateKey = "-----BEGIN RSA " + "PRIVATE KEY-----\n" + planted.KeyBody + "\n" +
		"2iJ3kL4mN5oP6qR7sT8uV9wX0yZ1aB2cD3eF4gH5iJ6kL7mN8oP9qR0sT1uV2wX3\n" +
		"-----END RSA " + "PRIVATE KEY-----\n"
}

// TestGatesThroughTheServer is the acceptance test of the security gates: a repository
// with a planted AWS key, GitHub token and private key, and a Go module on a version the
// test OSV database lists. gate/secrets fails naming each file:line; gate/vulns blocks
// under production and only warns under dev; and nothing the server stored or answers
// (events, logs, run, findings, the database file itself) holds a secret's bytes.
func TestGatesThroughTheServer(t *testing.T) {
	t.Parallel()
	osv, err := filepath.Abs("../../internal/gate/vuln/testdata/osv")
	if err != nil {
		t.Fatal(err)
	}
	repo := gitRepo(t, map[string]string{
		".paved.yml": `
stages:
  secrets: {uses: gate/secrets}
  sbom: {uses: gate/sbom}
  vulns-dev:
    needs: [sbom]
    uses: gate/vulns
    with: {environment: dev, db: "` + osv + `"}
  vulns-prod:
    needs: [sbom]
    uses: gate/vulns
    with: {environment: production, db: "` + osv + `"}
  scan:
    steps: [cp tools/report.sarif gosec.sarif]
    artifacts: [gosec.sarif]
  sast:
    needs: [scan]
    uses: gate/sarif
    with: {files: ["*.sarif"], environment: staging}
  policy:
    uses: gate/policy
    with: {paths: [deploy]}
`,
		"tools/report.sarif": `{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "gosec"}}, "results": [
  {"ruleId": "G104", "level": "warning", "message": {"text": "Errors unhandled"},
   "locations": [{"physicalLocation": {"artifactLocation": {"uri": "main.go"}, "region": {"startLine": 3}}}]}]}]}`,
		"deploy/pod.yaml":   "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\nspec:\n  containers: [{name: app, image: nginx}]\n",
		"go.mod":            "module example.com/shop\n\ngo 1.22\n\nrequire golang.org/x/text v0.3.7\n",
		"main.go":           "package main\n\nfunc main() {}\n",
		"config/prod.env":   "# production settings\nREGION=eu-west-1\naws_access_key_id = " + planted.AWS + "\n",
		"scripts/deploy.sh": "#!/bin/sh\nexport GITHUB_TOKEN=" + planted.GitHub + "\n",
		"keys/id_rsa":       planted.PrivateKey,
	})
	data := t.TempDir()
	s := startPavedServer(t, data)
	s.post(t, "/api/v1/repos", map[string]string{"full_name": "e2e/gates", "clone_url": repo, "team": "e2e"})
	id := s.post(t, "/api/v1/runs", map[string]string{"repo": "e2e/gates", "ref": "main"})["id"].(string)

	type stageView struct {
		Name, Status, Reason string
	}
	var view struct {
		Phase  run.Phase `json:"phase"`
		Stages []stageView
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		s.get(t, "/api/v1/runs/"+id, &view)
		if view.Phase.Done() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run still %s\n%s", view.Phase, s.stderr)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
	stages := map[string]stageView{}
	for _, st := range view.Stages {
		stages[st.Name] = st
	}
	if view.Phase != run.Failed {
		t.Errorf("phase %s, want FAILED", view.Phase)
	}
	if st := stages["secrets"]; st.Status != run.StatusFailed || !strings.Contains(st.Reason, "block production") {
		t.Errorf("secrets: %+v", st)
	}
	if st := stages["vulns-dev"]; st.Status != run.StatusSucceeded {
		t.Errorf("vulns-dev: %+v, want succeeded with a warning", st)
	}
	if st := stages["vulns-prod"]; st.Status != run.StatusFailed ||
		!strings.HasPrefix(st.Reason, "1 finding at or above MEDIUM block production: GHSA-69ch-w2m2-3vjp in Go/golang.org/x/text@v0.3.7 at go.mod") {
		t.Errorf("vulns-prod: %+v", st)
	}

	var findings struct {
		Decision string
		Gates    []struct {
			Stage    string
			Decision string
			Findings []run.Finding
		}
	}
	s.get(t, "/api/v1/runs/"+id+"/findings", &findings)
	decisions := map[string]string{}
	where := map[string]string{}
	for _, g := range findings.Gates {
		decisions[g.Stage] = g.Decision
		for _, f := range g.Findings {
			if g.Stage == "secrets" {
				where[f.Rule] = f.File + ":" + strconv.Itoa(f.Line)
			}
		}
	}
	if findings.Decision != "block" || decisions["vulns-dev"] != "warn" || decisions["vulns-prod"] != "block" || decisions["secrets"] != "block" ||
		decisions["sbom"] != "pass" || decisions["sast"] != "warn" || decisions["policy"] != "block" {
		t.Errorf("decisions %v, overall %s", decisions, findings.Decision)
	}
	for rule, at := range map[string]string{"aws-access-token": "config/prod.env:3", "github-pat": "scripts/deploy.sh:2", "private-key": "keys/id_rsa:1"} {
		if where[rule] != at {
			t.Errorf("secret finding %s at %q, want %s (all: %v)", rule, where[rule], at, where)
		}
	}

	if st := stages["policy"]; st.Status != run.StatusFailed || !strings.Contains(st.Reason, "on Pod/shop/web at deploy/pod.yaml:1") {
		t.Errorf("policy: %+v", st)
	}
	if st := stages["sast"]; st.Status != run.StatusSucceeded {
		t.Errorf("sast: %+v, want succeeded with a warning", st)
	}
	var only struct {
		Gates []struct {
			Stage    string
			Findings []run.Finding
		}
	}
	s.get(t, "/api/v1/runs/"+id+"/findings?kind=gate/policy&severity=HIGH", &only)
	if len(only.Gates) != 1 || only.Gates[0].Stage != "policy" || len(only.Gates[0].Findings) == 0 {
		t.Errorf("?kind=gate/policy&severity=HIGH: %+v", only)
	}
	for _, f := range only.Gates[0].Findings {
		if f.Severity != "HIGH" {
			t.Errorf("?severity=HIGH returned %+v", f)
		}
	}

	// Nothing stored or served holds a secret.
	bodies := map[string][]byte{}
	for _, path := range []string{"/api/v1/runs/" + id, "/api/v1/runs/" + id + "/events", "/api/v1/runs/" + id + "/logs",
		"/api/v1/runs/" + id + "/findings", "/api/v1/runs"} {
		resp, err := authGet(s.url + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		bodies["GET "+path] = b
	}
	if !bytes.Contains(bodies["GET /api/v1/runs/"+id+"/logs"], []byte("aws-access-token at config/prod.env:3")) {
		t.Errorf("the secrets stage's log does not name the finding:\n%s", bodies["GET /api/v1/runs/"+id+"/logs"])
	}
	files, _ := filepath.Glob(filepath.Join(data, "paved.db*"))
	if len(files) == 0 {
		t.Fatal("no store files in the data dir")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		bodies[f] = b
	}
	for where, b := range bodies {
		for _, secret := range []string{planted.AWS, planted.GitHub, planted.KeyBody} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s holds the secret %s...", where, secret[:4])
			}
		}
	}
}
