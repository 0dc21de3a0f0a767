-- The first schema: the event log, its run projection, log lines and registered repos.
--
-- Times are TEXT in one fixed-width UTC form (2006-01-02T15:04:05.000000000Z), so that
-- text order is time order and a row reads plainly in the sqlite3 shell; NULL means "not
-- yet" (finished_at of a run still going).

-- runs is the projection of each run's events, kept for listing. It is rewritten in the
-- same transaction as every append, so it never disagrees with the log.
CREATE TABLE runs (
	id          TEXT    NOT NULL PRIMARY KEY,
	repo        TEXT    NOT NULL,
	team        TEXT    NOT NULL,
	ref         TEXT    NOT NULL,
	sha         TEXT    NOT NULL,
	pipeline    TEXT    NOT NULL,
	"trigger"   TEXT    NOT NULL,
	phase       TEXT    NOT NULL,
	-- done is run.Phase.Done() of phase, stored so that the list of final phases lives
	-- only in the run package and "unfinished" can use an index.
	done        INTEGER NOT NULL,
	created_at  TEXT    NOT NULL,
	finished_at TEXT,
	last_seq    INTEGER NOT NULL
) STRICT;

-- Every list is newest first; the filters the API and the scheduler use each get an index
-- in that order, so a filtered page stops after Limit rows.
CREATE INDEX runs_created ON runs (created_at DESC, id DESC);
CREATE INDEX runs_repo ON runs (repo, created_at DESC, id DESC);
CREATE INDEX runs_team ON runs (team, created_at DESC, id DESC);
-- The scheduler reads every unfinished run at start; they are few among many.
CREATE INDEX runs_unfinished ON runs (created_at DESC, id DESC) WHERE done = 0;

-- events is the append-only log. The primary key is what makes two appends of the same
-- seq impossible even if a second process writes the file.
CREATE TABLE events (
	run_id TEXT    NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	seq    INTEGER NOT NULL,
	type   TEXT    NOT NULL,
	time   TEXT    NOT NULL,
	-- data is the whole run.Event as JSON: the event types grow without migrations.
	data   TEXT    NOT NULL,
	PRIMARY KEY (run_id, seq)
) STRICT;

-- logs holds each stage's output lines. seq is per run and stage; the key makes a
-- retried batch harmless (INSERT OR IGNORE).
CREATE TABLE logs (
	run_id TEXT    NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
	stage  TEXT    NOT NULL,
	seq    INTEGER NOT NULL,
	time   TEXT    NOT NULL,
	text   TEXT    NOT NULL,
	PRIMARY KEY (run_id, stage, seq)
) STRICT;

CREATE TABLE repos (
	full_name      TEXT NOT NULL PRIMARY KEY,
	clone_url      TEXT NOT NULL,
	team           TEXT NOT NULL,
	provider       TEXT NOT NULL,
	webhook_secret TEXT NOT NULL,
	created_at     TEXT NOT NULL
) STRICT;
