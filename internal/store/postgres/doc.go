// Package postgres is paved's PostgreSQL store, for a team that outgrows one machine: the
// event log, the run projection, stage logs, registered repos and the trigger inbox, with
// the same behaviour as the embedded SQLite store (internal/store/storetest runs against
// both), built for a database that many paved servers share: nothing depends on being the
// only writer. Servers divide the work by leases (leases.go): a run is driven by the server
// holding its lease, and cancels reach that server by LISTEN/NOTIFY.
//
// # Concurrency
//
// Nothing is serialised in the process: every method takes a connection from a pool
// (pgx), and PostgreSQL's row locks and unique indexes decide between writers, whether in
// one server or several. An event append is a single statement that updates the run row
// only if its last_seq is the caller's expected seq and inserts the events only if it did
// (see events.go); concurrent appends to one run wait for each other on that row, and all
// but the first find it changed and report store.ErrConflict. Appends to different runs
// never wait for each other. Trigger deduplication rests on unique indexes in the same way
// (triggers.go).
//
// Work that several servers could take is claimed with FOR UPDATE SKIP LOCKED
// (TriggerClaim), and a waiter for new triggers is woken by LISTEN/NOTIFY
// (TriggerNotify) instead of polling.
//
// # Schema
//
// Migrations are embedded (migrations/*.sql) and applied by Open in one transaction under
// an advisory lock, so that servers started at once migrate the database once. Times are
// stored as bigint nanoseconds since the epoch: timestamptz keeps only microseconds, and a
// time must survive a round trip exactly (which bounds them to the years 1678 to 2262; the
// zero time, "not yet", is NULL). Log text is bytea, kept byte for byte: a text
// column refuses NUL and bytes that are not UTF-8, which a build may well print.
//
// # Durability
//
// A commit is as durable as the server's synchronous_commit makes it, except for
// TriggerAdd: a trigger is acknowledged to its sender once stored, so that transaction
// always waits for the WAL flush.
package postgres
