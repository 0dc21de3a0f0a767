-- Leases (store.LeaseParams): which process holds a piece of work, until when. SQLite serves
-- one server (its file lock), so leases are rarely contested here; the table exists so that
-- both stores pass one conformance suite. Times are nanoseconds since the epoch.
CREATE TABLE leases (
	name       TEXT    NOT NULL PRIMARY KEY,
	owner      TEXT    NOT NULL,
	expires_at INTEGER NOT NULL
) STRICT;

-- Agent tokens: one per agent, hashed (SHA-256 hex), revocable. A revoked token's row stays
-- (revoked_at set) for the audit of who could connect when.
CREATE TABLE agent_tokens (
	name       TEXT NOT NULL PRIMARY KEY,
	hash       TEXT NOT NULL UNIQUE,
	created_at TEXT NOT NULL,
	revoked_at TEXT
) STRICT;
