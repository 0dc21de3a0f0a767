package sign

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	intoto "github.com/in-toto/attestation/go/v1"
)

// Signer is the control plane's side: it signs what stages produced and records provenance.
// Call it after the artifact store hashed a stage's artifacts, from the scheduler, never
// from inside a stage.
type Signer struct {
	Keys  *Keys
	Index *Index
	// BuilderID fills Build.BuilderID when that is empty. Default DefaultBuilderID.
	BuilderID string
}

// Attest signs artifact a and records its provenance statement, built from b, as a DSSE
// envelope. The provenance is written before the signature, so an interrupted Attest leaves
// an artifact that verification refuses as unsigned, never one signed without provenance.
func (s *Signer) Attest(ctx context.Context, a Artifact, b Build) error {
	if s.Keys == nil || s.Index == nil {
		return errors.New("sign: Signer needs Keys and Index")
	}
	if b.BuilderID == "" {
		b.BuilderID = s.BuilderID
	}
	st, err := ProvenanceStatement(a, b)
	if err != nil {
		return err
	}
	if err := s.putStatement(ctx, a.Digest, KindProvenance, st); err != nil {
		return err
	}
	sig, err := s.Keys.SignDigest(ctx, a.Digest)
	if err != nil {
		return err
	}
	return s.Index.PutSignature(a.Digest, sig)
}

// AttestSBOM records bom, a CycloneDX JSON document, as a signed attestation of a.
func (s *Signer) AttestSBOM(ctx context.Context, a Artifact, bom []byte) error {
	if s.Keys == nil || s.Index == nil {
		return errors.New("sign: Signer needs Keys and Index")
	}
	st, err := SBOMStatement(a, bom)
	if err != nil {
		return err
	}
	return s.putStatement(ctx, a.Digest, KindSBOM, st)
}

func (s *Signer) putStatement(ctx context.Context, digest, kind string, st *intoto.Statement) error {
	payload, err := MarshalStatement(st)
	if err != nil {
		return err
	}
	env, err := s.Keys.SignEnvelope(ctx, PayloadTypeInToto, payload)
	if err != nil {
		return err
	}
	if err := s.Index.PutAttestation(digest, kind, env); err != nil {
		return fmt.Errorf("sign: record %s of %s: %w", kind, digest, err)
	}
	return nil
}

func jsonIndent(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return append(b, '\n'), nil
}
