-- Auth (owned by voxi-auth): API keys, per-org rate-limit overrides, shared rate-limit
-- state and auth's audit trail. Applied by lc_migrate inside one transaction: no
-- BEGIN/COMMIT here.
--
-- A change and its audit row are written by one statement (data-modifying CTEs), so they
-- commit together or not at all. Every query on org data filters by org_id.

CREATE TABLE api_keys (
    id text PRIMARY KEY CHECK (id ~ '^key_[0-9a-f]{20}$'),
    org_id text NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- the first 12 characters of the key ("vx_" + 9), shown in listings
    prefix text NOT NULL CHECK (length(prefix) = 12),
    -- SHA-256 of the whole key; the key itself is never stored. The unique index is the
    -- authentication hot path's lookup.
    secret_hash bytea NOT NULL UNIQUE CHECK (length(secret_hash) = 32),
    scopes text[] NOT NULL,
    -- platform:admin on top of every scope; only `voxi-auth bootstrap` creates such keys
    platform_admin boolean NOT NULL DEFAULT false,
    expires_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- written lazily: at most about once a minute per key
    last_used_at timestamptz,
    revoked_at timestamptz
);
-- list pagination: WHERE org_id = $1 AND (created_at, id) > cursor ORDER BY created_at, id
CREATE INDEX api_keys_org_page ON api_keys (org_id, created_at, id);

-- Per-org rate limits, requests per minute by route class; NULL = the service default
-- (VOXI_AUTH_RATE_READ_PER_MIN / VOXI_AUTH_RATE_WRITE_PER_MIN). Read with the key on a
-- cache miss, so a change takes effect within the key cache TTL.
CREATE TABLE org_limits (
    org_id text PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
    read_per_min integer CHECK (read_per_min BETWEEN 1 AND 10000000),
    write_per_min integer CHECK (write_per_min BETWEEN 1 AND 10000000),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Shared GCRA state, one row per bucket ("k:<key id>:read", "ip:<address>", ...): the
-- bucket's theoretical arrival time. Auth instances lease a few tokens at a time with one
-- INSERT ... ON CONFLICT DO UPDATE (see services/auth/ratelimit.c). A missing row means a
-- full bucket, so rows whose tat has passed are deleted by a periodic sweep.
--
-- UNLOGGED: this is hot, rewritten state that is worthless after a crash (buckets would
-- start full again, which is also what a new deployment does); skipping the WAL keeps a
-- lease cheap. No index on tat: it changes on every lease and an index would prevent HOT
-- updates; the sweep scans.
CREATE UNLOGGED TABLE rate_limit_buckets (
    bucket text PRIMARY KEY CHECK (length(bucket) <= 200),
    tat timestamptz NOT NULL,
    -- tokens the last lease granted (so RETURNING can report it)
    granted integer NOT NULL DEFAULT 0
) WITH (fillfactor = 70);

CREATE TABLE auth_audit (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id text NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    at timestamptz NOT NULL DEFAULT now(),
    -- who: the Envelope's principal ("api_key", "platform_admin", "jwt", "system") and id
    principal_kind text NOT NULL,
    principal_id text NOT NULL,
    action text NOT NULL,        -- "org.create", "api_key.create", "api_key.revoke"
    resource_type text NOT NULL, -- "org", "api_key"
    resource_id text NOT NULL,
    -- what changed; never a secret (key hashes and keys are not written here)
    changes jsonb NOT NULL DEFAULT '{}',
    request_id text NOT NULL DEFAULT ''
);
CREATE INDEX auth_audit_org_at ON auth_audit (org_id, at);
