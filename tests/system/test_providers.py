"""voxi-providers: STT, LLM and TTS sessions over NATS against the real binary.

Sessions are driven with tests/tools/voxi_prov_client (one session per run, one JSON line
per event). The LLM engine talks to tests/tools/fake_openai.py, which speaks OpenAI's exact
streaming wire format; speech for STT is synthesised with flite and espeak-ng and converted
with sox, then recognised by the real pocketsphinx decoders.
"""
import json
import math
import os
import signal
import struct
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import REPO, TOOLS, Nats, Service, base_env, http_get, wait_for

CLIENT = os.path.join(TOOLS, "voxi_prov_client")
FAKE = os.path.join(REPO, "tests", "tools", "fake_openai.py")
KEY = "sk-test-0123456789"


class Fake:
    def __init__(self, api_key=None):
        cmd = [sys.executable, FAKE, "--port", "0"] + (["--api-key", api_key] if api_key else [])
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}/v1"

    def requests(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_requests", timeout=5) as r:
            return json.loads(r.read())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def fake(tmp_root):
    f = Fake(api_key=KEY)
    yield f
    f.stop()


@pytest.fixture(scope="module")
def bus(tmp_root):
    n = Nats(tmp_root)
    n.start()
    yield n
    n.stop()


def prov_env(bus, **extra):
    env = base_env(bus.url)
    env.update({k: str(v) for k, v in extra.items()})
    return env


@pytest.fixture(scope="module")
def prov(bus, fake, tmp_root):
    """The main instance: pocketsphinx, flite, openai (fake) and the test engines."""
    s = Service("providers", prov_env(
        bus, VOXI_PROVIDERS_TEST_ENGINES="true", VOXI_PROVIDERS_OPENAI_BASE_URL=fake.url,
        VOXI_PROVIDERS_OPENAI_API_KEY=KEY, VOXI_PROVIDERS_OPENAI_MODEL="gpt-test",
        VOXI_PROVIDERS_OPENAI_TIMEOUT_MS=1500, VOXI_INSTANCE_ID="prov-a"), tmp_root).start()
    s.wait_ready(60)
    yield s
    assert s.stop(30) == 0, s.read_log()[-3000:]
    assert KEY not in s.read_log(), "the API key was logged"


def run(bus, kind, spec, commands=None, audio_out="", timeout_ms=20000):
    """Runs one session; returns (exit code, events)."""
    out = subprocess.run([CLIENT, bus.url, kind, json.dumps(spec),
                          json.dumps(commands) if commands is not None else "", audio_out,
                          str(timeout_ms)], capture_output=True, text=True,
                         timeout=timeout_ms / 1000 + 20)
    events = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    return out.returncode, events


def of(events, kind):
    return [e for e in events if e["event"] == kind]


def check_session_shape(events):
    """Exactly one end event, last; seqs 1..n without gaps."""
    stream = [e for e in events if e["event"] not in ("open", "open_error")]
    assert stream, events
    assert [e["seq"] for e in stream] == list(range(1, len(stream) + 1))
    ends = [e for e in stream if e["event"] in ("done", "error")]
    assert len(ends) == 1 and ends[0] is stream[-1], events
    return stream[-1]


# ---- speech fixtures ------------------------------------------------------------------

@pytest.fixture(scope="module")
def speech(tmp_root):
    """WAV files of synthetic speech: name -> path (16-bit mono, 16 kHz unless _8k)."""
    d = os.path.join(tmp_root, "speech")
    os.makedirs(d, exist_ok=True)
    made = {}

    def make(name, text, engine, rate):
        raw = os.path.join(d, name + "_src.wav")
        if engine == "espeak":
            subprocess.run(["espeak-ng", "-w", raw, text], check=True)
        else:
            subprocess.run(["flite", "-voice", engine, "-t", text, "-o", raw], check=True)
        out = os.path.join(d, name + ".wav")
        subprocess.run(["sox", raw, "-r", str(rate), "-c", "1", "-b", "16", out], check=True)
        made[name] = out
    make("sales", "sales", "espeak", 16000)
    make("support", "support", "slt", 16000)
    make("sales_8k", "sales", "kal", 8000)
    make("sentence", "the weather is nice today", "slt", 16000)
    return made


def wav_seconds(path):
    return (os.path.getsize(path) - 44) / 2 / 16000


# ---- LLM: the OpenAI-compatible adapter -----------------------------------------------

def test_llm_streams_deltas_usage_and_speaks_the_openai_request_format(bus, prov, fake):
    spec = {"call_id": "call_llm1", "llm": {"temperature": 0.5, "max_tokens": 50, "messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi there"}]}}
    rc, ev = run(bus, "llm", spec)
    assert rc == 0, ev
    assert ev[0]["event"] == "open" and ev[0]["engine"] == "openai"
    assert ev[0]["instance_id"] == "prov-a"
    assert ev[0]["in_subject"] == f"voxi.providers.in.prov-a.{ev[0]['session_id']}"
    end = check_session_shape(ev)
    assert "".join(e["text"] for e in of(ev, "delta")) == "Hello! You said: hi there"
    assert len(of(ev, "delta")) == 5  # in the order and pieces the vendor streamed them
    assert end["event"] == "done" and end["finish_reason"] == "stop"
    assert end["usage"]["llm_prompt_tokens"] == 4 + 7 and end["usage"]["llm_completion_tokens"] == 5
    req = fake.requests()[-1]
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["Authorization"] == f"Bearer {KEY}"
    body = req["body"]
    assert body["model"] == "gpt-test" and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 50 and abs(body["temperature"] - 0.5) < 1e-6
    assert [m["role"] for m in body["messages"]] == ["system", "user"]


def test_llm_tool_call_deltas_are_assembled_into_tool_calls(bus, prov, fake):
    params = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    spec = {"llm": {"model": "gpt-tools", "messages": [{"role": "user", "content": "use tools:2"}],
                    "tools": [{"name": "get_weather", "description": "Weather in a city",
                               "parameters": params},
                              {"name": "get_time", "parameters": {"type": "object"}}]}}
    rc, ev = run(bus, "llm", spec)
    assert rc == 0, ev
    end = check_session_shape(ev)
    assert end["event"] == "done" and end["finish_reason"] == "tool_calls"
    calls = of(ev, "tool_call")
    assert [(c["tool_call"]["index"], c["tool_call"]["name"], c["tool_call"]["id"])
            for c in calls] == [(0, "get_weather", "call_0abc"), (1, "get_time", "call_1abc")]
    assert json.loads(calls[0]["tool_call"]["arguments"]) == {"city": "Paris"}
    assert json.loads(calls[1]["tool_call"]["arguments"]) == {"tz": "Europe/Paris"}
    # the fragments as streamed, each call's before its assembled event
    for c in calls:
        idx = c["tool_call"]["index"]
        frags = [e for e in of(ev, "tool_call_delta") if e["tool_call"]["index"] == idx]
        assert "".join(f["tool_call"]["arguments"] for f in frags) == c["tool_call"]["arguments"]
        assert len(frags) >= 2 and all(f["seq"] < c["seq"] for f in frags)
    body = fake.requests()[-1]["body"]
    assert body["model"] == "gpt-tools"
    assert body["tools"][0] == {"type": "function", "function": {
        "name": "get_weather", "description": "Weather in a city", "parameters": params}}


@pytest.mark.parametrize("script,status,detail", [
    ("error:401", "unauthorized", "invalid_api_key"),
    ("error:429", "rate_limited", "rate_limit_exceeded"),
    ("error:500", "unavailable", "server_error"),
    ("garbage", "protocol", "malformed"),
    ("hang", "timeout", "timed out"),
])
def test_llm_vendor_errors_map_to_error_events(bus, prov, fake, script, status, detail):
    rc, ev = run(bus, "llm", {"llm": {"messages": [{"role": "user", "content": script}]}})
    assert rc == 0, ev
    end = check_session_shape(ev)
    assert end["event"] == "error" and end["error"]["status"] == status, end
    assert detail in end["error"]["message"]
    assert "sk-te" not in end["error"]["message"]  # the vendor's message echoes the key


def test_llm_cancel_mid_stream_stops_the_transfer(bus, prov, fake):
    n_before = len(fake.requests())
    rc, ev = run(bus, "llm", {"llm": {"messages": [{"role": "user", "content": "slow please"}]}},
                 [{"wait": "delta", "count": 3}, {"cancel": True}])
    assert rc == 0, ev
    end = check_session_shape(ev)
    assert end["event"] == "done" and end["finish_reason"] == "cancelled"
    assert 3 <= len(of(ev, "delta")) < 40
    # the vendor sees the connection go away before it finished streaming
    wait_for(lambda: fake.requests()[n_before].get("client_went_away"), 15,
             "the fake vendor to notice the cancelled transfer")


def test_llm_custom_base_url_is_ssrf_guarded(bus, prov, fake):
    spec = {"llm": {"base_url": fake.url, "messages": [{"role": "user", "content": "hi"}]}}
    n_before = len(fake.requests())
    rc, ev = run(bus, "llm", spec)
    end = check_session_shape(ev)
    assert end["event"] == "error" and end["error"]["status"] == "forbidden", end
    assert len(fake.requests()) == n_before  # refused before connecting
    rc, ev = run(bus, "llm", {"llm": {"base_url": "ftp://example.com/v1",
                                      "messages": [{"role": "user", "content": "hi"}]}})
    assert rc == 5 and ev[0]["status"] == "invalid"


@pytest.fixture
def bare(bus, tmp_root):
    """A second instance: no LLM configured, no test engines, one decoder, two sessions,
    loopback allowlisted for custom base URLs."""
    s = Service("providers", prov_env(
        bus, VOXI_PROVIDERS_STT_DECODERS=1, VOXI_PROVIDERS_MAX_SESSIONS=2,
        VOXI_PROVIDERS_SSRF_ALLOWLIST="127.0.0.1/32", VOXI_INSTANCE_ID="prov-b"),
        tmp_root).start()
    s.wait_ready(60)
    yield s
    assert s.stop(30) == 0, s.read_log()[-3000:]


def test_llm_allowlisted_custom_url_works_without_the_configured_key(bus, prov, bare):
    """A custom base URL to loopback works only where loopback is allowlisted (prov-b), and
    never gets the configured key."""
    fake = Fake()  # this customer's server wants no key
    spec = {"llm": {"base_url": fake.url + "/", "model": "m",
                    "messages": [{"role": "user", "content": "custom"}]}}
    seen = set()
    for _ in range(40):
        rc, ev = run(bus, "llm", spec)
        inst = ev[0].get("instance_id")
        end = check_session_shape(ev)
        if inst == "prov-b":
            assert end["event"] == "done", end
            req = fake.requests()[-1]
            assert "Authorization" not in req["headers"]  # the configured key stays home
            assert req["path"] == "/v1/chat/completions"
        else:
            assert end["error"]["status"] == "forbidden"
        seen.add(inst)
        if "prov-b" in seen:
            break
    fake.stop()
    assert "prov-b" in seen


def test_llm_without_configuration_reports_unavailable(bus, tmp_root):
    n = Nats(tmp_root)
    n.start()
    s = Service("providers", prov_env(n, VOXI_PROVIDERS_STT_DECODERS=0), tmp_root).start()
    try:
        s.wait_ready(30)
        rc, ev = run(n, "llm", {"llm": {"messages": [{"role": "user", "content": "hi"}]}})
        assert rc == 5 and ev[0]["status"] == "unavailable"
        assert "VOXI_PROVIDERS_OPENAI_BASE_URL" in ev[0]["message"]
        rc, ev = run(n, "tts", {"engine": "test"})  # test engines are off by default
        assert rc == 5 and ev[0]["status"] == "unavailable"
        rc, ev = run(n, "stt", {})  # no decoders: no pocketsphinx
        assert rc == 5 and ev[0]["status"] == "unavailable"
    finally:
        assert s.stop(30) == 0
        n.stop()


# ---- TTS: flite -----------------------------------------------------------------------

def pcm_stats(path):
    with open(path, "rb") as f:
        data = f.read()
    samples = struct.unpack(f"<{len(data) // 2}h", data[: len(data) // 2 * 2])
    rms = math.sqrt(sum(s * s for s in samples) / max(1, len(samples)))
    return len(samples), rms


@pytest.mark.parametrize("voice,rate", [("", 8000), ("", 16000), ("slt", 8000), ("kal", 16000)])
def test_tts_flite_audio_at_the_callers_rate(bus, prov, tmp_root, voice, rate):
    text = "Thank you for calling. How can I help you today?"
    out = os.path.join(tmp_root, f"tts_{voice}_{rate}.raw")
    rc, ev = run(bus, "tts", {"tts": {"voice": voice, "sample_rate": rate}},
                 [{"text": text}, {"wait": "tts_done"}, {"close": True}], out)
    assert rc == 0, ev
    assert ev[0]["engine"] == "flite"
    end = check_session_shape(ev)
    assert end["event"] == "done"
    audio = of(ev, "audio")
    assert audio and all(a["sample_rate"] == rate for a in audio)
    assert all(a["audio_bytes"] <= rate // 10 * 2 for a in audio)  # chunks of at most 100 ms
    done = of(ev, "tts_done")
    assert [d["text"] for d in done] == [text] and done[0]["seq"] > audio[-1]["seq"]
    n, rms = pcm_stats(out)
    seconds = n / rate
    assert 1.5 < seconds < 6.0, seconds  # a 10-word sentence
    assert rms > 300, rms  # speech, not silence
    assert end["usage"]["tts_characters"] == len(text)
    assert abs(end["usage"]["tts_seconds"] - seconds) < 0.01


def test_tts_cancel_drops_queued_text(bus, prov):
    long = "This is a long sentence that takes a while to say out loud. " * 3
    rc, ev = run(bus, "tts", {"tts": {"voice": "slt"}},
                 [{"text": long}, {"text": long}, {"text": long}, {"text": long},
                  {"wait": "audio"}, {"cancel": True}])
    assert rc == 0, ev
    end = check_session_shape(ev)
    assert end["event"] == "done" and end["finish_reason"] == "cancelled"
    assert len(of(ev, "tts_done")) < 4


# ---- STT: pocketsphinx ----------------------------------------------------------------

def test_stt_keyword_mode_recognises_the_expected_phrases(bus, prov, speech):
    spec = {"call_id": "call_stt1", "stt": {"phrases": ["sales", "support", "billing"],
                                            "partials": True}}
    rc, ev = run(bus, "stt", spec, [
        {"audio_file": speech["sales"]}, {"flush": True}, {"wait": "final"},
        {"audio_file": speech["support"]}, {"flush": True}, {"wait": "final", "count": 2},
        {"close": True}])
    assert rc == 0, ev
    assert ev[0]["engine"] == "pocketsphinx"
    end = check_session_shape(ev)
    assert end["event"] == "done"
    finals = of(ev, "final")
    assert [f["text"] for f in finals] == ["sales", "support"]
    first = wav_seconds(speech["sales"]) * 1000
    assert 0 <= finals[0]["utterance_start_ms"] < finals[0]["utterance_end_ms"] <= first + 20
    assert first - 20 <= finals[1]["utterance_start_ms"] < finals[1]["utterance_end_ms"]
    assert [w["word"] for w in finals[1]["words"]] == ["support"]
    total = wav_seconds(speech["sales"]) + wav_seconds(speech["support"])
    assert abs(end["usage"]["stt_seconds"] - total) < 0.01
    assert of(ev, "partial")  # asked for


def test_stt_keyword_mode_on_8k_audio(bus, prov, speech):
    rc, ev = run(bus, "stt", {"stt": {"phrases": ["sales", "support"], "sample_rate": 8000}},
                 [{"audio_file": speech["sales_8k"]}, {"flush": True}, {"wait": "final"},
                  {"close": True}])
    assert rc == 0, ev
    assert [f["text"] for f in of(ev, "final")] == ["sales"]
    assert not of(ev, "partial")  # not asked for


def test_stt_generic_mode_transcribes_a_sentence(bus, prov, speech):
    rc, ev = run(bus, "stt", {"stt": {}}, [{"audio_file": speech["sentence"]}, {"flush": True},
                                           {"wait": "final"}, {"close": True}])
    assert rc == 0, ev
    text = " ".join(f["text"] for f in of(ev, "final"))
    assert "weather" in text and "today" in text, text
    words = [w for f in of(ev, "final") for w in f["words"]]
    assert all(w["start_ms"] < w["end_ms"] for w in words)
    assert all(a["end_ms"] <= b["start_ms"] for a, b in zip(words, words[1:]))


def test_stt_decoders_are_bounded(bus, bare, speech, tmp_root):
    """prov-b has one decoder: while a session holds it, the next open there is refused."""
    holders = []
    try:
        # hold sessions until one sits on prov-b (opens are spread by the queue group)
        for _ in range(40):
            p = subprocess.Popen([CLIENT, bus.url, "stt", json.dumps({"idle_timeout_ms": 20000}),
                                  json.dumps([{"wait": "never"}]), "", "20000"],
                                 stdout=subprocess.PIPE, text=True)
            first = json.loads(p.stdout.readline())
            holders.append(p)
            if first.get("instance_id") == "prov-b":
                break
        else:
            pytest.fail("no session reached prov-b")
        refused = 0
        for _ in range(40):
            rc, ev = run(bus, "stt", {}, [{"close": True}])
            if rc == 5:
                assert ev[0]["status"] == "unavailable" and "decoders" in ev[0]["message"]
                refused += 1
                break
        assert refused == 1
    finally:
        for p in holders:
            p.kill()
            p.wait()


# ---- the test engines, idle timeout, binding, metrics, drain --------------------------

def test_test_engines_are_deterministic(bus, prov):
    rc, ev = run(bus, "llm", {"engine": "test",
                              "llm": {"messages": [{"role": "user", "content": "hello"}]}})
    assert [e["text"] for e in of(ev, "delta")] == ["You said: ", "hello."]
    rc, ev = run(bus, "llm", {"engine": "test",
                              "llm": {"messages": [{"role": "user", "content": "do tool:lookup"}]}})
    assert [c["tool_call"]["name"] for c in of(ev, "tool_call")] == ["lookup"]
    assert check_session_shape(ev)["finish_reason"] == "tool_calls"
    rc, ev = run(bus, "stt", {"engine": "test", "stt": {"phrases": ["yes"]}},
                 [{"flush": True}, {"wait": "final"}, {"close": True}])
    assert [f["text"] for f in of(ev, "final")] == ["yes"]
    rc, ev = run(bus, "tts", {"engine": "test", "tts": {"sample_rate": 8000}},
                 [{"text": "hello"}, {"wait": "tts_done"}, {"close": True}])
    assert sum(a["audio_bytes"] for a in of(ev, "audio")) == 5 * 20 * 8 * 2


def test_idle_session_ends_with_timeout(bus, prov):
    rc, ev = run(bus, "tts", {"engine": "test", "idle_timeout_ms": 300}, [{"wait": "never"}])
    assert rc == 0, ev
    end = check_session_shape(ev)
    assert end["event"] == "error" and end["error"]["status"] == "timeout"


def test_sessions_are_bound_to_their_instance(bus, prov, bare):
    """Input goes to the instance that took the session, and only it serves the session."""
    seen = {}
    for _ in range(40):
        rc, ev = run(bus, "tts", {"tts": {"sample_rate": 8000}},
                     [{"text": "hi"}, {"wait": "tts_done"}, {"close": True}])
        assert rc == 0 and check_session_shape(ev)["event"] == "done", ev
        inst = ev[0]["instance_id"]
        assert ev[0]["in_subject"].startswith(f"voxi.providers.in.{inst}.")
        seen[inst] = ev[0]["session_id"]
        if len(seen) == 2:
            break
    assert set(seen) == {"prov-a", "prov-b"}
    # the same session's input sent to the other instance's subject is not served there:
    # the session hears nothing and idles out
    rc, ev = run(bus, "tts", {"idle_timeout_ms": 500, "tts": {"sample_rate": 8000}},
                 [{"send_to_other_instance": ["prov-a", "prov-b"]}, {"text": "hi"}])
    assert rc == 0, ev
    assert not of(ev, "audio") and not of(ev, "tts_done")
    assert check_session_shape(ev)["error"]["status"] == "timeout"


def test_metrics_count_usage(bus, prov):
    run(bus, "tts", {"engine": "test"}, [{"text": "abc"}, {"wait": "tts_done"}, {"close": True}])
    status, _, body = http_get(prov.health_port, "/metrics")
    assert status == 200
    values = {}
    for line in body.splitlines():
        if line.startswith("voxi_providers_"):
            name, _, v = line.rpartition(" ")
            values[name] = float(v)
    assert values["voxi_providers_tts_characters_total"] >= 3
    assert values['voxi_providers_sessions_total{engine="test",kind="tts"}'] >= 1
    assert "voxi_providers_sessions_active" in values


def test_sigterm_ends_open_sessions_and_exits(bus, tmp_root):
    n = Nats(tmp_root)
    n.start()
    s = Service("providers", prov_env(n, VOXI_PROVIDERS_STT_DECODERS=0,
                                      VOXI_PROVIDERS_TEST_ENGINES="true",
                                      VOXI_SHUTDOWN_TIMEOUT_MS=1500), tmp_root).start()
    try:
        s.wait_ready(30)
        p = subprocess.Popen([CLIENT, n.url, "tts", json.dumps({"engine": "test"}),
                              json.dumps([{"wait": "never"}]), "", "20000"],
                             stdout=subprocess.PIPE, text=True)
        assert json.loads(p.stdout.readline())["event"] == "open"
        s.proc.send_signal(signal.SIGTERM)
        rest = [json.loads(line) for line in p.stdout.read().splitlines()]
        assert p.wait(20) == 0
        assert rest[-1]["event"] == "error" and rest[-1]["error"]["status"] == "unavailable"
        assert s.proc.wait(20) == 0
    finally:
        s.stop()
        n.stop()


def test_session_count_is_bounded(bus, tmp_root):
    n = Nats(tmp_root)
    n.start()
    s = Service("providers", prov_env(n, VOXI_PROVIDERS_STT_DECODERS=0,
                                      VOXI_PROVIDERS_TEST_ENGINES="true",
                                      VOXI_PROVIDERS_MAX_SESSIONS=1), tmp_root).start()
    try:
        s.wait_ready(30)
        p = subprocess.Popen([CLIENT, n.url, "tts", json.dumps({"engine": "test"}),
                              json.dumps([{"wait": "tts_done"}, {"close": True}]), "", "20000"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        held = json.loads(p.stdout.readline())
        assert held["event"] == "open"
        rc, ev = run(n, "tts", {"engine": "test"}, [{"close": True}])
        assert rc == 5 and ev[0]["status"] == "unavailable" and "full" in ev[0]["message"]
        p.kill()
        p.wait()
        # a client that dies quietly keeps its session until the idle timeout (30 s here)
        rc, ev = run(n, "tts", {"engine": "test"}, [{"close": True}], timeout_ms=1000)
        assert rc == 5
    finally:
        s.stop()
        n.stop()


def test_llm_connect_failure_is_an_error_event(bus, tmp_root):
    from conftest import free_port
    n = Nats(tmp_root)
    n.start()
    closed = free_port()  # nothing listens there
    s = Service("providers", prov_env(
        n, VOXI_PROVIDERS_STT_DECODERS=0,
        VOXI_PROVIDERS_OPENAI_BASE_URL=f"http://127.0.0.1:{closed}/v1"), tmp_root).start()
    try:
        s.wait_ready(30)
        rc, ev = run(n, "llm", {"llm": {"messages": [{"role": "user", "content": "hi"}]}})
        assert rc == 0, ev
        end = check_session_shape(ev)
        assert end["event"] == "error" and end["error"]["status"] == "unavailable", end
        assert "connect" in end["error"]["message"].lower()
    finally:
        assert s.stop() == 0
        n.stop()
