-- API keys of the job service, stored hashed (docs/decisions/0001-api-keys.md).
-- IF NOT EXISTS: files written by Conveyor before keys moved into the engine already have this
-- table (created on first use by the old key store); it is adopted as it is.
CREATE TABLE IF NOT EXISTS api_keys (
    key_id      TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    tenant      TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at  REAL NOT NULL,
    revoked_at  REAL
);

-- The verifier looks keys up by the hash of the presented secret.
CREATE UNIQUE INDEX IF NOT EXISTS api_keys_secret_hash ON api_keys (secret_hash);
