package storetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

func logLine(runID, stage string, seq int64, text string) run.LogLine {
	return run.LogLine{RunID: runID, Stage: stage, Seq: seq, Time: at(time.Duration(seq) * time.Millisecond), Text: text}
}

func listLogs(t *testing.T, s Store, p store.LogListParams) []run.LogLine {
	t.Helper()
	lines, err := s.LogList(t.Context(), p)
	if err != nil {
		t.Fatalf("LogList(%+v): %v", p, err)
	}
	return lines
}

// diffLogs says how got differs from want, or "".
func diffLogs(got, want []run.LogLine) string {
	if len(got) != len(want) {
		return fmt.Sprintf("got %d lines %v, want %d %v", len(got), got, len(want), want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.Time.Equal(w.Time) {
			return fmt.Sprintf("line %d: time %v, want %v", w.Seq, g.Time, w.Time)
		}
		g.Time, w.Time = time.Time{}, time.Time{}
		if g != w {
			return fmt.Sprintf("line %d: got %+v, want %+v", w.Seq, g, w)
		}
	}
	return ""
}

// testLogs: one batch holds lines of several stages and runs, in any order; each stage
// lists its own, by seq.
func testLogs(t *testing.T, h Harness) {
	s := h.Open(t)
	createRun(t, s, summary("run-1", at(0)))
	createRun(t, s, summary("run-2", at(time.Second)))
	long := strings.Repeat("0123456789abcdef", 8<<10) // 128 KiB in one line
	b1 := logLine("run-1", "build", 1, "$ go build ./...")
	b2 := logLine("run-1", "build", 2, "")
	b3 := logLine("run-1", "build", 3, "ünïcødé ✓ \"quoted\" \t tab")
	b4 := logLine("run-1", "build", 4, long)
	b4.Time = b4.Time.In(time.FixedZone("UTC-3", -3*3600))
	t1 := logLine("run-1", "test", 1, "=== RUN TestA")
	t2 := logLine("run-1", "test", 2, "--- PASS: TestA")
	o1 := logLine("run-2", "build", 1, "another run")
	if err := s.LogAppend(t.Context(), []run.LogLine{b3, t2, b1, o1, b4, t1, b2}); err != nil {
		t.Fatal(err)
	}
	if err := s.LogAppend(t.Context(), nil); err != nil {
		t.Errorf("LogAppend(no lines) = %v", err)
	}
	for _, c := range []struct {
		p    store.LogListParams
		want []run.LogLine
	}{
		{store.LogListParams{RunID: "run-1", Stage: "build"}, []run.LogLine{b1, b2, b3, b4}},
		{store.LogListParams{RunID: "run-1", Stage: "test"}, []run.LogLine{t1, t2}},
		{store.LogListParams{RunID: "run-2", Stage: "build"}, []run.LogLine{o1}},
		{store.LogListParams{RunID: "run-2", Stage: "test"}, nil},
		{store.LogListParams{RunID: "run-1", Stage: "deploy"}, nil},
		{store.LogListParams{RunID: "no-such-run", Stage: "build"}, nil},
		{store.LogListParams{RunID: "run-1", Stage: "build", AfterSeq: 2}, []run.LogLine{b3, b4}},
		{store.LogListParams{RunID: "run-1", Stage: "build", Limit: 2}, []run.LogLine{b1, b2}},
		{store.LogListParams{RunID: "run-1", Stage: "build", AfterSeq: 1, Limit: 2}, []run.LogLine{b2, b3}},
		{store.LogListParams{RunID: "run-1", Stage: "build", AfterSeq: 4}, nil},
	} {
		if d := diffLogs(listLogs(t, s, c.p), c.want); d != "" {
			t.Errorf("LogList(%+v): %s", c.p, d)
		}
	}
}

// testLogsDuplicate: a line already stored (same run, stage and seq) is skipped, so a
// batch retried after a crash is stored once, and the first text stays.
func testLogsDuplicate(t *testing.T, h Harness) {
	s := h.Open(t)
	createRun(t, s, summary("run-1", at(0)))
	batch := []run.LogLine{logLine("run-1", "build", 1, "one"), logLine("run-1", "build", 2, "two")}
	for range 2 {
		if err := s.LogAppend(t.Context(), batch); err != nil {
			t.Fatal(err)
		}
	}
	again := []run.LogLine{
		logLine("run-1", "build", 2, "two, rewritten"),
		logLine("run-1", "build", 3, "three"),
		logLine("run-1", "build", 3, "three, twice in one batch"),
	}
	if err := s.LogAppend(t.Context(), again); err != nil {
		t.Fatal(err)
	}
	want := []run.LogLine{batch[0], batch[1], again[1]}
	if d := diffLogs(listLogs(t, s, store.LogListParams{RunID: "run-1", Stage: "build"}), want); d != "" {
		t.Error(d)
	}
}

// testLogsUnknownRun: lines of a run that does not exist are refused with ErrNotFound, and
// the rest of their batch with them.
func testLogsUnknownRun(t *testing.T, h Harness) {
	s := h.Open(t)
	createRun(t, s, summary("run-1", at(0)))
	err := s.LogAppend(t.Context(), []run.LogLine{logLine("run-1", "build", 1, "kept?"), logLine("run-9", "build", 1, "orphan")})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("LogAppend(lines of an unknown run) = %v, want ErrNotFound", err)
	}
	if got := listLogs(t, s, store.LogListParams{RunID: "run-1", Stage: "build"}); len(got) != 0 {
		t.Errorf("a refused batch stored %v", got)
	}
}
