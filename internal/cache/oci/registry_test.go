package oci_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/paved/paved/internal/cache/oci"
)

// testRegistry is a registry on a real HTTP server on 127.0.0.1, storing in a temp dir.
type testRegistry struct {
	dir  string
	srv  *httptest.Server
	host string
}

func newRegistry(t *testing.T, dir string) *testRegistry {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	reg, err := oci.New(oci.Config{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	return &testRegistry{dir: dir, srv: srv, host: strings.TrimPrefix(srv.URL, "http://")}
}

func (r *testRegistry) ref(t *testing.T, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(r.host+"/"+s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func randomImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(2048, 3)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func digestOf(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// sameLayers checks that two images have the same layer digests and bytes.
func sameLayers(t *testing.T, want, got v1.Image) {
	t.Helper()
	wl, err := want.Layers()
	if err != nil {
		t.Fatal(err)
	}
	gl, err := got.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(wl) != len(gl) {
		t.Fatalf("%d layers, want %d", len(gl), len(wl))
	}
	for i := range wl {
		wb, gb := layerBytes(t, wl[i]), layerBytes(t, gl[i])
		if !bytes.Equal(wb, gb) {
			t.Fatalf("layer %d differs", i)
		}
	}
}

func layerBytes(t *testing.T, l v1.Layer) []byte {
	t.Helper()
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestImageRoundTripSurvivesRestart(t *testing.T) {
	t.Parallel()
	r := newRegistry(t, "")
	img := randomImage(t)
	tag := r.ref(t, "team/service:v1")
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	want := digestOf(t, img)
	for _, ref := range []name.Reference{tag, r.ref(t, "team/service@"+want.String())} {
		got, err := remote.Image(ref)
		if err != nil {
			t.Fatalf("pull %s: %v", ref, err)
		}
		if d := digestOf(t, got); d != want {
			t.Fatalf("pull %s: digest %s, want %s", ref, d, want)
		}
		sameLayers(t, img, got)
	}

	// A new registry on the same directory (a restarted server) serves the same content.
	r2 := newRegistry(t, r.dir)
	got, err := remote.Image(r2.ref(t, "team/service:v1"))
	if err != nil {
		t.Fatalf("pull after restart: %v", err)
	}
	if d := digestOf(t, got); d != want {
		t.Fatalf("after restart: digest %s, want %s", d, want)
	}
	sameLayers(t, img, got)

	tags, err := remote.List(r2.ref(t, "team/service:v1").Context())
	if err != nil || len(tags) != 1 || tags[0] != "v1" {
		t.Fatalf("tags = %v, %v; want [v1]", tags, err)
	}
	repos, err := remote.Catalog(t.Context(), tag.Context().Registry)
	if err != nil || len(repos) != 1 || repos[0] != "team/service" {
		t.Fatalf("catalog = %v, %v; want [team/service]", repos, err)
	}
}

// transportError unwraps the OCI error a registry answered with.
func transportError(t *testing.T, err error) *transport.Error {
	t.Helper()
	var te *transport.Error
	if !errors.As(err, &te) {
		t.Fatalf("error %v is not a registry error response", err)
	}
	return te
}

func TestTagsAreImmutable(t *testing.T) {
	t.Parallel()
	r := newRegistry(t, "")
	first, second := randomImage(t), randomImage(t)
	tag := r.ref(t, "app:1.0")
	if err := remote.Write(tag, first); err != nil {
		t.Fatal(err)
	}
	// The same digest again (a retried publish) is fine.
	if err := remote.Write(tag, first); err != nil {
		t.Fatalf("re-push of the same digest: %v", err)
	}
	err := remote.Write(tag, second)
	if err == nil {
		t.Fatal("pushing a different digest under an existing tag succeeded")
	}
	te := transportError(t, err)
	if te.StatusCode != http.StatusConflict || len(te.Errors) != 1 || te.Errors[0].Code != "DENIED" ||
		!strings.Contains(te.Errors[0].Message, "immutable") || !strings.Contains(te.Errors[0].Message, "new tag") {
		t.Fatalf("refusal = %d %+v; want 409 DENIED saying the tag is immutable and what to do", te.StatusCode, te.Errors)
	}
	got, err := remote.Image(tag)
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(t, got) != digestOf(t, first) {
		t.Fatal("the tag moved")
	}
	// The refused image is still pushable under a new tag.
	if err := remote.Write(r.ref(t, "app:1.1"), second); err != nil {
		t.Fatal(err)
	}
	// Nor can a tag be deleted to make room.
	err = remote.Delete(tag)
	if te := transportError(t, err); te.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("delete: %v; want 405", err)
	}
}

func TestConcurrentPushesOfOneTagHaveOneWinner(t *testing.T) {
	t.Parallel()
	r := newRegistry(t, "")
	tag := r.ref(t, "race:latest")
	imgs := make([]v1.Image, 4)
	for i := range imgs {
		imgs[i] = randomImage(t)
	}
	errs := make([]error, len(imgs))
	var wg sync.WaitGroup
	for i, img := range imgs {
		wg.Go(func() { errs[i] = remote.Write(tag, img) })
	}
	wg.Wait()
	var winner v1.Hash
	wins := 0
	for i, err := range errs {
		if err == nil {
			wins++
			winner = digestOf(t, imgs[i])
		} else if te := transportError(t, err); te.StatusCode != http.StatusConflict {
			t.Fatalf("push %d: %v; want success or 409", i, err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d pushes won the tag, want 1: %v", wins, errs)
	}
	got, err := remote.Image(tag)
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(t, got) != winner {
		t.Fatal("the tag points at a loser")
	}
}

func TestManifestWithMissingBlobIsRefused(t *testing.T) {
	t.Parallel()
	r := newRegistry(t, "")
	img := randomImage(t)
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPut, r.srv.URL+"/v2/app/manifests/v1", bytes.NewReader(raw))
	req.Header.Set("Content-Type", string(types.DockerManifestSchema2))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "MANIFEST_BLOB_UNKNOWN") {
		t.Fatalf("PUT without blobs: %d %s; want 400 MANIFEST_BLOB_UNKNOWN", resp.StatusCode, body)
	}
	// And the tag was not taken by the failed push.
	if err := remote.Write(r.ref(t, "app:v1"), img); err != nil {
		t.Fatal(err)
	}
}

func TestBadNamesAndRoutes(t *testing.T) {
	t.Parallel()
	r := newRegistry(t, "")
	for path, want := range map[string]int{
		"/v2/":                          http.StatusOK,
		"/v2/Upper/manifests/v1":        http.StatusBadRequest,
		"/v2/a/_manifests/manifests/v1": http.StatusBadRequest,
		"/v2/a/manifests/.hidden":       http.StatusBadRequest,
		"/v2/a/manifests/v1":            http.StatusNotFound,
		"/v2/a/blobs/sha256:" + strings.Repeat("0", 64): http.StatusNotFound,
		"/v2/a/tags/list": http.StatusNotFound,
		"/v2/nonsense":    http.StatusNotFound,
	} {
		resp, err := http.Get(r.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d %s, want %d", path, resp.StatusCode, body, want)
		}
		if want != http.StatusOK {
			var e struct {
				Errors []struct{ Code, Message string } `json:"errors"`
			}
			if err := json.Unmarshal(body, &e); err != nil || len(e.Errors) != 1 || e.Errors[0].Message == "" {
				t.Errorf("GET %s: body %s is not an OCI error", path, body)
			}
		}
	}
}

func TestCorruptManifestIsNotServed(t *testing.T) {
	t.Parallel()
	r := newRegistry(t, "")
	img := randomImage(t)
	tag := r.ref(t, "app:v1")
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	d := digestOf(t, img)
	if err := os.WriteFile(filepath.Join(r.dir, "blobs", "sha256", d.Hex), []byte(`{"schemaVersion":2}`), 0o600); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(r.srv.URL + "/v2/app/manifests/v1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "damaged") {
		t.Fatalf("GET of a damaged manifest = %d %s; want 404 saying it is damaged", resp.StatusCode, body)
	}
	// As the message says, pushing it again repairs it.
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	if got, err := remote.Image(tag); err != nil || digestOf(t, got) != d {
		t.Fatalf("after the re-push: %v", err)
	}
}

func TestReferrers(t *testing.T) {
	t.Parallel()
	r := newRegistry(t, "")
	img := randomImage(t)
	if err := remote.Write(r.ref(t, "app:v1"), img); err != nil {
		t.Fatal(err)
	}
	d := digestOf(t, img)
	raw, _ := img.RawManifest()
	mt, _ := img.MediaType()
	subject := v1.Descriptor{MediaType: mt, Digest: d, Size: int64(len(raw))}
	// An SBOM attached to the image, ORAS-style: empty config, subject, artifactType.
	dir := t.TempDir()
	sbom := filepath.Join(dir, "sbom.json")
	if err := os.WriteFile(sbom, []byte(`{"bomFormat":"CycloneDX"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	ref := r.ref(t, "app@"+d.String())
	h, err := oci.Push(t.Context(), oci.PushParams{
		Ref: r.ref(t, "app:v1-sbom"), Files: []string{sbom}, ArtifactType: "application/vnd.cyclonedx+json", Subject: &subject,
	})
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Referrers(ref.(name.Digest))
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Digest != h || im.Manifests[0].ArtifactType != "application/vnd.cyclonedx+json" {
		t.Fatalf("referrers = %+v, want the SBOM %s", im.Manifests, h)
	}
}

// A blob is served only in the repositories it was pushed to: knowing the digest of another
// repository's (another team's) layer does not read it, nor lets a manifest claim it.
func TestBlobsStayInTheirRepository(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := newRegistry(t, dir)
	img := randomImage(t)
	if err := remote.Write(r.ref(t, "red/app:v1"), img); err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	ld, err := layers[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	status := func(repo string) int {
		resp, err := http.Get(r.srv.URL + "/v2/" + repo + "/blobs/" + ld.String())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status("red/app"); got != http.StatusOK {
		t.Fatalf("GET the layer in the repository it was pushed to: %d", got)
	}
	if got := status("blue/app"); got != http.StatusNotFound {
		t.Fatalf("GET red's layer through blue/app: %d, want 404", got)
	}
	// A manifest in blue naming red's blobs is refused: they are not in blue.
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	mt, _ := img.MediaType()
	req, _ := http.NewRequest(http.MethodPut, r.srv.URL+"/v2/blue/app/manifests/v1", bytes.NewReader(raw))
	req.Header.Set("Content-Type", string(mt))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "MANIFEST_BLOB_UNKNOWN") {
		t.Fatalf("manifest in blue over red's blobs: %d %s", resp.StatusCode, body)
	}
	// Pushing the same image to blue stores nothing twice and makes it blue's too.
	if err := remote.Write(r.ref(t, "blue/app:v1"), img); err != nil {
		t.Fatal(err)
	}
	if got := status("blue/app"); got != http.StatusOK {
		t.Fatalf("GET the layer after blue pushed it too: %d", got)
	}

	// A registry written before blobs had links serves its own layers after an upgrade.
	if err := os.RemoveAll(filepath.Join(dir, "repositories", "red", "app", "_layers")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "repositories", ".layer-links-v1")); err != nil {
		t.Fatal(err)
	}
	r2 := newRegistry(t, dir)
	got, err := remote.Image(r2.ref(t, "red/app:v1"))
	if err != nil {
		t.Fatal(err)
	}
	sameLayers(t, img, got)
}
