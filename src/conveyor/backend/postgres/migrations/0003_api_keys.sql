-- API keys of the job service, stored hashed (docs/decisions/0001-api-keys.md), in the engine's
-- schema like every other table.

CREATE TABLE {schema}.api_keys (
    key_id      text COLLATE "C" PRIMARY KEY,
    name        text NOT NULL,
    tenant      text NOT NULL,
    scopes      text NOT NULL,
    secret_hash text NOT NULL,
    created_at  double precision NOT NULL,
    revoked_at  double precision
);

-- The verifier looks keys up by the hash of the presented secret.
CREATE UNIQUE INDEX api_keys_secret_hash ON {schema}.api_keys (secret_hash);

-- Before keys moved into the engine, a separate store created "conveyor_api_keys" on first
-- use, in the connection's default schema. Its keys are carried over so they keep working;
-- the old table is left in place (drop it once this migration ran everywhere).
DO $$
BEGIN
    IF to_regclass('conveyor_api_keys') IS NOT NULL THEN
        INSERT INTO {schema}.api_keys (key_id, name, tenant, scopes, secret_hash, created_at, revoked_at)
        SELECT key_id, name, tenant, scopes, secret_hash, created_at, revoked_at FROM conveyor_api_keys
        ON CONFLICT DO NOTHING;
    END IF;
END
$$;
