"""Fixtures for the system tests: real nats-server, real Postgres, the real binaries.

Every server runs on a free loopback port in a temporary directory and is stopped at
the end. Waits are bounded polls of the thing awaited (a port, /readyz), never sleeps.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("VOXI_BUILD", "build")
BIN = os.path.join(REPO, BUILD, "bin")
TOOLS = os.path.join(REPO, BUILD, "tests", "tools")
PG_BIN = "/usr/lib/postgresql/15/bin"
SERVICES = ["gateway", "auth", "registry", "webhooks", "media", "providers"]
DB_SERVICES = {"auth", "registry", "webhooks"}
SANITIZED = BUILD.endswith("asan")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, what):
    """Polls predicate until true; fails with `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def http_get(port, path):
    """Returns (status, headers with lower-case names, body) for GET 127.0.0.1:port/path."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode()


class Nats:
    def __init__(self, tmp):
        self.tmp = tmp
        self.port = free_port()
        self.proc = None

    @property
    def url(self):
        return f"nats://127.0.0.1:{self.port}"

    def start(self):
        store = os.path.join(self.tmp, f"js-{self.port}")  # one store per server
        self.log = open(os.path.join(self.tmp, "nats.log"), "ab")
        self.proc = subprocess.Popen(
            ["nats-server", "-c", os.path.join(REPO, "deploy/nats/nats.conf"), "-js",
             "-sd", store, "-a", "127.0.0.1", "-p", str(self.port), "-m", "0"],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: port_open(self.port), 10, "nats-server to listen")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


class Postgres:
    """A throwaway cluster owned by the postgres user (initdb refuses root)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="voxi-pg-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "sock")
        self.as_root = os.geteuid() == 0

    def _run(self, *cmd):
        if self.as_root:
            cmd = ("runuser", "-u", "postgres", "--") + cmd
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)

    def start(self):
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")
        os.makedirs(self.sock, exist_ok=True)
        if self.as_root:
            shutil.chown(self.sock, "postgres", "postgres")
        self._run(f"{PG_BIN}/initdb", "-D", self.data, "-U", "voxi", "--auth=trust",
                  "-E", "UTF8", "--locale=C.UTF-8")
        self._run(f"{PG_BIN}/pg_ctl", "-D", self.data, "-l", os.path.join(self.data, "log"),
                  "-w", "-o", f"-k {self.sock} -p {self.port} -c listen_addresses=''", "start")
        subprocess.run([f"{PG_BIN}/createdb", "-h", self.sock, "-p", str(self.port),
                        "-U", "voxi", "voxi"], check=True)

    def dsn(self, db="voxi"):
        return f"host={self.sock} port={self.port} user=voxi dbname={db}"

    def psql(self, sql, db="voxi"):
        out = subprocess.run(["psql", "-X", "-A", "-t", "-q", self.dsn(db), "-c", sql],
                             check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def stop(self):
        subprocess.run(["runuser", "-u", "postgres", "--", f"{PG_BIN}/pg_ctl", "-D", self.data,
                        "-m", "immediate", "-w", "stop"] if self.as_root else
                       [f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)


class Service:
    def __init__(self, name, env, tmp):
        self.name = name
        self.env = dict(env)
        key = f"VOXI_{name.upper()}_HEALTH_PORT"
        self.env.setdefault(key, str(free_port()))
        self.health_port = int(self.env[key])
        self.log_path = os.path.join(tmp, f"{name}-{self.health_port}.log")
        self.proc = None

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([os.path.join(BIN, f"voxi-{self.name}")], env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        return self

    def ready(self):
        try:
            return http_get(self.health_port, "/readyz")[0] == 200
        except OSError:
            return False

    def wait_ready(self, timeout=20):
        def check():
            if self.proc.poll() is not None:
                raise AssertionError(f"voxi-{self.name} exited {self.proc.returncode}:\n"
                                     + self.read_log())
            return self.ready()
        wait_for(check, timeout, f"voxi-{self.name} to be ready")
        return self

    def read_log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self, timeout=10):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None


def base_env(nats_url, pg=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXI_")}
    env.update({"VOXI_NATS_URL": nats_url, "VOXI_LOG_LEVEL": "debug",
                "VOXI_GATEWAY_HTTP_PORT": str(free_port())})
    # voxi-webhooks: test receivers listen on 127.0.0.1 over plain http; retries in seconds
    env.update({"VOXI_WEBHOOKS_ALLOW_HTTP": "true", "VOXI_WEBHOOKS_SSRF_ALLOWLIST": "127.0.0.1/32",
                "VOXI_WEBHOOKS_RETRY_SCALE": "0.001"})
    # voxi-auth: every 401 spends the client IP's anonymous bucket, and all tests come from
    # 127.0.0.1; tests of that limit set their own value
    env["VOXI_AUTH_RATE_ANON_PER_MIN"] = "100000"
    # voxi-media: any free SIP port (5060 may be taken on a shared machine)
    env["VOXI_MEDIA_SIP_PORT"] = "0"
    if pg is not None:
        env["VOXI_DATABASE_URL"] = pg.dsn()
    if SANITIZED:
        env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0:exitcode=23"
        env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
        supp = os.path.join(REPO, "tests", "lsan.supp")
        if os.path.exists(supp):
            env["LSAN_OPTIONS"] = f"suppressions={supp}"
    return env


@pytest.fixture(scope="session")
def tmp_root():
    d = tempfile.mkdtemp(prefix="voxi-system-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def nats(tmp_root):
    n = Nats(tmp_root)
    n.start()
    yield n
    n.stop()


@pytest.fixture(scope="session")
def pg():
    p = Postgres()
    p.start()
    yield p
    p.stop()


@pytest.fixture(scope="session")
def migrated(pg):
    """The session database, migrated and bootstrapped (org "default" + platform-admin key).

    Bootstrap runs here, before any test can create an org, because it only creates the
    admin key on an empty database."""
    env = base_env("nats://127.0.0.1:1", pg)
    env["VOXI_MIGRATIONS_DIR"] = os.path.join(REPO, "migrations")
    out = subprocess.run([os.path.join(BIN, "voxi-registry"), "migrate"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    pg.admin_key_file = os.path.join(pg.dir, "admin_api_key")
    out = subprocess.run([os.path.join(BIN, "voxi-auth"), "bootstrap", "--key-file",
                          pg.admin_key_file], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    return pg


@pytest.fixture
def spawn(tmp_root):
    """spawn(name, env) starts a service; all are stopped (and checked) at test end."""
    started = []

    def _spawn(name, env):
        s = Service(name, env, tmp_root).start()
        started.append(s)
        return s
    yield _spawn
    for s in started:
        s.stop()


@pytest.fixture(scope="session")
def stack(tmp_root, nats, migrated):
    """All six services, up and ready, shared by the tests that only talk to them."""
    env = base_env(nats.url, migrated)
    services = {}
    try:
        for name in SERVICES:
            services[name] = Service(name, env, tmp_root).start()
        for s in services.values():
            s.wait_ready()
    except BaseException:
        for s in services.values():  # one failed: stop the others before failing
            s.stop()
        raise
    yield services
    codes = {name: s.stop() for name, s in services.items()}
    bad = {n: c for n, c in codes.items() if c != 0}
    assert not bad, f"services did not exit 0 on SIGTERM: {bad}"


def ping(nats_url, service, timeout_ms=3000, note=""):
    """Runs the voxi_ping tool; returns (exit code, parsed reply or None, stderr)."""
    out = subprocess.run([os.path.join(TOOLS, "voxi_ping"), nats_url, service,
                          str(timeout_ms), note], capture_output=True, text=True, timeout=30)
    reply = json.loads(out.stdout) if out.returncode == 0 else None
    return out.returncode, reply, out.stderr


class Api:
    """A small HTTP client for the gateway's public API (tests read raw status/headers)."""

    def __init__(self, port, key=None):
        self.port = port
        self.key = key

    def request(self, method, path, body=None, key=None, headers=None, raw=None):
        """Returns (status, headers with lower-case names, parsed JSON or text or None)."""
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        hdrs = {}
        token = key if key is not None else self.key
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        text = r.read().decode(errors="replace")
        rh = {k.lower(): v for k, v in r.getheaders()}
        conn.close()
        parsed = None
        if text:
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = text
        return r.status, rh, parsed

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


@pytest.fixture(scope="session")
def admin_key(migrated):
    """The platform-admin key `voxi-auth bootstrap` created on the empty database."""
    with open(migrated.admin_key_file) as f:
        return f.read().strip()


@pytest.fixture(scope="session")
def api(stack, admin_key):
    """A client of the running stack's gateway, authenticated as the platform admin."""
    return Api(int(stack["gateway"].env["VOXI_GATEWAY_HTTP_PORT"]), admin_key)
