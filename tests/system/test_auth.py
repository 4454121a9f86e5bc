"""The auth service through the public HTTP API: API keys, orgs, every way to fail
authentication, rate limits (also shared by two auth instances behind two gateways),
revocation, JWTs, bootstrap, and that secrets never reach the database or the logs.

Waits are bounded polls of a condition, or the Retry-After the server itself gave.
"""
import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import stat
import subprocess
import threading
import time

import pytest

from conftest import (BIN, TOOLS, Api, Nats, Service, base_env, free_port, http_get,
                      wait_for)

KEY_RE = re.compile(r"^vx_[0-9A-Za-z]{38}$")
ALL_SCOPES = ["agents:read", "agents:write", "numbers:read", "numbers:write", "calls:read",
              "calls:write", "webhooks:read", "webhooks:write", "keys:admin"]
JWT_SECRET = "jwt-test-secret-0123456789abcdef0123456789"
JWT_ISS = "https://idp.voxi.test/"
JWT_AUD = "voxihub-api"


# ---- helpers ------------------------------------------------------------------------------

def new_org(api, name="auth test org"):
    """Creates an org as the platform admin; returns (org, first key's secret)."""
    status, _, body = api.post("/v1/orgs", {"name": name})
    assert status == 201, body
    return body["org"], body["api_key"]["secret"]


def create_key(api, key=None, **fields):
    status, _, body = api.post("/v1/api-keys", fields or {"name": "k"}, key=key)
    assert status == 201, body
    return body


def without_request_id(body):
    assert isinstance(body, dict) and body["request_id"].startswith("req_"), body
    return {k: v for k, v in body.items() if k != "request_id"}


def metric(port, name, labels=""):
    """Sum of the samples of `name` whose label set contains `labels`."""
    _, _, text = http_get(port, "/metrics")
    total = 0.0
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$", line)
        if m and m.group(1) == name and labels in (m.group(2) or ""):
            total += float(m.group(3))
    return total


def sourced_get(port, path, source, headers=None):
    """GET from a given loopback address (any 127.0.0.0/8 address reaches a gateway on
    127.0.0.1): a client IP, so a per-IP rate-limit bucket, that no other test shares.
    Returns (status, headers with lower-case names, parsed JSON or None)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        text = r.read().decode(errors="replace")
        return r.status, {k.lower(): v for k, v in r.getheaders()}, json.loads(text) if text else None
    finally:
        conn.close()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(claims, alg="HS256", secret=JWT_SECRET, rsa_key=None, header=None):
    head = header or {"alg": alg, "typ": "JWT"}
    signing = f"{b64url(json.dumps(head).encode())}.{b64url(json.dumps(claims).encode())}"
    if alg == "HS256":
        sig = hmac.new(secret.encode(), signing.encode(), hashlib.sha256).digest()
    elif alg == "RS256":
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding
        sig = rsa_key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
    else:
        sig = b""
    return f"{signing}.{b64url(sig)}"


def claims(org, **over):
    now = int(time.time())
    c = {"iss": JWT_ISS, "aud": JWT_AUD, "sub": "user-7", "org_id": org,
         "scope": "keys:admin agents:read", "exp": now + 300, "nbf": now - 5, "iat": now}
    c.update(over)
    return c


class Pair:
    """Two auth instances and two gateways on a nats-server of their own, sharing the
    session's database: the multi-instance deployment."""

    def __init__(self, tmp_root, pg, admin_key, **auth_env):
        self.nats = Nats(tmp_root)
        self.nats.start()
        env = base_env(self.nats.url, pg)
        self.auth = [Service("auth", dict(env, VOXI_INSTANCE_ID=f"auth-{i}", **auth_env),
                             tmp_root).start() for i in range(2)]
        self.gateways = []
        for i in range(2):
            genv = dict(env, VOXI_GATEWAY_HTTP_PORT=str(free_port()),
                        VOXI_INSTANCE_ID=f"gateway-{i}")
            self.gateways.append(Service("gateway", genv, tmp_root).start())
        for s in self.auth + self.gateways:
            s.wait_ready()
        self.apis = [Api(int(g.env["VOXI_GATEWAY_HTTP_PORT"]), admin_key) for g in self.gateways]

    def stop(self):
        codes = [s.stop() for s in self.auth + self.gateways]
        self.nats.stop()
        return codes


@pytest.fixture(scope="module")
def pair(tmp_root, migrated, admin_key):
    # A long cache TTL: only the revocation broadcast can explain a quick revocation.
    p = Pair(tmp_root, migrated, admin_key, VOXI_AUTH_KEY_CACHE_TTL_MS="60000")
    yield p
    codes = p.stop()
    assert codes == [0, 0, 0, 0], codes


# ---- keys through the API -----------------------------------------------------------------

def test_key_crud_and_secret_shown_once(api):
    created = create_key(api, name="ci deploy", scopes=["agents:read", "keys:admin"])
    secret = created["secret"]
    assert KEY_RE.match(secret), secret
    assert created["object"] == "api_key" and created["id"].startswith("key_")
    assert created["prefix"] == secret[:12]
    assert created["scopes"] == ["agents:read", "keys:admin"]
    assert created["name"] == "ci deploy" and created["revoked_at"] is None
    assert created["expires_at"] is None and created["last_used_at"] is None
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", created["created_at"])

    status, _, got = api.get(f"/v1/api-keys/{created['id']}")
    assert status == 200
    assert "secret" not in got and secret not in json.dumps(got)
    assert {k: v for k, v in created.items() if k != "secret"} == got

    # the new key works, with its own scopes
    status, _, listed = api.get("/v1/api-keys?limit=100", key=secret)
    assert status == 200 and listed["object"] == "list"
    assert secret not in json.dumps(listed)
    assert created["id"] in [k["id"] for k in listed["data"]]

    status, _, revoked = api.delete(f"/v1/api-keys/{created['id']}")
    assert status == 200 and revoked["revoked_at"] is not None
    status, _, again = api.delete(f"/v1/api-keys/{created['id']}")
    assert status == 200 and again["revoked_at"] == revoked["revoked_at"]
    status, _, _ = api.get("/v1/api-keys", key=secret)
    assert status == 401


def test_list_pagination(api):
    org, secret = new_org(api, "paging org")
    ids = [create_key(api, key=secret, name=f"k{i}")["id"] for i in range(4)]
    seen, cursor = [], None
    while True:
        path = "/v1/api-keys?limit=2" + (f"&starting_after={cursor}" if cursor else "")
        status, _, page = api.get(path, key=secret)
        assert status == 200, page
        assert len(page["data"]) <= 2
        seen += [k["id"] for k in page["data"]]
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        assert page["next_cursor"] == page["data"][-1]["id"]
        cursor = page["next_cursor"]
    assert seen[1:] == ids and len(seen) == 5  # the org's first key, then ours in order
    status, _, body = api.get("/v1/api-keys?starting_after=key_00000000000000000000",
                              key=secret)
    assert status == 400 and body["errors"][0]["field"] == "starting_after"


def test_create_validation_names_fields(api):
    status, _, body = api.post("/v1/api-keys", {
        "name": "", "scopes": ["agents:read", "calls:listen", "agents:read"],
        "expires_at": "2001-01-01T00:00:00Z", "colour": "red"})
    assert status == 400, body
    assert body["type"].endswith("/invalid")
    fields = {e["field"]: e["message"] for e in body["errors"]}
    assert set(fields) == {"name", "scopes[1]", "scopes[2]", "expires_at", "colour"}, fields
    assert "unknown scope" in fields["scopes[1]"]
    for bad in ["tomorrow", "2030-02-30T00:00:00Z", "2030-01-01 00:00:00Z", 5]:
        status, _, body = api.post("/v1/api-keys", {"name": "x", "expires_at": bad})
        assert status == 400 and body["errors"][0]["field"] == "expires_at", (bad, body)
    status, _, body = api.post("/v1/api-keys", {"name": "x", "scopes": ["platform:admin"]})
    assert status == 400 and body["errors"][0]["field"] == "scopes[0]"
    # a key cannot grant scopes it does not hold
    limited = create_key(api, name="keys only", scopes=["keys:admin"])["secret"]
    status, _, body = api.post("/v1/api-keys", {"name": "x", "scopes": ["agents:write"]},
                               key=limited)
    assert status == 400 and body["errors"][0]["field"] == "scopes[0]", body


def test_secret_is_not_in_the_database_or_logs(api, stack, migrated):
    created = create_key(api, name="find me")
    secret = created["secret"]
    status, _, _ = api.get("/v1/api-keys", key=secret)
    assert status == 200
    dump = subprocess.run(["pg_dump", "--data-only", migrated.dsn()], capture_output=True,
                          text=True, check=True, timeout=60).stdout
    assert created["id"] in dump and created["prefix"] in dump
    assert secret not in dump and secret[12:] not in dump
    stored = migrated.psql(f"SELECT encode(secret_hash, 'hex') FROM api_keys "
                           f"WHERE id = '{created['id']}'")
    assert stored == hashlib.sha256(secret.encode()).hexdigest()
    for name in ("auth", "gateway"):
        assert secret not in stack[name].read_log(), name


def test_audit_rows(api, migrated):
    created = create_key(api, name="audited", scopes=["calls:read"])
    api.delete(f"/v1/api-keys/{created['id']}")
    rows = migrated.psql(
        "SELECT action || '|' || principal_kind || '|' || changes::text || '|' || request_id "
        f"FROM auth_audit WHERE resource_id = '{created['id']}' ORDER BY id").splitlines()
    assert len(rows) == 2, rows
    assert rows[0].startswith("api_key.create|platform_admin|")
    assert '"scopes": ["calls:read"]' in rows[0] and '"name": "audited"' in rows[0]
    assert rows[1].startswith("api_key.revoke|platform_admin|")
    assert all(r.split("|")[-1].startswith("req_") for r in rows)
    assert created["secret"] not in "".join(rows)


def test_key_events(api, stack, nats):
    org, secret = new_org(api, "events org")
    created = create_key(api, key=secret, name="evented")
    api.delete(f"/v1/api-keys/{created['id']}", key=secret)

    found = []

    def all_four():
        out = subprocess.run([os.path.join(TOOLS, "voxi_js_read"), nats.url, "VOXI_EVENTS",
                              f"voxi.events.{org['id']}.>"], capture_output=True, text=True,
                             timeout=30)
        assert out.returncode == 0, out.stderr
        found[:] = [json.loads(line) for line in out.stdout.splitlines()]
        return len(found) >= 4
    # published after the replies: poll the stream
    wait_for(all_four, 10, "org.created, 2 x api_key.created, api_key.revoked")
    types = [e["data"]["type"] for e in found]
    assert types.count("org.created") == 1 and types.count("api_key.created") == 2
    assert types.count("api_key.revoked") == 1
    for e in found:
        assert e["msg_id"] == e["data"]["id"] and e["data"]["org_id"] == org["id"]
        assert "secret" not in json.dumps(e)
    revoked = [e for e in found if e["data"]["type"] == "api_key.revoked"][0]
    assert revoked["data"]["data"]["id"] == created["id"]
    assert revoked["data"]["data"]["revoked_at"] is not None


def test_last_used_at_is_written(api):
    created = create_key(api, name="used")
    status, _, _ = api.get("/v1/api-keys", key=created["secret"])
    assert status == 200

    def used():
        return api.get(f"/v1/api-keys/{created['id']}")[2]["last_used_at"] is not None
    wait_for(used, 10, "last_used_at to be written")


# ---- orgs ---------------------------------------------------------------------------------

def test_only_platform_admin_creates_orgs(api):
    org, secret = new_org(api, "acme")
    assert org["object"] == "org" and org["id"].startswith("org_") and org["name"] == "acme"
    status, _, body = api.post("/v1/orgs", {"name": "nope"}, key=secret)
    assert status == 403, body
    status, _, body = api.post("/v1/orgs", {"name": "x", "plan": "gold"})
    assert status == 400 and body["errors"][0]["field"] == "plan"
    status, _, body = api.post("/v1/orgs", {"name": ""})
    assert status == 400 and body["errors"][0]["field"] == "name"
    # the first key of a new org holds every scope but platform:admin
    status, _, listed = api.get("/v1/api-keys", key=secret)
    assert status == 200 and listed["data"][0]["scopes"] == ALL_SCOPES


def test_cross_org_isolation(api):
    key_a = create_key(api, name="org a key")
    _, secret_b = new_org(api, "org b")
    for method in ("GET", "DELETE"):
        status, _, body = api.request(method, f"/v1/api-keys/{key_a['id']}", key=secret_b)
        assert status == 404, (method, body)
    status, _, listed = api.get("/v1/api-keys?limit=100", key=secret_b)
    assert key_a["id"] not in [k["id"] for k in listed["data"]]
    status, _, still = api.get(f"/v1/api-keys/{key_a['id']}")
    assert status == 200 and still["revoked_at"] is None


# ---- authentication failures --------------------------------------------------------------

def test_every_credential_failure_is_the_same_401(api, migrated):
    revoked = create_key(api, name="to revoke")
    api.delete(f"/v1/api-keys/{revoked['id']}")
    expired = create_key(api, name="to expire")
    # never used, so not cached: expire it in the database
    migrated.psql("UPDATE api_keys SET expires_at = now() - interval '1 second' "
                  f"WHERE id = '{expired['id']}'")
    good = api.key
    wrong_checksum = good[:-1] + ("a" if good[-1] != "a" else "b")
    unknown = create_key(api, name="then deleted")
    migrated.psql(f"DELETE FROM api_keys WHERE id = '{unknown['id']}'")
    cases = {
        "missing": {},
        "basic scheme": {"Authorization": "Basic dXNlcjpwYXNz"},
        "empty bearer": {"Authorization": "Bearer "},
        "garbage": {"Authorization": "Bearer not-a-key"},
        "wrong checksum": {"Authorization": f"Bearer {wrong_checksum}"},
        "short key": {"Authorization": f"Bearer {good[:-2]}"},
        "unknown key": {"Authorization": f"Bearer {unknown['secret']}"},
        "revoked key": {"Authorization": f"Bearer {revoked['secret']}"},
        "expired key": {"Authorization": f"Bearer {expired['secret']}"},
        "jwt, none configured": {"Authorization": "Bearer " + jwt(claims("org_" + "0" * 20))},
        "huge": {"Authorization": "Bearer " + "a" * 20000},
    }
    seen = {}
    for name, headers in cases.items():
        status, rh, body = api.request("GET", "/v1/api-keys", key="", headers=headers)
        assert status == 401, (name, body)
        assert rh["content-type"].startswith("application/problem+json"), name
        seen[name] = (without_request_id(body), rh.get("www-authenticate"))
    first = next(iter(seen.values()))
    assert all(v == first for v in seen.values()), seen


def test_wrong_scope_is_403(api):
    reader = create_key(api, name="reader", scopes=["agents:read"])
    status, _, body = api.get("/v1/api-keys", key=reader["secret"])
    assert status == 403, body
    assert "keys:admin" in body["detail"]
    status, _, body = api.post("/v1/orgs", {"name": "x"}, key=reader["secret"])
    assert status == 403, body


# ---- rate limits --------------------------------------------------------------------------

def test_429_headers_and_window_reset(api, migrated):
    org, secret = new_org(api, "limited org")
    migrated.psql(f"INSERT INTO org_limits (org_id, read_per_min) VALUES ('{org['id']}', 30)")
    started = time.monotonic()
    admitted, first, limited = 0, None, None
    for _ in range(200):
        status, rh, body = api.get("/v1/api-keys", key=secret)
        if status == 429:
            limited = (rh, body)
            break
        assert status == 200, body
        admitted += 1
        first = first or rh
    elapsed = time.monotonic() - started
    assert limited is not None
    # burst = limit: 30 at once, plus one per 2 s that passed meanwhile
    assert 30 <= admitted <= 30 + int(elapsed / 2) + 1, (admitted, elapsed)
    assert first["ratelimit-policy"] == '"read";q=30;w=60'
    assert first["x-ratelimit-limit"] == "30" and first["x-ratelimit-remaining"] == "29"
    assert "ratelimit" in first and "x-ratelimit-reset" in first

    rh, body = limited
    assert body["status"] == 429 and body["type"].endswith("/rate_limited"), body
    retry = int(rh["retry-after"])
    assert 1 <= retry <= 2, rh
    assert rh["ratelimit-policy"] == '"read";q=30;w=60'
    assert rh["x-ratelimit-remaining"] == "0" and rh["x-ratelimit-limit"] == "30"
    assert int(rh["x-ratelimit-reset"]) >= retry and "ratelimit" in rh
    # the write class has its own bucket
    status, _, _ = api.post("/v1/api-keys", {"name": "still writes"}, key=secret)
    assert status == 201

    time.sleep(retry)  # the server said when: wait exactly that
    status, rh, body = api.get("/v1/api-keys", key=secret)
    assert status == 200, (rh, body)


def test_anonymous_routes_are_limited_per_ip(tmp_root, migrated, admin_key):
    """GET /v1/openapi.json needs no key and counts against the client IP (60/min here 5).
    The client connects from an address of its own: the per-IP bucket lives in the session's
    database, where the other tests' 401s from 127.0.0.1 count too."""
    own = Nats(tmp_root)
    own.start()
    try:
        env = base_env(own.url, migrated)
        auth = Service("auth", dict(env, VOXI_AUTH_RATE_ANON_PER_MIN="5"), tmp_root).start()
        gw = Service("gateway", env, tmp_root).start()
        auth.wait_ready()
        gw.wait_ready()
        port = int(gw.env["VOXI_GATEWAY_HTTP_PORT"])
        statuses = [sourced_get(port, "/v1/openapi.json", "127.0.0.11")[0] for _ in range(8)]
        assert statuses[:5] == [200] * 5 and 429 in statuses[5:], statuses
        status, rh, _ = sourced_get(port, "/v1/openapi.json", "127.0.0.11")
        assert status == 429 and rh["ratelimit-policy"] == '"anonymous";q=5;w=60'
        assert int(rh["retry-after"]) >= 1
        # another address has a bucket of its own
        assert sourced_get(port, "/v1/openapi.json", "127.0.0.12")[0] == 200
        assert auth.stop() == 0 and gw.stop() == 0
    finally:
        own.stop()


def test_401_counts_against_the_client_ip(tmp_root, migrated, admin_key):
    """A request without valid credentials is anonymous: every 401 carries the rate-limit
    headers of its client IP's bucket (the one anonymous routes spend), and once that is
    spent the answer is 429 with Retry-After, whatever the route: guessing keys from one
    address is limited. A valid key from that address still has buckets of its own."""
    own = Nats(tmp_root)
    own.start()
    try:
        env = base_env(own.url, migrated)
        auth = Service("auth", dict(env, VOXI_AUTH_RATE_ANON_PER_MIN="5"), tmp_root).start()
        gw = Service("gateway", env, tmp_root).start()
        auth.wait_ready()
        gw.wait_ready()
        port = int(gw.env["VOXI_GATEWAY_HTTP_PORT"])
        source = "127.0.0.13"
        bad = [{}, {"Authorization": "Bearer vx_not_a_key"},
               {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer a.b.c"}]
        remaining = []
        for headers in bad:
            status, rh, body = sourced_get(port, "/v1/agents", source, headers)
            assert status == 401 and body["type"].endswith("/unauthorized"), body
            assert rh["www-authenticate"] == "Bearer"
            assert rh["ratelimit-policy"] == '"anonymous";q=5;w=60', rh
            assert rh["x-ratelimit-limit"] == "5" and "x-ratelimit-reset" in rh
            assert rh["ratelimit"].startswith("limit=5, remaining=")
            assert "retry-after" not in rh
            remaining.append(int(rh["x-ratelimit-remaining"]))
        assert remaining == [4, 3, 2, 1], remaining
        # the anonymous route spends the same bucket: its last token
        status, rh, _ = sourced_get(port, "/v1/openapi.json", source)
        assert status == 200 and rh["x-ratelimit-remaining"] == "0"
        # spent: 429 for bad credentials and anonymous routes alike
        status, rh, body = sourced_get(port, "/v1/agents", source,
                                       {"Authorization": "Bearer vx_still_not_a_key"})
        assert status == 429 and body["type"].endswith("/rate_limited"), body
        assert int(rh["retry-after"]) >= 1
        assert rh["ratelimit-policy"] == '"anonymous";q=5;w=60'
        assert rh["x-ratelimit-remaining"] == "0" and int(rh["x-ratelimit-reset"]) >= 1
        status, rh, _ = sourced_get(port, "/v1/openapi.json", source)
        assert status == 429 and int(rh["retry-after"]) >= 1
        status, rh, _ = sourced_get(port, "/v1/api-keys", source,
                                    {"Authorization": f"Bearer {admin_key}"})
        assert status == 200 and rh["ratelimit-policy"].startswith('"read"'), rh
        # the bucket is per address: another one still gets a plain 401
        status, rh, _ = sourced_get(port, "/v1/agents", "127.0.0.14")
        assert status == 401 and rh["x-ratelimit-remaining"] == "4"
        assert auth.stop() == 0 and gw.stop() == 0
    finally:
        own.stop()


def test_rate_limit_accuracy_two_auth_two_gateways(pair, migrated):
    """Requests alternate between two gateways (each asking either auth instance) as fast as
    8 clients can send them; admitted must match one shared GCRA bucket within 10%:
    burst L plus L/60 per second of the run."""
    limit = 600
    org, secret = new_org(pair.apis[0], "accuracy org")
    migrated.psql(f"INSERT INTO org_limits (org_id, read_per_min) VALUES "
                  f"('{org['id']}', {limit})")
    total, threads = 3000, 8
    counts = {200: 0, 429: 0}
    per_gateway = [0, 0]
    errors = []
    lock = threading.Lock()

    def client(n):
        conns = [http.client.HTTPConnection("127.0.0.1", a.port, timeout=10) for a in pair.apis]
        try:
            for i in range(n, total, threads):
                g = i % 2
                conns[g].request("GET", "/v1/api-keys?limit=1",
                                 headers={"Authorization": f"Bearer {secret}"})
                r = conns[g].getresponse()
                r.read()
                with lock:
                    if r.status in counts:
                        counts[r.status] += 1
                        per_gateway[g] += r.status == 200
                    else:
                        errors.append(r.status)
        finally:
            for c in conns:
                c.close()

    workers = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
    started = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.monotonic() - started
    assert not errors, errors[:10]
    admitted = counts[200]
    expected = min(total, limit + elapsed * limit / 60)
    error = (admitted - expected) / expected
    print(f"\nrate-limit accuracy: admitted {admitted} of {total} in {elapsed:.2f} s; "
          f"one bucket admits {expected:.1f}; error {error * 100:+.1f}%; "
          f"per gateway {per_gateway}")
    assert counts[429] > 0
    assert abs(error) <= 0.10, (admitted, expected)
    assert admitted <= expected + 2  # never more than one bucket allows
    assert min(per_gateway) > 0
    for a in pair.auth:  # both instances did the work
        assert metric(a.health_port, "voxi_auth_authenticate_total", 'outcome="ok"') > 0


def test_gateway_slices_and_revocation(pair, migrated):
    """With a limit large enough for slices (60000/min here), a gateway serves most requests
    of a key from auth's decision and a slice of the key's tokens, without asking auth; the
    headers stay those of the key's bucket. A revocation still stops the key at once on a
    gateway holding a slice: auth's broadcast reaches the gateways too."""
    status, _, body = pair.apis[0].post("/v1/orgs", {"name": "sliced org"})
    assert status == 201, body
    org, key = body["org"], body["api_key"]
    migrated.psql(f"INSERT INTO org_limits (org_id, read_per_min) VALUES ('{org['id']}', 60000)")
    gw_port = pair.gateways[0].health_port

    def auth_ok():
        return sum(metric(a.health_port, "voxi_auth_authenticate_total", 'outcome="ok"')
                   for a in pair.auth)

    hits_before = metric(gw_port, "voxi_gateway_auth_cache_total", 'result="hit"')
    ok_before = auth_ok()
    client = Api(pair.apis[0].port, key["secret"])
    total = 300
    for _ in range(total):
        status, rh, body = client.get("/v1/api-keys?limit=1")
        assert status == 200, body
        assert rh["ratelimit-policy"] == '"read";q=60000;w=60', rh
        assert 0 < int(rh["x-ratelimit-remaining"]) <= 60000
    hits = metric(gw_port, "voxi_gateway_auth_cache_total", 'result="hit"') - hits_before
    asked = auth_ok() - ok_before
    print(f"\ngateway slices: {hits:.0f} of {total} requests served without asking auth")
    assert hits + asked == total, (hits, asked)
    assert hits >= total / 2, (hits, asked)

    evictions = metric(gw_port, "voxi_gateway_auth_cache_evictions_total")
    status, _, _ = client.get("/v1/api-keys?limit=1")  # a live slice on gateway 0
    assert status == 200
    status, _, _ = pair.apis[1].delete(f"/v1/api-keys/{key['id']}", key=key["secret"])
    assert status == 200
    wait_for(lambda: metric(gw_port, "voxi_gateway_auth_cache_evictions_total") > evictions, 5,
             "gateway 0 to drop the revoked key")
    for _ in range(5):
        status, _, _ = client.get("/v1/api-keys?limit=1")
        assert status == 401


def test_revocation_reaches_every_instance(pair):
    api = pair.apis[0]
    created = create_key(api, name="shared")
    for i in range(20):  # both instances see (and cache) the key
        status, _, _ = pair.apis[i % 2].get("/v1/api-keys", key=created["secret"])
        assert status == 200
    before = [metric(a.health_port, "voxi_auth_cache_evictions_total") for a in pair.auth]
    status, _, _ = api.delete(f"/v1/api-keys/{created['id']}")
    assert status == 200
    # the cache TTL is 60 s here: only the broadcast can make this quick
    wait_for(lambda: all(metric(a.health_port, "voxi_auth_cache_evictions_total") > b
                         for a, b in zip(pair.auth, before)), 5, "both instances to evict")
    for i in range(20):
        status, _, _ = pair.apis[i % 2].get("/v1/api-keys", key=created["secret"])
        assert status == 401


# ---- JWT ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def jwt_stack(tmp_root, migrated):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = os.path.join(tmp_root, "jwt-rs256.pem")
    with open(pem, "wb") as f:
        f.write(key.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo))
    own = Nats(tmp_root)
    own.start()
    env = base_env(own.url, migrated)
    auth = Service("auth", dict(env, VOXI_AUTH_JWT_HS256_SECRET=JWT_SECRET,
                                VOXI_AUTH_JWT_RS256_PUBLIC_KEY_FILE=pem,
                                VOXI_AUTH_JWT_ISSUER=JWT_ISS, VOXI_AUTH_JWT_AUDIENCE=JWT_AUD),
                   tmp_root).start()
    gw = Service("gateway", env, tmp_root).start()
    try:
        auth.wait_ready()
        gw.wait_ready()
        org = "org_" + os.urandom(10).hex()
        migrated.psql(f"INSERT INTO orgs (id, name) VALUES ('{org}', 'jwt org')")
        yield Api(int(gw.env["VOXI_GATEWAY_HTTP_PORT"])), org, key, auth
        assert auth.stop() == 0 and gw.stop() == 0
        assert JWT_SECRET not in auth.read_log()
    finally:
        auth.stop()
        gw.stop()
        own.stop()


def test_jwt_good_tokens(jwt_stack):
    client, org, rsa_key, _ = jwt_stack
    for token in (jwt(claims(org)), jwt(claims(org), alg="RS256", rsa_key=rsa_key)):
        status, rh, body = client.get("/v1/api-keys", key=token)
        assert status == 200, body
        assert rh["ratelimit-policy"] == '"read";q=600;w=60'
    # scopes come from the token: no keys:admin, no access
    status, _, body = client.get("/v1/api-keys", key=jwt(claims(org, scope="agents:read")))
    assert status == 403 and "keys:admin" in body["detail"]


def test_jwt_failures_are_the_same_401(jwt_stack):
    client, org, rsa_key, _ = jwt_stack
    now = int(time.time())
    tokens = {
        "alg none": jwt(claims(org), alg="none"),
        "alg not pinned": jwt(claims(org), header={"alg": "HS512", "typ": "JWT"}),
        "bad signature": jwt(claims(org), secret="some-other-secret-of-enough-length!!"),
        "wrong audience": jwt(claims(org, aud="someone-else")),
        "wrong issuer": jwt(claims(org, iss="https://evil.test/")),
        "expired": jwt(claims(org, exp=now - 600)),
        "not yet valid": jwt(claims(org, nbf=now + 600)),
        "unknown org": jwt(claims("org_" + "f" * 20)),
    }
    bodies = {}
    for name, token in tokens.items():
        status, rh, body = client.get("/v1/api-keys", key=token)
        assert status == 401, (name, body)
        bodies[name] = without_request_id(body)
    status, _, body = client.get("/v1/api-keys", key="vx_" + "0" * 38)
    bodies["bad key"] = without_request_id(body)
    first = next(iter(bodies.values()))
    assert all(b == first for b in bodies.values()), bodies


# ---- bootstrap and operations -------------------------------------------------------------

def test_bootstrap_once(migrated, admin_key):
    assert KEY_RE.match(admin_key)
    key_file = os.path.join(migrated.dir, "admin_api_key")
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    env = base_env("nats://127.0.0.1:1", migrated)
    other = os.path.join(migrated.dir, "second_key")
    out = subprocess.run([os.path.join(BIN, "voxi-auth"), "bootstrap", "--key-file", other],
                         env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "already bootstrapped" in out.stdout
    assert not re.search(r"vx_[0-9A-Za-z]{38}", out.stdout + out.stderr)
    assert not os.path.exists(other)
    assert migrated.psql("SELECT count(*) FROM api_keys WHERE platform_admin") == "1"
    out = subprocess.run([os.path.join(BIN, "voxi-auth"), "bootstrap", "--bogus"], env=env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "usage" in out.stderr


def test_jwt_config_must_name_issuer_and_audience(nats, migrated, spawn):
    env = base_env(nats.url, migrated)
    env["VOXI_AUTH_JWT_HS256_SECRET"] = JWT_SECRET
    svc = spawn("auth", env)
    assert svc.proc.wait(20) != 0
    log = svc.read_log()
    assert "VOXI_AUTH_JWT_ISSUER" in log and JWT_SECRET not in log


def test_healthz_on_the_api_port(api, stack):
    """GET /healthz on the gateway's API port (for load balancers, and the bare-HTTP
    baseline of tests/bench/bench_api.py): no credentials, no auth round trip, no rate
    limit; other methods and paths under it are not served."""
    port = stack["auth"].health_port
    before = metric(port, "voxi_auth_authenticate_total")
    status, rh, body = api.get("/healthz", key="")
    assert status == 200 and body == {"status": "ok"}, body
    assert "x-request-id" in rh and "ratelimit" not in rh and "x-ratelimit-limit" not in rh
    assert api.post("/healthz", {}, key="")[0] == 404
    assert api.get("/healthz/x", key="")[0] == 404
    assert metric(port, "voxi_auth_authenticate_total") == before


def test_metrics(api, stack):
    api.get("/v1/api-keys")
    api.get("/v1/api-keys")
    port = stack["auth"].health_port
    assert metric(port, "voxi_auth_authenticate_total", 'outcome="ok"') >= 2
    assert metric(port, "voxi_auth_credential_cache_total", 'result="hit"') >= 1
    assert metric(port, "voxi_auth_credential_cache_total", 'result="miss"') >= 1
    assert metric(port, "voxi_auth_ratelimit_leases_total") >= 1
    assert metric(port, "voxi_auth_authenticate_duration_seconds_count") >= 2
