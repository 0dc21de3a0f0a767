package egress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Proxy is an HTTP proxy on 127.0.0.1 that dials through the policy, for programs paved
// runs that do their own dialing (git clones and fetches over http(s): git -c
// http.proxy=URL). CONNECT tunnels (https) and plain forwarded requests (http) both reach
// only what the policy allows, checked on the address dialed.
type Proxy struct {
	URL string // http://127.0.0.1:PORT

	policy *Policy
	ln     net.Listener
	srv    *http.Server
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{} // tunnels' ends, closed by Stop
}

func (px *Proxy) track(c net.Conn) bool {
	px.mu.Lock()
	defer px.mu.Unlock()
	if px.conns == nil {
		return false // stopped
	}
	px.conns[c] = struct{}{}
	return true
}

// StartProxy listens on a free port of 127.0.0.1 and serves until Stop.
func (p *Policy) StartProxy(logger *slog.Logger) (*Proxy, error) {
	if logger == nil {
		logger = slog.Default()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("egress: proxy: %w", err)
	}
	px := &Proxy{URL: "http://" + ln.Addr().String(), policy: p, ln: ln, conns: map[net.Conn]struct{}{}}
	forward := &http.Transport{Proxy: nil, DialContext: p.DialContext, ResponseHeaderTimeout: time.Minute}
	px.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect {
			px.tunnel(w, r, logger)
			return
		}
		if r.URL.Scheme != "http" || r.URL.Host == "" {
			http.Error(w, "egress proxy: want an absolute http:// URL or CONNECT", http.StatusBadRequest)
			return
		}
		out := r.Clone(r.Context())
		out.RequestURI = ""
		out.Header.Del("Proxy-Connection")
		out.Header.Del("Proxy-Authorization")
		resp, err := forward.RoundTrip(out)
		if err != nil {
			status := http.StatusBadGateway
			if errors.Is(err, ErrDenied) {
				status = http.StatusForbidden
			}
			logger.Warn("egress proxy refused", "url", r.URL.Redacted(), "err", err)
			http.Error(w, err.Error(), status)
			return
		}
		defer resp.Body.Close()
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})}
	px.wg.Add(1)
	go func() {
		defer px.wg.Done()
		_ = px.srv.Serve(ln)
	}()
	return px, nil
}

func (px *Proxy) tunnel(w http.ResponseWriter, r *http.Request, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(r.Context(), px.policy.dialTimeout)
	upstream, err := px.policy.DialContext(ctx, "tcp", r.Host)
	cancel()
	if err != nil {
		status := http.StatusBadGateway
		if errors.Is(err, ErrDenied) {
			status = http.StatusForbidden
		}
		logger.Warn("egress proxy refused", "host", r.Host, "err", err)
		http.Error(w, err.Error(), status)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		upstream.Close()
		http.Error(w, "egress proxy: cannot tunnel", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
	client, buf, err := hj.Hijack()
	if err != nil {
		upstream.Close()
		return
	}
	if !px.track(client) || !px.track(upstream) {
		client.Close()
		upstream.Close()
		return
	}
	px.wg.Add(1)
	go func() {
		defer px.wg.Done()
		defer client.Close()
		defer upstream.Close()
		done := make(chan struct{}, 2)
		go func() {
			// What the client sent after CONNECT and the reader already buffered goes first.
			if n := buf.Reader.Buffered(); n > 0 {
				b, _ := buf.Reader.Peek(n)
				_, _ = upstream.Write(b)
			}
			_, _ = io.Copy(upstream, client)
			if c, ok := upstream.(interface{ CloseWrite() error }); ok {
				_ = c.CloseWrite()
			}
			done <- struct{}{}
		}()
		go func() {
			_, _ = io.Copy(client, upstream)
			if c, ok := client.(interface{ CloseWrite() error }); ok {
				_ = c.CloseWrite()
			}
			done <- struct{}{}
		}()
		<-done
		<-done
	}()
}

// Stop closes the proxy and every tunnel.
func (px *Proxy) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = px.srv.Shutdown(ctx)
	_ = px.srv.Close()
	px.mu.Lock()
	for c := range px.conns {
		c.Close()
	}
	px.conns = nil
	px.mu.Unlock()
	px.wg.Wait()
}
