"""The gateway's public HTTP API against real NATS servers.

Most tests run the real voxi-gateway against stand-ins for auth and the owning services
(tests/tools/voxi_fake_service on a real nats-server), so that every error class and
the forwarding contract can be checked without the other services; the last tests talk
to the real stack and need the real auth service (they skip, saying so, while
voxi.auth.authenticate has no responder).
"""
import http.client
import json
import os
import re
import select
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import (BIN, TOOLS, Api, Nats, Service, base_env, http_get, port_open,
                      wait_for)

PROBLEM = "application/problem+json"
GOOD = "good"  # the fake auth's keys: good, forbidden, limited, error, garbage, anything else
REQUEST_TIMEOUT_MS = 1500
AUTH_TIMEOUT_MS = 1000
MAX_BODY = 65536


class Fake:
    """voxi_fake_service: a stand-in for auth or a backend, ready once it says so."""

    def __init__(self, nats_url, subject, mode):
        self.proc = subprocess.Popen([os.path.join(TOOLS, "voxi_fake_service"), nats_url,
                                      subject, mode], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        line = b""
        while not line.endswith(b"\n") and time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 64)
                if not chunk:
                    break
                line += chunk
        assert line.strip() == b"ready", f"voxi_fake_service {mode}: {line!r}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
        return self.proc.returncode


def start_gateway(tmp_root, nats_url, **extra):
    env = base_env(nats_url)
    env.update({"VOXI_GATEWAY_REQUEST_TIMEOUT_MS": str(REQUEST_TIMEOUT_MS),
                "VOXI_GATEWAY_AUTH_TIMEOUT_MS": str(AUTH_TIMEOUT_MS),
                "VOXI_GATEWAY_MAX_BODY_BYTES": str(MAX_BODY)})
    env.update({k: str(v) for k, v in extra.items()})
    gw = Service("gateway", env, tmp_root).start()
    gw.wait_ready()
    gw.http_port = int(env["VOXI_GATEWAY_HTTP_PORT"])
    wait_for(lambda: port_open(gw.http_port), 10, "the API port")
    return gw


@pytest.fixture(scope="module")
def fake_env(tmp_root):
    """Own nats-server, fake auth, an echoing backend for every voxi.<svc>.<res>.<verb>,
    and a gateway with short timeouts."""
    nats = Nats(tmp_root)
    nats.start()
    auth = Fake(nats.url, "voxi.auth.authenticate", "auth")
    echo = Fake(nats.url, "voxi.*.*.*", "echo")
    gw = start_gateway(tmp_root, nats.url)
    yield gw
    code = gw.stop()
    assert echo.stop() == 0 and auth.stop() == 0
    nats.stop()
    assert code == 0, gw.read_log()


@pytest.fixture
def gw_api(fake_env):
    return Api(fake_env.http_port, GOOD)


def assert_problem(status, headers, body, code, name, detail_re=None):
    assert status == code, (status, body)
    assert headers["content-type"] == PROBLEM, headers
    assert re.fullmatch(r"[A-Za-z0-9._-]{1,64}", headers["x-request-id"])
    assert body["type"] == f"https://voxihub.dev/problems/{name}", body
    assert body["status"] == code
    assert body["title"]
    assert body["request_id"] == headers["x-request-id"]
    if detail_re is not None:
        assert re.search(detail_re, body.get("detail", "")), body
    return body


def assert_ratelimit_headers(headers, remaining="42"):
    assert headers["ratelimit-policy"] == '"read";q=100;w=60'
    assert headers["ratelimit"] == f"limit=100, remaining={remaining}, reset=30"
    assert headers["x-ratelimit-limit"] == "100"
    assert headers["x-ratelimit-remaining"] == remaining
    assert headers["x-ratelimit-reset"] == "30"


def raw_exchange(port, data):
    """Sends raw bytes, returns (status, headers, body) of the one response."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        buf = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, json.loads(body) if body else None


# ---- the route table and the OpenAPI document ----

def gateway_routes():
    out = subprocess.run([os.path.join(BIN, "voxi-gateway"), "--routes"], capture_output=True,
                         text=True, timeout=10, check=True)
    routes = {}
    for line in out.stdout.splitlines():
        method, path, subject, scope, route_class = line.split()
        routes[(method, path)] = {"subject": subject, "scope": scope, "class": route_class}
    return routes


def test_routes_match_openapi_document(gw_api):
    routes = gateway_routes()
    status, headers, doc = gw_api.get("/v1/openapi.json", key="")
    assert status == 200 and headers["content-type"] == "application/json"
    assert doc["openapi"].startswith("3.1")
    documented = {}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "patch", "put", "delete"):
                documented[(method.upper(), path)] = op
    assert set(routes) == set(documented), (
        f"served, not documented: {set(routes) - set(documented)}; "
        f"documented, not served: {set(documented) - set(routes)}")
    for key, route in routes.items():
        op = documented[key]
        assert op["x-voxi-scope"] == (route["scope"] if route["scope"] != "-" else ""), key
        assert (op["security"] == []) == (route["subject"] == "local"), key
        # every route documents its error responses and the success it returns
        for code in ("405", "429", "500", "502", "503", "504"):
            assert code in op["responses"], (key, code)
        if route["subject"] != "local":
            assert "401" in op["responses"] and "403" in op["responses"], key
        if key[0] in ("POST", "PATCH"):
            for code in ("400", "413", "415"):
                assert code in op["responses"], (key, code)
    # the component references all resolve
    text = json.dumps(doc)
    for ref in set(re.findall(r'"\$ref": "#/components/([a-zA-Z]+)/([A-Za-z0-9]+)"', text)):
        assert ref[1] in doc["components"][ref[0]], ref


def test_every_documented_route_is_served_and_others_are_not(gw_api):
    """The binary's table is what it serves: each route answers (here from the echoing
    stand-in), its path with another method is 405 with Allow."""
    routes = gateway_routes()
    by_path = {}
    for method, path in routes:
        by_path.setdefault(path, set()).add(method)
    for (method, path), route in routes.items():
        concrete = path.replace("{id}", "x_1")
        body = {} if method in ("POST", "PATCH") else None
        status, headers, reply = gw_api.request(method, concrete, body=body)
        if path.endswith("/recording"):
            # forwarded to its subject, but the echo's reply does not locate a recording
            assert_problem(status, headers, reply, 502, "protocol", "registry")
            continue
        assert status == 200, (method, path, status, reply)
        if route["subject"] != "local":
            assert reply["subject"] == route["subject"]
            assert reply["id"] == ("x_1" if "{id}" in path else "")
    for path, methods in by_path.items():
        concrete = path.replace("{id}", "x_1")
        for method in {"GET", "POST", "PATCH", "DELETE", "PUT"} - methods:
            status, headers, body = gw_api.request(method, concrete)
            assert_problem(status, headers, body, 405, "method_not_allowed")
            assert set(headers["allow"].split(", ")) == methods


def test_docs_page_is_offline_html(gw_api):
    status, headers, page = gw_api.get("/docs", key="")
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    for method, path in gateway_routes():
        assert f">{method}</td><td><code>{path}</code>" in page, (method, path)
    assert "<script" not in page and "src=" not in page
    assert not re.search(r'href="https?://', page)
    assert "agent" in page.lower() and "Problem" in page


# ---- errors before auth: route, method, size ----

def test_unknown_route_404(gw_api):
    for path in ("/v1/nope", "/", "/v1/agents/", "/v1/agents/a/b", "/v1/agents/%00"):
        status, headers, body = gw_api.get(path)
        assert_problem(status, headers, body, 404, "not_found")
        assert "ratelimit" not in headers  # refused before auth


def test_wrong_method_405_with_allow(gw_api):
    status, headers, body = gw_api.request("PUT", "/v1/agents", body={"a": 1})
    assert_problem(status, headers, body, 405, "method_not_allowed", r"PUT")
    assert headers["allow"] == "POST, GET"
    status, headers, body = gw_api.request("POST", "/v1/agents/agt_1")
    assert_problem(status, headers, body, 405, "method_not_allowed")
    assert headers["allow"] == "GET, PATCH, DELETE"


def test_body_over_limit_413(fake_env, gw_api):
    # announced by Content-Length: refused before the body is read, still problem+json
    req = (b"POST /v1/agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Authorization: Bearer good\r\nX-Request-Id: big-1\r\n"
           b"Content-Length: %d\r\n\r\n" % (MAX_BODY + 1))
    status, headers, body = raw_exchange(fake_env.http_port, req)
    assert_problem(status, headers, body, 413, "too_large", str(MAX_BODY))
    assert body["request_id"] == "big-1"
    # chunked: found while reading
    chunk = b"x" * 40000
    req = (b"POST /v1/agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n" +
           (b"%x\r\n%s\r\n" % (len(chunk), chunk)) * 2 + b"0\r\n\r\n")
    status, headers, body = raw_exchange(fake_env.http_port, req)
    assert_problem(status, headers, body, 413, "too_large")
    # exactly at the limit is read and checked further (here: not JSON)
    status, headers, body = gw_api.post("/v1/agents", raw=b"x" * (MAX_BODY - 1),
                                        headers={"Content-Type": "application/json"})
    assert_problem(status, headers, body, 400, "invalid", r"Malformed JSON")


# ---- errors after auth: the request itself ----

def test_malformed_json_400_with_position(gw_api):
    status, headers, body = gw_api.post("/v1/agents", raw=b'{\n  "name": "x",\n  "n": tru\n}',
                                        headers={"Content-Type": "application/json"})
    assert_problem(status, headers, body, 400, "invalid",
                   r"line 3, column \d+ \(byte \d+\)")
    assert_ratelimit_headers(headers)
    for raw, what in ((b"[1,2]", "not an array"), (b'"s"', "not a string"),
                      (b"", "empty"), (b'{"a":1,"a":2}', "duplicate"),
                      (b'{"a":"\xff"}', "Malformed JSON"), (b"{} {}", "Malformed JSON")):
        status, headers, body = gw_api.post("/v1/agents", raw=raw,
                                            headers={"Content-Type": "application/json"})
        assert_problem(status, headers, body, 400, "invalid", re.escape(what))


def test_content_type_415(gw_api):
    for ctype in (None, "text/plain", "application/x-www-form-urlencoded",
                  "application/json; charset=latin1"):
        headers = {"Content-Type": ctype} if ctype else {}
        status, rh, body = gw_api.post("/v1/agents", raw=b"{}", headers=headers)
        assert_problem(status, rh, body, 415, "unsupported_media_type")
        assert_ratelimit_headers(rh)
    # parameters are fine, and PATCH also takes the merge-patch type (RFC 7396)
    status, _, body = gw_api.post("/v1/agents", raw=b"{}",
                                  headers={"Content-Type": "application/json; charset=UTF-8"})
    assert status == 200, body
    status, _, body = gw_api.patch("/v1/agents/agt_1", raw=b"{}",
                                   headers={"Content-Type": "application/merge-patch+json"})
    assert status == 200, body


def test_query_parameters_400_name_the_parameter(gw_api):
    cases = {"limit=0": "limit", "limit=101": "limit", "limit=abc": "limit",
             "limit=5&limit=6": "limit", "starting_after=": "starting_after",
             "starting_after=a%20b": "starting_after", "expand=all": "expand",
             "limit=5&bogus=1": "bogus"}
    for query, param in cases.items():
        status, headers, body = gw_api.get(f"/v1/agents?{query}")
        assert_problem(status, headers, body, 400, "invalid", f"'{param}'")
        assert body["errors"][0]["field"] == param
    # a route that is not a list takes no parameters
    status, headers, body = gw_api.get("/v1/agents/agt_1?limit=5")
    assert_problem(status, headers, body, 400, "invalid", "'limit'")


# ---- action POSTs (no body needed) and list filters ----

ACTIONS = ["/v1/calls/x_1/hangup", "/v1/webhook-endpoints/x_1/rotate-secret",
           "/v1/webhook-endpoints/x_1/test", "/v1/webhook-deliveries/x_1/retry"]


def test_action_posts_take_no_body(gw_api):
    routes = gateway_routes()
    for path in ACTIONS:
        assert ("POST", path.replace("x_1", "{id}")) in routes, path
        # no Content-Type, no body (Content-Length: 0)
        status, headers, reply = gw_api.post(path, raw=b"")
        assert status == 200, (path, status, reply)
        assert reply["json"] == "" and reply["id"] == "x_1", reply
        # Content-Type given but nothing sent is fine too
        status, _, reply = gw_api.post(path, raw=b"",
                                       headers={"Content-Type": "application/json"})
        assert status == 200 and reply["json"] == "", (path, reply)
        # a body is still checked: JSON only, a well-formed object
        status, _, reply = gw_api.post(path, raw=b'{"reason":"x"}',
                                       headers={"Content-Type": "application/json"})
        assert status == 200 and reply["json"] == '{"reason":"x"}', (path, reply)
        status, headers, body = gw_api.post(path, raw=b"{}",
                                            headers={"Content-Type": "text/plain"})
        assert_problem(status, headers, body, 415, "unsupported_media_type")
        status, headers, body = gw_api.post(path, raw=b"{}")
        assert_problem(status, headers, body, 415, "unsupported_media_type")
        status, headers, body = gw_api.post(path, raw=b"[1]",
                                            headers={"Content-Type": "application/json"})
        assert_problem(status, headers, body, 400, "invalid", "not an array")
    # raw HTTP/1.1 without any body framing at all
    req = (b"POST /v1/webhook-deliveries/wd_1/retry HTTP/1.1\r\nHost: x\r\n"
           b"Authorization: Bearer good\r\nConnection: close\r\n\r\n")
    status, _, reply = raw_exchange(gw_api.port, req)
    assert status == 200 and reply["subject"] == "voxi.webhooks.deliveries.retry", reply
    # creates and updates still need their body
    for method, path in (("POST", "/v1/calls"), ("POST", "/v1/webhook-endpoints"),
                         ("PATCH", "/v1/webhook-endpoints/we_1"), ("POST", "/v1/agents")):
        status, headers, body = gw_api.request(method, path, raw=b"")
        assert_problem(status, headers, body, 415, "unsupported_media_type")
        status, headers, body = gw_api.request(method, path, raw=b"",
                                               headers={"Content-Type": "application/json"})
        assert_problem(status, headers, body, 400, "invalid", "empty")


def test_call_list_filters_are_forwarded(gw_api):
    status, _, reply = gw_api.get(
        "/v1/calls?agent_id=agt_1&status=ended&created_after=2024-01-02T03%3A04%3A05Z"
        "&created_before=2024-02-01T00:00:00%2B02:00&limit=5")
    assert status == 200, reply
    assert reply["subject"] == "voxi.registry.calls.list" and reply["limit"] == 5
    # the service gets them as a JSON object in ApiRequest.json
    assert json.loads(reply["json"]) == {"agent_id": "agt_1", "status": "ended",
                                         "created_after": "2024-01-02T03:04:05Z",
                                         "created_before": "2024-02-01T00:00:00+02:00"}
    status, _, reply = gw_api.get("/v1/calls")
    assert status == 200 and reply["json"] == "" and reply["limit"] == 20
    # the filters are the calls list's own: other lists refuse them
    status, headers, body = gw_api.get("/v1/agents?status=ended")
    assert_problem(status, headers, body, 400, "invalid", "'status'")
    status, headers, body = gw_api.get("/v1/webhook-endpoints/we_1/deliveries?agent_id=a")
    assert_problem(status, headers, body, 400, "invalid", "'agent_id'")
    cases = {"status=a&status=b": ("status", "more than once"),
             "agent_id=": ("agent_id", "printable"),
             "created_after=%0a": ("created_after", "printable"),
             "created_before=" + "9" * 65: ("created_before", "1 to 64"),
             "direction=inbound": ("direction", "Unknown")}
    for query, (param, detail) in cases.items():
        status, headers, body = gw_api.get(f"/v1/calls?{query}")
        assert_problem(status, headers, body, 400, "invalid", detail)
        assert body["errors"][0]["field"] == param, body
    # a call itself takes no parameters
    status, headers, body = gw_api.get("/v1/calls/call_1?status=ended")
    assert_problem(status, headers, body, 400, "invalid", "'status'")


def test_new_routes_need_their_scope(gw_api):
    """The scope each new route asks auth for is the documented one (the fake auth puts
    it in its forbidden message)."""
    expected = {("POST", "/v1/calls"): "calls:write", ("GET", "/v1/calls"): "calls:read",
                ("GET", "/v1/calls/x_1"): "calls:read",
                ("POST", "/v1/calls/x_1/hangup"): "calls:write",
                ("GET", "/v1/calls/x_1/recording"): "calls:read",
                ("POST", "/v1/webhook-endpoints"): "webhooks:write",
                ("GET", "/v1/webhook-endpoints"): "webhooks:read",
                ("GET", "/v1/webhook-endpoints/x_1"): "webhooks:read",
                ("PATCH", "/v1/webhook-endpoints/x_1"): "webhooks:write",
                ("DELETE", "/v1/webhook-endpoints/x_1"): "webhooks:write",
                ("POST", "/v1/webhook-endpoints/x_1/rotate-secret"): "webhooks:write",
                ("POST", "/v1/webhook-endpoints/x_1/test"): "webhooks:write",
                ("GET", "/v1/webhook-endpoints/x_1/deliveries"): "webhooks:read",
                ("POST", "/v1/webhook-deliveries/x_1/retry"): "webhooks:write"}
    for (method, path), scope in expected.items():
        body = {} if method in ("POST", "PATCH") else None
        status, headers, reply = gw_api.request(method, path, body=body, key="forbidden")
        assert_problem(status, headers, reply, 403, "forbidden", re.escape(scope))


# ---- GET /v1/calls/{id}/recording against stand-ins for the registry and a worker ----

REC_SIZE = 600_001  # three chunks of at most 262144 bytes, the last one short


def rec_bytes(start, n):
    return bytes(((i * 7 + i // 251) & 0xFF) for i in range(start, start + n))


class FakeRecording(Fake):
    def __init__(self, nats_url, worker, size):  # pylint: disable=super-init-not-called
        self.proc = subprocess.Popen([os.path.join(TOOLS, "voxi_fake_recording"), nats_url,
                                      worker, str(size)], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        line = self.proc.stdout.readline()
        assert line.strip() == b"ready", f"voxi_fake_recording: {line!r}"

    def stop_and_count(self):
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=10)
        assert self.proc.returncode == 0, out
        return int(re.search(rb"chunks (\d+)", out).group(1))


@pytest.fixture(scope="module")
def rec_env(tmp_root):
    nats = Nats(tmp_root)
    nats.start()
    auth = Fake(nats.url, "voxi.auth.authenticate", "auth")
    rec = FakeRecording(nats.url, "media_w1", REC_SIZE)
    gw = start_gateway(tmp_root, nats.url)
    yield gw, rec
    code = gw.stop()
    assert auth.stop() == 0
    rec.proc.poll() is None and rec.stop_and_count()
    nats.stop()
    assert code == 0, gw.read_log()


def test_recording_streams_in_chunks(rec_env):
    gw, _ = rec_env
    conn = http.client.HTTPConnection("127.0.0.1", gw.http_port, timeout=10)
    for _ in range(2):  # twice on one keep-alive connection
        conn.request("GET", "/v1/calls/rec_ok/recording",
                     headers={"Authorization": "Bearer good", "X-Request-Id": "rec-1"})
        r = conn.getresponse()
        data = r.read()
        assert r.status == 200
        assert r.getheader("Content-Type") == "audio/wav"
        assert int(r.getheader("Content-Length")) == REC_SIZE
        assert r.getheader("Transfer-Encoding") is None
        assert r.getheader("X-Request-Id") == "rec-1"
        assert r.getheader("Cache-Control") == "no-store"
        assert r.getheader("X-RateLimit-Remaining") == "42"
        assert len(data) == REC_SIZE and data == rec_bytes(0, REC_SIZE)
    conn.close()
    # an empty recording is an empty 200
    status, headers, body = Api(gw.http_port, GOOD).get("/v1/calls/rec_empty/recording")
    assert status == 200 and headers["content-length"] == "0" and body is None


def test_recording_errors_are_problems(rec_env):
    gw, _ = rec_env
    api = Api(gw.http_port, GOOD)
    status, headers, body = api.get("/v1/calls/nope/recording")
    assert_problem(status, headers, body, 404, "not_found", "no such call")
    status, headers, body = api.get("/v1/calls/rec_missing/recording")
    assert_problem(status, headers, body, 404, "not_found", "no longer has")
    status, headers, body = api.get("/v1/calls/rec_gone/recording")
    assert_problem(status, headers, body, 503, "no_responders", "not available")
    assert headers["retry-after"] == "1"
    assert_ratelimit_headers(headers)
    status, headers, body = api.get("/v1/calls/rec_long/recording")
    assert_problem(status, headers, body, 502, "protocol", "media worker")
    status, headers, body = api.get("/v1/calls/rec_badloc/recording")
    assert_problem(status, headers, body, 502, "protocol", "registry")
    status, headers, body = api.get("/v1/calls/rec_ok/recording", key="forbidden")
    assert_problem(status, headers, body, 403, "forbidden", "calls:read")
    status, headers, body = api.get("/v1/calls/rec_ok/recording?x=1")
    assert_problem(status, headers, body, 400, "invalid", "'x'")
    started = time.monotonic()
    status, headers, body = api.get("/v1/calls/rec_silent/recording")
    assert_problem(status, headers, body, 504, "timeout", f"{REQUEST_TIMEOUT_MS} ms")
    assert time.monotonic() - started >= REQUEST_TIMEOUT_MS / 1000 * 0.9


def test_recording_failure_mid_stream_cuts_the_connection(rec_env):
    gw, _ = rec_env
    with socket.create_connection(("127.0.0.1", gw.http_port), timeout=10) as s:
        s.sendall(b"GET /v1/calls/rec_cut/recording HTTP/1.1\r\nHost: x\r\n"
                  b"Authorization: Bearer good\r\n\r\n")
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert b"content-length: %d" % REC_SIZE in head.lower()
    # the first chunk, then the connection closed short of Content-Length
    assert len(body) == 262144 and body == rec_bytes(0, 262144)
    assert Api(gw.http_port, GOOD).get("/v1/calls/rec_ok/recording")[0] == 200


def test_recording_client_gone_mid_stream(rec_env):
    """Clients that leave mid-download free their stream: the in-flight gauge returns to 0
    and the gateway keeps serving."""
    gw, _ = rec_env
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", gw.http_port), timeout=10) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(b"GET /v1/calls/rec_ok/recording HTTP/1.1\r\nHost: x\r\n"
                      b"Authorization: Bearer good\r\n\r\n")
            assert s.recv(1024).startswith(b"HTTP/1.1 200")

    def idle():
        _, _, text = http_get(gw.health_port, "/metrics")
        return re.search(r"^voxi_http_inflight_requests 0", text, re.M) is not None
    wait_for(idle, 10, "every stream to be freed")
    _, _, text = http_get(gw.health_port, "/metrics")
    assert re.search(r'voxi_http_requests_total\{route="GET /v1/calls/\{id\}/recording",'
                     r'status="2xx"\} [1-9]', text), text
    status, _, _ = Api(gw.http_port, GOOD).get("/v1/calls/rec_empty/recording")
    assert status == 200


# ---- auth outcomes ----

def test_unauthorized_401_same_body_whatever_the_reason(gw_api):
    bodies = []
    for authz in (None, "Bearer nope", "Bearer", "Basic dXNlcjpwdw==", "Bearer " + "x" * 3000):
        headers = {"Authorization": authz} if authz else None
        status, rh, body = gw_api.get("/v1/agents", key="", headers=headers)
        assert_problem(status, rh, body, 401, "unauthorized")
        assert rh["www-authenticate"] == "Bearer"
        assert_ratelimit_headers(rh)
        body.pop("request_id")
        bodies.append(body)
    assert all(b == bodies[0] for b in bodies)


def test_forbidden_403_rate_limited_429(gw_api):
    status, headers, body = gw_api.get("/v1/phone-numbers", key="forbidden")
    assert_problem(status, headers, body, 403, "forbidden", "numbers:read")
    assert_ratelimit_headers(headers)
    status, headers, body = gw_api.get("/v1/agents", key="limited")
    assert_problem(status, headers, body, 429, "rate_limited")
    assert headers["retry-after"] == "7"
    assert_ratelimit_headers(headers, remaining="0")


def test_auth_failures_map_to_5xx(gw_api):
    status, headers, body = gw_api.get("/v1/agents", key="error")
    assert_problem(status, headers, body, 500, "internal", "auth database down")
    status, headers, body = gw_api.get("/v1/agents", key="garbage")
    assert_problem(status, headers, body, 502, "protocol")


# ---- forwarding ----

def test_forwarding_contract(gw_api):
    raw = b'{"name":"Front desk","temperature":1.10,"n":1e2,"s":"\\u00e9"}'
    status, headers, reply = gw_api.post("/v1/agents", raw=raw,
                                         headers={"Content-Type": "application/json",
                                                  "X-Request-Id": "client.req-1"})
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert headers["x-request-id"] == "client.req-1"
    assert_ratelimit_headers(headers)
    assert reply["subject"] == "voxi.registry.agents.create"
    assert reply["request_id"] == "client.req-1"
    assert reply["org_id"] == "org_00000000000000000001"
    assert reply["principal"]["kind"] == "api_key"
    assert "agents:write" in reply["principal"]["scopes"]
    assert reply["json"] == raw.decode()  # the body as sent, not re-serialised
    assert reply["client_ip"] == "127.0.0.1"
    assert 0 < reply["deadline_ms"] <= REQUEST_TIMEOUT_MS

    status, headers, reply = gw_api.get("/v1/phone-numbers?starting_after=pn_1&limit=3",
                                        headers={"X-Request-Id": "bad id!"})
    assert status == 200
    assert re.fullmatch(r"req_[0-9a-f]{20}", headers["x-request-id"])
    assert reply["request_id"] == headers["x-request-id"]
    assert (reply["subject"], reply["limit"], reply["starting_after"]) == (
        "voxi.registry.numbers.list", 3, "pn_1")
    status, _, reply = gw_api.get("/v1/api-keys")
    assert (reply["subject"], reply["limit"], reply["json"]) == ("voxi.auth.keys.list", 20, "")


def test_service_replies_map_to_http(gw_api):
    status, headers, body = gw_api.delete("/v1/agents/status_204")
    assert status == 204 and body is None
    assert "content-length" not in headers and "x-request-id" in headers
    status, headers, body = gw_api.get("/v1/agents/status_201")
    assert status == 201 and body == {"created": True}
    status, headers, body = gw_api.patch("/v1/agents/err_invalid", body={"voice": {"speed": 9}})
    assert_problem(status, headers, body, 400, "invalid", "not valid")
    assert body["errors"] == [
        {"field": "voice.speed", "message": "must be between 0.5 and 2"},
        {"field": "response_engine.nodes[3].next", "message": 'unknown node "nope"'}]
    status, headers, body = gw_api.get("/v1/phone-numbers/err_conflict")
    assert_problem(status, headers, body, 409, "conflict", "already taken")
    assert "errors" not in body
    status, headers, body = gw_api.get("/v1/agents/err_internal")
    assert_problem(status, headers, body, 500, "internal")
    for bad in ("bad_status", "garbage"):
        status, headers, body = gw_api.get(f"/v1/agents/{bad}")
        assert_problem(status, headers, body, 502, "protocol", "registry")


def test_backend_silent_504(gw_api):
    started = time.monotonic()
    status, headers, body = gw_api.get("/v1/agents/silent")
    assert_problem(status, headers, body, 504, "timeout", f"{REQUEST_TIMEOUT_MS} ms")
    assert_ratelimit_headers(headers)
    assert time.monotonic() - started >= REQUEST_TIMEOUT_MS / 1000 * 0.9


def test_concurrent_keepalive_clients(fake_env):
    """Many clients at once, each reusing one connection: every answer is the right one."""
    errors = []

    def client(n):
        conn = http.client.HTTPConnection("127.0.0.1", fake_env.http_port, timeout=10)
        try:
            for i in range(40):
                rid = f"c{n}-{i}"
                path = f"/v1/agents/agt_{n}_{i}" if i % 3 else "/v1/agents/status_204"
                conn.request("GET", path, headers={"Authorization": "Bearer good",
                                                   "X-Request-Id": rid})
                r = conn.getresponse()
                body = r.read()
                if r.getheader("X-Request-Id") != rid:
                    errors.append((rid, r.status))
                elif i % 3 and json.loads(body)["id"] != f"agt_{n}_{i}":
                    errors.append((rid, body))
                elif not i % 3 and (r.status != 204 or body):
                    errors.append((rid, r.status, body))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append((n, repr(e)))
        finally:
            conn.close()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:5]


def test_metrics(fake_env, gw_api):
    gw_api.get("/v1/agents")
    gw_api.get("/v1/nope")
    _, _, text = http_get(fake_env.health_port, "/metrics")
    assert re.search(r'^voxi_http_requests_total\{route="GET /v1/agents",status="2xx"\} [1-9]',
                     text, re.M)
    assert re.search(r'^voxi_http_requests_total\{route="other",status="4xx"\} [1-9]', text,
                     re.M)
    assert re.search(r'^voxi_http_request_duration_seconds_count\{route="GET /v1/agents"\} '
                     r'[1-9]', text, re.M)
    assert re.search(r"^voxi_http_inflight_requests 0", text, re.M)


# ---- auth or services missing, slow, gateway full, draining ----

def test_no_auth_503_and_docs_still_served(tmp_root):
    nats = Nats(tmp_root)
    nats.start()
    gw = start_gateway(tmp_root, nats.url)
    try:
        api = Api(gw.http_port, GOOD)
        status, headers, body = api.get("/v1/agents")
        assert_problem(status, headers, body, 503, "no_responders", "authentication")
        assert headers["retry-after"] == "1"
        # the static document needs nothing from auth but its rate limit: it fails open
        status, _, doc = api.get("/v1/openapi.json", key="")
        assert status == 200 and doc["openapi"].startswith("3.1")
        # auth present, the owning service missing
        auth = Fake(nats.url, "voxi.auth.authenticate", "auth")
        try:
            status, headers, body = api.get("/v1/agents")
            assert_problem(status, headers, body, 503, "no_responders", "registry")
            assert headers["retry-after"] == "1"
            assert_ratelimit_headers(headers)
        finally:
            assert auth.stop() == 0
        assert gw.stop() == 0, gw.read_log()
    finally:
        gw.stop()
        nats.stop()


def test_silent_auth_504(tmp_root):
    nats = Nats(tmp_root)
    nats.start()
    silent = Fake(nats.url, "voxi.auth.authenticate", "silent")
    gw = start_gateway(tmp_root, nats.url, VOXI_GATEWAY_AUTH_TIMEOUT_MS=300)
    try:
        status, headers, body = Api(gw.http_port, GOOD).get("/v1/agents")
        assert_problem(status, headers, body, 504, "timeout", "authentication.*300 ms")
        assert gw.stop() == 0, gw.read_log()
    finally:
        gw.stop()
        silent.stop()
        nats.stop()


def test_capacity_503_and_sigterm_drains(tmp_root):
    """With one request allowed in flight, a second one is refused with 503; SIGTERM stops
    accepting but the request in flight still gets its own answer (the backend's 504 after
    the deadline, not a 503 from closing early), then the gateway exits 0."""
    nats = Nats(tmp_root)
    nats.start()
    auth = Fake(nats.url, "voxi.auth.authenticate", "auth")
    echo = Fake(nats.url, "voxi.*.*.*", "echo")
    gw = start_gateway(tmp_root, nats.url, VOXI_GATEWAY_MAX_INFLIGHT=1)
    try:
        api = Api(gw.http_port, GOOD)
        result = {}

        def slow():
            result["reply"] = api.get("/v1/agents/silent")
        t = threading.Thread(target=slow)
        t.start()

        def inflight():
            _, _, text = http_get(gw.health_port, "/metrics")
            return re.search(r"^voxi_http_inflight_requests 1", text, re.M) is not None
        wait_for(inflight, 10, "the slow request to be in flight")
        status, headers, body = api.get("/v1/agents")
        assert_problem(status, headers, body, 503, "full", "capacity")
        assert headers["retry-after"] == "1"

        gw.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: not port_open(gw.http_port), 5, "the API port to close")
        t.join(10)
        status, headers, body = result["reply"]
        assert_problem(status, headers, body, 504, "timeout")
        assert headers.get("connection") == "close"
        assert gw.proc.wait(10) == 0, gw.read_log()
        log = gw.read_log()
        assert "draining" in log and "exit 0" in log
    finally:
        gw.stop()
        echo.stop()
        auth.stop()
        nats.stop()


def test_bad_config_rejected():
    env = base_env("nats://127.0.0.1:4222")
    env.update({"VOXI_GATEWAY_HTTP_PORT": "70000", "VOXI_GATEWAY_MAX_BODY_BYTES": "1",
                "VOXI_GATEWAY_REQUEST_TIMEOUT_MS": "soon"})
    out = subprocess.run([os.path.join(BIN, "voxi-gateway")], env=env, capture_output=True,
                         text=True, timeout=10)
    assert out.returncode == 2
    for name in ("VOXI_GATEWAY_HTTP_PORT", "VOXI_GATEWAY_MAX_BODY_BYTES",
                 "VOXI_GATEWAY_REQUEST_TIMEOUT_MS"):
        assert name in out.stderr


def test_http_port_in_use_fails_start(tmp_root):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        env = base_env("nats://127.0.0.1:1")
        env["VOXI_GATEWAY_HTTP_PORT"] = str(s.getsockname()[1])
        out = subprocess.run([os.path.join(BIN, "voxi-gateway")], env=env,
                             capture_output=True, text=True, timeout=20)
    assert out.returncode == 1
    assert "address already in use" in out.stderr


# ---- the real stack (needs the real auth service) ----

def real_auth_answers(stack):
    port = int(stack["gateway"].env["VOXI_GATEWAY_HTTP_PORT"])
    status, _, body = Api(port).get("/v1/agents")
    return not (status == 503 and isinstance(body, dict)
                and body.get("type", "").endswith("/no_responders"))


def test_real_stack_serves_document(stack):
    port = int(stack["gateway"].env["VOXI_GATEWAY_HTTP_PORT"])
    status, headers, doc = Api(port).get("/v1/openapi.json")
    assert status == 200 and doc["info"]["title"] == "VoxiHub API"
    assert "x-request-id" in headers
    status, headers, _ = Api(port).get("/docs")
    assert status == 200 and headers["content-type"].startswith("text/html")


def test_real_stack_auth(stack, request):
    assert real_auth_answers(stack), "voxi-auth does not answer voxi.auth.authenticate"
    api = request.getfixturevalue("api")
    status, headers, body = api.get("/v1/agents", key="")
    assert_problem(status, headers, body, 401, "unauthorized")
    assert headers["www-authenticate"] == "Bearer"
    status, headers, body = api.get("/v1/agents", key="vx_not_a_key")
    assert_problem(status, headers, body, 401, "unauthorized")
    status, headers, body = api.get("/v1/agents?limit=2")
    assert status == 200, body
    assert body["object"] == "list" and isinstance(body["data"], list)
    for h in ("ratelimit-policy", "ratelimit", "x-ratelimit-limit", "x-ratelimit-remaining",
              "x-ratelimit-reset", "x-request-id"):
        assert h in headers, h
    status, headers, body = api.get("/v1/agents?limit=500")
    assert_problem(status, headers, body, 400, "invalid", "'limit'")
    assert "ratelimit" in headers


def test_real_stack_calls_routes_scopes_and_problems(stack, request):
    """Through the real gateway, auth and registry: each calls route needs its scope,
    unknown or other-org calls are 404 problems, the list's filters reach the registry."""
    assert real_auth_answers(stack), "voxi-auth does not answer voxi.auth.authenticate"
    api = request.getfixturevalue("api")
    status, _, org = api.post("/v1/orgs", {"name": "gateway calls routes"})
    assert status == 201, org
    key = org["api_key"]["secret"]
    status, _, hooks_only = api.post("/v1/api-keys", {"name": "hooks only",
                                                      "scopes": ["webhooks:read"]}, key=key)
    assert status == 201, hooks_only
    status, _, reader = api.post("/v1/api-keys", {"name": "calls reader",
                                                  "scopes": ["calls:read"]}, key=key)
    assert status == 201, reader
    status, headers, body = api.get("/v1/calls", key=key)
    assert status == 200 and body["object"] == "list", body
    routes = [("POST", "/v1/calls", "calls:write"), ("GET", "/v1/calls", "calls:read"),
              ("GET", "/v1/calls/call_00000000000000000000", "calls:read"),
              ("POST", "/v1/calls/call_00000000000000000000/hangup", "calls:write"),
              ("GET", "/v1/calls/call_00000000000000000000/recording", "calls:read")]
    for method, path, scope in routes:
        payload = {"agent_id": "agt_1", "to": "+15550100"} if path == "/v1/calls" and \
            method == "POST" else None
        status, headers, body = api.request(method, path, body=payload,
                                            key=hooks_only["secret"])
        assert_problem(status, headers, body, 403, "forbidden", re.escape(scope))
        if scope == "calls:write":
            status, headers, body = api.request(method, path, body=payload,
                                                key=reader["secret"])
            assert_problem(status, headers, body, 403, "forbidden", "calls:write")
    # unknown calls: 404 problems from the registry, whatever the route
    for method, path, _ in routes[2:]:
        status, headers, body = api.request(method, path, key=key)
        assert_problem(status, headers, body, 404, "not_found")
    # the filters are the registry's to judge
    status, headers, body = api.get("/v1/calls?status=bogus&created_after=yesterday", key=key)
    assert_problem(status, headers, body, 400, "invalid")
    assert {e["field"] for e in body["errors"]} == {"status", "created_after"}, body
    status, _, body = api.get("/v1/calls?status=ended&created_after=2020-01-01T00:00:00Z"
                              "&created_before=2999-01-01T00:00:00%2B02:00&limit=3", key=key)
    assert status == 200 and body["object"] == "list", body
    # the gateway's own check comes first: a name no route knows
    status, headers, body = api.get("/v1/calls?direction=inbound", key=key)
    assert_problem(status, headers, body, 400, "invalid", "'direction'")


def test_real_stack_recording_streams_from_the_media_worker(stack, request, nats, spawn,
                                                            tmp_root):
    """End to end without SIP: a call.ended event (as the worker publishes it) names a
    recording on a real voxi-media worker; GET /v1/calls/{id}/recording goes gateway ->
    auth -> registry (locator) -> that worker (chunks) and returns the file byte for byte.
    Another org sees 404 on every route of the call."""
    import wave
    assert real_auth_answers(stack), "voxi-auth does not answer voxi.auth.authenticate"
    api = request.getfixturevalue("api")
    status, _, org = api.post("/v1/orgs", {"name": "gateway recording e2e"})
    assert status == 201, org
    key, org_id = org["api_key"]["secret"], org["org"]["id"]
    status, _, other = api.post("/v1/orgs", {"name": "gateway recording other"})
    assert status == 201, other
    other_key = other["api_key"]["secret"]
    status, _, body = api.get("/v1/calls", key=key)
    assert status == 200, body

    rec_dir = os.path.join(tmp_root, f"recordings-{os.getpid()}")
    os.makedirs(rec_dir, exist_ok=True)
    worker_id = f"media_rec_{os.getpid()}"
    call_id = "call_" + os.urandom(10).hex()
    path = os.path.join(rec_dir, f"{call_id}.wav")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes((i * 13 + i // 509) & 0xFF for i in range(640_000)))
    expected = open(path, "rb").read()
    env = base_env(nats.url)
    env.update({"VOXI_INSTANCE_ID": worker_id, "VOXI_MEDIA_RECORDINGS_DIR": rec_dir})
    spawn("media", env).wait_ready()

    data = json.dumps({"call_id": call_id, "worker_id": worker_id, "direction": "inbound",
                       "reason": "hangup", "duration_ms": 40000, "recording_path": path,
                       "recording_size_bytes": len(expected)})
    out = subprocess.run([os.path.join(TOOLS, "voxi_events"), nats.url, org_id, "call.ended",
                          "1", "--data", data], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr

    def recorded():
        s, _, call = api.get(f"/v1/calls/{call_id}", key=key)
        return s == 200 and call["status"] == "ended"
    wait_for(recorded, 20, "the registry to store the call")

    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    conn.request("GET", f"/v1/calls/{call_id}/recording",
                 headers={"Authorization": f"Bearer {key}"})
    r = conn.getresponse()
    got = r.read()
    conn.close()
    assert r.status == 200, got[:300]
    assert r.getheader("Content-Type") == "audio/wav"
    assert int(r.getheader("Content-Length")) == len(expected)
    assert got == expected and got[:4] == b"RIFF"

    for method, path_ in (("GET", f"/v1/calls/{call_id}"),
                          ("GET", f"/v1/calls/{call_id}/recording"),
                          ("POST", f"/v1/calls/{call_id}/hangup")):
        status, headers, body = api.request(method, path_, key=other_key)
        assert_problem(status, headers, body, 404, "not_found")
    # the call has ended: hanging it up is a conflict (an action POST with no body)
    status, headers, body = api.post(f"/v1/calls/{call_id}/hangup", key=key)
    assert_problem(status, headers, body, 409, "conflict")
    # the worker has lost the file: a 404 problem, not a broken stream
    os.unlink(path)
    status, headers, body = api.get(f"/v1/calls/{call_id}/recording", key=key)
    assert_problem(status, headers, body, 404, "not_found")
