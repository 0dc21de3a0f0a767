-- The first schema: the event log, its run projection, log lines, registered repos and the
-- trigger inbox. The same tables as the SQLite store, in PostgreSQL's types.
--
-- Times are bigint nanoseconds since the Unix epoch (UTC): timestamptz keeps microseconds,
-- and paved's times (Go's time.Time) have nanoseconds that must survive a round trip.
-- NULL means "not yet" (finished_at of a run still going). To read one in psql:
-- to_timestamp(created_at / 1e9).

-- runs is the projection of each run's events, kept for listing. It is written by the
-- same statement as every append, so it never disagrees with the log; its last_seq is what
-- an append's expected seq is checked against.
-- Ids and names are in the "C" collation: they sort byte by byte, as in the SQLite store,
-- whatever the database's locale, and the indexes serve the ORDER BY of the lists.
CREATE TABLE runs (
	id          text    COLLATE "C" NOT NULL PRIMARY KEY,
	repo        text    NOT NULL,
	team        text    NOT NULL,
	ref         text    NOT NULL,
	sha         text    NOT NULL,
	pipeline    text    NOT NULL,
	"trigger"   text    NOT NULL,
	phase       text    NOT NULL,
	-- done is run.Phase.Done() of phase, stored so that the list of final phases lives
	-- only in the run package and "unfinished" can use an index.
	done        boolean NOT NULL,
	created_at  bigint  NOT NULL,
	finished_at bigint,
	last_seq    bigint  NOT NULL
);

-- Every list is newest first; the filters the API and the scheduler use each get an index
-- in that order, so a filtered page stops after Limit rows.
CREATE INDEX runs_created ON runs (created_at DESC, id DESC);
CREATE INDEX runs_repo ON runs (repo, created_at DESC, id DESC);
CREATE INDEX runs_team ON runs (team, created_at DESC, id DESC);
CREATE INDEX runs_unfinished ON runs (created_at DESC, id DESC) WHERE NOT done;

-- events is the append-only log. The primary key is what makes two appends of the same
-- seq impossible, whatever the writers do.
CREATE TABLE events (
	run_id text   NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	seq    bigint NOT NULL,
	type   text   NOT NULL,
	time   bigint NOT NULL,
	-- data is the whole run.Event as JSON: the event types grow without migrations.
	-- json, not jsonb: it keeps the text as written (and a \u0000 that jsonb refuses).
	data   json   NOT NULL,
	PRIMARY KEY (run_id, seq)
);

-- logs holds each stage's output lines. seq is per run and stage; the key makes a
-- retried batch harmless (ON CONFLICT DO NOTHING). text is bytea: a process may print
-- bytes that are not UTF-8, or NUL, which a text column refuses; a line comes back byte
-- for byte. In psql: convert_from(text, 'UTF8') for lines that are valid UTF-8.
CREATE TABLE logs (
	run_id text   NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	stage  text   NOT NULL,
	seq    bigint NOT NULL,
	time   bigint,
	text   bytea  NOT NULL,
	PRIMARY KEY (run_id, stage, seq)
);

CREATE TABLE repos (
	full_name      text   COLLATE "C" NOT NULL PRIMARY KEY,
	clone_url      text   NOT NULL,
	team           text   NOT NULL,
	provider       text   NOT NULL,
	webhook_secret text   NOT NULL,
	created_at     bigint
);

-- The trigger inbox: every accepted webhook (and cron or API trigger), durable before it is
-- acknowledged, processed once into runs. seq is arrival order: pending triggers are
-- processed in it, lists show newest first.
CREATE TABLE triggers (
	seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id           text   NOT NULL UNIQUE,
	provider     text   NOT NULL,
	-- NULL when the sender gave none; the index below makes a redelivery a duplicate.
	delivery_id  text,
	repo         text   NOT NULL,
	received_at  bigint NOT NULL,
	-- data is the whole trigger.Trigger as JSON: its fields grow without migrations.
	data         json   NOT NULL,
	processed_at bigint,
	runs         text[] NOT NULL DEFAULT '{}',
	note         text   NOT NULL DEFAULT '',
	-- A claim (TriggerClaim): who is processing the trigger, until when. Another claimer
	-- takes it over once claimed_until has passed (its claimer died).
	claimed_by    text,
	claimed_until bigint
);

CREATE UNIQUE INDEX triggers_delivery ON triggers (provider, delivery_id) WHERE delivery_id IS NOT NULL;
CREATE INDEX triggers_pending ON triggers (seq) WHERE processed_at IS NULL;

-- trigger_dedup holds one live row per dedup key (hash of provider, repo, ref, sha, kind,
-- action): a second trigger with the key is a duplicate until expires_at. The primary key
-- is what makes that hold when deliveries race, in one server or many.
CREATE TABLE trigger_dedup (
	key        text   NOT NULL PRIMARY KEY,
	trigger_id text   NOT NULL,
	expires_at bigint NOT NULL
);

CREATE INDEX trigger_dedup_expiry ON trigger_dedup (expires_at);
