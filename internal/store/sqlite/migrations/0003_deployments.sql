-- Deployment history: every deployment to an environment, kept to audit it and to redeploy
-- (roll back to) any earlier one.
CREATE TABLE deployments (
	id           TEXT NOT NULL PRIMARY KEY,
	environment  TEXT NOT NULL,
	started_at   TEXT NOT NULL,
	outcome      TEXT NOT NULL,
	-- data is the whole store.Deployment as JSON: its fields grow without migrations.
	data         TEXT NOT NULL
) STRICT;

CREATE INDEX deployments_env ON deployments (environment, started_at DESC, id DESC);
