package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paved/paved/internal/store"
)

// LeaseAcquire takes or renews the lease p.Name for p.Owner (see store.LeaseParams) and
// says whether p.Owner holds it now. One upsert decides: when two servers race for an
// expired lease, the row lock makes the second re-check the first's fresh expiry and fail.
func (s *Store) LeaseAcquire(ctx context.Context, p store.LeaseParams) (bool, error) {
	if p.Name == "" || p.Owner == "" || !p.Until.After(p.Now) {
		return false, errors.New("postgres: acquire lease: Name, Owner and an Until after Now are required")
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO leases (name, owner, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
		WHERE leases.owner = excluded.owner OR leases.expires_at <= $4`,
		p.Name, p.Owner, p.Until.UnixNano(), p.Now.UnixNano())
	if err != nil {
		return false, fmt.Errorf("postgres: acquire lease %s: %w", p.Name, err)
	}
	return tag.RowsAffected() == 1, nil
}

// LeaseRenew extends p.Owner's leases among p.Names and returns those it still holds.
func (s *Store) LeaseRenew(ctx context.Context, p store.LeaseRenewParams) ([]string, error) {
	if p.Owner == "" {
		return nil, errors.New("postgres: renew leases: Owner is required")
	}
	if len(p.Names) == 0 {
		return []string{}, nil
	}
	rows, err := s.pool.Query(ctx, `UPDATE leases SET expires_at = $1 WHERE owner = $2 AND name = ANY($3) RETURNING name`,
		p.Until.UnixNano(), p.Owner, p.Names)
	if err != nil {
		return nil, fmt.Errorf("postgres: renew leases: %w", err)
	}
	held, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: renew leases: %w", err)
	}
	if held == nil {
		held = []string{}
	}
	return held, nil
}

// LeaseRelease gives up p.Owner's lease p.Name; another owner's is left alone.
func (s *Store) LeaseRelease(ctx context.Context, p store.LeaseParams) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM leases WHERE name = $1 AND owner = $2`, p.Name, p.Owner); err != nil {
		return fmt.Errorf("postgres: release lease %s: %w", p.Name, err)
	}
	return nil
}

// RunLeaseClaim claims unfinished runs without a live lease (see store.RunLeaseClaimParams)
// and returns their ids, oldest first. The upsert's WHERE is re-checked on the row as
// another claimer left it, so of two servers claiming at once each run goes to one.
func (s *Store) RunLeaseClaim(ctx context.Context, p store.RunLeaseClaimParams) ([]string, error) {
	n, err := limit(p.Limit, 100)
	if err != nil {
		return nil, err
	}
	if p.Owner == "" || !p.Until.After(p.Now) {
		return nil, errors.New("postgres: claim runs: Owner and an Until after Now are required")
	}
	rows, err := s.pool.Query(ctx, `WITH free AS (
			SELECT r.id, r.created_at FROM runs r
			LEFT JOIN leases l ON l.name = $1 || r.id
			WHERE NOT r.done AND (l.name IS NULL OR l.expires_at <= $2)
			ORDER BY r.created_at, r.id
			LIMIT $3
		)
		INSERT INTO leases (name, owner, expires_at) SELECT $1 || id, $4, $5 FROM free
		ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
		WHERE leases.expires_at <= $2
		RETURNING substr(name, length($1) + 1)`,
		store.RunLeasePrefix, p.Now.UnixNano(), n, p.Owner, p.Until.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("postgres: claim runs: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: claim runs: %w", err)
	}
	if ids == nil {
		ids = []string{}
	}
	return ids, nil
}

// cancelChannel carries cancel requests between servers; the payload is the caller's
// (the scheduler's JSON), which the store only moves.
const cancelChannel = "paved_cancel"

// RunCancelNotify tells every server listening (RunCancelListen) that run id should be
// cancelled; the server holding its lease does it.
func (s *Store) RunCancelNotify(ctx context.Context, payload string) error {
	if _, err := s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, cancelChannel, payload); err != nil {
		return fmt.Errorf("postgres: notify cancel: %w", err)
	}
	return nil
}

// RunCancelListen returns the payloads of RunCancelNotify from any server, until ctx ends.
// It returns once the LISTEN is in effect. Payloads sent while the connection was being
// re-established are lost: a cancel is also retried by its sender's caller.
func (s *Store) RunCancelListen(ctx context.Context) (<-chan string, error) {
	cfg := s.pool.Config().ConnConfig
	listen := func() (*pgx.Conn, error) {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return nil, err
		}
		if _, err := conn.Exec(ctx, `LISTEN `+cancelChannel); err != nil {
			conn.Close(context.Background())
			return nil, err
		}
		return conn, nil
	}
	conn, err := listen()
	if err != nil {
		return nil, fmt.Errorf("postgres: listen for cancels: %w", err)
	}
	out := make(chan string, 64)
	go func() {
		defer close(out)
		backoff := 50 * time.Millisecond
		for {
			if conn == nil {
				if conn, err = listen(); err != nil {
					select {
					case <-ctx.Done():
						return
					case <-time.After(backoff):
					}
					backoff = min(2*backoff, 5*time.Second)
					continue
				}
				backoff = 50 * time.Millisecond
			}
			n, err := conn.WaitForNotification(ctx)
			if err != nil {
				conn.Close(context.Background())
				conn = nil
				if ctx.Err() != nil {
					return
				}
				continue
			}
			select {
			case out <- n.Payload:
			case <-ctx.Done():
				conn.Close(context.Background())
				return
			}
		}
	}()
	return out, nil
}
