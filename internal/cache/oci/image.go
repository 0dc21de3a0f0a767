package oci

import (
	"archive/tar"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Image annotations set by Build, as ko sets them.
const (
	AnnotationBaseName   = "org.opencontainers.image.base.name"
	AnnotationBaseDigest = "org.opencontainers.image.base.digest"
)

// BinaryPlatform reads the platform a Linux ELF executable runs on. Build layers only such
// binaries: that is what it can check against the base image.
func BinaryPlatform(file string) (v1.Platform, error) {
	f, err := elf.Open(file)
	if err != nil {
		return v1.Platform{}, fmt.Errorf("oci: %s is not a Linux ELF executable (%v): build it with GOOS=linux", file, err)
	}
	defer f.Close()
	arch := map[elf.Machine]string{
		elf.EM_X86_64: "amd64", elf.EM_AARCH64: "arm64", elf.EM_386: "386", elf.EM_ARM: "arm",
		elf.EM_RISCV: "riscv64", elf.EM_S390: "s390x", elf.EM_PPC64: "ppc64le", elf.EM_LOONGARCH: "loong64",
	}[f.Machine]
	if f.Machine == elf.EM_PPC64 && f.ByteOrder.String() != "LittleEndian" {
		arch = "ppc64"
	}
	if arch == "" {
		return v1.Platform{}, fmt.Errorf("oci: %s is built for %s, which paved does not map to an OCI platform", file, f.Machine)
	}
	return v1.Platform{OS: "linux", Architecture: arch}, nil
}

// BaseFromLayout picks the image for platform from an OCI image layout directory (what
// `crane pull --format=oci`, `skopeo copy oci:` or `docker buildx --output type=oci` write). A
// layout holding a single image without platform data is used as is, and checked by Build.
func BaseFromLayout(dir string, platform v1.Platform) (v1.Image, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("oci: %s is not an OCI image layout (no index.json / oci-layout): %w", dir, err)
	}
	img, err := pickImage(idx, platform, 0)
	if err != nil {
		return nil, fmt.Errorf("oci: base layout %s: %w", dir, err)
	}
	return img, nil
}

// pickImage walks an index (and nested indexes) for the image of platform.
func pickImage(idx v1.ImageIndex, platform v1.Platform, depth int) (v1.Image, error) {
	if depth > 4 {
		return nil, errors.New("indexes nest too deep")
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var seen []string
	var only v1.Image
	images := 0
	for _, d := range im.Manifests {
		switch {
		case d.MediaType.IsIndex():
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return nil, err
			}
			if img, err := pickImage(child, platform, depth+1); err == nil {
				return img, nil
			}
		case d.MediaType.IsImage():
			images++
			if d.Platform == nil {
				if only, err = idx.Image(d.Digest); err != nil {
					return nil, err
				}
				continue
			}
			if d.Platform.Satisfies(platform) {
				return idx.Image(d.Digest)
			}
			seen = append(seen, d.Platform.String())
		}
	}
	if images == 1 && only != nil {
		return only, nil
	}
	return nil, fmt.Errorf("no image for %s (it has: %s): use a base image for the binary's platform", platform, strings.Join(seen, ", "))
}

// BaseFromRemote fetches the image for platform from a registry (an index is resolved to the
// platform's image).
func BaseFromRemote(ctx context.Context, ref name.Reference, platform v1.Platform) (v1.Image, error) {
	img, err := remote.Image(ref, append(remoteOptions(ctx), remote.WithPlatform(platform))...)
	if err != nil {
		return nil, fmt.Errorf("oci: fetch base image %s: %w", ref, err)
	}
	return img, nil
}

// BuildParams says which binary to layer onto which base.
type BuildParams struct {
	Base     v1.Image // from BaseFromLayout or BaseFromRemote; nil: an empty image (scratch)
	BaseName string   // recorded as org.opencontainers.image.base.name when set
	Binary   string   // a Linux ELF executable
	// Path of the binary in the image. Default /app/<base name of Binary>.
	Path string
	// Entrypoint of the image. Default [Path]. The base's Cmd is cleared, as ko does.
	Entrypoint  []string
	Env         []string          // KEY=VALUE added to the base's environment
	Annotations map[string]string // on the manifest, beside the base annotations
}

// epoch is the time of every file and the image: no clock in the output, so building the
// same binary onto the same base gives the same digest.
var epoch = time.Unix(0, 0).UTC()

// Build returns the base image with one more layer holding the binary, and the config's
// entrypoint set to it — ko's build without ko's Go compilation: the caller builds the binary.
// The layer's media type follows the base (OCI or Docker) so the manifest stays consistent.
func Build(p BuildParams) (v1.Image, error) {
	plat, err := BinaryPlatform(p.Binary)
	if err != nil {
		return nil, err
	}
	base := p.Base
	if base == nil {
		base = mutate.MediaType(empty.Image, types.OCIManifestSchema1)
		base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
		if base, err = mutate.ConfigFile(base, &v1.ConfigFile{OS: plat.OS, Architecture: plat.Architecture, RootFS: v1.RootFS{Type: "layers"}}); err != nil {
			return nil, err
		}
	}
	cf, err := base.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("oci: read the base image's config: %w", err)
	}
	if cf.Architecture != "" && cf.Architecture != plat.Architecture || cf.OS != "" && cf.OS != plat.OS {
		return nil, fmt.Errorf("oci: %s is built for %s/%s but the base image is %s/%s: build with GOOS=%s GOARCH=%s or pick a base for %s/%s",
			p.Binary, plat.OS, plat.Architecture, cf.OS, cf.Architecture, cf.OS, cf.Architecture, plat.OS, plat.Architecture)
	}
	if p.Path == "" {
		p.Path = "/app/" + path.Base(p.Binary)
	}
	if !path.IsAbs(p.Path) || path.Clean(p.Path) != p.Path || p.Path == "/" {
		return nil, fmt.Errorf("oci: image path %q must be a clean absolute file path such as /app/server", p.Path)
	}
	if len(p.Entrypoint) == 0 {
		p.Entrypoint = []string{p.Path}
	}
	mt, err := base.MediaType()
	if err != nil {
		return nil, err
	}
	layerType := types.OCILayer
	if mt == types.DockerManifestSchema2 {
		layerType = types.DockerLayer
	}
	binary, target := p.Binary, p.Path
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return binaryTar(binary, target) },
		tarball.WithMediaType(layerType))
	if err != nil {
		return nil, fmt.Errorf("oci: layer %s: %w", p.Binary, err)
	}
	img, err := mutate.Append(base, mutate.Addendum{
		Layer: layer, MediaType: layerType,
		History: v1.History{CreatedBy: "paved image build: " + p.Path, Created: v1.Time{Time: epoch}},
	})
	if err != nil {
		return nil, err
	}
	cfg := cf.Config.DeepCopy()
	cfg.Entrypoint = p.Entrypoint
	cfg.Cmd = nil
	cfg.Env = append(cfg.Env, p.Env...)
	if img, err = mutate.Config(img, *cfg); err != nil {
		return nil, err
	}
	if img, err = mutate.CreatedAt(img, v1.Time{Time: epoch}); err != nil {
		return nil, err
	}
	ann := map[string]string{}
	if p.BaseName != "" && p.Base != nil {
		d, err := p.Base.Digest()
		if err != nil {
			return nil, err
		}
		ann[AnnotationBaseName], ann[AnnotationBaseDigest] = p.BaseName, d.String()
	}
	for k, v := range p.Annotations {
		ann[k] = v
	}
	if len(ann) > 0 && mt != types.DockerManifestSchema2 {
		img = mutate.Annotations(img, ann).(v1.Image)
	}
	return img, nil
}

// binaryTar streams a tar of the binary at target, with its parent directories, owned by root,
// mode 0755, dated the epoch.
func binaryTar(binary, target string) (io.ReadCloser, error) {
	f, err := os.Open(binary)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() {
		defer f.Close()
		tw := tar.NewWriter(pw)
		err := func() error {
			var dirs []string
			for d := path.Dir(target); d != "/"; d = path.Dir(d) {
				dirs = append([]string{d}, dirs...)
			}
			for _, d := range dirs {
				if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: 0o755, ModTime: epoch}); err != nil {
					return err
				}
			}
			hdr := &tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(target, "/"), Mode: 0o755, Size: fi.Size(), ModTime: epoch}
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if _, err := io.Copy(tw, f); err != nil {
				return err
			}
			return tw.Close()
		}()
		pw.CloseWithError(err)
	}()
	return pr, nil
}

// PushImage writes img to ref and returns its digest.
func PushImage(ctx context.Context, ref name.Reference, img v1.Image) (v1.Hash, error) {
	if err := remote.Write(ref, img, remoteOptions(ctx)...); err != nil {
		return v1.Hash{}, fmt.Errorf("oci: push %s: %w", ref, err)
	}
	return img.Digest()
}
