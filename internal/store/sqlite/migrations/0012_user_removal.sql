-- Removing a user (internal/access) keeps their row, marked, so that their revoked tokens
-- and their audit entries still name someone; a removed user is neither found nor listed,
-- and their name may be taken again by a new user.
ALTER TABLE users ADD COLUMN removed_at TEXT;

-- A user made by an OIDC login (internal/access) belongs to that issuer: only a login from it
-- signs them in, and a local user of the same name is never taken over. '' for local users.
ALTER TABLE users ADD COLUMN issuer TEXT NOT NULL DEFAULT '';
