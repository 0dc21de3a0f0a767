package forge_test

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeForge is one forge's API subset on 127.0.0.1: it checks the credential and each
// request's required fields as the vendor documents them, keeps statuses and comments, and
// answers with the documented shapes of testdata/VENDOR. Failures are scripted.
type fakeForge struct {
	t      *testing.T
	vendor string
	srv    *httptest.Server

	mu       sync.Mutex
	requests []request
	comments map[int64]string // id -> body
	nextID   int64
	fail     []failure // answers to the next status requests, in order
}

type request struct {
	Method, Path string
	Body         map[string]any
	At           time.Time
	Answer       int
}

type failure struct {
	status     int
	retryAfter string
}

const fakeToken = "t0ken-abc"

func newFakeForge(t *testing.T, vendor string) *fakeForge {
	f := &fakeForge{t: t, vendor: vendor, comments: map[int64]string{}, nextID: 100}
	mux := http.NewServeMux()
	switch vendor {
	case "github":
		mux.HandleFunc("POST /repos/{owner}/{repo}/statuses/{sha}", f.status("state", "pending", "success", "failure", "error"))
		mux.HandleFunc("GET /repos/{owner}/{repo}/issues/{n}/comments", f.listComments)
		mux.HandleFunc("POST /repos/{owner}/{repo}/issues/{n}/comments", f.createComment)
		mux.HandleFunc("PATCH /repos/{owner}/{repo}/issues/comments/{id}", f.editComment)
	case "gitlab":
		mux.HandleFunc("POST /projects/{id}/statuses/{sha}", f.status("state", "pending", "running", "success", "failed", "canceled", "skipped"))
		mux.HandleFunc("GET /projects/{id}/merge_requests/{iid}/notes", f.listComments)
		mux.HandleFunc("POST /projects/{id}/merge_requests/{iid}/notes", f.createComment)
		mux.HandleFunc("PUT /projects/{id}/merge_requests/{iid}/notes/{note}", f.editComment)
	case "bitbucket":
		mux.HandleFunc("POST /repositories/{ws}/{slug}/commit/{sha}/statuses/build", f.status("state", "INPROGRESS", "SUCCESSFUL", "FAILED", "STOPPED"))
		mux.HandleFunc("GET /repositories/{ws}/{slug}/pullrequests/{id}/comments", f.listComments)
		mux.HandleFunc("POST /repositories/{ws}/{slug}/pullrequests/{id}/comments", f.createComment)
		mux.HandleFunc("PUT /repositories/{ws}/{slug}/pullrequests/{id}/comments/{cid}", f.editComment)
	}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if b, _ := io.ReadAll(r.Body); len(b) > 0 {
			if err := json.Unmarshal(b, &body); err != nil {
				http.Error(w, `{"message":"Problems parsing JSON"}`, http.StatusBadRequest)
				return
			}
		}
		rec := &statusRecorder{ResponseWriter: w, code: 200}
		if !f.authorized(r) {
			rec.WriteHeader(http.StatusUnauthorized)
		} else {
			r.Body = io.NopCloser(strings.NewReader(mustJSON(body)))
			mux.ServeHTTP(rec, r)
		}
		f.mu.Lock()
		f.requests = append(f.requests, request{Method: r.Method, Path: r.URL.EscapedPath(), Body: body, At: time.Now(), Answer: rec.code})
		f.mu.Unlock()
	}))
	t.Cleanup(f.srv.Close)
	return f
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(c int) { s.code = c; s.ResponseWriter.WriteHeader(c) }

func (f *fakeForge) authorized(r *http.Request) bool {
	switch f.vendor {
	case "gitlab":
		return r.Header.Get("PRIVATE-TOKEN") == fakeToken
	default:
		return r.Header.Get("Authorization") == "Bearer "+fakeToken
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// shape reads testdata/VENDOR/NAME.json and sets fields over it.
func (f *fakeForge) shape(name string, set map[string]any) map[string]any {
	b, err := os.ReadFile(filepath.Join("testdata", f.vendor, name+".json"))
	if err != nil {
		f.t.Error(err)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	maps.Copy(m, set)
	return m
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func body(r *http.Request) map[string]any {
	var m map[string]any
	_ = json.NewDecoder(r.Body).Decode(&m)
	return m
}

// status answers a status request: a scripted failure first, else 201 when the state is
// one the vendor knows.
func (f *fakeForge) status(field string, states ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		var fl *failure
		if len(f.fail) > 0 {
			fl = &f.fail[0]
			f.fail = f.fail[1:]
		}
		f.mu.Unlock()
		if fl != nil {
			if fl.retryAfter != "" {
				w.Header().Set("Retry-After", fl.retryAfter)
			}
			reply(w, fl.status, map[string]string{"message": http.StatusText(fl.status)})
			return
		}
		b := body(r)
		state, _ := b[field].(string)
		if !slices.Contains(states, state) {
			reply(w, http.StatusUnprocessableEntity, map[string]string{"message": "state is invalid: " + state})
			return
		}
		set := map[string]any{}
		switch f.vendor {
		case "github":
			set = map[string]any{"state": state, "context": b["context"], "description": b["description"], "target_url": b["target_url"]}
		case "gitlab":
			set = map[string]any{"status": state, "name": b["name"], "description": b["description"], "target_url": b["target_url"], "sha": r.PathValue("sha")}
		case "bitbucket":
			if b["key"] == nil || b["url"] == nil {
				reply(w, http.StatusBadRequest, map[string]any{"type": "error", "error": map[string]string{"message": "key and url are required"}})
				return
			}
			set = map[string]any{"state": state, "key": b["key"], "name": b["name"], "url": b["url"], "description": b["description"]}
		}
		reply(w, http.StatusCreated, f.shape("status", set))
	}
}

func (f *fakeForge) commentShape(id int64, text string) map[string]any {
	if f.vendor == "bitbucket" {
		return f.shape("comment", map[string]any{"id": id, "content": map[string]any{"raw": text, "markup": "markdown", "type": "rendered"}})
	}
	name := "comment"
	if f.vendor == "gitlab" {
		name = "note"
	}
	return f.shape(name, map[string]any{"id": id, "body": text})
}

func (f *fakeForge) text(r *http.Request) string {
	b := body(r)
	if f.vendor == "bitbucket" {
		c, _ := b["content"].(map[string]any)
		s, _ := c["raw"].(string)
		return s
	}
	s, _ := b["body"].(string)
	return s
}

func (f *fakeForge) listComments(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	list := []any{}
	for _, id := range slices.Sorted(maps.Keys(f.comments)) {
		list = append(list, f.commentShape(id, f.comments[id]))
	}
	if f.vendor == "bitbucket" {
		reply(w, http.StatusOK, map[string]any{"pagelen": 100, "size": len(list), "page": 1, "values": list})
		return
	}
	reply(w, http.StatusOK, list)
}

func (f *fakeForge) createComment(w http.ResponseWriter, r *http.Request) {
	text := f.text(r)
	f.mu.Lock()
	f.nextID++
	id := f.nextID
	f.comments[id] = text
	f.mu.Unlock()
	reply(w, http.StatusCreated, f.commentShape(id, text))
}

func (f *fakeForge) editComment(w http.ResponseWriter, r *http.Request) {
	last := r.PathValue("id")
	for _, k := range []string{"note", "cid"} {
		if v := r.PathValue(k); v != "" {
			last = v
		}
	}
	id, _ := strconv.ParseInt(last, 10, 64)
	text := f.text(r)
	f.mu.Lock()
	_, ok := f.comments[id]
	if ok {
		f.comments[id] = text
	}
	f.mu.Unlock()
	if !ok {
		reply(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
		return
	}
	reply(w, http.StatusOK, f.commentShape(id, text))
}

func (f *fakeForge) recorded() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

func (f *fakeForge) bodies() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, id := range slices.Sorted(maps.Keys(f.comments)) {
		out = append(out, f.comments[id])
	}
	return out
}

// waitFor polls until cond holds, up to a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lines renders requests for a golden file: the run's id is replaced by RUN.
func lines(reqs []request, runID string) string {
	var b strings.Builder
	for _, r := range reqs {
		body := mustJSON(r.Body)
		if r.Body == nil {
			body = "-"
		}
		fmt.Fprintf(&b, "%s %s %s -> %d\n", r.Method, r.Path, strings.ReplaceAll(body, runID, "RUN"), r.Answer)
	}
	return b.String()
}
