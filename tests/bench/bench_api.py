#!/usr/bin/python3
"""Control-plane API benchmark: requests/s and latency of the gateway's authenticated hot
path against a bare route of the same gateway, in the same run.

    scripts/testenv.sh /usr/bin/python3 tests/bench/bench_api.py [BUILD]

(scripts/bench.sh runs it that way.) It needs VOXI_TEST_NATS_URL and VOXI_TEST_PG_DSN from
scripts/testenv.sh; it creates its own database, migrates it, bootstraps the platform-admin
key, runs voxi-auth, voxi-registry and voxi-gateway from BUILD (default build) with a read
rate limit far above what the run can reach, creates an org, its key and one agent, then
drives the gateway with wrk (Debian package `wrk`):

  authed  GET /v1/agents/{id} with Authorization: Bearer <key>: TLS-less HTTP/1.1 keep-alive,
          auth decision + rate limit + registry over NATS + the agent's JSON
  bare    GET /healthz on the same gateway's API port: the HTTP stack alone (no auth, no
          NATS), answered by server.c before the route table

Each is measured RUNS times (alternating, after a warm-up) for DURATION seconds with wrk
--latency; the median run of each is reported: requests/s, p50 and p99, and the ratio
authed/bare. Everything (wrk, the three services, nats-server, Postgres) shares the
machine's cores, so figures depend on what else runs: the load average is printed. The
benchmark never fails on time. Output: a table and JSON lines, also saved to
BUILD/bench/bench_api.json (scripts/bench.sh saves the whole output to
BUILD/bench/bench_api.txt); service logs go to BUILD/bench/bench_api.<service>.log.
BENCH_PERF=<path> records a system-wide `perf record -g` of one extra authenticated run.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
NATS = os.environ.get("VOXI_TEST_NATS_URL")
PG = os.environ.get("VOXI_TEST_PG_DSN")
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
DURATION = int(os.environ.get("BENCH_DURATION_S", "10"))
WARMUP = int(os.environ.get("BENCH_WARMUP_S", "3"))
# one wrk thread: a second would only compete for the two cores the services need
THREADS = int(os.environ.get("BENCH_WRK_THREADS", "1"))
CONNECTIONS = int(os.environ.get("BENCH_WRK_CONNECTIONS", "32"))
PERF = os.environ.get("BENCH_PERF")  # a perf.data path: profile one extra authenticated run


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    def __init__(self, name, env, log_dir):
        self.name = name
        self.port = free_port()
        self.env = dict(env)
        self.env[f"VOXI_{name.upper()}_HEALTH_PORT"] = str(self.port)
        self.log = open(os.path.join(log_dir, f"bench_api.{name}.log"), "wb")
        self.proc = subprocess.Popen([os.path.join(REPO, BUILD, "bin", f"voxi-{name}")],
                                     env=self.env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz",
                                            timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise SystemExit(f"voxi-{self.name} exited {self.proc.returncode}")
            time.sleep(0.05)
        raise SystemExit(f"voxi-{self.name} did not become ready")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def call(port, method, path, key=None, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


# a typical small agent: a two-node flow
AGENT = {"name": "Bench desk", "first_message": "Hello, how can I help?",
         "response_engine": {"type": "flow", "start": "hello", "nodes": [
             {"id": "hello", "type": "say", "text": "Hello {{caller_number}}", "next": "bye"},
             {"id": "bye", "type": "hangup", "message": "Goodbye"}]}}

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def ms(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * UNITS[m.group(2)]


def wrk(url, key, seconds):
    cmd = ["wrk", "-t", str(THREADS), "-c", str(CONNECTIONS), "-d", f"{seconds}s", "--latency"]
    if key:
        cmd += ["-H", f"Authorization: Bearer {key}"]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=seconds + 60)
    if out.returncode != 0:
        raise SystemExit(f"wrk failed ({out.returncode}): {out.stderr}")
    text = out.stdout
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", text).group(1))
    lat = {p: ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)$", text, re.M)}
    total = int(re.search(r"(\d+) requests in", text).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: (.*)$", text, re.M)
    return {"rps": rps, "p50_ms": lat["50"], "p90_ms": lat["90"], "p99_ms": lat["99"],
            "requests": total, "non_2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errors.group(1) if errors else ""}


def metric_sum(port, name, labels=""):
    """Sum of the samples of `name` on a service's side port whose labels contain `labels`."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$", line)
        if m and m.group(1) == name and labels in (m.group(2) or ""):
            total += float(m.group(3))
    return total


def main():
    if not NATS or not PG:
        raise SystemExit("run under scripts/testenv.sh (needs VOXI_TEST_NATS_URL, _PG_DSN)")
    log_dir = os.path.join(REPO, BUILD, "bench")
    os.makedirs(log_dir, exist_ok=True)
    db = f"bench_api_{os.getpid()}"
    subprocess.run(["psql", "-X", "-q", PG, "-c", f"CREATE DATABASE {db}"], check=True)
    dsn = PG.replace("dbname=postgres", f"dbname={db}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXI_")}
    env.update({"VOXI_NATS_URL": NATS, "VOXI_DATABASE_URL": dsn, "VOXI_LOG_LEVEL": "warn",
                "VOXI_MIGRATIONS_DIR": os.path.join(REPO, "migrations")})
    subprocess.run([os.path.join(REPO, BUILD, "bin", "voxi-registry"), "migrate"], env=env,
                   check=True, capture_output=True)
    key_file = os.path.join(log_dir, f"bench_api.admin_key.{os.getpid()}")
    subprocess.run([os.path.join(REPO, BUILD, "bin", "voxi-auth"), "bootstrap", "--key-file",
                    key_file], env=env, check=True, capture_output=True)
    with open(key_file) as f:
        admin_key = f.read().strip()
    os.unlink(key_file)

    gw_port = free_port()
    services = [
        Service("auth", dict(env, VOXI_AUTH_RATE_READ_PER_MIN="10000000"), log_dir),
        Service("registry", env, log_dir),
        Service("gateway", dict(env, VOXI_GATEWAY_HTTP_PORT=str(gw_port)), log_dir),
    ]
    results = {"authed": [], "bare": []}
    try:
        for s in services:
            s.wait_ready()
        status, body = call(gw_port, "POST", "/v1/orgs", admin_key, {"name": "bench org"})
        if status != 201:
            raise SystemExit(f"POST /v1/orgs: {status} {body}")
        key = body["api_key"]["secret"]
        status, agent = call(gw_port, "POST", "/v1/agents", key,
                             AGENT)
        if status != 201:
            raise SystemExit(f"POST /v1/agents: {status} {agent}")
        authed_url = f"http://127.0.0.1:{gw_port}/v1/agents/{agent['id']}"
        bare_url = f"http://127.0.0.1:{gw_port}/healthz"
        status, got = call(gw_port, "GET", f"/v1/agents/{agent['id']}", key)
        if status != 200 or got["id"] != agent["id"]:
            raise SystemExit(f"GET agent: {status} {got}")
        wrk(authed_url, key, WARMUP)
        wrk(bare_url, None, WARMUP)
        if PERF:  # a system-wide profile of one authenticated run, for `perf report`
            perf = subprocess.Popen(["perf", "record", "-a", "-g", "-o", PERF, "--", "sleep",
                                     str(DURATION)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            wrk(authed_url, key, DURATION)
            perf.wait(60)
        for _ in range(RUNS):
            results["authed"].append(wrk(authed_url, key, DURATION))
            results["bare"].append(wrk(bare_url, None, DURATION))
        # how much of the work the hot path's shortcuts took over, over the whole run
        gw, rg = services[2].port, services[1].port
        hits = metric_sum(gw, "voxi_gateway_auth_cache_total", 'result="hit"')
        misses = metric_sum(gw, "voxi_gateway_auth_cache_total", 'result="miss"')
        gets = metric_sum(rg, "voxi_registry_requests_total", 'verb="agents.get"')
        queries = metric_sum(rg, "voxi_registry_db_query_seconds_count", 'verb="agents.get"')
        shortcuts = {"gateway_auth_cache_hit_ratio": round(hits / (hits + misses), 4)
                     if hits + misses else 0.0,
                     "registry_gets_per_query": round(gets / queries, 2) if queries else 0.0}
    finally:
        codes = {s.name: s.stop() for s in reversed(services)}
    if any(codes.values()):
        raise SystemExit(f"services did not exit 0: {codes}")

    def median_run(rows):
        return sorted(rows, key=lambda r: r["rps"])[len(rows) // 2]

    authed, bare = median_run(results["authed"]), median_run(results["bare"])
    cores = os.cpu_count()
    load = os.getloadavg()[0]
    print(f"# gateway + auth + registry, nats-server, Postgres and wrk ({THREADS} thread, "
          f"{CONNECTIONS} connections, {DURATION} s x {RUNS}) on {cores} cores; "
          f"load average {load:.1f} at the end")
    print(f"# {'route':<32} {'req/s':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
          f"{'non-2xx':>8}")
    for kind, rows in results.items():
        name = "GET /v1/agents/{id} (key)" if kind == "authed" else "GET /healthz (bare)"
        for r in rows:
            print(f"  {name:<32} {r['rps']:>9.0f} {r['p50_ms']:>8.2f} {r['p90_ms']:>8.2f} "
                  f"{r['p99_ms']:>8.2f} {r['non_2xx']:>8}")
    ratio = authed["rps"] / bare["rps"] if bare["rps"] else 0.0
    print(f"# median: authenticated {authed['rps']:.0f} req/s (p50 {authed['p50_ms']:.2f} ms, "
          f"p99 {authed['p99_ms']:.2f} ms), bare {bare['rps']:.0f} req/s (p50 "
          f"{bare['p50_ms']:.2f} ms, p99 {bare['p99_ms']:.2f} ms), ratio {ratio:.3f}")
    print(f"# authenticated requests served without asking auth: "
          f"{shortcuts['gateway_auth_cache_hit_ratio'] * 100:.1f}%; registry GETs per database "
          f"query: {shortcuts['registry_gets_per_query']:.1f}")
    summary = {"authed_rps": authed["rps"], "authed_p50_ms": authed["p50_ms"],
               "authed_p99_ms": authed["p99_ms"], "bare_rps": bare["rps"],
               "bare_p50_ms": bare["p50_ms"], "bare_p99_ms": bare["p99_ms"],
               "ratio": round(ratio, 4), "authed_non_2xx": sum(r["non_2xx"] for r in
                                                                results["authed"]),
               **shortcuts}
    lines = [json.dumps({"summary": summary, "cores": cores, "load": load,
                         "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                         "wrk": {"threads": THREADS, "connections": CONNECTIONS,
                                 "duration_s": DURATION, "runs": RUNS}})]
    lines += [json.dumps(dict(r, route=kind)) for kind, rows in results.items() for r in rows]
    print("\n".join(lines))
    with open(os.path.join(log_dir, "bench_api.json"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
