package insight

import (
	"testing"
	"time"

	"github.com/paved/paved/internal/run"
)

func TestMemoryGBSeconds(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	evs := []run.Event{
		{Type: run.StageStarted, Stage: "build", Attempt: 1, Time: t0},
		{Type: run.StageFinished, Stage: "build", Attempt: 1, Time: t0.Add(10 * time.Second), MaxRSS: 2 << 30, CPUMS: 5000},
		{Type: run.StageStarted, Stage: "test", Attempt: 1, Time: t0.Add(10 * time.Second)},
		{Type: run.StageFinished, Stage: "test", Attempt: 1, Time: t0.Add(40 * time.Second), MaxRSS: 1 << 29, CPUMS: 1000},
		{Type: run.StageFinished, Stage: "deploy", Status: run.StatusSkipped, Time: t0.Add(40 * time.Second)},
	}
	rc, _ := runCost(run.Summary{ID: "r"}, evs, 0.05)
	// build: 2 GiB × 10 s = 20; test: 0.5 GiB × 30 s = 15.
	if rc.MemoryGBSeconds != 35 || rc.Stages[0].MemoryGBSeconds != 20 || rc.Stages[1].MemoryGBSeconds != 15 {
		t.Fatalf("memory GB-seconds: run %v, stages %+v", rc.MemoryGBSeconds, rc.Stages)
	}
}
