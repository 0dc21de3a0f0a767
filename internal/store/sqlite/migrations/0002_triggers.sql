-- The trigger inbox: every accepted webhook (and cron or API trigger), durable before it is
-- acknowledged, processed once into runs.

-- seq is arrival order: pending triggers are processed in it, lists show newest first.
CREATE TABLE triggers (
	seq          INTEGER PRIMARY KEY AUTOINCREMENT,
	id           TEXT NOT NULL UNIQUE,
	provider     TEXT NOT NULL,
	-- NULL when the sender gave none; the index below makes a redelivery a duplicate.
	delivery_id  TEXT,
	repo         TEXT NOT NULL,
	received_at  TEXT NOT NULL,
	-- data is the whole trigger.Trigger as JSON: its fields grow without migrations.
	data         TEXT NOT NULL,
	processed_at TEXT,
	runs         TEXT NOT NULL DEFAULT '[]', -- JSON list of run ids
	note         TEXT NOT NULL DEFAULT ''
) STRICT;

CREATE UNIQUE INDEX triggers_delivery ON triggers (provider, delivery_id) WHERE delivery_id IS NOT NULL;
CREATE INDEX triggers_pending ON triggers (seq) WHERE processed_at IS NULL;

-- trigger_dedup holds one live row per dedup key (hash of provider, repo, ref, sha, kind,
-- action): a second trigger with the key is a duplicate until expires_at. The primary key
-- is what makes that hold when deliveries race.
CREATE TABLE trigger_dedup (
	key        TEXT NOT NULL PRIMARY KEY,
	trigger_id TEXT NOT NULL,
	expires_at TEXT NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX trigger_dedup_expiry ON trigger_dedup (expires_at);
