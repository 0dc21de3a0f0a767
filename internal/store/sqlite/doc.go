// Package sqlite is paved's embedded store: the event log, the run projection, stage logs
// and registered repos in one SQLite file (modernc.org/sqlite, pure Go, so the binary needs
// no C toolchain and no other service).
//
// # Concurrency
//
// SQLite allows one writer at a time per file. Rather than let many connections race for the
// write lock and spin in busy_timeout, every write goes through a pool of exactly one
// connection, in short BEGIN IMMEDIATE transactions with statements prepared once. Reads use
// a separate pool of several read-only connections; in WAL mode they see the last committed
// state and never wait for the writer. ":memory:" is one connection for both, since an
// in-memory database lives and dies with its connection.
//
// Event appends and log lines, the writes that come by the thousand under a burst of
// triggers, are group-committed (commit.go): those that arrive while a transaction is being
// written share the next one, each still checked and applied on its own, so that one
// append's seq conflict fails that append alone. Appends that start work (RunCreated,
// StageStarted) go ahead of the rest. Triggers keep their own transaction (it alone fsyncs,
// see TriggerAdd); repos and trigger marks are rare.
//
// # Durability
//
// The file is in WAL mode with synchronous=NORMAL: a committed transaction survives the
// process being killed (the WAL is in the page cache of the kernel, and replayed at the
// next open), but the last transactions before a power loss may be lost. That is the
// usual trade for a server on one machine, and it keeps a commit free of fsync.
//
// Checkpoints are SQLite's own: every 1000 pages the commit that crosses the mark copies the
// WAL back into the database file (and fsyncs it). The WAL can only start over at a moment
// when no reader is using it, so under reads that never pause it grows until such a moment
// comes; journal_size_limit then shrinks the file to 64 MiB. Forcing a TRUNCATE checkpoint
// from the writer was tried and dropped: under exactly that load it held every writer for
// the whole busy_timeout and then failed.
package sqlite
