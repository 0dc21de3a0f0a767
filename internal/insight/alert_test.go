package insight

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/paved/paved/internal/pipeline"
	"github.com/paved/paved/internal/run"
)

func finished(name string, phase run.Phase, end time.Time, took time.Duration) *run.State {
	return &run.State{Info: &run.Info{Pipeline: &pipeline.Pipeline{Name: name}}, Phase: phase, CreatedAt: end.Add(-took), FinishedAt: end}
}

func TestAlertsFireOnceAndResolve(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	var states []*run.State
	for day := range 15 {
		for i := range 10 {
			end := now.Add(-time.Duration(day)*24*time.Hour - time.Duration(i+1)*time.Hour)
			// shop: 100 s runs last week, 130 s this week; 1 failure a day, 5 today.
			took := 100 * time.Second
			if day < 7 {
				took = 130 * time.Second
			}
			phase := run.Succeeded
			if i == 0 || (day == 0 && i < 5) {
				phase = run.Failed
			}
			states = append(states, finished("shop", phase, end, took))
			// steady: same every day, 2 failures in 10, no change in speed: never alerts.
			phase = run.Succeeded
			if i < 2 {
				phase = run.Failed
			}
			states = append(states, finished("steady", phase, end, 60*time.Second))
		}
	}
	var mu sync.Mutex
	var got []map[string]any
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Errorf("webhook body %s: %v", b, err)
		}
		mu.Lock()
		got = append(got, v)
		mu.Unlock()
	}))
	defer hook.Close()
	depth := 12
	var hits, restores int64 = 5, 10
	a, err := NewAlerter(AlertConfig{
		Sources: AlertSources{
			Runs:       func(context.Context, time.Time) ([]*run.State, error) { return states, nil },
			QueueDepth: func() int { return depth },
			CacheHits:  func() (int64, int64) { return hits, restores },
		},
		Webhooks: []string{hook.URL},
		Now:      func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := a.Evaluate(ctx); err != nil {
		t.Fatal(err)
	}
	var rules []string
	for _, al := range a.Firing() {
		rules = append(rules, al.Rule+":"+al.Subject)
	}
	want := []string{"cache_hit_ratio:", "duration_regression:shop", "failure_spike:shop", "queue_depth:"}
	if !slices.Equal(rules, want) {
		t.Fatalf("firing %v, want %v", rules, want)
	}
	for _, al := range a.Firing() {
		switch al.Rule {
		case "duration_regression":
			if al.Value != 130000 || al.Baseline != 100000 {
				t.Errorf("regression %+v", al)
			}
		case "failure_spike":
			if al.Value != 0.5 || al.Baseline != 0.1 || al.Threshold != 0.2 {
				t.Errorf("spike %+v", al)
			}
		}
	}
	mu.Lock()
	if len(got) != 4 || got[0]["status"] != "firing" || got[0]["text"] == "" {
		t.Fatalf("webhook got %v", got)
	}
	got = nil
	mu.Unlock()

	// Still firing: nothing new is sent. The queue drains and the cache warms: two resolve.
	if err := a.Evaluate(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(got) != 0 {
		t.Fatalf("sent again while firing: %v", got)
	}
	mu.Unlock()
	depth, hits, restores = 3, 5+19, 10+20
	if err := a.Evaluate(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	var resolved []string
	for _, v := range got {
		if v["status"] == "resolved" {
			resolved = append(resolved, v["alert"].(map[string]any)["rule"].(string))
		}
	}
	slices.Sort(resolved)
	if len(got) != 2 || !slices.Equal(resolved, []string{"cache_hit_ratio", "queue_depth"}) {
		t.Fatalf("resolve messages %v", got)
	}
}
