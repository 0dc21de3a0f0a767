package postgres

import (
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Deployments, freight and promotions are kept whole as JSON in a data column, so their
// fields grow without migrations; these read them back.

// scanJSON reads a one-column row of JSON into a T; what names the record in errors.
func scanJSON[T any](row pgx.Row, what string) (T, error) {
	var v T
	var data []byte
	if err := row.Scan(&data); err != nil {
		return v, err
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return v, fmt.Errorf("bad %s in database: %w", what, err)
	}
	return v, nil
}

// listJSON reads every row of a query of one JSON column, and closes rows.
func listJSON[T any](rows pgx.Rows, what string) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scanJSON[T](rows, what)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
