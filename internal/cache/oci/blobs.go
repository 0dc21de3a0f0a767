package oci

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// errCorrupt: a stored blob no longer matches its digest.
var errCorrupt = errors.New("oci: blob is damaged on disk")

// diskBlobs stores blobs by digest, shared by every repository (a layer pushed to two
// repositories is stored once). It is go-containerregistry's BlobHandler; unlike that
// package's own disk handler it removes failed uploads, syncs before the rename, and answers
// Stat from the file size: every write was verified against its digest on the way in
// (go-containerregistry wraps the body in a verifying reader), and clients verify on the way
// out, so re-hashing a large layer on every HEAD buys nothing.
type diskBlobs struct {
	dir string
}

var (
	_ registry.BlobHandler     = (*diskBlobs)(nil)
	_ registry.BlobStatHandler = (*diskBlobs)(nil)
	_ registry.BlobPutHandler  = (*diskBlobs)(nil)
)

func (b *diskBlobs) path(h v1.Hash) string { return filepath.Join(b.dir, h.Algorithm, h.Hex) }

func (b *diskBlobs) Stat(_ context.Context, _ string, h v1.Hash) (int64, error) {
	fi, err := os.Stat(b.path(h))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, registry.ErrNotFound
	}
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func (b *diskBlobs) Get(_ context.Context, _ string, h v1.Hash) (io.ReadCloser, error) {
	f, err := os.Open(b.path(h))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, registry.ErrNotFound
	}
	return f, err
}

// Put writes rc under h. rc fails at EOF when the content does not match h; the partial file
// is then removed and nothing is stored.
func (b *diskBlobs) Put(_ context.Context, _ string, h v1.Hash, rc io.ReadCloser) error {
	defer rc.Close()
	if h.Algorithm != "sha256" {
		return fmt.Errorf("oci: digest algorithm %q is not supported: use sha256", h.Algorithm)
	}
	return atomicWrite(b.path(h), func(f *os.File) error {
		_, err := io.Copy(f, rc)
		return err
	})
}

// write stores body (a manifest) by its digest h, already computed by the caller. It always
// writes, so that pushing a manifest again repairs a copy damaged on disk.
func (b *diskBlobs) write(h v1.Hash, body []byte) error {
	return atomicWrite(b.path(h), func(f *os.File) error {
		_, err := f.Write(body)
		return err
	})
}

// read returns a small blob (a manifest), checking it against its digest so a file damaged on
// disk is an error rather than a manifest that pulls the wrong layers.
func (b *diskBlobs) read(h v1.Hash, limit int64) ([]byte, error) {
	f, err := os.Open(b.path(h))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	body, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	if got := hex.EncodeToString(sum[:]); got != h.Hex {
		return nil, fmt.Errorf("%w: %s hashes to sha256:%s", errCorrupt, h, got)
	}
	return body, nil
}

// atomicWrite writes path through a temporary file in its directory: readers see the whole
// file or none.
func atomicWrite(path string, fill func(*os.File) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	err = fill(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}

// writeOnce creates path with content unless it exists (then fs.ErrExist). A hard link from
// a complete temporary file makes creation atomic: no reader sees a half-written file and of
// two writers exactly one wins.
func writeOnce(path string, content []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(content)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Link(f.Name(), path)
}
