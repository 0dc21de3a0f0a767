package oci_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/paved/paved/internal/cache/oci"
)

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// TestArtifactPushedByPavedPullsWithRemote is the acceptance check: what paved pushes, an
// OCI client (go-containerregistry's remote, what crane is built on) pulls, byte for byte.
func TestArtifactPushedByPavedPullsWithRemote(t *testing.T) {
	t.Parallel()
	r := newRegistry(t, "")
	src := t.TempDir()
	app, report := filepath.Join(src, "app"), filepath.Join(src, "report.xml")
	writeFile(t, app, "#!/bin/sh\necho hello\n", 0o755)
	writeFile(t, report, "<testsuites/>", 0o644)
	ann := map[string]string{
		oci.AnnotationSource: "https://git.example.com/acme/payments", oci.AnnotationRev: "0123abcd",
		oci.AnnotationPipeline: "payments", oci.AnnotationRun: "run-42",
	}
	ref := r.ref(t, "acme/payments/build:0123abcd")
	h, err := oci.Push(t.Context(), oci.PushParams{Ref: ref, Files: []string{app, report}, Annotations: ann})
	if err != nil {
		t.Fatal(err)
	}

	desc, err := remote.Get(ref)
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != h || desc.MediaType != types.OCIManifestSchema1 {
		t.Fatalf("remote sees %s %s, paved pushed %s", desc.MediaType, desc.Digest, h)
	}
	var m v1.Manifest
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	if m.ArtifactType != oci.ArtifactType || m.Config.MediaType != oci.EmptyConfigType {
		t.Fatalf("artifactType %q config %q: not the ORAS artifact shape", m.ArtifactType, m.Config.MediaType)
	}
	for k, v := range ann {
		if m.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, m.Annotations[k], v)
		}
	}
	want := map[string]string{"app": "#!/bin/sh\necho hello\n", "report.xml": "<testsuites/>"}
	if len(m.Layers) != len(want) {
		t.Fatalf("%d layers, want %d", len(m.Layers), len(want))
	}
	for _, l := range m.Layers {
		title := l.Annotations[oci.AnnotationTitle]
		blob, err := remote.Layer(ref.Context().Digest(l.Digest.String()))
		if err != nil {
			t.Fatal(err)
		}
		if got := string(layerBytes(t, blob)); got != want[title] {
			t.Errorf("layer %q = %q, want %q", title, got, want[title])
		}
	}

	// paved's own pull writes the files back, executable bit included.
	out := t.TempDir()
	pulled, err := oci.Pull(t.Context(), oci.PullParams{Ref: r.ref(t, "acme/payments/build@"+h.String()), Dir: out})
	if err != nil {
		t.Fatal(err)
	}
	if pulled.Digest != h || len(pulled.Files) != 2 || pulled.Annotations[oci.AnnotationRun] != "run-42" {
		t.Fatalf("pulled %+v", pulled)
	}
	for title, content := range want {
		b, err := os.ReadFile(filepath.Join(out, title))
		if err != nil || string(b) != content {
			t.Fatalf("pulled %s = %q, %v; want %q", title, b, err, content)
		}
	}
	if fi, err := os.Stat(filepath.Join(out, "app")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("pulled app mode = %v, %v; want 0755", fi.Mode(), err)
	}

	// The push is reproducible, so a retry under the same tag passes; changed content does not.
	again, err := oci.Push(t.Context(), oci.PushParams{Ref: ref, Files: []string{app, report}, Annotations: ann})
	if err != nil || again != h {
		t.Fatalf("re-push = %s, %v; want %s and no error", again, err, h)
	}
	writeFile(t, report, "<testsuites failures=\"1\"/>", 0o644)
	_, err = oci.Push(t.Context(), oci.PushParams{Ref: ref, Files: []string{app, report}, Annotations: ann})
	if te := transportError(t, err); te.StatusCode != http.StatusConflict {
		t.Fatalf("push of other content under the tag: %v; want 409", err)
	}
}

func TestPullRefusesImagesAndEscapingTitles(t *testing.T) {
	t.Parallel()
	r := newRegistry(t, "")
	img := randomImage(t)
	if err := remote.Write(r.ref(t, "img:v1"), img); err != nil {
		t.Fatal(err)
	}
	_, err := oci.Pull(t.Context(), oci.PullParams{Ref: r.ref(t, "img:v1"), Dir: t.TempDir()})
	if !errors.Is(err, oci.ErrNotArtifact) {
		t.Fatalf("pull of an image: %v; want ErrNotArtifact", err)
	}

	// A hostile artifact whose layer title climbs out of the output directory.
	repo := r.ref(t, "evil:v1").Context()
	blob := static.NewLayer([]byte("pwned"), oci.FileMediaType)
	cfg := static.NewLayer([]byte("{}"), oci.EmptyConfigType)
	for _, l := range []v1.Layer{blob, cfg} {
		if err := remote.WriteLayer(repo, l); err != nil {
			t.Fatal(err)
		}
	}
	bd, _ := blob.Digest()
	cd, _ := cfg.Digest()
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1,
		Config: v1.Descriptor{MediaType: oci.EmptyConfigType, Digest: cd, Size: 2},
		Layers: []v1.Descriptor{{MediaType: oci.FileMediaType, Digest: bd, Size: 5,
			Annotations: map[string]string{oci.AnnotationTitle: "../escaped"}}}}
	body, _ := json.Marshal(m)
	if err := remote.Put(r.ref(t, "evil:v1"), rawManifest(body)); err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	out := filepath.Join(parent, "out")
	if _, err := oci.Pull(t.Context(), oci.PullParams{Ref: r.ref(t, "evil:v1"), Dir: out}); err == nil {
		t.Fatal("a title outside the output directory was accepted")
	}
	if _, err := os.Stat(filepath.Join(parent, "escaped")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the escaping file was written: %v", err)
	}
}

type rawManifest []byte

func (m rawManifest) RawManifest() ([]byte, error) { return m, nil }
func (m rawManifest) MediaType() (types.MediaType, error) {
	return types.OCIManifestSchema1, nil
}
