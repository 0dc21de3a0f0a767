// Package store keeps greetings.
package store

// Store keeps greetings in memory.
type Store struct{ greetings []string }

// Add keeps a greeting.
func (s *Store) Add(g string) { s.greetings = append(s.greetings, g) }
