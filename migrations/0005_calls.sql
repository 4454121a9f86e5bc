-- Calls (owned by voxi-registry): one row per call, its transcript turns, and the events
-- already applied (JetStream delivers at least once: an event id is applied once).
--
-- Rows are written two ways: calls.create inserts an outbound call (status 'queued') with its
-- audit row; the call-event consumer applies call.* events with calls_apply_events(), which
-- creates the row of an inbound call on its first event. A call's status only moves forward
-- (queued < ringing < in_progress < ended | failed), so late or reordered events never move
-- it back; the first terminal event wins.

CREATE TABLE calls (
    id text PRIMARY KEY, -- the media call_id ("call_...")
    org_id text NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    -- no foreign keys: the history stays when an agent or number is deleted
    agent_id text,
    number_id text,
    direction text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    from_uri text NOT NULL DEFAULT '' CHECK (length(from_uri) <= 512),
    to_uri text NOT NULL DEFAULT '' CHECK (length(to_uri) <= 512),
    status text NOT NULL
        CHECK (status IN ('queued', 'ringing', 'in_progress', 'ended', 'failed')),
    worker_id text,
    sip_call_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,  -- call.started / call.ringing
    answered_at timestamptz,
    ended_at timestamptz,
    duration_ms bigint,      -- answered to end
    end_reason text,
    sip_code integer,
    codec text,
    rtp jsonb,               -- RTP/RTCP statistics of call.ended
    recording_path text,     -- on the worker `worker_id`
    recording_size_bytes bigint,
    usage jsonb,             -- {stt_seconds, llm_prompt_tokens, llm_completion_tokens, tts_characters}
    variables jsonb NOT NULL DEFAULT '{}',
    transfer jsonb,          -- {target, outcome, sip_code} of call.transferred
    dtmf text NOT NULL DEFAULT '', -- digits received, in arrival order (at most 256)
    last_event_seq bigint NOT NULL DEFAULT 0, -- highest VOXI_EVENTS stream sequence applied
    last_event_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- a cursor's row is looked up by (org_id, id)
    UNIQUE (org_id, id)
);
-- list pagination, newest first: WHERE org_id = $1 [AND filters] ORDER BY created_at DESC, id DESC
CREATE INDEX calls_org_page ON calls (org_id, created_at DESC, id DESC);
CREATE INDEX calls_org_agent ON calls (org_id, agent_id, created_at DESC, id DESC);
CREATE INDEX calls_org_status ON calls (org_id, status, created_at DESC, id DESC);

CREATE TABLE call_turns (
    call_id text NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    idx integer NOT NULL CHECK (idx BETWEEN 0 AND 100000),
    role text NOT NULL CHECK (role IN ('agent', 'caller')),
    text text NOT NULL DEFAULT '',
    start_ms bigint,         -- since answer
    end_ms bigint,
    interrupted boolean NOT NULL DEFAULT false,
    interrupted_at_ms bigint,
    -- agent turns: {caller_speech_end, stt_final, llm_first_token, tts_first_audio, first_rtp}
    latency jsonb,
    PRIMARY KEY (call_id, idx)
);

-- Event ids already applied. JetStream keeps events 7 days, so ids older than 8 days can
-- never come again and are pruned now and then by calls_apply_events.
CREATE TABLE call_events_applied (
    event_id text PRIMARY KEY,
    call_id text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX call_events_applied_at ON call_events_applied (applied_at);

-- The numeric members `keys` of an object (others dropped), or NULL when v is no object.
CREATE FUNCTION calls_numbers_of(v jsonb, keys text[]) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT CASE WHEN jsonb_typeof(v) = 'object' THEN
        (SELECT coalesce(jsonb_object_agg(k, v -> k), '{}'::jsonb) FROM unnest(keys) AS k
         WHERE jsonb_typeof(v -> k) = 'number')
    END $$;

CREATE FUNCTION calls_status_rank(s text) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE s WHEN 'queued' THEN 0 WHEN 'ringing' THEN 1 WHEN 'in_progress' THEN 2
                        ELSE 3 END $$;

-- Applies one event (the whole envelope) delivered as stream sequence seq. Returns
-- 'applied', 'duplicate', or 'ignored: <why>'. Raises on bad data (the caller catches).
CREATE FUNCTION calls_apply_event(ev jsonb, seq bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    d jsonb := ev -> 'data';
    typ text := ev ->> 'type';
    org text := ev ->> 'org_id';
    cid text := d ->> 'call_id';
    at timestamptz := (ev ->> 'created_at')::timestamptz;
    cur calls%ROWTYPE;
    next_status text;
    turn_idx integer;
BEGIN
    INSERT INTO call_events_applied (event_id, call_id) VALUES (ev ->> 'id', cid)
        ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN 'duplicate';
    END IF;
    SELECT * INTO cur FROM calls WHERE id = cid FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO calls (id, org_id, agent_id, direction, from_uri, to_uri, status, created_at)
        VALUES (cid, org, left(d ->> 'agent_id', 64),
                CASE WHEN d ->> 'direction' = 'outbound' THEN 'outbound' ELSE 'inbound' END,
                left(coalesce(d ->> 'from', ''), 512), left(coalesce(d ->> 'to', ''), 512),
                'queued', at)
        ON CONFLICT (id) DO NOTHING;
        SELECT * INTO cur FROM calls WHERE id = cid FOR UPDATE;
    END IF;
    IF cur.org_id <> org THEN
        RETURN 'ignored: the call belongs to another org';
    END IF;

    next_status := CASE typ
        WHEN 'call.started' THEN 'ringing'
        WHEN 'call.ringing' THEN 'ringing'
        WHEN 'call.ended' THEN 'ended'
        WHEN 'call.failed' THEN 'failed'
        WHEN 'call.answered' THEN 'in_progress'
        WHEN 'call.transcript' THEN 'in_progress'
        WHEN 'call.interrupted' THEN 'in_progress'
        ELSE cur.status END; -- dtmf, transferred: no change of status
    IF calls_status_rank(next_status) <= calls_status_rank(cur.status) THEN
        next_status := cur.status; -- never backwards; the first terminal status stays
    END IF;

    UPDATE calls SET
        status = next_status,
        agent_id = coalesce(agent_id, left(d ->> 'agent_id', 64)),
        from_uri = CASE WHEN from_uri = '' THEN left(coalesce(d ->> 'from', ''), 512)
                   ELSE from_uri END,
        to_uri = CASE WHEN to_uri = '' THEN left(coalesce(d ->> 'to', ''), 512) ELSE to_uri END,
        worker_id = coalesce(worker_id, left(d ->> 'worker_id', 128)),
        sip_call_id = coalesce(sip_call_id, left(d ->> 'sip_call_id', 256)),
        started_at = CASE WHEN typ IN ('call.started', 'call.ringing')
                     THEN least(coalesce(started_at, at), at) ELSE started_at END,
        answered_at = CASE
            WHEN typ = 'call.answered' THEN coalesce(answered_at, at)
            WHEN typ = 'call.ended' AND jsonb_typeof(d -> 'answered_at_ms') = 'number'
                THEN coalesce(answered_at, to_timestamp((d ->> 'answered_at_ms')::double precision / 1000))
            ELSE answered_at END,
        codec = coalesce(codec, left(d ->> 'codec', 32)),
        last_event_seq = greatest(last_event_seq, seq),
        last_event_at = greatest(last_event_at, at),
        updated_at = now()
    WHERE id = cid;

    IF typ IN ('call.ended', 'call.failed') AND cur.ended_at IS NULL THEN
        UPDATE calls SET
            ended_at = at,
            end_reason = left(d ->> 'reason', 128),
            duration_ms = CASE WHEN jsonb_typeof(d -> 'duration_ms') = 'number'
                          THEN (d ->> 'duration_ms')::bigint END,
            sip_code = CASE WHEN jsonb_typeof(d -> 'sip_code') = 'number'
                       THEN (d ->> 'sip_code')::integer END,
            rtp = CASE WHEN jsonb_typeof(d -> 'rtp') = 'object' THEN d -> 'rtp' END,
            recording_path = left(d ->> 'recording_path', 1024),
            recording_size_bytes = CASE WHEN jsonb_typeof(d -> 'recording_size_bytes') = 'number'
                                   THEN (d ->> 'recording_size_bytes')::bigint END,
            usage = calls_numbers_of(d -> 'usage', ARRAY['stt_seconds', 'llm_prompt_tokens',
                                     'llm_completion_tokens', 'tts_characters'])
        WHERE id = cid;
    ELSIF typ = 'call.transcript' THEN
        turn_idx := (d #>> '{turn,index}')::integer;
        INSERT INTO call_turns (call_id, idx, role, text, start_ms, end_ms, interrupted, latency)
        VALUES (cid, turn_idx, d #>> '{turn,role}', left(coalesce(d #>> '{turn,text}', ''), 20000),
                CASE WHEN jsonb_typeof(d #> '{turn,start_ms}') = 'number'
                     THEN (d #>> '{turn,start_ms}')::bigint END,
                CASE WHEN jsonb_typeof(d #> '{turn,end_ms}') = 'number'
                     THEN (d #>> '{turn,end_ms}')::bigint END,
                coalesce(d #> '{turn,interrupted}' = 'true'::jsonb, false),
                calls_numbers_of(d #> '{turn,latency_ms}', ARRAY['caller_speech_end',
                                 'stt_final', 'llm_first_token', 'tts_first_audio', 'first_rtp']))
        ON CONFLICT (call_id, idx) DO UPDATE SET
            role = excluded.role, text = excluded.text, start_ms = excluded.start_ms,
            end_ms = excluded.end_ms,
            interrupted = call_turns.interrupted OR excluded.interrupted,
            latency = coalesce(excluded.latency, call_turns.latency);
    ELSIF typ = 'call.interrupted' THEN
        turn_idx := (d ->> 'turn_index')::integer;
        -- the interruption may come before the turn's transcript: a placeholder it fills
        INSERT INTO call_turns (call_id, idx, role, interrupted, interrupted_at_ms)
        VALUES (cid, turn_idx, 'agent', true,
                CASE WHEN jsonb_typeof(d -> 'at_ms') = 'number' THEN (d ->> 'at_ms')::bigint END)
        ON CONFLICT (call_id, idx) DO UPDATE SET
            interrupted = true,
            interrupted_at_ms = coalesce(excluded.interrupted_at_ms, call_turns.interrupted_at_ms);
    ELSIF typ = 'call.dtmf' THEN
        UPDATE calls SET dtmf = left(dtmf || left(coalesce(d ->> 'digit', ''), 1), 256)
        WHERE id = cid;
    ELSIF typ = 'call.transferred' THEN
        UPDATE calls SET transfer = jsonb_build_object('target', left(d ->> 'target', 512),
                                                       'outcome', left(d ->> 'outcome', 32),
                                                       'sip_code', d -> 'sip_code')
        WHERE id = cid;
    END IF;
    RETURN 'applied';
END $$;

-- Applies a batch of events [{"seq": n, "event": {...}}, ...] in order, each on its own
-- (a bad event is reported, not fatal to the batch). One row per event, in order.
CREATE FUNCTION calls_apply_events(batch jsonb)
RETURNS TABLE (outcome text)
LANGUAGE plpgsql AS $$
DECLARE
    item jsonb;
BEGIN
    FOR item IN SELECT value FROM jsonb_array_elements(batch) LOOP
        BEGIN
            outcome := calls_apply_event(item -> 'event', (item ->> 'seq')::bigint);
        EXCEPTION WHEN data_exception OR integrity_constraint_violation THEN
            outcome := 'invalid: ' || SQLERRM;
        END;
        RETURN NEXT;
    END LOOP;
    IF random() < 0.001 THEN
        DELETE FROM call_events_applied WHERE applied_at < now() - interval '8 days';
    END IF;
END $$;
