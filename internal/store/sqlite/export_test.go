package sqlite

import (
	"database/sql"
	"testing"
)

// HoldWriter takes the store's one write connection and returns it, so that a test can make
// writes queue up for one batch; closing the connection gives it back (at the latest when
// the test ends, so that a failing test does not leave the store's writers stuck).
func HoldWriter(t testing.TB, s *Store) *sql.Conn {
	t.Helper()
	conn, err := s.w.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// QueuedWrites is how many writes wait for the next batch.
func QueuedWrites(s *Store) int {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	n := 0
	for _, q := range s.writeQueues {
		n += len(q)
	}
	return n
}
