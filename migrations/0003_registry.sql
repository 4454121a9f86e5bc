-- Registry (owned by voxi-registry): agents, phone numbers and the registry's audit trail.
-- Applied by lc_migrate inside one transaction: no BEGIN/COMMIT here.
--
-- Every query the service runs filters by org_id. A change and its audit row are written by
-- one statement (data-modifying CTEs), so they commit together or not at all.

CREATE TABLE agents (
    id text PRIMARY KEY,
    org_id text NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    -- a copy of config->>'name' for operators' queries; the service keeps the two equal
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- the validated agent document with defaults filled in, without the server fields
    -- (id, object, version, created_at, updated_at)
    config jsonb NOT NULL CHECK (jsonb_typeof(config) = 'object'),
    -- 1 on create, +1 on every change (optimistic concurrency for PATCH)
    version integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- target of phone_numbers' same-org foreign key
    UNIQUE (org_id, id)
);
-- list pagination: WHERE org_id = $1 AND (created_at, id) > cursor ORDER BY created_at, id
CREATE INDEX agents_org_page ON agents (org_id, created_at, id);

CREATE TABLE phone_numbers (
    id text PRIMARY KEY,
    org_id text NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    -- E.164 (+15551234567) or a SIP user part; one owner across all orgs, since an inbound
    -- call is routed by the dialled number alone
    number text NOT NULL UNIQUE CHECK (length(number) BETWEEN 1 AND 64),
    agent_id text,
    trunk_uri text CHECK (length(trunk_uri) <= 2048),
    trunk_username text CHECK (length(trunk_username) <= 128),
    -- never returned by the API. "enc:v1:<base64 nonce|ciphertext|tag>" (AES-256-GCM with
    -- VOXI_REGISTRY_SECRET_KEY, bound to the number's id) or, when no key is configured,
    -- "plain:<password>" (see README, voxi-registry)
    trunk_password text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (trunk_uri IS NOT NULL OR (trunk_username IS NULL AND trunk_password IS NULL)),
    -- the agent must belong to the same org; deleting it unbinds the number (PostgreSQL 15
    -- column list: only agent_id is set to NULL, org_id stays)
    CONSTRAINT phone_numbers_agent_fk FOREIGN KEY (org_id, agent_id)
        REFERENCES agents (org_id, id) ON DELETE SET NULL (agent_id)
);
CREATE INDEX phone_numbers_org_page ON phone_numbers (org_id, created_at, id);
CREATE INDEX phone_numbers_agent ON phone_numbers (org_id, agent_id) WHERE agent_id IS NOT NULL;

CREATE TABLE registry_audit (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id text NOT NULL,
    -- who: the Envelope's principal ("api_key", "platform_admin", ...) and its id
    principal_kind text NOT NULL,
    principal_id text NOT NULL,
    action text NOT NULL,        -- "agent.create", "agent.update", "phone_number.delete", ...
    resource_type text NOT NULL, -- "agent", "phone_number"
    resource_id text NOT NULL,
    -- create: the document created; update: the merge patch applied; delete: {}.
    -- Secrets are never written here (passwords appear as "<redacted>").
    changes jsonb NOT NULL DEFAULT '{}',
    request_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX registry_audit_org ON registry_audit (org_id, created_at, id);
CREATE INDEX registry_audit_resource ON registry_audit (resource_id, created_at);
