"""Helpers for the media worker's system tests: a running voxi-media, SIPp runs, a small
NATS subscriber (core protocol over a socket) to watch call events, raw SIP over UDP.

Waits are bounded polls of the thing awaited (a message, a metric), never plain sleeps.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid

import pytest

from conftest import REPO, Service, base_env, free_port, http_get, wait_for

SIPP_DIR = os.path.join(REPO, "tests", "system", "sipp")


def free_udp_tcp_port():
    """A port free for both UDP and TCP on loopback."""
    for _ in range(50):
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            try:
                u.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise AssertionError("no free port")


def free_rtp_range(size=200):
    """An even port range [lo, hi] nobody listens on right now (best effort)."""
    for _ in range(50):
        lo = 20000 + 2 * (int.from_bytes(os.urandom(2), "big") % 10000)
        hi = lo + size - 1
        if hi > 65000:
            continue
        ok = True
        for p in (lo, lo + 1, hi - 1, hi):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return lo, hi
    raise AssertionError("no free RTP range")


class Media:
    """A voxi-media process with its own SIP port and RTP range."""

    def __init__(self, tmp, nats_url, **env_overrides):
        env = base_env(nats_url)
        self.sip_port = free_udp_tcp_port()
        self.rtp_min, self.rtp_max = free_rtp_range()
        env.update({
            "VOXI_MEDIA_SIP_ADDR": "127.0.0.1",
            "VOXI_MEDIA_SIP_PORT": str(self.sip_port),
            "VOXI_MEDIA_RTP_PORT_MIN": str(self.rtp_min),
            "VOXI_MEDIA_RTP_PORT_MAX": str(self.rtp_max),
            "VOXI_MEDIA_DRAIN_TIMEOUT_MS": "5000",
        })
        env.update({k: str(v) for k, v in env_overrides.items()})
        self.svc = Service("media", env, tmp)

    def start(self):
        self.svc.start()
        self.svc.wait_ready()
        return self

    def stop(self, timeout=20):
        return self.svc.stop(timeout)

    @property
    def proc(self):
        return self.svc.proc

    def log(self):
        return self.svc.read_log()

    def metrics(self):
        return http_get(self.svc.health_port, "/metrics")[2]

    def metric(self, name, labels=None):
        """Value of one series (0 when absent)."""
        text = self.metrics()
        pattern = re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else "") + \
            r" ([0-9.e+-]+)$"
        m = re.search(pattern, text, re.M)
        return float(m.group(1)) if m else 0.0


class NatsSub:
    """Subscribes to a subject with the NATS client protocol and keeps what arrives."""

    def __init__(self, url, subject):
        host, port = url.replace("nats://", "").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=5)
        self.file = self.sock.makefile("rb")
        self.file.readline()  # INFO
        self._send(b'CONNECT {"verbose":false,"pedantic":false,"headers":true,'
                   b'"protocol":1,"name":"pytest"}\r\n')
        self._send(f"SUB {subject} 1\r\nPING\r\n".encode())
        self.messages = []
        self.cond = threading.Condition()
        self.closed = False
        self.sock.settimeout(None)
        line = self.file.readline()
        assert line.startswith(b"PONG"), line
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _send(self, data):
        self.sock.sendall(data)

    def _read(self):
        try:
            while True:
                line = self.file.readline()
                if not line:
                    break
                if line.startswith(b"PING"):
                    self._send(b"PONG\r\n")
                    continue
                parts = line.split()
                if parts[0] == b"MSG":
                    size = int(parts[-1])
                    payload = self.file.read(size + 2)[:size]
                    self._add(parts[1].decode(), payload)
                elif parts[0] == b"HMSG":
                    total = int(parts[-1])
                    hdr = int(parts[-2])
                    data = self.file.read(total + 2)[:total]
                    self._add(parts[1].decode(), data[hdr:])
        except (OSError, ValueError):
            pass

    def _add(self, subject, payload):
        with self.cond:
            self.messages.append((subject, payload))
            self.cond.notify_all()

    def wait_for(self, predicate, timeout=10, what="a message"):
        """Returns the first message (subject, payload) for which predicate is true."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for m in self.messages:
                    if predicate(*m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}; got "
                                         f"{[s for s, _ in self.messages][-20:]}")
                self.cond.wait(left)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Events(NatsSub):
    """The call events of voxi.events.>, decoded."""

    def __init__(self, url):
        super().__init__(url, "voxi.events.>")

    def all(self):
        with self.cond:
            return [json.loads(p) for _, p in self.messages]

    def wait_event(self, type_, pred=lambda e: True, timeout=15):
        def match(subject, payload):
            try:
                e = json.loads(payload)
            except ValueError:
                return False
            return e.get("type") == type_ and pred(e)
        return json.loads(self.wait_for(match, timeout, f"event {type_}")[1])


def scenario(name, tmp, **subst):
    """Writes tests/system/sipp/<name>.xml with @KEY@ replaced; returns the path."""
    with open(os.path.join(SIPP_DIR, name + ".xml")) as f:
        text = f.read()
    for k, v in subst.items():
        text = text.replace(f"@{k}@", str(v))
    path = os.path.join(tmp, f"{name}-{uuid.uuid4().hex[:8]}.xml")
    with open(path, "w") as f:
        f.write(text)
    return path


def sipp_cmd(xml, media, tmp, service="demo", calls=1, limit=1, rate=10, transport="u1",
             extra=()):
    return ["sipp", "-sf", xml, f"127.0.0.1:{media.sip_port}", "-s", service,
            "-m", str(calls), "-l", str(limit), "-r", str(rate), "-i", "127.0.0.1",
            "-p", str(free_udp_tcp_port()), "-mp", str(free_rtp_range(8)[0]),
            "-t", transport, "-timeout", "60s", "-timeout_error", "-nostdin",
            "-trace_err", "-error_file", os.path.join(tmp, f"sipp-err-{uuid.uuid4().hex[:6]}.log"),
            "-max_recv_loops", "1000", *extra]


def run_sipp(xml, media, tmp, timeout=90, **kw):
    """Runs SIPp to completion; returns (exit code, stdout+stderr). 0 = every call passed."""
    out = subprocess.run(sipp_cmd(xml, media, tmp, **kw), capture_output=True, text=True,
                         timeout=timeout, cwd=tmp)
    return out.returncode, out.stdout + out.stderr


class SipSocket:
    """Raw SIP over UDP, for messages SIPp cannot send (torture tests, malformed input)."""

    def __init__(self, port):
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.local_port = self.sock.getsockname()[1]

    def send(self, data):
        self.sock.sendto(data, ("127.0.0.1", self.port))

    def recv(self, timeout=5):
        self.sock.settimeout(timeout)
        data, _ = self.sock.recvfrom(65535)
        return data

    def responses_until(self, call_id, timeout=10):
        """Reads responses until a final one for call_id; returns (finals for call_id,
        every other response received meanwhile)."""
        others = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no final response for {call_id}")
            data = self.recv(left)
            code, cid = status_and_call_id(data)
            if cid == call_id and code >= 200:
                return data, others
            if cid != call_id:
                others.append(data)

    def close(self):
        self.sock.close()


def status_and_call_id(data):
    text = data.decode(errors="replace")
    m = re.match(r"SIP/2\.0 (\d{3})", text)
    code = int(m.group(1)) if m else 0
    c = re.search(r"^(?:Call-ID|i)\s*:\s*(.*?)\s*$", text, re.M | re.I)
    return code, c.group(1) if c else None


def options_ping(port_or_sock, call_id=None):
    """An OPTIONS request (bytes) with a fresh Call-ID; returns (bytes, call_id)."""
    call_id = call_id or f"ping-{uuid.uuid4().hex}"
    sock = port_or_sock
    msg = (f"OPTIONS sip:demo@127.0.0.1 SIP/2.0\r\n"
           f"Via: SIP/2.0/UDP 127.0.0.1:{sock.local_port};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
           f"From: <sip:ping@127.0.0.1>;tag={uuid.uuid4().hex[:8]}\r\n"
           f"To: <sip:demo@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\n"
           f"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode()
    return msg, call_id


@pytest.fixture(scope="session")
def pcmu_audio(tmp_root):
    """A few seconds of speech as raw PCMU at 8 kHz (espeak-ng + sox; no WAV header)."""
    wav = os.path.join(tmp_root, "speech.wav")
    raw = os.path.join(tmp_root, "speech.ulaw")
    subprocess.run(["espeak-ng", "-w", wav, "Hello, this is the voxi hub media test. "
                    "One, two, three, four, five, six."], check=True, capture_output=True)
    subprocess.run(["sox", wav, "-r", "8000", "-c", "1", "-t", "raw", "-e", "mu-law", raw],
                   check=True, capture_output=True)
    return raw


@pytest.fixture
def media_tmp():
    d = tempfile.mkdtemp(prefix="voxi-media-test-")
    yield d
    shutil.rmtree(d, ignore_errors=True)
