package api_test

// In-process end-to-end tests: the API, the scheduler, a SQLite store and the scripted fake
// executor in one test binary, over real HTTP on 127.0.0.1 and real git repositories.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paved/paved/internal/api"
	"github.com/paved/paved/internal/execute/fake"
	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/schedule"
	"github.com/paved/paved/internal/store/sqlite"
	"github.com/paved/paved/internal/trigger"
)

type env struct {
	t    *testing.T
	url  string
	exec *fake.Executor
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "paved.db"))
	if err != nil {
		t.Fatal(err)
	}
	hub := api.NewHub()
	ex := &fake.Executor{}
	sched, err := schedule.New(schedule.Config{OnEvent: hub.PublishEvent, OnLog: hub.PublishLogs,
		LogFlush: 5 * time.Millisecond}, st, ex)
	if err != nil {
		t.Fatal(err)
	}
	if err := sched.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Access: newAccess(t, st), Store: st, Scheduler: sched, Git: &trigger.Git{Dir: t.TempDir()}, Hub: hub})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); sched.Stop(); st.Close() })
	return &env{t: t, url: hs.URL, exec: ex}
}

// repo registers a git repository whose .paved.yml is pipeline.
func (e *env) repo(name, pipeline string) {
	e.t.Helper()
	dir := e.t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".paved.yml"), []byte(pipeline), 0o644); err != nil {
		e.t.Fatal(err)
	}
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "-A"}, {"-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			e.t.Fatalf("git %v: %v %s", args, err, out)
		}
	}
	e.do("POST", "/api/v1/repos", map[string]string{"full_name": name, "clone_url": dir, "team": "t"}, 201, nil)
}

func (e *env) do(method, path string, body any, wantStatus int, out any) {
	e.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.url+path, r)
	resp, err := http.DefaultClient.Do(asRoot(req))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		e.t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, wantStatus, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			e.t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
}

func (e *env) waitDone(id string) map[string]any {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var v map[string]any
		e.do("GET", "/api/v1/runs/"+id, nil, 200, &v)
		if run.Phase(v["phase"].(string)).Done() {
			return v
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("run %s still %v", id, v["phase"])
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
}

func TestRunLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.repo("acme/app", "stages:\n  build: {steps: [echo built]}\n  test: {needs: [build], steps: [\"echo one\\necho two\"]}\n")
	var created struct{ ID, SHA string }
	e.do("POST", "/api/v1/runs", map[string]string{"repo": "acme/app", "ref": "main"}, 201, &created)
	if len(created.SHA) != 40 {
		t.Fatalf("sha %q", created.SHA)
	}
	v := e.waitDone(created.ID)
	if v["phase"] != "SUCCEEDED" {
		t.Fatalf("phase %v", v)
	}
	stages := v["stages"].([]any)
	if len(stages) != 2 || stages[1].(map[string]any)["status"] != "succeeded" || stages[1].(map[string]any)["started_at"] == nil {
		t.Fatalf("stages %v", stages)
	}
	resp, err := rootGet(e.url + "/api/v1/runs/" + created.ID + "/logs?stage=test")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got, want := string(text), "$ echo one\none\ntwo\n"; got != want {
		t.Fatalf("logs %q, want %q", got, want)
	}
	var list struct{ Runs []run.Summary }
	e.do("GET", "/api/v1/runs?repo=acme/app", nil, 200, &list)
	if len(list.Runs) != 1 || list.Runs[0].ID != created.ID {
		t.Fatalf("list %+v", list)
	}
	if job := e.exec.Jobs()[0]; job.Source.SHA != created.SHA || job.Env["PAVED_BRANCH"] != "main" {
		t.Fatalf("job source %+v env branch %q", job.Source, job.Env["PAVED_BRANCH"])
	}
}

func TestErrorsSayWhatToDo(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var body struct {
		Error   string
		Details []string
	}
	e.do("POST", "/api/v1/repos", map[string]string{"full_name": "noslash", "clone_url": "/x", "team": "t"}, 400, &body)
	if !strings.Contains(body.Error, "owner/name") {
		t.Errorf("bad full_name: %q", body.Error)
	}
	e.do("POST", "/api/v1/runs", map[string]string{"repo": "who/dis"}, 404, &body)
	if !strings.Contains(body.Error, "POST /api/v1/repos") {
		t.Errorf("unknown repo: %q", body.Error)
	}
	e.repo("acme/bad", "stages:\n  a: {needs: [zz], steps: [echo]}\n")
	e.do("POST", "/api/v1/runs", map[string]string{"repo": "acme/bad"}, 422, &body)
	if len(body.Details) == 0 || !strings.HasPrefix(body.Details[0], ".paved.yml:2:") {
		t.Errorf("invalid pipeline: %+v", body)
	}
	e.do("POST", "/api/v1/runs", map[string]string{"repo": "acme/bad", "ref": "nope"}, 422, &body)
	e.do("GET", "/api/v1/runs/nope", nil, 404, &body)
	e.do("POST", "/api/v1/runs", map[string]any{"repo": 1}, 400, &body)
}

// sseRead reads server-sent events until the stream ends or n data lines arrived.
func sseRead(t *testing.T, url, lastID string, n int) (ids []string, data []string, events []string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(asRoot(req.WithContext(ctx)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && (n == 0 || len(data) < n) {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			ids = append(ids, line[4:])
		case strings.HasPrefix(line, "event: "):
			events = append(events, line[7:])
		case strings.HasPrefix(line, "data: "):
			data = append(data, line[6:])
		}
	}
	return ids, data, events
}

func TestLogStreamResumesWithLastEventID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	started := make(chan string, 1)
	e.exec.Started = started
	e.repo("acme/stream", "stages:\n  s:\n    steps:\n      - \"echo l1\\necho l2\\necho l3\\nsleep 200ms\\necho l4\\necho l5\"\n")
	var created struct{ ID string }
	e.do("POST", "/api/v1/runs", map[string]string{"repo": "acme/stream"}, 201, &created)
	<-started
	url := e.url + "/api/v1/runs/" + created.ID + "/logs?stage=s"
	// The first connection drops after three lines; the second resumes after the last id.
	ids, _, _ := sseRead(t, url, "", 3)
	if len(ids) != 3 {
		t.Fatalf("first stream: ids %v", ids)
	}
	_, data, events := sseRead(t, url, ids[2], 0)
	var texts []string
	for _, d := range data {
		var l run.LogLine
		if err := json.Unmarshal([]byte(d), &l); err == nil && l.Text != "" {
			texts = append(texts, l.Text)
		}
	}
	if got, want := strings.Join(texts, ","), "l3,l4,l5"; got != want {
		t.Fatalf("resumed lines %q, want %q (the first stream had $ header, l1, l2)", got, want)
	}
	if len(events) != 1 || events[0] != "end" {
		t.Fatalf("stream did not end with an end event: %v", events)
	}
}

func TestEventStreamFollowsRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.repo("acme/ev", "stages:\n  a: {steps: [\"sleep 50ms\"]}\n  b: {needs: [a], steps: [echo]}\n")
	var created struct{ ID string }
	e.do("POST", "/api/v1/runs", map[string]string{"repo": "acme/ev"}, 201, &created)
	ids, data, _ := sseRead(t, e.url+"/api/v1/runs/"+created.ID+"/events", "", 0)
	for i, id := range ids {
		if want := strings.TrimSpace(string(rune('1' + i))); i < 9 && id != want {
			t.Fatalf("ids %v not 1..n", ids)
		}
	}
	var last run.Event
	json.Unmarshal([]byte(data[len(data)-1]), &last)
	if last.Type != run.RunFinished || last.Status != "SUCCEEDED" {
		t.Fatalf("last event %+v", last)
	}
}

func TestCancelThroughAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	started := make(chan string, 1)
	e.exec.Started = started
	e.repo("acme/cancel", "stages:\n  a: {steps: [block]}\n")
	var created struct{ ID string }
	e.do("POST", "/api/v1/runs", map[string]string{"repo": "acme/cancel"}, 201, &created)
	<-started
	e.do("POST", "/api/v1/runs/"+created.ID+"/cancel", nil, 202, nil)
	if v := e.waitDone(created.ID); v["phase"] != "CANCELLED" {
		t.Fatalf("phase %v", v["phase"])
	}
	e.do("POST", "/api/v1/runs/"+created.ID+"/cancel", nil, 409, nil)
}

func TestRepoCredentialsNeverShown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var saved map[string]any
	e.do("POST", "/api/v1/repos", map[string]string{"full_name": "acme/private", "clone_url": "https://bot:tok3n@git.example.invalid/acme/private.git",
		"team": "t", "provider": "github", "webhook_secret": "hooksecret"}, 201, &saved)
	var list struct{ Repos []map[string]any }
	e.do("GET", "/api/v1/repos", nil, 200, &list)
	for _, v := range append(list.Repos, saved) {
		b, _ := json.Marshal(v)
		if strings.Contains(string(b), "tok3n") || strings.Contains(string(b), "hooksecret") {
			t.Fatalf("credentials in an API answer: %s", b)
		}
		if v["clone_url"] != "https://***@git.example.invalid/acme/private.git" {
			t.Fatalf("clone_url %v", v["clone_url"])
		}
	}
}
