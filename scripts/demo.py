#!/usr/bin/python3
"""`make demo`: calls the local stack's demo agent (sip:demo@127.0.0.1:5060, created by
`make run`) twice with a scripted SIPp caller speaking generated audio (flite): once
saying "sales", once pressing 2 (SIP INFO); prints each call's transcript and the latency
breakdown of every agent turn (ms since the answer) from the call.transcript events. The
caller's voice is flite's (pocketsphinx hears it better than espeak-ng's).

Usage: scripts/demo.py [NATS_URL] [SIP_HOST:PORT]   (defaults: the local stack's)
"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NATS = sys.argv[1] if len(sys.argv) > 1 else "nats://127.0.0.1:4222"
SIP = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1:5060"


class Events:
    """voxi.events.> over the NATS client protocol (no client library needed)."""

    def __init__(self, url):
        host, port = url.replace("nats://", "").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=5)
        self.file = self.sock.makefile("rb")
        self.file.readline()
        self.sock.sendall(b'CONNECT {"verbose":false,"headers":true,"protocol":1}\r\n'
                          b"SUB voxi.events.> 1\r\nPING\r\n")
        while not self.file.readline().startswith(b"PONG"):
            pass
        self.sock.settimeout(None)
        self.events, self.cond = [], threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            while True:
                line = self.file.readline()
                if not line:
                    return
                if line.startswith(b"PING"):
                    self.sock.sendall(b"PONG\r\n")
                    continue
                parts = line.split()
                if parts and parts[0] in (b"MSG", b"HMSG"):
                    total = int(parts[-1])
                    data = self.file.read(total + 2)[:total]
                    if parts[0] == b"HMSG":
                        data = data[int(parts[-2]):]
                    with self.cond:
                        self.events.append(json.loads(data))
                        self.cond.notify_all()
        except (OSError, ValueError):
            pass

    def wait(self, pred, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for e in self.events:
                    if pred(e):
                        return e
                if time.monotonic() >= deadline:
                    return None
                self.cond.wait(deadline - time.monotonic())


def audio(tmp, name, parts):
    pieces = []
    for i, (kind, arg) in enumerate(parts):
        wav = os.path.join(tmp, f"{name}-{i}.wav")
        if kind == "silence":
            subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", wav, "trim", "0",
                            str(arg)], check=True)
        else:
            raw = wav + ".raw.wav"
            subprocess.run(["flite", "-t", arg, "-o", raw], check=True)
            subprocess.run(["sox", raw, "-r", "8000", "-c", "1", "-b", "16", wav], check=True)
        pieces.append(wav)
    out = os.path.join(tmp, name + ".ulaw")
    subprocess.run(["sox", *pieces, "-t", "raw", "-e", "mu-law", out], check=True)
    return out


def call(events, tmp, title, audio_file, digit=None, pause_ms=0):
    with open(os.path.join(REPO, "tests", "system", "sipp", "uac_agent.xml")) as f:
        xml = f.read()
    if digit is None:
        xml = re.sub(r"<!--INFO-->.*<!--/INFO-->", "", xml, flags=re.S)
    xml = (xml.replace("@AUDIO@", audio_file).replace("@DIGIT@", digit or "")
           .replace("@PAUSE_MS@", str(pause_ms)))
    path = os.path.join(tmp, f"{title}.xml")
    with open(path, "w") as f:
        f.write(xml)
    seen = {e["data"].get("call_id") for e in events.events if e.get("type") == "call.started"}
    print(f"\n=== {title} ===")
    out = subprocess.run(["sipp", "-sf", path, SIP, "-s", "demo", "-m", "1", "-i", "127.0.0.1",
                          "-p", "0", "-mp", "36000", "-timeout", "90s", "-timeout_error",
                          "-nostdin"], cwd=tmp, capture_output=True, text=True)
    if out.returncode != 0:
        print("the call failed:\n" + out.stdout[-2000:] + out.stderr[-2000:])
        return False
    started = events.wait(lambda e: e.get("type") == "call.started" and
                          "demo@" in e["data"].get("to", "") and
                          e["data"]["call_id"] not in seen, 10)
    if started is None:
        print("no call.started event seen (is `make run` up?)")
        return False
    cid = started["data"]["call_id"]
    ended = events.wait(lambda e: e.get("type") == "call.ended" and
                        e["data"]["call_id"] == cid, 10)
    time.sleep(0.2)  # transcript events of the last turn are published with the end
    turns = sorted((e["data"]["turn"] for e in events.events
                    if e.get("type") == "call.transcript" and e["data"]["call_id"] == cid),
                   key=lambda t: t["index"])
    print(f"call {cid}: {ended['data']['reason'] if ended else '?'}, "
          f"{ended['data'].get('duration_ms', 0) / 1000 if ended else 0:.1f} s")
    for t in turns:
        mark = " (interrupted)" if t.get("interrupted") else ""
        print(f"  {t['start_ms']:6d}-{t['end_ms']:6d} ms  {t['role']:6s} {t['text']}{mark}")
        lat = t.get("latency_ms")
        if lat and "first_rtp" in lat:
            base = lat.get("caller_speech_end")
            parts = [f"{k}={v}" for k, v in lat.items()]
            extra = f"  -> {lat['first_rtp'] - base} ms from end of speech to first audio" \
                if base is not None else ""
            print(f"  {'':15s} latency: {', '.join(parts)}{extra}")
    if ended and "usage" in ended["data"]:
        print(f"  usage: {json.dumps(ended['data']['usage'])}")
    return True


def main():
    try:
        events = Events(NATS)
    except OSError as e:
        print(f"cannot reach NATS at {NATS} ({e}): start the stack with `make run`")
        return 1
    with tempfile.TemporaryDirectory(prefix="voxi-demo-") as tmp:
        said = audio(tmp, "sales", [("silence", 7), ("say", "sales"), ("silence", 14)])
        quiet = audio(tmp, "quiet", [("silence", 20)])
        ok = call(events, tmp, "the caller says \"sales\"", said)
        ok = call(events, tmp, "the caller presses 2", quiet, digit="2", pause_ms=6500) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
