package sign

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fixture is a control plane that signed one artifact, and the parts to forge with.
type fixture struct {
	keys     *Keys
	index    *Index
	signer   *Signer
	verifier *Verifier
	blob     []byte
	artifact Artifact
	build    Build
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func testBuild() Build {
	start := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	return Build{
		BuilderID: "https://paved.example/server", RunID: "run-42", Stage: "build", Attempt: 1,
		PipelineFile: ".paved.yml", PipelineDigest: digestOf([]byte("stages: {}")),
		Repo: "acme/payments", CloneURL: "https://git.example/acme/payments.git",
		Ref: "refs/heads/main", SHA: strings.Repeat("ab", 20),
		Trigger:   Trigger{Kind: "push", Provider: "github", ID: "t-1", Author: "ada"},
		Steps:     []string{"go build -o out/app ./cmd/app"},
		Inputs:    []Artifact{{Name: "gen/schema.json", Digest: digestOf([]byte("schema"))}},
		StartedOn: start, FinishedOn: start.Add(90 * time.Second),
	}
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	keys := openKeys(t, filepath.Join(dir, "keys"))
	index, err := OpenIndex(filepath.Join(dir, "attestations"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{
		keys: keys, index: index, signer: &Signer{Keys: keys, Index: index},
		verifier: &Verifier{Keys: keys, Index: index},
		blob:     []byte("#!/bin/sh\necho payments v1\n"), build: testBuild(),
	}
	f.artifact = Artifact{Name: "out/app", Digest: digestOf(f.blob)}
	if err := f.signer.Attest(context.Background(), f.artifact, f.build); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) verify(p Policy) (*Result, error) {
	return f.verifier.Verify(context.Background(), f.artifact.Digest, bytes.NewReader(f.blob), p)
}

// envelopeFile reads, edits and writes back an attestation envelope of the artifact.
func (f *fixture) editEnvelope(t *testing.T, kind string, edit func(env *Envelope)) {
	t.Helper()
	dir, _ := f.index.Dir(f.artifact.Digest)
	path := filepath.Join(dir, kind+envelopeExt)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env, err := ParseEnvelope(b)
	if err != nil {
		t.Fatal(err)
	}
	edit(env)
	if b, err = jsonIndent(env); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	res, err := f.verify(Policy{Repos: []string{"acme/*"}, Refs: []string{"main", "release/*"}})
	if err != nil {
		t.Fatal(err)
	}
	active := publicKeys(t, f.keys)[0].ID
	if res.KeyID != active || res.ProvenanceKeyID != active || res.Digest != f.artifact.Digest {
		t.Fatalf("result %+v, want key %s", res, active)
	}
	p := res.Provenance
	if p.Repo != "acme/payments" || p.Ref != "refs/heads/main" || p.SHA != f.build.SHA || p.InvocationID != "run-42/build/1" ||
		p.BuilderID != "https://paved.example/server" || p.PipelineDigest != f.build.PipelineDigest ||
		len(p.Steps) != 1 || len(p.Inputs) != 1 || p.Inputs[0] != f.build.Inputs[0] ||
		!p.StartedOn.Equal(f.build.StartedOn) || !p.FinishedOn.Equal(f.build.FinishedOn) {
		t.Fatalf("provenance read back: %+v", p)
	}
	// The index holds the signature exactly as cosign verify-blob --signature reads it.
	dir, _ := f.index.Dir(f.artifact.Digest)
	sig, err := os.ReadFile(filepath.Join(dir, sigFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := base64.StdEncoding.DecodeString(string(sig)); err != nil {
		t.Fatalf("artifact.sig is not plain base64: %q", sig)
	}

	// An SBOM attestation verifies alongside, and a policy may require one.
	if _, err := f.verify(Policy{RequireSBOM: true}); !errors.Is(err, ErrUnsigned) {
		t.Fatalf("no SBOM but required: %v", err)
	}
	bom := []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{"type":"library","name":"x","version":"1.0.0"}]}`)
	if err := f.signer.AttestSBOM(context.Background(), f.artifact, bom); err != nil {
		t.Fatal(err)
	}
	res, err = f.verify(Policy{RequireSBOM: true})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Attestations, ",") != "provenance,sbom" {
		t.Fatalf("attestations %v", res.Attestations)
	}
	if err := f.signer.AttestSBOM(context.Background(), f.artifact, []byte(`{"spdxVersion":"SPDX-2.3"}`)); err == nil {
		t.Fatal("an SPDX document was taken as CycloneDX")
	}
}

// TestVerifyRefuses covers each way an artifact is refused, with its reason.
func TestVerifyRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	stranger := openKeys(t, t.TempDir()) // a key paved does not trust: the attacker's
	cases := []struct {
		name   string
		setup  func(t *testing.T, f *fixture) // changes the fixture's world
		policy Policy
		want   error
		reason string
	}{
		{
			name:  "tampered: one byte changed",
			setup: func(_ *testing.T, f *fixture) { f.blob[3] ^= 1 },
			want:  ErrTampered, reason: "the bytes hash to sha256:",
		},
		{
			name: "unsigned: never attested",
			setup: func(_ *testing.T, f *fixture) {
				f.blob = []byte("built on a runner, pushed by hand")
				f.artifact.Digest = digestOf(f.blob)
			},
			want: ErrUnsigned, reason: "no signature recorded for sha256:",
		},
		{
			name: "unsigned: a signature but no provenance",
			setup: func(t *testing.T, f *fixture) {
				dir, _ := f.index.Dir(f.artifact.Digest)
				if err := os.Remove(filepath.Join(dir, KindProvenance+envelopeExt)); err != nil {
					t.Fatal(err)
				}
			},
			want: ErrUnsigned, reason: "no provenance recorded",
		},
		{
			name: "signature by an unknown key",
			setup: func(t *testing.T, f *fixture) {
				sig, err := stranger.SignDigest(ctx, f.artifact.Digest)
				if err != nil {
					t.Fatal(err)
				}
				if err := f.index.PutSignature(f.artifact.Digest, sig); err != nil {
					t.Fatal(err)
				}
			},
			want: ErrUnknownKey, reason: "verifies with none of the 1 trusted keys",
		},
		{
			name: "forged provenance: payload edited",
			setup: func(t *testing.T, f *fixture) {
				f.editEnvelope(t, KindProvenance, func(env *Envelope) {
					p, _ := env.PayloadBytes()
					p = bytes.Replace(p, []byte("acme/payments"), []byte("acme/evil"), -1)
					env.Payload = base64.StdEncoding.EncodeToString(p)
				})
			},
			want: ErrForged, reason: "bad DSSE signature",
		},
		{
			name: "forged provenance: signed by another key",
			setup: func(t *testing.T, f *fixture) {
				st, err := ProvenanceStatement(f.artifact, f.build)
				if err != nil {
					t.Fatal(err)
				}
				payload, _ := MarshalStatement(st)
				env, err := stranger.SignEnvelope(ctx, PayloadTypeInToto, payload)
				if err != nil {
					t.Fatal(err)
				}
				if err := f.index.PutAttestation(f.artifact.Digest, KindProvenance, env); err != nil {
					t.Fatal(err)
				}
			},
			want: ErrForged, reason: "signed by unknown key SHA256:",
		},
		{
			name: "forged provenance: another key's signature without a key id",
			setup: func(t *testing.T, f *fixture) {
				st, _ := ProvenanceStatement(f.artifact, f.build)
				payload, _ := MarshalStatement(st)
				env, _ := stranger.SignEnvelope(ctx, PayloadTypeInToto, payload)
				env.Signatures[0].KeyID = ""
				if err := f.index.PutAttestation(f.artifact.Digest, KindProvenance, env); err != nil {
					t.Fatal(err)
				}
			},
			want: ErrForged, reason: "bad DSSE signature",
		},
		{
			name: "forged provenance: a valid statement about another artifact",
			setup: func(t *testing.T, f *fixture) {
				other := Artifact{Name: "out/app", Digest: digestOf([]byte("other"))}
				st, _ := ProvenanceStatement(other, f.build)
				payload, _ := MarshalStatement(st)
				env, _ := f.keys.SignEnvelope(ctx, PayloadTypeInToto, payload)
				if err := f.index.PutAttestation(f.artifact.Digest, KindProvenance, env); err != nil {
					t.Fatal(err)
				}
			},
			want: ErrForged, reason: "the provenance names " + digestOf([]byte("other")) + ", not sha256:",
		},
		{
			name: "forged provenance: not an envelope",
			setup: func(t *testing.T, f *fixture) {
				dir, _ := f.index.Dir(f.artifact.Digest)
				os.WriteFile(filepath.Join(dir, KindProvenance+envelopeExt), []byte(`{"payloadType":`), 0o644)
			},
			want: ErrForged, reason: "not a DSSE envelope",
		},
		{
			name: "forged SBOM: another key",
			setup: func(t *testing.T, f *fixture) {
				st, _ := SBOMStatement(f.artifact, []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6"}`))
				payload, _ := MarshalStatement(st)
				env, _ := stranger.SignEnvelope(ctx, PayloadTypeInToto, payload)
				if err := f.index.PutAttestation(f.artifact.Digest, KindSBOM, env); err != nil {
					t.Fatal(err)
				}
			},
			want: ErrForged, reason: "sbom attestation: signed by unknown key",
		},
		{
			name:   "repository not allowed",
			policy: Policy{Repos: []string{"acme/web", "tools/*"}},
			want:   ErrNotAllowed, reason: `built from repository "acme/payments"; the environment allows acme/web, tools/*`,
		},
		{
			name:   "branch not allowed",
			policy: Policy{Repos: []string{"acme/payments"}, Refs: []string{"release/*"}},
			want:   ErrNotAllowed, reason: `built from ref "refs/heads/main"; the environment allows release/*`,
		},
		{
			name: "a tag does not pass as a branch",
			setup: func(t *testing.T, f *fixture) {
				f.build.Ref = "refs/tags/main"
				if err := f.signer.Attest(ctx, f.artifact, f.build); err != nil {
					t.Fatal(err)
				}
			},
			policy: Policy{Refs: []string{"main"}},
			want:   ErrNotAllowed, reason: `built from ref "refs/tags/main"`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			if c.setup != nil {
				c.setup(t, f)
			}
			res, err := f.verify(c.policy)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v (result %+v), want %v", err, res, c.want)
			}
			if !IsRefusal(err) || !strings.Contains(err.Error(), c.reason) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("reason %q, want one line with %q", err, c.reason)
			}
			t.Log(err)
		})
	}
}

func TestRotationOldSignaturesVerify(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	old := publicKeys(t, f.keys)[0].ID
	next, err := f.keys.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.verify(Policy{})
	if err != nil || res.KeyID != old {
		t.Fatalf("artifact signed before rotation: %+v %v", res, err)
	}
	blob := []byte("v2")
	a := Artifact{Name: "out/app", Digest: digestOf(blob)}
	if err := f.signer.Attest(ctx, a, f.build); err != nil {
		t.Fatal(err)
	}
	res, err = f.verifier.Verify(ctx, a.Digest, bytes.NewReader(blob), Policy{})
	if err != nil || res.KeyID != next.ID || res.ProvenanceKeyID != next.ID {
		t.Fatalf("artifact signed after rotation: %+v %v, want key %s", res, err, next.ID)
	}
	// Only public keys at hand (what paved keys export gives): the same verdicts.
	pemAll, _ := f.keys.PEM(false)
	trust, err := NewTrust(pemAll)
	if err != nil {
		t.Fatal(err)
	}
	pv := &Verifier{Keys: trust, Index: f.index}
	if _, err := pv.Verify(ctx, a.Digest, bytes.NewReader(blob), Policy{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pv.Verify(ctx, f.artifact.Digest, bytes.NewReader(f.blob), Policy{}); err != nil {
		t.Fatal(err)
	}
	// Trusting only the new key, the old artifact is refused: the key is unknown.
	pemNew, _ := f.keys.PEM(true)
	onlyNew, _ := NewTrust(pemNew)
	_, err = (&Verifier{Keys: onlyNew, Index: f.index}).Verify(ctx, f.artifact.Digest, bytes.NewReader(f.blob), Policy{})
	if !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("old artifact with only the new key trusted: %v", err)
	}
}

func TestVerifyBadInput(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	for name, err := range map[string]error{
		"bad digest": func() error {
			_, err := f.verifier.Verify(ctx, "sha256:xyz", bytes.NewReader(nil), Policy{})
			return err
		}(),
		"bad glob": func() error {
			_, err := f.verify(Policy{Repos: []string{"acme/["}})
			return err
		}(),
		"no bytes": func() error {
			_, err := f.verifier.Verify(ctx, f.artifact.Digest, nil, Policy{})
			return err
		}(),
	} {
		if err == nil || IsRefusal(err) {
			t.Errorf("%s: %v, want an error that is not a refusal", name, err)
		}
	}
	if _, err := NewTrust([]byte("not pem")); err == nil {
		t.Error("NewTrust took text that is not PEM")
	}
	if err := f.index.PutAttestation(f.artifact.Digest, "../x", &Envelope{}); err == nil {
		t.Error("an attestation kind with a path in it was taken")
	}
	var p Policy
	if err := json.Unmarshal([]byte(`{"repos":["a/*"],"refs":["main"],"require_sbom":true}`), &p); err != nil || !p.RequireSBOM {
		t.Errorf("policy JSON: %+v %v", p, err)
	}
}
