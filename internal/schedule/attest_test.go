package schedule

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestArtifactsAreAttestedBeforeTheyAreRecorded(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []AttestParams
	fail := false
	h := newHarness(t, ":memory:", func(c *Config) {
		c.Attest = func(_ context.Context, p AttestParams) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, p)
			if fail {
				return errors.New("key store is locked")
			}
			return nil
		}
	})
	p := stages([3]string{"build", "", "artifact app built"}, [3]string{"pack", "build", "artifact app.tgz packed"})
	p.Stages[0].Artifacts, p.Stages[1].Artifacts = []string{"app"}, []string{"app.tgz"}
	st := h.wait(h.create(p))
	if st.Phase != "SUCCEEDED" {
		t.Fatalf("phase %s: %s", st.Phase, st.Reason)
	}
	mu.Lock()
	if len(got) != 2 || got[0].Stage != "build" || got[0].Outputs[0].Path != "app" || len(got[0].Inputs) != 0 ||
		got[1].Stage != "pack" || got[1].Inputs[0].Path != "app" || got[1].Outputs[0].Path != "app.tgz" ||
		got[1].Started.IsZero() || got[1].Finished.Before(got[1].Started) || got[1].Info.Repo != "a/b" {
		t.Fatalf("attested %+v", got)
	}
	fail = true
	mu.Unlock()

	st = h.wait(h.create(p))
	b := st.Stage("build")
	if b.Status != "failed" || !strings.Contains(b.Reason, "sign artifacts: key store is locked") || b.Artifacts != nil {
		t.Fatalf("build: %s %q %v", b.Status, b.Reason, b.Artifacts)
	}
	if st.Stage("pack").Status != "skipped" {
		t.Fatalf("pack ran without a signed input: %s", st.Stage("pack").Status)
	}
}

func TestStatsCountQueuedAndRunning(t *testing.T) {
	t.Parallel()
	h := newHarness(t, ":memory:", func(c *Config) { c.Capacity = 1 })
	id := h.create(stages([3]string{"a", "", "gate a"}, [3]string{"b", "", "gate b"}, [3]string{"c", "", "gate c"}))
	deadline := time.Now().Add(5 * time.Second)
	var st Stats
	for {
		st = h.sched.Stats()
		if st.Running == 1 && st.QueuedTotal() == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st.Capacity != 1 || st.ActiveRuns != 1 || st.Queued["default"][""] != 2 || st.RunningByTeam[""] != 1 {
		t.Fatalf("stats %+v", st)
	}
	for _, g := range []string{"a", "b", "c"} {
		h.exec.Open(g)
	}
	h.wait(id)
	// The run is done once its last result is appended; the stage's goroutine gives its slot
	// back just after, so the count drops a moment later.
	deadline = time.Now().Add(5 * time.Second)
	for {
		st = h.sched.Stats()
		if st.Running == 0 && st.QueuedTotal() == 0 && st.ActiveRuns == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the run: %+v", st)
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
}
