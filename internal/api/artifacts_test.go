package api_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
)

// TestRunViewListsArtifacts: GET /api/v1/runs/{id} lists each stage's artifacts (path,
// type, digest, size, mode) under the stage and, with the stage named, for the whole run;
// the events carry them as ArtifactsStored.
func TestRunViewListsArtifacts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.repo("acme/art", `
stages:
  build:
    steps: ["artifact out/app binary\nartifact out/app.txt notes"]
    artifacts: ["out/*"]
  docs:
    steps: ["artifact site/index.html <html>"]
    artifacts: [site/index.html]
  test:
    needs: [build, docs]
    steps: [echo testing]
`)
	var created struct{ ID string }
	e.do("POST", "/api/v1/runs", map[string]string{"repo": "acme/art", "ref": "main"}, 201, &created)
	if v := e.waitDone(created.ID); v["phase"] != "SUCCEEDED" {
		t.Fatalf("run %v", v)
	}
	type artifact struct {
		Stage  string `json:"stage"`
		Path   string `json:"path"`
		Type   string `json:"type"`
		Digest string `json:"digest"`
		Size   int64  `json:"size"`
		Mode   string `json:"mode"`
	}
	var v struct {
		Stages []struct {
			Name      string            `json:"name"`
			Artifacts []json.RawMessage `json:"artifacts"`
		} `json:"stages"`
		Artifacts []artifact `json:"artifacts"`
	}
	e.do("GET", "/api/v1/runs/"+created.ID, nil, 200, &v)
	digest := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return "sha256:" + hex.EncodeToString(sum[:])
	}
	want := []artifact{
		{Stage: "build", Path: "out/app", Type: "file", Digest: digest("binary"), Size: 6, Mode: "0644"},
		{Stage: "build", Path: "out/app.txt", Type: "file", Digest: digest("notes"), Size: 5, Mode: "0644"},
		{Stage: "docs", Path: "site/index.html", Type: "file", Digest: digest("<html>"), Size: 6, Mode: "0644"},
	}
	if len(v.Artifacts) != len(want) {
		t.Fatalf("run artifacts %+v", v.Artifacts)
	}
	for i := range want {
		if v.Artifacts[i] != want[i] {
			t.Errorf("run artifact %d: %+v, want %+v", i, v.Artifacts[i], want[i])
		}
	}
	counts := map[string]int{}
	for _, s := range v.Stages {
		counts[s.Name] = len(s.Artifacts)
	}
	if counts["build"] != 2 || counts["docs"] != 1 || counts["test"] != 0 {
		t.Errorf("per stage: %v", counts)
	}
	if len(v.Stages) > 0 && len(v.Stages[0].Artifacts) > 0 {
		// The stage's own list does not repeat the stage's name.
		var got bytes.Buffer
		if err := json.Compact(&got, v.Stages[0].Artifacts[0]); err != nil {
			t.Fatal(err)
		}
		if wantJSON := `{"path":"out/app","type":"file","digest":"` + digest("binary") + `","size":6,"mode":"0644"}`; got.String() != wantJSON {
			t.Errorf("stage artifact JSON %s, want %s", got.String(), wantJSON)
		}
	}

	var evs struct {
		Events []struct {
			Type      string     `json:"type"`
			Stage     string     `json:"stage"`
			Artifacts []artifact `json:"artifacts"`
		} `json:"events"`
	}
	e.do("GET", "/api/v1/runs/"+created.ID+"/events", nil, 200, &evs)
	stored := map[string]int{}
	for _, ev := range evs.Events {
		if ev.Type == "ArtifactsStored" {
			stored[ev.Stage] = len(ev.Artifacts)
		}
	}
	if stored["build"] != 2 || stored["docs"] != 1 || len(stored) != 2 {
		t.Errorf("ArtifactsStored events: %v", stored)
	}
}
