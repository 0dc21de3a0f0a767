package sqlite_test

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/store/sqlite"
	"github.com/paved/paved/internal/store/storetest"
)

// Interface guards: the consumers' interfaces are declared in schedule and api, which the
// store does not import; the suite's union stands for them here.
var _ storetest.Store = (*sqlite.Store)(nil)

func open(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func TestFile(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	paths := map[storetest.Store]string{}
	storetest.Exercise(t, storetest.Harness{
		Open: func(t *testing.T) storetest.Store {
			path := filepath.Join(t.TempDir(), "data", "paved.db")
			s := open(t, path)
			mu.Lock()
			paths[s] = path
			mu.Unlock()
			return s
		},
		Reopen: func(t *testing.T, s storetest.Store) storetest.Store {
			mu.Lock()
			path := paths[s]
			mu.Unlock()
			if err := s.(*sqlite.Store).Close(); err != nil {
				t.Fatal(err)
			}
			return open(t, path)
		},
	})
}

func TestMemory(t *testing.T) {
	t.Parallel()
	storetest.Exercise(t, storetest.Harness{
		Open: func(t *testing.T) storetest.Store { return open(t, sqlite.Memory) },
	})
}

// TestMemoryIsPrivate: each Open of ":memory:" is a database of its own, so tests and
// `paved run` invocations in one process do not see each other.
func TestMemoryIsPrivate(t *testing.T) {
	t.Parallel()
	a, b := open(t, sqlite.Memory), open(t, sqlite.Memory)
	appendCreated(t, a, "run-1")
	if _, err := b.RunGet(t.Context(), "run-1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a second in-memory store sees the first's run: %v", err)
	}
}

func TestOpenFile(t *testing.T) {
	t.Parallel()
	// A path SQLite would read as URI syntax if it were not escaped.
	dir := filepath.Join(t.TempDir(), "a dir?x=1#frag%20")
	path := filepath.Join(dir, "paved.db")
	s := open(t, path)
	appendCreated(t, s, "run-1")
	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("the database is not at %s: %v", path, err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("database file mode %v, want 0600 (it holds webhook secrets)", perm)
	}
	if info, err := os.Stat(dir); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("database dir: %v, %v; want mode 0700", info.Mode(), err)
	}
	// Opening an existing database migrates nothing and keeps the data.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v, want what the first returned (nil)", err)
	}
	s = open(t, path)
	if _, err := s.RunGet(t.Context(), "run-1"); err != nil {
		t.Fatal(err)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	if _, err := sqlite.Open(t.Context(), ""); err == nil {
		t.Error("Open(\"\") succeeded")
	}
	notADB := filepath.Join(t.TempDir(), "garbage.db")
	if err := os.WriteFile(notADB, []byte(strings.Repeat("not a database ", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := sqlite.Open(t.Context(), notADB); err == nil {
		s.Close()
		t.Error("Open(a file that is not a database) succeeded")
	}
}

// TestNewerSchema: a database migrated by a newer paved is refused rather than used with a
// schema this code does not know.
func TestNewerSchema(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "paved.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Leave the mark a future migration would leave.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(t.Context(), `INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future.sql', '')`); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err := sqlite.Open(t.Context(), path); err == nil || !strings.Contains(err.Error(), "newer") {
		if s != nil {
			s.Close()
		}
		t.Errorf("Open(a database from a newer paved) = %v, want an error saying so", err)
	}
}

// TestTwoStoresOneFile: two stores on one file, as a server and a CLI process would have,
// still let exactly one of two conflicting appends win; the loser waits for the file's
// write lock (busy_timeout) rather than failing with SQLITE_BUSY.
func TestTwoStoresOneFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "paved.db")
	stores := []*sqlite.Store{open(t, path), open(t, path)}
	for round := range 20 {
		id := "run-" + strconv.Itoa(round)
		appendCreated(t, stores[0], id)
		start := make(chan struct{})
		errs := make([]error, len(stores))
		var wg sync.WaitGroup
		for i, s := range stores {
			wg.Go(func() {
				now := time.Now()
				p := store.EventAppendParams{RunID: id, ExpectedSeq: 1,
					Events:  []run.Event{{RunID: id, Seq: 2, Type: run.RunCancelRequested, Time: now, Reason: strconv.Itoa(i)}},
					Summary: run.Summary{ID: id, Repo: "acme/app", Phase: run.Pending, CreatedAt: now, LastSeq: 2}}
				<-start
				errs[i] = s.EventAppend(context.Background(), p)
			})
		}
		close(start)
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, store.ErrConflict):
				t.Fatalf("round %d: %v, want nil or ErrConflict", round, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d appends of seq 2 won, want 1", round, won)
		}
	}
}

func appendCreated(t testing.TB, s *sqlite.Store, id string) {
	t.Helper()
	now := time.Now()
	err := s.EventAppend(context.Background(), store.EventAppendParams{
		RunID:   id,
		Events:  []run.Event{{RunID: id, Seq: 1, Type: run.RunCreated, Time: now, Info: &run.Info{Repo: "acme/app"}}},
		Summary: run.Summary{ID: id, Repo: "acme/app", Phase: run.Pending, CreatedAt: now, LastSeq: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// crashEnv makes the test binary, run again as a child, the writer of TestCrashDurability.
const crashEnv = "PAVED_SQLITE_CRASH_DB"

// TestCrashDurability: what EventAppend and LogAppend returned as committed is there after
// the process dies without Close (as under kill -9, which os.Exit imitates: no deferred
// function, no checkpoint, the WAL left behind). The child reports each commit on stdout
// before going on; the parent reopens the file and checks every reported commit.
func TestCrashDurability(t *testing.T) {
	if path := os.Getenv(crashEnv); path != "" {
		crashChild(path)
		return
	}
	t.Parallel()
	path := filepath.Join(t.TempDir(), "paved.db")
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestCrashDurability$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("child: %v, want exit status 1; output:\n%s", err, out)
	}

	committed := map[string]int64{} // run → last seq the child saw committed
	logs := map[string]int64{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		var kind, id string
		var seq int64
		if _, err := fmt.Sscanf(sc.Text(), "%s %s %d", &kind, &id, &seq); err != nil {
			continue // the test framework's own output
		}
		switch kind {
		case "event":
			committed[id] = seq
		case "log":
			logs[id] = seq
		}
	}
	if len(committed) != crashRuns || len(logs) != crashRuns {
		t.Fatalf("the child reported %d runs and %d logs, want %d; output:\n%s", len(committed), len(logs), crashRuns, out)
	}
	// The child never closed the store: the commits are in the WAL, which the reopen replays.
	if info, err := os.Stat(path + "-wal"); err != nil || info.Size() == 0 {
		t.Fatalf("no WAL left by the child (%v): the test would not show recovery", err)
	}

	s := open(t, path)
	for id, last := range committed {
		evs, err := s.EventList(t.Context(), store.EventListParams{RunID: id})
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(evs)) != last || evs[len(evs)-1].Seq != last {
			t.Errorf("run %s: %d events after the crash, the child committed %d", id, len(evs), last)
		}
		sum, err := s.RunGet(t.Context(), id)
		if err != nil || sum.LastSeq != last {
			t.Errorf("run %s: summary %+v, %v after the crash, want last seq %d", id, sum, err, last)
		}
		lines, err := s.LogList(t.Context(), store.LogListParams{RunID: id, Stage: "build"})
		if err != nil || int64(len(lines)) != logs[id] {
			t.Errorf("run %s: %d log lines after the crash (%v), the child committed %d", id, len(lines), err, logs[id])
		}
	}
}

const crashRuns = 8

// crashChild appends to crashRuns runs from as many goroutines, reports each commit, and
// exits without closing anything.
func crashChild(path string) {
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	report := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Printf(format+"\n", args...)
	}
	var wg sync.WaitGroup
	for i := range crashRuns {
		wg.Go(func() {
			id := "run-" + strconv.Itoa(i)
			now := time.Now()
			sum := run.Summary{ID: id, Repo: "acme/app", Phase: run.Pending, CreatedAt: now}
			evs := []run.Event{{RunID: id, Seq: 1, Type: run.RunCreated, Time: now, Info: &run.Info{Repo: "acme/app"}}}
			for seq := int64(1); seq <= 50; seq++ {
				if seq > 1 {
					evs = []run.Event{{RunID: id, Seq: seq, Type: run.StepStarted, Time: time.Now(), Stage: "build", Step: int(seq)}}
				}
				sum.LastSeq = seq
				if err := s.EventAppend(context.Background(), store.EventAppendParams{RunID: id, ExpectedSeq: seq - 1, Events: evs, Summary: sum}); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				report("event %s %d", id, seq)
				if seq%10 == 0 {
					var lines []run.LogLine
					for l := seq - 9; l <= seq; l++ {
						lines = append(lines, run.LogLine{RunID: id, Stage: "build", Seq: l, Time: time.Now(), Text: "line " + strconv.FormatInt(l, 10)})
					}
					if err := s.LogAppend(context.Background(), lines); err != nil {
						fmt.Fprintln(os.Stderr, err)
						os.Exit(2)
					}
					report("log %s %d", id, seq)
				}
			}
		})
	}
	wg.Wait()
	os.Stdout.Sync()
	os.Exit(1) // no Close: the store is abandoned as a killed process abandons it
}
