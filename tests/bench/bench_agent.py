#!/usr/bin/python3
"""Agent runtime benchmark: barge-in reaction and platform turn overhead, for one call and
for many concurrent calls, measured on the media worker's own recordings.

    /usr/bin/python3 tests/bench/bench_agent.py [BUILD]      (scripts/bench.sh runs it)

It starts its own nats-server and Postgres (the system tests' helpers), voxi-registry,
voxi-providers with its instant test engines (STT answers on flush, TTS is a 440 Hz tone;
VOXI_PROVIDERS_MAX_SESSIONS raised to 4 sessions per concurrent call)
and voxi-media recording every call, creates a flow agent (a long announcement, then
listen, then "Got it.", then goodbye) on a number, and calls it with SIPp callers that
stream generated speech (espeak-ng) starting 1.5 s into the announcement:

  barge-in reaction  caller speech onset (left channel) -> the agent's audio stops (right
                     channel quiet for 300 ms); target p99 <= min_speech_ms + 60 ms
  turn overhead      end of the caller's speech -> first audio of "Got it.", minus the
                     configured endpointing.silence_ms; target p99 <= 30 ms

The recording is 10 ms windows: figures are +-10 ms. The turn overhead is also given on the
runtime's own clock (call.transcript latency: first_rtp - caller_speech_end - silence_ms,
where caller_speech_end is the VAD's last speech frame). Runs: 1 call (BENCH_SINGLE_CALLS
sequential calls, default 10) and BENCH_CONCURRENT calls at once (default 200). The
benchmark never fails on time; it prints a table and JSON lines (also saved to
BUILD/bench/bench_agent.json).
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
os.environ["VOXI_BUILD"] = BUILD
sys.path.insert(0, os.path.join(REPO, "tests", "system"))

from agent_util import AgentRig, Recording, pcmu  # noqa: E402
from conftest import BIN, REPO as _R, Postgres, base_env  # noqa: E402,F401
from media_util import free_rtp_range, sipp_cmd  # noqa: E402

SINGLE = int(os.environ.get("BENCH_SINGLE_CALLS", "10"))
CONCURRENT = int(os.environ.get("BENCH_CONCURRENT", "200"))
MIN_SPEECH_MS = 200
SILENCE_MS = 500
LONG = "This announcement is long enough for the caller to talk over it comfortably. " * 3


def agent_doc():
    return {
        "name": "bench agent",
        "voice": {"provider": "test"},
        "transcriber": {"provider": "test", "keywords": ["hello"]},
        "interruptions": {"min_speech_ms": MIN_SPEECH_MS},
        "endpointing": {"silence_ms": SILENCE_MS},
        "silence_timeout_s": 0,
        "response_engine": {"type": "flow", "start": "long", "nodes": [
            {"id": "long", "type": "say", "text": LONG, "next": "ask"},
            {"id": "ask", "type": "listen", "variable": "answer", "timeout_ms": 5000,
             "next": "ok"},
            {"id": "ok", "type": "say", "text": "Got it.", "next": "bye"},
            {"id": "bye", "type": "hangup", "message": "Bye."}]},
    }


def measure(rec):
    """(barge-in reaction ms, turn overhead ms) from one call's recording, or None."""
    onset = rec.caller_onset_ms(1000)
    if onset is None:
        return None
    stop = rec.agent_silent_from_ms(onset)
    # the caller's last loud window, then the agent's next onset ("Got it.")
    end = max(i for i, lv in enumerate(rec.caller) if lv >= 1000) * 10
    reply = rec.agent_onset_ms(end + 10)
    if stop is None or reply is None:
        return None
    return stop - onset, reply - end - SILENCE_MS


def pct(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def run_calls(rig, number, audio, tmp, calls, concurrent):
    xml_src = open(os.path.join(REPO, "tests", "system", "sipp", "uac_agent.xml")).read()
    import re
    xml = re.sub(r"<!--INFO-->.*<!--/INFO-->", "", xml_src, flags=re.S)
    xml = xml.replace("@AUDIO@", audio).replace("@DIGIT@", "").replace("@PAUSE_MS@", "0")
    path = os.path.join(tmp, "bench.xml")
    with open(path, "w") as f:
        f.write(xml)
    lo, hi = free_rtp_range(4 * max(concurrent, 8))
    before = set(os.listdir(rig.rec_dir))
    if concurrent > 1:
        cmd = sipp_cmd(path, rig.media, tmp, service=number, calls=calls, limit=concurrent,
                       rate=100, extra=("-mp", str(lo)))
    else:
        cmd = sipp_cmd(path, rig.media, tmp, service=number, calls=calls, limit=1, rate=10,
                       extra=("-mp", str(lo)))
    t0 = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, errors="replace", cwd=tmp,
                         timeout=600)
    took = time.monotonic() - t0
    if out.returncode != 0:
        print(f"sipp exited {out.returncode}: {out.stdout[-1500:]}{out.stderr[-1500:]}")
    # recordings are closed when call.ended is published: wait for all of them
    deadline = time.monotonic() + 30
    files = []
    while time.monotonic() < deadline:
        files = sorted(set(os.listdir(rig.rec_dir)) - before)
        ended = [e for e in rig.events.all() if e.get("type") == "call.ended"]
        if len(files) >= calls and len(ended) >= len(before) + calls:
            break
        time.sleep(0.2)
    # the runtime's own clock: first RTP of the answer - last speech frame - silence_ms
    own = [t["latency_ms"]["first_rtp"] - t["latency_ms"]["caller_speech_end"] - SILENCE_MS
           for e in rig.events.all() if e.get("type") == "call.transcript"
           and e["data"]["call_id"] + ".wav" in files
           for t in [e["data"]["turn"]]
           if t["role"] == "agent" and "caller_speech_end" in t.get("latency_ms", {})
           and "first_rtp" in t["latency_ms"] and t["text"] == "Got it."]
    barge, turn, bad = [], [], 0
    for name in files:
        m = measure(Recording(os.path.join(rig.rec_dir, name)))
        if m is None:
            bad += 1
            continue
        barge.append(m[0])
        turn.append(m[1])
    return barge, turn, own, bad, took


def main():
    os.makedirs(os.path.join(REPO, BUILD, "bench"), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="voxi-bench-agent-")
    pg = Postgres()
    pg.start()
    env = base_env("nats://127.0.0.1:1", pg)
    env["VOXI_MIGRATIONS_DIR"] = os.path.join(REPO, "migrations")
    subprocess.run([os.path.join(BIN, "voxi-registry"), "migrate"], env=env, check=True,
                   capture_output=True, timeout=60)
    lo, hi = free_rtp_range(1000)
    # every call holds an STT and a TTS session at times: room for all of them
    rig = AgentRig(tmp, pg, providers_env={"VOXI_PROVIDERS_MAX_SESSIONS": str(4 * CONCURRENT)},
                   media_env={"VOXI_MEDIA_RTP_PORT_MIN": lo,
                                       "VOXI_MEDIA_RTP_PORT_MAX": hi,
                                       "VOXI_LOG_LEVEL": "info"})
    results = []
    try:
        agent, number = rig.agent(agent_doc())
        audio = pcmu(tmp, "caller", [("silence", 1.5), ("say", "hello there, I have a question"),
                                     ("silence", 4)])
        for label, calls, conc in (("1 call", SINGLE, 1), (f"{CONCURRENT} concurrent",
                                                           CONCURRENT, CONCURRENT)):
            barge, turn, own, bad, took = run_calls(rig, number, audio, tmp, calls, conc)
            r = {"run": label, "calls": calls, "measured": len(barge), "unmeasured": bad,
                 "seconds": round(took, 1),
                 "barge_in_ms": {"p50": pct(barge, 50), "p99": pct(barge, 99),
                                 "max": max(barge) if barge else None},
                 "turn_overhead_ms": {"p50": pct(turn, 50), "p99": pct(turn, 99),
                                      "max": max(turn) if turn else None},
                 "turn_overhead_runtime_clock_ms": {"p50": pct(own, 50), "p99": pct(own, 99),
                                                    "n": len(own)}}
            results.append(r)
    finally:
        rig.close()
        pg.stop()
    print(f"\nagent runtime (min_speech_ms {MIN_SPEECH_MS}, silence_ms {SILENCE_MS}; "
          f"load average {os.getloadavg()[0]:.2f}; targets: barge-in p99 <= "
          f"{MIN_SPEECH_MS + 60} ms, turn overhead p99 <= 30 ms)")
    print(f"{'run':16s} {'calls':>5s} {'ok':>4s} {'barge p50':>9s} {'p99':>5s} "
          f"{'turn p50':>8s} {'p99':>5s} {'(runtime clock p50':>18s} {'p99)':>5s}")
    for r in results:
        b, t = r["barge_in_ms"], r["turn_overhead_ms"]
        o = r["turn_overhead_runtime_clock_ms"]
        print(f"{r['run']:16s} {r['calls']:5d} {r['measured']:4d} {b['p50']:9} {b['p99']:5} "
              f"{t['p50']:8} {t['p99']:5} {o['p50']:18} {o['p99']:5}")
    with open(os.path.join(REPO, BUILD, "bench", "bench_agent.json"), "w") as f:
        for r in results:
            line = json.dumps(r)
            print(line)
            f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
