package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/paved/paved/internal/cache"
	"github.com/paved/paved/internal/gate/sign"
)

// Where the supply-chain records live in the data dir.
const (
	keysDir         = "keys"         // the key store: keys.json and, without the env KEK, kek
	attestationsDir = "attestations" // the index: sha256/<hex>/artifact.sig, *.dsse.json
	artifactsDir    = "artifacts"    // the artifact store (cache.Blobs), as startServer opens it
)

// kekEnv holds the key-encryption key, 64 hex digits or base64 of 32 bytes. Unset: the key
// store keeps it in DATA/keys/kek (0600).
const kekEnv = "PAVED_KEY_ENCRYPTION_KEY"

// dataDir is --data resolved as the server resolves it.
func dataDir(flag string) (string, error) {
	if flag == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return "", usageErr("no --data given and no user cache dir: %v", err)
		}
		flag = filepath.Join(dir, "paved", "server")
	}
	return filepath.Abs(flag)
}

// openSigning opens the key store and the attestation index of a data dir, generating the
// first key on first start. The server calls it to sign what stages produce:
//
//	keys, index, err := openSigning(data)
//	signer := &sign.Signer{Keys: keys, Index: index}
func openSigning(data string) (*sign.Keys, *sign.Index, error) {
	cfg := sign.KeysConfig{Dir: filepath.Join(data, keysDir)}
	if v, ok := os.LookupEnv(kekEnv); ok {
		kek, err := sign.ParseKEK(v)
		if err != nil {
			return nil, nil, usageErr("%s: %v", kekEnv, err)
		}
		cfg.KEK = kek
	}
	keys, err := sign.OpenKeys(cfg)
	if err != nil {
		return nil, nil, err
	}
	index, err := sign.OpenIndex(filepath.Join(data, attestationsDir))
	if err != nil {
		return nil, nil, err
	}
	return keys, index, nil
}

type verifyOptions struct {
	data        string
	keys        []string
	digest      string
	repos       []string
	refs        []string
	requireSBOM bool
	json        bool
}

func verifyCmd() *cobra.Command {
	var o verifyOptions
	cmd := &cobra.Command{
		Use:   "verify ARTIFACT",
		Short: "Check an artifact's signature, provenance and source the way a deployment does",
		Long: "verify checks that ARTIFACT was signed by a trusted paved key, that its signed provenance\n" +
			"names it, and that it was built from an allowed repository and ref. ARTIFACT is a file,\n" +
			"or a sha256:DIGEST in the artifact store of --data. The trusted keys are the server's\n" +
			"(DATA/keys, no key-encryption key needed) or the PEM files given with --key.\n" +
			"Exit 0 when verified, 1 with the reason when refused, 2 when it cannot check.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerify(cmd, o, args[0])
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.data, "data", envOr("PAVED_DATA", ""), "the server's data directory (env PAVED_DATA; default ~/.cache/paved/server)")
	f.StringArrayVar(&o.keys, "key", nil, "PEM file of trusted public keys (repeatable); default: the keys in --data")
	f.StringVar(&o.digest, "digest", "", "the digest ARTIFACT (a file) must have, e.g. from a deployment record; default: its own")
	f.StringArrayVar(&o.repos, "repo", nil, "allowed source repository glob, e.g. acme/* (repeatable; default any)")
	f.StringArrayVar(&o.refs, "ref", nil, "allowed branch glob (main, release/*) or full ref glob (refs/tags/v*) (repeatable; default any)")
	f.BoolVar(&o.requireSBOM, "require-sbom", false, "refuse an artifact without a signed SBOM attestation")
	f.BoolVar(&o.json, "json", false, "print the verified provenance as JSON")
	return cmd
}

func runVerify(cmd *cobra.Command, o verifyOptions, artifact string) error {
	data, err := dataDir(o.data)
	if err != nil {
		return err
	}
	var trust *sign.Trust
	if len(o.keys) > 0 {
		var pems [][]byte
		for _, k := range o.keys {
			b, err := os.ReadFile(k)
			if err != nil {
				return usageErr("--key: %v", err)
			}
			pems = append(pems, b)
		}
		if trust, err = sign.NewTrust(pems...); err != nil {
			return usageErr("--key: %v", err)
		}
	} else {
		keys, err := sign.ReadPublicKeys(filepath.Join(data, keysDir))
		if err != nil {
			return usageErr("%v", err)
		}
		if trust, err = sign.NewTrust(sign.PEMBundle(keys, false)); err != nil {
			return usageErr("%v", err)
		}
	}
	index, err := sign.OpenIndex(filepath.Join(data, attestationsDir))
	if err != nil {
		return err
	}
	digest, r, err := openArtifact(data, artifact, o.digest)
	if err != nil {
		return err
	}
	defer r.Close()
	policy := sign.Policy{Repos: o.repos, Refs: o.refs, RequireSBOM: o.requireSBOM}
	if err := policy.Validate(); err != nil {
		return usageErr("%v", err)
	}
	v := &sign.Verifier{Keys: trust, Index: index}
	res, err := v.Verify(cmd.Context(), digest, r, policy)
	if sign.IsRefusal(err) {
		return &exitError{code: 1, err: fmt.Errorf("refused %s: %w", artifact, err)}
	}
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if o.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	p := res.Provenance
	fmt.Fprintf(out, "verified %s\n  signed by key %s\n  built from %s %s (%s) by %s, run %s\n  attestations: %s\n",
		res.Digest, res.KeyID, p.Repo, p.Ref, p.SHA, p.BuilderID, p.InvocationID, strings.Join(res.Attestations, ", "))
	return nil
}

// openArtifact resolves ARTIFACT to the digest it must have and its bytes.
func openArtifact(data, artifact, want string) (string, io.ReadCloser, error) {
	if strings.HasPrefix(artifact, "sha256:") {
		if want != "" && want != artifact {
			return "", nil, usageErr("--digest %s differs from ARTIFACT %s: give one of them", want, artifact)
		}
		blobs, err := cache.NewBlobs(filepath.Join(data, artifactsDir))
		if err != nil {
			return "", nil, err
		}
		f, err := blobs.Open(artifact)
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil, usageErr("%s is not in the artifact store of %s: give the file instead, or the right --data", artifact, data)
		}
		if err != nil {
			return "", nil, usageErr("%v", err)
		}
		return artifact, f, nil
	}
	f, err := os.Open(artifact)
	if err != nil {
		return "", nil, usageErr("%v", err)
	}
	if want != "" {
		return want, f, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		f.Close()
		return "", nil, fmt.Errorf("read %s: %w", artifact, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return "", nil, err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), f, nil
}

func keysCmd() *cobra.Command {
	var data string
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "The server's signing keys: list, export the public keys, rotate",
	}
	cmd.PersistentFlags().StringVar(&data, "data", envOr("PAVED_DATA", ""), "the server's data directory (env PAVED_DATA; default ~/.cache/paved/server)")

	list := &cobra.Command{
		Use:   "list",
		Short: "List the keys: id, created, active",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			keys, err := readKeys(data)
			if err != nil {
				return err
			}
			for _, k := range keys {
				state := "verify only"
				if k.Active {
					state = "active"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s  %s  %s\n", k.ID, k.Created.Format("2006-01-02T15:04:05Z"), state)
			}
			return nil
		},
	}

	var all bool
	var output string
	export := &cobra.Command{
		Use:   "export",
		Short: "Print the active public key as PEM (cosign verify-blob --key reads it); --all for every key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			keys, err := readKeys(data)
			if err != nil {
				return err
			}
			pem := sign.PEMBundle(keys, !all)
			if output == "" {
				_, err = cmd.OutOrStdout().Write(pem)
				return err
			}
			return os.WriteFile(output, pem, 0o644)
		},
	}
	export.Flags().BoolVar(&all, "all", false, "every key, old ones too (what paved verify --key trusts)")
	export.Flags().StringVarP(&output, "output", "o", "", "write to this file instead of stdout")

	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Make a new signing key active; old keys keep verifying what they signed",
		Long: "rotate generates a new ECDSA P-256 key, seals it with the key-encryption key (env\n" +
			kekEnv + ", or DATA/keys/kek) and makes it the signing key. A running server\n" +
			"notices and signs with it from then on.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := dataDir(data)
			if err != nil {
				return err
			}
			if _, err := os.Stat(filepath.Join(dir, keysDir)); err != nil {
				return usageErr("no key store in %s: start the server once with this --data, or check the path", dir)
			}
			keys, _, err := openSigning(dir)
			if err != nil {
				return err
			}
			k, err := keys.Rotate(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "active key %s\n", k.ID)
			return nil
		},
	}
	cmd.AddCommand(list, export, rotate)
	return cmd
}

func readKeys(data string) ([]sign.PublicKey, error) {
	dir, err := dataDir(data)
	if err != nil {
		return nil, err
	}
	keys, err := sign.ReadPublicKeys(filepath.Join(dir, keysDir))
	if err != nil {
		return nil, usageErr("%v", err)
	}
	return keys, nil
}
