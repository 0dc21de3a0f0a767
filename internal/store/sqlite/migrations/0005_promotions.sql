-- Freight (what a run produced, moved unchanged between environments) and promotions (a
-- freight's move into an environment, its approvals and outcome). data is the whole
-- store.Freight / store.Promotion as JSON, so their fields grow without migrations.
CREATE TABLE freight (
	id          TEXT NOT NULL PRIMARY KEY,
	alias       TEXT NOT NULL UNIQUE,
	created_at  TEXT NOT NULL,
	data        TEXT NOT NULL
) STRICT;

CREATE INDEX freight_created ON freight (created_at DESC, id DESC);

CREATE TABLE promotions (
	id           TEXT NOT NULL PRIMARY KEY,
	environment  TEXT NOT NULL,
	freight      TEXT NOT NULL,
	state        TEXT NOT NULL,
	version      INTEGER NOT NULL,
	created_at   TEXT NOT NULL,
	data         TEXT NOT NULL
) STRICT;

CREATE INDEX promotions_env ON promotions (environment, created_at DESC, id DESC);
