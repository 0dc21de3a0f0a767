package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/paved/paved/internal/deploy"
	"github.com/paved/paved/internal/execute"
	"github.com/paved/paved/internal/gate/sign"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/schedule"
)

// supplyChain signs what stages produce and verifies it before every deployment
// (docs/supply-chain.md): the server's side of internal/gate/sign.
type supplyChain struct {
	signer   *sign.Signer
	verifier *sign.Verifier
	policies map[string]sign.Policy // by environment; "*" for every environment not named
}

// newSupplyChain opens the data dir's keys (making the first on first start) and parses
// --deploy-allow ENV=REPOGLOB[@REFGLOB] flags into per-environment policies.
func newSupplyChain(data string, allow []string) (*supplyChain, error) {
	keys, index, err := openSigning(data)
	if err != nil {
		return nil, err
	}
	sc := &supplyChain{
		signer:   &sign.Signer{Keys: keys, Index: index},
		verifier: &sign.Verifier{Keys: keys, Index: index},
		policies: map[string]sign.Policy{},
	}
	for _, a := range allow {
		env, rule, ok := strings.Cut(a, "=")
		repo, ref, _ := strings.Cut(rule, "@")
		if !ok || env == "" || repo == "" {
			return nil, usageErr("--deploy-allow %q: want ENV=REPO[@REF] with globs, e.g. prod=acme/*@main (ENV * for every environment)", a)
		}
		p := sc.policies[env]
		p.Repos = append(p.Repos, repo)
		if ref != "" {
			p.Refs = append(p.Refs, ref)
		}
		if err := p.Validate(); err != nil {
			return nil, usageErr("--deploy-allow %q: %v", a, err)
		}
		sc.policies[env] = p
	}
	return sc, nil
}

// signPayload signs bytes with the active key (ECDSA over their SHA-256, ASN.1): the
// registry's cosign signatures of pushed manifests (oci.Config.Sign).
func (sc *supplyChain) signPayload(payload []byte) ([]byte, error) {
	sum := sha256.Sum256(payload)
	sig, err := sc.signer.Keys.SignDigest(context.Background(), "sha256:"+hex.EncodeToString(sum[:]))
	return sig.Sig, err
}

// attest signs a stage's file artifacts with provenance built from the run's record
// (schedule.Config.Attest).
func (sc *supplyChain) attest(ctx context.Context, p schedule.AttestParams) error {
	b := sign.StageBuild(p.Info, p.RunID, p.Stage, p.Attempt, p.Started, p.Finished, p.Inputs, "")
	for _, a := range p.Outputs {
		if a.Type != run.ArtifactFile {
			continue
		}
		if err := sc.signer.Attest(ctx, sign.Artifact{Name: a.Path, Digest: a.Digest}, b); err != nil {
			return fmt.Errorf("%s: %w", a.Path, err)
		}
	}
	return nil
}

// verify checks an artifact before it is deployed to an environment (deploy.Config.Verify).
func (sc *supplyChain) verify(ctx context.Context, environment, digest string, r io.Reader) error {
	p, ok := sc.policies[environment]
	if !ok {
		p = sc.policies["*"]
	}
	_, err := sc.verifier.Verify(ctx, digest, r, p)
	if sign.IsRefusal(err) {
		return errors.Join(deploy.ErrRefused, err)
	}
	return err
}

// sbomAttached attaches the run's SBOM (a CycloneDX artifact of an upstream stage, as
// gate/sbom stores it) as a signed attestation to every other file a deploy stage is given,
// before the deployment verifies them: the deployed binary then carries the SBOM of the
// commit it was built from.
type sbomAttached struct {
	next  schedule.Kind
	sc    *supplyChain
	blobs interface {
		Open(string) (*os.File, error)
	}
}

func (k sbomAttached) Run(ctx context.Context, job schedule.KindJob, rec schedule.KindRecorder) (schedule.KindResult, error) {
	var boms, files []execute.Artifact
	for _, a := range job.ArtifactsIn {
		switch {
		case !a.Mode.IsRegular() || a.Digest == "":
		case strings.HasSuffix(a.Path, ".cdx.json"):
			boms = append(boms, a)
		default:
			files = append(files, a)
		}
	}
	if len(boms) == 1 {
		bom, err := k.read(boms[0].Digest)
		if err != nil {
			return schedule.KindResult{}, fmt.Errorf("read the SBOM %s: %w", boms[0].Path, err)
		}
		for _, f := range files {
			if err := k.sc.signer.AttestSBOM(ctx, sign.Artifact{Name: f.Path, Digest: f.Digest}, bom); err != nil {
				return schedule.KindResult{}, fmt.Errorf("attach the SBOM to %s: %w", f.Path, err)
			}
		}
		if len(files) > 0 {
			rec.Log(fmt.Sprintf("paved: SBOM %s attached to %d artifact(s) as a signed attestation", boms[0].Path, len(files)))
		}
	}
	return k.next.Run(ctx, job, rec)
}

func (k sbomAttached) read(digest string) ([]byte, error) {
	f, err := k.blobs.Open(digest)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 64<<20))
	if err != nil {
		return nil, err
	}
	if sum := sha256.Sum256(b); "sha256:"+hex.EncodeToString(sum[:]) != digest {
		return nil, fmt.Errorf("its bytes do not hash to %s", digest)
	}
	return b, nil
}
