"""The LLM response engine end to end: caller speech -> STT (test engine) -> voxi-providers'
OpenAI engine against the local OpenAI-compatible server (tests/tools/fake_openai.py) -> a
tool call executed through voxi-webhooks against a local HTTP tool -> the tool's result fed
back -> the answer spoken sentence by sentence (test TTS) -> end_call_phrases hang up. The
conversation context, the transcript with latencies and the usage are checked."""
import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.request import urlopen

import pytest

from agent_util import AgentRig, agent_tmp, dump, pcmu  # noqa: F401 (fixture)
from conftest import REPO, Nats


@pytest.fixture(scope="module")
def nats(tmp_root):
    n = Nats(tmp_root)
    n.start()
    yield n
    n.stop()


@pytest.fixture(scope="module")
def fake_openai():
    proc = subprocess.Popen(["/usr/bin/python3", os.path.join(REPO, "tests", "tools",
                                                              "fake_openai.py"), "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    port = int(proc.stdout.readline())
    yield port
    proc.terminate()
    proc.wait(10)


class Tool:
    """A customer's tool endpoint: answers every POST with a forecast, keeps the bodies."""

    def __init__(self):
        self.bodies = []
        tool = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                tool.bodies.append(json.loads(body or b"{}"))
                out = json.dumps({"forecast": "sunny", "celsius": 21}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture(scope="module")
def tool():
    t = Tool()
    yield t
    t.close()


@pytest.fixture(scope="module")
def rig(tmp_root, migrated, nats, fake_openai):
    r = AgentRig(tmp_root, migrated, webhooks=True, providers_env={
        "VOXI_PROVIDERS_OPENAI_BASE_URL": f"http://127.0.0.1:{fake_openai}/v1",
        "VOXI_PROVIDERS_OPENAI_API_KEY": "sk-test",
        "VOXI_PROVIDERS_SSRF_ALLOWLIST": "127.0.0.1/32"})
    yield r
    r.close()


def test_llm_turn_with_a_tool_call(rig, tool, fake_openai, agent_tmp):
    heard = "what is the weather tool:get_weather"
    agent, number = rig.agent({
        "name": "llm test",
        "first_message": "Hi, ask me anything.",
        "voice": {"provider": "test"},
        "transcriber": {"provider": "test", "keywords": [heard]},
        "end_call_phrases": ["sunny"],
        "response_engine": {
            "type": "llm", "provider": "openai", "model": "gpt-4o-mini",
            "system_prompt": "You are a terse weather assistant.",
            "tools": [{"name": "get_weather", "description": "The weather in a city",
                       "url": f"http://127.0.0.1:{tool.port}/weather",
                       "parameters": {"type": "object",
                                      "properties": {"city": {"type": "string"}}}}]}})
    audio = pcmu(agent_tmp, "weather", [("silence", 1.5), ("say", "what is the weather"),
                                        ("silence", 10)])
    call_id = rig.call(number, audio, tmp=agent_tmp)
    ended, turns = rig.transcript(call_id, 3)
    assert ended["data"]["reason"] == "end_call_phrase", dump(ended)
    assert [t["text"] for t in turns if t["role"] == "caller"] == [heard], dump(turns)
    answer = [t for t in turns if t["role"] == "agent" and "tool said" in t["text"]]
    assert answer and "sunny" in answer[0]["text"], dump(turns)
    lat = answer[0]["latency_ms"]
    assert lat["caller_speech_end"] <= lat["stt_final"] <= lat["llm_first_token"] \
        <= lat["tts_first_audio"] <= lat["first_rtp"], dump(lat)
    # the tool got the model's arguments in the webhooks service's envelope
    assert [(b["type"], b["data"]["function"], b["data"]["arguments"], b["data"]["call_id"])
            for b in tool.bodies] == [("function.call", "get_weather", {"city": "Paris"},
                                       call_id)], tool.bodies
    with urlopen(f"http://127.0.0.1:{fake_openai}/_requests") as r:
        reqs = [q["body"] for q in json.load(r) if q["path"].endswith("/chat/completions")]
    assert len(reqs) == 2, dump(reqs)
    first, second = reqs
    assert first["messages"][0] == {"role": "system",
                                    "content": "You are a terse weather assistant."}
    assert first["messages"][-1]["content"] == heard
    assert first["tools"][0]["function"]["name"] == "get_weather"
    roles = [m["role"] for m in second["messages"]]
    assert roles[-3:] == ["user", "assistant", "tool"], dump(second["messages"])
    assert "sunny" in second["messages"][-1]["content"]
    usage = ended["data"]["usage"]
    assert usage["llm_prompt_tokens"] > 0 and usage["llm_completion_tokens"] > 0, usage
    assert usage["stt_seconds"] > 0.3 and usage["tts_characters"] > 20, usage
