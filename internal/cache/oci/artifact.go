package oci

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Media types and annotation keys of paved's artifacts. The manifest is an OCI 1.1 image
// manifest in the shape `oras push` writes: the empty config, one layer per file titled with
// its path, and the artifact's type in artifactType.
const (
	ArtifactType     = "application/vnd.paved.artifact.v1"
	FileMediaType    = "application/octet-stream"
	EmptyConfigType  = "application/vnd.oci.empty.v1+json"
	AnnotationTitle  = "org.opencontainers.image.title"
	AnnotationSource = "org.opencontainers.image.source"
	AnnotationRev    = "org.opencontainers.image.revision"
	// paved's own: where in paved the artifact was built.
	AnnotationRepo     = "dev.paved.repo"
	AnnotationPipeline = "dev.paved.pipeline"
	AnnotationRun      = "dev.paved.run"
	AnnotationStage    = "dev.paved.stage"
	// AnnotationMode on a layer: the file's permission bits in octal, so a pulled binary runs.
	AnnotationMode = "dev.paved.file.mode"
)

// ErrNotArtifact means a manifest has no titled layers: it is an image or another kind of
// artifact, not files published by Push.
var ErrNotArtifact = errors.New("oci: not a file artifact")

// remoteOptions are the options of every client call: the context, and credentials from the
// Docker config (~/.docker/config.json) for registries other than paved's own.
func remoteOptions(ctx context.Context) []remote.Option {
	return []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
}

// PushParams says what to publish where.
type PushParams struct {
	Ref name.Reference // a tag (immutable once pushed) or a digest
	// Files to publish, one layer each. A relative path inside the working directory is the
	// layer's title as written (so Pull recreates it); any other path is titled by its base name.
	Files        []string
	Annotations  map[string]string // on the manifest
	ArtifactType string            // default ArtifactType
	// Subject, when set, attaches the artifact to another manifest (an SBOM or signature to
	// an image); the registry lists it under the subject's referrers.
	Subject *v1.Descriptor
}

// rawManifest is a manifest as bytes, for remote.Put.
type rawManifest struct {
	body      []byte
	mediaType types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.body, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mediaType, nil }

// Push uploads files as one artifact and returns the manifest's digest. The manifest has no
// timestamp, so the same files with the same annotations give the same digest: pushing them
// again under the same tag succeeds.
func Push(ctx context.Context, p PushParams) (v1.Hash, error) {
	if len(p.Files) == 0 {
		return v1.Hash{}, errors.New("oci: no files to push: name at least one")
	}
	if p.ArtifactType == "" {
		p.ArtifactType = ArtifactType
	}
	opts := remoteOptions(ctx)
	repo := p.Ref.Context()
	empty := static.NewLayer([]byte("{}"), EmptyConfigType)
	if err := remote.WriteLayer(repo, empty, opts...); err != nil {
		return v1.Hash{}, fmt.Errorf("oci: push the config to %s: %w", repo, err)
	}
	emptyDigest, _ := empty.Digest()
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  p.ArtifactType,
		Config:        v1.Descriptor{MediaType: EmptyConfigType, Digest: emptyDigest, Size: 2, Data: []byte("{}")},
		Layers:        []v1.Descriptor{},
		Annotations:   p.Annotations,
		Subject:       p.Subject,
	}
	titles := map[string]string{}
	for _, f := range p.Files {
		title := filepath.ToSlash(filepath.Clean(f))
		if !filepath.IsLocal(f) {
			title = filepath.Base(f)
		}
		if other, dup := titles[title]; dup {
			return v1.Hash{}, fmt.Errorf("oci: %s and %s would both be pulled as %q: push them in separate artifacts or from their directory", other, f, title)
		}
		titles[title] = f
		l, err := newFileLayer(f)
		if err != nil {
			return v1.Hash{}, err
		}
		if err := remote.WriteLayer(repo, l, opts...); err != nil {
			return v1.Hash{}, fmt.Errorf("oci: push %s to %s: %w", f, repo, err)
		}
		m.Layers = append(m.Layers, v1.Descriptor{
			MediaType: FileMediaType, Digest: l.digest, Size: l.size,
			Annotations: map[string]string{AnnotationTitle: title, AnnotationMode: fmt.Sprintf("%04o", l.mode)},
		})
	}
	body, err := json.Marshal(m)
	if err != nil {
		return v1.Hash{}, err
	}
	h, _, err := v1.SHA256(bytes.NewReader(body))
	if err != nil {
		return v1.Hash{}, err
	}
	if err := remote.Put(p.Ref, rawManifest{body: body, mediaType: types.OCIManifestSchema1}, opts...); err != nil {
		return v1.Hash{}, fmt.Errorf("oci: push the manifest to %s: %w", p.Ref, err)
	}
	return h, nil
}

// fileLayer is a file on disk as a layer blob, read (not held in memory) for each upload.
type fileLayer struct {
	path   string
	digest v1.Hash
	size   int64
	mode   fs.FileMode
}

var _ v1.Layer = (*fileLayer)(nil)

func newFileLayer(p string) (*fileLayer, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("oci: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("oci: %s is not a regular file: push files (tar a directory first)", p)
	}
	h, n, err := v1.SHA256(f)
	if err != nil {
		return nil, fmt.Errorf("oci: read %s: %w", p, err)
	}
	return &fileLayer{path: p, digest: h, size: n, mode: fi.Mode().Perm()}, nil
}

func (l *fileLayer) Digest() (v1.Hash, error)             { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)             { return l.digest, nil }
func (l *fileLayer) Size() (int64, error)                 { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error)  { return FileMediaType, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)   { return os.Open(l.path) }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) { return os.Open(l.path) }

// PullParams says what to fetch and where to put it.
type PullParams struct {
	Ref name.Reference // tag or digest
	Dir string         // files are written under it by their titles; created if missing
}

// Pulled describes a fetched artifact.
type Pulled struct {
	Digest       v1.Hash
	ArtifactType string
	Annotations  map[string]string
	Files        []string // titles, sorted, as written under Dir
}

// Pull fetches an artifact pushed by Push (or by `oras push`) and writes each titled layer to
// Dir/<title>. Titles that would leave Dir are refused; every file is checked against its
// digest before it is renamed into place.
func Pull(ctx context.Context, p PullParams) (Pulled, error) {
	opts := remoteOptions(ctx)
	desc, err := remote.Get(p.Ref, opts...)
	if err != nil {
		return Pulled{}, fmt.Errorf("oci: fetch %s: %w", p.Ref, err)
	}
	if desc.MediaType.IsIndex() {
		return Pulled{}, fmt.Errorf("oci: %s is an image index, not an artifact: pull one of its manifests by digest", p.Ref)
	}
	m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		return Pulled{}, fmt.Errorf("oci: %s: %w", p.Ref, err)
	}
	out := Pulled{Digest: desc.Digest, ArtifactType: m.ArtifactType, Annotations: m.Annotations}
	if out.ArtifactType == "" {
		out.ArtifactType = string(m.Config.MediaType)
	}
	for _, l := range m.Layers {
		title := l.Annotations[AnnotationTitle]
		if title == "" {
			continue
		}
		rel := filepath.FromSlash(path.Clean(title))
		if !filepath.IsLocal(rel) {
			return out, fmt.Errorf("oci: %s has a layer titled %q, outside the output directory: refusing to write it", p.Ref, title)
		}
		mode := fs.FileMode(0o644)
		if m, err := strconv.ParseUint(l.Annotations[AnnotationMode], 8, 32); err == nil {
			mode = fs.FileMode(m) & 0o777
		}
		if err := pullBlob(p.Ref.Context().Digest(l.Digest.String()), l.Digest, filepath.Join(p.Dir, rel), mode, opts); err != nil {
			return out, err
		}
		out.Files = append(out.Files, filepath.ToSlash(rel))
	}
	if len(out.Files) == 0 {
		return out, fmt.Errorf("%w: %s has no layers titled %s; pull images with crane, docker or podman", ErrNotArtifact, p.Ref, AnnotationTitle)
	}
	sort.Strings(out.Files)
	return out, nil
}

func pullBlob(ref name.Digest, want v1.Hash, dst string, mode fs.FileMode, opts []remote.Option) error {
	l, err := remote.Layer(ref, opts...)
	if err != nil {
		return fmt.Errorf("oci: fetch %s: %w", ref, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return fmt.Errorf("oci: fetch %s: %w", ref, err)
	}
	defer rc.Close()
	return atomicWrite(dst, func(f *os.File) error {
		hash := sha256.New()
		if _, err := io.Copy(io.MultiWriter(f, hash), rc); err != nil {
			return fmt.Errorf("oci: fetch %s: %w", ref, err)
		}
		if got := hex.EncodeToString(hash.Sum(nil)); got != want.Hex {
			return fmt.Errorf("oci: %s arrived with digest sha256:%s: the registry's copy is damaged; push it again", ref, got)
		}
		return f.Chmod(mode)
	})
}
