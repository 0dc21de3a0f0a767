package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/paved/paved/internal/trigger"
)

// Egress checks URLs users give paved to fetch (*egress.Policy): no SSRF.
type Egress interface {
	CheckURL(ctx context.Context, rawURL string) error
}

// checkEgress refuses an http(s) URL the egress policy denies, saying why; other URLs (a
// local path, ssh) pass. Without a policy everything passes.
func (s *Server) checkEgress(r *http.Request, rawURL string) error {
	if s.cfg.Egress == nil || !(strings.HasPrefix(rawURL, "http://") || strings.HasPrefix(rawURL, "https://")) {
		return nil
	}
	if err := s.cfg.Egress.CheckURL(r.Context(), rawURL); err != nil {
		return errorf(http.StatusUnprocessableEntity, "%s", trigger.RedactURLs(err.Error()))
	}
	return nil
}

// Request body limits: what each kind of endpoint may be sent. A body over its limit is
// refused with 413 before a handler reads it when its Content-Length says so, and cut off
// by http.MaxBytesReader when it does not (chunked), which decode turns into a 413 too.
const (
	// maxHookBody (hooks.go, 25 MiB) bounds webhook deliveries.
	// maxRegistryBody bounds one OCI upload request (a layer or an artifact's file).
	maxRegistryBody = 2 << 30
)

// Timeouts are the HTTP server's; zero fields take the defaults.
type Timeouts struct {
	// ReadHeader bounds reading a request's headers (slowloris). Default 10 s.
	ReadHeader time.Duration
	// Read bounds reading a whole request, body included. Default 1 min; uploads to the
	// registry (/v2/) get Upload instead.
	Read time.Duration
	// Write bounds writing the answer, counted from the end of the request's headers.
	// Default 10 min: a rollback answers when it is done. Live streams (SSE) and registry
	// downloads have none.
	Write time.Duration
	// Idle bounds a kept-alive connection between requests. Default 2 min.
	Idle time.Duration
	// Upload bounds reading one registry upload. Default 30 min.
	Upload time.Duration
}

func (t Timeouts) withDefaults() Timeouts {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&t.ReadHeader, 10*time.Second)
	def(&t.Read, time.Minute)
	def(&t.Write, 10*time.Minute)
	def(&t.Idle, 2*time.Minute)
	def(&t.Upload, 30*time.Minute)
	return t
}

// NewHTTPServer is the http.Server for h with every timeout set, and h behind the body
// limits (Limits).
func NewHTTPServer(h http.Handler, t Timeouts) *http.Server {
	t = t.withDefaults()
	return &http.Server{
		Handler:           Limits(h, t),
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    64 << 10,
	}
}

// bodyLimit is the most a request to path may send.
func bodyLimit(path string) int64 {
	switch {
	case isBlobTransfer(path):
		return maxRegistryBody
	case strings.HasPrefix(path, "/hooks/"):
		return maxHookBody
	}
	return maxBody
}

// isBlobTransfer: registry uploads and downloads, and the artifacts agents move by digest
// (internal/execute/agent), and the workspaces and outputs of stage pods
// (internal/execute/kube), are as large and as slow as a build's outputs.
func isBlobTransfer(path string) bool {
	return strings.HasPrefix(path, "/v2/") || strings.HasPrefix(path, "/api/v1/agent/blobs/") ||
		path == "/api/v1/pod/workspace" || strings.HasPrefix(path, "/api/v1/pod/outputs/")
}

// Limits wraps h with the per-endpoint body limits and lifts the server's read and write
// deadlines where a request is legitimately long: live streams and registry transfers.
func Limits(h http.Handler, t Timeouts) http.Handler {
	t = t.withDefaults()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := bodyLimit(r.URL.Path)
		if r.ContentLength > limit {
			// Close: the client may already be sending a body we will not read.
			w.Header().Set("Connection", "close")
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{
				"error": fmt.Sprintf("request body is %d bytes, over the %d bytes %s accepts; send less (split it up)", r.ContentLength, limit, r.URL.Path),
			})
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, limit)
		}
		rc := http.NewResponseController(w)
		switch {
		case wantsSSE(r):
			_ = rc.SetWriteDeadline(time.Time{}) // a stream lasts as long as its run
		case isBlobTransfer(r.URL.Path):
			_ = rc.SetReadDeadline(time.Now().Add(t.Upload))
			_ = rc.SetWriteDeadline(time.Time{}) // a large blob to a slow client
		}
		h.ServeHTTP(w, r)
	})
}
