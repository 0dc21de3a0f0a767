package gate

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/paved/paved/internal/cache"
	"github.com/paved/paved/internal/execute"
	"github.com/paved/paved/internal/run"
)

var shaPattern = regexp.MustCompile(`^[0-9a-f]{7,64}$`)

// Checkout writes the source's files into dir: a commit's tree through `git archive` (one git
// call for the whole tree, no .git, no work tree checkout), or a copy of a plain directory
// without its .git. Only regular files and directories are written: a gate reads files, and a
// symlink could point it outside the workspace.
func Checkout(ctx context.Context, src run.Source, dir string) error {
	switch {
	case src.Dir != "":
		return copyTree(src.Dir, dir)
	case src.Repo == "":
		return errors.New("gate: the run has no source to scan")
	}
	rev := src.SHA
	if rev == "" {
		rev = "HEAD"
	} else if !shaPattern.MatchString(rev) {
		return fmt.Errorf("gate: source SHA %q is not a commit hash", rev)
	}
	repo := src.Repo
	if fi, err := os.Stat(repo); err != nil || !fi.IsDir() {
		// A URL: git archive --remote is refused by most hosts, so clone the objects only.
		clone := filepath.Join(dir, ".paved-clone")
		if err := gitRun(ctx, nil, "clone", "--quiet", "--bare", "--template=", "--", repo, clone); err != nil {
			return err
		}
		defer os.RemoveAll(clone)
		repo = clone
	}
	var out bytes.Buffer
	if err := gitRun(ctx, &out, "-C", repo, "archive", "--format=tar", rev+"^{tree}"); err != nil {
		return err
	}
	return untar(&out, dir)
}

func gitRun(ctx context.Context, stdout io.Writer, args ...string) error {
	cmd := exec.CommandContext(ctx, "git", args...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("gate: git %s: %w: %s", args[len(args)-2], err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

func untar(r io.Reader, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("gate: reading the commit's tree: %w", err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		if !fs.ValidPath(name) || name == "." {
			continue
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := writeFile(root, name, tr); err != nil {
				return err
			}
		}
	}
}

func writeFile(root *os.Root, name string, r io.Reader) error {
	if d := path.Dir(name); d != "." {
		if err := root.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	f, err := root.OpenFile(name, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func copyTree(src, dst string) error {
	root, err := os.OpenRoot(dst)
	if err != nil {
		return err
	}
	defer root.Close()
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir() && d.Name() == ".git":
			return filepath.SkipDir
		case d.IsDir():
			return root.MkdirAll(rel, 0o755)
		case d.Type().IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			return writeFile(root, rel, f)
		}
		return nil
	})
}

// Materialise lays the upstream artifacts' files over dir, each checked against its digest.
func Materialise(dir string, arts []execute.Artifact, blobs *cache.Blobs) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, a := range arts {
		if !a.Mode.IsRegular() || !fs.ValidPath(a.Path) || a.Path == "." {
			continue
		}
		b, err := blobs.Open(a.Digest)
		if err != nil {
			return fmt.Errorf("gate: artifact %s: %w", a.Path, err)
		}
		v := cache.Verify(b, a.Digest)
		err = writeFile(root, a.Path, v)
		if err == nil {
			err = v.Check()
		}
		b.Close()
		if err != nil {
			return fmt.Errorf("gate: artifact %s: %w", a.Path, err)
		}
	}
	return nil
}
