package trigger

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/paved/paved/internal/trigger/stack"
)

// copyTree copies the files under src into dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dst, filepath.Dir(rel)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A commit's tree reads like the directory it was made from: fstest.TestFS checks the
// fs.FS contract, and stack detection finds the same projects in both.
func TestFSOfCommit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	copyTree(t, "stack/testdata/repos/monorepo", dir)
	if err := os.WriteFile(filepath.Join(dir, "run.sh"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("README.md", filepath.Join(dir, "link.md")); err != nil {
		t.Fatal(err)
	}
	run(t, dir, "init", "-q", "-b", "main")
	run(t, dir, "add", "-A")
	run(t, dir, "commit", "-qm", "one")
	// After the commit: a file that is not in it.
	if err := os.WriteFile(filepath.Join(dir, "Cargo.toml"), []byte("[package]\nname = \"x\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	g := &Git{Dir: t.TempDir()}
	ctx := context.Background()
	rev, err := g.Resolve(ctx, Repo{FullName: "a/b", CloneURL: dir}, "main")
	if err != nil {
		t.Fatal(err)
	}
	fsys := g.FS(ctx, rev)
	if err := fstest.TestFS(fsys, "README.md", "run.sh", "api/go.mod", "api/cmd/api/main.go", "charts/web/templates/service.yaml"); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Stat(fsys, "link.md"); err == nil {
		t.Error("a symbolic link is in the tree; it should be left out")
	}
	if _, err := fs.Stat(fsys, "Cargo.toml"); err == nil {
		t.Error("a file that is not in the commit is in its tree")
	}
	if fi, err := fs.Stat(fsys, "run.sh"); err != nil || fi.Mode()&0o100 == 0 {
		t.Errorf("run.sh: %v, mode %v: want executable", err, fi)
	}

	fromGit, err := stack.Detect(fsys)
	if err != nil {
		t.Fatal(err)
	}
	fromDir, err := stack.Detect(os.DirFS("stack/testdata/repos/monorepo"))
	if err != nil {
		t.Fatal(err)
	}
	a, b := fromGit.Pipeline(stack.Options{}), fromDir.Pipeline(stack.Options{})
	if !bytes.Equal(a, b) {
		t.Errorf("detection differs between the commit and the directory:\n%s\n---\n%s", a, b)
	}
}
