package sqlite

import (
	"database/sql"
	"encoding/json"
	"fmt"
)

// Deployments, freight and promotions are kept whole as JSON in a data column, so their
// fields grow without migrations; these read them back.

// scanJSON reads a one-column row of JSON into a T; what names the record in errors.
func scanJSON[T any](row interface{ Scan(...any) error }, what string) (T, error) {
	var v T
	var data string
	if err := row.Scan(&data); err != nil {
		return v, err
	}
	if err := json.Unmarshal([]byte(data), &v); err != nil {
		return v, fmt.Errorf("bad %s in database: %w", what, err)
	}
	return v, nil
}

// listJSON reads every row of a query of one JSON column, and closes rows.
func listJSON[T any](rows *sql.Rows, what string) ([]T, error) {
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
