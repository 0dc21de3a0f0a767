-- Access (internal/access): users, teams, roles per team, approvers per environment and API
-- tokens. Tokens are kept only as the SHA-256 of their secret.
CREATE TABLE users (
	name          TEXT    NOT NULL PRIMARY KEY,
	password_hash TEXT    NOT NULL,
	admin         INTEGER NOT NULL,
	created_at    TEXT    NOT NULL
) STRICT;

CREATE TABLE teams (
	name       TEXT NOT NULL PRIMARY KEY,
	created_at TEXT NOT NULL
) STRICT;

CREATE TABLE members (
	team       TEXT NOT NULL REFERENCES teams (name),
	user       TEXT NOT NULL REFERENCES users (name),
	role       TEXT NOT NULL,
	created_at TEXT NOT NULL,
	PRIMARY KEY (team, user)
) STRICT;

CREATE INDEX members_user ON members (user);

CREATE TABLE approvers (
	team        TEXT NOT NULL,
	environment TEXT NOT NULL,
	user        TEXT NOT NULL,
	created_at  TEXT NOT NULL,
	PRIMARY KEY (team, environment, user),
	FOREIGN KEY (team, user) REFERENCES members (team, user) ON DELETE CASCADE
) STRICT;

CREATE INDEX approvers_user ON approvers (user);

CREATE TABLE tokens (
	id           TEXT    NOT NULL PRIMARY KEY,
	hash         TEXT    NOT NULL UNIQUE,
	name         TEXT    NOT NULL,
	user         TEXT    NOT NULL REFERENCES users (name),
	team         TEXT    NOT NULL,
	role         TEXT    NOT NULL,
	all_teams    INTEGER NOT NULL,
	session      INTEGER NOT NULL,
	created_at   TEXT    NOT NULL,
	expires_at   TEXT,
	last_used_at TEXT,
	revoked_at   TEXT
) STRICT;

CREATE INDEX tokens_user ON tokens (user, created_at DESC);
