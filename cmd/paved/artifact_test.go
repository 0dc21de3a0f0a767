package main

// End-to-end tests of the embedded registry: the real binary serves /v2/, `paved artifact` and
// `paved image` push to it, and go-containerregistry's remote client (what crane is built on)
// pulls back what they pushed.

import (
	"archive/tar"
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// paved runs the binary with extra environment and returns its exit code and output.
func paved(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(pavedBin, args...)
	cmd.Env = append(append(os.Environ(), "PAVED_TOKEN="+e2eToken), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), strings.TrimSpace(stdout.String()), stderr.String()
}

// asAdmin authenticates registry calls with the server-admin token.
var asAdmin = remote.WithAuth(&authn.Bearer{Token: e2eToken})

func mustDigestRef(t *testing.T, s string) name.Digest {
	t.Helper()
	d, err := name.NewDigest(s, name.Insecure)
	if err != nil {
		t.Fatalf("output %q is not REPO@DIGEST: %v", s, err)
	}
	return d
}

func TestArtifactPushPullThroughServer(t *testing.T) {
	t.Parallel()
	s := startPavedServer(t, t.TempDir())
	src := t.TempDir()
	files := map[string]string{"app": "binary bytes\x00\x01", "sbom.json": `{"bomFormat":"CycloneDX"}`}
	var paths []string
	for n, c := range files {
		p := filepath.Join(src, n)
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	slices.Sort(paths)
	stageEnv := []string{"PAVED_RUN_ID=run-7", "PAVED_PIPELINE=hello-service", "PAVED_SHA=0123abcd"}
	push := append([]string{"artifact", "push", "--server", s.url,
		"--annotation", "org.opencontainers.image.source=https://git.example.com/demo/hello", "demo/hello/build:0123abcd"}, paths...)
	code, out, errOut := paved(t, stageEnv, push...)
	if code != 0 {
		t.Fatalf("push: exit %d\n%s", code, errOut)
	}
	ref := mustDigestRef(t, out)

	// The acceptance check: an OCI client pulls what paved pushed.
	desc, err := remote.Get(ref, asAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest.String() != ref.DigestStr() {
		t.Fatalf("remote sees %s, paved printed %s", desc.Digest, ref.DigestStr())
	}
	m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"org.opencontainers.image.source": "https://git.example.com/demo/hello", "org.opencontainers.image.revision": "0123abcd",
		"dev.paved.pipeline": "hello-service", "dev.paved.run": "run-7",
	} {
		if m.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, m.Annotations[k], v)
		}
	}
	for _, l := range m.Layers {
		blob, err := remote.Layer(ref.Context().Digest(l.Digest.String()), asAdmin)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := blob.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if title := l.Annotations["org.opencontainers.image.title"]; string(b) != files[title] {
			t.Errorf("layer %q = %q, want %q", title, b, files[title])
		}
	}

	// The server signed it as cosign does, with the key it serves at /api/v1/keys.
	checkCosignSignature(t, s.url, ref)

	// Same content again: fine, same digest. Other content under the tag: refused, saying why.
	if code, again, errOut := paved(t, stageEnv, push...); code != 0 || again != out {
		t.Fatalf("re-push: exit %d %s\n%s", code, again, errOut)
	}
	if err := os.WriteFile(paths[0], []byte("rebuilt"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := paved(t, stageEnv, push...); code != 1 || !strings.Contains(errOut, "immutable") {
		t.Fatalf("push of other content under the tag: exit %d\n%s; want 1 and a message about immutable tags", code, errOut)
	}
	if code, _, errOut := paved(t, nil, "artifact", "push", "--server", s.url, "demo/hello/build", paths[0]); code != 2 {
		t.Fatalf("push without a tag: exit %d\n%s; want 2", code, errOut)
	}

	dst := t.TempDir()
	code, listed, errOut := paved(t, nil, "artifact", "pull", "--server", s.url, "demo/hello/build@"+ref.DigestStr(), "-o", dst)
	if code != 0 || listed != "app\nsbom.json" {
		t.Fatalf("pull: exit %d, listed %q\n%s", code, listed, errOut)
	}
	for n, c := range files {
		if b, err := os.ReadFile(filepath.Join(dst, n)); err != nil || string(b) != c {
			t.Fatalf("pulled %s = %q, %v", n, b, err)
		}
	}
}

func TestImageBuildThroughServer(t *testing.T) {
	t.Parallel()
	s := startPavedServer(t, t.TempDir())
	// A base image in an OCI layout, as `crane pull --format=oci` writes it.
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	l, err := random.Layer(1024, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	if base, err = mutate.AppendLayers(base, l); err != nil {
		t.Fatal(err)
	}
	if base, err = mutate.ConfigFile(base, &v1.ConfigFile{OS: "linux", Architecture: runtime.GOARCH,
		RootFS: v1.RootFS{Type: "layers"}, Config: v1.Config{Cmd: []string{"sh"}}}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(base, layout.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH})); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := paved(t, nil, "image", "build", "--server", s.url, "--base", dir, "--binary", pavedBin,
		"--entrypoint", "/app/paved", "--entrypoint", "server", "--tag", "demo/paved:v1")
	if code != 0 {
		t.Fatalf("image build: exit %d\n%s", code, errOut)
	}
	ref := mustDigestRef(t, out)
	img, err := remote.Image(ref, asAdmin)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cf.Config.Entrypoint, []string{"/app/paved", "server"}) || cf.Config.Cmd != nil {
		t.Fatalf("config %+v; want entrypoint [/app/paved server] and no cmd", cf.Config)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 2 {
		t.Fatalf("%d layers, %v; want base + 1", len(layers), err)
	}
	want, err := os.ReadFile(pavedBin)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[1].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	found := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == "app/paved" {
			b, _ := io.ReadAll(tr)
			found = bytes.Equal(b, want) && h.Mode == 0o755
		}
	}
	if !found {
		t.Fatal("the last layer does not hold app/paved with the binary's bytes, mode 0755")
	}
}

// checkCosignSignature finds ref's signature manifest (tag sha256-<hex>.sig), checks its
// simple-signing payload names ref's digest, and verifies the signature in its annotation
// with the server's active public key, as `cosign verify --key` would.
func checkCosignSignature(t *testing.T, server string, ref name.Digest) {
	t.Helper()
	sigRef := ref.Context().Tag(strings.Replace(ref.DigestStr(), ":", "-", 1) + ".sig")
	img, err := remote.Image(sigRef, asAdmin)
	if err != nil {
		t.Fatalf("no cosign signature at %s: %v", sigRef, err)
	}
	m, err := img.Manifest()
	if err != nil || len(m.Layers) != 1 {
		t.Fatalf("signature manifest %+v: %v", m, err)
	}
	layers, _ := img.Layers()
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := io.ReadAll(rc)
	rc.Close()
	if !strings.Contains(string(payload), `"docker-manifest-digest":"`+ref.DigestStr()+`"`) {
		t.Fatalf("payload %s does not name %s", payload, ref.DigestStr())
	}
	resp, err := authGet(server + "/api/v1/keys?format=pem&active=true")
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		t.Fatalf("no PEM key at /api/v1/keys: %s", pemBytes)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := base64.StdEncoding.DecodeString(m.Layers[0].Annotations["dev.cosignproject.cosign/signature"])
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(payload)
	if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), sum[:], sig) {
		t.Fatal("the registry's signature does not verify with the server's public key")
	}
}
