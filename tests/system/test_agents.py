"""Agents in the registry: CRUD, merge patch, validation, pagination, tenancy, events, audit.

Two layers:
- bus tests talk to voxi-registry over NATS with tests/tools/voxi_api_call, exactly as the
  gateway does after auth (their own nats-server and registry, with an encryption key);
- http tests go through the whole stack (gateway -> auth -> registry) with the `api` fixture.
"""
import json
import os
import re
import secrets
import subprocess
import time

import pytest

from conftest import TOOLS, Api, Nats, Service, base_env, http_get, wait_for

SECRET_KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"


def flow_agent(name="Front desk", **extra):
    doc = {"name": name,
           "response_engine": {"type": "flow", "start": "hello", "nodes": [
               {"id": "hello", "type": "say", "text": "Hello {{caller_number}}", "next": "bye"},
               {"id": "bye", "type": "hangup", "message": "Goodbye"}]}}
    doc.update(extra)
    return doc


class Bus:
    """Calls voxi.registry.* like the gateway: an Envelope with org, principal, deadline."""

    def __init__(self, nats_url, registry, pg):
        self.url = nats_url
        self.registry = registry
        self.pg = pg

    def new_org(self, name="test org"):
        org = "org_" + secrets.token_hex(10)
        self.pg.psql(f"INSERT INTO orgs (id, name) VALUES ('{org}', '{name}')")
        return org

    def call(self, verb, org, id=None, body=None, raw=None, limit=None, starting_after=None,
             principal="api_key:key_test", timeout_ms=5000, deadline_ms=None, resolve=None,
             json_file=None):
        cmd = [os.path.join(TOOLS, "voxi_api_call"), self.url, f"voxi.registry.{verb}", org,
               "--principal", principal, "--timeout-ms", str(timeout_ms)]
        if id is not None:
            cmd += ["--id", id]
        if body is not None or raw is not None:
            cmd += ["--json", raw if raw is not None else json.dumps(body)]
        if json_file is not None:
            cmd += ["--json-file", json_file]
        if limit is not None:
            cmd += ["--limit", str(limit)]
        if starting_after is not None:
            cmd += ["--starting-after", starting_after]
        if deadline_ms is not None:
            cmd += ["--deadline-ms", str(deadline_ms)]
        if resolve is not None:
            cmd += ["--resolve", resolve]
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

    def events(self, org):
        out = subprocess.run([os.path.join(TOOLS, "voxi_js_read"), self.url, "VOXI_EVENTS",
                              f"voxi.events.{org}.>"], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        return [json.loads(line) for line in out.stdout.splitlines()]


@pytest.fixture(scope="session")
def bus(tmp_root, migrated):
    """A registry of its own (own nats-server, the session's database, an encryption key)."""
    own = Nats(tmp_root)
    own.start()
    env = base_env(own.url, migrated)
    env["VOXI_REGISTRY_SECRET_KEY"] = SECRET_KEY
    registry = Service("registry", env, tmp_root).start()
    try:
        registry.wait_ready()
        yield Bus(own.url, registry, migrated)
        assert registry.stop() == 0, registry.read_log()
    finally:
        registry.stop()
        own.stop()


def wait_events(bus, org, count):
    """Events are published after the reply: poll the stream until `count` are there."""
    found = []

    def enough():
        found[:] = bus.events(org)
        return len(found) >= count
    wait_for(enough, 10, f"{count} events for {org}")
    return found


# ---------------------------------------------------------------- bus: CRUD and patch

def test_create_fills_defaults_and_get_returns_it(bus):
    org = bus.new_org()
    agent = bus.ok("agents.create", org, 201, body=flow_agent())
    assert re.fullmatch(r"agt_[0-9a-f]{20}", agent["id"])
    assert agent["object"] == "agent" and agent["version"] == 1
    assert agent["language"] == "en-US" and agent["first_message"] == ""
    assert agent["voice"] == {"provider": "flite", "voice_id": "kal", "speed": 1.0}
    assert agent["transcriber"] == {"provider": "pocketsphinx", "model": "en-us",
                                    "language": "en-US", "keywords": []}
    assert agent["interruptions"] == {"enabled": True, "min_speech_ms": 200, "min_words": 0,
                                      "ignore_phrases": []}
    assert agent["endpointing"] == {"silence_ms": 500, "max_wait_ms": 5000}
    assert agent["max_duration_s"] == 1800 and agent["silence_timeout_s"] == 30
    assert agent["webhook"] is None and agent["metadata"] == {} and agent["end_call_phrases"] == []
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", agent["created_at"])
    assert agent["updated_at"] == agent["created_at"]
    assert list(agent)[:3] == ["id", "object", "name"]
    got = bus.ok("agents.get", org, 200, id=agent["id"])
    assert got == agent


def test_patch_is_a_merge_patch_and_bumps_version(bus):
    org = bus.new_org()
    agent = bus.ok("agents.create", org, 201,
                   body=flow_agent(metadata={"team": "sales", "tier": 2}))
    patched = bus.ok("agents.update", org, 200, id=agent["id"],
                     body={"voice": {"speed": 1.5}, "metadata": {"tier": None, "x": [1]},
                           "first_message": "Hi {{caller_number}}"})
    assert patched["version"] == 2
    assert patched["voice"] == {"provider": "flite", "voice_id": "kal", "speed": 1.5}
    assert patched["metadata"] == {"team": "sales", "x": [1]}
    assert patched["first_message"] == "Hi {{caller_number}}"
    assert patched["created_at"] == agent["created_at"]
    assert patched["updated_at"] >= agent["updated_at"]
    # null resets a field to its default
    reset = bus.ok("agents.update", org, 200, id=agent["id"], body={"voice": {"speed": None}})
    assert reset["voice"]["speed"] == 1.0 and reset["version"] == 3
    # a patch that changes nothing is not a new version
    same = bus.ok("agents.update", org, 200, id=agent["id"], body={"name": agent["name"]})
    assert same["version"] == 3
    # the whole document is validated again after the patch
    fields = bus.fields("agents.update", org, id=agent["id"],
                        body={"response_engine": {"start": "nowhere"}, "voice": {"speed": 9}})
    assert fields == {"response_engine.start": 'no node with id "nowhere"',
                      "voice.speed": "must be between 0.5 and 2"}
    # server fields are read-only
    fields = bus.fields("agents.update", org, id=agent["id"],
                        body={"id": "agt_x", "version": 7, "updated_at": None})
    assert set(fields) == {"id", "version", "updated_at"}
    assert all(m == "is read-only" for m in fields.values())
    assert bus.ok("agents.get", org, 200, id=agent["id"])["version"] == 3


def test_delete_then_404(bus):
    org = bus.new_org()
    agent = bus.ok("agents.create", org, 201, body=flow_agent())
    assert bus.ok("agents.delete", org, 204, id=agent["id"]) is None
    for verb, body in [("agents.get", None), ("agents.delete", None),
                       ("agents.update", {"name": "again"})]:
        err = bus.error(verb, org, "not_found", id=agent["id"], body=body)
        assert err["message"] == "agent not found"
    bus.error("agents.get", org, "not_found", id="agt_nothex")
    bus.error("agents.get", org, "not_found", id="x" * 500)


# ---------------------------------------------------------------- bus: validation

def test_every_validation_error_class_at_once(bus):
    org = bus.new_org()
    body = {
        "name": "",                                    # length
        "colour": "blue",                              # unknown field
        "id": "agt_mine",                              # read-only
        "language": "english",                         # pattern
        "voice": {"speed": 3},                         # range
        "max_duration_s": "long",                      # type
        "transcriber": {"keywords": ["k"] * 101},      # array size
        "metadata": {"blob": "x" * 17000},             # metadata over 16 KiB
        "webhook": {"url": "ftp://example.com"},       # url
        "response_engine": {"type": "flow", "start": "a", "nodes": [
            {"id": "a", "type": "say", "text": "{{Bad}}", "next": "b"},       # variable ref
            {"id": "b", "type": "menu", "prompt": "p", "fallback": "a", "choices": [
                {"digit": "1", "next": "a"}, {"digit": "1", "next": "ghost"}]},  # dup digit, target
            {"id": "b", "type": "hangup"},                                      # duplicate id
            {"id": "c", "type": "teleport"},                                   # enum
            {"id": "d", "type": "hangup"}]},                                   # unreachable
    }
    err = bus.error("agents.create", org, "invalid", body=body)
    fields = {f["field"]: f["message"] for f in err["fields"]}
    expected = {
        "name": "must be 1 to 200 characters",
        "colour": "unknown field",
        "id": "is read-only",
        "language": "language tag",
        "voice.speed": "must be between 0.5 and 2",
        "max_duration_s": "must be an integer",
        "transcriber.keywords": "at most 100 items",
        "metadata": "at most 16384 bytes",
        "webhook.url": "http or https URL",
        "response_engine.nodes[0].text": "malformed variable reference",
        "response_engine.nodes[1].choices[1].digit": 'duplicate digit "1"',
        "response_engine.nodes[1].choices[1].next": 'no node with id "ghost"',
        "response_engine.nodes[2].id": 'duplicate node id "b"',
        "response_engine.nodes[3].type": "must be one of",
        "response_engine.nodes[4]": "not reachable from start",
    }
    for field, part in expected.items():
        assert field in fields, (field, fields)
        assert part in fields[field], (field, fields[field])
    assert err["message"].startswith("the request is invalid")
    # nothing was stored
    assert bus.ok("agents.list", org, 200)["data"] == []


def test_errors_are_bounded(bus):
    org = bus.new_org()
    body = flow_agent(**{f"unknown_{i}": i for i in range(120)})
    err = bus.error("agents.create", org, "invalid", body=body)
    assert len(err["fields"]) == 50
    assert "more than 50" in err["message"]


def test_bad_bodies(bus):
    org = bus.new_org()
    err = bus.error("agents.create", org, "invalid", raw="[1,2]")
    assert "JSON object" in err["message"]
    err = bus.error("agents.create", org, "invalid", raw='{"name":"a","name":"b"}')
    assert "not valid JSON" in err["message"]
    err = bus.error("agents.create", org, "invalid", raw="")
    assert "JSON object" in err["message"]
    # (bodies over 1 MiB cannot reach the registry: NATS' max_payload is 1 MiB)


def test_llm_engines(bus):
    org = bus.new_org()
    agent = bus.ok("agents.create", org, 201, body={
        "name": "LLM", "response_engine": {
            "type": "llm", "provider": "openai", "model": "gpt-4o-mini",
            "tools": [{"name": "lookup_order", "url": "https://shop.example.com/tool",
                       "parameters": {"type": "object"}}]}})
    engine = agent["response_engine"]
    assert engine["temperature"] == 0.7 and engine["system_prompt"] == ""
    assert engine["tools"][0]["timeout_ms"] == 5000
    # switching engine type: the old engine's fields must be removed in the same patch
    fields = bus.fields("agents.update", org, id=agent["id"],
                        body={"response_engine": {"type": "custom_llm",
                                                  "url": "https://llm.example.com"}})
    assert fields["response_engine.provider"] == "unknown field"
    patched = bus.ok("agents.update", org, 200, id=agent["id"], body={"response_engine": {
        "type": "custom_llm", "url": "https://llm.example.com", "provider": None, "model": None,
        "temperature": None, "system_prompt": None, "tools": None}})
    assert patched["response_engine"] == {"type": "custom_llm", "url": "https://llm.example.com"}


# ---------------------------------------------------------------- bus: lists and tenancy

def test_pagination_across_three_pages(bus):
    org = bus.new_org()
    ids = [bus.ok("agents.create", org, 201, body=flow_agent(name=f"agent {i}"))["id"]
           for i in range(7)]
    page1 = bus.ok("agents.list", org, 200, limit=3)
    assert page1["object"] == "list" and page1["has_more"] is True
    assert [a["id"] for a in page1["data"]] == ids[:3]
    assert page1["next_cursor"] == ids[2]
    page2 = bus.ok("agents.list", org, 200, limit=3, starting_after=page1["next_cursor"])
    assert [a["id"] for a in page2["data"]] == ids[3:6] and page2["has_more"] is True
    page3 = bus.ok("agents.list", org, 200, limit=3, starting_after=page2["next_cursor"])
    assert [a["id"] for a in page3["data"]] == ids[6:]
    assert page3["has_more"] is False and page3["next_cursor"] is None
    # default limit 20 takes them all
    assert len(bus.ok("agents.list", org, 200)["data"]) == 7
    # unknown cursor: 400 naming starting_after
    fields = bus.fields("agents.list", org, starting_after="agt_" + "0" * 20)
    assert fields == {"starting_after": "no agent with this id"}
    assert "starting_after" in bus.fields("agents.list", org, starting_after="bogus")
    # exactly a full page: no more
    full = bus.ok("agents.list", org, 200, limit=7)
    assert full["has_more"] is False and full["next_cursor"] is None


def test_cross_org_isolation(bus):
    org_a, org_b = bus.new_org("A"), bus.new_org("B")
    agent = bus.ok("agents.create", org_a, 201, body=flow_agent())
    for verb, body in [("agents.get", None), ("agents.update", {"name": "mine"}),
                       ("agents.delete", None)]:
        bus.error(verb, org_b, "not_found", id=agent["id"], body=body)
    assert bus.ok("agents.list", org_b, 200)["data"] == []
    # another org's agent is not a cursor either
    assert "starting_after" in bus.fields("agents.list", org_b, starting_after=agent["id"])
    assert bus.ok("agents.get", org_a, 200, id=agent["id"])["name"] == "Front desk"


def test_envelope_checks(bus):
    err = bus.error("agents.list", "", "invalid")
    assert "org" in err["message"]
    bus.error("agents.list", "org_x.>", "invalid")
    # an org that does not exist has nothing, and cannot create
    ghost = "org_" + "f" * 20
    assert bus.ok("agents.list", ghost, 200)["data"] == []
    bus.error("agents.create", ghost, "not_found", body=flow_agent())


def test_expired_deadline_is_dropped(bus):
    org = bus.new_org()
    code, err = bus.call("agents.create", org, body=flow_agent(name="late"), timeout_ms=1000,
                         deadline_ms=-1000)
    assert code == 4, err  # no answer at all
    assert bus.ok("agents.list", org, 200)["data"] == []
    _, _, metrics = http_get(bus.registry.health_port, "/metrics")
    assert re.search(r'^voxi_registry_requests_dropped_total\{reason="deadline"\} [1-9]',
                     metrics, re.M)


# ---------------------------------------------------------------- bus: events, audit, metrics

def test_events_published_after_each_change(bus):
    org = bus.new_org()
    agent = bus.ok("agents.create", org, 201, body=flow_agent())
    bus.ok("agents.update", org, 200, id=agent["id"], body={"name": "Renamed"})
    bus.ok("agents.delete", org, 204, id=agent["id"])
    events = wait_events(bus, org, 3)
    assert [e["data"]["type"] for e in events] == ["agent.created", "agent.updated",
                                                   "agent.deleted"]
    for e in events:
        ev = e["data"]
        assert e["subject"] == f"voxi.events.{org}.{ev['type']}"
        assert e["msg_id"] == ev["id"] and re.fullmatch(r"evt_[0-9a-f]{20}", ev["id"])
        assert ev["org_id"] == org and ev["data"]["id"] == agent["id"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", ev["created_at"])
    assert events[0]["data"]["data"] == agent
    assert events[1]["data"]["data"]["name"] == "Renamed"
    assert events[1]["data"]["data"]["version"] == 2


def test_audit_rows_in_the_same_transaction(bus):
    org = bus.new_org()
    agent = bus.ok("agents.create", org, 201, body=flow_agent(),
                   principal="api_key:key_auditor")
    bus.ok("agents.update", org, 200, id=agent["id"], body={"voice": {"speed": 1.25}},
           principal="api_key:key_auditor")
    bus.ok("agents.delete", org, 204, id=agent["id"], principal="platform_admin:key_root")
    # a rejected change leaves no audit row
    bus.error("agents.update", org, "not_found", id=agent["id"], body={"name": "x"})
    rows = bus.pg.psql(
        "SELECT principal_kind, principal_id, action, resource_type, resource_id, "
        "changes::text, request_id FROM registry_audit "
        f"WHERE org_id = '{org}' ORDER BY id").splitlines()
    assert len(rows) == 3, rows
    parsed = [r.split("|") for r in rows]
    assert [p[2] for p in parsed] == ["agent.create", "agent.update", "agent.delete"]
    assert [p[0] for p in parsed] == ["api_key", "api_key", "platform_admin"]
    assert parsed[2][1] == "key_root"
    assert all(p[3] == "agent" and p[4] == agent["id"] for p in parsed)
    assert json.loads(parsed[1][5]) == {"voice": {"speed": 1.25}}
    assert json.loads(parsed[0][5])["name"] == "Front desk"
    assert all(re.fullmatch(r"req_[0-9a-f]{20}", p[6]) for p in parsed)


def test_metrics_count_requests_and_db_latency(bus):
    org = bus.new_org()
    bus.ok("agents.list", org, 200)
    bus.error("agents.get", org, "not_found", id="agt_" + "1" * 20)
    _, _, body = http_get(bus.registry.health_port, "/metrics")
    assert re.search(r'^voxi_registry_requests_total\{outcome="ok",verb="agents.list"\} [1-9]',
                     body, re.M), body
    assert re.search(
        r'^voxi_registry_requests_total\{outcome="not_found",verb="agents.get"\} [1-9]',
        body, re.M)
    assert re.search(r'^voxi_registry_db_query_seconds_count\{verb="agents.list"\} [1-9]',
                     body, re.M)
    assert re.search(r'^voxi_registry_events_total\{outcome="ok"\} \d', body, re.M)


# ---------------------------------------------------------------- http: through the gateway

def test_http_agent_crud(api):
    status, headers, agent = api.post("/v1/agents", flow_agent(name="HTTP agent"))
    assert status == 201, agent
    assert agent["object"] == "agent" and agent["voice"]["speed"] == 1.0
    status, _, got = api.get(f"/v1/agents/{agent['id']}")
    assert status == 200 and got == agent
    status, _, patched = api.patch(f"/v1/agents/{agent['id']}", {"name": "Renamed"})
    assert status == 200 and patched["name"] == "Renamed" and patched["version"] == 2
    status, _, page = api.get("/v1/agents?limit=100")
    assert status == 200 and agent["id"] in [a["id"] for a in page["data"]]
    status, _, body = api.delete(f"/v1/agents/{agent['id']}")
    assert status == 204 and body is None
    status, headers, problem = api.get(f"/v1/agents/{agent['id']}")
    assert status == 404
    assert headers["content-type"].startswith("application/problem+json")
    assert problem["type"].endswith("/not_found") and problem["status"] == 404


def test_http_validation_problem(api):
    status, headers, problem = api.post("/v1/agents", {
        "name": "x", "voice": {"speed": 3}, "response_engine": {
            "type": "flow", "start": "a", "nodes": [{"id": "a", "type": "say", "text": "t",
                                                     "next": "zz"}]}})
    assert status == 400, problem
    assert headers["content-type"].startswith("application/problem+json")
    assert problem["type"].endswith("/invalid")
    errors = {e["field"]: e["message"] for e in problem["errors"]}
    assert errors["voice.speed"] == "must be between 0.5 and 2"
    assert errors["response_engine.nodes[0].next"] == 'no node with id "zz"'


def test_http_pagination_three_pages(api):
    status, _, org = api.post("/v1/orgs", {"name": "paging org"})
    assert status == 201, org
    client = Api(api.port, org["api_key"]["secret"])
    ids = []
    for i in range(5):
        status, _, a = client.post("/v1/agents", flow_agent(name=f"p{i}"))
        assert status == 201, a
        ids.append(a["id"])
    seen, cursor, pages = [], None, 0
    while True:
        path = "/v1/agents?limit=2" + (f"&starting_after={cursor}" if cursor else "")
        status, _, page = client.get(path)
        assert status == 200, page
        seen += [a["id"] for a in page["data"]]
        pages += 1
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert seen == ids and pages == 3
    status, _, problem = client.get("/v1/agents?starting_after=agt_" + "0" * 20)
    assert status == 400
    assert problem["errors"][0]["field"] == "starting_after"


def test_http_cross_org_isolation(api):
    status, _, agent = api.post("/v1/agents", flow_agent(name="org A only"))
    assert status == 201, agent
    status, _, org_b = api.post("/v1/orgs", {"name": "org B"})
    assert status == 201, org_b
    b = Api(api.port, org_b["api_key"]["secret"])
    assert b.get(f"/v1/agents/{agent['id']}")[0] == 404
    assert b.patch(f"/v1/agents/{agent['id']}", {"name": "stolen"})[0] == 404
    assert b.delete(f"/v1/agents/{agent['id']}")[0] == 404
    status, _, page = b.get("/v1/agents?limit=100")
    assert status == 200 and agent["id"] not in [a["id"] for a in page["data"]]
    assert api.get(f"/v1/agents/{agent['id']}")[2]["name"] == "org A only"
