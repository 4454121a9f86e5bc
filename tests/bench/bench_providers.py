#!/usr/bin/python3
"""Benchmark of voxi-providers: latencies of the local engines as the agent runtime sees them.

Starts its own nats-server and one voxi-providers (pocketsphinx, flite, the test engines),
drives sessions with tests/tools/voxi_prov_client (timestamps from inside the client), and
prints and saves figures. Never passes or fails on time.

  /usr/bin/python3 tests/bench/bench_providers.py [build]
Figures go to stdout and <build>/bench/bench_providers.txt (scripts/bench.sh saves stdout).
"""
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
CLIENT = os.path.join(REPO, BUILD, "tests", "tools", "voxi_prov_client")
N = 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"voxi-providers exited {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit("voxi-providers not ready")


def run(url, kind, spec, commands, timeout_ms=30000):
    out = subprocess.run([CLIENT, url, kind, json.dumps(spec), json.dumps(commands), "",
                          str(timeout_ms)], capture_output=True, text=True, check=True)
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def first(events, kind):
    return next(e for e in events if e["event"] == kind)


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def line(name, values, unit="ms"):
    print(f"{name:<52} p50 {statistics.median(values):8.2f} {unit}  p95 {pct(values, 95):8.2f} "
          f"{unit}  max {max(values):8.2f} {unit}  (n={len(values)})", flush=True)


def main():
    tmp = tempfile.mkdtemp(prefix="voxi-bench-prov-")
    nats_port, health = free_port(), free_port()
    nats = subprocess.Popen(["nats-server", "-a", "127.0.0.1", "-p", str(nats_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"nats://127.0.0.1:{nats_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXI_")}
    env.update({"VOXI_NATS_URL": url, "VOXI_PROVIDERS_HEALTH_PORT": str(health),
                "VOXI_PROVIDERS_TEST_ENGINES": "true", "VOXI_LOG_LEVEL": "warn"})
    t0 = time.monotonic()
    prov = subprocess.Popen([os.path.join(REPO, BUILD, "bin", "voxi-providers")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(health, prov)
        print(f"{'start-up to ready (2 pocketsphinx decoders)':<52} {1000 * (time.monotonic() - t0):8.1f} ms")
        sentence = "Thank you for calling, how can I help you today?"
        for voice, rate in (("kal", 8000), ("slt", 16000), ("slt", 8000)):
            first_chunk, total = [], []
            for _ in range(N):
                ev = run(url, "tts", {"tts": {"voice": voice, "sample_rate": rate}},
                         [{"mark": "send"}, {"text": sentence}, {"wait": "tts_done"},
                          {"close": True}])
                sent = first(ev, "mark")["t_ms"]
                first_chunk.append(first(ev, "audio")["t_ms"] - sent)
                total.append(first(ev, "tts_done")["t_ms"] - sent)
            line(f"tts flite {voice} @{rate} Hz: text -> first audio", first_chunk)
            line(f"tts flite {voice} @{rate} Hz: text -> tts_done", total)
        # STT: 2 s of speech, sent at once; flush -> final is what the runtime waits for
        wav = os.path.join(tmp, "speech.wav")
        src = os.path.join(tmp, "src.wav")
        subprocess.run(["flite", "-voice", "slt", "-t", "I would like to talk to sales please",
                        "-o", src], check=True)
        subprocess.run(["sox", src, "-r", "16000", "-c", "1", "-b", "16", wav], check=True)
        seconds = (os.path.getsize(wav) - 44) / 32000
        for mode, spec in (("grammar", {"phrases": ["sales", "support", "billing",
                                                    "i would like to talk to sales please"]}),
                           ("generic LM", {})):
            lat, whole = [], []
            for _ in range(N // 2):
                ev = run(url, "stt", {"stt": spec},
                         [{"mark": "audio"}, {"audio_file": wav}, {"mark": "flush"},
                          {"flush": True}, {"wait": "final"}, {"close": True}])
                marks = {e["name"]: e["t_ms"] for e in ev if e["event"] == "mark"}
                fin = first(ev, "final")["t_ms"]
                lat.append(fin - marks["flush"])
                whole.append(fin - marks["audio"])
            line(f"stt pocketsphinx {mode}: {seconds:.1f} s audio -> final", whole)
            print(f"{'':<52} real-time factor {statistics.median(whole) / 1000 / seconds:.3f}")
        opens = []
        for _ in range(N):
            ev = run(url, "llm", {"engine": "test",
                                  "llm": {"messages": [{"role": "user", "content": "hi"}]}}, [])
            opens.append(first(ev, "done")["t_ms"] - first(ev, "open")["t_ms"])
        line("llm test engine: open reply -> done", opens)
    finally:
        prov.terminate()
        prov.wait(30)
        nats.terminate()
        nats.wait(10)


if __name__ == "__main__":
    main()
