package local

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// InitArg is the hidden first argument that turns the paved binary into a sandbox init.
// cmd/paved's main must check for it before anything else (no flag parsing, no config, no
// logging setup) and hand over to RunInit:
//
//	if len(os.Args) > 1 && os.Args[1] == local.InitArg {
//		os.Exit(local.RunInit(os.Args[2:]))
//	}
const InitArg = "__paved-sandbox-init"

const (
	prSetDumpable       = 4  // PR_SET_DUMPABLE from linux/prctl.h
	prSetChildSubreaper = 36 // PR_SET_CHILD_SUBREAPER from linux/prctl.h
	rlimitNproc         = 6  // RLIMIT_NPROC, missing from package syscall
)

// RunInit is the init process of one stage's sandbox. It reads an initSpec from stdin, runs
// the steps one after another in the workspace, and writes frames to stdout. It returns the
// process exit code. The host talks to it only through these two pipes, so the same code
// runs inside bubblewrap and in a bare process group.
func RunInit(args []string) int {
	if len(args) != 1 || args[0] != protocolVersion {
		fmt.Fprintf(os.Stderr, "paved sandbox init: protocol %q, host wants %q: the init binary is a different paved build than the server\n", protocolVersion, strings.Join(args, " "))
		return 2
	}
	// Any descriptor the host (or whatever started the host) leaked to us must not reach the
	// steps. Go opens its own with O_CLOEXEC; this catches the inherited ones.
	closeInheritedFDs()

	// Frames go to a duplicate of stdout, not fd 1 itself: the Go runtime kills a process
	// that writes to a broken pipe on fd 1, and we want to notice a dead host and clean up.
	fd, err := syscall.Dup(1)
	if err != nil {
		fmt.Fprintf(os.Stderr, "paved sandbox init: dup stdout: %v\n", err)
		return 1
	}
	syscall.CloseOnExec(fd)
	out := &frameWriter{f: os.NewFile(uintptr(fd), "frames")}

	var spec initSpec
	if err := json.NewDecoder(os.Stdin).Decode(&spec); err != nil {
		out.fail("read spec: %v", err)
		return 1
	}
	if err := setup(spec); err != nil {
		out.fail("%v", err)
		return 1
	}

	// SIGTERM comes from the host's death (Pdeathsig in process-group mode) or an operator;
	// either way nothing this stage started may outlive it.
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		<-term
		killDescendants(os.Getpid())
		os.Exit(143)
	}()

	r := newStepRunner(spec, out)
	if err := r.run(); err != nil {
		killDescendants(os.Getpid())
		out.fail("%v", err)
		return 1
	}
	// Background processes a step left behind end with the stage.
	killDescendants(os.Getpid())
	reapZombies()
	out.frame(frameDone, 0, childUsage())
	if out.err != nil {
		return 1
	}
	return 0
}

// setup makes the process the root of the stage's process tree and applies limits, before
// any step exists, so that every step inherits both.
func setup(spec initSpec) error {
	// Not dumpable: a step (without CAP_SYS_PTRACE, as in bubblewrap) can then neither
	// ptrace the init nor open its descriptors through /proc/PID/fd, so it cannot write
	// forged frames into the host's pipe. exec resets the flag, so steps are unaffected.
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetDumpable, 0, 0); e != 0 {
		return fmt.Errorf("set not dumpable: %v", e)
	}
	// As a subreaper the init inherits orphans (a step's `daemon &` whose shell exited), so
	// killDescendants still finds them, in process-group mode the only handle on a process
	// that called setsid.
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); e != 0 {
		return fmt.Errorf("set child subreaper: %v", e)
	}
	set := func(name string, res int, v uint64) error {
		if err := syscall.Setrlimit(res, &syscall.Rlimit{Cur: v, Max: v}); err != nil {
			return fmt.Errorf("set %s to %d: %v", name, v, err)
		}
		return nil
	}
	if err := set("RLIMIT_CORE", syscall.RLIMIT_CORE, 0); err != nil {
		return err
	}
	if v := spec.Limits.NoFile; v > 0 {
		if err := set("RLIMIT_NOFILE", syscall.RLIMIT_NOFILE, v); err != nil {
			return err
		}
	}
	if v := spec.Limits.FileSize; v > 0 {
		if err := set("RLIMIT_FSIZE", syscall.RLIMIT_FSIZE, v); err != nil {
			return err
		}
	}
	if v := spec.Limits.Procs; v > 0 {
		if err := set("RLIMIT_NPROC", rlimitNproc, v); err != nil {
			return err
		}
	}
	for _, d := range spec.Mkdir {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	return nil
}

func closeInheritedFDs() {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	for _, n := range names {
		if fd, err := strconv.Atoi(n); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}

// frameWriter writes frames to the host. Callers serialise access (stepRunner.mu).
type frameWriter struct {
	f   *os.File
	buf []byte
	err error
}

func (w *frameWriter) frame(t frameType, step int, payload []byte) {
	if w.err != nil {
		return
	}
	w.buf = appendFrame(w.buf[:0], t, step, payload)
	_, w.err = w.f.Write(w.buf)
}

func (w *frameWriter) fail(format string, args ...any) {
	w.frame(frameError, 0, []byte(fmt.Sprintf(format, args...)))
	fmt.Fprintf(os.Stderr, "paved sandbox init: "+format+"\n", args...)
}

// stepRunner runs the steps and multiplexes their output.
//
// All steps write to one pipe, created once: a step's stdout and stderr are its write end
// directly, so os/exec starts no copying goroutine and the step's output keeps its
// interleaving. After a step's shell has exited the init writes a random sentinel into the
// same pipe. A pipe is FIFO and a write of up to PIPE_BUF bytes is atomic, so every byte the
// step wrote before it exited is read before the sentinel: the reader forwards the bytes
// before it as the step's output and then lets the step finish. That is exact without
// waiting for end-of-file, which a background process (`server &`) holding the pipe would
// delay forever, and without closing the pipe under such a process (which would kill it with
// SIGPIPE on its next log line and break the "start a server in one step, test it in the
// next" pattern).
type stepRunner struct {
	spec     initSpec
	shell    string // absolute path, or "" when not found
	sentinel []byte
	seen     chan struct{}

	mu  sync.Mutex
	out *frameWriter
	// running is the step started and not yet finished, -1 between steps.
	running int
	// segment counts the sentinels read: the bytes the reader sees now belong to step
	// segment. Output is attributed by this count, not by which step runs at the moment
	// it is read, so nothing depends on how the reader and the step loop interleave.
	segment int
	// pending is output of step pendingStep read before that step started (a background
	// process writing between steps); it goes to that step when it starts.
	pending     []byte
	pendingStep int
}

// maxPending bounds what background processes may write between two steps.
const maxPending = 1 << 20

func newStepRunner(spec initSpec, out *frameWriter) *stepRunner {
	// seen is unbuffered: the reader waits at each sentinel until the step loop takes it,
	// so it is never more than one step ahead and pending holds one step's bytes.
	s := &stepRunner{spec: spec, out: out, running: -1, seen: make(chan struct{}), sentinel: newSentinel()}
	s.shell = lookPath(spec.Shell, envValue(spec.Env, "PATH"))
	return s
}

func (s *stepRunner) run() error {
	if len(s.spec.Steps) == 0 {
		return nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	readErr := make(chan error, 1)
	go func() { readErr <- s.read(r) }()

	env := s.spec.Env
	if env == nil {
		env = []string{} // never nil: nil means "inherit" to os/exec
	}
	for i, script := range s.spec.Steps {
		s.start(i)
		began := time.Now()
		code := s.exec(script, env, devnull, w)
		took := time.Since(began)
		if _, err := w.Write(s.sentinel); err != nil {
			return fmt.Errorf("write sentinel: %v", err)
		}
		select {
		case <-s.seen:
		case err := <-readErr:
			return fmt.Errorf("read step output: %v", err)
		}
		if err := s.finish(i, code, took); err != nil {
			return err
		}
		// No step runs now, so collecting any child cannot steal a step's exit status.
		reapZombies()
		if code != 0 {
			break
		}
	}
	return nil
}

// exec runs one step to its end and returns its exit code; a shell that cannot be started is
// reported in the step's own output with code 127, as a shell would for a missing command.
func (s *stepRunner) exec(script string, env []string, stdin, out *os.File) int {
	if s.shell == "" {
		fmt.Fprintf(out, "paved: %s: not found in PATH %q\n", s.spec.Shell, envValue(s.spec.Env, "PATH"))
		return 127
	}
	args := []string{s.spec.Shell, "-e", "-c", script}
	if s.spec.Shell == "bash" {
		args = []string{"bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script}
	}
	cmd := &exec.Cmd{Path: s.shell, Args: args, Env: env, Dir: s.spec.Dir, Stdin: stdin, Stdout: out, Stderr: out}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(out, "paved: cannot start %s: %v\n", s.shell, err)
		return 127
	}
	if err := cmd.Wait(); cmd.ProcessState == nil {
		fmt.Fprintf(out, "paved: wait for step: %v\n", err)
		return 255
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	switch {
	case !ok:
		return cmd.ProcessState.ExitCode()
	case ws.Signaled():
		return 128 + int(ws.Signal()) // the shell convention
	default:
		return ws.ExitStatus()
	}
}

func (s *stepRunner) start(i int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.out.frame(frameStarted, i, nil)
	s.running = i
	if i == s.pendingStep && len(s.pending) > 0 {
		s.emit(i, s.pending)
		s.pending = s.pending[:0]
	}
}

func (s *stepRunner) finish(i, code int, took time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.out.frame(frameFinished, i, finishedPayload(code, took))
	s.running = -1
	if s.out.err != nil {
		return fmt.Errorf("write to host: %v", s.out.err)
	}
	return nil
}

// forward sends output to its step, or keeps it until that step starts.
func (s *stepRunner) forward(p []byte) {
	if len(p) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running == s.segment {
		s.emit(s.segment, p)
		return
	}
	if s.pendingStep != s.segment {
		s.pending, s.pendingStep = s.pending[:0], s.segment
	}
	if room := maxPending - len(s.pending); room > 0 {
		s.pending = append(s.pending, p[:min(len(p), room)]...)
	}
}

// emit sends output frames, in chunks that stay far below maxFramePayload.
func (s *stepRunner) emit(step int, p []byte) {
	for len(p) > 0 {
		n := min(len(p), 64<<10)
		s.out.frame(frameOutput, step, p[:n])
		p = p[n:]
	}
}

func (s *stepRunner) stepEnded() {
	s.mu.Lock()
	s.segment++
	s.mu.Unlock()
	s.seen <- struct{}{}
}

// read forwards the pipe's bytes and recognises sentinels. A sentinel can be split across
// two reads, so a tail of a chunk that could be the start of one is held back (carry) until
// the next read settles it.
func (s *stepRunner) read(r io.Reader) error {
	sl := len(s.sentinel)
	buf := make([]byte, 64<<10+sl)
	carry := 0
	for {
		n, err := r.Read(buf[carry : carry+64<<10])
		if err != nil {
			return err
		}
		data := buf[:carry+n]
		for {
			i := bytes.Index(data, s.sentinel)
			if i < 0 {
				break
			}
			s.forward(data[:i])
			s.stepEnded()
			data = data[i+sl:]
		}
		keep := partialSuffix(data, s.sentinel)
		s.forward(data[:len(data)-keep])
		carry = copy(buf, data[len(data)-keep:])
	}
}

// newSentinel returns 32 random bytes whose first byte does not occur again. Such a string
// cannot overlap itself (a period p would need s[p] == s[0]), so output ending in part of
// the sentinel can never combine with the real one into an earlier match.
func newSentinel() []byte {
	s := make([]byte, 32)
	for {
		_, _ = rand.Read(s)
		if bytes.IndexByte(s[1:], s[0]) < 0 {
			return s
		}
	}
}

// partialSuffix returns the length of the longest suffix of data that is a proper prefix of
// sentinel.
func partialSuffix(data, sentinel []byte) int {
	for k := min(len(data), len(sentinel)-1); k > 0; k-- {
		if bytes.Equal(data[len(data)-k:], sentinel[:k]) {
			return k
		}
	}
	return 0
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// lookPath finds an executable in a PATH value. exec.LookPath would search the init's own
// PATH, which is empty on purpose: the steps' PATH is the one that counts.
func lookPath(name, path string) string {
	if strings.Contains(name, "/") {
		return name
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// childUsage is what the steps used: every process of the stage is the init's descendant
// and, the init being their reaper, counted in its children's usage once reaped. The
// init's own (Go runtime) time is not in it. Max RSS is the largest one process had, not a
// sum: that is what the kernel keeps.
func childUsage() []byte {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		return nil
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return usagePayload(cpu, ru.Maxrss)
}
