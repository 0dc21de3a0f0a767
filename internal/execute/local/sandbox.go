package local

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/paved/paved/internal/execute"
)

// initInSandbox is where bubblewrap mounts the init binary. A fixed path under a fresh tmpfs,
// so it is reachable whatever the host hides, and the host's path says nothing to the steps.
const initInSandbox = "/run/paved/init"

// bwrapFlags are the namespace and lifetime flags of every bubblewrap sandbox (and the trial
// one in New).
var bwrapFlags = []string{
	// New user, pid, ipc, uts, cgroup and mount namespaces; builds need the network.
	"--unshare-all", "--share-net",
	// The sandbox dies with bwrap, and bwrap with paved (Pdeathsig): no orphaned stages.
	"--die-with-parent",
	// setsid: a step cannot push input into a terminal paved might have (TIOCSTI).
	"--new-session",
	// The init is pid 1 of the sandbox, not a bubblewrap reaper whose descriptors (the
	// frames pipe among them) a step could open through /proc/1/fd. As pid 1 it cannot be
	// killed from inside either, and its exit ends every process of the sandbox.
	"--as-pid-1",
	// Without this, a sandbox started by root keeps every capability in its user namespace,
	// which is enough to `mount -o remount,rw /` or unmount the tmpfs over a hidden home.
	"--cap-drop", "ALL",
}

// stepsResult is how the steps ended when the sandbox did its part.
type stepsResult struct {
	Failed     bool
	FailedStep int
	ExitCode   int
	// CPU and MaxRSSKiB are what the steps' processes used (the done frame).
	CPU       time.Duration
	MaxRSSKiB int64
}

// sandbox is one started init, in bubblewrap or bare.
type sandbox struct {
	cmd    *exec.Cmd
	frames *os.File // read end of the init's stdout
	stderr tailBuffer
	bwrap  bool

	mu       sync.Mutex
	nsInit   *os.Process // bubblewrap: pid 1 of the sandbox's pid namespace, when known
	fallback *time.Timer // armed by kill
	waiting  bool        // Wait may reap the init: its pid and group id are no longer ours
}

func (l *Local) runSteps(ctx context.Context, job execute.Job, dir stageDir, alternates []string, obs execute.Observer) (stepsResult, error) {
	shell := job.Shell
	if shell == "" {
		shell = "sh"
	}
	spec := initSpec{
		Dir:   dir.ws,
		Shell: shell,
		Steps: make([]string, len(job.Steps)),
		Limits: limits{
			NoFile:   l.cfg.NoFileLimit,
			FileSize: l.cfg.FileSizeLimit,
			Procs:    l.cfg.ProcessLimit,
		},
	}
	for i, s := range job.Steps {
		spec.Steps[i] = s.Run
	}
	home, tmp := "/tmp/home", "/tmp" // on the sandbox's private tmpfs
	if l.mode == SandboxProcessGroup {
		home, tmp = filepath.Join(dir.tmp, "home"), dir.tmp
	}
	spec.Env = stepEnv(job, dir.ws, home, tmp)
	spec.Mkdir = []string{home}
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return stepsResult{}, err
	}

	sb, err := l.start(dir.ws, alternates, specJSON)
	if err != nil {
		return stepsResult{}, err
	}
	l.log.Debug("sandbox started", "stage", job.Stage, "sandbox", l.mode, "pid", sb.cmd.Process.Pid)

	// Cancellation kills from another goroutine; the read loop below then sees the end of
	// the stream. The loop must not return before that goroutine is done, or it could
	// signal a process group whose leader was already reaped (and whose id was reused).
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-ctx.Done():
			sb.kill()
		case <-stop:
		}
	}()
	res, done, initErr, protoErr := readFrames(sb.frames, len(job.Steps), obs)
	if protoErr != nil {
		sb.kill()
	}
	close(stop)
	<-watched
	sb.mu.Lock()
	sb.waiting = true
	if sb.fallback != nil {
		sb.fallback.Stop()
	}
	sb.mu.Unlock()
	if !sb.bwrap {
		// The init killed what the stage left behind before it closed its stdout; this
		// catches anything still in the group. The init is at worst a zombie until Wait, so
		// the group id cannot have been reused.
		_ = syscall.Kill(-sb.cmd.Process.Pid, syscall.SIGKILL)
	}
	waitErr := sb.cmd.Wait()
	sb.frames.Close()

	switch {
	case ctx.Err() != nil:
		// Even when the init got to report (the kill ended a step, which then "failed"),
		// the stage was cancelled, and the scheduler must see that and not a failure.
		return res, ctx.Err()
	case protoErr != nil:
		return res, fmt.Errorf("sandbox protocol: %w: %s", protoErr, sb.stderr.String())
	case initErr != "":
		return res, fmt.Errorf("sandbox init: %s", initErr)
	case !done:
		return res, fmt.Errorf("sandbox ended before the steps did (%v): %s", waitErr, sb.stderr.String())
	}
	return res, nil
}

// readFrames dispatches frames to the observer and checks that they come in the order the
// Observer contract promises, so a confused init cannot confuse the scheduler.
func readFrames(r io.Reader, steps int, obs execute.Observer) (res stepsResult, done bool, initErr string, err error) {
	fr := newFrameReader(r)
	next, running := 0, false
	for {
		t, step, p, err := fr.next()
		if err == io.EOF {
			return res, done, initErr, nil
		}
		if err != nil {
			return res, done, initErr, err
		}
		if done {
			return res, done, initErr, fmt.Errorf("frame %q after done", t)
		}
		switch t {
		case frameStarted:
			if running || step != next || step >= steps || res.Failed {
				return res, done, initErr, fmt.Errorf("step %d started out of order", step)
			}
			running = true
			obs.StepStarted(step)
		case frameOutput:
			if !running || step != next {
				return res, done, initErr, fmt.Errorf("output of step %d while step %d runs", step, next)
			}
			obs.Output(step, p)
		case frameFinished:
			if !running || step != next {
				return res, done, initErr, fmt.Errorf("step %d finished out of order", step)
			}
			code, took, err := parseFinished(p)
			if err != nil {
				return res, done, initErr, err
			}
			running = false
			next++
			obs.StepFinished(step, code, took)
			if code != 0 {
				res = stepsResult{Failed: true, FailedStep: step, ExitCode: code}
			}
		case frameDone:
			if running || (!res.Failed && next != steps) {
				return res, done, initErr, fmt.Errorf("done after %d of %d steps", next, steps)
			}
			if res.CPU, res.MaxRSSKiB, err = parseUsage(p); err != nil {
				return res, done, initErr, err
			}
			done = true
		case frameError:
			initErr = string(p)
		default:
			return res, done, initErr, fmt.Errorf("unknown frame type %q", t)
		}
	}
}

// start launches the init, in bubblewrap or in its own process group, with the spec on its
// stdin.
func (l *Local) start(ws string, alternates []string, spec []byte) (*sandbox, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	sb := &sandbox{frames: r, bwrap: l.mode == SandboxBubblewrap}
	var info *os.File // read end of bubblewrap's --info-fd
	if sb.bwrap {
		infoR, infoW, err := os.Pipe()
		if err != nil {
			r.Close()
			w.Close()
			return nil, err
		}
		info = infoR
		sb.cmd = exec.Command(l.bwrap, l.bwrapArgs(ws, alternates)...)
		sb.cmd.ExtraFiles = []*os.File{infoW} // fd 3, --info-fd 3
		defer infoW.Close()
		// bwrap dies with paved; --die-with-parent takes the sandbox with it.
		sb.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	} else {
		sb.cmd = exec.Command(l.cfg.InitPath, InitArg, protocolVersion)
		sb.cmd.Dir = ws
		// SIGTERM, not SIGKILL, when paved dies: the init then kills the descendants it
		// holds as subreaper, including those that left the process group.
		sb.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	}
	sb.cmd.Env = []string{} // the host's environment, secrets included, stays out
	sb.cmd.Stdin = bytes.NewReader(spec)
	sb.cmd.Stdout = w
	sb.cmd.Stderr = &sb.stderr
	sb.cmd.WaitDelay = 5 * time.Second // for the stdin and stderr copies only
	err = sb.cmd.Start()
	w.Close() // the init holds the only write end now: its exit is our end of stream
	if err != nil {
		r.Close()
		if info != nil {
			info.Close()
		}
		return nil, fmt.Errorf("start sandbox: %w", err)
	}
	if info != nil {
		go sb.readInfo(info)
	}
	return sb, nil
}

// readInfo learns the host pid of the sandbox's pid 1 from bubblewrap.
func (sb *sandbox) readInfo(info *os.File) {
	defer info.Close()
	var v struct {
		ChildPid int `json:"child-pid"`
	}
	if err := json.NewDecoder(info).Decode(&v); err != nil || v.ChildPid <= 0 {
		return
	}
	// os.FindProcess holds a pidfd: signalling it later cannot hit a recycled pid.
	p, err := os.FindProcess(v.ChildPid)
	if err != nil {
		return
	}
	sb.mu.Lock()
	sb.nsInit = p
	sb.mu.Unlock()
}

// kill ends the whole process tree of the stage.
//
// bubblewrap: SIGKILL to pid 1 of the sandbox's pid namespace (the init). The kernel then kills every
// other process of the namespace and reaps them before pid 1 itself is reaped, so when
// bwrap (its parent) exits, nothing of the stage is left: no process escapes a pid
// namespace, not even one that called setsid. If that pid is not known yet, bwrap's group
// is killed and --die-with-parent does the rest.
//
// process group: the init is a child subreaper, so while it lives every process the stage
// started is its descendant, wherever it moved its session or group; those are killed
// first, then the group with the init.
func (sb *sandbox) kill() {
	pid := sb.cmd.Process.Pid
	if sb.bwrap {
		sb.mu.Lock()
		p := sb.nsInit
		sb.mu.Unlock()
		if p == nil || p.Signal(syscall.SIGKILL) != nil {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	} else {
		killDescendants(pid)
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
	// Last resort, should the tree not end (a process stuck in the kernel holding the
	// frames pipe): stop reading, so Run returns.
	sb.mu.Lock()
	defer sb.mu.Unlock()
	sb.fallback = time.AfterFunc(30*time.Second, func() {
		sb.mu.Lock()
		defer sb.mu.Unlock()
		if !sb.waiting {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			sb.frames.Close()
		}
	})
}

// bwrapArgs builds the sandbox's file system. bubblewrap applies mounts in order, a later
// one over an earlier one, so the order is: the read-only host, the private and hidden
// directories, then the stage's workspace bound writable over whatever hid it, then the
// object stores its git checkout borrows from, then the init.
func (l *Local) bwrapArgs(ws string, alternates []string) []string {
	a := []string{
		"--ro-bind", "/", "/",
		"--dev", "/dev",
		"--proc", "/proc",
		"--tmpfs", "/tmp",
		"--tmpfs", "/run",
	}
	for _, h := range l.hidden() {
		if h.dir {
			a = append(a, "--tmpfs", h.path)
		} else {
			a = append(a, "--ro-bind", "/dev/null", h.path)
		}
	}
	// Other stages' workspaces, of this run and others.
	a = append(a, "--tmpfs", l.cfg.Root, "--bind", ws, ws)
	// A `git clone --shared` workspace reads objects from the source repository; that
	// repository may sit in a hidden directory (paved's data directory), so its object
	// stores are put back, read-only.
	for _, p := range alternates {
		a = append(a, "--ro-bind", p, p)
	}
	a = append(a, "--ro-bind", l.cfg.InitPath, initInSandbox, "--chdir", ws, "--info-fd", "3")
	a = append(a, bwrapFlags...)
	return append(a, "--", initInSandbox, InitArg, protocolVersion)
}

type hiddenPath struct {
	path string
	dir  bool
}

// hidden resolves what to hide, at each stage: a path created after New is hidden too.
// Parents come before their children (sorted), "/" and missing paths are skipped.
func (l *Local) hidden() []hiddenPath {
	paths := append([]string{l.cfg.Home, "/root", "/home"}, l.cfg.Hide...)
	seen := map[string]bool{}
	var out []hiddenPath
	for _, p := range paths {
		if p == "" || !filepath.IsAbs(p) {
			continue
		}
		rp, err := filepath.EvalSymlinks(p)
		// The sandbox mounts its own /dev, /proc, /tmp and /run: nothing there to hide,
		// and a tmpfs over /dev would break every step.
		if err != nil || rp == "/" || seen[rp] || underAny(rp, "/dev", "/proc", "/tmp", "/run") {
			continue
		}
		fi, err := os.Stat(rp)
		if err != nil {
			continue
		}
		seen[rp] = true
		out = append(out, hiddenPath{path: rp, dir: fi.IsDir()})
	}
	slices.SortFunc(out, func(a, b hiddenPath) int { return strings.Compare(a.path, b.path) })
	return out
}
