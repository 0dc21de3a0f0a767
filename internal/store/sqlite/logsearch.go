package sqlite

import (
	"context"
	"fmt"
	"strings"

	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// LogSearch finds log lines by their words with the FTS5 index (migration 0004), newest
// first.
func (s *Store) LogSearch(ctx context.Context, p store.LogSearchParams) ([]run.LogLine, error) {
	n, err := limit(p.Limit, 100)
	if err != nil {
		return nil, err
	}
	match, err := ftsQuery(p.Query)
	if err != nil {
		return nil, err
	}
	q := `SELECT l.run_id, l.stage, l.seq, l.time, l.text
		FROM logs_fts JOIN logs l ON l.rowid = logs_fts.rowid`
	where := []string{"logs_fts MATCH ?"}
	args := []any{match}
	if p.Repo != "" || p.Team != "" {
		q += ` JOIN runs r ON r.id = l.run_id`
	}
	for _, f := range []struct {
		cond string
		val  string
	}{{"l.run_id = ?", p.RunID}, {"l.stage = ?", p.Stage}, {"r.repo = ?", p.Repo}, {"r.team = ?", p.Team}} {
		if f.val != "" {
			where, args = append(where, f.cond), append(args, f.val)
		}
	}
	if !p.Since.IsZero() {
		where, args = append(where, "l.time >= ?"), append(args, formatTime(p.Since))
	}
	if !p.Until.IsZero() {
		where, args = append(where, "l.time < ?"), append(args, formatTime(p.Until))
	}
	q += " WHERE " + strings.Join(where, " AND ") + " ORDER BY l.time DESC, l.run_id, l.stage, l.seq DESC LIMIT ?"
	args = append(args, n)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: search logs for %q: %w", p.Query, err)
	}
	defer rows.Close()
	lines := []run.LogLine{}
	var t string
	for rows.Next() {
		var l run.LogLine
		if err := rows.Scan(&l.RunID, &l.Stage, &l.Seq, &t, &l.Text); err != nil {
			return nil, fmt.Errorf("sqlite: search logs: %w", err)
		}
		if l.Time, err = parseTime(t); err != nil {
			return nil, fmt.Errorf("sqlite: search logs: %w", err)
		}
		lines = append(lines, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: search logs: %w", err)
	}
	return lines, nil
}

// ftsQuery turns words into an FTS5 query that matches lines holding all of them: each word
// is a quoted string (so FTS5 operators and punctuation in it are literal), a trailing * is
// a prefix search.
func ftsQuery(q string) (string, error) {
	words := strings.Fields(q)
	if len(words) == 0 {
		return "", fmt.Errorf("sqlite: search logs: %w", store.ErrEmptyQuery)
	}
	var b strings.Builder
	for i, w := range words {
		prefix := strings.HasSuffix(w, "*")
		w = strings.TrimRight(w, "*")
		if w == "" {
			return "", fmt.Errorf("sqlite: search logs: %q has a * without a word before it", q)
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(`"` + strings.ReplaceAll(w, `"`, `""`) + `"`)
		if prefix {
			b.WriteByte('*')
		}
	}
	return b.String(), nil
}
