package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/paved/paved/internal/store"
)

// TriggerAdd stores a batch of triggers in one transaction, skipping duplicates (see
// store.TriggerAddParams). The database runs with synchronous=NORMAL, which in WAL mode
// does not fsync at commit; a trigger is acknowledged to its sender once this returns, so
// this transaction alone runs with synchronous=FULL: its commit fsyncs the WAL. Callers
// batch concurrent deliveries (group commit) so that one fsync serves many.
func (s *Store) TriggerAdd(ctx context.Context, p store.TriggerAddParams) (added []store.TriggerAdded, err error) {
	if p.Window < 0 {
		return nil, fmt.Errorf("sqlite: add triggers: negative dedup window %v", p.Window)
	}
	data := make([]string, len(p.Triggers))
	for i, t := range p.Triggers {
		if t.ID == "" || t.ReceivedAt.IsZero() || t.Provider == "" || t.Repo == "" {
			return nil, fmt.Errorf("sqlite: add triggers: trigger %d needs ID, ReceivedAt, Provider and Repo", i)
		}
		b, err := json.Marshal(t)
		if err != nil {
			return nil, fmt.Errorf("sqlite: add trigger %s: %w", t.ID, err)
		}
		data[i] = string(b)
	}
	if len(p.Triggers) == 0 {
		return []store.TriggerAdded{}, nil
	}
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: add triggers: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA synchronous = FULL`); err != nil {
		return nil, fmt.Errorf("sqlite: add triggers: %w", err)
	}
	defer func() {
		if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA synchronous = NORMAL`); rerr != nil {
			// A connection left at FULL is only slower, never less safe: report and go on.
			err = errors.Join(err, fmt.Errorf("sqlite: add triggers: restore synchronous: %w", rerr))
		}
	}()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: add triggers: %w", err)
	}
	defer tx.Rollback()

	now := p.Triggers[0].ReceivedAt
	for _, t := range p.Triggers {
		if t.ReceivedAt.After(now) {
			now = t.ReceivedAt
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM trigger_dedup WHERE expires_at <= ?`, formatTime(now.Add(-p.Window))); err != nil {
		return nil, fmt.Errorf("sqlite: add triggers: expire dedup keys: %w", err)
	}
	byDelivery, err := tx.PrepareContext(ctx, `SELECT id FROM triggers WHERE provider = ? AND delivery_id = ?`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: add triggers: %w", err)
	}
	defer byDelivery.Close()
	// The upsert returns a row only when it claimed the key: new, or the old one expired.
	claim, err := tx.PrepareContext(ctx, `INSERT INTO trigger_dedup (key, trigger_id, expires_at) VALUES (?1, ?2, ?3)
		ON CONFLICT (key) DO UPDATE SET trigger_id = excluded.trigger_id, expires_at = excluded.expires_at
		WHERE trigger_dedup.expires_at <= ?4
		RETURNING trigger_id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: add triggers: %w", err)
	}
	defer claim.Close()
	holder, err := tx.PrepareContext(ctx, `SELECT trigger_id FROM trigger_dedup WHERE key = ?`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: add triggers: %w", err)
	}
	defer holder.Close()
	insert, err := tx.PrepareContext(ctx, `INSERT INTO triggers (id, provider, delivery_id, repo, received_at, data) VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: add triggers: %w", err)
	}
	defer insert.Close()

	added = make([]store.TriggerAdded, len(p.Triggers))
	for i, t := range p.Triggers {
		if t.DeliveryID != "" {
			var id string
			err := byDelivery.QueryRowContext(ctx, t.Provider, t.DeliveryID).Scan(&id)
			if err == nil {
				added[i] = store.TriggerAdded{ID: id, Duplicate: true}
				continue
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return nil, fmt.Errorf("sqlite: add trigger %s: %w", t.ID, err)
			}
		}
		if p.Window > 0 {
			key := t.DedupKey()
			var id string
			err := claim.QueryRowContext(ctx, key, t.ID, formatTime(t.ReceivedAt.Add(p.Window)), formatTime(t.ReceivedAt)).Scan(&id)
			if errors.Is(err, sql.ErrNoRows) {
				if err := holder.QueryRowContext(ctx, key).Scan(&id); err != nil {
					return nil, fmt.Errorf("sqlite: add trigger %s: read dedup key: %w", t.ID, err)
				}
				added[i] = store.TriggerAdded{ID: id, Duplicate: true}
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("sqlite: add trigger %s: dedup: %w", t.ID, err)
			}
		}
		var delivery any
		if t.DeliveryID != "" {
			delivery = t.DeliveryID
		}
		if _, err := insert.ExecContext(ctx, t.ID, t.Provider, delivery, t.Repo, formatTime(t.ReceivedAt), data[i]); err != nil {
			return nil, fmt.Errorf("sqlite: add trigger %s: %w", t.ID, err)
		}
		added[i] = store.TriggerAdded{ID: t.ID}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlite: add triggers: %w", err)
	}
	return added, nil
}

const triggerColumns = `data, processed_at, runs, note`

// TriggerGet returns a trigger of the inbox, or an error wrapping store.ErrNotFound.
func (s *Store) TriggerGet(ctx context.Context, id string) (store.TriggerRecord, error) {
	r, err := scanTrigger(s.r.QueryRowContext(ctx, `SELECT `+triggerColumns+` FROM triggers WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.TriggerRecord{}, fmt.Errorf("sqlite: trigger %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.TriggerRecord{}, fmt.Errorf("sqlite: trigger %s: %w", id, err)
	}
	return r, nil
}

// TriggerList lists the inbox (see store.TriggerListParams).
func (s *Store) TriggerList(ctx context.Context, p store.TriggerListParams) ([]store.TriggerRecord, error) {
	n, err := limit(p.Limit, 100)
	if err != nil {
		return nil, err
	}
	q := `SELECT ` + triggerColumns + ` FROM triggers ORDER BY seq DESC LIMIT ?`
	if p.Pending {
		q = `SELECT ` + triggerColumns + ` FROM triggers WHERE processed_at IS NULL ORDER BY seq LIMIT ?`
	}
	rows, err := s.r.QueryContext(ctx, q, n)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list triggers: %w", err)
	}
	defer rows.Close()
	out := []store.TriggerRecord{}
	for rows.Next() {
		r, err := scanTrigger(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list triggers: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list triggers: %w", err)
	}
	return out, nil
}

// TriggerDone marks a trigger processed. Marking it again overwrites the record (a
// re-process after a crash finds the same runs).
func (s *Store) TriggerDone(ctx context.Context, p store.TriggerDoneParams) error {
	if p.At.IsZero() {
		return errors.New("sqlite: trigger done: At is required")
	}
	runs := p.Runs
	if runs == nil {
		runs = []string{}
	}
	b, err := json.Marshal(runs)
	if err != nil {
		return err
	}
	res, err := s.w.ExecContext(ctx, `UPDATE triggers SET processed_at = ?, runs = ?, note = ? WHERE id = ?`,
		formatTime(p.At), string(b), p.Note, p.ID)
	if err != nil {
		return fmt.Errorf("sqlite: trigger %s done: %w", p.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("sqlite: trigger %s: %w", p.ID, store.ErrNotFound)
	}
	return nil
}

func scanTrigger(row interface{ Scan(...any) error }) (store.TriggerRecord, error) {
	var (
		r          store.TriggerRecord
		data, runs string
		processed  sql.NullString
	)
	if err := row.Scan(&data, &processed, &runs, &r.Note); err != nil {
		return r, err
	}
	if err := json.Unmarshal([]byte(data), &r.Trigger); err != nil {
		return r, fmt.Errorf("bad trigger JSON in database: %w", err)
	}
	if err := json.Unmarshal([]byte(runs), &r.Runs); err != nil {
		return r, fmt.Errorf("bad runs JSON in database: %w", err)
	}
	if processed.Valid {
		t, err := parseTime(processed.String)
		if err != nil {
			return r, err
		}
		r.ProcessedAt = &t
	}
	return r, nil
}
