package sign

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Kinds of attestation the index keeps per artifact.
const (
	KindProvenance = "provenance"
	KindSBOM       = "sbom"
)

// File names in an artifact's index directory. The signature file is exactly what
// `cosign verify-blob --signature` reads.
const (
	sigFile      = "artifact.sig"
	envelopeExt  = ".dsse.json"
	indexDirMode = 0o700
)

var kindName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,63}$`)

// Index is the on-disk record of what the control plane vouched for, keyed by artifact
// digest: DIR/sha256/<hex>/ holds artifact.sig and one <kind>.dsse.json per attestation.
// Each file is replaced atomically, so a reader never sees half of one.
type Index struct {
	dir string
}

// OpenIndex opens (creating) an index in dir.
func OpenIndex(dir string) (*Index, error) {
	if dir == "" {
		return nil, errors.New("sign: index dir is required")
	}
	if err := os.MkdirAll(filepath.Join(dir, "sha256"), indexDirMode); err != nil {
		return nil, fmt.Errorf("sign: index: %w", err)
	}
	return &Index{dir: dir}, nil
}

// Dir is the directory of digest's records (whether or not it exists).
func (ix *Index) Dir(digest string) (string, error) {
	if _, err := parseDigest(digest); err != nil {
		return "", err
	}
	return filepath.Join(ix.dir, "sha256", strings.TrimPrefix(digest, "sha256:")), nil
}

// Record is what the index holds for one digest. Envelopes are kept as read, unparsed:
// judging them is verification's work.
type Record struct {
	Digest string
	// Signature is artifact.sig as stored: base64 of the ASN.1 signature; empty when the
	// artifact was never signed.
	Signature string
	// Attestations are the DSSE envelopes by kind (KindProvenance, KindSBOM).
	Attestations map[string][]byte
}

// PutSignature records an artifact's signature.
func (ix *Index) PutSignature(digest string, sig Signature) error {
	return ix.put(digest, sigFile, []byte(sig.Base64()))
}

// PutAttestation records an attestation envelope of an artifact, replacing one of the same
// kind.
func (ix *Index) PutAttestation(digest, kind string, env *Envelope) error {
	if !kindName.MatchString(kind) {
		return fmt.Errorf("sign: attestation kind %q: want lowercase letters, digits and dashes", kind)
	}
	b, err := jsonIndent(env)
	if err != nil {
		return err
	}
	return ix.put(digest, kind+envelopeExt, b)
}

func (ix *Index) put(digest, name string, data []byte) error {
	dir, err := ix.Dir(digest)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, indexDirMode); err != nil {
		return fmt.Errorf("sign: index: %w", err)
	}
	if err := writeAtomic(filepath.Join(dir, name), data, 0o644); err != nil {
		return fmt.Errorf("sign: index: %w", err)
	}
	return nil
}

// Get reads digest's record; a digest never recorded gives an empty record, not an error.
func (ix *Index) Get(digest string) (*Record, error) {
	dir, err := ix.Dir(digest)
	if err != nil {
		return nil, err
	}
	rec := &Record{Digest: digest, Attestations: map[string][]byte{}}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return rec, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sign: index: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case name == sigFile:
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				return nil, fmt.Errorf("sign: index: %w", err)
			}
			rec.Signature = strings.TrimSpace(string(b))
		case strings.HasSuffix(name, envelopeExt) && kindName.MatchString(strings.TrimSuffix(name, envelopeExt)):
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				return nil, fmt.Errorf("sign: index: %w", err)
			}
			rec.Attestations[strings.TrimSuffix(name, envelopeExt)] = b
		}
	}
	return rec, nil
}
