-- Secrets, encrypted by internal/secret (ciphertext under the key key_id names; the store
-- never sees a value), scoped to a team and an environment ('' = all of the team's), and the
-- hash-chained audit log. audit_anchor holds at most one row: the seq and hash of the last
-- entry retention pruned, from which the chain that is left is verified.
CREATE TABLE secrets (
	team        TEXT NOT NULL,
	environment TEXT NOT NULL,
	name        TEXT NOT NULL,
	key_id      TEXT NOT NULL,
	ciphertext  BLOB NOT NULL,
	created_at  TEXT NOT NULL,
	updated_at  TEXT NOT NULL,
	created_by  TEXT NOT NULL,
	updated_by  TEXT NOT NULL,
	PRIMARY KEY (team, environment, name)
) STRICT;

CREATE TABLE audit (
	seq       INTEGER NOT NULL PRIMARY KEY,
	time      TEXT NOT NULL,
	actor     TEXT NOT NULL,
	action    TEXT NOT NULL,
	team      TEXT NOT NULL,
	target    TEXT NOT NULL,
	details   BLOB NOT NULL,
	prev_hash TEXT NOT NULL,
	hash      TEXT NOT NULL
) STRICT;

CREATE INDEX audit_time ON audit (time);
CREATE INDEX audit_actor ON audit (actor, seq);
CREATE INDEX audit_action ON audit (action, seq);

CREATE TABLE audit_anchor (
	id   INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	seq  INTEGER NOT NULL,
	hash TEXT NOT NULL
) STRICT;
