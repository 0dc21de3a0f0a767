package sign

import (
	"bytes"
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
)

// Files in KeysConfig.Dir.
const (
	keysFile = "keys.json"
	kekFile  = "kek"
)

// sealCipher names how private keys are sealed in keys.json; a later format gets a new name.
const sealCipher = "AES-256-GCM"

// ErrKEK is wrapped by errors about the key-encryption key: missing, malformed, too open, or
// not the one the keys were sealed with.
var ErrKEK = errors.New("sign: key-encryption key")

// KeysConfig configures a key store.
type KeysConfig struct {
	// Dir holds keys.json and, when KEK is nil, the kek file. Required; created 0700.
	Dir string
	// KEK is the 32-byte AES-256 key that seals the private keys (see ParseKEK). Default nil:
	// read from Dir/kek, which is generated (mode 0600) on first start. Passing it from the
	// environment keeps it off the disk that holds the sealed keys.
	KEK []byte
	// Now is the clock that stamps new keys. Default time.Now.
	Now func() time.Time
}

// PublicKey is one key of the store as anyone may see it.
type PublicKey struct {
	ID      string    `json:"id"`     // SHA256:<base64> fingerprint, as ssh-keygen -l prints it
	Active  bool      `json:"active"` // the key that signs now; the others only verify
	Created time.Time `json:"created"`
	PEM     string    `json:"pem"` // "-----BEGIN PUBLIC KEY-----", what cosign --key reads
}

// keyFile is keys.json.
type keyFile struct {
	Version int       `json:"version"`
	Keys    []keyDisk `json:"keys"`
}

type keyDisk struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	Active  bool      `json:"active"`
	Public  string    `json:"public_key"`
	Private sealed    `json:"private_key"`
}

// sealed is a PKCS#8 private key encrypted with the KEK; the key id is the additional data,
// so a sealed key moved to another entry does not open.
type sealed struct {
	Cipher     string `json:"cipher"`
	Nonce      []byte `json:"nonce"`
	Ciphertext []byte `json:"ciphertext"`
}

// Keys is the control plane's key store: one active signing key, older keys kept for
// verification. Its methods are safe for concurrent use; the store notices when another
// process (paved keys rotate) rewrote keys.json and reloads it.
type Keys struct {
	dir  string
	aead cipher.AEAD
	now  func() time.Time

	mu     sync.Mutex
	stamp  fileStamp // of keys.json as loaded
	file   keyFile
	signer signature.Signer
	active PublicKey
	priv   *ecdsa.PrivateKey // the active key, for the tests' plaintext check
	trust  *Trust
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// OpenKeys opens the key store in cfg.Dir, generating the KEK file (without cfg.KEK) and the
// first signing key when there are none.
func OpenKeys(cfg KeysConfig) (*Keys, error) {
	if cfg.Dir == "" {
		return nil, errors.New("sign: KeysConfig.Dir is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("sign: key store: %w", err)
	}
	kek := cfg.KEK
	if kek == nil {
		kekPath := filepath.Join(cfg.Dir, kekFile)
		_, errKeys := os.Stat(filepath.Join(cfg.Dir, keysFile))
		_, errKEK := os.Stat(kekPath)
		if errKeys == nil && errors.Is(errKEK, fs.ErrNotExist) {
			// Keys sealed under a KEK from the environment: a new kek file would only
			// fail to open them, and then stay behind to confuse the next start.
			return nil, fmt.Errorf("%w: %s holds sealed keys but there is no %s: set PAVED_KEY_ENCRYPTION_KEY to the key they were sealed with, or restore the file",
				ErrKEK, filepath.Join(cfg.Dir, keysFile), kekPath)
		}
		var err error
		if kek, err = loadKEK(kekPath); err != nil {
			return nil, err
		}
	}
	if len(kek) != 32 {
		return nil, fmt.Errorf("%w: it is %d bytes, want 32 (AES-256)", ErrKEK, len(kek))
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKEK, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKEK, err)
	}
	k := &Keys{dir: cfg.Dir, aead: aead, now: cfg.Now}
	k.mu.Lock()
	defer k.mu.Unlock()
	err = k.loadLocked()
	if errors.Is(err, fs.ErrNotExist) || (err == nil && k.signer == nil) {
		_, err = k.rotateLocked() // first start, or the active key was removed
	}
	if err != nil {
		return nil, err
	}
	return k, nil
}

// ParseKEK reads a key-encryption key as given in the environment: 64 hex digits or the
// base64 of 32 bytes (what `openssl rand -base64 32` prints).
func ParseKEK(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && len(b) == 32 {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == 32 {
			return b, nil
		}
	}
	return nil, fmt.Errorf("%w: want 32 bytes written as 64 hex digits or base64 (make one with: openssl rand -base64 32)", ErrKEK)
}

// loadKEK reads the KEK file, creating it on first start. A file others can read is refused
// rather than used: it would unseal every key.
func loadKEK(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		kek := make([]byte, 32)
		if _, err := rand.Read(kek); err != nil {
			f.Close()
			return nil, err
		}
		_, err = f.WriteString(base64.StdEncoding.EncodeToString(kek) + "\n")
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
			return nil, fmt.Errorf("sign: write %s: %w", path, err)
		}
		return kek, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("sign: create %s: %w", path, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s is open to other users (mode %#o): run chmod 600 %s", ErrKEK, path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	kek, err := ParseKEK(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return kek, nil
}

// refreshLocked reloads keys.json when another process changed it since it was loaded.
func (k *Keys) refreshLocked() error {
	fi, err := os.Stat(filepath.Join(k.dir, keysFile))
	if err != nil {
		return fmt.Errorf("sign: key store: %w", err)
	}
	if (fileStamp{fi.ModTime(), fi.Size()}) == k.stamp {
		return nil
	}
	return k.loadLocked()
}

// loadLocked reads keys.json and opens its active key.
func (k *Keys) loadLocked() error {
	path := filepath.Join(k.dir, keysFile)
	f, err := os.Open(path)
	if err != nil {
		return err // fs.ErrNotExist: first start
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	var kf keyFile
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&kf); err != nil {
		return fmt.Errorf("sign: %s is not a paved key file (%w): restore it from a backup", path, err)
	}
	if kf.Version != 1 {
		return fmt.Errorf("sign: %s has version %d; this paved reads version 1", path, kf.Version)
	}
	var pems [][]byte
	active := -1
	for i, d := range kf.Keys {
		pems = append(pems, []byte(d.Public))
		if d.Active {
			if active >= 0 {
				return fmt.Errorf("sign: %s has two active keys (%s, %s): keep one", path, kf.Keys[active].ID, d.ID)
			}
			active = i
		}
	}
	trust := &Trust{byID: map[string]signature.Verifier{}}
	if len(pems) > 0 {
		if trust, err = NewTrust(pems...); err != nil {
			return fmt.Errorf("sign: %s: %w", path, err)
		}
	}
	for _, d := range kf.Keys {
		if _, ok := trust.byID[d.ID]; !ok {
			return fmt.Errorf("sign: %s: key %s does not match its public key", path, d.ID)
		}
	}
	var signer signature.Signer
	var priv *ecdsa.PrivateKey
	var pub PublicKey
	// With no active key (someone removed it to distrust it) verification goes on with the
	// rest, and signing waits for a rotation (OpenKeys makes one at once).
	if active >= 0 {
		ad := kf.Keys[active]
		if priv, err = k.unseal(ad); err != nil {
			return err
		}
		if signer, err = signature.LoadECDSASigner(priv, crypto.SHA256); err != nil {
			return fmt.Errorf("sign: key %s: %w", ad.ID, err)
		}
		pub = PublicKey{ID: ad.ID, Active: true, Created: ad.Created, PEM: ad.Public}
	}
	k.file, k.trust, k.signer, k.priv, k.active = kf, trust, signer, priv, pub
	k.stamp = fileStamp{fi.ModTime(), fi.Size()}
	return nil
}

func (k *Keys) unseal(d keyDisk) (*ecdsa.PrivateKey, error) {
	if d.Private.Cipher != sealCipher {
		return nil, fmt.Errorf("sign: key %s is sealed with %q; this paved knows %s", d.ID, d.Private.Cipher, sealCipher)
	}
	der, err := k.aead.Open(nil, d.Private.Nonce, d.Private.Ciphertext, []byte(d.ID))
	if err != nil {
		return nil, fmt.Errorf("%w does not open signing key %s: it is not the key the store was sealed with (PAVED_KEY_ENCRYPTION_KEY or %s)",
			ErrKEK, d.ID, filepath.Join(k.dir, kekFile))
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("sign: key %s: %w", d.ID, err)
	}
	priv, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("sign: key %s is a %T, want ECDSA", d.ID, key)
	}
	return priv, nil
}

// Rotate makes a new signing key active. The old keys stay, public, for verification.
func (k *Keys) Rotate(_ context.Context) (PublicKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.refreshLocked(); err != nil {
		return PublicKey{}, err
	}
	return k.rotateLocked()
}

func (k *Keys) rotateLocked() (PublicKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return PublicKey{}, fmt.Errorf("sign: generate key: %w", err)
	}
	pemBytes, err := cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	if err != nil {
		return PublicKey{}, fmt.Errorf("sign: %w", err)
	}
	id, err := keyID(priv.Public())
	if err != nil {
		return PublicKey{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return PublicKey{}, fmt.Errorf("sign: %w", err)
	}
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return PublicKey{}, err
	}
	kf := keyFile{Version: 1}
	for _, d := range k.file.Keys {
		d.Active = false
		kf.Keys = append(kf.Keys, d)
	}
	kf.Keys = append(kf.Keys, keyDisk{
		ID: id, Created: k.now().UTC(), Active: true, Public: string(pemBytes),
		Private: sealed{Cipher: sealCipher, Nonce: nonce, Ciphertext: k.aead.Seal(nil, nonce, der, []byte(id))},
	})
	b, err := json.MarshalIndent(kf, "", "  ")
	if err != nil {
		return PublicKey{}, err
	}
	if err := writeAtomic(filepath.Join(k.dir, keysFile), append(b, '\n'), 0o600); err != nil {
		return PublicKey{}, fmt.Errorf("sign: save keys: %w", err)
	}
	if err := k.loadLocked(); err != nil {
		return PublicKey{}, err
	}
	return k.active, nil
}

// PublicKeys lists every key, oldest first.
func (k *Keys) PublicKeys() ([]PublicKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.refreshLocked(); err != nil {
		return nil, err
	}
	out := make([]PublicKey, len(k.file.Keys))
	for i, d := range k.file.Keys {
		out[i] = PublicKey{ID: d.ID, Active: d.Active, Created: d.Created, PEM: d.Public}
	}
	return out, nil
}

// PEM is the store's public keys as one PEM bundle (see PEMBundle).
func (k *Keys) PEM(activeOnly bool) ([]byte, error) {
	keys, err := k.PublicKeys()
	if err != nil {
		return nil, err
	}
	return PEMBundle(keys, activeOnly), nil
}

// PEMBundle writes keys as PEM, the active key first: cosign's --key reads only the first
// block of a file, so a bundle verifies what the active key signed there, and
// activeOnly gives the one key cosign needs.
func PEMBundle(keys []PublicKey, activeOnly bool) []byte {
	var b bytes.Buffer
	for _, want := range []bool{true, false} {
		if !want && activeOnly {
			break
		}
		for i := len(keys) - 1; i >= 0; i-- {
			if keys[i].Active == want {
				b.WriteString(keys[i].PEM)
			}
		}
	}
	return b.Bytes()
}

// ReadPublicKeys lists the keys of the store in dir without opening it: no key-encryption
// key is needed, so tools that only verify (paved verify, paved keys export) can run
// where the KEK is not.
func ReadPublicKeys(dir string) ([]PublicKey, error) {
	path := filepath.Join(dir, keysFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("sign: no key store at %s: the server makes it on first start (or give the public keys with --key)", dir)
	}
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	var kf keyFile
	if err := json.Unmarshal(b, &kf); err != nil {
		return nil, fmt.Errorf("sign: %s is not a paved key file: %s", path, jsonError(b, err))
	}
	out := make([]PublicKey, len(kf.Keys))
	for i, d := range kf.Keys {
		out[i] = PublicKey{ID: d.ID, Active: d.Active, Created: d.Created, PEM: d.Public}
	}
	return out, nil
}

// Trust is the set of public keys this store verifies with: all of them, old and new.
func (k *Keys) Trust() (*Trust, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.refreshLocked(); err != nil {
		return nil, err
	}
	return k.trust, nil
}

// active returns the signer and its key id.
func (k *Keys) activeSigner() (signature.Signer, string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.refreshLocked(); err != nil {
		return nil, "", err
	}
	if k.signer == nil {
		return nil, "", fmt.Errorf("sign: %s has no active key: make one with paved keys rotate", filepath.Join(k.dir, keysFile))
	}
	return k.signer, k.active.ID, nil
}

// Signature is a blob signature: the ASN.1 DER ECDSA signature over the SHA-256 of the bytes.
// Its base64 is the file `cosign verify-blob --signature` reads.
type Signature struct {
	KeyID string
	Sig   []byte
}

// Base64 is the signature as cosign writes and reads it.
func (s Signature) Base64() string { return base64.StdEncoding.EncodeToString(s.Sig) }

// SignDigest signs an artifact by its "sha256:<hex>" digest. The digest must be one the
// control plane computed itself from the bytes (the artifact store does as it stores them):
// signing a digest a stage reported would sign whatever the stage claims.
func (k *Keys) SignDigest(_ context.Context, digest string) (Signature, error) {
	sum, err := parseDigest(digest)
	if err != nil {
		return Signature{}, err
	}
	signer, id, err := k.activeSigner()
	if err != nil {
		return Signature{}, err
	}
	sig, err := signer.SignMessage(nil, options.WithDigest(sum))
	if err != nil {
		return Signature{}, fmt.Errorf("sign: %w", err)
	}
	return Signature{KeyID: id, Sig: sig}, nil
}

// SignBlob hashes r and signs it; it returns the digest it signed.
func (k *Keys) SignBlob(ctx context.Context, r io.Reader) (string, Signature, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", Signature{}, fmt.Errorf("sign: read blob: %w", err)
	}
	digest := "sha256:" + hex.EncodeToString(h.Sum(nil))
	sig, err := k.SignDigest(ctx, digest)
	return digest, sig, err
}

// SignEnvelope signs payload as a DSSE envelope (the signature is over the DSSE
// pre-authentication encoding of payloadType and payload).
func (k *Keys) SignEnvelope(_ context.Context, payloadType string, payload []byte) (*Envelope, error) {
	signer, id, err := k.activeSigner()
	if err != nil {
		return nil, err
	}
	sig, err := signer.SignMessage(bytes.NewReader(pae(payloadType, payload)))
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return &Envelope{
		PayloadType: payloadType,
		Payload:     base64.StdEncoding.EncodeToString(payload),
		Signatures:  []EnvelopeSignature{{KeyID: id, Sig: base64.StdEncoding.EncodeToString(sig)}},
	}, nil
}

// keyID is the key's SHA-256 fingerprint as ssh-keygen -l prints it ("SHA256:<base64>"),
// the id DSSE verifiers (go-securesystemslib, hence cosign) derive from a public key: an
// envelope whose keyid were anything else would be skipped by them.
func keyID(pub crypto.PublicKey) (string, error) {
	id, err := dsse.SHA256KeyID(pub)
	if err != nil {
		return "", fmt.Errorf("sign: key id: %w", err)
	}
	return id, nil
}

// writeAtomic replaces path with data: readers see the old file or the new one, never part.
func writeAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after a successful rename there is nothing left to remove
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // the rename survives a crash; not every file system supports it
		d.Close()
	}
	return nil
}
