package sign

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"strings"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
)

// Trust is a set of public keys that verification accepts. Build it from the key store
// (Keys.Trust) in the server, or from exported PEM (NewTrust) where only public keys are.
type Trust struct {
	ids  []string // in the order given
	byID map[string]signature.Verifier
}

// NewTrust reads public keys from PEM data, each argument holding one or more
// "PUBLIC KEY" blocks (what GET /api/v1/keys?format=pem and paved keys export write).
func NewTrust(pems ...[]byte) (*Trust, error) {
	t := &Trust{byID: map[string]signature.Verifier{}}
	for _, data := range pems {
		rest := data
		for {
			var block *pem.Block
			block, rest = pem.Decode(rest)
			if block == nil {
				break
			}
			if block.Type != "PUBLIC KEY" {
				return nil, fmt.Errorf("sign: a %q PEM block is not a public key: give PUBLIC KEY blocks only", block.Type)
			}
			pub, err := cryptoutils.UnmarshalPEMToPublicKey(pem.EncodeToMemory(block))
			if err != nil {
				return nil, fmt.Errorf("sign: public key: %w", err)
			}
			if err := t.add(pub); err != nil {
				return nil, err
			}
		}
		if len(bytes.TrimSpace(rest)) > 0 {
			return nil, fmt.Errorf("sign: text that is not PEM follows the keys: give PEM PUBLIC KEY blocks only")
		}
	}
	if len(t.ids) == 0 {
		return nil, fmt.Errorf("sign: no public key in the PEM given: export one with paved keys export")
	}
	return t, nil
}

func (t *Trust) add(pub crypto.PublicKey) error {
	if _, ok := pub.(*ecdsa.PublicKey); !ok {
		return fmt.Errorf("sign: a %T public key: paved signs with ECDSA P-256", pub)
	}
	id, err := keyID(pub)
	if err != nil {
		return err
	}
	if _, dup := t.byID[id]; dup {
		return nil
	}
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return fmt.Errorf("sign: public key %s: %w", id, err)
	}
	t.ids = append(t.ids, id)
	t.byID[id] = v
	return nil
}

// KeyIDs are the trusted keys' ids.
func (t *Trust) KeyIDs() []string { return append([]string(nil), t.ids...) }

// verifyDigest finds the trusted key that made sig over digest ("sha256:<hex>").
func (t *Trust) verifyDigest(digest string, sig []byte) (string, error) {
	sum, err := parseDigest(digest)
	if err != nil {
		return "", err
	}
	for _, id := range t.ids {
		if t.byID[id].VerifySignature(bytes.NewReader(sig), nil, options.WithDigest(sum)) == nil {
			return id, nil
		}
	}
	return "", fmt.Errorf("%w: the signature of %s verifies with none of the %d trusted keys (signed by another key, or altered)",
		ErrUnknownKey, digest, len(t.ids))
}

// verifyEnvelope checks that a trusted key signed the envelope and returns that key's id and
// the payload. A signature that names a key id is checked with that key only.
func (t *Trust) verifyEnvelope(env *Envelope) (string, []byte, error) {
	payload, sigs, err := env.decode()
	if err != nil {
		return "", nil, err
	}
	msg := pae(env.PayloadType, payload)
	var unknown []string
	for i, s := range env.Signatures {
		ids := t.ids
		if s.KeyID != "" {
			if _, ok := t.byID[s.KeyID]; !ok {
				unknown = append(unknown, s.KeyID)
				continue
			}
			ids = []string{s.KeyID}
		}
		for _, id := range ids {
			if t.byID[id].VerifySignature(bytes.NewReader(sigs[i]), bytes.NewReader(msg)) == nil {
				return id, payload, nil
			}
		}
	}
	if len(unknown) == len(env.Signatures) {
		return "", nil, fmt.Errorf("signed by unknown key %s", strings.Join(unknown, ", "))
	}
	return "", nil, fmt.Errorf("bad DSSE signature: it does not verify over this payload with any trusted key")
}

// parseDigest checks a "sha256:<64 lowercase hex>" digest and returns its bytes.
func parseDigest(d string) ([]byte, error) {
	h, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
		return nil, fmt.Errorf("sign: %q is not a digest: want sha256: and 64 lowercase hex digits", d)
	}
	b, _ := hex.DecodeString(h)
	return b, nil
}
