package api_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The run view says why each stage that has not started waits, and where it stands; once
// started, how long it was queued.
func TestRunViewSaysWhyPending(t *testing.T) {
	t.Parallel()
	e := newEnv(t) // capacity 4
	e.repo("acme/q", "stages:\n"+
		"  s1: {steps: [gate hold]}\n  s2: {steps: [gate hold]}\n  s3: {steps: [gate hold]}\n"+
		"  s4: {steps: [gate hold]}\n  s5: {steps: [gate hold]}\n  last: {needs: [s1, s5], steps: [echo]}\n")
	var created struct{ ID string }
	e.do("POST", "/api/v1/runs", map[string]string{"repo": "acme/q", "ref": "main"}, 201, &created)
	type stage struct {
		Name        string
		Status      string
		QueueWaitMS *int64 `json:"queue_wait_ms"`
		Waiting     *struct {
			Reason   string
			Position int
		}
	}
	var v struct {
		Priority string
		Stages   []stage
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		// A fresh value each poll: decoding into the last one would keep a "waiting" that
		// this answer leaves out (omitempty) from an earlier one.
		v.Priority, v.Stages = "", nil
		e.do("GET", "/api/v1/runs/"+created.ID, nil, 200, &v)
		running := 0
		for _, s := range v.Stages {
			if s.Status == "running" {
				running++
			}
		}
		if running == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stages %+v", v.Stages)
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
	if v.Priority != "default" {
		t.Errorf("priority %q, want default (a manual run of main)", v.Priority)
	}
	for _, s := range v.Stages {
		switch {
		case s.Status == "queued":
			if s.Waiting == nil || s.Waiting.Position != 1 || s.Waiting.Reason != "capacity: 4/4 stages running" {
				t.Errorf("queued %s waiting %+v", s.Name, s.Waiting)
			}
		case s.Name == "last":
			if s.Waiting == nil || !strings.HasPrefix(s.Waiting.Reason, "waiting for needs: ") {
				t.Errorf("last waiting %+v", s.Waiting)
			}
		case s.Status == "running":
			if s.Waiting != nil || s.QueueWaitMS == nil {
				t.Errorf("running %s: waiting %+v, queue wait %v", s.Name, s.Waiting, s.QueueWaitMS)
			}
		}
	}
	e.exec.Open("hold")
	done := e.waitDone(created.ID)
	for _, s := range done["stages"].([]any) {
		if _, ok := s.(map[string]any)["queue_wait_ms"]; !ok {
			t.Errorf("stage without queue_wait_ms: %v", s)
		}
	}
}

func TestTeamQuotaRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var q struct {
		Team           string
		Limit, Running int
	}
	e.do("GET", "/api/v1/teams/red/quota", nil, 200, &q)
	if q.Team != "red" || q.Limit != 0 {
		t.Fatalf("default quota %+v", q)
	}
	e.do("PUT", "/api/v1/teams/red/quota", map[string]int{"limit": 3}, 200, &q)
	e.do("GET", "/api/v1/teams/red/quota", nil, 200, &q)
	if q.Limit != 3 {
		t.Fatalf("quota after PUT %+v", q)
	}
	var body struct{ Error string }
	e.do("PUT", "/api/v1/teams/red/quota", map[string]int{"limit": -1}, 400, &body)
	e.do("PUT", "/api/v1/teams/red/quota", map[string]any{}, 400, &body)
	if !strings.Contains(body.Error, "limit") {
		t.Errorf("missing limit: %q", body.Error)
	}
}

// A manual run asked as a hotfix is in the hotfix class whatever its branch.
func TestManualRunHotfix(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.repo("acme/hf", "stages:\n  s: {steps: [echo]}\n")
	for _, c := range []struct {
		body map[string]any
		want string
	}{
		{map[string]any{"repo": "acme/hf", "ref": "main", "hotfix": true}, "hotfix"},
		{map[string]any{"repo": "acme/hf", "ref": "main"}, "default"},
	} {
		var created struct{ ID string }
		e.do("POST", "/api/v1/runs", c.body, 201, &created)
		if v := e.waitDone(created.ID); v["priority"] != c.want {
			t.Errorf("POST %v: priority %v, want %s", c.body, v["priority"], c.want)
		}
	}
}

// A push run is in the default class when it is to the default branch the forge's payload
// names, whatever that branch is called.
func TestHookRecordsDefaultBranch(t *testing.T) {
	t.Parallel()
	e := newHookEnv(t, "on: {push: {branches: [trunk, main]}}\nstages:\n  build: {steps: [echo built]}\n", nil)
	for i, c := range []struct{ branch, want string }{{"trunk", "default"}, {"main", "branch"}} {
		var body map[string]any
		if err := json.Unmarshal(pushBody(c.branch, e.sha, "src/a.go"), &body); err != nil {
			t.Fatal(err)
		}
		body["repository"].(map[string]any)["default_branch"] = "trunk"
		b, _ := json.Marshal(body)
		code, v := e.deliver("push", fmt.Sprintf("d-%d", i), b, signed)
		if code != 202 {
			t.Fatalf("delivery: %d %v", code, v)
		}
		r := e.waitProcessed(v["trigger_id"].(string))
		if len(r.Runs) != 1 {
			t.Fatalf("push to %s: trigger %+v", c.branch, r)
		}
		if got := e.waitDone(r.Runs[0]); got["priority"] != c.want {
			t.Errorf("push to %s with default branch trunk: priority %v, want %s", c.branch, got["priority"], c.want)
		}
	}
}
