package api_test

// Webhooks end to end, in process: signed deliveries over real HTTP into the inbox of a
// SQLite store, routed to the pipeline of a real git repository, run by the fake executor.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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
	"github.com/paved/paved/internal/schedule"
	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/store/sqlite"
	"github.com/paved/paved/internal/trigger"
	"github.com/paved/paved/internal/trigger/inbox"
)

const hookSecret = "It's a Secret to Everybody"

type hookEnv struct {
	*env
	st    *sqlite.Store
	inbox *inbox.Inbox
	dir   string // the registered repository
	sha   string // its main
}

// newHookEnv registers acme/app (a git repo with pipeline) with hookSecret and serves the
// API with an inbox.
func newHookEnv(t *testing.T, pipeline string, now func() time.Time) *hookEnv {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "paved.db"))
	if err != nil {
		t.Fatal(err)
	}
	hub := api.NewHub()
	sched, err := schedule.New(schedule.Config{OnEvent: hub.PublishEvent, OnLog: hub.PublishLogs,
		LogFlush: 5 * time.Millisecond}, st, &fake.Executor{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sched.Start(ctx); err != nil {
		t.Fatal(err)
	}
	git := &trigger.Git{Dir: t.TempDir()}
	launcher := &inbox.Launcher{Git: git, Scheduler: sched}
	ib, err := inbox.New(inbox.Config{Store: st, Launcher: launcher, Poll: 50 * time.Millisecond, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if err := ib.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Access: newAccess(t, st), Store: st, Scheduler: sched, Git: git, Hub: hub, Launcher: launcher, Inbox: ib})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); ib.Stop(); sched.Stop(); st.Close() })
	e := &hookEnv{env: &env{t: t, url: hs.URL}, st: st, inbox: ib, dir: t.TempDir()}
	if err := os.WriteFile(filepath.Join(e.dir, ".paved.yml"), []byte(pipeline), 0o644); err != nil {
		t.Fatal(err)
	}
	e.git("init", "-q", "-b", "main")
	e.git("add", "-A")
	e.git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
	e.sha = e.git("rev-parse", "HEAD")
	e.do("POST", "/api/v1/repos", map[string]string{"full_name": "acme/app", "clone_url": e.dir, "team": "t",
		"provider": "github", "webhook_secret": hookSecret}, 201, nil)
	return e
}

func (e *hookEnv) git(args ...string) string {
	e.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = e.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		e.t.Fatalf("git %v: %v %s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// deliver posts a GitHub delivery and returns the status and the JSON answer.
func (e *hookEnv) deliver(event, delivery string, body []byte, sign func([]byte) string) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.url+"/hooks/github", bytes.NewReader(body))
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", delivery)
	if sign != nil {
		req.Header.Set("X-Hub-Signature-256", sign(body))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	data, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(data, &v)
	return resp.StatusCode, v
}

func signed(b []byte) string { return trigger.SignHMAC("sha256=", b, hookSecret) }

func pushBody(branch, sha string, files ...string) []byte {
	b, _ := json.Marshal(map[string]any{
		"ref": "refs/heads/" + branch, "before": "0000000000000000000000000000000000000000", "after": sha,
		"repository":  map[string]any{"full_name": "acme/app"},
		"pusher":      map[string]any{"name": "Ada", "email": "ada@example.com"},
		"sender":      map[string]any{"login": "ada"},
		"head_commit": map[string]any{"id": sha, "message": "first\n\nbody"},
		"commits":     []any{map[string]any{"id": sha, "added": files, "modified": []string{}, "removed": []string{}}},
	})
	return b
}

// waitProcessed polls the trigger until the inbox has processed it.
func (e *hookEnv) waitProcessed(id string) store.TriggerRecord {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var r store.TriggerRecord
		e.do("GET", "/api/v1/triggers/"+id, nil, 200, &r)
		if r.ProcessedAt != nil {
			return r
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("trigger %s still pending", id)
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
}

func TestHookPushStartsOneRun(t *testing.T) {
	t.Parallel()
	e := newHookEnv(t, "on: {push: {branches: [main], paths: ['src/**']}}\nstages:\n  build: {steps: [echo built]}\n", nil)
	body := pushBody("main", e.sha, "src/a.go")
	code, v := e.deliver("push", "d-1", body, signed)
	if code != 202 || v["duplicate"] != false || v["trigger_id"] == "" {
		t.Fatalf("first delivery: %d %v", code, v)
	}
	id := v["trigger_id"].(string)
	// GitHub's "redeliver": same delivery id.
	if code, v := e.deliver("push", "d-1", body, signed); code != 202 || v["duplicate"] != true || v["trigger_id"] != id {
		t.Fatalf("redelivery: %d %v", code, v)
	}
	// Another delivery of the same push (a second webhook on the repo): same dedup key.
	if code, v := e.deliver("push", "d-2", body, signed); code != 202 || v["duplicate"] != true || v["trigger_id"] != id {
		t.Fatalf("same push, new delivery id: %d %v", code, v)
	}
	r := e.waitProcessed(id)
	if len(r.Runs) != 1 || r.Runs[0] != inbox.RunID(id, ".paved.yml") || r.Note != "" {
		t.Fatalf("trigger %+v: want one run with the derived id", r)
	}
	run := e.waitDone(r.Runs[0])
	if run["phase"] != "SUCCEEDED" || run["trigger"] != "push" {
		t.Fatalf("run %v", run)
	}
	var events struct{ Events []map[string]any }
	e.do("GET", "/api/v1/runs/"+r.Runs[0]+"/events", nil, 200, &events)
	tr := events.Events[0]["info"].(map[string]any)["trigger"].(map[string]any)
	if tr["id"] != id || tr["provider"] != "github" || tr["author"] != "ada" || tr["message"] != "first" || tr["branch"] != "main" {
		t.Errorf("the run's trigger: %v", tr)
	}
	var runs struct{ Runs []any }
	e.do("GET", "/api/v1/runs", nil, 200, &runs)
	if len(runs.Runs) != 1 {
		t.Errorf("%d runs, want 1", len(runs.Runs))
	}
	var list struct{ Triggers []store.TriggerRecord }
	e.do("GET", "/api/v1/triggers?limit=10", nil, 200, &list)
	if len(list.Triggers) != 1 || list.Triggers[0].ID != id {
		t.Errorf("GET /api/v1/triggers: %+v", list)
	}
}

func TestHookRouting(t *testing.T) {
	t.Parallel()
	e := newHookEnv(t, "on: {push: {branches: [main], paths: ['src/**']}, pull_request: {labels: [ci]}}\nstages:\n  build: {steps: [echo built]}\n", nil)
	for _, c := range []struct {
		name, event string
		body        []byte
		note        string
	}{
		{"other branch", "push", pushBody("dev", e.sha, "src/a.go"), "branch \"dev\" does not match on.push.branches"},
		{"docs only", "push", pushBody("main", e.sha, "README.md"), "no changed file matches on.push.paths"},
		{"deleted", "push", []byte(`{"ref":"refs/heads/x","before":"` + e.sha + `","after":"0000000000000000000000000000000000000000","deleted":true,"repository":{"full_name":"acme/app"}}`), "was deleted"},
		{"pr without label", "pull_request", prBody(e.sha, "opened", "bug"), "none of the labels"},
	} {
		code, v := e.deliver(c.event, "d-"+c.name, c.body, signed)
		if code != 202 || v["duplicate"] != false {
			t.Fatalf("%s: %d %v", c.name, code, v)
		}
		r := e.waitProcessed(v["trigger_id"].(string))
		if len(r.Runs) != 0 || !strings.Contains(r.Note, c.note) {
			t.Errorf("%s: runs %v note %q, want none and %q", c.name, r.Runs, r.Note, c.note)
		}
	}
	code, v := e.deliver("pull_request", "d-pr", prBody(e.sha, "labeled", "ci"), signed)
	if code != 202 {
		t.Fatalf("%d %v", code, v)
	}
	if r := e.waitProcessed(v["trigger_id"].(string)); len(r.Runs) != 1 {
		t.Errorf("labeled PR: %+v, want a run", r)
	}
}

func prBody(sha, action, label string) []byte {
	b, _ := json.Marshal(map[string]any{
		"action": action, "number": 7, "label": map[string]any{"name": label},
		"repository": map[string]any{"full_name": "acme/app"},
		"pull_request": map[string]any{"number": 7, "title": "t", "user": map[string]any{"login": "bob"},
			"head": map[string]any{"ref": "feature", "sha": sha}, "base": map[string]any{"ref": "main", "sha": sha},
			"labels": []any{map[string]any{"name": label}}},
	})
	return b
}

func TestHookRefusals(t *testing.T) {
	t.Parallel()
	e := newHookEnv(t, "stages:\n  build: {steps: [echo built]}\n", nil)
	body := pushBody("main", e.sha)
	for _, c := range []struct {
		name  string
		event string
		body  []byte
		sign  func([]byte) string
		code  int
		want  string
	}{
		{"unsigned", "push", body, nil, 401, "no X-Hub-Signature-256"},
		{"bad signature", "push", body, func([]byte) string { return signed([]byte("other")) }, 401, "does not match"},
		{"unknown repo", "push", bytes.Replace(body, []byte("acme/app"), []byte("acme/nope"), 1), signed, 404, "not registered"},
		{"malformed", "push", []byte("{"), signed, 400, "malformed"},
		{"ping", "ping", []byte(`{"zen":"hi","repository":{"full_name":"acme/app"}}`), signed, 202, "ping"},
		{"unsigned ping", "ping", []byte(`{"repository":{"full_name":"acme/app"}}`), nil, 401, "signature"},
		{"issues", "issues", []byte(`{"repository":{"full_name":"acme/app"}}`), signed, 202, "does not start runs"},
	} {
		code, v := e.deliver(c.event, "d-"+c.name, c.body, c.sign)
		if code != c.code || !strings.Contains(fmt.Sprint(v), c.want) {
			t.Errorf("%s: %d %v, want %d with %q", c.name, code, v, c.code, c.want)
		}
	}
	big := bytes.Repeat([]byte(" "), 25<<20+1)
	if code, v := e.deliver("push", "d-big", big, signed); code != 413 {
		t.Errorf("26 MiB body: %d %v, want 413", code, v)
	}
	if code, _ := e.deliver("push", "d-none", body, signed); code != 202 {
		t.Errorf("a good delivery after the refusals: %d", code)
	}
}

// TestHookReprocessFindsRun: a trigger processed again (the server died between creating
// the run and marking the trigger done) finds its run instead of starting a second.
func TestHookReprocessFindsRun(t *testing.T) {
	t.Parallel()
	e := newHookEnv(t, "stages:\n  build: {steps: [echo built]}\n", nil)
	code, v := e.deliver("push", "d-1", pushBody("main", e.sha), signed)
	if code != 202 {
		t.Fatal(code, v)
	}
	id := v["trigger_id"].(string)
	first := e.waitProcessed(id)
	again, err := e.inbox.Route(t.Context(), &first.Trigger)
	if err != nil || len(again) != 1 || again[0] != first.Runs[0] {
		t.Fatalf("re-route = %v %v, want the same run %v", again, err, first.Runs)
	}
	var runs struct{ Runs []any }
	e.do("GET", "/api/v1/runs", nil, 200, &runs)
	if len(runs.Runs) != 1 {
		t.Errorf("%d runs after re-processing, want 1", len(runs.Runs))
	}
}

func TestCron(t *testing.T) {
	t.Parallel()
	clock := time.Date(2030, 1, 1, 2, 58, 30, 0, time.UTC)
	e := newHookEnv(t, "on: {cron: ['0 3 * * *']}\nstages:\n  build: {steps: [echo nightly]}\n", func() time.Time { return clock })
	ctx := t.Context()
	e.inbox.CronTick(ctx, clock) // the first tick only sets where the next looks from
	e.inbox.CronTick(ctx, clock.Add(time.Minute))
	var list struct{ Triggers []store.TriggerRecord }
	e.do("GET", "/api/v1/triggers", nil, 200, &list)
	if len(list.Triggers) != 0 {
		t.Fatalf("cron fired before 03:00: %+v", list.Triggers)
	}
	e.inbox.CronTick(ctx, clock.Add(2*time.Minute)) // 03:00:30
	e.inbox.CronTick(ctx, clock.Add(3*time.Minute)) // nothing new due
	e.do("GET", "/api/v1/triggers", nil, 200, &list)
	if len(list.Triggers) != 1 || list.Triggers[0].Kind != "cron" || list.Triggers[0].Schedule != "0 3 * * *" {
		t.Fatalf("triggers %+v, want one cron trigger", list.Triggers)
	}
	r := e.waitProcessed(list.Triggers[0].ID)
	if len(r.Runs) != 1 {
		t.Fatalf("cron trigger %+v started no run", r)
	}
	if v := e.waitDone(r.Runs[0]); v["phase"] != "SUCCEEDED" || v["trigger"] != "cron" {
		t.Errorf("cron run %v", v)
	}
}
