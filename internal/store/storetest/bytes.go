package storetest

import (
	"testing"

	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// oddText is what a build may print and what a text column of some databases refuses:
// NUL, bytes that are not UTF-8, a lone continuation byte, a truncated rune, CR and ESC.
const oddText = "bin\x00ary \xff\xfe \x80 trunc\xe2\x82 \r\x1b[31mred\x1b[0m"

// testLogsBytes: a log line comes back byte for byte, whatever bytes it holds (PostgreSQL
// refuses NUL and invalid UTF-8 in text; a store must not lose or refuse such a line).
func testLogsBytes(t *testing.T, h Harness) {
	s := h.Open(t)
	createRun(t, s, summary("run-1", at(0)))
	lines := []run.LogLine{logLine("run-1", "build", 1, oddText), logLine("run-1", "build", 2, "\x00")}
	if err := s.LogAppend(t.Context(), lines); err != nil {
		t.Fatalf("LogAppend(odd bytes) = %v", err)
	}
	if d := diffLogs(listLogs(t, s, store.LogListParams{RunID: "run-1", Stage: "build"}), lines); d != "" {
		t.Error(d)
	}
}

// testEventBytes: an event's strings with NUL survive the round trip (a step's exit
// reason may quote its output). Bytes that are not UTF-8 become U+FFFD, as encoding/json
// makes them: events are JSON in every store.
func testEventBytes(t *testing.T, h Harness) {
	s := h.Open(t)
	sum := createRun(t, s, summary("run-1", at(0)))
	e := stageEvent(run.StageFinished)
	e.Reason, e.Status = "exit 1: bin\x00ary", run.StatusFailed
	p := nextParams(&sum, e)
	if err := s.EventAppend(t.Context(), p); err != nil {
		t.Fatalf("EventAppend(NUL in a reason) = %v", err)
	}
	got := listEvents(t, s, store.EventListParams{RunID: "run-1", AfterSeq: 1})
	if d := diffEvents(got, p.Events); d != "" {
		t.Error(d)
	}
}
