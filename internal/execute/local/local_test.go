package local_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paved/paved/internal/execute"
	"github.com/paved/paved/internal/execute/local"
)

func unique(t testing.TB) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func TestStepsShareWorkspaceInOrder(t *testing.T) {
	t.Parallel()
	eachSandbox(t, func(t *testing.T, mode string) {
		l := newLocal(t, local.Config{Sandbox: mode})
		job := dirJob(t,
			`echo one > f; pwd > where`,
			`cat f; test "$(cat where)" = "$PAVED_WORKSPACE" && test "$PWD" = "$PAVED_WORKSPACE"; echo "$GREETING"`,
			`touch "$HOME/h" "$TMPDIR/t" && echo writable`,
		)
		job.Env = map[string]string{"GREETING": "hello there"}
		res, rec := run(t, l, job)
		if res.Failed {
			t.Fatalf("failed: %+v, output %q", res, rec.output(res.FailedStep))
		}
		if got := rec.output(1); got != "one\nhello there\n" {
			t.Errorf("step 1 output %q", got)
		}
		if got := rec.output(2); got != "writable\n" {
			t.Errorf("step 2 output %q", got)
		}
		if got, want := rec.eventList(), "start 0, finish 0 0, start 1, finish 1 0, start 2, finish 2 0"; got != want {
			t.Errorf("events %s, want %s", got, want)
		}
	})
}

// TestStepsGetOnlyStdio: no descriptor of paved's (or leaked to paved) reaches a step.
func TestStepsGetOnlyStdio(t *testing.T) {
	t.Parallel()
	eachSandbox(t, func(t *testing.T, mode string) {
		l := newLocal(t, local.Config{Sandbox: mode})
		// ls replaces the shell (whose own pipes and saved descriptors come and go), and
		// its fd 3 is the directory it lists.
		_, rec := run(t, l, dirJob(t, `exec ls /proc/self/fd`))
		if got := rec.output(0); got != "0\n1\n2\n3\n" {
			t.Errorf("descriptors of a step: %q", got)
		}
	})
}

func TestFailingStepStopsStage(t *testing.T) {
	t.Parallel()
	eachSandbox(t, func(t *testing.T, mode string) {
		l := newLocal(t, local.Config{Sandbox: mode})
		res, rec := run(t, l, dirJob(t, "echo a", "echo b; exit 3", "echo never"))
		if !res.Failed || res.FailedStep != 1 || res.ExitCode != 3 || res.Sandbox != mode {
			t.Fatalf("result %+v", res)
		}
		if got, want := rec.eventList(), "start 0, finish 0 0, start 1, finish 1 3"; got != want {
			t.Errorf("events %s, want %s", got, want)
		}
		if rec.output(1) != "b\n" {
			t.Errorf("output %q", rec.output(1))
		}

		// sh -e: a failing command ends the step; a signal is 128+n, as shells report it.
		res, _ = run(t, l, dirJob(t, "false; echo not reached"))
		if !res.Failed || res.ExitCode != 1 {
			t.Errorf("sh -e: %+v", res)
		}
		res, _ = run(t, l, dirJob(t, "kill -TERM $$"))
		if !res.Failed || res.ExitCode != 128+15 {
			t.Errorf("signal: %+v", res)
		}
	})
}

func TestShellBashPipefail(t *testing.T) {
	t.Parallel()
	eachSandbox(t, func(t *testing.T, mode string) {
		l := newLocal(t, local.Config{Sandbox: mode})
		job := dirJob(t, "false | true")
		res, _ := run(t, l, job)
		if res.Failed {
			t.Errorf("sh: a pipeline's status is its last command's: %+v", res)
		}
		job.Shell = "bash"
		res, _ = run(t, l, job)
		if !res.Failed || res.ExitCode != 1 {
			t.Errorf("bash -o pipefail: %+v", res)
		}
		job = dirJob(t, "echo $BASH_VERSION | grep -q . && echo bash")
		job.Shell = "bash"
		if _, rec := run(t, l, job); rec.output(0) != "bash\n" {
			t.Errorf("not bash: %q", rec.output(0))
		}
	})
}

func TestOutputExact(t *testing.T) {
	t.Parallel()
	eachSandbox(t, func(t *testing.T, mode string) {
		blobs := newBlobs(t)
		l := newLocal(t, local.Config{Sandbox: mode, Artifacts: blobs})
		job := dirJob(t,
			`printf 'no newline'`,
			`printf 'out1\n'; printf 'err1\n' >&2; printf 'out2'`,
			`yes 0123456789abcdef | head -c 8000000`,
			`head -c 3000000 /dev/urandom > blob; cat blob`,
			`printf 'last'`,
		)
		job.Artifacts = []string{"blob"}
		res, rec := run(t, l, job)
		if res.Failed {
			t.Fatalf("%+v", res)
		}
		if got := rec.output(0); got != "no newline" {
			t.Errorf("step 0: %q", got)
		}
		if got := rec.output(1); got != "out1\nerr1\nout2" {
			t.Errorf("step 1 (stdout and stderr interleaved in order): %q", got)
		}
		want := strings.Repeat("0123456789abcdef\n", 8000000/17+1)[:8000000]
		if got := rec.output(2); got != want {
			t.Errorf("step 2: %d bytes, want %d", len(got), len(want))
		}
		if len(res.Artifacts) != 1 {
			t.Fatalf("artifacts %+v", res.Artifacts)
		}
		blob := readBlob(t, blobs, res.Artifacts[0].Digest)
		if got := rec.output(3); got != string(blob) {
			t.Errorf("step 3: binary output of %d bytes differs from the %d-byte file", len(got), len(blob))
		}
		if got := rec.output(4); got != "last" {
			t.Errorf("step 4: %q", got)
		}
	})
}

// TestEnvironmentIsTheJobs: steps see the job's environment and what the executor adds,
// nothing of paved's own.
func TestEnvironmentIsTheJobs(t *testing.T) {
	t.Parallel()
	eachSandbox(t, func(t *testing.T, mode string) {
		l := newLocal(t, local.Config{Sandbox: mode})
		job := dirJob(t, `env | cut -d= -f1 | sort | tr '\n' ' '; echo; echo "$PATH"`)
		job.Env = map[string]string{"CGO_ENABLED": "0", "SECRET": "s3cret"}
		_, rec := run(t, l, job)
		lines := strings.Split(rec.output(0), "\n")
		got := strings.Fields(lines[0])
		// sh itself exports PWD; nothing else may appear.
		want := []string{"CGO_ENABLED", "HOME", "PATH", "PAVED_WORKSPACE", "PWD", "SECRET", "TMPDIR"}
		if !slices.Equal(got, want) {
			t.Errorf("environment %v, want %v", got, want)
		}
		if lines[1] != local.DefaultPath {
			t.Errorf("PATH %q", lines[1])
		}

		job.Env["PATH"] = "/usr/bin:/bin"
		if _, rec := run(t, l, job); !strings.Contains(rec.output(0), "\n/usr/bin:/bin\n") {
			t.Errorf("the job's PATH must be kept: %q", rec.output(0))
		}
	})
}

// TestBackgroundProcessAcrossSteps: a step that leaves a process running that holds its
// output ends at once, the process keeps running (and writing) into the next step, and it
// ends with the stage.
func TestBackgroundProcessAcrossSteps(t *testing.T) {
	t.Parallel()
	eachSandbox(t, func(t *testing.T, mode string) {
		l := newLocal(t, local.Config{Sandbox: mode})
		marker := unique(t)
		job := dirJob(t,
			fmt.Sprintf(`(while :; do echo tick; sleep 0.02; done; : %s) & echo $! > pid`, marker),
			`sleep 0.3; kill -0 "$(cat pid)" && echo alive`,
		)
		res, rec := run(t, l, job)
		if res.Failed {
			t.Fatalf("%+v: %q", res, rec.output(1))
		}
		if took := rec.took[0]; took > time.Second {
			t.Errorf("step 0 took %v: it waited for the background process", took)
		}
		if !strings.Contains(rec.output(1), "alive\n") || !strings.Contains(rec.output(1), "tick") {
			t.Errorf("step 1 output %q: the background process must live on and its output go to the running step", rec.output(1))
		}
		if ps := processesWith(marker); len(ps) > 0 {
			t.Errorf("processes outlived the stage: %v", ps)
		}
	})
}

// TestCancelKillsProcessTree: cancelling kills every process of the stage, including one
// that left the process group with setsid, and Run returns the context's error.
func TestCancelKillsProcessTree(t *testing.T) {
	t.Parallel()
	eachSandbox(t, func(t *testing.T, mode string) {
		for _, how := range []string{"cancel", "timeout"} {
			t.Run(how, func(t *testing.T) {
				t.Parallel()
				l := newLocal(t, local.Config{Sandbox: mode})
				marker := fmt.Sprintf("1%06d.%s", time.Now().Nanosecond()%1000000, strings.Map(func(r rune) rune {
					return '0' + r%10
				}, unique(t))) // a sleep duration no other process has
				job := dirJob(t, "echo first", fmt.Sprintf(`sleep %s & (setsid sleep %s &); echo ready; sleep %s`, marker, marker, marker))

				ctx, cancel := context.WithCancel(context.Background())
				if how == "timeout" {
					ctx, cancel = context.WithTimeout(context.Background(), 1500*time.Millisecond)
				}
				defer cancel()
				rec := newRecorder(t)
				ready := make(chan struct{})
				var once sync.Once
				rec.onOutput = func(step int, all []byte) {
					if step == 1 && bytes.Contains(all, []byte("ready")) {
						once.Do(func() { close(ready) })
					}
				}
				errc := make(chan error, 1)
				go func() {
					_, err := l.Run(ctx, job, rec)
					errc <- err
				}()
				select {
				case <-ready:
				case err := <-errc:
					t.Fatalf("Run ended early: %v", err)
				}
				// sh, the background sleep, the setsid one and the foreground one.
				eventually(t, 5*time.Second, "the step's processes", func() bool { return len(processesWith(marker)) >= 4 })
				if how == "cancel" {
					cancel()
				}
				err := <-errc
				want := context.Canceled
				if how == "timeout" {
					want = context.DeadlineExceeded
				}
				if !errors.Is(err, want) {
					t.Fatalf("Run: %v, want %v", err, want)
				}
				// The kill is complete when Run returns; a short grace only for the kernel
				// to finish tearing down processes already SIGKILLed.
				eventually(t, 2*time.Second, "no process left", func() bool { return len(processesWith(marker)) == 0 })
				if rec.output(0) != "first\n" {
					t.Errorf("step 0 output %q", rec.output(0))
				}
			})
		}
	})
}

// TestBubblewrapIsolation: what a step can see and change of the host.
func TestBubblewrapIsolation(t *testing.T) {
	t.Parallel()
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	id := unique(t)
	homeSecret := filepath.Join(home, ".paved-test-"+id)
	if err := os.WriteFile(homeSecret, []byte("home secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(homeSecret) })

	// paved's data directory, hidden, with the workspaces under it as cmd/ sets it up.
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "paved.db"), []byte("data secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(data, "workspaces")
	other := filepath.Join(root, "other-run", "build-1")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "secret"), []byte("other"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A data directory outside /tmp too (the default hides /tmp wholesale).
	varData, err := os.MkdirTemp("/var/tmp", "paved-test-data-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(varData) })
	if err := os.WriteFile(filepath.Join(varData, "paved.db"), []byte("data secret"), 0o600); err != nil {
		t.Fatal(err)
	}

	l := newLocal(t, local.Config{Sandbox: local.SandboxBubblewrap, Root: root, Hide: []string{data, varData}})
	hostTmp := "/tmp/paved-test-" + id
	t.Cleanup(func() { os.Remove(hostTmp) })
	checks := []struct{ name, run string }{
		{"home file hidden", fmt.Sprintf(`! cat %s 2>/dev/null`, homeSecret)},
		{"home empty", fmt.Sprintf(`test -z "$(ls -A %s)" && test -z "$(ls -A /root)"`, home)},
		{"data dir hidden", fmt.Sprintf(`! cat %s/paved.db 2>/dev/null && ! cat %s/paved.db 2>/dev/null`, data, varData)},
		{"other workspace hidden", fmt.Sprintf(`! cat %s/secret 2>/dev/null && test "$(ls %s)" = "$(basename $(dirname $PAVED_WORKSPACE))"`, other, root)},
		{"workspace writable", `echo x > f && mkdir -p d/e && test -f f`},
		{"private tmp", fmt.Sprintf(`echo x > %s && test "$TMPDIR" = /tmp && test "$HOME" = /tmp/home`, hostTmp)},
		{"root read-only", `! touch /usr/paved-x 2>/dev/null && ! touch /etc/paved-x 2>/dev/null`},
		{"no remount", `! mount -o remount,bind,rw / 2>/dev/null && ! mount -o remount,rw / 2>/dev/null`},
		{"no unmounting what hides", fmt.Sprintf(`! umount %s 2>/dev/null && ! umount /root 2>/dev/null`, home)},
		{"own pid namespace", `test "$(ls /proc | grep -c '^[0-9]')" -lt 10 && test "$PPID" = 1`},
		// The init survives a kill (or the stage would end in an error), and its
		// descriptors, the frames pipe to paved among them, cannot be opened.
		{"init out of reach", `kill -9 1 2>/dev/null; ! readlink /proc/1/fd/1 2>/dev/null && ! echo forged 2>/dev/null > /proc/1/fd/1`},
		{"network", `test -e /proc/net/dev && grep -q lo /proc/net/dev`},
	}
	for _, c := range checks {
		job := dirJob(t, c.run)
		job.Stage = c.name
		res, rec := run(t, l, job)
		if res.Failed {
			t.Errorf("%s: step failed (%d): %q", c.name, res.ExitCode, rec.output(0))
		}
	}
	if _, err := os.Stat(hostTmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a step's /tmp file reached the host: %v", err)
	}
	if _, err := os.Stat(filepath.Join(other, "secret")); err != nil {
		t.Errorf("another workspace was touched: %v", err)
	}
}

// TestProcessGroupPrivateDirs: without bubblewrap, HOME and TMPDIR are still per stage.
func TestProcessGroupPrivateDirs(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), "ws")
	l := newLocal(t, local.Config{Sandbox: local.SandboxProcessGroup, Root: root})
	job := dirJob(t, `case "$TMPDIR" in `+root+`/*) ;; *) exit 1;; esac; case "$HOME" in "$TMPDIR"/*) ;; *) exit 2;; esac; touch "$HOME/x" "$TMPDIR/y"`)
	res, rec := run(t, l, job)
	if res.Failed {
		t.Fatalf("%+v %q", res, rec.output(0))
	}
	if ents, _ := os.ReadDir(root); len(ents) != 0 {
		t.Errorf("left in root: %v", ents)
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	eachSandbox(t, func(t *testing.T, mode string) {
		l := newLocal(t, local.Config{Sandbox: mode, NoFileLimit: 512, FileSizeLimit: 1 << 20})
		res, rec := run(t, l, dirJob(t, `ulimit -c; ulimit -n`, `head -c 2000000 /dev/zero > big`))
		if got := rec.output(0); got != "0\n512\n" {
			t.Errorf("core and nofile limits: %q", got)
		}
		if !res.Failed || res.FailedStep != 1 {
			t.Errorf("a file over the size limit must fail the step: %+v", res)
		}
	})
}

func TestSourceDir(t *testing.T) {
	t.Parallel()
	eachSandbox(t, func(t *testing.T, mode string) {
		l := newLocal(t, local.Config{Sandbox: mode})
		src := t.TempDir()
		old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
		for name, content := range map[string]string{"run.sh": "#!/bin/sh\necho ran\n", "sub/deep/f": "deep", ".git/HEAD": "ref: refs/heads/main\n"} {
			p := filepath.Join(src, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(filepath.Join(src, "run.sh"), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(filepath.Join(src, "sub/deep/f"), old, old); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("sub/deep/f", filepath.Join(src, "link")); err != nil {
			t.Fatal(err)
		}
		job := dirJob(t,
			`./run.sh && test "$(stat -c %a run.sh)" = 750 && test "$(readlink link)" = sub/deep/f && cat link && test -f .git/HEAD && stat -c %Y sub/deep/f`)
		job.Source.Dir = src
		res, rec := run(t, l, job)
		if want := fmt.Sprintf("ran\ndeep%d\n", old.Unix()); res.Failed || rec.output(0) != want {
			t.Errorf("%+v %q, want %q", res, rec.output(0), want)
		}
	})
}

func TestSourceRepo(t *testing.T) {
	t.Parallel()
	eachSandbox(t, func(t *testing.T, mode string) {
		// The repository lives in a hidden directory, like paved's mirrors in its data
		// directory: git in the sandbox must still reach the objects it borrows.
		data := t.TempDir()
		repo, shas := gitRepo(t, "v1", "v2")
		mirror := filepath.Join(data, "repos", "app.git")
		if out, err := exec.Command("git", "clone", "--quiet", "--bare", repo, mirror).CombinedOutput(); err != nil {
			t.Fatalf("%v %s", err, out)
		}
		l := newLocal(t, local.Config{Sandbox: mode, Hide: []string{data}})
		job := dirJob(t, `git rev-parse HEAD; cat file.txt; echo; git log --format=%s | wc -l; git status --porcelain | wc -l`)
		job.Source = execute.Source{Repo: mirror, SHA: shas[0]}
		res, rec := run(t, l, job)
		if want := shas[0] + "\nv1\n1\n0\n"; res.Failed || rec.output(0) != want {
			t.Errorf("%+v %q, want %q", res, rec.output(0), want)
		}

		// A URL is cloned plainly (no --shared).
		job.Source = execute.Source{Repo: "file://" + repo, SHA: shas[1]}
		res, rec = run(t, l, job)
		if want := shas[1] + "\nv2\n2\n0\n"; res.Failed || rec.output(0) != want {
			t.Errorf("url: %+v %q, want %q", res, rec.output(0), want)
		}
	})
}

func TestSourceErrors(t *testing.T) {
	t.Parallel()
	l := newLocal(t, local.Config{Sandbox: local.SandboxProcessGroup})
	repo, _ := gitRepo(t, "v1")
	for _, c := range []struct {
		name string
		src  execute.Source
		want string
	}{
		{"unknown commit", execute.Source{Repo: repo, SHA: strings.Repeat("ab", 20)}, "git -C"},
		{"not a sha", execute.Source{Repo: repo, SHA: "--orphan"}, "not a commit hash"},
		{"no repo", execute.Source{Repo: filepath.Join(t.TempDir(), "nope"), SHA: "abcd"}, "git clone"},
		{"both", execute.Source{Repo: repo, Dir: t.TempDir()}, "both"},
		{"neither", execute.Source{}, "neither"},
	} {
		job := dirJob(t, "true")
		job.Source = c.src
		_, err := l.Run(context.Background(), job, newRecorder(t))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
		if c.name == "unknown commit" && err != nil && !strings.Contains(err.Error(), "fatal:") {
			t.Errorf("git's stderr missing: %v", err)
		}
	}
}

// TestWorkspaceLifecycle: matrix-style names, concurrent stages of one run, and nothing
// left in Root after success, failure or an infrastructure error.
func TestWorkspaceLifecycle(t *testing.T) {
	t.Parallel()
	eachSandbox(t, func(t *testing.T, mode string) {
		root := filepath.Join(t.TempDir(), "ws")
		l := newLocal(t, local.Config{Sandbox: mode, Root: root})
		var wg sync.WaitGroup
		stages := []string{"test[go1.22,linux]", "test[go1.23,linux]", "../../etc", "build"}
		for i, stage := range stages {
			wg.Go(func() {
				job := dirJob(t, `echo "$PAVED_WORKSPACE"`, fmt.Sprintf("exit %d", i%2))
				job.RunID = "run-1"
				job.Stage = stage
				job.Attempt = 2
				if i == 2 {
					job.Artifacts = []string{"missing"}
				}
				rec := newRecorder(t)
				res, err := l.Run(context.Background(), job, rec)
				if (i == 2) != (err != nil) {
					t.Errorf("%s: %v", stage, err)
				}
				ws := strings.TrimSpace(rec.output(0))
				if !strings.HasPrefix(ws, filepath.Join(root, "run-1")+"/") || strings.Count(ws[len(root):], "/") != 2 {
					t.Errorf("%s: workspace %q", stage, ws)
				}
				if res.Failed != (i%2 == 1) {
					t.Errorf("%s: %+v", stage, res)
				}
			})
		}
		wg.Wait()
		if ents, err := os.ReadDir(root); err != nil || len(ents) != 0 {
			t.Errorf("left in root: %v %v", ents, err)
		}
	})
}

func TestNoSteps(t *testing.T) {
	t.Parallel()
	blobs := newBlobs(t)
	l := newLocal(t, local.Config{Sandbox: local.SandboxProcessGroup, Artifacts: blobs})
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "a"), []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	job := execute.Job{RunID: "r", Stage: "s", Source: execute.Source{Dir: src}, Artifacts: []string{"a"}}
	res, err := l.Run(context.Background(), job, newRecorder(t))
	if err != nil || res.Failed || len(res.Artifacts) != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	if b := readBlob(t, blobs, res.Artifacts[0].Digest); string(b) != "a" {
		t.Errorf("artifact %q", b)
	}
}

func TestNewSandboxChoice(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	l, err := local.New(local.Config{Root: t.TempDir(), Bwrap: "/nonexistent/bwrap", Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	msg := logs.String()
	mu.Unlock()
	if l.Sandbox() != local.SandboxProcessGroup || !strings.Contains(msg, "level=WARN") || !strings.Contains(msg, "install bubblewrap") {
		t.Errorf("auto without bubblewrap: %s, log %q", l.Sandbox(), msg)
	}
	if _, err := local.New(local.Config{Root: t.TempDir(), Sandbox: local.SandboxBubblewrap, Bwrap: "/nonexistent/bwrap"}); err == nil {
		t.Error("explicit bubblewrap without bwrap must fail")
	}
	if l, err := local.New(local.Config{Root: t.TempDir()}); err != nil || l.Sandbox() != local.SandboxBubblewrap {
		t.Errorf("auto with bubblewrap installed: %v %v", l.Sandbox(), err)
	}
	if _, err := local.New(local.Config{Root: t.TempDir(), Sandbox: "docker"}); err == nil {
		t.Error("unknown sandbox accepted")
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// TestInitVersionMismatch: an init of another paved build refuses to speak.
func TestInitVersionMismatch(t *testing.T) {
	t.Parallel()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, local.InitArg, "paved-init/0")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "different paved build") {
		t.Errorf("%v %s", err, out)
	}
}

func TestBadJobs(t *testing.T) {
	t.Parallel()
	l := newLocal(t, local.Config{Sandbox: local.SandboxProcessGroup})
	for name, mutate := range map[string]func(*execute.Job){
		"shell":     func(j *execute.Job) { j.Shell = "zsh" },
		"env name":  func(j *execute.Job) { j.Env = map[string]string{"A=B": "x"} },
		"nul":       func(j *execute.Job) { j.Steps[0].Run = "echo \x00" },
		"no out":    func(j *execute.Job) { j.Artifacts = []string{"x"} },
		"cancelled": nil,
	} {
		job := dirJob(t, "true")
		ctx, cancel := context.WithCancel(context.Background())
		if mutate != nil {
			mutate(&job)
		} else {
			cancel()
		}
		_, err := l.Run(ctx, job, newRecorder(t))
		cancel()
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
