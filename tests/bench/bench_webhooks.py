#!/usr/bin/python3
"""Webhooks benchmark: signed deliveries per second to a local receiver, and the delay from
an event's publication to its first delivery attempt (p50/p99).

    scripts/testenv.sh /usr/bin/python3 tests/bench/bench_webhooks.py [BUILD]

(scripts/bench.sh runs it that way.) It needs VOXI_TEST_NATS_URL and VOXI_TEST_PG_DSN from
scripts/testenv.sh; it creates its own database, runs one voxi-webhooks from BUILD (default
build) and drives it with BUILD/tests/tools/voxi_wh_bench, which is both the publisher and a
libuv HTTP receiver that verifies every signature. Three measurements, each repeated:

  drain   COUNT events are published while voxi-webhooks is stopped, then it is started:
          deliveries/s from the first arrival to the last (the service's own capacity)
  burst   COUNT events published as fast as JetStream acks them while the service runs:
          deliveries/s from the first publication to the last arrival
  paced   events at a steady RATE/s: publication -> first attempt delay p50/p90/p99/max

Figures are printed as a table and as JSON lines; the benchmark never fails on time.
"""
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
NATS = os.environ.get("VOXI_TEST_NATS_URL")
PG = os.environ.get("VOXI_TEST_PG_DSN")
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
DRAIN_COUNT = int(os.environ.get("BENCH_DRAIN_COUNT", "30000"))
BURST_COUNT = int(os.environ.get("BENCH_BURST_COUNT", "20000"))
PACED_COUNT = int(os.environ.get("BENCH_PACED_COUNT", "5000"))
PACED_RATE = int(os.environ.get("BENCH_PACED_RATE", "1000"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Webhooks:
    def __init__(self, dsn, log_path):
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("VOXI_")}
        self.env.update({
            "VOXI_NATS_URL": NATS, "VOXI_DATABASE_URL": dsn, "VOXI_LOG_LEVEL": "warn",
            "VOXI_WEBHOOKS_HEALTH_PORT": str(self.port), "VOXI_WEBHOOKS_ALLOW_HTTP": "true",
            "VOXI_WEBHOOKS_SSRF_ALLOWLIST": "127.0.0.1/32"})
        self.log = open(log_path, "ab")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([os.path.join(REPO, BUILD, "bin", "voxi-webhooks")],
                                     env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
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
                raise SystemExit(f"voxi-webhooks exited {self.proc.returncode}")
            time.sleep(0.05)
        raise SystemExit("voxi-webhooks did not become ready")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)


def tool(org, count, rate, hold=False):
    cmd = [os.path.join(REPO, BUILD, "tests", "tools", "voxi_wh_bench"), NATS, org, str(count),
           str(rate), "--timeout-s", "300"] + (["--hold"] if hold else [])
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def result(proc):
    out = proc.stdout.readline()
    proc.wait(60)
    if proc.returncode != 0 or not out.startswith("{"):
        raise SystemExit(f"voxi_wh_bench failed ({proc.returncode}): {out}")
    return json.loads(out)


def drain(svc, n):
    p = tool(f"org_drain{n}", DRAIN_COUNT, 0, hold=True)
    assert p.stdout.readline().strip() == "READY"
    svc.stop()
    p.stdin.write("publish\n")
    p.stdin.flush()
    assert p.stdout.readline().strip() == "PUBLISHED"
    svc.start()
    return result(p)


def main():
    if not NATS or not PG:
        raise SystemExit("run under scripts/testenv.sh (needs VOXI_TEST_NATS_URL, _PG_DSN)")
    db = f"bench_wh_{os.getpid()}"
    subprocess.run(["psql", "-X", "-q", PG, "-c", f"CREATE DATABASE {db}"], check=True)
    dsn = PG.replace("dbname=postgres", f"dbname={db}")
    env = dict(os.environ, VOXI_DATABASE_URL=dsn,
               VOXI_MIGRATIONS_DIR=os.path.join(REPO, "migrations"))
    subprocess.run([os.path.join(REPO, BUILD, "bin", "voxi-registry"), "migrate"], env=env,
                   check=True, capture_output=True)
    log_dir = os.path.join(REPO, BUILD, "bench")
    os.makedirs(log_dir, exist_ok=True)
    svc = Webhooks(dsn, os.path.join(log_dir, "bench_webhooks.service.log"))
    svc.start()
    results = {"drain": [], "burst": [], "paced": []}
    try:
        for n in range(RUNS):
            results["drain"].append(drain(svc, n))
            results["burst"].append(result(tool(f"org_burst{n}", BURST_COUNT, 0)))
            results["paced"].append(result(tool(f"org_paced{n}", PACED_COUNT, PACED_RATE)))
    finally:
        svc.stop()

    cores = os.cpu_count()
    load = os.getloadavg()[0]
    print(f"# voxi-webhooks, {cores} cores, load average {load:.1f} at the end; "
          f"receiver, publisher, NATS and Postgres on the same machine")
    print(f"# {'measure':<8} {'events':>7} {'rate/s':>7} {'deliv/s':>9} {'p50 ms':>8} "
          f"{'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'dups':>5} {'badsig':>6}")
    for kind, rows in results.items():
        for r in rows:
            print(f"  {kind:<8} {r['events']:>7} {r['rate'] or '-':>7} "
                  f"{r['deliveries_per_s']:>9.0f} {r['first_attempt_p50_ms']:>8.1f} "
                  f"{r['first_attempt_p90_ms']:>8.1f} {r['first_attempt_p99_ms']:>8.1f} "
                  f"{r['first_attempt_max_ms']:>8.1f} {r['duplicates']:>5} "
                  f"{r['bad_signatures']:>6}")
    summary = {
        "drain_deliveries_per_s_median":
            statistics.median(r["deliveries_per_s"] for r in results["drain"]),
        "burst_deliveries_per_s_median":
            statistics.median(r["deliveries_per_s"] for r in results["burst"]),
        "paced_rate": PACED_RATE,
        "paced_first_attempt_p50_ms_median":
            statistics.median(r["first_attempt_p50_ms"] for r in results["paced"]),
        "paced_first_attempt_p99_ms_median":
            statistics.median(r["first_attempt_p99_ms"] for r in results["paced"]),
    }
    print(json.dumps({"summary": summary, "cores": cores, "load": load}))
    for kind, rows in results.items():
        for r in rows:
            print(json.dumps(dict(r, measure=kind)))


if __name__ == "__main__":
    main()
