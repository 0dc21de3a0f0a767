-- Which secret holds a repo's forge token, and its forge's API (internal/forge).
ALTER TABLE repos ADD COLUMN forge_credential text NOT NULL DEFAULT '';
ALTER TABLE repos ADD COLUMN forge_api text NOT NULL DEFAULT '';
