package trigger

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func run(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@t"}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// repo makes a repository with two commits on main, a tag v1 on the first and a branch dev.
func repo(t *testing.T) (dir, first, second string) {
	t.Helper()
	dir = t.TempDir()
	run(t, dir, "init", "-q", "-b", "main")
	os.WriteFile(filepath.Join(dir, ".paved.yml"), []byte("v1"), 0o644)
	run(t, dir, "add", "-A")
	run(t, dir, "commit", "-qm", "one")
	first = run(t, dir, "rev-parse", "HEAD")
	run(t, dir, "tag", "v1")
	os.WriteFile(filepath.Join(dir, ".paved.yml"), []byte("v2"), 0o644)
	os.WriteFile(filepath.Join(dir, "new.txt"), []byte("x"), 0o644)
	run(t, dir, "add", "-A")
	run(t, dir, "commit", "-qm", "two")
	second = run(t, dir, "rev-parse", "HEAD")
	run(t, dir, "branch", "dev", first)
	return dir, first, second
}

func TestResolveRefs(t *testing.T) {
	t.Parallel()
	dir, first, second := repo(t)
	for name, url := range map[string]string{"local": dir, "remote": "file://" + dir} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g := &Git{Dir: t.TempDir()}
			r := Repo{FullName: "a/b", CloneURL: url}
			ctx := context.Background()
			cases := []struct{ ref, sha, branch, tag string }{
				{"", second, "main", ""},
				{"main", second, "main", ""},
				{"dev", first, "dev", ""},
				{"v1", first, "", "v1"},
				{first[:10], first, "", ""},
				{second, second, "", ""},
			}
			for _, c := range cases {
				rev, err := g.Resolve(ctx, r, c.ref)
				if err != nil {
					t.Fatalf("%q: %v", c.ref, err)
				}
				if rev.SHA != c.sha || rev.Branch != c.branch || rev.Tag != c.tag {
					t.Errorf("%q: got %+v, want sha %s branch %q tag %q", c.ref, rev, c.sha[:8], c.branch, c.tag)
				}
			}
			if _, err := g.Resolve(ctx, r, "nope"); !errors.Is(err, ErrUnknownRef) {
				t.Errorf("unknown ref: %v", err)
			}
			rev, _ := g.Resolve(ctx, r, "v1")
			if b, err := g.ReadFile(ctx, rev, ".paved.yml"); err != nil || string(b) != "v1" {
				t.Errorf("ReadFile at v1: %q %v", b, err)
			}
			if _, err := g.ReadFile(ctx, rev, "new.txt"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("ReadFile of a file the commit lacks: %v", err)
			}
			head, _ := g.Resolve(ctx, r, "main")
			if files, err := g.ChangedFiles(ctx, head, first); err != nil || strings.Join(files, ",") != ".paved.yml,new.txt" {
				t.Errorf("ChangedFiles: %v %v", files, err)
			}
		})
	}
}

// A new push to a remote repository is seen by the next Resolve (the mirror is fetched).
func TestResolveFetchesMirror(t *testing.T) {
	t.Parallel()
	dir, _, second := repo(t)
	g := &Git{Dir: t.TempDir()}
	r := Repo{FullName: "a/b", CloneURL: "file://" + dir}
	ctx := context.Background()
	if rev, err := g.Resolve(ctx, r, "main"); err != nil || rev.SHA != second {
		t.Fatalf("first resolve: %+v %v", rev, err)
	}
	os.WriteFile(filepath.Join(dir, "third.txt"), []byte("3"), 0o644)
	run(t, dir, "add", "-A")
	run(t, dir, "commit", "-qm", "three")
	third := run(t, dir, "rev-parse", "HEAD")
	rev, err := g.Resolve(ctx, r, "main")
	if err != nil || rev.SHA != third {
		t.Fatalf("after push: %+v %v, want %s", rev, err, third)
	}
	if !strings.HasPrefix(rev.Source, g.Dir) {
		t.Fatalf("remote source %s is not a mirror under %s", rev.Source, g.Dir)
	}
}

func TestRepoValidate(t *testing.T) {
	t.Parallel()
	ok := Repo{FullName: "group/sub/name", CloneURL: "/x", Team: "t", Provider: "gitlab",
		ForgeCredential: "GITLAB_TOKEN", ForgeAPI: "https://gitlab.example.com/api/v4"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Repo{
		{FullName: "noslash", CloneURL: "/x", Team: "t", Provider: "local"},
		{FullName: "a/b", Team: "t", Provider: "local"},
		{FullName: "a/b", CloneURL: "/x", Provider: "local"},
		{FullName: "a/b", CloneURL: "/x", Team: "t", Provider: "svn"},
		{FullName: "a/b", CloneURL: "/x", Team: "t", Provider: "github", ForgeCredential: "ghp_abc123-value!"},
		{FullName: "a/b", CloneURL: "/x", Team: "t", Provider: "local", ForgeCredential: "TOKEN"},
		{FullName: "a/b", CloneURL: "/x", Team: "t", Provider: "gitlab", ForgeAPI: "gitlab.example.com"},
	} {
		if err := bad.Validate(); !errors.Is(err, ErrInvalidRepo) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}

func TestGitErrorsHideURLCredentials(t *testing.T) {
	t.Parallel()
	g := &Git{Dir: t.TempDir()}
	_, err := g.Resolve(context.Background(), Repo{FullName: "a/b", CloneURL: "https://bob:s3cr3t@127.0.0.1:1/a/b.git"}, "main")
	if err == nil {
		t.Fatal("clone of an unreachable URL succeeded")
	}
	if strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "https://***@127.0.0.1:1") {
		t.Fatalf("error shows the credentials or lost the URL: %v", err)
	}
}
