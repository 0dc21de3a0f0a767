package main

import (
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store/postgres/pgtest"
)

// TestServerOnPostgres: `paved server --database postgres://...` keeps its runs in
// PostgreSQL: runs started on one server process, killed with SIGKILL mid-run, end right on
// the next, which has a new, empty data directory (nothing of the runs was in the first).
func TestServerOnPostgres(t *testing.T) {
	t.Parallel()
	dsn := pgtest.ForTest(t, pgtest.Config{}).NewDatabase(t)
	dir := gitRepo(t, map[string]string{".paved.yml": `
stages:
  build:
    steps: [sleep 0.3, echo built]
  test:
    needs: [build]
    steps: ['sleep 0.3; test "$PAVED_BRANCH" != bad']
`})
	gitIn(t, dir, "branch", "bad")
	s := startPavedServer(t, t.TempDir(), "--database", dsn, "--capacity", "4", "--lease", "1s")
	s.post(t, "/api/v1/repos", map[string]string{"full_name": "e2e/pg", "clone_url": dir, "team": "e2e"})
	want := map[string]run.Phase{}
	for i := range 6 {
		ref, phase := "main", run.Succeeded
		if i%3 == 0 {
			ref, phase = "bad", run.Failed
		}
		out := s.post(t, "/api/v1/runs", map[string]string{"repo": "e2e/pg", "ref": ref})
		want[out["id"].(string)] = phase
	}
	s.waitRunning(t, 2)
	s.cmd.Process.Signal(syscall.SIGKILL)
	s.cmd.Wait()

	s2 := startPavedServer(t, t.TempDir(), "--database", dsn, "--capacity", "4", "--lease", "1s")
	deadline := time.Now().Add(60 * time.Second)
	for id, phase := range want {
		var view struct {
			Phase run.Phase `json:"phase"`
		}
		for {
			s2.get(t, "/api/v1/runs/"+id, &view)
			if view.Phase.Done() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("run %s still %s after restart\n%s", id, view.Phase, s2.stderr)
			}
			time.Sleep(50 * time.Millisecond) // polling with a deadline
		}
		if view.Phase != phase {
			t.Errorf("run %s ended %s, want %s\n%s", id, view.Phase, phase, s2.stderr)
		}
		var evs struct{ Events []run.Event }
		s2.get(t, "/api/v1/runs/"+id+"/events", &evs)
		for i, e := range evs.Events {
			if e.Seq != int64(i+1) {
				t.Fatalf("run %s: event %d has seq %d", id, i, e.Seq)
			}
		}
	}
}

// TestDatabaseFlagRefusesOtherURLs: --database takes a PostgreSQL URL or nothing; anything
// else is the user's mistake (exit 2), not a store paved tries to open.
func TestDatabaseFlagRefusesOtherURLs(t *testing.T) {
	t.Parallel()
	for _, db := range []string{"mysql://root@localhost/paved", "host=/tmp dbname=paved", "paved.db"} {
		_, err := openStore(t.Context(), db, t.TempDir())
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), "postgres://") {
			t.Errorf("--database %q: %v, want a usage error naming postgres://", db, err)
		}
	}
}
