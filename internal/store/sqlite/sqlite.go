package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/paved/paved/internal/store"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Memory is the path Open takes for a database that lives only as long as the Store.
const Memory = ":memory:"

// busyTimeout is how long a connection waits for a lock held by another connection. Within
// one process the write pool makes that wait rare; it matters when a second process (paved
// CLI, sqlite3 shell, a backup) has the file open.
const busyTimeout = 5 * time.Second

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Store is the SQLite store. Its methods may be called from any number of goroutines.
type Store struct {
	w *sql.DB // exactly one connection: SQLite has one writer
	r *sql.DB // read-only connections; the same as w for ":memory:"

	// Statements run on every append, prepared once: parsing SQL would otherwise be a good
	// part of the cost of a short transaction.
	lastSeq       *sql.Stmt
	insertRun     *sql.Stmt
	updateRun     *sql.Stmt
	updateLiveRun *sql.Stmt
	insertEvent   *sql.Stmt
	// logStmts[n-1] inserts n log lines (insertLogs); prepared when first needed.
	logStmts [maxLogRows]*sql.Stmt

	// The group commit of events and log lines (commit.go): writes waiting for the next
	// batch, by rank, and whether a caller is leading one (writing a batch, or woken to
	// write the next).
	writeMu      sync.Mutex
	writeQueues  [ranks][]*writeReq
	writeLeading bool

	closeOnce sync.Once
	closeErr  error
}

// Open opens the database at path, creating the file and its directory if needed, and
// migrates it to the current schema. path ":memory:" (Memory) opens a new, private,
// in-memory database.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: open: empty path (use a file path or \":memory:\")")
	}
	s := &Store{}
	var err error
	if path == Memory {
		s.w, err = openMemory()
		s.r = s.w
	} else {
		s.w, s.r, err = openFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := s.init(ctx); err != nil {
		s.closeDBs()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return s, nil
}

func openMemory() (*sql.DB, error) {
	db, err := sql.Open("sqlite", "file::memory:?_pragma=foreign_keys(1)&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	// The connection is the database: never let the pool close it or open a second one.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	return db, nil
}

func openFile(path string) (w, r *sql.DB, err error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, nil, err
	}
	// The database holds webhook secrets: keep it to the owner.
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, nil, err
	}
	// Create the file ourselves so it gets mode 0600; SQLite gives its -wal and -shm files
	// the mode of the database file.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, err
	}
	if err := f.Close(); err != nil {
		return nil, nil, err
	}
	// A file: URI, escaped, so that a path with '?', '#' or '%' still names the file.
	name := "file:" + (&url.URL{Path: abs}).EscapedPath()
	busy := "_pragma=busy_timeout(" + strconv.Itoa(int(busyTimeout.Milliseconds())) + ")"
	w, err = sql.Open("sqlite", name+"?"+strings.Join([]string{
		busy,
		"_pragma=journal_mode(WAL)",
		"_pragma=synchronous(NORMAL)",
		"_pragma=foreign_keys(1)",
		// After a burst the WAL file would otherwise stay at its peak size.
		"_pragma=journal_size_limit(67108864)",
		// Take the write lock at BEGIN: a deferred transaction that reads first and then
		// writes can fail with SQLITE_BUSY that busy_timeout does not retry.
		"_txlock=immediate",
	}, "&"))
	if err != nil {
		return nil, nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	r, err = sql.Open("sqlite", name+"?"+busy+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, nil, err
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	return w, r, nil
}

// init migrates the schema, then prepares the hot statements (which need the tables).
func (s *Store) init(ctx context.Context) error {
	if err := migrate(ctx, s.w); err != nil {
		return err
	}
	for _, p := range []struct {
		stmt **sql.Stmt
		sql  string
	}{
		{&s.lastSeq, `SELECT coalesce(max(seq), 0) FROM events WHERE run_id = ?`},
		{&s.insertRun, insertRunSQL},
		{&s.updateRun, updateRunSQL},
		{&s.updateLiveRun, updateLiveRunSQL},
		{&s.insertEvent, `INSERT INTO events (run_id, seq, type, time, data) VALUES (?, ?, ?, ?, ?)`},
	} {
		st, err := s.w.PrepareContext(ctx, p.sql)
		if err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		*p.stmt = st
	}
	return nil
}

// Close closes the database. It may be called more than once; later calls return what the
// first returned.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		// Let SQLite refresh its planner statistics, as it recommends before closing.
		_, err := s.w.Exec("PRAGMA optimize")
		s.closeErr = errors.Join(err, s.closeDBs())
		if s.closeErr != nil {
			s.closeErr = fmt.Errorf("sqlite: close: %w", s.closeErr)
		}
	})
	return s.closeErr
}

func (s *Store) closeDBs() error {
	var errs []error
	for _, st := range append([]*sql.Stmt{s.lastSeq, s.insertRun, s.updateRun, s.updateLiveRun, s.insertEvent}, s.logStmts[:]...) {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	if s.r != s.w {
		errs = append(errs, s.r.Close())
	}
	// Closing the last connection checkpoints the WAL into the database file.
	errs = append(errs, s.w.Close())
	return errors.Join(errs...)
}

// migrate applies the migrations the database has not seen, all in one transaction: a
// crash or a bad migration leaves the schema as it was. Two processes opening the same new
// file at once are serialised by BEGIN IMMEDIATE; the second finds nothing to do.
func migrate(ctx context.Context, db *sql.DB) error {
	ms, err := store.Migrations(migrationFiles, "migrations")
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at TEXT    NOT NULL
	) STRICT`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if n := len(ms); n > 0 && current > ms[n-1].Version {
		return fmt.Errorf("migrate: the database is at schema version %d, newer than this paved knows (%d); use a newer paved",
			current, ms[n-1].Version)
	}
	for _, m := range ms {
		if m.Version <= current {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("migrate: %s: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.Version, m.Name, formatTime(time.Now())); err != nil {
			return fmt.Errorf("migrate: %s: %w", m.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// timeLayout is fixed-width UTC, so that comparing the text compares the times.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// formatTimeOrNull stores the zero time, which means "not yet", as NULL.
func formatTimeOrNull(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return formatTime(t)
}

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad time %q in database: %w", s, err)
	}
	return t, nil
}

func parseTimeOrNull(s sql.NullString) (time.Time, error) {
	if !s.Valid {
		return time.Time{}, nil
	}
	return parseTime(s.String)
}

// code is the extended SQLite result code of err, or 0.
func code(err error) int {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

func isPrimaryKeyViolation(err error) bool {
	c := code(err)
	return c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || c == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

func isForeignKeyViolation(err error) bool {
	return code(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// limit turns a params Limit into SQLite's LIMIT, where -1 means none.
func limit(n, zero int) (int, error) {
	switch {
	case n < 0:
		return 0, fmt.Errorf("sqlite: limit %d is negative (0 means the default)", n)
	case n == 0:
		return zero, nil
	}
	return n, nil
}
