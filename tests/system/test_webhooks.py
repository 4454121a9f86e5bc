"""voxi-webhooks: endpoints, signed deliveries and their retry rules, durability across
kill -9, the SSRF guard at creation and at delivery, and tool calls.

Two layers:
- bus tests talk to voxi-webhooks over NATS (tests/tools/voxi_api_call, voxi_events,
  voxi_invoke) exactly as the gateway and the other services do. They run against their own
  nats-server and database with a fast retry schedule, and a scripted receiver on
  127.0.0.2, the only network on the allowlist, so every other loopback form (127.0.0.1,
  0x7f.1, 2130706433, localhost, ::ffff:127.0.0.1, ...) must be refused;
- http tests go through the whole stack (gateway -> auth -> webhooks) with the `api` fixture
  (receiver on 127.0.0.1, allowlisted for the shared stack by conftest's base_env).
"""
import base64
import concurrent.futures
import hashlib
import hmac
import http.server
import json
import os
import re
import secrets
import signal
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import BIN, TOOLS, Nats, Service, base_env, http_get, wait_for

RECEIVER_HOST = "127.0.0.2"
SCALE = 0.0001  # the whole 27.6 h schedule in about 10 s
BASE_DELAYS = [0, 5, 300, 1800, 7200, 18000, 36000, 36000]  # seconds before attempt n


# ---- Standard Webhooks verification, written from the specification -------------------

def signatures_valid(secret, headers, body, tolerance_s=300):
    """True when one of the v1 signatures of webhook-signature is HMAC-SHA256 of
    "id.timestamp.body" with the secret's key, and the timestamp is recent."""
    msg_id = headers.get("webhook-id")
    ts = headers.get("webhook-timestamp")
    sig_header = headers.get("webhook-signature", "")
    if not msg_id or not ts or abs(time.time() - int(ts)) > tolerance_s:
        return False
    key = base64.b64decode(secret[len("whsec_"):])
    want = base64.b64encode(hmac.new(key, f"{msg_id}.{ts}.".encode() + body,
                                     hashlib.sha256).digest()).decode()
    for part in sig_header.split(" "):
        version, _, sig = part.partition(",")
        if version == "v1" and hmac.compare_digest(sig, want):
            return True
    return False


# ---- a scripted receiver --------------------------------------------------------------

class Receiver:
    """HTTP server recording every request; per path, a script of answers (the last one
    repeats): an int status, or a dict(status=, headers={}, body=b"", delay=seconds)."""

    def __init__(self, host=RECEIVER_HOST):
        self.requests = []
        self.scripts = {}
        self.cond = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("content-length", 0))
                body = self.rfile.read(n)
                path = self.path
                with receiver.cond:
                    index = sum(1 for r in receiver.requests if r["path"] == path)
                    receiver.requests.append({
                        "path": path, "body": body, "t": time.monotonic(),
                        "headers": {k.lower(): v for k, v in self.headers.items()}})
                    receiver.cond.notify_all()
                    script = receiver.scripts.get(path, [200])
                action = script[min(index, len(script) - 1)]
                if isinstance(action, int):
                    action = {"status": action}
                if action.get("delay"):
                    time.sleep(action["delay"])
                status = action.get("status", 200)
                out = b"" if status in (204, 304) else action.get("body", b"ok")
                try:
                    self.send_response(status)
                    for k, v in action.get("headers", {}).items():
                        self.send_header(k, v)
                    if status not in (204, 304):  # no body, no length (RFC 9110 8.6)
                        self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except OSError:
                    pass  # the client gave up (timeout tests)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.host = host
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://{self.host}:{self.port}{path}"

    def script(self, path, *actions):
        with self.cond:
            self.scripts[path] = list(actions)

    def at(self, path):
        with self.cond:
            return [r for r in self.requests if r["path"] == path]

    def wait_count(self, path, n, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while sum(1 for r in self.requests if r["path"] == path) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{path}: {n} requests not seen in {timeout}s "
                                         f"(saw {len(self.at(path))})")
                self.cond.wait(left)
        return self.at(path)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# ---- an isolated environment: nats-server, database, voxi-webhooks ----------------------

DEFAULT_ENV = {
    "VOXI_WEBHOOKS_ALLOW_HTTP": "true",
    "VOXI_WEBHOOKS_SSRF_ALLOWLIST": f"{RECEIVER_HOST}/32",
    "VOXI_WEBHOOKS_RETRY_SCALE": str(SCALE),
    "VOXI_WEBHOOKS_HTTP_TIMEOUT_MS": "1000",
    "VOXI_WEBHOOKS_ACK_WAIT_MS": "3000",
    "VOXI_WEBHOOKS_POLL_INTERVAL_MS": "200",
    "VOXI_WEBHOOKS_TOOL_MAX_RESPONSE_BYTES": "4096",
}


class WhEnv:
    def __init__(self, tmp_root, pg, **overrides):
        self.pg = pg
        # a directory of its own: two nats-servers must never share a JetStream store
        self.nats = Nats(tempfile.mkdtemp(prefix="wh-nats-", dir=tmp_root))
        self.nats.start()
        self.db = "wh_" + secrets.token_hex(6)
        pg.psql(f"CREATE DATABASE {self.db}", db="postgres")
        self.env = base_env(self.nats.url)
        self.env["VOXI_DATABASE_URL"] = pg.dsn(self.db)
        self.env.update(DEFAULT_ENV)
        self.env.update(overrides)
        migrate_env = dict(self.env, VOXI_MIGRATIONS_DIR=os.path.join(
            os.path.dirname(__file__), "..", "..", "migrations"))
        out = subprocess.run([os.path.join(BIN, "voxi-registry"), "migrate"], env=migrate_env,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        self.tmp_root = tmp_root
        self.svc = None
        self.start()

    def start(self):
        self.svc = Service("webhooks", self.env, self.tmp_root).start().wait_ready()
        return self.svc

    def stop(self):
        code = self.svc.stop() if self.svc else 0
        self.nats.stop()
        return code

    def sql(self, query):
        return self.pg.psql(query, db=self.db)

    # -- the bus --
    def call(self, verb, org, id=None, body=None, limit=None, starting_after=None,
             principal="api_key:key_test"):
        cmd = [os.path.join(TOOLS, "voxi_api_call"), self.nats.url, f"voxi.webhooks.{verb}",
               org, "--principal", principal, "--timeout-ms", "10000"]
        if id is not None:
            cmd += ["--id", id]
        if body is not None:
            cmd += ["--json", json.dumps(body)]
        if limit is not None:
            cmd += ["--limit", str(limit)]
        if starting_after is not None:
            cmd += ["--starting-after", starting_after]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    def ok(self, verb, org, status, **kw):
        reply = self.call(verb, org, **kw)
        assert "error" not in reply, reply
        assert reply["http_status"] == status, reply
        return reply.get("json")

    def error(self, verb, org, status, **kw):
        reply = self.call(verb, org, **kw)
        assert "error" in reply, reply
        assert reply["error"]["status"] == status, reply
        return reply["error"]

    def create(self, org, url, **fields):
        return self.ok("endpoints.create", org, 201, body=dict(fields, url=url))

    def publish(self, org, type, count=1, data=None):
        cmd = [os.path.join(TOOLS, "voxi_events"), self.nats.url, org, type, str(count)]
        if data is not None:
            cmd += ["--data", json.dumps(data)]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return [json.loads(line)["id"] for line in out.stdout.splitlines()]

    def invoke(self, org, url, **opts):
        cmd = [os.path.join(TOOLS, "voxi_invoke"), self.nats.url, org, url]
        for k, v in opts.items():
            cmd += ["--" + k.replace("_", "-"), v if isinstance(v, str) else json.dumps(v)]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    def events(self, org, type):
        out = subprocess.run([os.path.join(TOOLS, "voxi_js_read"), self.nats.url, "VOXI_EVENTS",
                              f"voxi.events.{org}.{type}"], capture_output=True, text=True,
                             timeout=30)
        assert out.returncode == 0, out.stderr
        return [json.loads(line)["data"] for line in out.stdout.splitlines()]

    def delivery(self, org, endpoint_id, event_id):
        for d in self.deliveries(org, endpoint_id):
            if d["event_id"] == event_id:
                return d
        return None

    def deliveries(self, org, endpoint_id):
        out, after = [], None
        while True:
            page = self.ok("deliveries.list", org, 200, id=endpoint_id, limit=100,
                           starting_after=after)
            out += page["data"]
            if not page["has_more"]:
                return out
            after = page["next_cursor"]

    def wait_delivery(self, org, endpoint_id, event_id, status, timeout=30):
        found = {}

        def done():
            d = self.delivery(org, endpoint_id, event_id)
            found["d"] = d
            return d is not None and d["status"] == status
        wait_for(done, timeout, f"delivery of {event_id} to be {status} (last: {found})")
        return found["d"]


def new_org():
    return "org_" + secrets.token_hex(10)


def parallel(fn, items):
    """fn over items on 8 threads (each call runs a tool process), results in order."""
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return list(pool.map(fn, items))


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def wh(tmp_root, migrated):
    env = WhEnv(tmp_root, migrated)
    yield env
    assert env.stop() == 0, env.svc.read_log()[-3000:]


# ---- endpoints over the bus ----------------------------------------------------------------

def test_endpoint_crud_merge_patch_and_tenancy(wh, receiver):
    org, other = new_org(), new_org()
    ep = wh.create(org, receiver.url("/crud"), description="orders", event_types=["call.*"],
                   metadata={"team": "ops", "tier": "1"})
    assert ep["object"] == "webhook_endpoint" and re.fullmatch(r"we_[0-9a-f]{20}", ep["id"])
    assert ep["secret"].startswith("whsec_")
    assert len(base64.b64decode(ep["secret"][6:])) >= 24
    assert ep["enabled"] is True and ep["event_types"] == ["call.*"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", ep["created_at"])
    # the secret is shown once
    got = wh.ok("endpoints.get", org, 200, id=ep["id"])
    assert "secret" not in got and got["url"] == receiver.url("/crud")
    # merge patch: metadata keys merge, null removes; other fields stay
    patched = wh.ok("endpoints.update", org, 200, id=ep["id"],
                    body={"metadata": {"tier": None, "region": "eu"}, "enabled": False})
    assert patched["metadata"] == {"team": "ops", "region": "eu"}
    assert patched["enabled"] is False and patched["disabled_reason"] == "manual"
    assert patched["description"] == "orders" and patched["event_types"] == ["call.*"]
    patched = wh.ok("endpoints.update", org, 200, id=ep["id"],
                    body={"enabled": True, "event_types": None, "description": None})
    assert patched["enabled"] is True and patched["disabled_reason"] is None
    assert patched["event_types"] == [] and patched["description"] == ""
    # another org sees nothing: 404, never 403
    for verb in ("endpoints.get", "endpoints.delete", "endpoints.rotate", "endpoints.test",
                 "deliveries.list"):
        wh.error(verb, other, "not_found", id=ep["id"])
    wh.error("endpoints.update", other, "not_found", id=ep["id"], body={"description": "x"})
    assert wh.ok("endpoints.list", other, 200)["data"] == []
    # audit rows for each change, without secrets
    rows = wh.sql(f"SELECT action || ' ' || principal_id || ' ' || changes::text FROM "
                  f"webhook_audit WHERE resource_id = '{ep['id']}' ORDER BY id")
    assert [r.split(" ")[0] for r in rows.splitlines()] == [
        "webhook_endpoint.create", "webhook_endpoint.update", "webhook_endpoint.update"]
    assert "key_test" in rows and "whsec_" not in rows
    # delete: 204, then gone
    assert wh.call("endpoints.delete", org, id=ep["id"])["http_status"] == 204
    wh.error("endpoints.get", org, "not_found", id=ep["id"])
    wh.error("endpoints.delete", org, "not_found", id=ep["id"])


def test_endpoint_validation_names_every_field(wh):
    org = new_org()
    err = wh.error("endpoints.create", org, "invalid", body={
        "url": "ftp://example.com/", "description": 7, "enabled": "yes",
        "event_types": ["call.*", "Bad Type", 3], "metadata": {"k": 1}, "colour": "red"})
    fields = {f["field"] for f in err["fields"]}
    assert fields == {"url", "description", "enabled", "event_types[1]", "event_types[2]",
                      "metadata.k", "colour"}, err
    err = wh.error("endpoints.create", org, "invalid", body={"description": "no url"})
    assert [f["field"] for f in err["fields"]] == ["url"]
    err = wh.error("endpoints.create", org, "invalid",
                   body={"url": "https://user:secret@example.com/hook"})
    assert "credentials" in err["fields"][0]["message"]
    err = wh.error("endpoints.create", org, "invalid",
                   body={"url": "https://example.com/", "metadata": {f"k{i}": "v" for i in
                                                                     range(51)}})
    assert err["fields"][0]["field"] == "metadata"


def test_list_pagination(wh, receiver):
    org = new_org()
    ids = [wh.create(org, receiver.url(f"/page{i}"))["id"] for i in range(5)]
    page = wh.ok("endpoints.list", org, 200, limit=2)
    assert [e["id"] for e in page["data"]] == ids[:2]
    assert page["has_more"] is True and page["next_cursor"] == ids[1]
    page = wh.ok("endpoints.list", org, 200, limit=2, starting_after=ids[1])
    assert [e["id"] for e in page["data"]] == ids[2:4]
    page = wh.ok("endpoints.list", org, 200, limit=2, starting_after=ids[3])
    assert [e["id"] for e in page["data"]] == ids[4:]
    assert page["has_more"] is False and page["next_cursor"] is None
    err = wh.error("endpoints.list", org, "invalid", starting_after="we_00000000000000000000")
    assert err["fields"][0]["field"] == "starting_after"
    assert all("secret" not in e for e in page["data"])


# ---- signatures ------------------------------------------------------------------------------

def test_signed_delivery_payload_and_rotation(wh, receiver):
    org = new_org()
    ep = wh.create(org, receiver.url("/signed"), event_types=["agent.created"])
    [event_id] = wh.publish(org, "agent.created", data={"agent": {"id": "agt_1", "name": "A"}})
    [req] = receiver.wait_count("/signed", 1, 20)
    body = json.loads(req["body"])
    assert list(body) == ["id", "type", "created_at", "org_id", "data"]
    assert body["id"] == event_id and body["type"] == "agent.created"
    assert body["org_id"] == org and body["data"] == {"agent": {"id": "agt_1", "name": "A"}}
    h = req["headers"]
    assert h["webhook-id"] == event_id
    assert h["content-type"] == "application/json"
    assert len(h["webhook-signature"].split(" ")) == 1
    assert signatures_valid(ep["secret"], h, req["body"])
    # wrong secret, tampered body, tampered id: all fail
    other_secret = wh.create(org, receiver.url("/unused"))["secret"]
    assert not signatures_valid(other_secret, h, req["body"])
    assert not signatures_valid(ep["secret"], h, req["body"] + b" ")
    assert not signatures_valid(ep["secret"], dict(h, **{"webhook-id": "evt_x"}), req["body"])

    # rotation: the new secret is shown once; both sign during the overlap
    rotated = wh.ok("endpoints.rotate", org, 200, id=ep["id"])
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != ep["secret"]
    assert rotated["previous_secret_expires_at"] is not None
    assert "secret" not in wh.ok("endpoints.get", org, 200, id=ep["id"])
    wh.publish(org, "agent.created")
    req = receiver.wait_count("/signed", 2, 20)[1]
    sigs = req["headers"]["webhook-signature"].split(" ")
    assert len(sigs) == 2 and all(s.startswith("v1,") for s in sigs)
    assert signatures_valid(rotated["secret"], req["headers"], req["body"])
    assert signatures_valid(ep["secret"], req["headers"], req["body"])
    assert not signatures_valid(other_secret, req["headers"], req["body"])
    # the rotation is audited without either secret
    rows = wh.sql(f"SELECT changes::text FROM webhook_audit WHERE resource_id = '{ep['id']}' "
                  f"AND action = 'webhook_endpoint.rotate_secret'")
    assert "previous_secret_expires_at" in rows and "whsec_" not in rows


def test_rotation_without_overlap_signs_with_the_new_secret_only(tmp_root, migrated):
    env = WhEnv(tmp_root, migrated, VOXI_WEBHOOKS_SECRET_OVERLAP_S="0")
    rec = Receiver()
    try:
        org = new_org()
        ep = env.create(org, rec.url("/r0"))
        rotated = env.ok("endpoints.rotate", org, 200, id=ep["id"])
        assert rotated["previous_secret_expires_at"] is None
        env.ok("endpoints.test", org, 202, id=ep["id"])
        [req] = rec.wait_count("/r0", 1, 20)
        assert len(req["headers"]["webhook-signature"].split(" ")) == 1
        assert signatures_valid(rotated["secret"], req["headers"], req["body"])
        assert not signatures_valid(ep["secret"], req["headers"], req["body"])
    finally:
        rec.close()
        assert env.stop() == 0


def test_event_filters_and_endpoints_created_later(wh, receiver):
    org = new_org()
    calls = wh.create(org, receiver.url("/f-calls"), event_types=["call.*"])
    exact = wh.create(org, receiver.url("/f-exact"), event_types=["agent.deleted", "call.ended"])
    everything = wh.create(org, receiver.url("/f-all"))
    for t in ("call.started", "call.recording.ready", "agent.deleted", "agent.created",
              "call.ended"):
        wh.publish(org, t)
    got = lambda p: [json.loads(r["body"])["type"] for r in receiver.wait_count(p, 0, 1)]
    receiver.wait_count("/f-all", 5, 20)
    receiver.wait_count("/f-calls", 3, 20)
    receiver.wait_count("/f-exact", 2, 20)
    wh.wait_delivery(org, everything["id"], wh.publish(org, "zzz.last")[0], "succeeded")
    assert sorted(got("/f-calls")) == ["call.ended", "call.recording.ready", "call.started"]
    assert sorted(got("/f-exact")) == ["agent.deleted", "call.ended"]
    assert len(got("/f-all")) == 6
    assert len(wh.deliveries(org, calls["id"])) == 3
    assert len(wh.deliveries(org, exact["id"])) == 2
    # events of another org reach nobody here
    wh.publish(new_org(), "call.ended")
    late = wh.create(org, receiver.url("/f-late"))
    wh.wait_delivery(org, late["id"], wh.publish(org, "call.ended")[0], "succeeded")
    assert len(receiver.at("/f-late")) == 1  # nothing from before it existed


# ---- retry rules -----------------------------------------------------------------------------

def attempts_of(delivery):
    return [(a["attempt"], a["status_code"], a["error"]) for a in delivery["attempts"]]


def test_500_gives_exactly_eight_attempts_on_schedule(wh, receiver):
    org = new_org()
    receiver.script("/r500", {"status": 500, "body": b"x" * 5000})
    ep = wh.create(org, receiver.url("/r500"))
    [event_id] = wh.publish(org, "call.failed")
    d = wh.wait_delivery(org, ep["id"], event_id, "failed", timeout=60)
    # failed is final: nothing is pending, nothing more can be attempted
    assert d["next_attempt_at"] is None and d["attempt_count"] == 8
    reqs = receiver.at("/r500")
    assert len(reqs) == 8
    assert {r["headers"]["webhook-id"] for r in reqs} == {event_id}
    assert attempts_of(d) == [(n, 500, "HTTP 500") for n in range(1, 9)]
    # the deliveries log keeps the first bytes of each response
    assert all(a["response_body"] == "x" * 1024 for a in d["attempts"])
    # the gaps follow the schedule: base delay * scale * [0.8, 1.2) (+ slack for the loop)
    for n in range(1, 8):
        gap = reqs[n]["t"] - reqs[n - 1]["t"]
        low = BASE_DELAYS[n] * SCALE * 0.8
        assert gap >= low - 0.005, (n, gap)
        assert gap <= BASE_DELAYS[n] * SCALE * 1.2 + 1.0, (n, gap)
    # the last attempt's next_attempt_at is empty; the others point at the next one
    assert d["attempts"][-1]["next_attempt_at"] is None
    assert all(a["next_attempt_at"] for a in d["attempts"][:-1])
    # manual retry: one more attempt; it succeeds when the receiver does
    receiver.script("/r500", 200)
    retried = wh.ok("deliveries.retry", org, 202, id=d["id"])
    assert retried["id"] == d["id"] and retried["status"] == "pending"
    d = wh.wait_delivery(org, ep["id"], event_id, "succeeded")
    assert attempts_of(d)[-1] == (9, 200, None) and len(receiver.at("/r500")) == 9
    wh.error("deliveries.retry", new_org(), "not_found", id=d["id"])


def test_timeout_then_success(wh, receiver):
    org = new_org()
    receiver.script("/slow", {"status": 200, "delay": 2.5}, 200)
    ep = wh.create(org, receiver.url("/slow"))
    [event_id] = wh.publish(org, "call.started")
    d = wh.wait_delivery(org, ep["id"], event_id, "succeeded")
    (n1, code1, err1), (n2, code2, err2) = attempts_of(d)
    assert (n1, code1) == (1, None) and err1.startswith("timeout")
    assert (n2, code2, err2) == (2, 200, None)
    assert 900 <= d["attempts"][0]["duration_ms"] < 2500
    assert len(receiver.at("/slow")) == 2


def test_410_disables_the_endpoint_and_emits_endpoint_disabled(wh, receiver):
    org = new_org()
    receiver.script("/gone", 410)
    watcher = wh.create(org, receiver.url("/watch"), event_types=["endpoint.disabled"])
    ep = wh.create(org, receiver.url("/gone"), event_types=["call.*"])
    [event_id] = wh.publish(org, "call.ended")
    d = wh.wait_delivery(org, ep["id"], event_id, "failed")
    assert attempts_of(d) == [(1, 410, "HTTP 410")]
    got = wh.ok("endpoints.get", org, 200, id=ep["id"])
    assert got["enabled"] is False and got["disabled_reason"] == "gone"
    # endpoint.disabled reaches the stream and the endpoint that asked for it, signed
    [req] = receiver.wait_count("/watch", 1, 20)
    ev = json.loads(req["body"])
    assert ev["type"] == "endpoint.disabled" and ev["data"]["reason"] == "gone"
    assert ev["data"]["endpoint"]["id"] == ep["id"]
    assert "secret" not in ev["data"]["endpoint"]
    assert signatures_valid(watcher["secret"], req["headers"], req["body"])
    assert [e["data"]["endpoint"]["id"] for e in wh.events(org, "endpoint.disabled")] == [ep["id"]]
    # a disabled endpoint receives nothing more, and its deliveries cannot be retried
    later = wh.publish(org, "call.ended")[0]
    wh.wait_delivery(org, watcher["id"], wh.publish(org, "endpoint.disabled")[0], "succeeded")
    assert wh.delivery(org, ep["id"], later) is None and len(receiver.at("/gone")) == 1
    assert "disabled" in wh.error("deliveries.retry", org, "conflict", id=d["id"])["message"]
    assert wh.sql(f"SELECT count(*) FROM webhook_audit WHERE resource_id = '{ep['id']}' "
                  f"AND action = 'webhook_endpoint.disable'") == "1"


def test_429_and_503_retry_after_are_honoured(wh, receiver):
    org = new_org()
    receiver.script("/busy429", {"status": 429, "headers": {"Retry-After": "2"}}, 200)
    receiver.script("/busy503", {"status": 503, "headers": {"Retry-After": "1"}}, 200)
    receiver.script("/plain429", 429, 200)
    a = wh.create(org, receiver.url("/busy429"), event_types=["call.dtmf"])
    b = wh.create(org, receiver.url("/busy503"), event_types=["call.dtmf"])
    c = wh.create(org, receiver.url("/plain429"), event_types=["call.dtmf"])
    [event_id] = wh.publish(org, "call.dtmf")
    for ep, path, wait_s in ((a, "/busy429", 2.0), (b, "/busy503", 1.0), (c, "/plain429", 0)):
        d = wh.wait_delivery(org, ep["id"], event_id, "succeeded")
        assert [x[:2] for x in attempts_of(d)] == [(1, int(path[-3:])), (2, 200)]
        r1, r2 = receiver.at(path)
        assert r2["headers"]["webhook-id"] == r1["headers"]["webhook-id"] == event_id
        gap = r2["t"] - r1["t"]
        if wait_s:
            assert gap >= wait_s - 0.05, (path, gap)
        else:  # no Retry-After: the scaled schedule (5 s * 0.0001), not the 2 s asked of a
            # sibling endpoint (the margin covers a loaded machine's poll and scheduling delay)
            assert gap < 1.8, (path, gap)


def test_redirects_are_never_followed(wh, receiver):
    org = new_org()
    receiver.script("/moved", {"status": 302, "headers": {"Location": receiver.url("/target")}},
                    {"status": 308, "headers": {"Location": receiver.url("/target")}}, 204)
    ep = wh.create(org, receiver.url("/moved"))
    [event_id] = wh.publish(org, "call.transferred")
    d = wh.wait_delivery(org, ep["id"], event_id, "succeeded")
    assert [x[:2] for x in attempts_of(d)] == [(1, 302), (2, 308), (3, 204)]
    assert "redirects are not followed" in d["attempts"][0]["error"]
    assert receiver.at("/target") == []


def test_disabled_after_failing_for_the_configured_period(tmp_root, migrated):
    env = WhEnv(tmp_root, migrated, VOXI_WEBHOOKS_DISABLE_AFTER_FAILING_S="1")
    rec = Receiver()
    try:
        org = new_org()
        rec.script("/down", 500)
        watcher = env.create(org, rec.url("/watch"), event_types=["endpoint.disabled"])
        ep = env.create(org, rec.url("/down"), event_types=["call.*"])
        [event_id] = env.publish(org, "call.ended")
        wait_for(lambda: not env.ok("endpoints.get", org, 200, id=ep["id"])["enabled"], 30,
                 "the failing endpoint to be disabled")
        got = env.ok("endpoints.get", org, 200, id=ep["id"])
        assert got["disabled_reason"] == "failing" and got["failing_since"] is not None
        d = env.wait_delivery(org, ep["id"], event_id, "failed")
        # attempts stopped before the schedule ran out, after more than a second of failing
        assert 2 <= len(d["attempts"]) < 8
        [req] = rec.wait_count("/watch", 1, 20)
        assert json.loads(req["body"])["data"]["reason"] == "failing"
        assert signatures_valid(watcher["secret"], req["headers"], req["body"])
        # re-enabling clears the failure state
        again = env.ok("endpoints.update", org, 200, id=ep["id"], body={"enabled": True})
        assert again["failing_since"] is None and again["disabled_reason"] is None
    finally:
        rec.close()
        assert env.stop() == 0


def test_test_event_and_deliveries_log(wh, receiver):
    org = new_org()
    ep = wh.create(org, receiver.url("/ping"))
    d = wh.ok("endpoints.test", org, 202, id=ep["id"])
    assert d["object"] == "webhook_delivery" and d["event_type"] == "webhook.test"
    [req] = receiver.wait_count("/ping", 1, 20)
    body = json.loads(req["body"])
    assert body["type"] == "webhook.test" and body["data"]["endpoint_id"] == ep["id"]
    assert req["headers"]["webhook-id"] == d["event_id"]
    assert signatures_valid(ep["secret"], req["headers"], req["body"])
    done = wh.wait_delivery(org, ep["id"], d["event_id"], "succeeded")
    [a] = done["attempts"]
    assert a["status_code"] == 200 and a["error"] is None and a["response_body"] == "ok"
    assert a["duration_ms"] >= 0 and re.fullmatch(r".*T.*\.\d{3}Z", a["started_at"])
    # deliveries paginate like every list
    for _ in range(2):
        wh.ok("endpoints.test", org, 202, id=ep["id"])
    receiver.wait_count("/ping", 3, 20)
    page = wh.ok("deliveries.list", org, 200, id=ep["id"], limit=2)
    assert len(page["data"]) == 2 and page["has_more"] is True
    rest = wh.ok("deliveries.list", org, 200, id=ep["id"], limit=2,
                 starting_after=page["next_cursor"])
    assert len(rest["data"]) == 1 and rest["has_more"] is False


# ---- the SSRF guard --------------------------------------------------------------------------

def blocked_urls(port):
    """Every class the issue names, in literal forms the C library accepts, plus a name."""
    hosts = [
        "127.0.0.1", "127.0.0.3", "0x7f.1", "2130706433", "017700000001", "127.1",  # loopback
        "localhost",                                                                # by name
        "10.0.0.1", "172.16.5.4", "192.168.1.1",                                    # private
        "169.254.169.254", "0xa9fea9fe", "2852039166",                              # metadata
        "100.64.0.1",                                                               # CGNAT
        "224.0.0.1", "255.255.255.255", "240.0.0.1", "192.0.0.8", "198.18.0.1",
        "192.0.2.1", "198.51.100.1", "203.0.113.1",                                 # doc
        "0.0.0.0", "[::]", "[::1]", "[fc00::1]", "[fd00::1]", "[fe80::1]", "[ff02::1]",
        "[2001:db8::1]", "[::ffff:127.0.0.1]", "[::ffff:169.254.169.254]",
        "[::ffff:10.0.0.1]", "[64:ff9b::a9fe:a9fe]", "[2002:a9fe:a9fe::1]",
    ]
    return [f"http://{h}:{port}/ssrf" for h in hosts]


def test_ssrf_rejected_at_creation(wh, receiver):
    org = new_org()
    urls = blocked_urls(receiver.port)
    errors = parallel(lambda url: wh.error("endpoints.create", org, "invalid",
                                           body={"url": url}), urls)
    for url, err in zip(urls, errors):
        assert err["fields"][0]["field"] == "url", (url, err)
        assert "not allowed" in err["fields"][0]["message"], (url, err)
    assert "resolves to a loopback address (127.0.0.1)" in errors[urls.index(
        f"http://localhost:{receiver.port}/ssrf")]["fields"][0]["message"]
    # the allowlisted host is fine, also as an IPv4-mapped address
    wh.create(org, receiver.url("/ok"))
    wh.create(org, f"http://[::ffff:{RECEIVER_HOST}]:{receiver.port}/ok")
    # and so is an update to a bad URL refused
    ep = wh.create(org, receiver.url("/ok"))
    err = wh.error("endpoints.update", org, "invalid", id=ep["id"],
                   body={"url": "http://169.254.169.254/latest/meta-data/"})
    assert "link_local" in err["fields"][0]["message"]
    # plain http is a configuration choice; https is always accepted
    assert wh.create(org, "https://example.invalid/hook")["url"] == "https://example.invalid/hook"
    assert wh.ok("endpoints.list", org, 200)["data"][0]["url"] == receiver.url("/ok")
    assert receiver.at("/ssrf") == []


def test_ssrf_rejected_at_every_delivery(wh, receiver):
    """An endpoint whose URL turns bad after creation (a DNS change, an edit behind the API's
    back) is refused again when delivering: the attempt fails, nothing is sent."""
    org = new_org()
    urls = blocked_urls(receiver.port)
    eps = parallel(lambda url: wh.create(org, receiver.url("/ok-then-bad")), urls)
    values = ", ".join(f"('{ep['id']}', '{url}')" for ep, url in zip(eps, urls))
    wh.sql(f"UPDATE webhook_endpoints e SET url = v.url FROM (VALUES {values}) v(id, url) "
           f"WHERE e.id = v.id")
    parallel(lambda ep: wh.ok("endpoints.test", org, 202, id=ep["id"]), eps)
    query = (f"SELECT e.url || ' ' || coalesce(a.status_code::text, '-') || ' ' || a.error "
             f"FROM webhook_attempts a JOIN webhook_endpoints e ON e.id = a.endpoint_id "
             f"WHERE a.org_id = '{org}' AND a.attempt = 1 ORDER BY e.url")
    wait_for(lambda: len(wh.sql(query).splitlines()) == len(urls), 30,
             "a first attempt to every bad URL")
    rows = wh.sql(query).splitlines()
    assert sorted(r.split(" ")[0] for r in rows) == sorted(urls)
    for r in rows:
        url, code, error = r.split(" ", 2)
        assert code == "-" and "not allowed" in error, r
    # the deliveries log shows it too
    d = wh.deliveries(org, eps[0]["id"])[0]
    assert d["status"] == "pending" and "not allowed" in d["attempts"][0]["error"]
    assert receiver.at("/ssrf") == [] and receiver.at("/ok-then-bad") == []


def test_tool_call_round_trip_and_function_executed(wh, receiver):
    org = new_org()
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    receiver.script("/tool", {"status": 200, "headers": {"Content-Type": "application/json"},
                              "body": b'{"temperature":21,"unit":"C"}'})
    reply = wh.invoke(org, receiver.url("/tool"), function="get_weather",
                      args={"city": "Paris"}, secret=secret, call_id="call_123",
                      agent_id="agt_9", timeout_ms=3000)["reply"]
    assert reply["status"] == "ok" and reply["http_status"] == 200, reply
    assert json.loads(reply["result_json"]) == {"temperature": 21, "unit": "C"}
    assert reply["invocation_id"].startswith("inv_")
    [req] = receiver.at("/tool")
    body = json.loads(req["body"])
    assert body["type"] == "function.call" and body["id"] == reply["invocation_id"]
    assert body["data"] == {"function": "get_weather", "arguments": {"city": "Paris"},
                            "call_id": "call_123", "agent_id": "agt_9"}
    assert req["headers"]["webhook-id"] == reply["invocation_id"]
    assert signatures_valid(secret, req["headers"], req["body"])
    # the event, with duration and outcome
    def event():
        evs = [e for e in wh.events(org, "function.executed")
               if e["data"]["invocation_id"] == reply["invocation_id"]]
        return evs[0] if evs else None
    wait_for(lambda: event() is not None, 10, "function.executed")
    ev = event()["data"]
    assert ev["status"] == "ok" and ev["http_status"] == 200 and ev["function"] == "get_weather"
    assert ev["call_id"] == "call_123" and ev["duration_ms"] == reply["duration_ms"]

    # no secret in the request: the org's tool-signing secret signs
    reply = wh.invoke(org, receiver.url("/tool"))["reply"]
    assert reply["status"] == "ok"
    org_secret = wh.sql(f"SELECT secret FROM webhook_org_secrets WHERE org_id = '{org}'")
    assert signatures_valid(org_secret, receiver.at("/tool")[-1]["headers"],
                            receiver.at("/tool")[-1]["body"])


def test_tool_call_bounds(wh, receiver):
    org = new_org()
    receiver.script("/tool-slow", {"status": 200, "delay": 2, "body": b"{}"})
    receiver.script("/tool-big", {"status": 200, "body": b"[" + b"1," * 4000 + b"1]"})
    receiver.script("/tool-text", {"status": 200, "body": b"sunny"})
    receiver.script("/tool-500", {"status": 500, "body": b'{"error":"boom"}'})
    r = wh.invoke(org, receiver.url("/tool-slow"), timeout_ms=300)["reply"]
    assert r["status"] == "timeout" and 250 <= r["duration_ms"] < 1500, r
    assert wh.invoke(org, receiver.url("/tool-big"))["reply"]["status"] == "too_large"
    assert wh.invoke(org, receiver.url("/tool-text"))["reply"]["status"] == "invalid_response"
    r = wh.invoke(org, receiver.url("/tool-500"))["reply"]
    assert r["status"] == "http_error" and r["http_status"] == 500
    assert json.loads(r["result_json"]) == {"error": "boom"}
    # the SSRF guard applies to tools too
    for url in blocked_urls(receiver.port)[:12]:
        r = wh.invoke(org, url)["reply"]
        assert r["status"] == "blocked" and "not allowed" in r["error"], (url, r)
    assert receiver.at("/ssrf") == []
    # malformed requests are refused before anything is sent
    err = wh.invoke(org, "file:///etc/passwd")["error"]
    assert err["status"] == "invalid" and err["fields"][0]["field"] == "url"
    err = wh.invoke(org, receiver.url("/tool"), args=[1, 2])["error"]
    assert err["fields"][0]["field"] == "arguments_json"
    statuses = sorted(e["data"]["status"] for e in wh.events(org, "function.executed"))
    assert statuses.count("blocked") == 12 and "timeout" in statuses


# ---- durability --------------------------------------------------------------------------------

def test_kill_9_during_a_burst_loses_no_event(tmp_root, migrated):
    env = WhEnv(tmp_root, migrated, VOXI_WEBHOOKS_HTTP_TIMEOUT_MS="2000",
                VOXI_WEBHOOKS_ACK_WAIT_MS="2000", VOXI_WEBHOOKS_CONSUMER_BATCH="64")
    rec = Receiver()
    rec.script("/burst", {"status": 200, "delay": 0.002})
    try:
        org = new_org()
        ep = env.create(org, rec.url("/burst"))
        publisher = subprocess.Popen(
            [os.path.join(TOOLS, "voxi_events"), env.nats.url, org, "call.transcript", "1000",
             "--inflight", "64"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        rec.wait_count("/burst", 50, 30)
        env.svc.proc.send_signal(signal.SIGKILL)
        env.svc.proc.wait(10)
        seen_at_kill = len(rec.at("/burst"))
        out, err = publisher.communicate(timeout=60)
        assert publisher.returncode == 0, err
        published = {json.loads(line)["id"] for line in out.splitlines()}
        assert len(published) == 1000
        assert seen_at_kill < 1000, "the burst was over before the kill: nothing was tested"
        env.start()

        def all_delivered():
            return {r["headers"]["webhook-id"] for r in rec.at("/burst")} >= published
        wait_for(all_delivered, 90, "every event of the burst to be delivered after restart")
        reqs = rec.at("/burst")
        # at least once, and every copy of an event carries the same webhook-id as its body
        for r in reqs:
            assert json.loads(r["body"])["id"] == r["headers"]["webhook-id"]
        assert {r["headers"]["webhook-id"] for r in reqs} == published
        # one delivery row per event: redeliveries were de-duplicated
        assert env.sql(f"SELECT count(*), count(DISTINCT event_id) FROM webhook_deliveries "
                       f"WHERE endpoint_id = '{ep['id']}'") == "1000|1000"
        wait_for(lambda: env.sql("SELECT count(*) FROM webhook_deliveries WHERE status <> "
                                 "'succeeded'") == "0", 60, "every delivery to be succeeded")
    finally:
        rec.close()
        assert env.stop() == 0


def test_malformed_events_are_dropped_and_counted(wh, receiver):
    org = new_org()
    ep = wh.create(org, receiver.url("/after-bad"))
    # an event with an invalid type, published straight into the stream
    out = subprocess.run([os.path.join(TOOLS, "voxi_events"), wh.nats.url, org, "Bad.Type", "1"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    [good] = wh.publish(org, "call.ended")
    wh.wait_delivery(org, ep["id"], good, "succeeded")
    assert len(receiver.at("/after-bad")) == 1
    _, _, metrics = http_get(wh.svc.health_port, "/metrics")
    assert re.search(r'^voxi_webhooks_events_total\{outcome="invalid"\} [1-9]', metrics, re.M)
    assert re.search(r'^voxi_webhooks_attempts_total\{outcome="succeeded"\} [1-9]', metrics,
                     re.M)
    assert "voxi_webhooks_first_attempt_delay_seconds_bucket" in metrics


def test_sigterm_with_attempts_in_flight_exits_zero_and_loses_nothing(tmp_root, migrated):
    env = WhEnv(tmp_root, migrated, VOXI_WEBHOOKS_HTTP_TIMEOUT_MS="5000")
    rec = Receiver()
    rec.script("/drain", {"status": 200, "delay": 0.5})
    try:
        org = new_org()
        ep = env.create(org, rec.url("/drain"))
        ids = env.publish(org, "call.ended", count=20)
        rec.wait_count("/drain", 1, 20)
        started = time.monotonic()
        assert env.svc.stop() == 0, env.svc.read_log()[-3000:]
        assert time.monotonic() - started < 5
        env.start()
        wait_for(lambda: env.sql(f"SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = "
                                 f"'{ep['id']}' AND status = 'succeeded'") == "20", 60,
                 "all 20 deliveries after the restart")
        assert {r["headers"]["webhook-id"] for r in rec.at("/drain")} == set(ids)
    finally:
        rec.close()
        assert env.stop() == 0


def test_bad_configuration_exits_2_listing_every_problem(tmp_root):
    env = base_env("nats://127.0.0.1:1")
    env.update({"VOXI_WEBHOOKS_RETRY_SCALE": "fast", "VOXI_WEBHOOKS_SSRF_ALLOWLIST": "10.0.0.0/99",
                "VOXI_WEBHOOKS_HTTP_TIMEOUT_MS": "0"})
    out = subprocess.run([os.path.join(BIN, "voxi-webhooks")], env=env, capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 2
    for name in ("VOXI_WEBHOOKS_RETRY_SCALE", "VOXI_WEBHOOKS_SSRF_ALLOWLIST",
                 "VOXI_WEBHOOKS_HTTP_TIMEOUT_MS"):
        assert name in out.stderr, out.stderr


# ---- the same through the gateway ------------------------------------------------------------

@pytest.fixture(scope="module")
def gw(api):
    status, _, doc = api.get("/v1/openapi.json", key="")
    assert status == 200 and "/v1/webhook-endpoints" in doc["paths"]
    status, _, body = api.post("/v1/orgs", {"name": "webhooks http test"})
    assert status == 201, body
    return api, body["api_key"]["secret"]


@pytest.fixture(scope="module")
def local_receiver():
    r = Receiver(host="127.0.0.1")
    yield r
    r.close()


def test_http_endpoint_lifecycle(gw, local_receiver):
    """CRUD, the secret shown once, a test event delivered and signed, the deliveries log,
    retry and rotation, with the action POSTs sent without any body."""
    api, key = gw
    status, _, ep = api.post("/v1/webhook-endpoints",
                             {"url": local_receiver.url("/http"), "event_types": ["webhook.*"]},
                             key=key)
    assert status == 201, ep
    assert ep["secret"].startswith("whsec_")
    status, _, got = api.get(f"/v1/webhook-endpoints/{ep['id']}", key=key)
    assert status == 200 and "secret" not in got
    status, _, page = api.get("/v1/webhook-endpoints?limit=1", key=key)
    assert status == 200 and page["object"] == "list" and len(page["data"]) == 1
    assert all("secret" not in e for e in page["data"])
    status, _, got = api.patch(f"/v1/webhook-endpoints/{ep['id']}",
                               {"metadata": {"a": "b"}}, key=key)
    assert status == 200 and got["metadata"] == {"a": "b"}
    assert "secret" not in got
    # an action POST with no body and no Content-Type
    status, _, d = api.post(f"/v1/webhook-endpoints/{ep['id']}/test", key=key)
    assert status == 202, d
    assert d["object"] == "webhook_delivery" and d["event_type"] == "webhook.test"
    [req] = local_receiver.wait_count("/http", 1, 20)
    assert signatures_valid(ep["secret"], req["headers"], req["body"])

    def attempted():
        s, _, log = api.get(f"/v1/webhook-endpoints/{ep['id']}/deliveries", key=key)
        return s == 200 and log["data"] and log["data"][0]["status"] == "succeeded"
    wait_for(attempted, 20, "the test delivery in the deliveries log")
    status, _, again = api.post(f"/v1/webhook-deliveries/{d['id']}/retry", key=key)
    assert status == 202, again
    assert again["id"] == d["id"] and again["status"] == "pending"
    local_receiver.wait_count("/http", 2, 20)
    status, _, rotated = api.post(f"/v1/webhook-endpoints/{ep['id']}/rotate-secret", key=key)
    assert status == 200 and rotated["secret"] != ep["secret"]
    assert rotated["secret"].startswith("whsec_")
    status, _, got = api.get(f"/v1/webhook-endpoints/{ep['id']}", key=key)
    assert status == 200 and "secret" not in got and got["previous_secret_expires_at"]
    # the next event is signed with the new secret
    status, _, d2 = api.post(f"/v1/webhook-endpoints/{ep['id']}/test", {}, key=key)
    assert status == 202, d2
    third = local_receiver.wait_count("/http", 3, 20)[2]
    assert signatures_valid(rotated["secret"], third["headers"], third["body"])
    # the log pages like every list
    def both_succeeded():
        s, _, log = api.get(f"/v1/webhook-endpoints/{ep['id']}/deliveries", key=key)
        return s == 200 and len(log["data"]) == 2 and all(
            x["status"] == "succeeded" and x["attempts"] for x in log["data"])
    wait_for(both_succeeded, 20, "both deliveries succeeded in the log")
    status, _, first = api.get(f"/v1/webhook-endpoints/{ep['id']}/deliveries?limit=1", key=key)
    assert status == 200 and first["has_more"] and len(first["data"]) == 1
    status, _, second = api.get(f"/v1/webhook-endpoints/{ep['id']}/deliveries?limit=1"
                                f"&starting_after={first['next_cursor']}", key=key)
    assert status == 200 and not second["has_more"]
    assert {first["data"][0]["id"], second["data"][0]["id"]} == {d["id"], d2["id"]}
    assert second["data"][0]["attempts"], second
    # unknown delivery: a problem, not a crash
    status, headers, body = api.post("/v1/webhook-deliveries/wd_00000000000000000000/retry",
                                     key=key)
    assert status == 404 and headers["content-type"] == "application/problem+json", body
    status, _, _ = api.delete(f"/v1/webhook-endpoints/{ep['id']}", key=key)
    assert status == 204
    status, _, _ = api.get(f"/v1/webhook-endpoints/{ep['id']}", key=key)
    assert status == 404


def test_http_ssrf_is_a_problem_with_field_errors(gw):
    api, key = gw
    status, headers, body = api.post("/v1/webhook-endpoints",
                                     {"url": "http://169.254.169.254/latest/meta-data/"},
                                     key=key)
    assert status == 400, body
    assert headers["content-type"].startswith("application/problem+json")
    assert body["type"].endswith("/invalid")
    assert body["errors"][0]["field"] == "url" and "not allowed" in body["errors"][0]["message"]
    status, _, body = api.get("/v1/webhook-endpoints/we_00000000000000000000", key=key)
    assert status == 404 and body["type"].endswith("/not_found")


def test_http_scopes_and_tenancy(gw, local_receiver):
    api, key = gw
    status, _, reader = api.post("/v1/api-keys", {"name": "hooks reader",
                                                  "scopes": ["webhooks:read"]}, key=key)
    assert status == 201, reader
    status, _, ep = api.post("/v1/webhook-endpoints", {"url": local_receiver.url("/scoped")},
                             key=key)
    assert status == 201, ep
    status, _, body = api.post("/v1/webhook-endpoints", {"url": local_receiver.url("/x")},
                               key=reader["secret"])
    assert status == 403 and "webhooks:write" in body["detail"], body
    status, _, got = api.get(f"/v1/webhook-endpoints/{ep['id']}", key=reader["secret"])
    assert status == 200 and got["id"] == ep["id"]
    # another org's key sees a 404, never a 403
    status, _, other = api.post("/v1/orgs", {"name": "webhooks other org"})
    assert status == 201, other
    other_key = other["api_key"]["secret"]
    status, _, d = api.post(f"/v1/webhook-endpoints/{ep['id']}/test", key=key)
    assert status == 202, d
    for method, path in (("GET", f"/v1/webhook-endpoints/{ep['id']}"),
                         ("PATCH", f"/v1/webhook-endpoints/{ep['id']}"),
                         ("DELETE", f"/v1/webhook-endpoints/{ep['id']}"),
                         ("POST", f"/v1/webhook-endpoints/{ep['id']}/rotate-secret"),
                         ("POST", f"/v1/webhook-endpoints/{ep['id']}/test"),
                         ("GET", f"/v1/webhook-endpoints/{ep['id']}/deliveries"),
                         ("POST", f"/v1/webhook-deliveries/{d['id']}/retry")):
        body = {"description": "x"} if method == "PATCH" else None
        status, headers, reply = api.request(method, path, body=body, key=other_key)
        assert status == 404, (method, path, reply)
        assert headers["content-type"] == "application/problem+json"
        assert reply["type"].endswith("/not_found"), reply
    # the other org's list does not show it
    status, _, page = api.get("/v1/webhook-endpoints", key=other_key)
    assert status == 200 and all(e["id"] != ep["id"] for e in page["data"])
    # the reader may read but not act
    for method, path in (("POST", f"/v1/webhook-endpoints/{ep['id']}/rotate-secret"),
                         ("POST", f"/v1/webhook-endpoints/{ep['id']}/test"),
                         ("POST", f"/v1/webhook-deliveries/{d['id']}/retry"),
                         ("DELETE", f"/v1/webhook-endpoints/{ep['id']}")):
        status, _, reply = api.request(method, path, key=reader["secret"])
        assert status == 403 and "webhooks:write" in reply["detail"], (method, path, reply)
    status, _, log = api.get(f"/v1/webhook-endpoints/{ep['id']}/deliveries",
                             key=reader["secret"])
    assert status == 200 and log["object"] == "list", log
