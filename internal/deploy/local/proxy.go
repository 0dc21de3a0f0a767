package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Pool is a set of replicas that receives Weight parts of an environment's traffic. Name
// is its track in the metrics (stable, canary, baseline, green, ...).
type Pool struct {
	Name     string
	Weight   int
	Replicas []*Replica
}

// Proxy is an environment's front door: it listens on one address and forwards each request
// to a ready replica of a pool chosen by weight. SetPools swaps the routing table
// atomically: a request in flight finishes where it started, the next one sees the new
// table. Its methods may be called from any goroutine.
type Proxy struct {
	log    *slog.Logger
	pools  atomic.Pointer[[]Pool]
	rr     atomic.Uint64
	rp     *httputil.ReverseProxy
	tr     *http.Transport
	m      metrics
	ln     net.Listener
	srv    *http.Server
	closed chan struct{}
}

type ctxKey struct{}

// route is what the handler decided for one request, read by the transport.
type route struct {
	pool    *Pool
	replica *Replica
}

// NewProxy listens on addr ("127.0.0.1:0" picks a port) and serves until Close.
func NewProxy(addr string, log *slog.Logger) (*Proxy, error) {
	if log == nil {
		log = slog.Default()
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("local: proxy listen on %s: %w", addr, err)
	}
	p := &Proxy{log: log, ln: ln, closed: make(chan struct{})}
	empty := []Pool{}
	p.pools.Store(&empty)
	p.tr = &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = "replica" // the transport picks the replica
			pr.SetXForwarded()
		},
		Transport:     roundTripper{p},
		FlushInterval: -1, // stream: a replica's server-sent events reach the client at once
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			p.log.Debug("proxy: no replica answered", "path", r.URL.Path, "err", err)
			http.Error(w, "paved proxy: no replica of this environment answered: "+err.Error(), http.StatusBadGateway)
		},
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(p.closed)
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Error("proxy stopped", "err", err)
		}
	}()
	return p, nil
}

// Addr is the proxy's listen address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL is http://Addr.
func (p *Proxy) URL() string { return "http://" + p.Addr() }

// Close stops listening and waits for requests in flight (up to 5 s).
func (p *Proxy) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.srv.Shutdown(ctx)
	<-p.closed
	p.tr.CloseIdleConnections()
}

// SetPools replaces the routing table. Pools with weight 0 get no traffic.
func (p *Proxy) SetPools(pools []Pool) {
	cp := make([]Pool, len(pools))
	for i, pl := range pools {
		cp[i] = Pool{Name: pl.Name, Weight: pl.Weight, Replicas: append([]*Replica(nil), pl.Replicas...)}
	}
	p.pools.Store(&cp)
}

// Pools is the routing table now.
func (p *Proxy) Pools() []Pool { return *p.pools.Load() }

// Metrics is a snapshot of the cumulative counts by track; subtract two snapshots for a window.
func (p *Proxy) Metrics() map[string]Counts {
	return p.m.snapshot(func(m *metrics) map[string]*counter { return m.byTrack })
}

// VersionMetrics is a snapshot of the cumulative counts by replica version.
func (p *Proxy) VersionMetrics() map[string]Counts {
	return p.m.snapshot(func(m *metrics) map[string]*counter { return m.byVersion })
}

// pick chooses a pool by weight among those with a ready replica, then a ready replica of it
// round robin; except for the replica in avoid (a failed connection attempt).
func (p *Proxy) pick(avoid *Replica) (*Pool, *Replica) {
	pools := *p.pools.Load()
	total := 0
	for i := range pools {
		if pools[i].Weight > 0 && hasReady(&pools[i], avoid) {
			total += pools[i].Weight
		}
	}
	if total == 0 {
		// Nothing with weight is ready: any ready replica is better than a lost request.
		for i := range pools {
			if hasReady(&pools[i], avoid) {
				return &pools[i], p.replicaOf(&pools[i], avoid)
			}
		}
		return nil, nil
	}
	n := rand.IntN(total)
	for i := range pools {
		pl := &pools[i]
		if pl.Weight <= 0 || !hasReady(pl, avoid) {
			continue
		}
		if n < pl.Weight {
			return pl, p.replicaOf(pl, avoid)
		}
		n -= pl.Weight
	}
	return nil, nil
}

func hasReady(pl *Pool, avoid *Replica) bool {
	for _, r := range pl.Replicas {
		if r != avoid && r.Ready() {
			return true
		}
	}
	return false
}

func (p *Proxy) replicaOf(pl *Pool, avoid *Replica) *Replica {
	n := len(pl.Replicas)
	start := int(p.rr.Add(1) % uint64(n))
	for i := range n {
		r := pl.Replicas[(start+i)%n]
		if r != avoid && r.Ready() {
			return r
		}
	}
	return nil
}

// ServeHTTP forwards one request and records it under the pool that served it.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	pool, rep := p.pick(nil)
	if rep == nil {
		http.Error(w, "paved proxy: no ready replica in this environment", http.StatusServiceUnavailable)
		return
	}
	rt := &route{pool: pool, replica: rep}
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	p.rp.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), ctxKey{}, rt)))
	// The replica may have changed on a retry; the track is the first choice's pool.
	track, version := rt.pool.Name, rt.replica.Spec.Version
	tc, vc := p.m.get(track, version)
	d := time.Since(start)
	tc.observe(sw.status, d)
	vc.observe(sw.status, d)
}

// roundTripper sends a request to the replica the handler chose, and to another ready one
// when the connection could not be made (a replica that just stopped): the request never
// reached a process, so retrying it is safe whatever its method.
type roundTripper struct{ p *Proxy }

func (t roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	rt, _ := req.Context().Value(ctxKey{}).(*route)
	if rt == nil {
		return nil, errors.New("local: request without a route")
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		rep := rt.replica
		out := req.Clone(req.Context())
		out.URL.Host = rep.Addr()
		out.Host = req.Host
		rep.inflight.Add(1)
		resp, err := t.p.tr.RoundTrip(out)
		if err != nil {
			rep.inflight.Add(-1)
			lastErr = err
			if !dialFailed(err) || (req.Body != nil && req.Body != http.NoBody && req.GetBody == nil) {
				return nil, err
			}
			pool, next := t.p.pick(rep)
			if next == nil {
				return nil, err
			}
			rt.pool, rt.replica = pool, next
			continue
		}
		resp.Body = &countedBody{ReadCloser: resp.Body, r: rep}
		return resp, nil
	}
	return nil, lastErr
}

// dialFailed reports whether err happened before the request was sent.
func dialFailed(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// countedBody keeps a replica's in-flight count until the response body is closed, so that
// Stop drains streaming responses too.
type countedBody struct {
	io.ReadCloser
	r    *Replica
	once sync.Once
}

func (b *countedBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(func() { b.r.inflight.Add(-1) })
	return err
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
