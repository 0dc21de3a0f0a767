-- Team quotas set through the API (PUT /api/v1/teams/{team}/quota) outlive a restart; they
-- win over the server's --team-quota flags, which are only the starting point.
CREATE TABLE team_quotas (
	team        TEXT NOT NULL PRIMARY KEY,
	max_running INTEGER NOT NULL CHECK (max_running >= 0),
	updated_at  BIGINT NOT NULL
);
