// Package store holds what every store implementation shares: the parameters of store
// methods, the sentinel errors, and (in storetest) the conformance suite that every
// implementation must pass. The interfaces themselves are declared by their consumers
// (schedule, api), each with only the methods it calls. Implementations: sqlite (the
// embedded default) and postgres (--database).
package store

import (
	"errors"
	"time"

	"github.com/paved/paved/internal/run"
)

var (
	// ErrConflict: another writer appended to the run since the caller read it. Re-read the
	// run's events, fold them, and decide again.
	ErrConflict = errors.New("store: event sequence conflict")
	// ErrEmptyQuery: a search without a word to search for.
	ErrEmptyQuery = errors.New("store: the search has no words (give ?q=WORD)")
	// ErrNotFound: no such run, repo or other record.
	ErrNotFound = errors.New("store: not found")
)

// EventAppendParams appends events to a run atomically: all or none, and only if the run's
// last seq is still ExpectedSeq (0 for a new run). Events must be numbered ExpectedSeq+1,
// +2, ... Summary, the run's projection after these events, is written in the same
// transaction.
//
// Every store rejects, with a plain error (not ErrConflict): an empty batch, a negative
// ExpectedSeq, Summary.ID other than RunID, Summary.LastSeq other than the last event's seq,
// and a zero Summary.CreatedAt.
//
// Rules shared by all list methods and stores (the conformance suite checks them): a negative
// Limit is an error; nothing found is an empty, non-nil slice. LogAppend for a run that does
// not exist returns ErrNotFound and stores none of the batch. LogList needs a Stage. RepoPut
// keeps the created_at of the first registration.
type EventAppendParams struct {
	RunID       string
	ExpectedSeq int64
	Events      []run.Event
	Summary     run.Summary
}

// EventListParams lists a run's events with seq > AfterSeq, in order; Limit 0 means all.
type EventListParams struct {
	RunID    string
	AfterSeq int64
	Limit    int
}

// RunListParams filters the run projection, newest first. Zero fields do not filter;
// Limit 0 means 100.
type RunListParams struct {
	Repo       string
	Team       string
	Phase      run.Phase
	Unfinished bool // only runs whose phase is not final
	Limit      int
}

// LogSearchParams finds stored log lines by their words, newest first. Query is one or
// more words separated by spaces; a line matches when it holds every word (case does not
// matter; a word ending in * matches as a prefix). Zero fields do not filter; Limit 0 means
// 100.
type LogSearchParams struct {
	Query        string
	RunID        string
	Stage        string
	Repo         string
	Team         string
	Since, Until time.Time // the line's time in [Since, Until)
	Limit        int
}

// LogListParams lists a stage's log lines with seq > AfterSeq, in order; Limit 0 means all.
type LogListParams struct {
	RunID    string
	Stage    string
	AfterSeq int64
	Limit    int
}
