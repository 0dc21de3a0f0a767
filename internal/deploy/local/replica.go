package local

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Probe is an HTTP check of a replica with Kubernetes semantics: GET Path every Period; a
// status from 200 to 399 within Timeout is a success. FailureThreshold consecutive failures
// flip the probe to failing; SuccessThreshold consecutive successes flip it back.
type Probe struct {
	Path             string        // default "/"
	InitialDelay     time.Duration // default 0
	Period           time.Duration // default 10s
	Timeout          time.Duration // default 1s
	SuccessThreshold int           // default 1
	FailureThreshold int           // default 3
}

func (p *Probe) withDefaults() Probe {
	out := *p
	if out.Path == "" {
		out.Path = "/"
	}
	if out.Period <= 0 {
		out.Period = 10 * time.Second
	}
	if out.Timeout <= 0 {
		out.Timeout = time.Second
	}
	if out.SuccessThreshold <= 0 {
		out.SuccessThreshold = 1
	}
	if out.FailureThreshold <= 0 {
		out.FailureThreshold = 3
	}
	return out
}

// ReplicaSpec is what a replica runs.
type ReplicaSpec struct {
	// Binary is the executable to start; it must listen on $PORT.
	Binary string
	// Version labels the replica's requests in the proxy's metrics.
	Version string
	Args    []string
	// Env is added to the environment paved runs with (PORT is set by the target).
	Env []string
	// Dir is the working directory. Default: Binary's directory.
	Dir string
	// Probes as in Kubernetes: until Startup succeeds the others do not run; a failing
	// Startup or Liveness probe restarts the process; Readiness decides whether the proxy
	// routes to it. Nil Readiness: ready as soon as the port accepts connections (and
	// Startup, if any, succeeded).
	Startup, Readiness, Liveness *Probe
	// StopGrace is how long a replica has between SIGTERM and SIGKILL. Default 10s.
	StopGrace time.Duration
	// RestartBackoff is the first wait before restarting a crashed replica; it doubles up to
	// 30 times the first on repeated crashes. Default 100ms.
	RestartBackoff time.Duration
}

// Replica states.
const (
	StateStarting = "starting" // the process runs, not ready yet
	StateReady    = "ready"    // the proxy may route to it
	StateUnready  = "unready"  // readiness failing after having been ready
	StateCrashed  = "crashed"  // waiting to be restarted
	StateStopped  = "stopped"  // Stop was called; terminal
)

// Replica is one process of a service, supervised: restarted when it exits or fails its
// liveness or startup probe, until Stop. Its methods may be called from any goroutine.
type Replica struct {
	ID   string
	Spec ReplicaSpec
	log  *slog.Logger

	mu       sync.Mutex
	state    string
	addr     string // 127.0.0.1:port of the current process
	pid      int
	restarts int
	lastExit string
	changed  chan struct{} // closed and replaced on every state change

	inflight atomic.Int64
	stopping atomic.Bool
	stopOnce sync.Once
	cancel   context.CancelFunc
	done     chan struct{}
	output   *tailBuffer
}

// ReplicaStatus is a replica as the API shows it.
type ReplicaStatus struct {
	ID       string `json:"id"`
	Version  string `json:"version"`
	State    string `json:"state"`
	Addr     string `json:"addr,omitempty"`
	PID      int    `json:"pid,omitempty"`
	Restarts int    `json:"restarts"`
	RSSBytes int64  `json:"rss_bytes,omitempty"`
	LastExit string `json:"last_exit,omitempty"`
}

// StartReplica starts a supervised replica; it returns once the first process started (or
// failed to), not when it is ready: use WaitReady.
func StartReplica(id string, spec ReplicaSpec, log *slog.Logger) (*Replica, error) {
	if spec.Dir == "" {
		spec.Dir = dirOf(spec.Binary)
	}
	if spec.StopGrace <= 0 {
		spec.StopGrace = 10 * time.Second
	}
	if spec.RestartBackoff <= 0 {
		spec.RestartBackoff = 100 * time.Millisecond
	}
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Replica{ID: id, Spec: spec, log: log.With("replica", id), state: StateStarting,
		changed: make(chan struct{}), cancel: cancel, done: make(chan struct{}), output: &tailBuffer{max: 4096}}
	cmd, err := r.spawn()
	if err != nil {
		cancel()
		close(r.done)
		r.setState(StateStopped)
		return nil, err
	}
	go r.supervise(ctx, cmd)
	return r, nil
}

func dirOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i > 0 {
		return p[:i]
	}
	return "."
}

// spawn starts one process on a free port.
func (r *Replica) spawn() (*exec.Cmd, error) {
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("local: replica %s: %w", r.ID, err)
	}
	cmd := r.command(port)
	// A binary just written can be "busy" for a moment: a process forked elsewhere in paved
	// may still hold the writer's descriptor until it execs (golang.org/issue/22315).
	for wait := 5 * time.Millisecond; ; wait *= 2 {
		if err = cmd.Start(); !errors.Is(err, syscall.ETXTBSY) || wait > time.Second {
			break
		}
		time.Sleep(wait)
		cmd = r.command(port)
	}
	if err != nil {
		return nil, fmt.Errorf("local: start replica %s (%s): %w", r.ID, r.Spec.Binary, err)
	}
	r.mu.Lock()
	r.addr, r.pid = net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd.Process.Pid
	r.mu.Unlock()
	return cmd, nil
}

func (r *Replica) command(port int) *exec.Cmd {
	cmd := exec.Command(r.Spec.Binary, r.Spec.Args...)
	cmd.Dir = r.Spec.Dir
	cmd.Env = append(append(os.Environ(), r.Spec.Env...), "PORT="+strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = r.output, r.output
	// Its own process group, so that stopping it stops what it started too; killed with
	// paved (Pdeathsig), as the executor's sandboxes are: a restarted server starts the
	// environment again rather than finding strays on its ports.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return cmd
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// supervise runs the process and its probes, restarting it until Stop.
func (r *Replica) supervise(ctx context.Context, cmd *exec.Cmd) {
	defer close(r.done)
	backoff := r.Spec.RestartBackoff
	for {
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		pctx, stopProbes := context.WithCancel(ctx)
		kill := make(chan string, 1)
		started := time.Now()
		go r.probe(pctx, kill)
		var why string
		select {
		case err := <-exited:
			why = exitText(err)
		case why = <-kill:
			killGroup(cmd, syscall.SIGKILL)
			<-exited
		case <-ctx.Done():
			stopProbes()
			r.terminate(cmd, exited)
			r.setState(StateStopped)
			return
		}
		stopProbes()
		if r.stopping.Load() {
			r.setState(StateStopped)
			return
		}
		r.mu.Lock()
		r.restarts++
		r.lastExit = why
		r.mu.Unlock()
		r.setState(StateCrashed)
		r.log.Warn("replica exited; restarting", "why", why, "output", r.output.String())
		if time.Since(started) > 30*backoff {
			backoff = r.Spec.RestartBackoff
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			r.setState(StateStopped)
			return
		}
		backoff = min(2*backoff, 30*r.Spec.RestartBackoff)
		var err error
		if cmd, err = r.spawn(); err != nil {
			r.log.Error("replica restart failed", "err", err)
			r.setState(StateStopped)
			return
		}
		r.setState(StateStarting)
	}
}

// terminate stops the process: SIGTERM to its group, SIGKILL after the grace period.
func (r *Replica) terminate(cmd *exec.Cmd, exited chan error) {
	killGroup(cmd, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(r.Spec.StopGrace):
		killGroup(cmd, syscall.SIGKILL)
		<-exited
	}
}

func killGroup(cmd *exec.Cmd, sig syscall.Signal) {
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, sig)
	}
}

func exitText(err error) string {
	if err == nil {
		return "exited with status 0"
	}
	return err.Error()
}

// probe runs the startup, liveness and readiness probes of one process; a message on kill
// asks supervise to kill and restart it.
func (r *Replica) probe(ctx context.Context, kill chan<- string) {
	r.mu.Lock()
	addr := r.addr
	r.mu.Unlock()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	check := func(p Probe) bool {
		cctx, cancel := context.WithTimeout(ctx, p.Timeout)
		defer cancel()
		req, _ := http.NewRequestWithContext(cctx, http.MethodGet, "http://"+addr+p.Path, nil)
		req.Header.Set("User-Agent", "paved-probe")
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		return resp.StatusCode >= 200 && resp.StatusCode < 400
	}
	tcpCheck := func(p Probe) bool {
		c, err := net.DialTimeout("tcp", addr, p.Timeout)
		if err == nil {
			c.Close()
		}
		return err == nil
	}
	wait := func(d time.Duration) bool {
		if d <= 0 {
			return ctx.Err() == nil
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	// Startup: nothing else runs until it succeeds once.
	if sp := r.Spec.Startup; sp != nil {
		p := sp.withDefaults()
		if !wait(p.InitialDelay) {
			return
		}
		for fails := 0; ; {
			if check(p) {
				break
			}
			if fails++; fails >= p.FailureThreshold {
				kill <- fmt.Sprintf("startup probe %s failed %d times", p.Path, fails)
				return
			}
			if !wait(p.Period) {
				return
			}
		}
	}
	var rp Probe
	readinessCheck := tcpCheck
	if r.Spec.Readiness != nil {
		rp, readinessCheck = r.Spec.Readiness.withDefaults(), check
	} else {
		rp = Probe{Period: 50 * time.Millisecond, Timeout: time.Second, SuccessThreshold: 1, FailureThreshold: 1}
	}
	if r.Spec.Liveness != nil {
		lp := r.Spec.Liveness.withDefaults()
		go func() {
			if !wait(lp.InitialDelay) {
				return
			}
			for fails := 0; ; {
				if check(lp) {
					fails = 0
				} else if fails++; fails >= lp.FailureThreshold {
					select {
					case kill <- fmt.Sprintf("liveness probe %s failed %d times", lp.Path, fails):
					default:
					}
					return
				}
				if !wait(lp.Period) {
					return
				}
			}
		}()
	}
	if !wait(rp.InitialDelay) {
		return
	}
	ok, fails := 0, 0
	for {
		if readinessCheck(rp) {
			ok, fails = ok+1, 0
			if ok >= rp.SuccessThreshold {
				r.setStateUnlessStopping(StateReady)
			}
		} else {
			ok, fails = 0, fails+1
			if fails >= rp.FailureThreshold && r.State() == StateReady {
				r.setStateUnlessStopping(StateUnready)
			}
		}
		if !wait(rp.Period) {
			return
		}
	}
}

func (r *Replica) setStateUnlessStopping(s string) {
	if !r.stopping.Load() {
		r.setState(s)
	}
}

func (r *Replica) setState(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state == s || r.state == StateStopped {
		return
	}
	r.state = s
	close(r.changed)
	r.changed = make(chan struct{})
}

// State is the replica's state now.
func (r *Replica) State() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

// Ready reports whether the proxy may route to the replica.
func (r *Replica) Ready() bool { return r.State() == StateReady }

// Addr is the host:port of the current process.
func (r *Replica) Addr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addr
}

// Restarts counts the times the replica's process was restarted.
func (r *Replica) Restarts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.restarts
}

// WaitReady blocks until the replica is ready, or ctx ends (then it returns an error that
// says what the replica was doing and the end of its output).
func (r *Replica) WaitReady(ctx context.Context) error {
	for {
		r.mu.Lock()
		state, ch := r.state, r.changed
		r.mu.Unlock()
		switch state {
		case StateReady:
			return nil
		case StateStopped:
			return fmt.Errorf("local: replica %s stopped before it was ready", r.ID)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			st := r.Status()
			msg := fmt.Sprintf("local: replica %s not ready (%s, %d restarts", r.ID, st.State, st.Restarts)
			if st.LastExit != "" {
				msg += ", last exit: " + st.LastExit
			}
			if out := strings.TrimSpace(r.output.String()); out != "" {
				msg += "; output: " + lastLines(out, 3)
			}
			return fmt.Errorf("%s): %w", msg, ctx.Err())
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// Stop stops routing-independent supervision: it waits (up to drain) for the requests the
// proxy has in flight to this replica, then sends SIGTERM, and SIGKILL after StopGrace.
// The caller must have taken the replica out of the proxy's routing first. Stop returns
// when the process is gone.
func (r *Replica) Stop(drain time.Duration) {
	r.stopOnce.Do(func() {
		r.stopping.Store(true)
		deadline := time.Now().Add(drain)
		for r.inflight.Load() > 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond) // polling a counter the hot path must not signal
		}
		r.cancel()
	})
	<-r.done
}

// Status is the replica now, with its RSS read from /proc.
func (r *Replica) Status() ReplicaStatus {
	r.mu.Lock()
	st := ReplicaStatus{ID: r.ID, Version: r.Spec.Version, State: r.state, Addr: r.addr, PID: r.pid,
		Restarts: r.restarts, LastExit: r.lastExit}
	r.mu.Unlock()
	if st.State != StateStopped && st.PID > 0 {
		st.RSSBytes, _ = RSS(st.PID)
	}
	return st
}

// RSS reads the resident set size of a process from /proc/PID/status (VmRSS).
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err != nil {
					return 0, err
				}
				return kb * 1024, nil
			}
		}
	}
	return 0, errors.New("local: no VmRSS in /proc status (a zombie?)")
}

// tailBuffer keeps the last max bytes a replica wrote, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append([]byte(nil), t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
