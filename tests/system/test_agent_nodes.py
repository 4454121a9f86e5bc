"""The rest of the agent runtime, end to end: the flow's webhook node (a tool call through
voxi-webhooks whose JSON result is interpolated into what the agent says next), its
transfer node (REFER to SIPp, call.transferred, the call ends "transferred"), the silence
timeout (a reminder, then a hang-up) and max_duration_s."""
import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agent_util import AgentRig, agent_tmp, dump, pcmu  # noqa: F401 (fixture)
from conftest import Nats
from media_util import scenario, sipp_cmd


@pytest.fixture(scope="module")
def nats(tmp_root):
    n = Nats(tmp_root)
    n.start()
    yield n
    n.stop()


@pytest.fixture(scope="module")
def rig(tmp_root, migrated, nats):
    r = AgentRig(tmp_root, migrated, webhooks=True)
    yield r
    r.close()


@pytest.fixture(scope="module")
def order_api():
    bodies = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            out = json.dumps({"status": "shipped", "eta_days": 2}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], bodies
    server.shutdown()


def base(**over):
    doc = {"name": "nodes test", "voice": {"provider": "test"},
           "transcriber": {"provider": "test"}}
    doc.update(over)
    return doc


def test_webhook_node_result_is_spoken(rig, order_api, agent_tmp):
    port, bodies = order_api
    agent, number = rig.agent(base(response_engine={"type": "flow", "start": "look", "nodes": [
        {"id": "look", "type": "webhook", "url": f"http://127.0.0.1:{port}/orders",
         "result_variable": "order", "next": "tell", "on_error": "oops"},
        {"id": "tell", "type": "say",
         "text": "Your order is {{order_status}}, arriving in {{order_eta_days}} days.",
         "next": "bye"},
        {"id": "oops", "type": "say", "text": "The order service failed.", "next": "bye"},
        {"id": "bye", "type": "hangup", "message": "Goodbye."}]}))
    call_id = rig.call(number, pcmu(agent_tmp, "quiet", [("silence", 8)]), tmp=agent_tmp)
    ended, turns = rig.transcript(call_id, 1)
    said = " ".join(t["text"] for t in turns if t["role"] == "agent")
    assert "Your order is shipped, arriving in 2 days." in said, dump(turns)
    assert "failed" not in said
    assert len(bodies) == 1 and bodies[0]["data"]["call_id"] == call_id, bodies
    assert bodies[0]["data"]["arguments"]["caller_number"] == "+15550001111", bodies


def test_transfer_node_refers_the_caller(rig, agent_tmp):
    target = "sip:sales@127.0.0.1:5999"
    agent, number = rig.agent(base(response_engine={"type": "flow", "start": "xfer", "nodes": [
        {"id": "xfer", "type": "transfer", "to": target,
         "message": "Transferring you to sales."}]}))
    xml = scenario("uac_refer", agent_tmp, TARGET=target,
                   AUDIO=pcmu(agent_tmp, "quiet", [("silence", 3)]))
    out = subprocess.run(sipp_cmd(xml, rig.media, agent_tmp, service=number),
                         capture_output=True, text=True, errors="replace", timeout=90,
                         cwd=agent_tmp)
    assert out.returncode == 0, out.stdout[-2000:] + rig.media.log()[-3000:]
    started = rig.events.wait_event("call.started", lambda e: number in e["data"]["to"])
    call_id = started["data"]["call_id"]
    t = rig.events.wait_event("call.transferred", lambda e: e["data"]["call_id"] == call_id)
    assert t["data"]["target"] == target and t["data"]["outcome"] == "completed", dump(t)
    ended, turns = rig.transcript(call_id, 1)
    assert ended["data"]["reason"] == "transferred"
    assert turns[0]["text"] == "Transferring you to sales." and not turns[0]["interrupted"]


def test_silence_timeout_reminds_then_hangs_up(rig, agent_tmp):
    # an LLM agent waits for the caller: nothing comes (the test LLM is never asked)
    agent, number = rig.agent(base(first_message="Hello, how can I help?",
                                   silence_timeout_s=2,
                                   response_engine={"type": "llm", "provider": "test",
                                                    "model": "test"}))
    call_id = rig.call(number, pcmu(agent_tmp, "quiet", [("silence", 12)]), tmp=agent_tmp)
    ended, turns = rig.transcript(call_id, 2)
    assert ended["data"]["reason"] == "silence_timeout", dump(ended)
    assert [t["text"] for t in turns] == ["Hello, how can I help?", "Are you still there?"]
    # the reminder came about silence_timeout_s after the greeting ended, the hang-up as long
    # after the reminder
    assert 1800 <= turns[1]["start_ms"] - turns[0]["end_ms"] <= 3000, dump(turns)
    assert 1800 <= ended["data"]["duration_ms"] - turns[1]["end_ms"] <= 3000, dump(ended)


def test_max_duration_ends_the_call(rig, agent_tmp):
    agent, number = rig.agent(base(first_message="Hi.", silence_timeout_s=0, max_duration_s=10,
                                   response_engine={"type": "llm", "provider": "test",
                                                    "model": "test"}))
    call_id = rig.call(number, pcmu(agent_tmp, "quiet", [("silence", 14)]), tmp=agent_tmp)
    ended = rig.ended(call_id)
    assert ended["data"]["reason"] == "max_duration", dump(ended)
    assert 10000 <= ended["data"]["duration_ms"] <= 11500, dump(ended)
