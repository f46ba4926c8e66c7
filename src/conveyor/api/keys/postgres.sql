-- API keys stored in the jobs' PostgreSQL database (see docs/decisions/0001-api-keys.md).

-- name: create_table
CREATE TABLE IF NOT EXISTS conveyor_api_keys (
    key_id      TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    tenant      TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    revoked_at  DOUBLE PRECISION
)

-- name: insert
INSERT INTO conveyor_api_keys (key_id, name, tenant, scopes, secret_hash, created_at, revoked_at)
VALUES (%(key_id)s, %(name)s, %(tenant)s, %(scopes)s, %(secret_hash)s, %(created_at)s, NULL)

-- name: get
SELECT * FROM conveyor_api_keys WHERE key_id = %(key_id)s

-- name: list
SELECT * FROM conveyor_api_keys ORDER BY created_at, key_id

-- name: revoke
UPDATE conveyor_api_keys SET revoked_at = %(at)s WHERE key_id = %(key_id)s AND revoked_at IS NULL
