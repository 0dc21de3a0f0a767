package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// testLogSearch: lines are found by all their words, whatever the case, newest first, within
// the filters; punctuation and FTS operators in a query are taken literally.
func testLogSearch(t *testing.T, h Harness) {
	s := h.Open(t)
	ls := s
	createRun(t, s, summary("run-1", at(0)))
	other := summary("run-2", at(time.Second))
	other.Repo, other.Team = "acme/shop", "shop"
	createRun(t, s, other)
	lines := []run.LogLine{
		logLine("run-1", "test", 1, "=== RUN   TestCheckout"),
		logLine("run-1", "test", 2, "    checkout_test.go:41: connection refused by payments-db"),
		logLine("run-1", "test", 3, "--- FAIL: TestCheckout (0.31s)"),
		logLine("run-1", "build", 1, "go: downloading github.com/jackc/pgx/v5 v5.12.0"),
		logLine("run-2", "test", 1, "dial tcp 10.0.0.7:5432: Connection REFUSED"),
		logLine("run-2", "test", 2, `panic: "quoted" AND NOT (operators) NEAR/2 *`),
	}
	if err := s.LogAppend(t.Context(), lines); err != nil {
		t.Fatal(err)
	}
	// A retried batch is stored once and so indexed once.
	if err := s.LogAppend(t.Context(), lines[:2]); err != nil {
		t.Fatal(err)
	}
	search := func(p store.LogSearchParams) []string {
		t.Helper()
		got, err := ls.LogSearch(t.Context(), p)
		if err != nil {
			t.Fatalf("LogSearch(%+v): %v", p, err)
		}
		var out []string
		for _, l := range got {
			out = append(out, l.RunID+"/"+l.Stage+"/"+string(rune('0'+l.Seq)))
		}
		return out
	}
	for _, c := range []struct {
		p    store.LogSearchParams
		want []string
	}{
		{store.LogSearchParams{Query: "connection refused"}, []string{"run-1/test/2", "run-2/test/1"}}, // line times: seq ms
		{store.LogSearchParams{Query: "REFUSED connection", RunID: "run-1"}, []string{"run-1/test/2"}},
		{store.LogSearchParams{Query: "refused", Repo: "acme/shop"}, []string{"run-2/test/1"}},
		{store.LogSearchParams{Query: "refused", Team: "payments"}, []string{"run-1/test/2"}},
		{store.LogSearchParams{Query: "testcheck*", Stage: "test"}, []string{"run-1/test/3", "run-1/test/1"}},
		{store.LogSearchParams{Query: "pgx"}, []string{"run-1/build/1"}},
		{store.LogSearchParams{Query: "refused", Limit: 1}, []string{"run-1/test/2"}},
		{store.LogSearchParams{Query: "refused", Since: at(2 * time.Millisecond), Until: at(3 * time.Millisecond)}, []string{"run-1/test/2"}},
		{store.LogSearchParams{Query: `"quoted" AND NOT (operators) NEAR/2`}, []string{"run-2/test/2"}},
		{store.LogSearchParams{Query: "nowhere"}, nil},
	} {
		if got := search(c.p); !slices.Equal(got, c.want) {
			t.Errorf("LogSearch(%+v) = %v, want %v", c.p, got, c.want)
		}
	}
	if _, err := ls.LogSearch(t.Context(), store.LogSearchParams{Query: "  "}); !errors.Is(err, store.ErrEmptyQuery) {
		t.Errorf("empty query: %v, want store.ErrEmptyQuery", err)
	}
}
