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
	"github.com/paved/paved/internal/execute"
	"github.com/paved/paved/internal/gate/sign"
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

type recordKind struct{ ran bool }

func (k *recordKind) Run(context.Context, schedule.KindJob, schedule.KindRecorder) (schedule.KindResult, error) {
	k.ran = true
	return schedule.KindResult{}, nil
}

type logRecorder struct{ lines []string }

func (r *logRecorder) Log(l string)          { r.lines = append(r.lines, l) }
func (r *logRecorder) Event(run.Event) error { return nil }

// The deploy kind attaches the run's SBOM to what it deploys, so that a policy requiring
// one passes for the demo's binary and fails for a binary deployed without it.
func TestDeployAttachesTheRunsSBOM(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data := t.TempDir()
	blobs, err := cache.NewBlobs(filepath.Join(data, "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	sc, err := newSupplyChain(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	bin, _, _ := blobs.Put(strings.NewReader("#!/bin/sh\necho app\n"))
	bom, _, _ := blobs.Put(strings.NewReader(`{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,"components":[]}`))
	info := &run.Info{Repo: "acme/app", Ref: "main", Trigger: run.Trigger{Kind: "push", Branch: "main"}, Pipeline: &pipeline.Pipeline{Name: "app"}}
	if err := sc.attest(ctx, schedule.AttestParams{Info: info, RunID: "r1", Stage: "build", Attempt: 1,
		Outputs: []run.Artifact{{Path: "out/app", Type: run.ArtifactFile, Digest: bin}}}); err != nil {
		t.Fatal(err)
	}
	verify := func() error {
		f, err := blobs.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		_, err = sc.verifier.Verify(ctx, bin, f, sign.Policy{RequireSBOM: true})
		return err
	}
	if err := verify(); err == nil {
		t.Fatal("verified with RequireSBOM before any SBOM was attached")
	}
	next := &recordKind{}
	rec := &logRecorder{}
	_, err = sbomAttached{next: next, sc: sc, blobs: blobs}.Run(ctx, schedule.KindJob{Info: info, ArtifactsIn: []execute.Artifact{
		{Path: "out/app", Digest: bin, Mode: 0o755}, {Path: "sbom.cdx.json", Digest: bom, Mode: 0o644},
	}}, rec)
	if err != nil || !next.ran || len(rec.lines) != 1 {
		t.Fatalf("run: %v, deployed %v, log %q", err, next.ran, rec.lines)
	}
	if err := verify(); err != nil {
		t.Fatalf("with the SBOM attached: %v", err)
	}
}
