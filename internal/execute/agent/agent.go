package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/paved/paved/internal/cache"
	"github.com/paved/paved/internal/execute"
)

// Config configures an Agent.
type Config struct {
	// Servers are the base URLs of the paved servers to take jobs from (each keeps its own
	// queue: list every server sharing the database). Required.
	Servers []string
	// Token is this agent's token (paved agent token create NAME). Required.
	Token string
	// Labels are what the agent offers to runs_on. Default: none (only jobs without
	// runs_on labels).
	Labels map[string]string
	// Capacity is how many jobs run at once. Default: 1.
	Capacity int
	// Executor runs each job (the local executor in the agent's data directory), and Blobs
	// is its artifact store. Required.
	Executor execute.Executor
	Blobs    *cache.Blobs
	// Client makes the requests. Default: a client without an overall timeout (claims are
	// long polls; each request has its own deadline).
	Client *http.Client
	// Logger defaults to slog.Default(); Now to time.Now.
	Logger *slog.Logger
	Now    func() time.Time
}

// Agent takes jobs from servers and runs them. New, then Run.
type Agent struct {
	cfg   Config
	log   *slog.Logger
	slots chan struct{} // one value per running job

	mu    sync.Mutex
	freed chan struct{} // closed (and replaced) when a job ends
}

// New checks the config and makes an agent.
func New(cfg Config) (*Agent, error) {
	if len(cfg.Servers) == 0 || cfg.Token == "" || cfg.Executor == nil || cfg.Blobs == nil {
		return nil, errors.New("agent: Servers, Token, Executor and Blobs are required")
	}
	for i, s := range cfg.Servers {
		if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
			return nil, fmt.Errorf("agent: server %q: want an http:// or https:// URL", s)
		}
		cfg.Servers[i] = strings.TrimRight(s, "/")
	}
	if cfg.Capacity == 0 {
		cfg.Capacity = 1
	}
	if cfg.Capacity < 0 {
		return nil, fmt.Errorf("agent: capacity %d must be positive", cfg.Capacity)
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Agent{cfg: cfg, log: cfg.Logger, slots: make(chan struct{}, cfg.Capacity), freed: make(chan struct{})}, nil
}

// Run takes and runs jobs until ctx ends; jobs running then are killed (their servers see
// the lease lapse and run them again elsewhere).
func (a *Agent) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, srv := range a.cfg.Servers {
		wg.Go(func() { a.poll(ctx, srv) })
	}
	wg.Wait()
	return nil
}

// poll claims jobs from one server while a slot is free. A poll holds no slot while it
// waits: with several servers, long polls would otherwise keep slots from jobs. A job that
// arrives when another server's job took the last slot is given back at once.
func (a *Agent) poll(ctx context.Context, srv string) {
	backoff := 100 * time.Millisecond
	for a.waitFree(ctx) {
		asg, err := a.claim(ctx, srv)
		if err == nil && asg != nil {
			select {
			case a.slots <- struct{}{}:
			default:
				a.giveBack(ctx, srv, asg)
				continue
			}
		}
		if err != nil || asg == nil {
			if err != nil && ctx.Err() == nil {
				a.log.Warn("agent: claim failed", "server", srv, "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, 5*time.Second)
			}
			continue
		}
		backoff = 100 * time.Millisecond
		go func() {
			defer a.free()
			a.runJob(ctx, srv, asg)
		}()
	}
}

// waitFree waits until a slot is free; false when ctx ended.
func (a *Agent) waitFree(ctx context.Context) bool {
	for ctx.Err() == nil {
		a.mu.Lock()
		if len(a.slots) < cap(a.slots) {
			a.mu.Unlock()
			return true
		}
		ch := a.freed
		a.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
	}
	return false
}

func (a *Agent) free() {
	<-a.slots
	a.mu.Lock()
	close(a.freed)
	a.freed = make(chan struct{})
	a.mu.Unlock()
}

// giveBack returns a job the agent has no slot for; the server queues it for another.
func (a *Agent) giveBack(ctx context.Context, srv string, asg *Assignment) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if status, body, err := a.do(ctx, http.MethodPost, srv+"/api/v1/agent/jobs/"+asg.ID+"/return", struct{}{}); err != nil || status != http.StatusOK {
		// The server sees no heartbeat and re-queues it after the lease (agent_lost).
		a.log.Warn("agent: cannot give a job back", "status", status, "body", string(bytes.TrimSpace(body)), "err", err)
	}
}

func (a *Agent) claim(ctx context.Context, srv string) (*Assignment, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	host, _ := os.Hostname()
	status, body, err := a.do(ctx, http.MethodPost, srv+"/api/v1/agent/claim", Claim{Agent: host, Labels: a.cfg.Labels})
	if err != nil {
		return nil, err
	}
	switch status {
	case http.StatusNoContent:
		return nil, nil
	case http.StatusOK:
		var asg Assignment
		if err := json.Unmarshal(body, &asg); err != nil {
			return nil, fmt.Errorf("bad assignment: %w", err)
		}
		return &asg, nil
	}
	return nil, fmt.Errorf("claim: %d %s", status, bytes.TrimSpace(body))
}

// do sends v as JSON (or nothing) and returns the status and body.
func (a *Agent) do(ctx context.Context, method, url string, v any) (int, []byte, error) {
	var body io.Reader
	if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			return 0, nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.cfg.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.cfg.Client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, b, err
}

// Why a job's context ended on the agent.
var (
	errGone    = errors.New("agent: the server took the job back")
	errFenced  = errors.New("agent: no heartbeat reached the server for the lease time")
	errCancel  = errors.New("agent: the server cancelled the job")
	errStopped = errors.New("agent: the agent is stopping")
)

// jobRun is one job on this agent.
type jobRun struct {
	a     *Agent
	base  string // server URL + /api/v1/agent/jobs/ID
	asg   *Assignment
	lease time.Duration
	ctx   context.Context
	stop  context.CancelCauseFunc

	mu     sync.Mutex
	items  []Item // sent but not acknowledged, in order
	seq    int64  // last item made
	acked  int64
	more   chan struct{} // an item is waiting
	lastOK time.Time     // last request the server answered as the job's holder
	gone   bool
	closed bool
	ended  chan struct{} // closed when runJob returns
}

func (a *Agent) runJob(ctx context.Context, srv string, asg *Assignment) {
	j := &jobRun{a: a, base: srv + "/api/v1/agent/jobs/" + asg.ID, asg: asg, lease: time.Duration(asg.LeaseMS) * time.Millisecond,
		more: make(chan struct{}, 1), lastOK: a.cfg.Now(), ended: make(chan struct{})}
	if j.lease <= 0 {
		j.lease = 10 * time.Second
	}
	j.ctx, j.stop = context.WithCancelCause(context.WithoutCancel(ctx))
	context.AfterFunc(ctx, func() { j.stop(errStopped) })
	defer j.stop(nil)
	defer close(j.ended)
	log := a.log.With("run", asg.Job.RunID, "stage", asg.Job.Stage, "attempt", asg.Job.Attempt)
	log.Info("agent: job started")

	go j.heartbeats()
	go j.watchdog()
	senderDone := make(chan struct{})
	go func() { defer close(senderDone); j.sender() }()

	var res execute.Result
	err := j.fetchInputs()
	if err == nil {
		res, err = a.cfg.Executor.Run(j.ctx, asg.Job, j)
	}
	j.mu.Lock()
	j.closed = true
	j.mu.Unlock()
	j.kick()
	<-senderDone
	if cause := context.Cause(j.ctx); errors.Is(cause, errGone) || errors.Is(cause, errFenced) || errors.Is(cause, errStopped) {
		log.Warn("agent: job abandoned", "why", cause)
		return
	}
	if err == nil {
		err = j.upload(res.Artifacts)
	}
	out := Outcome{Result: res, LastSeq: j.seq}
	if err != nil {
		out.Error = err.Error()
		if errors.Is(context.Cause(j.ctx), errCancel) {
			out.Error = "cancelled by the server: " + err.Error()
		}
	}
	j.send(http.MethodPost, "/result", out, nil)
	log.Info("agent: job ended", "failed", res.Failed, "err", err)
}

// send retries a request until the server answers it, takes the job back (410) or the lease
// passed without an answer. into, if set, gets a 200's body.
func (j *jobRun) send(method, path string, v any, into any) int {
	backoff := 50 * time.Millisecond
	for {
		// The lease runs from when the server got the request, which is after it was sent:
		// counting from the sending, the agent gives a job up before the server may.
		sent := j.a.cfg.Now()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(j.ctx), j.lease)
		status, body, err := j.a.do(ctx, method, j.base+path, v)
		cancel()
		switch {
		case err == nil && status == http.StatusGone:
			j.mu.Lock()
			j.gone = true
			j.mu.Unlock()
			j.stop(errGone)
			return status
		case err == nil && (status == http.StatusOK || status == http.StatusConflict):
			j.mu.Lock()
			if sent.After(j.lastOK) {
				j.lastOK = sent
			}
			j.mu.Unlock()
			if into != nil {
				_ = json.Unmarshal(body, into)
			}
			return status
		case err == nil && status < 500:
			// Refused (a revoked token, a bad request): not an answer as the job's
			// holder, so it does not hold off the fence.
			j.a.log.Warn("agent: request refused", "path", path, "status", status, "body", string(bytes.TrimSpace(body)))
		}
		j.mu.Lock()
		fenced := j.a.cfg.Now().Sub(j.lastOK) > j.lease*9/10 // a margin for the kill itself
		j.mu.Unlock()
		if fenced {
			j.stop(errFenced)
			return 0
		}
		time.Sleep(backoff) // a retry pause against a server that is away, not a synchronisation
		backoff = min(2*backoff, j.lease/4)
	}
}

// heartbeats keep the job's lease until the job ended; a cancelled job keeps it while it
// winds down and reports.
func (j *jobRun) heartbeats() {
	tick := time.NewTicker(j.lease / 4)
	defer tick.Stop()
	done := j.ctx.Done()
	for {
		select {
		case <-j.ended:
			return
		case <-done:
			if !errors.Is(context.Cause(j.ctx), errCancel) {
				return
			}
			done = nil
			continue
		case <-tick.C:
		}
		var hb Heartbeat
		if j.send(http.MethodPost, "/heartbeat", struct{}{}, &hb) == http.StatusOK && hb.Cancel {
			j.stop(errCancel)
		}
	}
}

// watchdog kills the job when no request of it reached the server for nearly the lease
// (a request may hang rather than fail): past the lease the server runs it elsewhere.
func (j *jobRun) watchdog() {
	tick := time.NewTicker(max(j.lease/20, time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-j.ended:
			return
		case <-tick.C:
		}
		j.mu.Lock()
		fenced := j.a.cfg.Now().Sub(j.lastOK) > j.lease*9/10
		j.mu.Unlock()
		if fenced {
			j.stop(errFenced)
			return
		}
	}
}

// Observer: each call becomes a numbered item for the sender.

func (j *jobRun) add(it Item) {
	j.mu.Lock()
	j.seq++
	it.Seq = j.seq
	j.items = append(j.items, it)
	j.mu.Unlock()
	j.kick()
}

func (j *jobRun) kick() {
	select {
	case j.more <- struct{}{}:
	default:
	}
}

func (j *jobRun) StepStarted(step int) { j.add(Item{Kind: KindStepStarted, Step: step}) }
func (j *jobRun) Output(step int, p []byte) {
	j.add(Item{Kind: KindOutput, Step: step, Data: bytes.Clone(p)})
}
func (j *jobRun) StepFinished(step, code int, took time.Duration) {
	j.add(Item{Kind: KindStepFinished, Step: step, ExitCode: code, TookMS: took.Milliseconds()})
}
func (j *jobRun) Cache(r execute.CacheReport) { j.add(Item{Kind: KindCache, Cache: &r}) }

// sender sends items in order until the job is closed and everything is acknowledged. A
// batch is at most 256 items; a short pause lets output gather into batches.
func (j *jobRun) sender() {
	for {
		select {
		case <-j.more:
		case <-time.After(50 * time.Millisecond):
		}
		for {
			j.mu.Lock()
			batch := j.items[:min(len(j.items), 256)]
			done := j.closed && len(j.items) == 0
			stop := j.gone || j.ctx.Err() != nil && !errors.Is(context.Cause(j.ctx), errCancel)
			j.mu.Unlock()
			if done || stop {
				return
			}
			if len(batch) == 0 {
				break
			}
			var rep ProgressReply
			status := j.send(http.MethodPost, "/progress", ProgressRequest{Items: batch}, &rep)
			if status != http.StatusOK && status != http.StatusConflict {
				if status == 0 || status == http.StatusGone {
					return
				}
				j.a.log.Error("agent: progress refused", "status", status)
				j.stop(errGone)
				return
			}
			j.mu.Lock()
			// Drop what the server has; on a gap (409) it says where to resume, and
			// the items after it are still here.
			drop := 0
			for drop < len(j.items) && j.items[drop].Seq <= rep.Acked {
				drop++
			}
			j.items = j.items[drop:]
			j.acked = rep.Acked
			j.mu.Unlock()
		}
	}
}

// fetchInputs downloads the upstream artifacts the local blob store lacks.
func (j *jobRun) fetchInputs() error {
	for _, in := range j.asg.Job.ArtifactsIn {
		if in.Digest == "" {
			continue
		}
		if p, err := j.a.cfg.Blobs.Path(in.Digest); err == nil {
			if _, err := os.Stat(p); err == nil {
				continue
			}
		}
		req, err := http.NewRequestWithContext(j.ctx, http.MethodGet, j.serverBlob(in.Digest), nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+j.a.cfg.Token)
		resp, err := j.a.cfg.Client.Do(req)
		if err != nil {
			return fmt.Errorf("fetch artifact %s: %w", in.Path, err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return fmt.Errorf("fetch artifact %s (%s): %s", in.Path, in.Digest, resp.Status)
		}
		got, _, err := j.a.cfg.Blobs.Put(resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("fetch artifact %s: %w", in.Path, err)
		}
		if got != in.Digest {
			return fmt.Errorf("fetch artifact %s: got %s, want %s: %w", in.Path, got, in.Digest, cache.ErrDigest)
		}
	}
	return nil
}

func (j *jobRun) serverBlob(digest string) string {
	srv, _, _ := strings.Cut(j.base, "/api/v1/agent/jobs/")
	return srv + "/api/v1/agent/blobs/" + digest
}

// upload sends the artifacts the job stored to the server's blob store.
func (j *jobRun) upload(arts []execute.Artifact) error {
	for _, art := range arts {
		if art.Digest == "" {
			continue
		}
		f, err := j.a.cfg.Blobs.Open(art.Digest)
		if err != nil {
			return fmt.Errorf("upload artifact %s: %w", art.Path, err)
		}
		req, err := http.NewRequestWithContext(j.ctx, http.MethodPut, j.serverBlob(art.Digest), f)
		if err != nil {
			f.Close()
			return err
		}
		req.Header.Set("Authorization", "Bearer "+j.a.cfg.Token)
		resp, err := j.a.cfg.Client.Do(req)
		f.Close()
		if err != nil {
			return fmt.Errorf("upload artifact %s: %w", art.Path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("upload artifact %s: %s", art.Path, resp.Status)
		}
	}
	return nil
}
