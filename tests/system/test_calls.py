"""Calls in the registry: records built from call events (durable JetStream consumer,
idempotent, never backwards), outbound calls through a real voxi-media and SIPp, hangup,
recordings, tenancy, validation, pagination and filters.

The registry here has its own nats-server (voxi.media.dial is a queue group: only this
module's media workers may take the dials) and the session's database. Call events are
published as the media worker does: JSON envelopes into the VOXI_EVENTS stream, through a
small NATS client speaking the core protocol over a socket (JetStream acks awaited).
Requests go over the bus like the gateway sends them (tests/tools/voxi_api_call).
"""
import json
import os
import secrets
import socket
import subprocess
import time
from datetime import datetime, timedelta, timezone

import pytest

from conftest import TOOLS, Api, Nats, Service, base_env, http_get, wait_for
from media_util import (Media, free_rtp_range, free_udp_tcp_port, media_tmp,  # noqa: F401
                        pcmu_audio, scenario)

SECRET_KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
PRICES = ("telephony_per_min=0.02,stt_per_min=0.006,llm_per_1k_prompt_tokens=0.0005,"
          "llm_per_1k_completion_tokens=0.0015,tts_per_1k_chars=0.015,currency=EUR")


def flow_agent(name="Caller"):
    return {"name": name,
            "response_engine": {"type": "flow", "start": "hello", "nodes": [
                {"id": "hello", "type": "say", "text": "Hello {{name}}", "next": "bye"},
                {"id": "bye", "type": "hangup", "message": "Goodbye"}]}}


def rfc3339(dt):
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{dt.microsecond // 1000:03d}Z"


class JetStream:
    """Publishes into JetStream over the core NATS protocol and waits for each ack."""

    def __init__(self, url):
        host, port = url.replace("nats://", "").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.file = self.sock.makefile("rb")
        self.file.readline()  # INFO
        self.sock.sendall(b'CONNECT {"verbose":false,"pedantic":false,"headers":true,'
                          b'"no_responders":true,"protocol":1,"name":"test_calls"}\r\n'
                          b'SUB _INBOX.calls.* 1\r\nPING\r\n')
        self._until_pong()
        self.n = 0

    def _until_pong(self):
        while True:
            line = self.file.readline()
            assert line, "NATS closed the connection"
            if line.startswith(b"PONG"):
                return
            assert not line.startswith(b"-ERR"), line

    def publish(self, subject, payload, msg_id=None):
        """Returns the JetStream ack ({"stream","seq"[,"duplicate"]})."""
        self.n += 1
        inbox = f"_INBOX.calls.{self.n}"
        if msg_id is None:
            self.sock.sendall(f"PUB {subject} {inbox} {len(payload)}\r\n".encode() + payload +
                              b"\r\n")
        else:
            hdr = f"NATS/1.0\r\nNats-Msg-Id: {msg_id}\r\n\r\n".encode()
            self.sock.sendall(f"HPUB {subject} {inbox} {len(hdr)} {len(hdr) + len(payload)}"
                              "\r\n".encode() + hdr + payload + b"\r\n")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            line = self.file.readline()
            assert line, "NATS closed the connection"
            if line.startswith(b"PING"):
                self.sock.sendall(b"PONG\r\n")
                continue
            parts = line.split()
            if parts[0] == b"MSG":
                data = self.file.read(int(parts[-1]) + 2)[:-2]
                if parts[1].decode() == inbox:
                    ack = json.loads(data)
                    assert "error" not in ack, ack
                    return ack
            elif parts[0] == b"HMSG":
                total = int(parts[-1])
                data = self.file.read(total + 2)
                if parts[1].decode() == inbox:
                    raise AssertionError(f"no JetStream ack: {data!r}")
        raise AssertionError("no JetStream ack in 10 s")

    def close(self):
        self.sock.close()


class Env:
    def __init__(self, nats, registry, pg):
        self.nats = nats
        self.url = nats.url
        self.registry = registry
        self.pg = pg
        self.js = JetStream(nats.url)

    def new_org(self):
        org = "org_" + secrets.token_hex(10)
        self.pg.psql(f"INSERT INTO orgs (id, name) VALUES ('{org}', 'calls test')")
        return org

    # ---- bus requests

    def call(self, verb, org, id=None, body=None, raw=None, limit=None, starting_after=None,
             timeout_ms=10000):
        cmd = [os.path.join(TOOLS, "voxi_api_call"), self.url, f"voxi.registry.{verb}", org,
               "--principal", "api_key:key_test", "--timeout-ms", str(timeout_ms)]
        if id is not None:
            cmd += ["--id", id]
        if body is not None or raw is not None:
            cmd += ["--json", raw if raw is not None else json.dumps(body)]
        if limit is not None:
            cmd += ["--limit", str(limit)]
        if starting_after is not None:
            cmd += ["--starting-after", starting_after]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            return out.returncode, out.stderr
        return 0, json.loads(out.stdout)

    def ok(self, verb, org, status, **kw):
        code, reply = self.call(verb, org, **kw)
        assert code == 0, reply
        assert "error" not in reply, reply
        assert reply["http_status"] == status, reply
        return reply["json"]

    def error(self, verb, org, status, **kw):
        code, reply = self.call(verb, org, **kw)
        assert code == 0, reply
        assert "error" in reply, reply
        assert reply["error"]["status"] == status, reply
        return reply["error"]

    def fields(self, verb, org, **kw):
        err = self.error(verb, org, "invalid", **kw)
        return {f["field"]: f["message"] for f in err["fields"]}

    def get(self, org, call_id):
        return self.ok("calls.get", org, 200, id=call_id)

    def wait_call(self, org, call_id, pred, what, timeout=20):
        seen = {}

        def check():
            code, reply = self.call("calls.get", org, id=call_id)
            if code != 0 or "error" in reply:
                return False
            seen["call"] = reply["json"]
            return pred(reply["json"])
        try:
            wait_for(check, timeout, what)
        except AssertionError:
            raise AssertionError(f"{what}; last seen: {seen.get('call')}")
        return seen["call"]

    # ---- events

    def event(self, org, type_, data, id=None, at=None, msg_id=None):
        ev = {"id": id or "evt_" + secrets.token_hex(10), "type": type_,
              "created_at": rfc3339(at or datetime.now(timezone.utc)), "org_id": org,
              "data": data}
        self.js.publish(f"voxi.events.{org}.{type_}", json.dumps(ev).encode(), msg_id=msg_id)
        return ev

    def metric(self, outcome):
        text = http_get(self.registry.health_port, "/metrics")[2]
        for line in text.splitlines():
            if line.startswith(f'voxi_registry_call_events_total{{outcome="{outcome}"}}'):
                return float(line.split()[-1])
        return 0.0


@pytest.fixture(scope="module")
def own_nats(tmp_root):
    """This module's own nats-server (see the module docstring)."""
    n = Nats(tmp_root)
    n.start()
    yield n
    n.stop()


@pytest.fixture(scope="module")
def env(tmp_root, own_nats, migrated):
    e = base_env(own_nats.url, migrated)
    e["VOXI_REGISTRY_SECRET_KEY"] = SECRET_KEY
    e["VOXI_REGISTRY_PRICES"] = PRICES
    registry = Service("registry", e, tmp_root).start()
    env = Env(own_nats, registry, migrated)
    env.tmp = tmp_root
    try:
        env.registry.wait_ready()
        yield env
        env.js.close()
        assert env.registry.stop() == 0, env.registry.read_log()[-4000:]
    finally:
        env.registry.stop()


def new_call_id():
    return "call_" + secrets.token_hex(10)


def inbound_events(env, org, call_id, t0, agent_id=None):
    """The events of an answered inbound call with a short conversation, in order."""
    base = {"call_id": call_id, "sip_call_id": "abc@host", "direction": "inbound",
            "from": "sip:+15550001111@carrier", "to": "sip:+15552223333@voxi"}
    if agent_id:
        base["agent_id"] = agent_id
    at = lambda s: t0 + timedelta(seconds=s)  # noqa: E731
    return [
        ("call.started", dict(base), at(0)),
        ("call.ringing", dict(base), at(0.1)),
        ("call.answered", dict(base, codec="PCMU"), at(1)),
        ("call.transcript", {"call_id": call_id, "turn": {
            "index": 0, "role": "agent", "text": "Hello, how can I help?", "start_ms": 100,
            "end_ms": 1900, "interrupted": False,
            "latency_ms": {"first_rtp": 80}}}, at(3)),
        ("call.transcript", {"call_id": call_id, "turn": {
            "index": 1, "role": "caller", "text": "I would like to book a table.",
            "start_ms": 2500, "end_ms": 4200, "interrupted": False}}, at(5)),
        ("call.interrupted", {"call_id": call_id, "turn_index": 2, "at_ms": 6100}, at(6.1)),
        ("call.transcript", {"call_id": call_id, "turn": {
            "index": 2, "role": "agent", "text": "Sure, for how many", "start_ms": 5000,
            "end_ms": 6100, "interrupted": True,
            "latency_ms": {"caller_speech_end": 4200, "stt_final": 4350,
                           "llm_first_token": 4600, "tts_first_audio": 4800,
                           "first_rtp": 4820}}}, at(6.2)),
        ("call.dtmf", dict(base, digit="5", source="rfc4733"), at(7)),
        ("call.ended", dict(base, reason="remote_hangup", duration_ms=90000,
                            answered_at_ms=int(at(1).timestamp() * 1000), codec="PCMU",
                            rtp={"packets_in": 4500, "packets_out": 4400, "lost": 0},
                            recording_path="/var/lib/voxi/rec/x.wav",
                            usage={"stt_seconds": 120, "llm_prompt_tokens": 3000,
                                   "llm_completion_tokens": 1000, "tts_characters": 2000}),
         at(91)),
    ]


# ------------------------------------------------------------------ events -> call record

def test_events_build_the_call_record_with_transcript_usage_and_cost(env):
    org = env.new_org()
    call_id = new_call_id()
    t0 = datetime.now(timezone.utc).replace(microsecond=0)
    agent_id = "agt_" + secrets.token_hex(10)
    for type_, data, at in inbound_events(env, org, call_id, t0, agent_id):
        env.event(org, type_, data, at=at)
    call = env.wait_call(org, call_id, lambda c: c["status"] == "ended" and c["dtmf"] == "5"
                         and len(c["transcript"]) == 3, "the ended call with its transcript")
    assert call["object"] == "call" and call["id"] == call_id
    assert call["agent_id"] == agent_id
    assert call["direction"] == "inbound"
    assert call["from"] == "sip:+15550001111@carrier" and call["to"] == "sip:+15552223333@voxi"
    assert call["created_at"] == rfc3339(t0)
    assert call["started_at"] == rfc3339(t0)
    assert call["answered_at"] == rfc3339(t0 + timedelta(seconds=1))
    assert call["ended_at"] == rfc3339(t0 + timedelta(seconds=91))
    assert call["duration_ms"] == 90000
    assert call["end_reason"] == "remote_hangup"
    assert call["codec"] == "PCMU"
    assert call["rtp"]["packets_in"] == 4500
    assert call["recording_url"] is None  # a path, but no worker known: nothing to stream
    assert [t["index"] for t in call["transcript"]] == [0, 1, 2]
    assert [t["role"] for t in call["transcript"]] == ["agent", "caller", "agent"]
    assert call["transcript"][1]["text"] == "I would like to book a table."
    assert call["transcript"][1]["latency_ms"] is None
    last = call["transcript"][2]
    assert last["interrupted"] is True and last["text"] == "Sure, for how many"
    assert last["start_ms"] == 5000 and last["end_ms"] == 6100
    assert last["latency_ms"] == {"caller_speech_end": 4200, "stt_final": 4350,
                                  "llm_first_token": 4600, "tts_first_audio": 4800,
                                  "first_rtp": 4820}
    assert call["usage"] == {"stt_seconds": 120, "llm_prompt_tokens": 3000,
                             "llm_completion_tokens": 1000, "tts_characters": 2000}
    cost = call["cost"]
    assert cost["currency"] == "EUR"
    assert cost["telephony"] == pytest.approx(1.5 * 0.02)
    assert cost["stt"] == pytest.approx(2 * 0.006)
    assert cost["llm"] == pytest.approx(3 * 0.0005 + 1 * 0.0015)
    assert cost["tts"] == pytest.approx(2 * 0.015)
    assert cost["total"] == pytest.approx(0.03 + 0.012 + 0.003 + 0.03)


def test_duplicates_and_reordering_are_harmless(env):
    org = env.new_org()
    call_id = new_call_id()
    t0 = datetime.now(timezone.utc).replace(microsecond=0)
    events = inbound_events(env, org, call_id, t0)
    # everything in reverse: ended first, then answered, ringing, started must not reopen it
    published = [env.event(org, type_, data, at=at) for type_, data, at in reversed(events)]
    # the same events again (a redelivery): same ids, different content that must not count
    for ev in published:
        again = dict(ev, data=dict(ev["data"]))
        if ev["type"] == "call.transcript":
            again["data"]["turn"] = dict(ev["data"]["turn"], text="CHANGED")
        if ev["type"] == "call.dtmf":
            again["data"]["digit"] = "9"
        env.js.publish(f"voxi.events.{org}.{ev['type']}", json.dumps(again).encode())
    # a last event: once it shows, every event before it has been applied (in order)
    env.event(org, "call.dtmf", {"call_id": call_id, "digit": "7"}, at=t0)
    call = env.wait_call(org, call_id, lambda c: c["dtmf"].endswith("7"), "the last event")
    assert call["dtmf"] == "57"  # the duplicate "9" was not applied
    assert call["status"] == "ended"  # not moved back by answered/ringing/started
    assert call["started_at"] == rfc3339(t0)
    assert call["answered_at"] == rfc3339(t0 + timedelta(seconds=1))
    assert call["ended_at"] == rfc3339(t0 + timedelta(seconds=91))
    assert call["end_reason"] == "remote_hangup"
    assert [t["text"] for t in call["transcript"]] == [
        "Hello, how can I help?", "I would like to book a table.", "Sure, for how many"]
    assert call["transcript"][2]["interrupted"] is True
    assert env.metric("duplicate") >= len(published)


def test_first_terminal_event_wins_and_late_events_fill_gaps(env):
    org = env.new_org()
    call_id = new_call_id()
    t0 = datetime.now(timezone.utc).replace(microsecond=0)
    base = {"call_id": call_id, "direction": "outbound", "from": "sip:voxi@h", "to": "sip:b@h"}
    env.event(org, "call.failed", dict(base, reason="busy", sip_code=486),
              at=t0 + timedelta(seconds=3))
    env.event(org, "call.ended", dict(base, reason="remote_hangup", duration_ms=5),
              at=t0 + timedelta(seconds=4))
    env.event(org, "call.ringing", dict(base, sip_code=180), at=t0)
    call = env.wait_call(org, call_id, lambda c: c["started_at"] is not None, "ringing applied")
    assert call["status"] == "failed"
    assert call["end_reason"] == "busy" and call["sip_code"] == 486
    assert call["duration_ms"] is None and call["direction"] == "outbound"
    assert call["cost"]["telephony"] == 0


def test_malformed_events_are_dropped_and_do_not_block(env):
    org = env.new_org()
    call_id = new_call_id()
    before = env.metric("invalid")
    env.js.publish(f"voxi.events.{org}.call.ended", b"{not json")
    env.event(org, "call.transcript", {"call_id": call_id, "turn": {"index": -1, "role": "x"}})
    env.event(org, "call.started", {"call_id": "bad id with spaces"})
    env.event(org, "call.started", {"call_id": call_id, "direction": "inbound",
                                    "from": "a", "to": "b"})
    call = env.wait_call(org, call_id, lambda c: c["status"] == "ringing", "the valid event")
    assert call["transcript"] == []
    wait_for(lambda: env.metric("invalid") >= before + 3, 10, "invalid events counted")


def test_events_of_another_org_do_not_touch_a_call(env):
    org_a, org_b = env.new_org(), env.new_org()
    call_id = new_call_id()
    env.event(org_a, "call.started", {"call_id": call_id, "direction": "inbound",
                                      "from": "a", "to": "b"})
    env.wait_call(org_a, call_id, lambda c: c["status"] == "ringing", "call of A")
    env.event(org_b, "call.ended", {"call_id": call_id, "reason": "hijack", "duration_ms": 1})
    env.event(org_a, "call.dtmf", {"call_id": call_id, "digit": "1"})
    call = env.wait_call(org_a, call_id, lambda c: c["dtmf"] == "1", "the marker event")
    assert call["status"] == "ringing" and call["end_reason"] is None
    env.error("calls.get", org_b, "not_found", id=call_id)


def test_events_published_while_the_registry_is_down_are_applied_after_restart(env):
    """The consumer is durable: what was published meanwhile waits in JetStream."""
    org = env.new_org()
    call_id = new_call_id()
    assert env.registry.stop() == 0, env.registry.read_log()[-4000:]
    t0 = datetime.now(timezone.utc).replace(microsecond=0)
    for type_, data, at in inbound_events(env, org, call_id, t0):
        env.event(org, type_, data, at=at)
    env.registry = Service("registry", env.registry.env, env.tmp).start()
    env.registry.wait_ready()
    call = env.wait_call(org, call_id, lambda c: c["status"] == "ended" and c["dtmf"] == "5",
                         "the events published while the registry was down")
    assert len(call["transcript"]) == 3


# ------------------------------------------------------------------ API: tenancy, validation

def test_tenancy(env):
    org_a, org_b = env.new_org(), env.new_org()
    call_id = new_call_id()
    env.event(org_a, "call.answered", {"call_id": call_id, "direction": "inbound",
                                       "from": "a", "to": "b"})
    env.wait_call(org_a, call_id, lambda c: c["status"] == "in_progress", "call of A")
    for verb in ("calls.get", "calls.hangup", "calls.recording"):
        env.error(verb, org_b, "not_found", id=call_id)
    assert env.ok("calls.list", org_b, 200)["data"] == []
    assert [c["id"] for c in env.ok("calls.list", org_a, 200)["data"]] == [call_id]
    for bad in ("", "call_x", "agt_" + "0" * 20, "../etc"):
        env.error("calls.get", org_a, "not_found", id=bad)


def test_create_validation_names_every_field(env):
    org = env.new_org()
    f = env.fields("calls.create", org, body={"to": "5551234", "from": "a b",
                                             "number_id": "nope", "variables": {"a": 1},
                                             "colour": "red"})
    assert f.keys() == {"agent_id", "to", "from", "number_id", "variables.a", "colour"}, f
    assert "required" in f["agent_id"]
    f = env.fields("calls.create", org, body={"agent_id": "agt_1", "to": "sip:" + "a" * 300,
                                             "variables": {"big": "x" * 5000}})
    assert f.keys() == {"agent_id", "to", "variables"}, f
    f = env.fields("calls.create", org, body={"agent_id": "x", "to": "+1555", "variables": []})
    assert f.keys() == {"agent_id", "variables"}, f  # +1555 is E.164 enough
    env.error("calls.create", org, "invalid", raw="[1]")
    env.error("calls.create", org, "invalid", raw="{")


def test_create_refers_only_to_the_orgs_own_agent_and_number(env):
    org_a, org_b = env.new_org(), env.new_org()
    agent_b = env.ok("agents.create", org_b, 201, body=flow_agent())
    number_b = env.ok("numbers.create", org_b, 201,
                      body={"number": "+1555" + str(secrets.randbelow(10**7)).zfill(7)})
    f = env.fields("calls.create", org_a, body={"agent_id": agent_b["id"], "to": "+15551234567",
                                               "number_id": number_b["id"]})
    assert f.keys() == {"agent_id", "number_id"}, f
    assert env.ok("calls.list", org_a, 200)["data"] == []


def test_create_without_media_worker_is_503_and_the_call_failed(env):
    org = env.new_org()
    agent = env.ok("agents.create", org, 201, body=flow_agent())
    err = env.error("calls.create", org, "unavailable",
                    body={"agent_id": agent["id"], "to": "+15551234567",
                          "variables": {"name": "Ada"}})
    assert "media worker" in err["message"]
    calls = env.ok("calls.list", org, 200)["data"]
    assert len(calls) == 1
    call = env.get(org, calls[0]["id"])
    assert call["status"] == "failed" and call["end_reason"] == "no_media_worker"
    assert call["direction"] == "outbound" and call["agent_id"] == agent["id"]
    assert call["variables"] == {"name": "Ada"}
    rows = env.pg.psql(f"SELECT action, resource_id FROM registry_audit WHERE org_id = '{org}' "
                       "AND resource_type = 'call'")
    assert f"call.create|{call['id']}" in rows
    env.error("calls.hangup", org, "conflict", id=call["id"])  # it has ended


def test_hangup_of_a_call_without_reachable_worker_is_503(env):
    org = env.new_org()
    call_id = new_call_id()
    env.event(org, "call.answered", {"call_id": call_id, "direction": "inbound",
                                     "from": "a", "to": "b"})
    env.wait_call(org, call_id, lambda c: c["status"] == "in_progress", "answered call")
    env.error("calls.hangup", org, "unavailable", id=call_id)


def test_recording_reference(env):
    org = env.new_org()
    call_id = new_call_id()
    env.event(org, "call.started", {"call_id": call_id, "direction": "inbound", "from": "a",
                                    "to": "b", "worker_id": "media-w1"})
    env.wait_call(org, call_id, lambda c: c["status"] == "ringing", "started")
    env.error("calls.recording", org, "not_found", id=call_id)  # no recording yet
    env.event(org, "call.ended", {"call_id": call_id, "reason": "remote_hangup",
                                  "duration_ms": 1000, "recording_path": "/rec/c.wav",
                                  "recording_size_bytes": 32044})
    call = env.wait_call(org, call_id, lambda c: c["status"] == "ended", "ended")
    assert call["recording_url"] == f"/v1/calls/{call_id}/recording"
    rec = env.ok("calls.recording", org, 200, id=call_id)
    assert rec == {"worker_id": "media-w1", "recording_path": "/rec/c.wav", "size_bytes": 32044}


# ------------------------------------------------------------------ API: list

def test_pagination_and_filters(env):
    org = env.new_org()
    agent_a, agent_b = "agt_" + "a" * 20, "agt_" + "b" * 20
    t0 = datetime(2026, 1, 10, 12, 0, 0, tzinfo=timezone.utc)
    ids = []
    for i in range(7):
        call_id = new_call_id()
        ids.append(call_id)
        data = {"call_id": call_id, "direction": "inbound", "from": "a", "to": "b",
                "agent_id": agent_a if i % 2 == 0 else agent_b}
        env.event(org, "call.answered" if i < 4 else "call.started", data,
                  at=t0 + timedelta(hours=i))
    env.wait_call(org, ids[-1], lambda c: True, "the last call")
    newest_first = list(reversed(ids))

    seen, cursor = [], None
    for _ in range(4):
        page = env.ok("calls.list", org, 200, limit=3, starting_after=cursor)
        assert page["object"] == "list"
        seen += [c["id"] for c in page["data"]]
        assert "transcript" not in page["data"][0]
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        cursor = page["next_cursor"]
        assert cursor == page["data"][-1]["id"]
    assert seen == newest_first

    def listed(**filters):
        return [c["id"] for c in env.ok("calls.list", org, 200, body=filters)["data"]]
    assert listed(agent_id=agent_a) == [ids[6], ids[4], ids[2], ids[0]]
    assert listed(status="in_progress") == [ids[3], ids[2], ids[1], ids[0]]
    assert listed(status="ringing", agent_id=agent_b) == [ids[5]]
    assert listed(created_after=rfc3339(t0 + timedelta(hours=5))) == [ids[6], ids[5]]
    assert listed(created_before="2026-01-10T14:00:00+00:00") == [ids[1], ids[0]]
    assert listed(created_after="2026-01-10T13:00:00Z",
                  created_before="2026-01-10T15:00:00Z") == [ids[2], ids[1]]
    assert listed(status="ended") == []
    f = env.fields("calls.list", org, body={"status": "done", "agent_id": "x",
                                           "created_after": "yesterday", "sort": "asc"})
    assert f.keys() == {"status", "agent_id", "created_after", "sort"}, f
    f = env.fields("calls.list", org, starting_after="call_" + "0" * 20)
    assert "starting_after" in f


# ------------------------------------------------------------------ outbound with voxi-media

UAS_ANSWER_WAIT_BYE = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="answers, plays audio, waits for our BYE">
  <recv request="INVITE"/>
  <send>
    <![CDATA[

      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:callee@[local_ip]:[local_port]>
      Content-Length: 0

    ]]>
  </send>
  <send retrans="500">
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:callee@[local_ip]:[local_port]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=callee 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000

    ]]>
  </send>
  <recv request="ACK"/>
  <nop><action><exec rtp_stream="@AUDIO@,-1,0"/></action></nop>
  <recv request="BYE"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
</scenario>
"""


class SippUas:
    def __init__(self, xml, tmp):
        self.port = free_udp_tcp_port()
        self.proc = subprocess.Popen(
            ["sipp", "-sf", xml, "-i", "127.0.0.1", "-p", str(self.port), "-mp",
             str(free_rtp_range(8)[0]), "-m", "1", "-timeout", "60s", "-timeout_error",
             "-nostdin", "-trace_err", "-error_file", os.path.join(tmp, "uas-err.log")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp)

    def wait(self, timeout=60):
        try:
            return self.proc.wait(timeout), self.proc.stdout.read().decode(errors="replace")
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None, self.proc.stdout.read().decode(errors="replace")


@pytest.fixture
def media_factory(tmp_root, own_nats):
    started = []

    def make(**env):
        m = Media(tmp_root, own_nats.url, **env).start()
        started.append(m)
        return m
    yield make
    for m in started:
        code = m.stop()
        assert code == 0, f"voxi-media exited {code}:\n{m.log()[-4000:]}"


def test_outbound_call_answered_then_hung_up_over_the_api(env, media_factory, media_tmp,
                                                          pcmu_audio):
    org = env.new_org()
    path = os.path.join(media_tmp, "uas_answer_wait_bye.xml")
    with open(path, "w") as f:
        f.write(UAS_ANSWER_WAIT_BYE.replace("@AUDIO@", pcmu_audio))
    uas = SippUas(path, media_tmp)
    rec_dir = os.path.join(media_tmp, "rec")
    os.makedirs(rec_dir)
    media = media_factory(VOXI_MEDIA_DEFAULT_ORG_ID=org, VOXI_MEDIA_RECORDINGS_DIR=rec_dir)
    agent = env.ok("agents.create", org, 201, body=flow_agent())
    try:
        call = env.ok("calls.create", org, 201,
                      body={"agent_id": agent["id"], "to": f"sip:callee@127.0.0.1:{uas.port}",
                            "from": "+15550009999", "variables": {"name": "Ada"}})
        assert call["id"].startswith("call_") and call["status"] in ("queued", "ringing",
                                                                      "in_progress")
        assert call["direction"] == "outbound" and call["from"] == "+15550009999"
        call_id = call["id"]
        env.wait_call(org, call_id, lambda c: c["status"] == "in_progress", "in_progress")
        env.wait_call(org, call_id, lambda c: c["answered_at"] is not None, "answered")
        hung = env.ok("calls.hangup", org, 202, id=call_id)
        assert hung["id"] == call_id
        rc, out = uas.wait()
        assert rc == 0, out  # it received our BYE
        call = env.wait_call(org, call_id, lambda c: c["status"] == "ended", "ended")
        assert call["end_reason"] == "api_hangup"
        assert call["codec"] == "PCMU" and call["duration_ms"] >= 0
        assert call["rtp"]["packets_in"] > 0
        assert call["recording_url"] == f"/v1/calls/{call_id}/recording"
        rec = env.ok("calls.recording", org, 200, id=call_id)
        assert rec["worker_id"].startswith("media-")
        assert rec["recording_path"].startswith(rec_dir) and os.path.exists(rec["recording_path"])
        env.error("calls.hangup", org, "conflict", id=call_id)
    finally:
        if uas.proc.poll() is None:
            uas.proc.kill()
            uas.proc.wait()
    assert media.metric("voxi_media_dial_requests_total", 'outcome="started"') == 1


def test_outbound_call_through_the_numbers_trunk_with_its_password(env, media_factory,
                                                                   media_tmp, pcmu_audio):
    org = env.new_org()
    uas = SippUas(scenario("uas_trunk_auth", media_tmp, USER="acme", PASS="s3cret-trunk",
                           AUDIO=pcmu_audio), media_tmp)
    media_factory(VOXI_MEDIA_DEFAULT_ORG_ID=org)  # no trunk of its own
    agent = env.ok("agents.create", org, 201, body=flow_agent())
    number = env.ok("numbers.create", org, 201, body={
        "number": "+1555" + str(secrets.randbelow(10**7)).zfill(7), "agent_id": agent["id"],
        "outbound_trunk": {"uri": f"sip:127.0.0.1:{uas.port}", "username": "acme",
                           "password": "s3cret-trunk"}})
    call = env.ok("calls.create", org, 201, body={"agent_id": agent["id"], "to": "+15551234567",
                                                  "number_id": number["id"]})
    assert call["number_id"] == number["id"] and call["from"] == number["number"]
    rc, out = uas.wait()
    assert rc == 0, out  # the digest with the number's password was accepted
    call = env.wait_call(org, call["id"], lambda c: c["status"] == "ended", "ended")
    assert call["end_reason"] == "remote_hangup"
    assert call["answered_at"] is not None and call["started_at"] is not None


# ------------------------------------------------------------------ http: through the gateway

def test_http_calls(api, nats):
    """The whole stack: events published into the session's stream become calls that
    GET /v1/calls and /v1/calls/{id} show; errors are problem+json."""
    status, _, org = api.post("/v1/orgs", {"name": "calls http"})
    assert status == 201, org
    client = Api(api.port, org["api_key"]["secret"])
    org_id = org["org"]["id"]
    js = JetStream(nats.url)
    try:
        call_id = new_call_id()
        t0 = datetime.now(timezone.utc).replace(microsecond=0)
        agent_id = "agt_" + secrets.token_hex(10)
        for type_, data, at in inbound_events(None, org_id, call_id, t0, agent_id):
            ev = {"id": "evt_" + secrets.token_hex(10), "type": type_,
                  "created_at": rfc3339(at), "org_id": org_id, "data": data}
            js.publish(f"voxi.events.{org_id}.{type_}", json.dumps(ev).encode())
    finally:
        js.close()

    def ended():
        status, _, call = client.get(f"/v1/calls/{call_id}")
        return status == 200 and call["status"] == "ended" and len(call["transcript"]) == 3
    wait_for(ended, 20, "the call through the gateway")
    status, _, call = client.get(f"/v1/calls/{call_id}")
    assert call["usage"]["tts_characters"] == 2000 and call["cost"]["currency"] == "USD"
    assert call["cost"]["total"] > 0

    status, _, page = client.get(f"/v1/calls?agent_id={agent_id}&status=ended&limit=5")
    assert status == 200, page
    assert [c["id"] for c in page["data"]] == [call_id]
    after = rfc3339(t0 + timedelta(seconds=1)).replace("+", "%2B")
    status, _, page = client.get(f"/v1/calls?created_after={after}")
    assert status == 200 and page["data"] == [], page

    status, headers, problem = client.get("/v1/calls?status=bogus")
    assert status == 400, problem
    assert headers["content-type"].startswith("application/problem+json")
    assert problem["errors"][0]["field"] == "status"

    status, _, problem = client.post("/v1/calls", {"to": "nobody"})
    assert status == 400, problem
    assert {e["field"] for e in problem["errors"]} == {"agent_id", "to"}

    status, _, problem = client.post(f"/v1/calls/{call_id}/hangup")
    assert status == 409, problem
    status, headers, problem = client.get(f"/v1/calls/{call_id}/recording")
    assert status == 404, problem  # a path, but no worker known
    assert headers["content-type"].startswith("application/problem+json")

    # another org sees nothing of it
    assert api.get(f"/v1/calls/{call_id}")[0] == 404
    assert api.post(f"/v1/calls/{call_id}/hangup")[0] == 404
    status, _, page = api.get("/v1/calls?limit=100")
    assert status == 200 and call_id not in [c["id"] for c in page["data"]]


def test_http_outbound_call_hangup_and_recording_download(env, media_factory, media_tmp,
                                                          pcmu_audio, migrated, spawn):
    """POST /v1/calls through this module's own gateway and auth, a real voxi-media that
    records, SIPp answering; hang up over HTTP, then download the WAV the worker wrote."""
    e = dict(env.registry.env)
    e.pop("VOXI_REGISTRY_HEALTH_PORT", None)
    e["VOXI_GATEWAY_HTTP_PORT"] = str(free_udp_tcp_port())
    auth = spawn("auth", e)
    gateway = spawn("gateway", e)
    auth.wait_ready()
    gateway.wait_ready()
    with open(migrated.admin_key_file) as f:
        admin = Api(int(e["VOXI_GATEWAY_HTTP_PORT"]), f.read().strip())
    status, _, created = admin.post("/v1/orgs", {"name": "calls e2e"})
    assert status == 201, created
    org = created["org"]["id"]
    client = Api(admin.port, created["api_key"]["secret"])
    status, _, agent = client.post("/v1/agents", flow_agent())
    assert status == 201, agent

    path = os.path.join(media_tmp, "uas_answer_wait_bye.xml")
    with open(path, "w") as f:
        f.write(UAS_ANSWER_WAIT_BYE.replace("@AUDIO@", pcmu_audio))
    uas = SippUas(path, media_tmp)
    rec_dir = os.path.join(media_tmp, "rec-http")
    os.makedirs(rec_dir)
    media_factory(VOXI_MEDIA_DEFAULT_ORG_ID=org, VOXI_MEDIA_RECORDINGS_DIR=rec_dir)
    try:
        status, headers, call = client.post("/v1/calls", {
            "agent_id": agent["id"], "to": f"sip:callee@127.0.0.1:{uas.port}"})
        assert status == 201, call
        call_id = call["id"]

        def answered():
            return client.get(f"/v1/calls/{call_id}")[2]["status"] == "in_progress"
        wait_for(answered, 20, "in_progress over HTTP")
        status, _, body = client.post(f"/v1/calls/{call_id}/hangup")
        assert status == 202, body
        rc, out = uas.wait()
        assert rc == 0, out

        def ended():
            c = client.get(f"/v1/calls/{call_id}")[2]
            return c["status"] == "ended" and c["recording_url"] is not None
        wait_for(ended, 20, "ended with a recording")
        status, headers, _ = client.request("GET", f"/v1/calls/{call_id}/recording")
        assert status == 200, headers
        assert headers["content-type"].startswith("audio/")
        rec = env.ok("calls.recording", org, 200, id=call_id)
        assert int(headers["content-length"]) == os.path.getsize(rec["recording_path"])
        assert client.post(f"/v1/calls/{call_id}/hangup")[0] == 409
    finally:
        if uas.proc.poll() is None:
            uas.proc.kill()
            uas.proc.wait()
