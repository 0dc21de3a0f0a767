package postgres_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
	"github.com/paved/paved/internal/store/postgres"
	"github.com/paved/paved/internal/store/postgres/pgtest"
	"github.com/paved/paved/internal/store/storetest"
	"github.com/paved/paved/internal/trigger"
)

// Interface guard: the consumers' interfaces are declared in schedule, api and inbox,
// which the store does not import; the suite's union stands for them here.
var _ storetest.Store = (*postgres.Store)(nil)

// TestMain starts one throwaway server; the template every test database clones is
// migrated once, so that a test's Open finds the schema current.
func TestMain(m *testing.M) {
	pgtest.Main(m, func(ctx context.Context, dsn string) error {
		s, err := postgres.Open(ctx, dsn)
		if err != nil {
			return err
		}
		return s.Close()
	})
}

func open(t testing.TB, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn)
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

// databases opens stores over throwaway databases and reopens one over the same database,
// as a restarted server would: the harness of both conformance suites.
type databases struct {
	mu   sync.Mutex
	dsns map[*postgres.Store]string
}

func (d *databases) open(t *testing.T) *postgres.Store {
	dsn := pgtest.DSN(t)
	s := open(t, dsn)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dsns == nil {
		d.dsns = map[*postgres.Store]string{}
	}
	d.dsns[s] = dsn
	return s
}

func (d *databases) reopen(t *testing.T, s *postgres.Store) *postgres.Store {
	d.mu.Lock()
	dsn := d.dsns[s]
	d.mu.Unlock()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return open(t, dsn)
}

func TestConformance(t *testing.T) {
	t.Parallel()
	var d databases
	storetest.Exercise(t, storetest.Harness{
		Open:   func(t *testing.T) storetest.Store { return d.open(t) },
		Reopen: func(t *testing.T, s storetest.Store) storetest.Store { return d.reopen(t, s.(*postgres.Store)) },
	})
}

// TestMigrateConcurrently: servers starting at once on a new database migrate it once
// (the advisory lock), and all of them work on the result.
func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	dsn := emptyDatabase(t)
	const servers = 4
	stores := make([]*postgres.Store, servers)
	errs := make([]error, servers)
	var wg sync.WaitGroup
	for i := range servers {
		wg.Go(func() { stores[i], errs[i] = postgres.Open(t.Context(), dsn) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("server %d: %v", i, err)
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	appendCreated(t, stores[0], "run-1")
	if _, err := stores[servers-1].RunGet(t.Context(), "run-1"); err != nil {
		t.Errorf("another server does not see the run: %v", err)
	}
}

// emptyDatabase is a database without paved's schema: a clone of template1 rather than
// of the migrated template.
func emptyDatabase(t *testing.T) string {
	t.Helper()
	dsn := pgtest.DSN(t)
	exec(t, dsn, `DROP SCHEMA public CASCADE; CREATE SCHEMA public`)
	return dsn
}

func TestNewerSchema(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	exec(t, dsn, `INSERT INTO schema_migrations (version, name) VALUES (9999, '9999_future.sql')`)
	_, err := postgres.Open(t.Context(), dsn)
	if err == nil || !strings.Contains(err.Error(), "use a newer paved") {
		t.Errorf("Open on a newer schema = %v, want an error that says to use a newer paved", err)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	if _, err := postgres.Open(t.Context(), "postgres://%zz"); err == nil || !strings.Contains(err.Error(), "connection string") {
		t.Errorf("Open(bad URL) = %v, want an error about the connection string", err)
	}
	// A socket directory with no server in it.
	dsn := "postgres://paved:secret@/paved?host=" + t.TempDir() + "&connect_timeout=5"
	_, err := postgres.Open(t.Context(), dsn)
	if err == nil || !strings.Contains(err.Error(), "is the server running") {
		t.Errorf("Open(no server) = %v, want an error that asks whether the server runs", err)
	}
	if err != nil && strings.Contains(err.Error(), "secret") {
		t.Errorf("the error shows the password: %v", err)
	}
}

// TestTriggerNotify: a TriggerAdd with a new trigger wakes a listener of another store on
// the database (another server); a duplicate does not.
func TestTriggerNotify(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	a, b := open(t, dsn), open(t, dsn)
	wake, err := b.TriggerNotify(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	tr := testTrigger("t1", "d1", time.Now())
	if _, err := a.TriggerAdd(t.Context(), store.TriggerAddParams{Triggers: []trigger.Trigger{tr}, Window: time.Minute}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wake:
	case <-time.After(10 * time.Second):
		t.Fatal("no notification 10 s after a trigger was added")
	}
	dup := testTrigger("t2", "d1", time.Now())
	if _, err := a.TriggerAdd(t.Context(), store.TriggerAddParams{Triggers: []trigger.Trigger{dup}, Window: time.Minute}); err != nil {
		t.Fatal(err)
	}
	// The duplicate's transaction committed before the marker's: had it notified, that
	// would be delivered first (PostgreSQL delivers in commit order), and two values
	// would arrive.
	marker := testTrigger("t3", "d3", time.Now())
	marker.SHA = "other"
	if _, err := a.TriggerAdd(t.Context(), store.TriggerAddParams{Triggers: []trigger.Trigger{marker}, Window: time.Minute}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wake:
	case <-time.After(10 * time.Second):
		t.Fatal("no notification for the marker")
	}
	select {
	case <-wake:
		t.Error("a duplicate trigger woke the listener")
	default:
	}
}

// TestTriggerClaim: claimers racing for the same pending triggers each get different ones;
// a claim that expired can be taken over; a processed trigger is never claimed.
func TestTriggerClaim(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	s := open(t, dsn)
	const total = 60
	now := time.Now()
	var ts []trigger.Trigger
	for i := range total {
		tr := testTrigger("t"+itoa(i), "d"+itoa(i), now.Add(time.Duration(i)))
		tr.SHA = itoa(i)
		ts = append(ts, tr)
	}
	if _, err := s.TriggerAdd(t.Context(), store.TriggerAddParams{Triggers: ts, Window: time.Minute}); err != nil {
		t.Fatal(err)
	}
	const claimers = 6
	got := make([][]store.TriggerRecord, claimers)
	var wg sync.WaitGroup
	for c := range claimers {
		wg.Go(func() {
			other := open(t, dsn) // its own pool: a server of its own
			for {
				rs, err := other.TriggerClaim(t.Context(), postgres.TriggerClaimParams{
					Owner: "server-" + itoa(c), Limit: 4, Now: now, Until: now.Add(time.Minute)})
				if err != nil {
					t.Error(err)
					return
				}
				if len(rs) == 0 {
					return
				}
				got[c] = append(got[c], rs...)
			}
		})
	}
	wg.Wait()
	seen := map[string]int{}
	for c, rs := range got {
		for i, r := range rs {
			seen[r.ID]++
			if i > 0 && r.ReceivedAt.Before(rs[i-1].ReceivedAt) {
				t.Errorf("claimer %d got %s after %s: want oldest first", c, r.ID, rs[i-1].ID)
			}
		}
	}
	if len(seen) != total {
		t.Errorf("%d triggers claimed, want %d", len(seen), total)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("trigger %s claimed %d times", id, n)
		}
	}

	// Nothing is left while the claims hold; once they expire, all but the processed are.
	if err := s.TriggerDone(t.Context(), store.TriggerDoneParams{ID: "t0", At: now}); err != nil {
		t.Fatal(err)
	}
	if rs, err := s.TriggerClaim(t.Context(), postgres.TriggerClaimParams{Owner: "late", Now: now.Add(30 * time.Second), Until: now.Add(2 * time.Minute)}); err != nil || len(rs) != 0 {
		t.Errorf("claim while others hold every trigger = %d triggers, %v; want none", len(rs), err)
	}
	rs, err := s.TriggerClaim(t.Context(), postgres.TriggerClaimParams{Owner: "late", Limit: 1000, Now: now.Add(time.Minute), Until: now.Add(2 * time.Minute)})
	if err != nil || len(rs) != total-1 || rs[0].ID != "t1" {
		t.Errorf("claim after expiry = %d triggers from %v, %v; want %d from t1", len(rs), firstID(rs), err, total-1)
	}
	if _, err := s.TriggerClaim(t.Context(), postgres.TriggerClaimParams{Now: now, Until: now}); err == nil {
		t.Error("TriggerClaim without an owner succeeded")
	}
}

func firstID(rs []store.TriggerRecord) string {
	if len(rs) == 0 {
		return "nothing"
	}
	return rs[0].ID
}

// TestAppendUnknownRun: an append that expects events of a run that does not exist is a
// conflict (there is nothing at that seq), not a foreign key error.
func TestAppendUnknownRun(t *testing.T) {
	t.Parallel()
	s := open(t, pgtest.DSN(t))
	now := time.Now()
	err := s.EventAppend(t.Context(), store.EventAppendParams{RunID: "nope", ExpectedSeq: 3,
		Events:  []run.Event{{RunID: "nope", Seq: 4, Type: run.StageQueued, Time: now}},
		Summary: run.Summary{ID: "nope", LastSeq: 4, CreatedAt: now}})
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("append to an unknown run = %v, want ErrConflict", err)
	}
}

func appendCreated(t *testing.T, s *postgres.Store, id string) {
	t.Helper()
	now := time.Now()
	err := s.EventAppend(t.Context(), store.EventAppendParams{RunID: id,
		Events:  []run.Event{{RunID: id, Seq: 1, Type: run.RunCreated, Time: now, Info: &run.Info{Repo: "acme/app"}}},
		Summary: run.Summary{ID: id, Repo: "acme/app", Phase: run.Pending, LastSeq: 1, CreatedAt: now}})
	if err != nil {
		t.Fatal(err)
	}
}

func testTrigger(id, delivery string, at time.Time) trigger.Trigger {
	return trigger.Trigger{ID: id, Provider: "github", Kind: trigger.KindPush, Repo: "acme/payments",
		Ref: "refs/heads/main", Branch: "main", SHA: "aaa", DeliveryID: delivery, ReceivedAt: at}
}

// exec runs SQL on the database as its owner, behind the store's back.
func exec(t *testing.T, dsn, sql string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), sql); err != nil {
		t.Fatal(err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
