package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/paved/paved/internal/cache"
	"github.com/paved/paved/internal/execute"
	"github.com/paved/paved/internal/execute/workspace"
)

// Sandbox names, as in Config.Sandbox and execute.Result.Sandbox.
const (
	SandboxAuto         = "auto"
	SandboxBubblewrap   = "bubblewrap"
	SandboxProcessGroup = "process-group"
)

// DefaultPath is the steps' PATH when the job's environment has none.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/go/bin"

// Config configures a Local executor. The zero value is usable: every field has a default.
type Config struct {
	// Root is the directory under which each stage attempt gets its workspace,
	// Root/<run>/<stage>-<attempt>, removed when the stage ends. In bubblewrap mode all of
	// Root except the stage's own workspace is hidden from the stage. Default:
	// os.TempDir()/paved-workspaces.
	Root string
	// Sandbox is "auto", "bubblewrap", or "process-group" ("none" is accepted for it).
	// "auto" uses bubblewrap when the bwrap binary is found and a trial sandbox works, and
	// otherwise falls back to process groups with a warning. Default: "auto".
	Sandbox string
	// Bwrap is the bubblewrap binary, a path or a name looked up on PATH. Default: "bwrap".
	Bwrap string
	// InitPath is the binary run as the sandbox's init: it must call RunInit when its first
	// argument is InitArg. Default: os.Executable(), the running paved binary.
	InitPath string
	// Home is the home directory of the user running paved; bubblewrap hides it (with /root
	// and /home) from steps. Default: os.UserHomeDir().
	Home string
	// Hide are more host paths that bubblewrap hides from steps: a directory is covered by an
	// empty tmpfs, a file by /dev/null. cmd/ passes paved's data directory. Paths that do not
	// exist are skipped. Default: none.
	Hide []string
	// NoFileLimit is RLIMIT_NOFILE of steps. Default: 0, the limit paved started with.
	NoFileLimit uint64
	// FileSizeLimit is RLIMIT_FSIZE of steps in bytes: the largest file a step may write.
	// Default: 0, unlimited.
	FileSizeLimit uint64
	// ProcessLimit is RLIMIT_NPROC of steps. The kernel counts every process of the user,
	// not only the stage's, and does not apply it to root. Default: 0, inherited.
	ProcessLimit uint64
	// Cache is the dependency cache that jobs' Caches are restored from and saved to; keep
	// it outside Root and in Hide (bubblewrap then hides it from steps). Default: nil,
	// caches are ignored.
	Cache *cache.Cache
	// Artifacts is the blob store that stages' artifacts are stored in by digest and
	// materialised from; keep it outside Root and in Hide. Default: nil, and a job with
	// Artifacts or ArtifactsIn fails saying so.
	Artifacts *cache.Blobs
	// Logger receives warnings (reduced isolation, stale workspaces) and debug traces.
	// Default: slog.Default().
	Logger *slog.Logger
}

func (c *Config) validate() error {
	if c.Root == "" {
		c.Root = filepath.Join(os.TempDir(), "paved-workspaces")
	}
	root, err := filepath.Abs(c.Root)
	if err != nil {
		return fmt.Errorf("root: %w", err)
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return fmt.Errorf("root: %w", err)
	}
	// Resolved once, so the workspace path the steps see is the one bubblewrap mounts: a
	// symlink in it would make the bind and the tmpfs over Root disagree.
	if c.Root, err = filepath.EvalSymlinks(root); err != nil {
		return fmt.Errorf("root: %w", err)
	}
	// bubblewrap puts a tmpfs over Root: over / or a system directory that hides the
	// steps' tools.
	if c.Root == "/" || underAny(c.Root, "/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64", "/dev", "/proc", "/sys") {
		return fmt.Errorf("root %s: must be a directory of its own, not a system directory", c.Root)
	}
	switch c.Sandbox {
	case "":
		c.Sandbox = SandboxAuto
	case "none":
		c.Sandbox = SandboxProcessGroup
	case SandboxAuto, SandboxBubblewrap, SandboxProcessGroup:
	default:
		return fmt.Errorf("sandbox %q: want auto, bubblewrap or process-group", c.Sandbox)
	}
	if c.Bwrap == "" {
		c.Bwrap = "bwrap"
	}
	if c.InitPath == "" {
		if c.InitPath, err = os.Executable(); err != nil {
			return fmt.Errorf("init path: %w", err)
		}
	}
	if c.InitPath, err = filepath.Abs(c.InitPath); err != nil {
		return fmt.Errorf("init path: %w", err)
	}
	if fi, err := os.Stat(c.InitPath); err != nil {
		return fmt.Errorf("init path: %w", err)
	} else if !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("init path %s: not an executable file", c.InitPath)
	}
	if c.Home == "" {
		c.Home, _ = os.UserHomeDir() // no home: nothing extra to hide
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// underAny reports whether p is one of dirs or below one.
func underAny(p string, dirs ...string) bool {
	for _, d := range dirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// Local runs stages on this machine, each in its own workspace and sandbox.
type Local struct {
	cfg   Config
	mode  string // SandboxBubblewrap or SandboxProcessGroup
	bwrap string // absolute path, in bubblewrap mode
	log   *slog.Logger

	// dirs serialises creating and removing Root/<run>, so one stage removing its empty run
	// directory cannot race a sibling stage creating its workspace in it.
	dirs sync.Mutex
}

var _ execute.Executor = (*Local)(nil)

// New checks the configuration and chooses the sandbox; with "auto" or "bubblewrap" it runs
// one trial sandbox, so a host where bubblewrap cannot work (no user namespaces, seccomp in
// a container) is found out once at start and not at every stage.
func New(cfg Config) (*Local, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	l := &Local{cfg: cfg, log: cfg.Logger, mode: cfg.Sandbox}
	if cfg.Sandbox == SandboxProcessGroup {
		return l, nil
	}
	bwrap, err := probeBwrap(cfg.Bwrap)
	switch {
	case err == nil:
		l.mode, l.bwrap = SandboxBubblewrap, bwrap
	case cfg.Sandbox == SandboxBubblewrap:
		return nil, fmt.Errorf("local: sandbox bubblewrap: %w", err)
	default:
		l.mode = SandboxProcessGroup
		l.log.Warn("bubblewrap is not usable, so stages run as plain process groups with reduced isolation: "+
			"steps can read and write everything the paved user can (home, data directory, other workspaces, /tmp). "+
			"Install bubblewrap (apt-get install bubblewrap) and make sure user namespaces are enabled to isolate stages",
			"reason", err)
	}
	return l, nil
}

// Sandbox returns the isolation in use: "bubblewrap" or "process-group".
func (l *Local) Sandbox() string { return l.mode }

// Run runs one stage attempt; see execute.Executor.
func (l *Local) Run(ctx context.Context, job execute.Job, obs execute.Observer) (res execute.Result, err error) {
	res = execute.Result{Sandbox: l.mode}
	defer func() {
		if err != nil {
			if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
				// The real cause of a failed clone or copy under a cancelled context is the
				// cancellation; the scheduler must see it as such.
				err = fmt.Errorf("%w (%v)", ctx.Err(), err)
			}
			err = fmt.Errorf("local: stage %s attempt %d: %w", job.Stage, job.Attempt, err)
		}
	}()
	if err := checkJob(job, l.cfg.Artifacts != nil); err != nil {
		return res, err
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	dir, err := l.makeStageDir(job)
	if err != nil {
		return res, err
	}
	defer l.removeStageDir(dir)

	started := time.Now()
	alternates, err := workspace.Source(ctx, job.Source, dir.ws)
	if err != nil {
		return res, err
	}
	if err := workspace.Materialise(dir.ws, job.ArtifactsIn, l.cfg.Artifacts); err != nil {
		return res, fmt.Errorf("artifacts in: %w", err)
	}
	l.log.Debug("workspace ready", "run", job.RunID, "stage", job.Stage, "attempt", job.Attempt,
		"workspace", dir.ws, "took", time.Since(started))
	caches, err := l.restoreCaches(ctx, job, dir.ws, obs)
	if err != nil {
		return res, err
	}

	if len(job.Steps) > 0 {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		sres, err := l.runSteps(ctx, job, dir, alternates, obs)
		if err != nil {
			return res, err
		}
		res.Failed, res.FailedStep, res.ExitCode = sres.Failed, sres.FailedStep, sres.ExitCode
		res.CPU, res.MaxRSS = sres.CPU, sres.MaxRSSKiB*1024
		if ctx.Err() == nil {
			// Also after a failed step: a failing test suite is what the report explains.
			res.Reports, res.ReportsNote = workspace.Reports(dir.ws, job.Reports, execute.MaxReportBytes)
		}
		if res.Failed {
			return res, nil
		}
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	arts, err := workspace.StoreArtifacts(dir.ws, job.Artifacts, l.cfg.Artifacts)
	if err != nil {
		return res, err
	}
	if err := l.saveCaches(ctx, caches, dir.ws, obs); err != nil {
		return res, err
	}
	res.Artifacts = arts
	return res, nil
}

// restoreCaches computes each cache's key in the prepared workspace (the key files are the
// checkout's) and restores the best entry. The requests are returned for the save.
func (l *Local) restoreCaches(ctx context.Context, job execute.Job, ws string, obs execute.Observer) ([]cacheRun, error) {
	if l.cfg.Cache == nil || len(job.Caches) == 0 {
		return nil, nil
	}
	var out []cacheRun
	for i, c := range job.Caches {
		started := time.Now()
		req := cache.Request{
			Namespace: c.Namespace, Paths: c.Paths, RestoreKeys: c.RestoreKeys,
			Scopes: cache.Scopes{Write: c.WriteScope, Read: c.ReadScopes},
		}
		key, err := cache.Key(ws, req, c.Key, c.KeyFiles)
		if err != nil {
			return nil, err // a bad key_files glob: the pipeline's mistake, said so
		}
		req.Key = key
		r, err := l.cfg.Cache.Restore(ctx, ws, req)
		if err != nil {
			return nil, err
		}
		obs.Cache(report("restore", i, r, time.Since(started)))
		out = append(out, cacheRun{index: i, req: req, hit: r.Status == cache.Hit})
	}
	return out, nil
}

// cacheRun is a cache restored for a stage, to save when its steps succeed.
type cacheRun struct {
	index int
	req   cache.Request
	hit   bool
}

func (l *Local) saveCaches(ctx context.Context, caches []cacheRun, ws string, obs execute.Observer) error {
	for _, c := range caches {
		if c.hit {
			continue // entries are immutable: an exact hit has nothing new to store
		}
		started := time.Now()
		r, err := l.cfg.Cache.Save(ctx, ws, c.req)
		if err != nil {
			return err
		}
		obs.Cache(report("save", c.index, r, time.Since(started)))
	}
	return nil
}

func report(op string, i int, r cache.Result, took time.Duration) execute.CacheReport {
	return execute.CacheReport{Op: op, Index: i, Key: r.Key, Status: r.Status, Matched: r.Matched, Scope: r.Scope,
		Digest: r.Digest, Size: r.Size, Took: took, Note: r.Note}
}

func checkJob(job execute.Job, artifactStore bool) error {
	switch job.Shell {
	case "", "sh", "bash":
	default:
		return fmt.Errorf("shell %q: want sh or bash", job.Shell)
	}
	for k, v := range job.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.Contains(v, "\x00") {
			return fmt.Errorf("env %q: a name must be non-empty without '=' or NUL, a value without NUL", k)
		}
	}
	for i, s := range job.Steps {
		if strings.Contains(s.Run, "\x00") {
			return fmt.Errorf("step %d (%s): command contains a NUL byte", i, s.Name)
		}
	}
	if (len(job.Artifacts) > 0 || len(job.ArtifactsIn) > 0) && !artifactStore {
		return errors.New("the job has artifacts and the executor no artifact store (local.Config.Artifacts)")
	}
	return nil
}

// stageDir is where one stage attempt lives on the host.
type stageDir struct {
	run string // Root/<run>
	ws  string // Root/<run>/<stage>-<attempt>: the workspace
	// tmp is Root/<run>/<stage>-<attempt>.tmp, the private TMPDIR and HOME of the steps in
	// process-group mode (bubblewrap gives them a tmpfs instead). Sanitised names contain
	// no '.', so it cannot collide with a workspace.
	tmp string
}

func (l *Local) makeStageDir(job execute.Job) (stageDir, error) {
	run := filepath.Join(l.cfg.Root, sanitize(job.RunID))
	ws := filepath.Join(run, sanitize(job.Stage)+"-"+strconv.Itoa(job.Attempt))
	d := stageDir{run: run, ws: ws}
	if l.mode == SandboxProcessGroup {
		d.tmp = ws + ".tmp"
	}
	l.dirs.Lock()
	defer l.dirs.Unlock()
	if err := os.MkdirAll(run, 0o700); err != nil {
		return d, fmt.Errorf("workspace: %w", err)
	}
	for _, p := range []string{d.ws, d.tmp} {
		if p == "" {
			continue
		}
		err := os.Mkdir(p, 0o755)
		if errors.Is(err, os.ErrExist) {
			// Left by a paved that died mid-stage: the attempt is being run again.
			l.log.Warn("removing stale workspace", "path", p)
			if err = workspace.RemoveAll(p); err == nil {
				err = os.Mkdir(p, 0o755)
			}
		}
		if err != nil {
			return d, fmt.Errorf("workspace: %w", err)
		}
	}
	return d, nil
}

func (l *Local) removeStageDir(d stageDir) {
	for _, p := range []string{d.ws, d.tmp} {
		if p == "" {
			continue
		}
		if err := workspace.RemoveAll(p); err != nil {
			l.log.Warn("cannot remove workspace", "path", p, "err", err)
		}
	}
	l.dirs.Lock()
	_ = os.Remove(d.run) // fails while a sibling stage still has its workspace there
	l.dirs.Unlock()
}

// sanitize makes a run or stage name one safe path element. Matrix stages are named like
// "test[go1.22,linux]"; anything outside [A-Za-z0-9_-] becomes '_', and when that changed
// the name a hash of the original is appended, so "a.b" and "a_b" still get different
// workspaces.
func sanitize(name string) string {
	var b strings.Builder
	for _, r := range name {
		if r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	s := b.String()
	if s == name && s != "" && len(s) <= 64 {
		return s
	}
	sum := sha256.Sum256([]byte(name))
	if len(s) > 64 {
		s = s[:64]
	}
	return s + "-" + hex.EncodeToString(sum[:4])
}

// stepEnv is the complete environment of every step: the job's, plus what the executor owns.
func stepEnv(job execute.Job, ws, home, tmp string) []string {
	env := maps.Clone(job.Env)
	if env == nil {
		env = map[string]string{}
	}
	env["HOME"] = home
	env["TMPDIR"] = tmp
	env["PAVED_WORKSPACE"] = ws
	if _, ok := env["PATH"]; !ok {
		env["PATH"] = DefaultPath
	}
	out := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// probeBwrap finds bubblewrap and runs a trivial command in a sandbox with the namespaces
// stages use.
func probeBwrap(name string) (string, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return "", err
	}
	truePath, err := exec.LookPath("true")
	if err != nil {
		return "", fmt.Errorf("probe: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	args := append([]string{"--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"}, bwrapFlags...)
	cmd := exec.CommandContext(ctx, path, append(args, "--", truePath)...)
	cmd.Env = []string{}
	var stderr tailBuffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("trial sandbox: %w: %s", err, stderr.String())
	}
	return path, nil
}

// tailBuffer keeps the last 16 KiB written to it: enough for an init's or bubblewrap's
// complaint, bounded against a runaway writer.
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

const tailMax = 16 << 10

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > tailMax {
		t.b = append(t.b[:0], t.b[len(t.b)-tailMax:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}

var _ io.Writer = (*tailBuffer)(nil)
