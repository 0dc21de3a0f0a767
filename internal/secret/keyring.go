package secret

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// KeySize is the size of an AES-256 key.
const KeySize = 32

var (
	// ErrUnknownKey: a ciphertext names a key the keyring does not hold.
	ErrUnknownKey = errors.New("secret: the key this secret was sealed with is not in the keyring")
	// ErrBadKey: a key file or PAVED_SECRET_KEY does not hold valid keys.
	ErrBadKey = errors.New("secret: bad key")
)

// Key is one AES-256 key and its id.
type Key struct {
	ID  string
	Raw []byte
}

// NewKey makes a random key.
func NewKey() (Key, error) {
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return Key{}, fmt.Errorf("secret: new key: %w", err)
	}
	return keyOf(raw), nil
}

// keyOf names a key by its hash, so the same key always has the same id whether it comes
// from a file or the environment.
func keyOf(raw []byte) Key {
	sum := sha256.Sum256(raw)
	return Key{ID: hex.EncodeToString(sum[:8]), Raw: raw}
}

// Keyring holds the keys secrets may be sealed under; the first is current (new secrets are
// sealed with it). A keyring from a file re-reads the file when it changes, so that a server
// picks up a key rotated by `paved secrets rotate-key` while it runs. Safe for concurrent use.
type Keyring struct {
	path string // "" when the keys came from the environment

	mu    sync.Mutex
	keys  []Key
	aeads map[string]cipher.AEAD
	file  os.FileInfo // what was read, to notice a replaced file
}

// NewKeyring makes a keyring of the given keys, the first current.
func NewKeyring(keys ...Key) (*Keyring, error) {
	k := &Keyring{}
	if err := k.set(keys); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *Keyring) set(keys []Key) error {
	if len(keys) == 0 {
		return fmt.Errorf("%w: no keys", ErrBadKey)
	}
	aeads := map[string]cipher.AEAD{}
	for _, key := range keys {
		if len(key.Raw) != KeySize {
			return fmt.Errorf("%w: key %s is %d bytes, want %d", ErrBadKey, key.ID, len(key.Raw), KeySize)
		}
		block, err := aes.NewCipher(key.Raw)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadKey, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadKey, err)
		}
		aeads[key.ID] = aead
	}
	k.keys, k.aeads = keys, aeads
	return nil
}

// ParseKeys reads PAVED_SECRET_KEY's form: base64 (standard or URL-safe, padded or not)
// 32-byte keys separated by commas, the first one current.
func ParseKeys(s string) ([]Key, error) {
	var keys []Key
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		raw, err := decodeKey(part)
		if err != nil {
			return nil, fmt.Errorf("%w: key %d of PAVED_SECRET_KEY: %v (want base64 of %d random bytes: head -c %d /dev/urandom | base64)",
				ErrBadKey, i+1, err, KeySize, KeySize)
		}
		keys = append(keys, keyOf(raw))
	}
	return keys, nil
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err := enc.DecodeString(s); err == nil {
			if len(raw) != KeySize {
				return nil, fmt.Errorf("it decodes to %d bytes", len(raw))
			}
			return raw, nil
		}
	}
	return nil, errors.New("it is not base64")
}

// FromEnv makes a keyring of PAVED_SECRET_KEY's value.
func FromEnv(value string) (*Keyring, error) {
	keys, err := ParseKeys(value)
	if err != nil {
		return nil, err
	}
	return NewKeyring(keys...)
}

// OpenFile opens the key file at path, creating it (mode 0600, one new key) when it does
// not exist.
func OpenFile(path string) (*Keyring, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		key, err := NewKey()
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("secret: create key file: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			_, err = f.Write(formatKeys([]Key{key}))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil && !errors.Is(err, os.ErrExist) { // another process made it first: read theirs
			return nil, fmt.Errorf("secret: create key file %s: %w", path, err)
		}
	}
	k := &Keyring{path: path}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.reloadLocked(); err != nil {
		return nil, err
	}
	return k, nil
}

// reloadLocked reads the key file again if it changed since it was read.
func (k *Keyring) reloadLocked() error {
	if k.path == "" {
		return nil
	}
	fi, err := os.Stat(k.path)
	if err != nil {
		return fmt.Errorf("secret: key file: %w", err)
	}
	if k.keys != nil && os.SameFile(fi, k.file) && fi.ModTime().Equal(k.file.ModTime()) && fi.Size() == k.file.Size() {
		return nil
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%w: key file %s has mode %v: others may read it; chmod 600 %s", ErrBadKey, k.path, fi.Mode().Perm(), k.path)
	}
	b, err := os.ReadFile(k.path)
	if err != nil {
		return fmt.Errorf("secret: key file: %w", err)
	}
	keys, err := parseKeyFile(k.path, b)
	if err != nil {
		return err
	}
	if err := k.set(keys); err != nil {
		return fmt.Errorf("key file %s: %w", k.path, err)
	}
	k.file = fi
	return nil
}

// parseKeyFile reads "ID BASE64" lines; blank lines and # comments are skipped.
func parseKeyFile(path string, b []byte) ([]Key, error) {
	var keys []Key
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, enc, ok := strings.Cut(line, " ")
		if !ok {
			return nil, fmt.Errorf("%w: %s:%d: want \"ID BASE64-KEY\" (a key of %d bytes)", ErrBadKey, path, n, KeySize)
		}
		raw, err := decodeKey(strings.TrimSpace(enc))
		if err != nil {
			return nil, fmt.Errorf("%w: %s:%d: the key: %v, want base64 of %d bytes", ErrBadKey, path, n, err, KeySize)
		}
		key := keyOf(raw)
		if key.ID != id {
			return nil, fmt.Errorf("%w: %s:%d: id %s does not match its key (want %s): was the line edited?", ErrBadKey, path, n, id, key.ID)
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: %s has no keys; delete it to have a new one made (secrets sealed with the old key are then lost)", ErrBadKey, path)
	}
	return keys, nil
}

func formatKeys(keys []Key) []byte {
	var b bytes.Buffer
	b.WriteString("# paved secret keys: the first is current; the others are kept readable until rotation ends.\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s %s\n", k.ID, base64.StdEncoding.EncodeToString(k.Raw))
	}
	return b.Bytes()
}

// WriteKeyFile replaces the key file at path with keys, atomically (a reader sees the old
// file or the new one), mode 0600.
func WriteKeyFile(path string, keys []Key) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".secret-key-*")
	if err != nil {
		return fmt.Errorf("secret: write key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err == nil {
		_, err = tmp.Write(formatKeys(keys))
		if err == nil {
			err = tmp.Sync()
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("secret: write key file %s: %w", path, err)
	}
	return nil
}

// Path is the key file the keyring reads, or "" for keys from the environment.
func (k *Keyring) Path() string { return k.path }

// Keys returns the keys, the current one first.
func (k *Keyring) Keys() ([]Key, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.reloadLocked(); err != nil {
		return nil, err
	}
	return append([]Key(nil), k.keys...), nil
}

// Seal encrypts plaintext under the current key with additional data ad; it returns the
// key's id and nonce||ciphertext.
func (k *Keyring) Seal(plaintext, ad []byte) (string, []byte, error) {
	k.mu.Lock()
	if err := k.reloadLocked(); err != nil {
		k.mu.Unlock()
		return "", nil, err
	}
	id := k.keys[0].ID
	aead := k.aeads[id]
	k.mu.Unlock()
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", nil, fmt.Errorf("secret: seal: %w", err)
	}
	return id, aead.Seal(nonce, nonce, plaintext, ad), nil
}

// Open decrypts what Seal returned.
func (k *Keyring) Open(keyID string, sealed, ad []byte) ([]byte, error) {
	k.mu.Lock()
	aead, ok := k.aeads[keyID]
	if !ok {
		// A key rotated in by another process since the file was read.
		if err := k.reloadLocked(); err != nil {
			k.mu.Unlock()
			return nil, err
		}
		aead, ok = k.aeads[keyID]
	}
	k.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w (key %s): restore the key file or PAVED_SECRET_KEY that holds it, or set the secret again", ErrUnknownKey, keyID)
	}
	n := aead.NonceSize()
	if len(sealed) < n+aead.Overhead() {
		return nil, errors.New("secret: open: ciphertext too short")
	}
	out, err := aead.Open(nil, sealed[:n], sealed[n:], ad)
	if err != nil {
		return nil, fmt.Errorf("secret: open: the ciphertext or its scope was changed: %w", err)
	}
	return out, nil
}
