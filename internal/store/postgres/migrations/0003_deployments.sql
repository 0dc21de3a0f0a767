-- Deployment history: every deployment to an environment, kept to audit it and to redeploy
-- (roll back to) any earlier one. data is the whole store.Deployment as JSON, so its
-- fields grow without migrations (json, not jsonb: Config comes back byte for byte); started_at is nanoseconds since the epoch.
CREATE TABLE deployments (
	id          text   COLLATE "C" NOT NULL PRIMARY KEY,
	environment text   NOT NULL,
	started_at  bigint NOT NULL,
	outcome     text   NOT NULL,
	data        json   NOT NULL
);

CREATE INDEX deployments_env ON deployments (environment, started_at DESC, id DESC);
