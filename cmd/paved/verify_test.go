package main

// The supply-chain acceptance checks through the real binary: what the control plane signed
// verifies with `paved verify`, and a tampered artifact, a forged provenance, an unsigned
// artifact, an unknown key and a branch the policy does not allow are each refused with exit
// code 1 and their reason.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paved/paved/internal/cache"
	"github.com/paved/paved/internal/gate/sign"
)

// signedData makes a data dir as a server leaves it after a stage built and signed an
// artifact, and returns the dir, the artifact's file and its digest.
func signedData(t *testing.T) (data, file, digest string) {
	t.Helper()
	data = t.TempDir()
	keys, index, err := openSigning(data)
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := cache.NewBlobs(filepath.Join(data, artifactsDir))
	if err != nil {
		t.Fatal(err)
	}
	content := []byte("#!/bin/sh\necho payments\n")
	digest, _, err = blobs.Put(bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().UTC()
	signer := &sign.Signer{Keys: keys, Index: index}
	err = signer.Attest(context.Background(), sign.Artifact{Name: "out/app", Digest: digest}, sign.Build{
		RunID: "run-1", Stage: "build", Attempt: 1, PipelineFile: ".paved.yml",
		Repo: "acme/payments", Ref: "refs/heads/main", SHA: strings.Repeat("c", 40),
		Trigger: sign.Trigger{Kind: "push", Provider: "github"}, Steps: []string{"make app"},
		StartedOn: start, FinishedOn: start.Add(time.Second),
	})
	if err != nil {
		t.Fatal(err)
	}
	file = filepath.Join(t.TempDir(), "app")
	if err := os.WriteFile(file, content, 0o755); err != nil {
		t.Fatal(err)
	}
	return data, file, digest
}

func TestVerifyCommand(t *testing.T) {
	t.Parallel()
	data, file, digest := signedData(t)

	expect := func(t *testing.T, wantCode int, want string, args ...string) string {
		t.Helper()
		code, out, errOut := paved(t, nil, append([]string{"verify", "--data", data}, args...)...)
		text := out + errOut
		if code != wantCode || !strings.Contains(text, want) {
			t.Fatalf("paved verify %v: exit %d, want %d with %q\nstdout: %s\nstderr: %s", args, code, wantCode, want, out, errOut)
		}
		return text
	}

	t.Run("verified by file and by digest", func(t *testing.T) {
		expect(t, 0, "verified "+digest, file)
		expect(t, 0, "built from acme/payments refs/heads/main", digest, "--repo", "acme/*", "--ref", "main")
		out := expect(t, 0, `"invocation_id": "run-1/build/1"`, file, "--json")
		var res sign.Result
		if err := json.Unmarshal([]byte(out), &res); err != nil || res.Provenance.Repo != "acme/payments" {
			t.Fatalf("--json: %v\n%s", err, out)
		}
	})

	t.Run("tampered", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "app")
		b, _ := os.ReadFile(file)
		b[0] ^= 1
		os.WriteFile(bad, b, 0o755)
		// Against the digest the deployment names: tampered. On its own: nobody signed it.
		expect(t, 1, "sign: tampered: the bytes hash to", bad, "--digest", digest)
		expect(t, 1, "sign: unsigned: no signature recorded", bad)
	})

	t.Run("branch not allowed", func(t *testing.T) {
		expect(t, 1, `sign: not allowed by policy: built from ref "refs/heads/main"; the environment allows release/*`, file, "--ref", "release/*")
	})

	t.Run("unknown key", func(t *testing.T) {
		otherData := t.TempDir()
		if _, _, err := openSigning(otherData); err != nil {
			t.Fatal(err)
		}
		code, pem, errOut := paved(t, nil, "keys", "export", "--data", otherData)
		if code != 0 {
			t.Fatalf("keys export: %d %s", code, errOut)
		}
		keyFile := filepath.Join(t.TempDir(), "other.pub")
		os.WriteFile(keyFile, []byte(pem+"\n"), 0o644)
		expect(t, 1, "sign: signature by an unknown key", file, "--key", keyFile)
	})

	t.Run("bad usage", func(t *testing.T) {
		expect(t, 2, "is not in the artifact store", "sha256:"+strings.Repeat("0", 64))
		expect(t, 2, "no such file", filepath.Join(t.TempDir(), "missing"))
		expect(t, 2, "no key store", file, "--data", t.TempDir())
	})
}

func TestVerifyCommandForgedProvenance(t *testing.T) {
	t.Parallel()
	data, file, digest := signedData(t)
	path := filepath.Join(data, attestationsDir, "sha256", strings.TrimPrefix(digest, "sha256:"), "provenance.dsse.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env, err := sign.ParseEnvelope(b)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := env.PayloadBytes()
	env.Payload = base64.StdEncoding.EncodeToString(bytes.ReplaceAll(payload, []byte("refs/heads/main"), []byte("refs/heads/prod")))
	b, _ = json.Marshal(env)
	os.WriteFile(path, b, 0o644)
	code, _, errOut := paved(t, nil, "verify", "--data", data, file)
	if code != 1 || !strings.Contains(errOut, "sign: forged provenance: bad DSSE signature") {
		t.Fatalf("forged provenance: exit %d\n%s", code, errOut)
	}
}

func TestKeysRotateExport(t *testing.T) {
	t.Parallel()
	data, file, _ := signedData(t)
	code, before, errOut := paved(t, nil, "keys", "list", "--data", data)
	if code != 0 || strings.Count(before, "\n") != 0 || !strings.HasSuffix(before, "active") {
		t.Fatalf("keys list: %d %q %s", code, before, errOut)
	}
	code, out, errOut := paved(t, nil, "keys", "rotate", "--data", data)
	if code != 0 || !strings.HasPrefix(out, "active key SHA256:") {
		t.Fatalf("keys rotate: %d %q %s", code, out, errOut)
	}
	newID := strings.TrimPrefix(out, "active key ")
	_, after, _ := paved(t, nil, "keys", "list", "--data", data)
	lines := strings.Split(after, "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[0], "verify only") || !strings.HasPrefix(lines[1], newID) {
		t.Fatalf("keys list after rotate:\n%s", after)
	}
	// What the old key signed still verifies, with the server's keys and with the export.
	if code, out, errOut := paved(t, nil, "verify", "--data", data, file); code != 0 {
		t.Fatalf("after rotation: %d %s %s", code, out, errOut)
	}
	bundle := filepath.Join(t.TempDir(), "paved.pub")
	if code, _, errOut := paved(t, nil, "keys", "export", "--all", "--data", data, "-o", bundle); code != 0 {
		t.Fatalf("keys export --all: %s", errOut)
	}
	if code, out, errOut := paved(t, nil, "verify", "--data", data, "--key", bundle, file); code != 0 {
		t.Fatalf("verify --key bundle: %d %s %s", code, out, errOut)
	}
	// A wrong key-encryption key in the environment is refused with what to do.
	code, _, errOut = paved(t, []string{kekEnv + "=" + strings.Repeat("ab", 32)}, "keys", "rotate", "--data", data)
	if code == 0 || !strings.Contains(errOut, "not the key the store was sealed with") {
		t.Fatalf("rotate with a wrong KEK: %d %s", code, errOut)
	}
}

// TestOpenSSLVerifiesSignature checks paved's blob signature with a verifier that shares no
// code with paved: openssl, over the exported PEM key and the base64 artifact.sig, the same
// inputs cosign verify-blob --key takes. Skipped where openssl is not installed.
func TestOpenSSLVerifiesSignature(t *testing.T) {
	t.Parallel()
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	data, file, digest := signedData(t)
	tmp := t.TempDir()
	pub := filepath.Join(tmp, "cosign.pub")
	if code, _, errOut := paved(t, nil, "keys", "export", "--data", data, "-o", pub); code != 0 {
		t.Fatal(errOut)
	}
	b64, err := os.ReadFile(filepath.Join(data, attestationsDir, "sha256", strings.TrimPrefix(digest, "sha256:"), "artifact.sig"))
	if err != nil {
		t.Fatal(err)
	}
	der, err := base64.StdEncoding.DecodeString(string(b64))
	if err != nil {
		t.Fatal(err)
	}
	sig := filepath.Join(tmp, "artifact.sig.der")
	os.WriteFile(sig, der, 0o644)
	out, err := exec.Command(openssl, "dgst", "-sha256", "-verify", pub, "-signature", sig, file).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Verified OK") {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	other := filepath.Join(tmp, "other")
	os.WriteFile(other, []byte("other bytes"), 0o644)
	if out, err := exec.Command(openssl, "dgst", "-sha256", "-verify", pub, "-signature", sig, other).CombinedOutput(); err == nil {
		t.Fatalf("openssl verified the signature over other bytes:\n%s", out)
	}
}
