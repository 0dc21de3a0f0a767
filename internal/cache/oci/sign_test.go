package oci_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/paved/paved/internal/cache/oci"
)

// A pushed image gets a cosign signature manifest under sha256-<hex>.sig: one layer of
// cosign's simple-signing payload naming the image's digest, its ECDSA signature in the
// layer's annotation, checked here as cosign checks it.
func TestPushedManifestsAreSignedAsCosignDoes(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signs := 0
	reg, err := oci.New(oci.Config{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler), Sign: func(p []byte) ([]byte, error) {
		signs++
		sum := sha256.Sum256(p)
		return ecdsa.SignASN1(rand.Reader, key, sum[:])
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(reg)
	defer srv.Close()
	r := &testRegistry{srv: srv, host: strings.TrimPrefix(srv.URL, "http://")}
	img := randomImage(t)
	d := digestOf(t, img)
	if err := remote.Write(r.ref(t, "team/app:v1"), img); err != nil {
		t.Fatal(err)
	}
	// The same image again, by another tag: already signed, not signed twice.
	if err := remote.Write(r.ref(t, "team/app:v1-again"), img); err != nil {
		t.Fatal(err)
	}
	sigImg, err := remote.Image(r.ref(t, "team/app:sha256-"+d.Hex+".sig"))
	if err != nil {
		t.Fatalf("no signature manifest: %v", err)
	}
	m, err := sigImg.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != "application/vnd.dev.cosign.simplesigning.v1+json" {
		t.Fatalf("signature manifest layers %+v", m.Layers)
	}
	layers, _ := sigImg.Layers()
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := io.ReadAll(rc)
	rc.Close()
	var ss struct {
		Critical struct {
			Identity struct {
				DockerReference string `json:"docker-reference"`
			} `json:"identity"`
			Image struct {
				DockerManifestDigest string `json:"docker-manifest-digest"`
			} `json:"image"`
			Type string `json:"type"`
		} `json:"critical"`
	}
	if err := json.Unmarshal(payload, &ss); err != nil {
		t.Fatal(err)
	}
	if ss.Critical.Image.DockerManifestDigest != d.String() || ss.Critical.Type != "cosign container image signature" ||
		ss.Critical.Identity.DockerReference != r.host+"/team/app" {
		t.Fatalf("payload %s", payload)
	}
	sig, err := base64.StdEncoding.DecodeString(m.Layers[0].Annotations["dev.cosignproject.cosign/signature"])
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(payload)
	if !ecdsa.VerifyASN1(&key.PublicKey, sum[:], sig) {
		t.Fatal("the signature does not verify with the key")
	}
	if signs != 1 {
		t.Fatalf("signed %d times, want once (the signature manifest itself is never signed)", signs)
	}
}
