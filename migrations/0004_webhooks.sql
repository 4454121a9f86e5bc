-- Webhooks (owned by voxi-webhooks): endpoints, one delivery per (endpoint, event), every
-- attempt of a delivery, the per-org secret that signs tool calls, and the audit trail.
--
-- A delivery is the unit of retry: its schedule (status, attempt_count, next_attempt_at)
-- lives here so that a crash loses nothing, and locked_until/locked_by say which instance
-- is attempting it now (a lock that outlives its instance simply expires).

-- Timestamps in API JSON: RFC 3339, UTC, milliseconds (like lc_time_format_rfc3339).
CREATE FUNCTION webhook_ts(t timestamptz) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $$;

CREATE TABLE webhook_endpoints (
    id text PRIMARY KEY,
    org_id text NOT NULL,
    url text NOT NULL,
    description text NOT NULL DEFAULT '',
    -- exact event types and wildcards ("call.*", "*"); empty = every event
    event_types text[] NOT NULL DEFAULT '{}',
    enabled boolean NOT NULL DEFAULT true,
    -- why an enabled=false endpoint is disabled: 'manual', 'gone' (410) or 'failing'
    disabled_reason text,
    metadata jsonb NOT NULL DEFAULT '{}',
    -- whsec_<base64>; the previous secret keeps signing until previous_secret_expires_at
    secret text NOT NULL,
    previous_secret text,
    previous_secret_expires_at timestamptz,
    -- first failed attempt since the last success (NULL while healthy)
    failing_since timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_org ON webhook_endpoints (org_id, created_at, id);

CREATE TABLE webhook_deliveries (
    id text PRIMARY KEY,
    org_id text NOT NULL,
    endpoint_id text NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id text NOT NULL,
    event_type text NOT NULL,
    -- the exact bytes sent (signatures cover them)
    payload text NOT NULL,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempt_count integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    locked_until timestamptz,
    locked_by text,
    last_status_code integer,
    last_error text,
    event_created_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- redelivered events are de-duplicated here
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at, id);

CREATE TABLE webhook_attempts (
    id text PRIMARY KEY,
    delivery_id text NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    org_id text NOT NULL,
    endpoint_id text NOT NULL,
    attempt integer NOT NULL,
    started_at timestamptz NOT NULL,
    duration_ms integer NOT NULL,
    status_code integer,          -- NULL when no HTTP response arrived
    error text,                   -- NULL on success
    response_body text NOT NULL DEFAULT '',  -- the first bytes of the response
    next_attempt_at timestamptz   -- when the next attempt is due after this one (NULL: none)
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, attempt);

-- Signs tool calls (voxi.webhooks.invoke) that do not bring their own secret.
CREATE TABLE webhook_org_secrets (
    org_id text PRIMARY KEY,
    secret text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_audit (
    id bigserial PRIMARY KEY,
    org_id text NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    principal_kind text NOT NULL,
    principal_id text NOT NULL,
    action text NOT NULL,          -- e.g. "webhook_endpoint.update"
    resource_type text NOT NULL,
    resource_id text NOT NULL,
    changes jsonb NOT NULL DEFAULT '{}',  -- never secrets
    request_id text NOT NULL DEFAULT ''
);
CREATE INDEX webhook_audit_org ON webhook_audit (org_id, at);

-- The three statements on voxi-webhooks' hot path, as functions so that each connection
-- plans them once (PL/pgSQL caches plans; a parameterised query sent as text is parsed and
-- planned on every call). Their result columns are what wh_delivery.h calls WH_JOB_COLUMNS.

-- Stores a batch of events from the stream: one delivery per enabled endpoint of the event's
-- org whose filter matches and that existed when the event happened. A redelivered event
-- adds nothing (UNIQUE (endpoint_id, event_id)). With `claim`, the new deliveries are locked
-- for `instance` and returned so it attempts them at once.
CREATE FUNCTION webhook_store_events(events json, claim boolean, lock_ms bigint, instance text)
RETURNS TABLE (id text, org_id text, endpoint_id text, event_id text, event_type text,
               payload text, attempt_count integer, url text, secret text,
               previous_secret text, event_created_ms bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH ev AS (
        SELECT * FROM json_to_recordset(events) AS x(id text, org text, type text, at text,
                                                      p json)
    ), d AS (
        INSERT INTO webhook_deliveries AS dd (id, org_id, endpoint_id, event_id, event_type,
            payload, next_attempt_at, locked_until, locked_by, event_created_at)
        SELECT 'wd_' || left(replace(gen_random_uuid()::text, '-', ''), 20), e.org_id, e.id,
            ev.id, ev.type, ev.p::text, now(),
            CASE WHEN claim THEN now() + make_interval(secs => lock_ms / 1000.0) END,
            CASE WHEN claim THEN instance END, ev.at::timestamptz
        FROM ev JOIN webhook_endpoints e ON e.org_id = ev.org AND e.enabled
            -- events from before the endpoint existed are not its business (1 s of slack
            -- for the producers' clocks)
            AND e.created_at <= ev.at::timestamptz + interval '1 second'
        WHERE cardinality(e.event_types) = 0 OR EXISTS (
            SELECT 1 FROM unnest(e.event_types) f(p)
            WHERE f.p = '*' OR f.p = ev.type
               OR (right(f.p, 2) = '.*' AND starts_with(ev.type, left(f.p, -1))))
        ON CONFLICT (endpoint_id, event_id) DO NOTHING
        RETURNING dd.*
    )
    SELECT d.id, d.org_id, d.endpoint_id, d.event_id, d.event_type, d.payload,
        d.attempt_count, ep.url, ep.secret,
        CASE WHEN ep.previous_secret_expires_at > now() THEN ep.previous_secret END,
        (extract(epoch FROM d.event_created_at) * 1000)::bigint
    FROM d JOIN webhook_endpoints ep ON ep.id = d.endpoint_id
    WHERE claim;
END $$;

-- Claims up to max_rows due deliveries of enabled endpoints for `instance` (a lock of lock_ms).
-- Always returns at least one row: due_in (ms until the next delivery not yet due, NULL when
-- none) comes with every row, and the job columns are NULL when nothing was due.
CREATE FUNCTION webhook_claim_due(max_rows integer, lock_ms bigint, instance text)
RETURNS TABLE (id text, org_id text, endpoint_id text, event_id text, event_type text,
               payload text, attempt_count integer, url text, secret text,
               previous_secret text, event_created_ms bigint, due_in bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH c AS (
        UPDATE webhook_deliveries d
        SET locked_until = now() + make_interval(secs => lock_ms / 1000.0), locked_by = instance
        FROM webhook_endpoints ep
        WHERE ep.id = d.endpoint_id AND d.id IN (
            SELECT d2.id FROM webhook_deliveries d2
            JOIN webhook_endpoints e2 ON e2.id = d2.endpoint_id AND e2.enabled
            WHERE d2.status = 'pending' AND d2.next_attempt_at <= now()
              AND (d2.locked_until IS NULL OR d2.locked_until < now())
            ORDER BY d2.next_attempt_at LIMIT max_rows FOR UPDATE OF d2 SKIP LOCKED)
        RETURNING d.id, d.org_id, d.endpoint_id, d.event_id, d.event_type, d.payload,
            d.attempt_count, ep.url, ep.secret,
            CASE WHEN ep.previous_secret_expires_at > now() THEN ep.previous_secret END
                AS previous_secret,
            (extract(epoch FROM d.event_created_at) * 1000)::bigint AS event_created_ms
    ), n AS (
        SELECT (extract(epoch FROM (min(w.next_attempt_at) - now())) * 1000)::bigint AS due_in
        FROM webhook_deliveries w WHERE w.status = 'pending' AND w.next_attempt_at > now()
    )
    SELECT c.id, c.org_id, c.endpoint_id, c.event_id, c.event_type, c.payload,
        c.attempt_count, c.url, c.secret, c.previous_secret, c.event_created_ms, n.due_in
    FROM n LEFT JOIN c ON true;
END $$;

-- Records a batch of attempt outcomes (records: JSON array, see wh_delivery.c): the attempts,
-- each delivery's new state, and its endpoint's health. An endpoint answering 410, or failing
-- without a success for disable_after_s, is disabled; those are returned. A release record
-- (rel) only clears the delivery's lock; a delivery no longer pending (its endpoint was
-- disabled meanwhile) keeps its state.
CREATE FUNCTION webhook_record_attempts(records json, disable_after_s double precision)
RETURNS TABLE (endpoint_id text, org_id text, disabled_reason text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH r AS (
        SELECT * FROM json_to_recordset(records) AS x(d text, n int, s bigint, ms int, c int,
            e text, b text, st text, nx bigint, ep text, org text, ok boolean, gone boolean,
            rel boolean)
    ), att AS (
        INSERT INTO webhook_attempts (id, delivery_id, org_id, endpoint_id, attempt,
            started_at, duration_ms, status_code, error, response_body, next_attempt_at)
        SELECT 'wa_' || left(replace(gen_random_uuid()::text, '-', ''), 20), r.d, r.org, r.ep,
            r.n, to_timestamp(r.s / 1000.0), r.ms, r.c, r.e, coalesce(r.b, ''),
            to_timestamp(r.nx / 1000.0)
        FROM r JOIN webhook_deliveries dd ON dd.id = r.d WHERE NOT r.rel
    ), del AS (
        UPDATE webhook_deliveries dd SET
            status = CASE WHEN r.rel OR dd.status <> 'pending' THEN dd.status ELSE r.st END,
            attempt_count = CASE WHEN r.rel THEN dd.attempt_count
                                 ELSE greatest(dd.attempt_count, r.n) END,
            next_attempt_at = CASE WHEN r.rel OR dd.status <> 'pending' THEN dd.next_attempt_at
                                   ELSE to_timestamp(r.nx / 1000.0) END,
            last_status_code = CASE WHEN r.rel THEN dd.last_status_code ELSE r.c END,
            last_error = CASE WHEN r.rel THEN dd.last_error ELSE r.e END,
            locked_until = NULL, locked_by = NULL, updated_at = now()
        FROM r WHERE dd.id = r.d
    ), agg AS (
        SELECT r.ep, bool_or(r.ok) AS any_ok, bool_or(r.gone) AS any_gone,
            to_timestamp(min(r.s) FILTER (WHERE NOT r.ok) / 1000.0) AS first_fail
        FROM r WHERE NOT r.rel GROUP BY r.ep
    ), upd AS (
        UPDATE webhook_endpoints e SET
            failing_since = CASE WHEN agg.any_ok AND NOT agg.any_gone THEN NULL
                                 ELSE coalesce(e.failing_since, agg.first_fail) END,
            enabled = NOT (agg.any_gone OR (NOT agg.any_ok AND coalesce(e.failing_since,
                agg.first_fail) < now() - make_interval(secs => disable_after_s))),
            disabled_reason = CASE WHEN agg.any_gone THEN 'gone'
                WHEN NOT agg.any_ok AND coalesce(e.failing_since, agg.first_fail)
                    < now() - make_interval(secs => disable_after_s) THEN 'failing' END
        FROM agg WHERE e.id = agg.ep AND e.enabled
            AND (agg.any_gone OR NOT agg.any_ok OR e.failing_since IS NOT NULL)
        RETURNING e.id, e.org_id, e.enabled, e.disabled_reason
    )
    SELECT upd.id, upd.org_id, upd.disabled_reason FROM upd WHERE NOT upd.enabled;
END $$;
