package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrDigest is wrapped by errors about a blob whose bytes do not match its digest.
var ErrDigest = errors.New("cache: digest mismatch")

// Blobs is a content-addressed store of immutable files; see the package comment.
type Blobs struct {
	dir string
}

// NewBlobs opens (creating) a blob store in dir.
func NewBlobs(dir string) (*Blobs, error) {
	for _, d := range []string{filepath.Join(dir, "sha256"), filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("cache: blob store: %w", err)
		}
	}
	return &Blobs{dir: dir}, nil
}

// Dir is the store's directory.
func (b *Blobs) Dir() string { return b.dir }

// ParseDigest checks a "sha256:<64 hex>" digest and returns its hex part.
func ParseDigest(d string) (string, error) {
	h, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
		return "", fmt.Errorf("cache: %q is not a digest (want sha256: and 64 lowercase hex digits)", d)
	}
	return h, nil
}

// Path is where the blob of a digest lives (whether or not it exists).
func (b *Blobs) Path(digest string) (string, error) {
	h, err := ParseDigest(digest)
	if err != nil {
		return "", err
	}
	return filepath.Join(b.dir, "sha256", h), nil
}

// Put stores what r yields and returns its digest and size. When a blob with that digest
// exists already, the new copy is dropped: the same digest is never stored twice.
func (b *Blobs) Put(r io.Reader) (digest string, size int64, err error) {
	p, err := b.write(r)
	if err != nil {
		return "", 0, err
	}
	if _, err := p.commit(); err != nil {
		return "", 0, err
	}
	return p.digest, p.size, nil
}

// Open opens a blob for reading. The caller verifies what it reads (Verify) where it
// matters: the store does not rehash on every open.
func (b *Blobs) Open(digest string) (*os.File, error) {
	p, err := b.Path(digest)
	if err != nil {
		return nil, err
	}
	return os.Open(p)
}

// pending is a blob written to tmp and hashed, not yet named.
type pending struct {
	b      *Blobs
	tmp    string
	digest string
	size   int64
}

func (b *Blobs) write(r io.Reader) (*pending, error) {
	f, err := os.CreateTemp(filepath.Join(b.dir, "tmp"), "blob-")
	if err != nil {
		return nil, fmt.Errorf("cache: blob store: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), r)
	if err == nil {
		err = f.Close()
	} else {
		f.Close()
	}
	if err != nil {
		os.Remove(f.Name())
		return nil, fmt.Errorf("cache: write blob: %w", err)
	}
	return &pending{b: b, tmp: f.Name(), digest: "sha256:" + hex.EncodeToString(h.Sum(nil)), size: n}, nil
}

// commit names the blob by its digest; created is false when it existed already.
func (p *pending) commit() (created bool, err error) {
	defer os.Remove(p.tmp)
	final, _ := p.b.Path(p.digest)
	err = os.Link(p.tmp, final)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cache: store blob: %w", err)
	}
	return true, nil
}

func (p *pending) discard() { os.Remove(p.tmp) }

// Verifier hashes what is read through it; Check compares with the expected digest.
type Verifier struct {
	r    io.Reader
	h    hash.Hash
	want string
}

// Verify wraps r so that Check reports whether everything read matched digest.
func Verify(r io.Reader, digest string) *Verifier {
	return &Verifier{r: r, h: sha256.New(), want: digest}
}

func (v *Verifier) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	return n, err
}

// Check reads what is left and reports a mismatch as an error wrapping ErrDigest.
func (v *Verifier) Check() error {
	if _, err := io.Copy(io.Discard, v); err != nil {
		return err
	}
	if got := "sha256:" + hex.EncodeToString(v.h.Sum(nil)); got != v.want {
		return fmt.Errorf("%w: content hashes to %s, want %s", ErrDigest, got, v.want)
	}
	return nil
}
