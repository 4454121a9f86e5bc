-- Organisations: the tenant every other record belongs to.
-- Applied by lc_migrate inside one transaction: no BEGIN/COMMIT here.
CREATE TABLE orgs (
    id text PRIMARY KEY,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now()
);
