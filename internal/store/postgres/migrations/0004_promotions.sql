-- Freight (what a run produced, moved unchanged between environments) and promotions (a
-- freight's move into an environment, its approvals and outcome). data is the whole
-- store.Freight / store.Promotion as JSON; created_at is nanoseconds since the epoch.
CREATE TABLE freight (
	id         text   COLLATE "C" NOT NULL PRIMARY KEY,
	alias      text   COLLATE "C" NOT NULL UNIQUE,
	created_at bigint NOT NULL,
	data       json   NOT NULL
);

CREATE INDEX freight_created ON freight (created_at DESC, id DESC);

CREATE TABLE promotions (
	id          text   COLLATE "C" NOT NULL PRIMARY KEY,
	environment text   NOT NULL,
	freight     text   NOT NULL,
	state       text   NOT NULL,
	version     bigint NOT NULL,
	created_at  bigint NOT NULL,
	data        json   NOT NULL
);

CREATE INDEX promotions_env ON promotions (environment, created_at DESC, id DESC);
