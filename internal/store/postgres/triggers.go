package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paved/paved/internal/store"
)

// triggerChannel is the NOTIFY channel of TriggerAdd (see TriggerNotify).
const triggerChannel = "paved_triggers"

// addAttempts bounds the retries of a TriggerAdd that PostgreSQL aborted to break a
// deadlock: two servers adding overlapping batches in different orders.
const addAttempts = 5

// TriggerAdd stores a batch of triggers in one transaction, skipping duplicates (see
// store.TriggerAddParams). The unique indexes on (provider, delivery_id) and on the dedup
// key decide between concurrent adders, in one process or many: the second waits for the
// first to commit, then finds its row. A trigger is acknowledged to its sender once this
// returns, so the commit waits for the WAL flush even where the server is configured with
// synchronous_commit=off. Callers batch concurrent deliveries (group commit) so that one
// flush serves many. The commit notifies TriggerNotify's listeners, in every process.
func (s *Store) TriggerAdd(ctx context.Context, p store.TriggerAddParams) ([]store.TriggerAdded, error) {
	if p.Window < 0 {
		return nil, fmt.Errorf("postgres: add triggers: negative dedup window %v", p.Window)
	}
	data := make([]string, len(p.Triggers))
	for i, t := range p.Triggers {
		if t.ID == "" || t.ReceivedAt.IsZero() || t.Provider == "" || t.Repo == "" {
			return nil, fmt.Errorf("postgres: add triggers: trigger %d needs ID, ReceivedAt, Provider and Repo", i)
		}
		b, err := json.Marshal(t)
		if err != nil {
			return nil, fmt.Errorf("postgres: add trigger %s: %w", t.ID, err)
		}
		data[i] = string(b)
	}
	if len(p.Triggers) == 0 {
		return []store.TriggerAdded{}, nil
	}
	for attempt := 1; ; attempt++ {
		added, err := s.triggerAdd(ctx, p, data)
		if st := sqlState(err); (st == deadlockDetected || st == serializationFailure) && attempt < addAttempts {
			continue
		}
		return added, err
	}
}

func (s *Store) triggerAdd(ctx context.Context, p store.TriggerAddParams, data []string) ([]store.TriggerAdded, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: add triggers: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	// Only "off" returns before the WAL is flushed; any other setting (local, on,
	// remote_write, remote_apply) is at least as safe, and is left as configured.
	if _, err := tx.Exec(ctx, `SELECT set_config('synchronous_commit', 'on', true)
		WHERE current_setting('synchronous_commit') = 'off'`); err != nil {
		return nil, fmt.Errorf("postgres: add triggers: %w", err)
	}
	now := p.Triggers[0].ReceivedAt
	for _, t := range p.Triggers {
		if t.ReceivedAt.After(now) {
			now = t.ReceivedAt
		}
	}
	if _, err := tx.Exec(ctx, `DELETE FROM trigger_dedup WHERE expires_at <= $1`, now.Add(-p.Window).UnixNano()); err != nil {
		return nil, fmt.Errorf("postgres: add triggers: expire dedup keys: %w", err)
	}
	added := make([]store.TriggerAdded, len(p.Triggers))
	fresh := false
	for i, t := range p.Triggers {
		var delivery *string
		if t.DeliveryID != "" {
			delivery = &t.DeliveryID
		}
		// Insert first: the delivery id's index decides whether it is a redelivery.
		var seq int64
		err := tx.QueryRow(ctx, `INSERT INTO triggers (id, provider, delivery_id, repo, received_at, data)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (provider, delivery_id) WHERE delivery_id IS NOT NULL DO NOTHING
			RETURNING seq`, t.ID, t.Provider, delivery, t.Repo, t.ReceivedAt.UnixNano(), data[i]).Scan(&seq)
		if errors.Is(err, pgx.ErrNoRows) {
			var id string
			if err := tx.QueryRow(ctx, `SELECT id FROM triggers WHERE provider = $1 AND delivery_id = $2`,
				t.Provider, t.DeliveryID).Scan(&id); err != nil {
				return nil, fmt.Errorf("postgres: add trigger %s: read the delivery's trigger: %w", t.ID, err)
			}
			added[i] = store.TriggerAdded{ID: id, Duplicate: true}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("postgres: add trigger %s: %w", t.ID, err)
		}
		if p.Window > 0 {
			// The upsert returns a row only when it claimed the key: new, or the old
			// one expired. Otherwise the row is locked, and stays so until commit.
			key := t.DedupKey()
			var id string
			err := tx.QueryRow(ctx, `INSERT INTO trigger_dedup (key, trigger_id, expires_at) VALUES ($1, $2, $3)
				ON CONFLICT (key) DO UPDATE SET trigger_id = excluded.trigger_id, expires_at = excluded.expires_at
				WHERE trigger_dedup.expires_at <= $4
				RETURNING trigger_id`, key, t.ID, t.ReceivedAt.Add(p.Window).UnixNano(), t.ReceivedAt.UnixNano()).Scan(&id)
			if errors.Is(err, pgx.ErrNoRows) {
				if err := tx.QueryRow(ctx, `SELECT trigger_id FROM trigger_dedup WHERE key = $1`, key).Scan(&id); err != nil {
					return nil, fmt.Errorf("postgres: add trigger %s: read dedup key: %w", t.ID, err)
				}
				// A duplicate is not stored, and neither is its delivery id.
				if _, err := tx.Exec(ctx, `DELETE FROM triggers WHERE seq = $1`, seq); err != nil {
					return nil, fmt.Errorf("postgres: add trigger %s: %w", t.ID, err)
				}
				added[i] = store.TriggerAdded{ID: id, Duplicate: true}
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("postgres: add trigger %s: dedup: %w", t.ID, err)
			}
		}
		added[i] = store.TriggerAdded{ID: t.ID}
		fresh = true
	}
	if fresh {
		// Delivered at commit, and only if it commits.
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, triggerChannel); err != nil {
			return nil, fmt.Errorf("postgres: add triggers: notify: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("postgres: add triggers: %w", err)
	}
	return added, nil
}

const triggerColumns = `seq, data, processed_at, runs, note`

// TriggerGet returns a trigger of the inbox, or an error wrapping store.ErrNotFound.
func (s *Store) TriggerGet(ctx context.Context, id string) (store.TriggerRecord, error) {
	r, _, err := scanTrigger(s.pool.QueryRow(ctx, `SELECT `+triggerColumns+` FROM triggers WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.TriggerRecord{}, fmt.Errorf("postgres: trigger %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.TriggerRecord{}, fmt.Errorf("postgres: trigger %s: %w", id, err)
	}
	return r, nil
}

// TriggerList lists the inbox (see store.TriggerListParams).
func (s *Store) TriggerList(ctx context.Context, p store.TriggerListParams) ([]store.TriggerRecord, error) {
	n, err := limit(p.Limit, 100)
	if err != nil {
		return nil, err
	}
	q := `SELECT ` + triggerColumns + ` FROM triggers ORDER BY seq DESC LIMIT $1`
	if p.Pending {
		q = `SELECT ` + triggerColumns + ` FROM triggers WHERE processed_at IS NULL ORDER BY seq LIMIT $1`
	}
	return s.listTriggers(ctx, q, n)
}

func (s *Store) listTriggers(ctx context.Context, q string, args ...any) ([]store.TriggerRecord, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list triggers: %w", err)
	}
	defer rows.Close()
	out := []store.TriggerRecord{}
	for rows.Next() {
		r, _, err := scanTrigger(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: list triggers: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list triggers: %w", err)
	}
	return out, nil
}

// TriggerDone marks a trigger processed. Marking it again overwrites the record (a
// re-process after a crash finds the same runs).
func (s *Store) TriggerDone(ctx context.Context, p store.TriggerDoneParams) error {
	if p.At.IsZero() {
		return errors.New("postgres: trigger done: At is required")
	}
	runs := p.Runs
	if runs == nil {
		runs = []string{}
	}
	tag, err := s.pool.Exec(ctx, `UPDATE triggers SET processed_at = $1, runs = $2, note = $3, claimed_by = NULL, claimed_until = NULL
		WHERE id = $4`, p.At.UnixNano(), runs, p.Note, p.ID)
	if err != nil {
		return fmt.Errorf("postgres: trigger %s done: %w", p.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: trigger %s: %w", p.ID, store.ErrNotFound)
	}
	return nil
}

// TriggerClaimParams claims pending triggers for one processor, so that processors in
// many servers sharing the database each take different ones.
type TriggerClaimParams struct {
	// Owner names the claimer (a server's id); required.
	Owner string
	// Limit is how many triggers to claim at most. 0 means 100.
	Limit int
	// Now is the time by which expired claims are judged; Until is when the new claims
	// expire, after which another owner may take a trigger its claimer did not finish.
	Now, Until time.Time
}

// TriggerClaim claims up to p.Limit pending triggers that nobody holds (never claimed, or
// the claim expired before p.Now), oldest first, and returns them. FOR UPDATE SKIP LOCKED
// lets concurrent claimers pass over the rows another is claiming at that moment instead
// of waiting for it, so no trigger is claimed by two at once and none waits. TriggerDone
// ends the claim.
func (s *Store) TriggerClaim(ctx context.Context, p TriggerClaimParams) ([]store.TriggerRecord, error) {
	n, err := limit(p.Limit, 100)
	if err != nil {
		return nil, err
	}
	if p.Owner == "" || p.Now.IsZero() || !p.Until.After(p.Now) {
		return nil, errors.New("postgres: claim triggers: Owner, Now and an Until after Now are required")
	}
	rows, err := s.pool.Query(ctx, `UPDATE triggers t SET claimed_by = $1, claimed_until = $2
		FROM (
			SELECT seq FROM triggers
			WHERE processed_at IS NULL AND (claimed_until IS NULL OR claimed_until <= $3)
			ORDER BY seq
			LIMIT $4
			FOR UPDATE SKIP LOCKED
		) c
		WHERE t.seq = c.seq
		RETURNING t.seq, t.data, t.processed_at, t.runs, t.note`, p.Owner, p.Until.UnixNano(), p.Now.UnixNano(), n)
	if err != nil {
		return nil, fmt.Errorf("postgres: claim triggers: %w", err)
	}
	defer rows.Close()
	type claimed struct {
		seq int64
		r   store.TriggerRecord
	}
	var got []claimed
	for rows.Next() {
		r, seq, err := scanTrigger(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: claim triggers: %w", err)
		}
		got = append(got, claimed{seq, r})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: claim triggers: %w", err)
	}
	// RETURNING has no order of its own.
	slices.SortFunc(got, func(a, b claimed) int { return cmp.Compare(a.seq, b.seq) })
	out := make([]store.TriggerRecord, len(got))
	for i, c := range got {
		out[i] = c.r
	}
	return out, nil
}

func scanTrigger(row pgx.Row) (store.TriggerRecord, int64, error) {
	var (
		r         store.TriggerRecord
		seq       int64
		data      []byte
		processed *int64
	)
	if err := row.Scan(&seq, &data, &processed, &r.Runs, &r.Note); err != nil {
		return r, 0, err
	}
	if err := json.Unmarshal(data, &r.Trigger); err != nil {
		return r, 0, fmt.Errorf("bad trigger JSON in database: %w", err)
	}
	if processed != nil {
		t := fromNanos(processed)
		r.ProcessedAt = &t
	}
	if r.Runs == nil {
		r.Runs = []string{}
	}
	return r, seq, nil
}
