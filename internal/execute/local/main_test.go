package local_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paved/paved/internal/cache"
	"github.com/paved/paved/internal/execute"
	"github.com/paved/paved/internal/execute/local"
)

// TestMain lets the test binary be the sandbox init, as cmd/paved's main does for the paved
// binary: Config.InitPath defaults to os.Executable(), which is this binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == local.InitArg {
		os.Exit(local.RunInit(os.Args[2:]))
	}
	os.Exit(m.Run())
}

var sandboxes = []string{local.SandboxBubblewrap, local.SandboxProcessGroup}

// eachSandbox runs f once per sandbox mode, in parallel.
func eachSandbox(t *testing.T, f func(t *testing.T, mode string)) {
	t.Helper()
	for _, mode := range sandboxes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			f(t, mode)
		})
	}
}

func newLocal(t testing.TB, cfg local.Config) *local.Local {
	t.Helper()
	if cfg.Root == "" {
		cfg.Root = filepath.Join(t.TempDir(), "ws")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if cfg.Artifacts == nil {
		cfg.Artifacts = newBlobs(t)
	}
	l, err := local.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Sandbox != "" && cfg.Sandbox != local.SandboxAuto && l.Sandbox() != cfg.Sandbox {
		t.Fatalf("sandbox %s, want %s", l.Sandbox(), cfg.Sandbox)
	}
	return l
}

func newBlobs(t testing.TB) *cache.Blobs {
	t.Helper()
	b, err := cache.NewBlobs(filepath.Join(t.TempDir(), "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readBlob reads a stored artifact's bytes.
func readBlob(t testing.TB, b *cache.Blobs, digest string) []byte {
	t.Helper()
	p, err := b.Path(digest)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// recorder is an Observer that checks the Observer contract on every call and keeps what
// it saw.
type recorder struct {
	mu       sync.Mutex
	t        testing.TB
	events   []string // "start 0", "finish 0 code", compact
	out      map[int]*bytes.Buffer
	running  int // -1 when no step runs
	next     int
	finished map[int]int // exit codes
	took     map[int]time.Duration
	onOutput func(step int, all []byte)
	caches   []execute.CacheReport
}

func newRecorder(t testing.TB) *recorder {
	return &recorder{t: t, out: map[int]*bytes.Buffer{}, running: -1, finished: map[int]int{}, took: map[int]time.Duration{}}
}

func (r *recorder) StepStarted(step int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running != -1 || step != r.next {
		r.t.Errorf("StepStarted(%d) while running %d, next %d", step, r.running, r.next)
	}
	r.running = step
	r.out[step] = &bytes.Buffer{}
	r.events = append(r.events, fmt.Sprintf("start %d", step))
}

func (r *recorder) Output(step int, p []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if step != r.running {
		r.t.Errorf("Output(%d) while running %d", step, r.running)
		return
	}
	r.out[step].Write(p)
	if r.onOutput != nil {
		r.onOutput(step, r.out[step].Bytes())
	}
}

func (r *recorder) StepFinished(step int, code int, took time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if step != r.running {
		r.t.Errorf("StepFinished(%d) while running %d", step, r.running)
	}
	r.running = -1
	r.next = step + 1
	r.finished[step] = code
	r.took[step] = took
	r.events = append(r.events, fmt.Sprintf("finish %d %d", step, code))
}

func (r *recorder) Cache(c execute.CacheReport) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running != -1 {
		r.t.Errorf("Cache(%+v) while step %d runs", c, r.running)
	}
	r.caches = append(r.caches, c)
	r.events = append(r.events, fmt.Sprintf("cache %s %d %s", c.Op, c.Index, c.Status))
}

func (r *recorder) output(step int) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b := r.out[step]; b != nil {
		return b.String()
	}
	return ""
}

func (r *recorder) eventList() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.events, ", ")
}

var _ execute.Observer = (*recorder)(nil)

// steps builds a job's steps from commands.
func steps(cmds ...string) []execute.Step {
	out := make([]execute.Step, len(cmds))
	for i, c := range cmds {
		out[i] = execute.Step{Name: fmt.Sprintf("step%d", i), Run: c}
	}
	return out
}

// dirJob is a job whose workspace starts as a copy of a fresh empty directory.
func dirJob(t testing.TB, cmds ...string) execute.Job {
	return execute.Job{
		RunID:  "run-" + strings.ReplaceAll(t.Name(), "/", "_"),
		Stage:  "build",
		Source: execute.Source{Dir: t.TempDir()},
		Steps:  steps(cmds...),
	}
}

func run(t testing.TB, l *local.Local, job execute.Job) (execute.Result, *recorder) {
	t.Helper()
	rec := newRecorder(t)
	res, err := l.Run(context.Background(), job, rec)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res, rec
}

// gitRepo makes a repository with one commit per content of file.txt and returns its path
// and the commits, oldest first.
func gitRepo(t testing.TB, contents ...string) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	g := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_GLOBAL=/dev/null")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	g("init", "--quiet", "--initial-branch=main")
	var shas []string
	for i, c := range contents {
		if err := os.WriteFile(filepath.Join(dir, "file.txt"), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		g("add", "file.txt")
		g("commit", "--quiet", "-m", fmt.Sprintf("commit %d", i))
		shas = append(shas, g("rev-parse", "HEAD"))
	}
	return dir, shas
}

// processesWith lists pids whose command line contains marker.
func processesWith(marker string) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if bytes.Contains(b, []byte(marker)) {
			out = append(out, e.Name()+":"+string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
		}
	}
	return out
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSmoke(t *testing.T) {
	t.Parallel()
	eachSandbox(t, func(t *testing.T, mode string) {
		l := newLocal(t, local.Config{Sandbox: mode})
		res, rec := run(t, l, dirJob(t, "echo hello", "echo world >&2"))
		if res.Failed || res.Sandbox != mode {
			t.Fatalf("result %+v", res)
		}
		if got := rec.output(0) + rec.output(1); got != "hello\nworld\n" {
			t.Fatalf("output %q", got)
		}
	})
}

var discard = slog.New(slog.DiscardHandler)
