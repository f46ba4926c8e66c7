-- API keys stored in the jobs' SQLite file (see docs/decisions/0001-api-keys.md).

-- name: create_table
CREATE TABLE IF NOT EXISTS api_keys (
    key_id      TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    tenant      TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at  REAL NOT NULL,
    revoked_at  REAL
)

-- name: insert
INSERT INTO api_keys (key_id, name, tenant, scopes, secret_hash, created_at, revoked_at)
VALUES (:key_id, :name, :tenant, :scopes, :secret_hash, :created_at, NULL)

-- name: get
SELECT * FROM api_keys WHERE key_id = :key_id

-- name: list
SELECT * FROM api_keys ORDER BY created_at, key_id

-- name: revoke
UPDATE api_keys SET revoked_at = :at WHERE key_id = :key_id AND revoked_at IS NULL
