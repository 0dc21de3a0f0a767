-- Secrets, encrypted by internal/secret (ciphertext under the key key_id names; the store
-- never sees a value), scoped to a team and an environment ('' = all of the team's), and the
-- hash-chained audit log (time in nanoseconds since the epoch; details kept as the exact
-- bytes the hash covers, hence bytea and not jsonb). audit_anchor holds at most one row: the
-- seq and hash of the last entry retention pruned.
CREATE TABLE secrets (
	team        text COLLATE "C" NOT NULL,
	environment text COLLATE "C" NOT NULL,
	name        text COLLATE "C" NOT NULL,
	key_id      text   NOT NULL,
	ciphertext  bytea  NOT NULL,
	created_at  bigint NOT NULL,
	updated_at  bigint NOT NULL,
	created_by  text   NOT NULL,
	updated_by  text   NOT NULL,
	PRIMARY KEY (team, environment, name)
);

CREATE TABLE audit (
	seq       bigint NOT NULL PRIMARY KEY,
	time      bigint NOT NULL,
	actor     text   NOT NULL,
	action    text   NOT NULL,
	team      text   NOT NULL,
	target    text   NOT NULL,
	details   bytea  NOT NULL,
	prev_hash text   NOT NULL,
	hash      text   NOT NULL
);

CREATE INDEX audit_time ON audit (time);
CREATE INDEX audit_actor ON audit (actor, seq);
CREATE INDEX audit_action ON audit (action, seq);

CREATE TABLE audit_anchor (
	id   integer NOT NULL PRIMARY KEY CHECK (id = 1),
	seq  bigint  NOT NULL,
	hash text    NOT NULL
);
