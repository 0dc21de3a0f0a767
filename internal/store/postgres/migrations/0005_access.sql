-- Access (internal/access): users, teams, roles per team, approvers per environment and API
-- tokens. Tokens are kept only as the SHA-256 of their secret. Times are nanoseconds since
-- the epoch.
CREATE TABLE users (
	name          text    COLLATE "C" NOT NULL PRIMARY KEY,
	password_hash text    NOT NULL,
	admin         boolean NOT NULL,
	created_at    bigint  NOT NULL
);

CREATE TABLE teams (
	name       text   COLLATE "C" NOT NULL PRIMARY KEY,
	created_at bigint NOT NULL
);

CREATE TABLE members (
	team       text   COLLATE "C" NOT NULL REFERENCES teams (name),
	"user"     text   COLLATE "C" NOT NULL REFERENCES users (name),
	role       text   NOT NULL,
	created_at bigint NOT NULL,
	PRIMARY KEY (team, "user")
);

CREATE INDEX members_user ON members ("user");

CREATE TABLE approvers (
	team        text   COLLATE "C" NOT NULL,
	environment text   COLLATE "C" NOT NULL,
	"user"      text   COLLATE "C" NOT NULL,
	created_at  bigint NOT NULL,
	PRIMARY KEY (team, environment, "user"),
	FOREIGN KEY (team, "user") REFERENCES members (team, "user") ON DELETE CASCADE
);

CREATE INDEX approvers_user ON approvers ("user");

CREATE TABLE tokens (
	id           text    COLLATE "C" NOT NULL PRIMARY KEY,
	hash         text    NOT NULL UNIQUE,
	name         text    NOT NULL,
	"user"       text    COLLATE "C" NOT NULL REFERENCES users (name),
	team         text    NOT NULL,
	role         text    NOT NULL,
	all_teams    boolean NOT NULL,
	session      boolean NOT NULL,
	created_at   bigint  NOT NULL,
	expires_at   bigint,
	last_used_at bigint,
	revoked_at   bigint
);

CREATE INDEX tokens_user ON tokens ("user", created_at DESC);
