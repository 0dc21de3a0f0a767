package oci_test

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/paved/paved/internal/cache/oci"
)

// baseImage is an OCI image for linux/arch with two layers and a Cmd to be replaced.
func baseImage(t *testing.T, arch string) v1.Image {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for range 2 {
		l, err := random.Layer(512, types.OCILayer)
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Config.Cmd = []string{"/bin/sh"}
	cf.Config.Env = []string{"PATH=/usr/bin:/bin"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

// baseLayout writes an OCI layout holding an image per architecture, as a multi-platform
// base pulled with `crane pull --format=oci` looks.
func baseLayout(t *testing.T, arches ...string) (string, map[string]v1.Image) {
	t.Helper()
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	imgs := map[string]v1.Image{}
	for _, a := range arches {
		imgs[a] = baseImage(t, a)
		if err := p.AppendImage(imgs[a], layout.WithPlatform(v1.Platform{OS: "linux", Architecture: a})); err != nil {
			t.Fatal(err)
		}
	}
	return dir, imgs
}

// binary is an ELF executable for this machine: the test binary itself.
func binary(t *testing.T) (string, []byte) {
	t.Helper()
	p, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return p, b
}

func otherArch() string {
	if runtime.GOARCH == "s390x" {
		return "amd64"
	}
	return "s390x"
}

func TestBuildLayersBinaryOntoLayoutBase(t *testing.T) {
	t.Parallel()
	r := newRegistry(t, "")
	dir, bases := baseLayout(t, otherArch(), runtime.GOARCH)
	bin, content := binary(t)
	plat, err := oci.BinaryPlatform(bin)
	if err != nil {
		t.Fatal(err)
	}
	base, err := oci.BaseFromLayout(dir, plat)
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(t, base) != digestOf(t, bases[runtime.GOARCH]) {
		t.Fatal("the layout's image for another platform was picked")
	}
	img, err := oci.Build(oci.BuildParams{Base: base, BaseName: "example/base", Binary: bin, Path: "/app/server"})
	if err != nil {
		t.Fatal(err)
	}
	ref := r.ref(t, "acme/server:v1")
	h, err := oci.PushImage(t.Context(), ref, img)
	if err != nil {
		t.Fatal(err)
	}

	// Pull back by digest with the plain remote client.
	got, err := remote.Image(r.ref(t, "acme/server@"+h.String()))
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(t, got) != h {
		t.Fatal("pulled digest differs")
	}
	cf, err := got.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cf.Config.Entrypoint, []string{"/app/server"}) || cf.Config.Cmd != nil ||
		!slices.Equal(cf.Config.Env, []string{"PATH=/usr/bin:/bin"}) || cf.Architecture != runtime.GOARCH {
		t.Fatalf("config = %+v; want entrypoint [/app/server], no cmd, the base's env", cf.Config)
	}
	layers, err := got.Layers()
	if err != nil {
		t.Fatal(err)
	}
	baseLayers, _ := base.Layers()
	if len(layers) != len(baseLayers)+1 {
		t.Fatalf("%d layers, want the base's %d + 1", len(layers), len(baseLayers))
	}
	for i, bl := range baseLayers {
		bd, _ := bl.Digest()
		ld, _ := layers[i].Digest()
		if bd != ld {
			t.Fatalf("base layer %d changed", i)
		}
	}
	files := untar(t, layers[len(layers)-1])
	f, ok := files["app/server"]
	if !ok || f.hdr.Mode != 0o755 || !bytes.Equal(f.body, content) {
		t.Fatalf("last layer has %v; want app/server, mode 0755, the binary's bytes", keys(files))
	}
	if _, ok := files["app/"]; !ok {
		t.Fatal("last layer lacks the app/ directory entry")
	}
	m, err := got.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.Annotations[oci.AnnotationBaseName] != "example/base" || m.Annotations[oci.AnnotationBaseDigest] != digestOf(t, base).String() {
		t.Fatalf("annotations = %v; want the base's name and digest", m.Annotations)
	}

	// Reproducible: the same inputs give the same digest, so a retried build passes the tag.
	again, err := oci.Build(oci.BuildParams{Base: base, BaseName: "example/base", Binary: bin, Path: "/app/server"})
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(t, again) != h {
		t.Fatal("building twice gave two digests")
	}
	if _, err := oci.PushImage(t.Context(), ref, again); err != nil {
		t.Fatalf("re-push of the same build: %v", err)
	}
}

func TestBuildRefusesMismatchedPlatform(t *testing.T) {
	t.Parallel()
	bin, _ := binary(t)
	_, err := oci.Build(oci.BuildParams{Base: baseImage(t, otherArch()), Binary: bin})
	if err == nil || !strings.Contains(err.Error(), "GOARCH="+otherArch()) {
		t.Fatalf("err = %v; want a refusal that says which GOARCH to build with", err)
	}
	dir, _ := baseLayout(t, otherArch())
	if _, err := oci.BaseFromLayout(dir, v1.Platform{OS: "linux", Architecture: runtime.GOARCH}); err == nil ||
		!strings.Contains(err.Error(), "linux/"+otherArch()) {
		t.Fatalf("err = %v; want a refusal listing the platforms the layout has", err)
	}
	notELF := t.TempDir() + "/script"
	writeFile(t, notELF, "#!/bin/sh\n", 0o755)
	if _, err := oci.Build(oci.BuildParams{Binary: notELF}); err == nil || !strings.Contains(err.Error(), "GOOS=linux") {
		t.Fatalf("err = %v; want a refusal of a non-ELF file", err)
	}
}

func TestBuildOnScratch(t *testing.T) {
	t.Parallel()
	bin, _ := binary(t)
	img, err := oci.Build(oci.BuildParams{Binary: bin, Entrypoint: []string{"/app/x", "serve"}, Path: "/app/x"})
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("%d layers, %v; want 1", len(layers), err)
	}
	cf, err := img.ConfigFile()
	if err != nil || !slices.Equal(cf.Config.Entrypoint, []string{"/app/x", "serve"}) || cf.Architecture != runtime.GOARCH {
		t.Fatalf("config %+v, %v", cf, err)
	}
}

type tarFile struct {
	hdr  *tar.Header
	body []byte
}

func untar(t *testing.T, l v1.Layer) map[string]tarFile {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out := map[string]tarFile{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = tarFile{hdr: h, body: b}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// A Docker-format base keeps a Docker-format manifest: the new layer is a Docker layer.
func TestBuildOnDockerBase(t *testing.T) {
	t.Parallel()
	bin, _ := binary(t)
	base := randomImage(t)
	img, err := oci.Build(oci.BuildParams{Base: base, Binary: bin})
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	last := m.Layers[len(m.Layers)-1]
	if m.MediaType != types.DockerManifestSchema2 || last.MediaType != types.DockerLayer {
		t.Fatalf("manifest %s with last layer %s; want Docker schema 2 throughout", m.MediaType, last.MediaType)
	}
	cf, err := img.ConfigFile()
	if err != nil || !slices.Equal(cf.Config.Entrypoint, []string{"/app/" + filepath.Base(bin)}) {
		t.Fatalf("entrypoint %v, %v; want the default /app/NAME", cf.Config.Entrypoint, err)
	}
}
