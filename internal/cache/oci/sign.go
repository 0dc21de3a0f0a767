package oci

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Cosign's layout of a signature in a registry: an OCI image manifest tagged
// sha256-<hex>.sig in the signed manifest's repository, one layer a signature, each layer
// the "simple signing" payload naming the digest, with the signature of the payload in an
// annotation. `cosign verify --key cosign.pub --insecure-ignore-tlog REGISTRY/REPO@DIGEST`
// reads it.
const (
	simpleSigningType   = types.MediaType("application/vnd.dev.cosign.simplesigning.v1+json")
	signatureAnnotation = "dev.cosignproject.cosign/signature"
)

// sigTag is the tag of digest h's signature manifest.
func sigTag(h v1.Hash) string { return h.Algorithm + "-" + h.Hex + ".sig" }

// isSignatureRef says whether a manifest put is cosign's own (a signature, attestation or
// SBOM attached by tag), which is never signed again.
func isSignatureRef(ref string, body []byte) bool {
	for _, s := range []string{".sig", ".att", ".sbom"} {
		if strings.HasSuffix(ref, s) {
			return true
		}
	}
	return strings.Contains(string(body), string(simpleSigningType))
}

// attachSignature writes the cosign signature manifest of the manifest h of repo, signed by
// Config.Sign, unless one is tagged already (the tag is immutable; one signature by the
// server is enough). host is what clients call the registry, for the payload's identity.
func (r *Registry) attachSignature(host, repo string, h v1.Hash) error {
	if _, err := os.Stat(r.tagPath(repo, sigTag(h))); err == nil {
		return nil // signed when it was first pushed
	}
	payload, err := json.Marshal(map[string]any{
		"critical": map[string]any{
			"identity": map[string]string{"docker-reference": host + "/" + repo},
			"image":    map[string]string{"docker-manifest-digest": h.String()},
			"type":     "cosign container image signature",
		},
		"optional": nil,
	})
	if err != nil {
		return err
	}
	sig, err := r.cfg.Sign(payload)
	if err != nil {
		return fmt.Errorf("oci: sign %s@%s: %w", repo, h, err)
	}
	layer := blobHash(payload)
	config, err := json.Marshal(map[string]any{
		"architecture": "", "os": "", "created": "0001-01-01T00:00:00Z", "config": map[string]any{},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layer.String()}},
	})
	if err != nil {
		return err
	}
	cfgHash := blobHash(config)
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     types.OCIManifestSchema1,
		"config":        map[string]any{"mediaType": types.OCIConfigJSON, "size": len(config), "digest": cfgHash.String()},
		"layers": []map[string]any{{
			"mediaType": simpleSigningType, "size": len(payload), "digest": layer.String(),
			"annotations": map[string]string{signatureAnnotation: base64.StdEncoding.EncodeToString(sig)},
		}},
	})
	if err != nil {
		return err
	}
	mh := blobHash(manifest)
	for _, b := range []struct {
		h    v1.Hash
		body []byte
	}{{layer, payload}, {cfgHash, config}, {mh, manifest}} {
		if err := r.blobs.write(b.h, b.body); err != nil {
			return err
		}
		if err := r.blobs.link(repo, b.h); err != nil {
			return err
		}
	}
	if err := writeOnce(r.revisionPath(repo, mh), []byte(types.OCIManifestSchema1)); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	var re *regError
	if err := r.tag(repo, sigTag(h), mh); err != nil && !(errors.As(err, &re) && re.code == "DENIED") {
		return err
	}
	return nil
}

func blobHash(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}
