"""The platform skeleton: health, ping, shutdown, configuration, migrations."""
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import (BIN, DB_SERVICES, REPO, SERVICES, Nats, base_env, free_port, http_get,
                      ping, port_open, wait_for)


@pytest.mark.parametrize("name", SERVICES)
def test_side_port_health_ready_metrics(stack, name):
    svc = stack[name]
    status, headers, body = http_get(svc.health_port, "/healthz")
    assert status == 200
    assert f'"service":"{name}"' in body.replace(" ", "")
    status, _, body = http_get(svc.health_port, "/readyz")
    assert status == 200, body
    status, headers, body = http_get(svc.health_port, "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain")
    assert "# TYPE voxi_health_requests_total counter" in body
    assert re.search(r"^process_resident_memory_bytes \d+", body, re.M)
    status, _, _ = http_get(svc.health_port, "/nope")
    assert status == 404


@pytest.mark.parametrize("name", SERVICES)
def test_ping_over_nats(stack, nats, name):
    code, reply, err = ping(nats.url, name, note=f"hello-{name}")
    assert code == 0, err
    assert reply["service"] == name
    assert reply["note"] == f"hello-{name}"
    assert reply["ready"] is True
    assert reply["instance_id"].startswith(name + "-")
    assert reply["request_id"].startswith("req_")
    # the ping was counted
    _, _, body = http_get(stack[name].health_port, "/metrics")
    assert re.search(r'^voxi_ping_requests_total\{outcome="ok"\} [1-9]', body, re.M)


def test_ping_unknown_service_is_no_responders(nats):
    code, _, err = ping(nats.url, "nosuchservice", timeout_ms=5000)
    assert code == 3, err
    assert "no responders" in err


def test_queue_group_spreads_pings(tmp_root, spawn):
    """Two instances of one service share voxi.<svc>.ping through the queue group."""
    own = Nats(tmp_root)
    own.start()
    try:
        env = base_env(own.url)
        a = spawn("providers", dict(env, VOXI_INSTANCE_ID="providers-a")).wait_ready()
        b = spawn("providers", dict(env, VOXI_INSTANCE_ID="providers-b")).wait_ready()
        seen = {}
        for _ in range(40):
            code, reply, err = ping(own.url, "providers")
            assert code == 0, err
            seen[reply["instance_id"]] = seen.get(reply["instance_id"], 0) + 1
        assert set(seen) == {"providers-a", "providers-b"}, seen
        assert a.stop() == 0 and b.stop() == 0
    finally:
        own.stop()


@pytest.mark.parametrize("name", SERVICES)
def test_sigterm_drains_and_exits_zero_within_5s(nats, migrated, spawn, name):
    env = base_env(nats.url, migrated)
    svc = spawn(name, dict(env, VOXI_INSTANCE_ID=f"{name}-term")).wait_ready()
    code, reply, _ = ping(nats.url, name)
    assert code == 0
    started = time.monotonic()
    svc.proc.send_signal(signal.SIGTERM)
    assert svc.proc.wait(5) == 0, svc.read_log()
    assert time.monotonic() - started < 5
    log = svc.read_log()
    assert "draining" in log and "exit 0" in log
    assert not port_open(svc.health_port)


def test_sigint_also_shuts_down(nats, spawn):
    svc = spawn("media", base_env(nats.url)).wait_ready()
    svc.proc.send_signal(signal.SIGINT)
    assert svc.proc.wait(5) == 0


@pytest.mark.parametrize("name", SERVICES)
def test_bad_config_lists_every_problem(name):
    env = base_env("nats://127.0.0.1:4222")
    env.update({"VOXI_LOG_LEVEL": "loud", f"VOXI_{name.upper()}_HEALTH_PORT": "99999",
                "VOXI_SHUTDOWN_TIMEOUT_MS": "soon"})
    out = subprocess.run([os.path.join(BIN, f"voxi-{name}")], env=env, capture_output=True,
                         text=True, timeout=10)
    assert out.returncode == 2
    assert "VOXI_LOG_LEVEL" in out.stderr and "loud" in out.stderr
    assert f"VOXI_{name.upper()}_HEALTH_PORT: 99999 is outside 0..65535" in out.stderr
    assert 'VOXI_SHUTDOWN_TIMEOUT_MS: "soon" is not an integer' in out.stderr


def test_secret_config_never_logged(nats, migrated, spawn):
    env = base_env(nats.url, migrated)
    env["VOXI_DATABASE_URL"] = migrated.dsn() + " password=hunter2-secret"
    svc = spawn("auth", env).wait_ready()
    assert svc.stop() == 0
    log = svc.read_log()
    assert "VOXI_DATABASE_URL=********" in log
    assert "hunter2" not in log


def test_bad_secret_value_not_echoed():
    env = base_env("nats://127.0.0.1:4222")
    env["VOXI_DATABASE_URL"] = "x" * 3000 + "hunter2"
    out = subprocess.run([os.path.join(BIN, "voxi-registry")], env=env, capture_output=True,
                         text=True, timeout=10)
    assert out.returncode == 2
    assert "VOXI_DATABASE_URL" in out.stderr and "hunter2" not in out.stderr


def test_readyz_follows_nats(tmp_root, spawn):
    """Not ready without NATS, ready once it comes, not ready when it goes, ready again."""
    own = Nats(tmp_root)
    try:
        svc = spawn("providers", base_env(own.url))
        wait_for(lambda: port_open(svc.health_port), 10, "side port")
        status, _, body = http_get(svc.health_port, "/readyz")
        assert status == 503 and "nats not connected" in body
        own.start()
        svc.wait_ready()
        own.stop()
        wait_for(lambda: http_get(svc.health_port, "/readyz")[0] == 503, 10, "not ready")
        own.start()
        svc.wait_ready()
        assert svc.stop() == 0
    finally:
        own.stop()


def test_readyz_follows_postgres(nats, spawn, tmp_root):
    env = base_env(nats.url)
    env["VOXI_DATABASE_URL"] = f"host={tmp_root} port={free_port()} user=voxi dbname=voxi"
    svc = spawn("registry", env)
    wait_for(lambda: port_open(svc.health_port), 10, "side port")
    status, _, body = http_get(svc.health_port, "/readyz")
    assert status == 503 and "postgres not connected" in body
    assert svc.stop() == 0


def test_health_port_in_use_fails_clearly(nats, spawn):
    env = base_env(nats.url)
    first = spawn("media", env).wait_ready()
    second = spawn("media", dict(env, VOXI_MEDIA_HEALTH_PORT=str(first.health_port)))
    assert second.proc.wait(10) == 1
    assert f"{first.health_port}" in second.read_log()
    assert first.ready()


def test_migrations_are_recorded_and_idempotent(migrated):
    files = sorted(f for f in os.listdir(os.path.join(REPO, "migrations"))
                   if re.match(r"^\d{4}_.*\.sql$", f))
    versions = migrated.psql("select string_agg(version::text, ',' order by version) "
                             "from schema_migrations")
    assert versions == ",".join(str(int(f[:4])) for f in files)
    env = base_env("nats://127.0.0.1:1", migrated)
    env["VOXI_MIGRATIONS_DIR"] = os.path.join(REPO, "migrations")
    out = subprocess.run([os.path.join(BIN, "voxi-registry"), "migrate"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "0 applied" in out.stdout + out.stderr
    assert migrated.psql("select count(*) from schema_migrations") == str(len(files))


@pytest.mark.parametrize("name", SERVICES)
def test_readme_documents_every_variable(name):
    out = subprocess.run([os.path.join(BIN, f"voxi-{name}"), "--config-reference"],
                         capture_output=True, text=True, timeout=10, check=True)
    names = re.findall(r"^\| `(VOXI_[A-Z0-9_]+)` \|", out.stdout, re.M)
    assert names, out.stdout
    readme = open(os.path.join(REPO, "README.md")).read()
    missing = [n for n in names if f"`{n}`" not in readme]
    assert not missing, f"README.md lacks {missing}"


def test_unknown_argument_is_a_usage_error():
    out = subprocess.run([os.path.join(BIN, "voxi-gateway"), "--bogus"], capture_output=True,
                         text=True, timeout=10)
    assert out.returncode == 2 and "usage:" in out.stderr
