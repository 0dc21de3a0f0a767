-- Removing a user (internal/access) keeps their row, marked, so that their revoked tokens
-- and their audit entries still name someone; a removed user is neither found nor listed,
-- and their name may be taken again by a new user.
ALTER TABLE users ADD COLUMN removed_at TEXT;
