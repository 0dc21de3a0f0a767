-- Leases (store.LeaseParams): which server holds a piece of work ("run/ID", "env/NAME"),
-- until when. Servers sharing the database take a free or expired lease with one
-- conditional upsert, renew theirs by a heartbeat, and lose it when another takes it after
-- it expired. Times are nanoseconds since the epoch.
CREATE TABLE leases (
	name       text   COLLATE "C" NOT NULL PRIMARY KEY,
	owner      text   NOT NULL,
	expires_at bigint NOT NULL
);

CREATE INDEX leases_owner ON leases (owner);

-- Agent tokens: one per agent, hashed (SHA-256 hex), revocable. A revoked token's row stays
-- (revoked_at set) for the audit of who could connect when.
CREATE TABLE agent_tokens (
	name       text   COLLATE "C" NOT NULL PRIMARY KEY,
	hash       text   NOT NULL UNIQUE,
	created_at bigint NOT NULL,
	revoked_at bigint
);
