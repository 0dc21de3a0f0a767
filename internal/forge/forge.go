package forge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// States of a commit status, in paved's words; each client maps them to its forge's.
const (
	StatePending   = "pending"   // queued, waiting for its needs or a slot
	StateRunning   = "running"   // started
	StateSuccess   = "success"   // succeeded
	StateFailure   = "failure"   // failed
	StateCancelled = "cancelled" // cancelled
	StateSkipped   = "skipped"   // not run: a need failed, or when: did not match
)

// Status is one commit status: the state of one context (the run, or one of its stages)
// on one commit. A forge keeps the last status posted per commit and context.
type Status struct {
	Repo        string `json:"repo"` // owner/name as the forge names it (GitLab: group/sub/name)
	SHA         string `json:"sha"`
	Context     string `json:"context"` // paved/PIPELINE or paved/PIPELINE/STAGE
	State       string `json:"state"`
	Description string `json:"description,omitempty"`
	URL         string `json:"url,omitempty"` // the run page
}

// Comment is a pull request's comment that paved owns: the one whose body carries Marker.
type Comment struct {
	Repo   string `json:"repo"`
	PR     int    `json:"pr"`
	Marker string `json:"marker"` // a hidden HTML comment, unique per pipeline
	Body   string `json:"body"`   // includes Marker
}

// Forge is one forge's API for one repository's credential. Implementations are safe for
// concurrent use; every method is one or a few HTTP requests and returns an *HTTPError for
// an answer that is not a success.
type Forge interface {
	// SetStatus creates or replaces the commit status of s.Context on s.SHA.
	SetStatus(ctx context.Context, s Status) error
	// UpsertComment edits the pull request's comment carrying c.Marker, or creates it when
	// there is none.
	UpsertComment(ctx context.Context, c Comment) error
}

// HTTPError is a forge's answer that is not a success.
type HTTPError struct {
	Method, URL string
	Status      int
	Body        string        // the first KiB of the answer
	RetryAfter  time.Duration // from Retry-After (or a rate limit reset), 0 when absent
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("forge: %s %s: %d %s", e.Method, e.URL, e.Status, strings.TrimSpace(e.Body))
}

// Temporary reports whether the same request may succeed later: a rate limit, a server
// error, or no answer at all.
func Temporary(err error) bool {
	var h *HTTPError
	if errors.As(err, &h) {
		return h.Status == http.StatusTooManyRequests || h.Status >= 500 ||
			// GitHub answers a secondary rate limit with 403 and Retry-After.
			(h.Status == http.StatusForbidden && h.RetryAfter > 0)
	}
	return err != nil && !errors.Is(err, context.Canceled)
}

// client is what the three forges share: a base URL, an authorisation, JSON requests.
type client struct {
	base string
	http *http.Client
	auth func(*http.Request)
}

func newClient(base, def string, hc *http.Client, auth func(*http.Request)) client {
	if base == "" {
		base = def
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return client{base: strings.TrimSuffix(base, "/"), http: hc, auth: auth}
}

// do sends a JSON request to path (or a full URL) and decodes a JSON answer into out.
func (c client) do(ctx context.Context, method, path string, in, out any, header ...string) error {
	url := path
	if !strings.HasPrefix(path, "http://") && !strings.HasPrefix(path, "https://") {
		url = c.base + path
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("forge: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return fmt.Errorf("forge: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "paved")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	c.auth(req)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("forge: %s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return &HTTPError{Method: method, URL: url, Status: resp.StatusCode, Body: string(b), RetryAfter: retryAfter(resp.Header)}
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(out); err != nil {
		return fmt.Errorf("forge: %s %s: decode the answer: %w", method, url, err)
	}
	return nil
}

// retryAfter reads Retry-After (seconds or an HTTP date), else GitHub's and GitLab's
// rate limit reset when no request is left.
func retryAfter(h http.Header) time.Duration {
	if v := h.Get("Retry-After"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			return time.Duration(n) * time.Second
		}
		if t, err := http.ParseTime(v); err == nil {
			return max(time.Until(t), 0)
		}
	}
	for _, p := range [][2]string{{"X-RateLimit-Remaining", "X-RateLimit-Reset"}, {"RateLimit-Remaining", "RateLimit-Reset"}} {
		if h.Get(p[0]) == "0" {
			if n, err := strconv.ParseInt(h.Get(p[1]), 10, 64); err == nil {
				return max(time.Until(time.Unix(n, 0)), 0)
			}
		}
	}
	return 0
}

// truncate cuts s to n runes, marking the cut: forges refuse over-long descriptions.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
