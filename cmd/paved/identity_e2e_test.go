package main

import (
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/paved/paved/internal/run"
)

// A stage with id_token gets a token that verifies against the server's own discovery and
// JWKS with go-oidc, with the run's claims; printed as it is, the log shows *** instead.
func TestStageIDTokenVerifiesAgainstServer(t *testing.T) {
	t.Parallel()
	dir := gitRepo(t, map[string]string{".paved.yml": `
stages:
  fed:
    id_token: {audience: vault.example.com}
    steps:
      - 'echo "plain: $PAVED_ID_TOKEN"'
      - 'echo "split: $PAVED_ID_TOKEN" | sed "s/\./ DOT /g"'
`})
	s := startPavedServer(t, t.TempDir())
	s.post(t, "/api/v1/repos", map[string]string{"full_name": "acme/fed", "clone_url": dir, "team": "e2e"})
	id := s.post(t, "/api/v1/runs", map[string]string{"repo": "acme/fed", "ref": "main"})["id"].(string)
	var sum run.Summary
	for deadline := time.Now().Add(time.Minute); !sum.Phase.Done(); {
		if time.Now().After(deadline) {
			t.Fatalf("run not done: %s", sum.Phase)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
		s.get(t, "/api/v1/runs/"+id, &sum)
	}
	resp, err := authGet(s.url + "/api/v1/runs/" + id + "/logs?stage=fed")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var plain, split string
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "plain: "); ok {
			plain = v
		}
		if v, ok := strings.CutPrefix(l, "split: "); ok {
			split = v
		}
	}
	if sum.Phase != run.Succeeded || plain != "***" || split == "" {
		t.Fatalf("phase %s, plain %q, split %q:\n%s", sum.Phase, plain, split, b)
	}
	token := regexp.MustCompile(` DOT `).ReplaceAllString(split, ".")

	p, err := oidc.NewProvider(t.Context(), s.url)
	if err != nil {
		t.Fatal(err)
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: "vault.example.com"}).Verify(t.Context(), token)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if c["sub"] != "repo:acme/fed:ref:refs/heads/main" || c["repository"] != "acme/fed" || c["stage"] != "fed" ||
		c["run_id"] != id || c["event_name"] != "manual" {
		t.Fatalf("claims %v", c)
	}
}
