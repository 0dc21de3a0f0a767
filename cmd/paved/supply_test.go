package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paved/paved/internal/cache"
	"github.com/paved/paved/internal/deploy"
	"github.com/paved/paved/internal/pipeline"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/schedule"
	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/store/sqlite"
)

type nopReporter struct{}

func (nopReporter) Log(string)            {}
func (nopReporter) Event(run.Event) error { return nil }

// The server's wiring of the supply chain: what a stage produced is signed by the scheduler's
// Attest hook, and the deploy controller refuses, before anything starts, an artifact that
// was tampered with, never signed, has a forged provenance, or comes from a repository or
// branch the environment does not allow.
func TestDeployRefusesWhatTheSupplyChainDoesNotVouchFor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data := t.TempDir()
	blobs, err := cache.NewBlobs(filepath.Join(data, "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sc, err := newSupplyChain(data, []string{"prod=acme/*@main"})
	if err != nil {
		t.Fatal(err)
	}
	put := func(content string) string {
		d, _, err := blobs.Put(strings.NewReader(content))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	built := func(repo, branch, content string) string {
		d := put(content)
		info := &run.Info{Repo: repo, Ref: branch, Trigger: run.Trigger{Kind: "push", Branch: branch}, Pipeline: &pipeline.Pipeline{Name: "app"}}
		if err := sc.attest(ctx, schedule.AttestParams{Info: info, RunID: "r1", Stage: "build", Attempt: 1,
			Outputs: []run.Artifact{{Path: "app", Type: run.ArtifactFile, Digest: d}}}); err != nil {
			t.Fatal(err)
		}
		return d
	}
	tampered := built("acme/app", "main", "#!/bin/sh\necho v1\n")
	path, _ := blobs.Path(tampered)
	b, _ := os.ReadFile(path)
	b[len(b)-2] ^= 1
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	unsigned := put("#!/bin/sh\necho unsigned\n")
	forged := built("acme/app", "main", "#!/bin/sh\necho v2\n")
	prov := filepath.Join(data, attestationsDir, "sha256", strings.TrimPrefix(forged, "sha256:"), "provenance.dsse.json")
	env, err := os.ReadFile(prov)
	if err != nil {
		t.Fatal(err)
	}
	// Replace the payload with another (valid base64) one: the DSSE signature no longer holds.
	forgedEnv := bytes.Replace(env, []byte(`"payload": "`), []byte(`"payload": "eyJfdHlwZSI6Im90aGVyIn0`), 1)
	if bytes.Equal(forgedEnv, env) {
		t.Fatalf("no payload in %s", env)
	}
	if err := os.WriteFile(prov, forgedEnv, 0o644); err != nil {
		t.Fatal(err)
	}
	elsewhere := built("evil/app", "main", "#!/bin/sh\necho evil\n")
	feature := built("acme/app", "feature/x", "#!/bin/sh\necho feature\n")

	c, err := deploy.New(deploy.Config{Dir: filepath.Join(data, "deploy"), Blobs: blobs, History: st, Verify: sc.verify})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	for _, tc := range []struct{ name, digest, want string }{
		{"tampered", tampered, "tampered"},
		{"unsigned", unsigned, "unsigned"},
		{"forged provenance", forged, "forged"},
		{"another repository", elsewhere, "not allowed"},
		{"another branch", feature, "not allowed"},
	} {
		_, err := c.Deploy(ctx, deploy.Request{Spec: deploy.Spec{Environment: "prod"}, Artifact: tc.digest}, nopReporter{})
		if !errors.Is(err, deploy.ErrBadRequest) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a refusal saying %q", tc.name, err, tc.want)
		}
	}
	hist, err := st.DeploymentList(ctx, store.DeploymentListParams{})
	if err != nil || len(hist) != 0 {
		t.Errorf("refused artifacts left history %v (%v): nothing should have started", hist, err)
	}
}
