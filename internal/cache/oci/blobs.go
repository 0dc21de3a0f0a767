package oci

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// errCorrupt: a stored blob no longer matches its digest.
var errCorrupt = errors.New("oci: blob is damaged on disk")

// diskBlobs stores blobs by digest, shared by every repository (a layer pushed to two
// repositories is stored once), and links each blob to the repositories it was pushed to, as
// the distribution registry does: a blob is served in a repository only through its link, so
// knowing a digest does not read another repository's (another team's) layers. It is
// go-containerregistry's BlobHandler; unlike that
// package's own disk handler it removes failed uploads, syncs before the rename, and answers
// Stat from the file size: every write was verified against its digest on the way in
// (go-containerregistry wraps the body in a verifying reader), and clients verify on the way
// out, so re-hashing a large layer on every HEAD buys nothing.
type diskBlobs struct {
	dir   string
	repos string // the registry's repositories directory: links are REPO/_layers/ALG/HEX
}

var (
	_ registry.BlobHandler     = (*diskBlobs)(nil)
	_ registry.BlobStatHandler = (*diskBlobs)(nil)
	_ registry.BlobPutHandler  = (*diskBlobs)(nil)
)

type repoKey struct{}

// withRepo names the repository of a blob request. go-containerregistry passes the handler a
// repository it cuts from the path itself, which for an upload's final PUT ends in
// "/blobs"; the registry's own parse of the path is the one to trust.
func withRepo(ctx context.Context, repo string) context.Context {
	return context.WithValue(ctx, repoKey{}, repo)
}

// repoOf is the repository of a blob request (withRepo), else the one the caller gave.
func repoOf(ctx context.Context, repo string) string {
	if r, ok := ctx.Value(repoKey{}).(string); ok {
		return r
	}
	return repo
}

func (b *diskBlobs) path(h v1.Hash) string { return filepath.Join(b.dir, h.Algorithm, h.Hex) }

func (b *diskBlobs) linkPath(repo string, h v1.Hash) string {
	return filepath.Join(b.repos, filepath.FromSlash(repo), "_layers", h.Algorithm, h.Hex)
}

// link makes h readable in repo.
func (b *diskBlobs) link(repo string, h v1.Hash) error {
	if err := writeOnce(b.linkPath(repo, h), nil); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("oci: link %s into %s: %w", h, repo, err)
	}
	return nil
}

// linked reports whether h was pushed to repo. The empty repo is the registry itself (its
// own reads of manifests): every blob.
func (b *diskBlobs) linked(repo string, h v1.Hash) bool {
	if repo == "" {
		return true
	}
	_, err := os.Stat(b.linkPath(repo, h))
	return err == nil
}

func (b *diskBlobs) Stat(ctx context.Context, repo string, h v1.Hash) (int64, error) {
	if !b.linked(repoOf(ctx, repo), h) {
		return 0, registry.ErrNotFound
	}
	fi, err := os.Stat(b.path(h))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, registry.ErrNotFound
	}
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func (b *diskBlobs) Get(ctx context.Context, repo string, h v1.Hash) (io.ReadCloser, error) {
	if !b.linked(repoOf(ctx, repo), h) {
		return nil, registry.ErrNotFound
	}
	f, err := os.Open(b.path(h))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, registry.ErrNotFound
	}
	return f, err
}

// Put writes rc under h and links it into repo. rc fails at EOF when the content does not
// match h; the partial file is then removed and nothing is stored or linked.
func (b *diskBlobs) Put(ctx context.Context, repo string, h v1.Hash, rc io.ReadCloser) error {
	defer rc.Close()
	if h.Algorithm != "sha256" {
		return fmt.Errorf("oci: digest algorithm %q is not supported: use sha256", h.Algorithm)
	}
	if err := atomicWrite(b.path(h), func(f *os.File) error {
		_, err := io.Copy(f, rc)
		return err
	}); err != nil {
		return err
	}
	return b.link(repoOf(ctx, repo), h)
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

// linksMarker says linkExisting has run over this registry directory.
const linksMarker = ".layer-links-v1"

// linkExisting links the blobs of every stored manifest into its repository, once per
// registry directory: registries written before blobs had links would otherwise stop
// serving their own layers.
func (r *Registry) linkExisting() error {
	marker := filepath.Join(r.blobs.repos, linksMarker)
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	err := filepath.WalkDir(r.blobs.repos, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(r.blobs.repos, path)
		if err != nil {
			return err
		}
		repo, rest, ok := strings.Cut(filepath.ToSlash(rel), "/_manifests/revisions/")
		alg, hex, ok2 := strings.Cut(rest, "/")
		if !ok || !ok2 || strings.Contains(hex, "/") || strings.HasPrefix(hex, ".") {
			return nil
		}
		body, err := r.blobs.read(v1.Hash{Algorithm: alg, Hex: hex}, r.cfg.MaxManifestBytes)
		if err != nil {
			return nil // a damaged manifest stays as it is: serving it reports the damage
		}
		m, err := v1.ParseManifest(bytes.NewReader(body))
		if err != nil {
			return nil // an index: its manifests are linked as revisions of their own
		}
		for _, l := range append([]v1.Descriptor{m.Config}, m.Layers...) {
			if l.Digest.Hex == "" {
				continue
			}
			if err := r.blobs.link(repo, l.Digest); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("oci: link the blobs of existing manifests: %w", err)
	}
	if err := writeOnce(marker, nil); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}
