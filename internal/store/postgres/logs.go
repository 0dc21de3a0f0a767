package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/paved/paved/internal/run"
	"github.com/paved/paved/internal/store"
)

// LogAppend stores log lines, of any runs and stages, in one statement. A line whose
// (run, stage, seq) is already stored is skipped, so a batch retried after a crash or a
// timeout is stored once; within a batch the first of two such lines is kept. Lines of a
// run that does not exist are an error wrapping store.ErrNotFound, and then none of the
// batch is stored. The text is kept byte for byte, valid UTF-8 or not.
func (s *Store) LogAppend(ctx context.Context, lines []run.LogLine) error {
	if len(lines) == 0 {
		return nil
	}
	type key struct {
		run, stage string
		seq        int64
	}
	seen := make(map[key]bool, len(lines))
	var (
		runs, stages []string
		seqs         []int64
		times        []*int64
		texts        [][]byte
		words        []string
	)
	for _, l := range lines {
		switch {
		case l.RunID == "" || l.Stage == "":
			return fmt.Errorf("postgres: append logs: line %d of run %q stage %q: run and stage are required", l.Seq, l.RunID, l.Stage)
		case l.Seq < 1:
			return fmt.Errorf("postgres: append logs of run %s stage %s: seq %d, want 1 or more", l.RunID, l.Stage, l.Seq)
		}
		k := key{l.RunID, l.Stage, l.Seq}
		if seen[k] {
			continue
		}
		seen[k] = true
		var t *int64
		if !l.Time.IsZero() {
			ns := l.Time.UnixNano()
			t = &ns
		}
		runs, stages, seqs, times, texts = append(runs, l.RunID), append(stages, l.Stage), append(seqs, l.Seq),
			append(times, t), append(texts, []byte(l.Text))
		words = append(words, strings.Join(logWords(l.Text), " "))
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO logs (run_id, stage, seq, time, text, words)
		SELECT r, st, sq, tm, tx, string_to_array(w, ' ')
		FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bytea[], $6::text[]) AS u(r, st, sq, tm, tx, w)
		ON CONFLICT DO NOTHING`, runs, stages, seqs, times, texts, words)
	if sqlState(err) == foreignKeyViolation {
		return fmt.Errorf("postgres: append logs: a line's run does not exist: %w", store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("postgres: append logs: %w", err)
	}
	return nil
}

// LogList returns a stage's log lines after p.AfterSeq, in order.
func (s *Store) LogList(ctx context.Context, p store.LogListParams) ([]run.LogLine, error) {
	n, err := limit(p.Limit, -1)
	if err != nil {
		return nil, err
	}
	if p.RunID == "" || p.Stage == "" {
		return nil, errors.New("postgres: list logs: run and stage are required")
	}
	rows, err := s.pool.Query(ctx,
		`SELECT seq, time, text FROM logs WHERE run_id = $1 AND stage = $2 AND seq > $3 ORDER BY seq LIMIT $4`,
		p.RunID, p.Stage, p.AfterSeq, n)
	if err != nil {
		return nil, fmt.Errorf("postgres: list logs of run %s stage %s: %w", p.RunID, p.Stage, err)
	}
	defer rows.Close()
	lines := []run.LogLine{}
	var (
		t    *int64
		text []byte
	)
	for rows.Next() {
		l := run.LogLine{RunID: p.RunID, Stage: p.Stage}
		if err := rows.Scan(&l.Seq, &t, &text); err != nil {
			return nil, fmt.Errorf("postgres: list logs of run %s stage %s: %w", p.RunID, p.Stage, err)
		}
		l.Time, l.Text = fromNanos(t), string(text)
		lines = append(lines, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list logs of run %s stage %s: %w", p.RunID, p.Stage, err)
	}
	return lines, nil
}

// splitWords splits text into its lowercased words (runs of letters and digits), in order.
func splitWords(text string) []string {
	return strings.FieldsFunc(strings.ToLower(strings.ToValidUTF8(text, " ")), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}

// logWords is a line's words for its words column: each once.
func logWords(text string) []string {
	words := splitWords(text)
	slices.Sort(words)
	return slices.Compact(words)
}

var likeEscape = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// LogSearch finds log lines holding every word of the query, newest first. Words are split
// as LogAppend splits lines; a word ending in * matches any word it begins.
func (s *Store) LogSearch(ctx context.Context, p store.LogSearchParams) ([]run.LogLine, error) {
	n, err := limit(p.Limit, 100)
	if err != nil {
		return nil, err
	}
	exact, prefixes := []string{}, []string{} // not nil: pgx sends a nil slice as NULL
	for _, w := range strings.Fields(p.Query) {
		prefix := strings.HasSuffix(w, "*")
		w = strings.TrimRight(w, "*")
		if w == "" {
			return nil, fmt.Errorf("postgres: search logs: %q has a * without a word before it", p.Query)
		}
		ws := splitWords(w)
		if prefix && len(ws) > 0 {
			// In "foo.ba*" the last word is the prefix; the ones before it are whole.
			prefixes = append(prefixes, likeEscape.Replace(ws[len(ws)-1])+"%")
			ws = ws[:len(ws)-1]
		}
		exact = append(exact, ws...)
	}
	if len(exact) == 0 && len(prefixes) == 0 {
		return nil, fmt.Errorf("postgres: search logs: %w", store.ErrEmptyQuery)
	}
	q := `SELECT l.run_id, l.stage, l.seq, l.time, l.text FROM logs l`
	if p.Repo != "" || p.Team != "" {
		q += ` JOIN runs r ON r.id = l.run_id`
	}
	args := []any{exact}
	where := []string{"l.words @> $1::text[]"}
	arg := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "$", fmt.Sprintf("$%d", len(args))))
	}
	for _, pre := range prefixes {
		arg("EXISTS (SELECT 1 FROM unnest(l.words) w WHERE w LIKE $)", pre)
	}
	for cond, v := range map[string]string{"l.run_id = $": p.RunID, "l.stage = $": p.Stage, "r.repo = $": p.Repo, "r.team = $": p.Team} {
		if v != "" {
			arg(cond, v)
		}
	}
	if !p.Since.IsZero() {
		arg("l.time >= $", p.Since.UnixNano())
	}
	if !p.Until.IsZero() {
		arg("l.time < $", p.Until.UnixNano())
	}
	args = append(args, n)
	q += " WHERE " + strings.Join(where, " AND ") + fmt.Sprintf(" ORDER BY l.time DESC, l.run_id, l.stage, l.seq DESC LIMIT $%d", len(args))
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: search logs for %q: %w", p.Query, err)
	}
	defer rows.Close()
	lines := []run.LogLine{}
	for rows.Next() {
		var (
			l    run.LogLine
			t    *int64
			text []byte
		)
		if err := rows.Scan(&l.RunID, &l.Stage, &l.Seq, &t, &text); err != nil {
			return nil, fmt.Errorf("postgres: search logs: %w", err)
		}
		l.Time, l.Text = fromNanos(t), string(text)
		lines = append(lines, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: search logs: %w", err)
	}
	return lines, nil
}
