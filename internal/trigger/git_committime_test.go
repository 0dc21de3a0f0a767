package trigger

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestResolveCommitTime: a resolved revision carries its commit's committer time, where
// lead time to production starts.
func TestResolveCommitTime(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	run(t, dir, "init", "-q", "-b", "main")
	os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644)
	run(t, dir, "add", "-A")
	cmd := exec.Command("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_COMMITTER_DATE=2026-11-30T09:15:00+01:00", "GIT_AUTHOR_DATE=2026-11-29T09:00:00Z")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("commit: %v\n%s", err, out)
	}
	rev, err := (&Git{Dir: t.TempDir()}).Resolve(context.Background(), Repo{FullName: "a/b", CloneURL: dir}, "main")
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 11, 30, 8, 15, 0, 0, time.UTC); !rev.CommittedAt.Equal(want) {
		t.Errorf("committed at %v, want %v", rev.CommittedAt, want)
	}
}
