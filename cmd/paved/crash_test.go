package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/paved/paved/internal/run"
)

// kill -9 of the server five times at random points while 100 runs of an 8-stage DAG are in
// flight, a restart after each: every run ends as it should, its event log is gap-free, no
// stage result is lost or recorded twice, and only stages that were running are interrupted.
func TestServerSurvivesRepeatedKill9(t *testing.T) {
	t.Parallel()
	dir := gitRepo(t, map[string]string{".paved.yml": `
stages:
  a: {steps: ["true"]}
  b: {needs: [a], steps: ["true"]}
  c: {needs: [a], steps: ["true"]}
  d: {needs: [b], steps: ["true"]}
  e: {needs: [b], steps: ["true"]}
  f: {needs: [c], steps: ['test "$PAVED_BRANCH" != bad']}
  g: {needs: [d, e, f], steps: ["true"]}
  h: {needs: [g], steps: ["true"]}
`})
	gitIn(t, dir, "branch", "bad")
	data := t.TempDir()
	args := []string{"--capacity", "8", "--sandbox", "process-group"}
	s := startPavedServer(t, data, args...)
	s.post(t, "/api/v1/repos", map[string]string{"full_name": "e2e/crash", "clone_url": dir, "team": "e2e"})
	const runs = 100
	want := map[string]run.Phase{}
	for i := range runs {
		ref, phase := "main", run.Succeeded
		if i%5 == 0 {
			ref, phase = "bad", run.Failed
		}
		out := s.post(t, "/api/v1/runs", map[string]string{"repo": "e2e/crash", "ref": ref})
		want[out["id"].(string)] = phase
	}
	doneRuns := func(s *pavedServer) int {
		var list struct{ Runs []run.Summary }
		s.get(t, fmt.Sprintf("/api/v1/runs?limit=%d", runs), &list)
		n := 0
		for _, r := range list.Runs {
			if r.Phase.Done() {
				n++
			}
		}
		return n
	}
	// Kill when a random number of further runs has finished since the start: early kills
	// land among running stages, later ones among queued work and recovery itself.
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 4))
	for kill := range 5 {
		target := min(runs-1, 8*(kill+1)+rng.IntN(8))
		deadline := time.Now().Add(60 * time.Second)
		for doneRuns(s) < target {
			if time.Now().After(deadline) {
				t.Fatalf("kill %d: fewer than %d runs done after a minute\n%s", kill+1, target, s.stderr)
			}
			time.Sleep(time.Duration(5+rng.IntN(40)) * time.Millisecond) // polling with a deadline, at random points
		}
		s.cmd.Process.Signal(syscall.SIGKILL)
		s.cmd.Wait()
		s = startPavedServer(t, data, args...)
	}
	deadline := time.Now().Add(90 * time.Second)
	for doneRuns(s) < runs {
		if time.Now().After(deadline) {
			t.Fatalf("runs still going 90s after the last restart\n%s", s.stderr)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}

	interrupted := 0
	for id, phase := range want {
		var view struct{ Phase run.Phase }
		s.get(t, "/api/v1/runs/"+id, &view)
		if view.Phase != phase {
			t.Errorf("run %s ended %s, want %s", id, view.Phase, phase)
		}
		var evs struct{ Events []run.Event }
		s.get(t, "/api/v1/runs/"+id+"/events", &evs)
		n, err := checkStageLog(evs.Events)
		if err != nil {
			t.Errorf("run %s: %v", id, err)
		}
		interrupted += n
	}
	resp, err := authGet(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `paved_stage_queue_wait_seconds_count{priority="default",team=`) {
		t.Errorf("no queue wait histogram in /metrics:\n%.2000s", metrics)
	}
	t.Logf("5 kills; %d stage attempts interrupted and re-run", interrupted)
}

// checkStageLog replays a run's events as a checker: seqs are gap-free; each stage attempt is
// queued, then started, then finished or interrupted exactly once; only a running attempt is
// interrupted; no attempt has two results; the run ends with RunFinished. It returns how many
// attempts were interrupted.
func checkStageLog(evs []run.Event) (int, error) {
	type key struct {
		stage   string
		attempt int
	}
	status := map[string]string{} // stage → queued, running or a result
	attempt := map[string]int{}
	results := map[key]int{}
	interrupted := 0
	for i, e := range evs {
		if e.Seq != int64(i+1) {
			return 0, fmt.Errorf("event %d has seq %d", i, e.Seq)
		}
		switch e.Type {
		case run.StageQueued:
			if status[e.Stage] == "queued" || status[e.Stage] == "running" {
				return 0, fmt.Errorf("seq %d: %s queued while %s", e.Seq, e.Stage, status[e.Stage])
			}
			status[e.Stage], attempt[e.Stage] = "queued", e.Attempt
		case run.StageStarted:
			if status[e.Stage] != "queued" || e.Attempt != attempt[e.Stage] {
				return 0, fmt.Errorf("seq %d: %s attempt %d started while %s (attempt %d)", e.Seq, e.Stage, e.Attempt, status[e.Stage], attempt[e.Stage])
			}
			status[e.Stage] = "running"
		case run.StageInterrupted:
			if status[e.Stage] != "running" {
				return 0, fmt.Errorf("seq %d: %s interrupted while %q", e.Seq, e.Stage, status[e.Stage])
			}
			status[e.Stage] = "interrupted"
			interrupted++
		case run.StageFinished:
			k := key{e.Stage, e.Attempt}
			if results[k]++; results[k] > 1 {
				return 0, fmt.Errorf("seq %d: %s attempt %d has a second result", e.Seq, e.Stage, e.Attempt)
			}
			if e.Status == run.StatusSucceeded || e.Status == run.StatusFailed {
				if status[e.Stage] != "running" {
					return 0, fmt.Errorf("seq %d: %s %s without running", e.Seq, e.Stage, e.Status)
				}
			}
			status[e.Stage] = e.Status
		}
	}
	if len(evs) == 0 || evs[len(evs)-1].Type != run.RunFinished {
		return 0, fmt.Errorf("the log does not end with RunFinished")
	}
	for stage, st := range status {
		switch st {
		case "queued", "running", "interrupted":
			return 0, fmt.Errorf("stage %s left %s", stage, st)
		}
	}
	return interrupted, nil
}
