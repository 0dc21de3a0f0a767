package local_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paved/paved/internal/cache"
	"github.com/paved/paved/internal/execute"
	"github.com/paved/paved/internal/execute/local"
)

func digestOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// putBlob stores content and returns the artifact entry for it at path.
func putBlob(t testing.TB, b *cache.Blobs, path, content string) execute.Artifact {
	t.Helper()
	d, n, err := b.Put(strings.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	return execute.Artifact{Path: path, Digest: d, Size: n, Mode: 0o644}
}

// blobCount is how many blobs the store holds; its tmp directory must be empty.
func blobCount(t testing.TB, b *cache.Blobs) int {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(b.Dir(), "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	if tmp, _ := os.ReadDir(filepath.Join(b.Dir(), "tmp")); len(tmp) != 0 {
		t.Errorf("left in the store's tmp: %v", tmp)
	}
	return len(ents)
}

// TestArtifactsRoundTrip: what one stage's globs match is stored by digest and listed; a
// stage given that list finds the same tree in its workspace (files with their bytes and
// mode, symlinks as the same links, empty directories), over the checkout's files and
// after earlier entries.
func TestArtifactsRoundTrip(t *testing.T) {
	t.Parallel()
	eachSandbox(t, func(t *testing.T, mode string) {
		blobs := newBlobs(t)
		l := newLocal(t, local.Config{Sandbox: mode, Artifacts: blobs})
		job := dirJob(t,
			`mkdir -p out/sub out/empty bin && printf app > bin/app && chmod 755 bin/app && printf r > report.txt`,
			`printf s > out/sub/s && ln -s /etc/passwd leak && ln -s sub out/link && printf r > out/sub/copy`,
		)
		job.Artifacts = []string{"bin/app", "*.txt", "out/**", "leak", "./report.txt"}
		res, rec := run(t, l, job)
		if res.Failed {
			t.Fatalf("%+v: %q %q", res, rec.output(0), rec.output(1))
		}
		want := []execute.Artifact{
			{Path: "bin/app", Digest: digestOf("app"), Size: 3, Mode: 0o755},
			{Path: "leak", Mode: fs.ModeSymlink | fs.ModePerm, Link: "/etc/passwd"},
			{Path: "out/empty", Mode: fs.ModeDir | 0o755},
			{Path: "out/link", Mode: fs.ModeSymlink | fs.ModePerm, Link: "sub"},
			{Path: "out/sub/copy", Digest: digestOf("r"), Size: 1, Mode: 0o644},
			{Path: "out/sub/s", Digest: digestOf("s"), Size: 1, Mode: 0o644},
			{Path: "report.txt", Digest: digestOf("r"), Size: 1, Mode: 0o644},
		}
		if len(res.Artifacts) != len(want) {
			t.Fatalf("artifacts:\n%+v\nwant\n%+v", res.Artifacts, want)
		}
		for i := range want {
			if res.Artifacts[i] != want[i] {
				t.Errorf("artifact %d: %+v, want %+v", i, res.Artifacts[i], want[i])
			}
		}
		// report.txt and out/sub/copy are the same bytes: one blob. The symlink's target
		// (a host file) was not read into the store.
		if n := blobCount(t, blobs); n != 3 {
			t.Errorf("%d blobs, want 3 (app, r, s)", n)
		}
		if b := readBlob(t, blobs, digestOf("app")); string(b) != "app" {
			t.Errorf("blob of bin/app: %q", b)
		}

		// Downstream: an earlier entry at the same path is replaced by a later one; the
		// checkout's report.txt by the artifact.
		src := t.TempDir()
		for name, content := range map[string]string{"report.txt": "from the checkout", "checkout.txt": "c"} {
			if err := os.WriteFile(filepath.Join(src, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		down := dirJob(t,
			`test "$(cat bin/app)" = app && test -x bin/app && test "$(stat -c %a bin/app)" = 755`,
			`test "$(cat report.txt)" = r && test "$(cat out/sub/s)" = s && test "$(cat dist/a.txt)" = "from in2"`,
			`test -L leak && test "$(readlink leak)" = /etc/passwd && test -L out/link && test "$(readlink out/link)" = sub`,
			`test -d out/empty && test -z "$(ls -A out/empty)"`,
			// Newer than the checkout: a build tool comparing times keeps them.
			`test -n "$(find bin/app report.txt -newer checkout.txt)"`,
		)
		down.Source.Dir = src
		down.ArtifactsIn = append([]execute.Artifact{
			putBlob(t, blobs, "dist/a.txt", "from in1"),
			putBlob(t, blobs, "bin/app", "stale"),
		}, res.Artifacts...)
		down.ArtifactsIn = append(down.ArtifactsIn, putBlob(t, blobs, "dist/a.txt", "from in2"))
		res, rec = run(t, l, down)
		if res.Failed {
			t.Fatalf("downstream step %d failed: %q", res.FailedStep, rec.output(res.FailedStep))
		}
	})
}

// TestArtifactsStoredOnce: stages and runs producing the same bytes share one blob.
func TestArtifactsStoredOnce(t *testing.T) {
	t.Parallel()
	blobs := newBlobs(t)
	l := newLocal(t, local.Config{Sandbox: local.SandboxProcessGroup, Artifacts: blobs})
	var digests []string
	for i, stage := range []string{"build", "build-again", "other"} {
		job := dirJob(t, `mkdir -p out && printf same > out/a && printf same > out/b && head -c 100000 /dev/zero > out/zeros`)
		job.RunID, job.Stage, job.Artifacts = "run-"+stage, stage, []string{"out"}
		res, _ := run(t, l, job)
		if len(res.Artifacts) != 3 {
			t.Fatalf("%s: %+v", stage, res.Artifacts)
		}
		for _, a := range res.Artifacts {
			if i == 0 {
				digests = append(digests, a.Digest)
			}
		}
		if res.Artifacts[0].Digest != res.Artifacts[1].Digest || res.Artifacts[2].Size != 100000 {
			t.Errorf("%s: %+v", stage, res.Artifacts)
		}
	}
	if n := blobCount(t, blobs); n != 2 {
		t.Errorf("%d blobs after three stages of the same two contents, want 2", n)
	}
	if digests[0] != digestOf("same") {
		t.Errorf("digest %s", digests[0])
	}
}

// TestArtifactsCorruptBlob: a blob whose bytes no longer match its digest, or that is gone,
// fails the stage before any step, naming the path and the digest.
func TestArtifactsCorruptBlob(t *testing.T) {
	t.Parallel()
	blobs := newBlobs(t)
	l := newLocal(t, local.Config{Sandbox: local.SandboxProcessGroup, Artifacts: blobs})
	good := putBlob(t, blobs, "out/good", "good")
	bad := putBlob(t, blobs, "out/app", "the real bytes")
	p, err := blobs.Path(bad.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("the rea1 bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	job := dirJob(t, `echo never`)
	job.ArtifactsIn = []execute.Artifact{good, bad}
	rec := newRecorder(t)
	_, err = l.Run(context.Background(), job, rec)
	if !errors.Is(err, cache.ErrDigest) || !strings.Contains(err.Error(), "out/app") || !strings.Contains(err.Error(), bad.Digest) {
		t.Errorf("corrupt blob: %v", err)
	}
	if got := rec.eventList(); got != "" {
		t.Errorf("steps ran: %s", got)
	}

	gone := execute.Artifact{Path: "lib/x.so", Digest: digestOf("never stored"), Size: 12, Mode: 0o644}
	job.ArtifactsIn = []execute.Artifact{gone}
	_, err = l.Run(context.Background(), job, newRecorder(t))
	if err == nil || !strings.Contains(err.Error(), "lib/x.so") || !strings.Contains(err.Error(), gone.Digest) || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing blob: %v", err)
	}

	job.ArtifactsIn = []execute.Artifact{{Path: "../escape", Digest: good.Digest, Mode: 0o644}}
	if _, err = l.Run(context.Background(), job, newRecorder(t)); err == nil || !strings.Contains(err.Error(), "relative") {
		t.Errorf("escaping path: %v", err)
	}
}

// TestArtifactsMissingGlob: a glob that matches nothing fails the stage naming it; a glob
// out of the workspace is refused.
func TestArtifactsMissingGlob(t *testing.T) {
	t.Parallel()
	eachSandbox(t, func(t *testing.T, mode string) {
		blobs := newBlobs(t)
		l := newLocal(t, local.Config{Sandbox: mode, Artifacts: blobs})
		job := dirJob(t, `mkdir out && touch out/x`)
		job.Artifacts = []string{"out/x", "dist/*.tar.gz"}
		res, err := l.Run(context.Background(), job, newRecorder(t))
		if !errors.Is(err, execute.ErrArtifactMissing) || !strings.Contains(err.Error(), `"dist/*.tar.gz"`) {
			t.Errorf("missing artifact: %v", err)
		}
		if res.Artifacts != nil {
			t.Errorf("artifacts reported for a failed stage: %+v", res.Artifacts)
		}
		if n := blobCount(t, blobs); n != 0 {
			t.Errorf("%d blobs stored by a stage whose glob matched nothing", n)
		}
		job.Artifacts = []string{"../escape"}
		if _, err := l.Run(context.Background(), job, newRecorder(t)); err == nil || !strings.Contains(err.Error(), "relative") {
			t.Errorf("escaping glob: %v", err)
		}
		// A failed step stores nothing.
		job = dirJob(t, `touch a; exit 1`)
		job.Artifacts = []string{"a"}
		if res, _ := run(t, l, job); !res.Failed || res.Artifacts != nil {
			t.Errorf("failed stage: %+v", res)
		}
	})
}

// TestArtifactsInDoNotFollowWorkspaceSymlinks: a repository can hold a symlink where an
// upstream artifact goes; materialising the artifact must replace the link, not write
// through it onto the host.
func TestArtifactsInDoNotFollowWorkspaceSymlinks(t *testing.T) {
	t.Parallel()
	blobs := newBlobs(t)
	l := newLocal(t, local.Config{Sandbox: local.SandboxProcessGroup, Artifacts: blobs})
	target := t.TempDir()
	hostFile := filepath.Join(t.TempDir(), "host")
	if err := os.WriteFile(hostFile, []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	if err := os.Symlink(target, filepath.Join(src, "out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(hostFile, filepath.Join(src, "f")); err != nil {
		t.Fatal(err)
	}
	job := dirJob(t, `test -d out && ! test -L out && cat out/app && ! test -L f && cat f`)
	job.Source.Dir = src
	job.ArtifactsIn = []execute.Artifact{putBlob(t, blobs, "out/app", "artifact"), putBlob(t, blobs, "f", "+f")}
	res, rec := run(t, l, job)
	if res.Failed || rec.output(0) != "artifact+f" {
		t.Errorf("%+v %q", res, rec.output(0))
	}
	if ents, _ := os.ReadDir(target); len(ents) != 0 {
		t.Errorf("written through the symlink: %v", ents)
	}
	if b, _ := os.ReadFile(hostFile); string(b) != "host" {
		t.Errorf("host file written through the symlink: %q", b)
	}
}

// TestArtifactsNeedAStore: an executor without an artifact store refuses a job with
// artifacts rather than dropping them.
func TestArtifactsNeedAStore(t *testing.T) {
	t.Parallel()
	l, err := local.New(local.Config{Root: t.TempDir(), Sandbox: local.SandboxProcessGroup})
	if err != nil {
		t.Fatal(err)
	}
	job := dirJob(t, `touch a`)
	job.Artifacts = []string{"a"}
	if _, err := l.Run(context.Background(), job, newRecorder(t)); err == nil || !strings.Contains(err.Error(), "artifact store") {
		t.Errorf("no store: %v", err)
	}
}
