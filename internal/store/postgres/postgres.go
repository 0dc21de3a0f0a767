package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/paved/paved/internal/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrateLock is the advisory lock key that serialises migrations across every paved
// server starting on the database at once ("paved" in ASCII).
const migrateLock = 0x7061766564

// defaultPoolSize is the pool's size unless the connection string sets pool_max_conns.
const defaultPoolSize = 16

// Store is the PostgreSQL store. Its methods may be called from any number of goroutines.
type Store struct {
	pool *pgxpool.Pool

	listenOnce sync.Once
	notify     *notifier // started by the first TriggerNotify

	closeOnce sync.Once
}

// Open connects to the database named by dsn (a postgres:// URL or a "key=value"
// connection string, as libpq reads them; PG* environment variables fill what it leaves
// out) and migrates it to the current schema under an advisory lock, so that servers
// started together migrate once. pool_max_conns in dsn sizes the pool (default 16).
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: bad connection string (want postgres://USER:PASSWORD@HOST:PORT/DB?sslmode=...): %w", err)
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		// pgx's default (the number of CPUs, at least 4) suits CPU-bound work; appends are
		// bound by the WAL flush, and commits waiting at once share one flush.
		cfg.MaxConns = defaultPoolSize
	}
	where := describe(cfg.ConnConfig)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open %s: %w", where, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open %s: is the server running and the database created? %w", where, err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open %s: %w", where, err)
	}
	return &Store{pool: pool}, nil
}

// describe names the database for errors, without the password.
func describe(c *pgx.ConnConfig) string {
	host := c.Host
	if !strings.HasPrefix(host, "/") {
		host += ":" + strconv.Itoa(int(c.Port))
	}
	return fmt.Sprintf("database %s on %s as %s", c.Database, host, c.User)
}

// Close stops the listener and closes every connection. It may be called more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.notify != nil {
			s.notify.stop()
		}
		s.pool.Close()
	})
	return nil
}

// migrate applies the migrations the database has not seen, all in one transaction
// (PostgreSQL's DDL is transactional: a failed migration leaves the schema as it was).
// The transaction first takes an advisory lock, so that servers starting at once wait for
// the first: the others then find nothing to do.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	ms, err := store.Migrations(migrationFiles, "migrations")
	if err != nil {
		return err
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrateLock)); err != nil {
		return fmt.Errorf("migrate: take the migration lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer     NOT NULL PRIMARY KEY,
		name       text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var current int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
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
		// Exec without arguments uses the simple protocol: a file of many statements.
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return fmt.Errorf("migrate: %s: %w", m.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
			return fmt.Errorf("migrate: %s: %w", m.Name, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// nanos is t as stored: nanoseconds since the epoch; the zero time, which means "not
// yet" or "unknown", is NULL.
func nanos(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

// fromNanos reads what nanos stored, in UTC.
func fromNanos(n *int64) time.Time {
	if n == nil {
		return time.Time{}
	}
	return time.Unix(0, *n).UTC()
}

// sqlState is the SQLSTATE of err, or "".
func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

const (
	uniqueViolation      = "23505"
	foreignKeyViolation  = "23503"
	serializationFailure = "40001"
	deadlockDetected     = "40P01"
)

// limit turns a params Limit into PostgreSQL's LIMIT, where NULL means none.
func limit(n, zero int) (any, error) {
	switch {
	case n < 0:
		return nil, fmt.Errorf("postgres: limit %d is negative (0 means the default)", n)
	case n == 0 && zero < 0:
		return nil, nil
	case n == 0:
		return zero, nil
	}
	return n, nil
}
