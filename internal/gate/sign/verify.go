package sign

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// Why Verify refuses an artifact. Each refusal wraps one of these, with a one-line reason.
var (
	// ErrTampered: the bytes do not hash to the digest the artifact was recorded with.
	ErrTampered = errors.New("sign: tampered")
	// ErrUnsigned: no signature, or no provenance, recorded for the digest.
	ErrUnsigned = errors.New("sign: unsigned")
	// ErrUnknownKey: the signature verifies with no trusted key.
	ErrUnknownKey = errors.New("sign: signature by an unknown key")
	// ErrForged: an attestation's DSSE signature does not verify with a trusted key, or its
	// statement does not name this digest, or it is not well-formed.
	ErrForged = errors.New("sign: forged provenance")
	// ErrNotAllowed: the provenance's repository or ref is not one the policy allows.
	ErrNotAllowed = errors.New("sign: not allowed by policy")
)

// IsRefusal says whether err is a refusal (one of the sentinels above) rather than a failure
// to check, such as an unreadable index.
func IsRefusal(err error) bool {
	for _, s := range []error{ErrTampered, ErrUnsigned, ErrUnknownKey, ErrForged, ErrNotAllowed} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// Policy is what an environment accepts beyond a valid signature and provenance.
type Policy struct {
	// Repos are globs over the source repository's full name (acme/payments, acme/*).
	// Default empty: any repository.
	Repos []string `json:"repos,omitempty"`
	// Refs are globs over the source ref. A pattern that starts with refs/ matches the full
	// ref (refs/tags/v*); any other matches a branch name (main, release/*), so a tag never
	// passes as a branch. Default empty: any ref.
	Refs []string `json:"refs,omitempty"`
	// RequireSBOM refuses an artifact without a signed SBOM attestation. Default false.
	RequireSBOM bool `json:"require_sbom,omitempty"`
}

// Validate checks the policy's globs.
func (p Policy) Validate() error {
	for _, g := range append(slices.Clone(p.Repos), p.Refs...) {
		if !doublestar.ValidatePattern(g) {
			return fmt.Errorf("sign: policy pattern %q is not a valid glob", g)
		}
	}
	return nil
}

func (p Policy) allowsRepo(repo string) bool {
	if len(p.Repos) == 0 {
		return true
	}
	for _, g := range p.Repos {
		if ok, _ := doublestar.Match(g, repo); ok {
			return true
		}
	}
	return false
}

func (p Policy) allowsRef(ref string) bool {
	if len(p.Refs) == 0 {
		return true
	}
	branch, isBranch := strings.CutPrefix(ref, "refs/heads/")
	for _, g := range p.Refs {
		var ok bool
		if strings.HasPrefix(g, "refs/") {
			ok, _ = doublestar.Match(g, ref)
		} else if isBranch {
			ok, _ = doublestar.Match(g, branch)
		}
		if ok {
			return true
		}
	}
	return false
}

// KeySet gives the keys to trust; *Keys (the server's store) and *Trust (exported PEM) are
// both one.
type KeySet interface {
	Trust() (*Trust, error)
}

// Trust returns t itself, so that a fixed set of keys is a KeySet.
func (t *Trust) Trust() (*Trust, error) { return t, nil }

// Verifier checks artifacts against the index and the trusted keys.
type Verifier struct {
	Keys  KeySet
	Index *Index
}

// Result is what a successful verification established.
type Result struct {
	Digest string `json:"digest"`
	// KeyID signed the artifact; ProvenanceKeyID signed its provenance.
	KeyID           string      `json:"key_id"`
	ProvenanceKeyID string      `json:"provenance_key_id"`
	Provenance      *Provenance `json:"provenance"`
	// Attestations are the kinds of attestation that verified, provenance included.
	Attestations []string `json:"attestations"`
}

// Verify checks that r's bytes are the artifact digest names, that a trusted key signed the
// digest, that a trusted key signed its provenance and that the provenance names this
// digest, that every other attestation is as sound, and that the provenance's repository and
// ref are allowed by p. A refusal wraps ErrTampered, ErrUnsigned, ErrUnknownKey, ErrForged or
// ErrNotAllowed; other errors are failures to check at all.
func (v *Verifier) Verify(ctx context.Context, digest string, r io.Reader, p Policy) (*Result, error) {
	if v.Keys == nil || v.Index == nil {
		return nil, errors.New("sign: Verifier needs Keys and Index")
	}
	if _, err := parseDigest(digest); err != nil {
		return nil, err
	}
	if r == nil {
		return nil, errors.New("sign: Verify needs the artifact's bytes to hash")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	h := sha256.New()
	if _, err := io.Copy(h, readerCtx{ctx, r}); err != nil {
		return nil, fmt.Errorf("sign: read artifact: %w", err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != digest {
		return nil, fmt.Errorf("%w: the bytes hash to %s, not %s", ErrTampered, got, digest)
	}
	trust, err := v.Keys.Trust()
	if err != nil {
		return nil, err
	}
	rec, err := v.Index.Get(digest)
	if err != nil {
		return nil, err
	}
	if rec.Signature == "" {
		return nil, fmt.Errorf("%w: no signature recorded for %s", ErrUnsigned, digest)
	}
	sig, err := b64(rec.Signature)
	if err != nil {
		return nil, fmt.Errorf("%w: the signature recorded for %s is not base64", ErrUnknownKey, digest)
	}
	res := &Result{Digest: digest}
	if res.KeyID, err = trust.verifyDigest(digest, sig); err != nil {
		return nil, err
	}
	provEnv, ok := rec.Attestations[KindProvenance]
	if !ok {
		return nil, fmt.Errorf("%w: no provenance recorded for %s", ErrUnsigned, digest)
	}
	var payload []byte
	if res.ProvenanceKeyID, payload, err = verifyAttestation(trust, digest, provEnv); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrForged, reason(err))
	}
	if res.Provenance, err = ParseProvenance(payload); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrForged, reason(err))
	}
	if !res.Provenance.Names(digest) {
		return nil, fmt.Errorf("%w: the provenance names %s, not %s", ErrForged, subjectList(res.Provenance.Subjects), digest)
	}
	res.Attestations = []string{KindProvenance}
	kinds := make([]string, 0, len(rec.Attestations))
	for k := range rec.Attestations {
		if k != KindProvenance {
			kinds = append(kinds, k)
		}
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		_, payload, err := verifyAttestation(trust, digest, rec.Attestations[k])
		if err == nil {
			err = statementNames(payload, digest)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s attestation: %s", ErrForged, k, reason(err))
		}
		res.Attestations = append(res.Attestations, k)
	}
	if p.RequireSBOM && rec.Attestations[KindSBOM] == nil {
		return nil, fmt.Errorf("%w: no SBOM attestation recorded for %s, and the policy requires one", ErrUnsigned, digest)
	}
	if !p.allowsRepo(res.Provenance.Repo) {
		return nil, fmt.Errorf("%w: built from repository %q; the environment allows %s", ErrNotAllowed, res.Provenance.Repo, strings.Join(p.Repos, ", "))
	}
	if !p.allowsRef(res.Provenance.Ref) {
		return nil, fmt.Errorf("%w: built from ref %q; the environment allows %s", ErrNotAllowed, res.Provenance.Ref, strings.Join(p.Refs, ", "))
	}
	return res, nil
}

// verifyAttestation checks an envelope's shape, type and signature; the error is the reason
// alone, for the caller to wrap.
func verifyAttestation(trust *Trust, digest string, raw []byte) (string, []byte, error) {
	env, err := ParseEnvelope(raw)
	if err != nil {
		return "", nil, err
	}
	if env.PayloadType != PayloadTypeInToto {
		return "", nil, fmt.Errorf("payload type is %q, want %s", env.PayloadType, PayloadTypeInToto)
	}
	return trust.verifyEnvelope(env)
}

// statementNames checks that an in-toto statement has digest among its subjects.
func statementNames(payload []byte, digest string) error {
	st, err := ParseStatement(payload)
	if err != nil {
		return err
	}
	names := sha256Descriptors(st.GetSubject())
	for _, a := range names {
		if a.Digest == digest {
			return nil
		}
	}
	return fmt.Errorf("the statement names %s, not %s", subjectList(names), digest)
}

// reason is an error's message without this package's prefix, to follow another.
func reason(err error) string { return strings.TrimPrefix(err.Error(), "sign: ") }

func subjectList(as []Artifact) string {
	if len(as) == 0 {
		return "no sha256 subject"
	}
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.Digest
	}
	return strings.Join(out, ", ")
}

// readerCtx stops a long read when ctx ends.
type readerCtx struct {
	ctx context.Context
	r   io.Reader
}

func (r readerCtx) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
