package main

import (
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/paved/paved/internal/cache/oci"
)

// registryFlags are the flags of the commands that talk to a registry.
type registryFlags struct {
	server string
}

func (f *registryFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.server, "server", envOr("PAVED_SERVER", "http://127.0.0.1:8080"),
		"paved server whose registry (at /v2/) short references name (env PAVED_SERVER)")
}

// ref resolves a reference as docker does: "repo:tag" or "repo@sha256:..." is a repository of
// the paved server's registry; a reference whose first part is a host (has a dot or a port, or
// is localhost) names that registry. strict requires an explicit tag or digest — tags are
// immutable, so an implied "latest" would be a trap.
func (f *registryFlags) ref(s string, strict bool) (name.Reference, error) {
	first, _, hasSlash := strings.Cut(s, "/")
	if hasSlash && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return parseRef(s, strict)
	}
	u, err := url.Parse(f.server)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, usageErr("--server %q is not a URL: write it as http://HOST:PORT", f.server)
	}
	opts := []name.Option{}
	if u.Scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	return parseRef(u.Host+"/"+s, strict, opts...)
}

func parseRef(s string, strict bool, opts ...name.Option) (name.Reference, error) {
	if strict {
		opts = append(opts, name.StrictValidation)
	}
	ref, err := name.ParseReference(s, opts...)
	if err != nil {
		if strict {
			return nil, usageErr("%q is not REPO:TAG or REPO@sha256:DIGEST (%v): name the tag explicitly; tags are immutable", s, err)
		}
		return nil, usageErr("%q is not a reference (%v): write REPO:TAG or REPO@sha256:DIGEST", s, err)
	}
	return ref, nil
}

// parseAnnotations turns k=v flags into a map.
func parseAnnotations(kvs []string, into map[string]string) error {
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return usageErr("--annotation %q is not KEY=VALUE", kv)
		}
		into[k] = v
	}
	return nil
}

// stageAnnotations records where in paved an artifact was made, when the command runs in a
// paved stage (which sets these variables).
func stageAnnotations() map[string]string {
	out := map[string]string{}
	for env, key := range map[string]string{
		"PAVED_SHA": oci.AnnotationRev, "PAVED_REPO": oci.AnnotationRepo, "PAVED_PIPELINE": oci.AnnotationPipeline,
		"PAVED_RUN_ID": oci.AnnotationRun, "PAVED_STAGE": oci.AnnotationStage,
	} {
		if v := os.Getenv(env); v != "" {
			out[key] = v
		}
	}
	return out
}

func artifactCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "artifact",
		Short: "Publish build outputs to an OCI registry (paved's own at /v2/ by default) and fetch them",
	}
	cmd.AddCommand(artifactPushCmd(), artifactPullCmd())
	return cmd
}

func artifactPushCmd() *cobra.Command {
	var (
		rf           registryFlags
		annotations  []string
		artifactType string
	)
	cmd := &cobra.Command{
		Use:   "push [--server URL] REPO:TAG FILE...",
		Short: "Push files as one OCI artifact (ORAS-style); prints REPO@DIGEST",
		Long: `Push files as one OCI artifact: one layer per file, titled with its path, and annotations
on the manifest. Inside a paved stage the revision, repository, pipeline, run and stage are
annotated automatically. Tags are immutable: pushing other content under an existing tag fails;
pushing the same files again succeeds (the digest is reproducible).`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			useRegistryToken(rf.server, tokenOf(cmd))
			ref, err := rf.ref(args[0], true)
			if err != nil {
				return err
			}
			ann := stageAnnotations()
			if err := parseAnnotations(annotations, ann); err != nil {
				return err
			}
			h, err := oci.Push(cmd.Context(), oci.PushParams{Ref: ref, Files: args[1:], Annotations: ann, ArtifactType: artifactType})
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s@%s\n", ref.Context(), h)
			return nil
		},
	}
	rf.add(cmd)
	cmd.Flags().StringArrayVar(&annotations, "annotation", nil, "KEY=VALUE on the manifest, e.g. org.opencontainers.image.source=https://... (repeatable)")
	cmd.Flags().StringVar(&artifactType, "artifact-type", oci.ArtifactType, "the manifest's artifactType")
	return cmd
}

func artifactPullCmd() *cobra.Command {
	var (
		rf  registryFlags
		out string
	)
	cmd := &cobra.Command{
		Use:   "pull [--server URL] REF [-o DIR]",
		Short: "Fetch an artifact's files into a directory, each checked against its digest",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			useRegistryToken(rf.server, tokenOf(cmd))
			ref, err := rf.ref(args[0], false)
			if err != nil {
				return err
			}
			p, err := oci.Pull(cmd.Context(), oci.PullParams{Ref: ref, Dir: out})
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			w := cmd.OutOrStdout()
			for _, f := range p.Files {
				fmt.Fprintln(w, f)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "pulled %s@%s (%s) into %s\n", ref.Context(), p.Digest, p.ArtifactType, out)
			return nil
		},
	}
	rf.add(cmd)
	cmd.Flags().StringVarP(&out, "output", "o", ".", "directory to write the files into")
	return cmd
}

func imageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Build container images without a Docker engine",
	}
	cmd.AddCommand(imageBuildCmd())
	return cmd
}

func imageBuildCmd() *cobra.Command {
	var (
		rf          registryFlags
		base        string
		binary      string
		target      string
		tag         string
		entrypoint  []string
		env         []string
		annotations []string
	)
	cmd := &cobra.Command{
		Use:   "build --base OCI-LAYOUT-DIR|REF|scratch --binary PATH --tag REPO:TAG",
		Short: "Layer one Linux binary onto a base image, ko-style, and push it; prints REPO@DIGEST",
		Long: `Layer one Linux ELF binary onto a base image and push the result, as ko does for Go
programs — no Docker engine, no Dockerfile. The base is an OCI image layout directory (e.g. from
'crane pull --format=oci'), a reference (paved's registry, or host/repo:tag), or 'scratch'.
From a multi-platform base the image for the binary's architecture is taken. The binary goes
to --path (default /app/NAME) in a new last layer; the entrypoint is set to it and the base's
cmd cleared. Nothing else of a Dockerfile is supported: no RUN, COPY of other files, or USER.
See docs/artifacts.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			useRegistryToken(rf.server, tokenOf(cmd))
			if base == "" || binary == "" || tag == "" {
				return usageErr("--base, --binary and --tag are required")
			}
			ref, err := rf.ref(tag, true)
			if err != nil {
				return err
			}
			plat, err := oci.BinaryPlatform(binary)
			if err != nil {
				return usageErr("%v", err)
			}
			p := oci.BuildParams{Binary: binary, Path: target, Entrypoint: entrypoint, Env: env, Annotations: map[string]string{}}
			if err := parseAnnotations(annotations, p.Annotations); err != nil {
				return err
			}
			for k, v := range stageAnnotations() {
				if _, set := p.Annotations[k]; !set {
					p.Annotations[k] = v
				}
			}
			if p.Base, p.BaseName, err = resolveBase(cmd, &rf, base, plat); err != nil {
				return err
			}
			img, err := oci.Build(p)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			h, err := oci.PushImage(cmd.Context(), ref, img)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s@%s\n", ref.Context(), h)
			return nil
		},
	}
	rf.add(cmd)
	cmd.Flags().StringVar(&base, "base", "", "base image: an OCI layout directory, a reference, or scratch")
	cmd.Flags().StringVar(&binary, "binary", "", "the Linux executable to add (build Go with GOOS=linux CGO_ENABLED=0)")
	cmd.Flags().StringVar(&target, "path", "", "where the binary goes in the image (default /app/NAME)")
	cmd.Flags().StringVar(&tag, "tag", "", "REPO:TAG to push to (immutable)")
	cmd.Flags().StringArrayVar(&entrypoint, "entrypoint", nil, "entrypoint argument (repeatable; default the binary's path)")
	cmd.Flags().StringArrayVar(&env, "env", nil, "KEY=VALUE added to the image's environment (repeatable)")
	cmd.Flags().StringArrayVar(&annotations, "annotation", nil, "KEY=VALUE on the manifest (repeatable)")
	return cmd
}

// resolveBase opens --base: a layout directory, scratch, or a registry reference.
func resolveBase(cmd *cobra.Command, rf *registryFlags, base string, plat v1.Platform) (v1.Image, string, error) {
	if base == "scratch" {
		return nil, "", nil
	}
	if fi, err := os.Stat(base); err == nil && fi.IsDir() {
		img, err := oci.BaseFromLayout(base, plat)
		if err != nil {
			return nil, "", usageErr("--base: %v", err)
		}
		return img, "", nil
	}
	ref, err := rf.ref(base, false)
	if err != nil {
		return nil, "", err
	}
	img, err := oci.BaseFromRemote(cmd.Context(), ref, plat)
	if err != nil {
		return nil, "", &exitError{code: 1, err: fmt.Errorf("--base %s is neither a directory nor a pullable image: %w", base, err)}
	}
	return img, ref.Name(), nil
}
