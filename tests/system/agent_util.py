"""Helpers for the agent runtime's system tests: a bus of its own (nats-server, voxi-registry
on the session database, voxi-providers with its test engines, optionally voxi-webhooks), a
media worker that records calls, scripted SIPp callers speaking generated audio, and the
analysis of the worker's stereo recording (left: the caller, right: the agent)."""
import json
import os
import re
import secrets
import subprocess
import uuid
import wave

import pytest

from conftest import Nats, Service, base_env
from media_util import Events, Media, SIPP_DIR, sipp_cmd
from test_agents import SECRET_KEY, Bus

FRAME_MS = 10  # analysis window of the recording


def e164():
    return "+1555" + "".join(str(secrets.randbelow(10)) for _ in range(7))


class AgentRig:
    def __init__(self, tmp_root, migrated, webhooks=False, providers_env=None, media_env=None):
        self.nats = Nats(tmp_root)
        self.nats.start()
        self.services = []
        env = base_env(self.nats.url, migrated)
        env["VOXI_REGISTRY_SECRET_KEY"] = SECRET_KEY
        self.registry = self._start("registry", env, tmp_root)
        penv = dict(env)
        penv["VOXI_PROVIDERS_TEST_ENGINES"] = "true"
        penv.update(providers_env or {})
        self.providers = self._start("providers", penv, tmp_root)
        if webhooks:
            self._start("webhooks", env, tmp_root)
        self.bus = Bus(self.nats.url, self.registry, migrated)
        self.rec_dir = os.path.join(tmp_root, "rec-" + uuid.uuid4().hex[:6])
        os.makedirs(self.rec_dir)
        self.media = Media(tmp_root, self.nats.url, VOXI_MEDIA_RECORDINGS_DIR=self.rec_dir,
                           VOXI_MEDIA_ROUTE_CACHE_TTL_MS=0, **(media_env or {})).start()
        self.events = Events(self.nats.url)
        self.org = self.bus.new_org("agent runtime tests")
        self.seen = set()

    def _start(self, name, env, tmp):
        s = Service(name, env, tmp).start()
        self.services.append(s)
        s.wait_ready()
        return s

    def close(self):
        self.events.close()
        codes = {"media": self.media.stop()}
        for s in reversed(self.services):
            codes[s.name] = s.stop()
        self.nats.stop()
        bad = {k: v for k, v in codes.items() if v != 0}
        assert not bad, f"services did not exit 0: {bad}\n{self.media.log()[-3000:]}"

    def agent(self, doc):
        """Creates the agent and a number for it; returns (agent, number)."""
        agent = self.bus.ok("agents.create", self.org, 201, body=doc)
        number = e164()
        self.bus.ok("numbers.create", self.org, 201,
                    body={"number": number, "agent_id": agent["id"]})
        return agent, number

    def call(self, number, audio, digit=None, pause_ms=0, tmp=None, timeout=60):
        """Calls number as a SIPp caller streaming audio (raw PCMU); returns the call id once
        the call ended, after checking SIPp saw the agent hang up."""
        with open(os.path.join(SIPP_DIR, "uac_agent.xml")) as f:
            text = f.read()
        if digit is None:
            text = re.sub(r"<!--INFO-->.*<!--/INFO-->", "", text, flags=re.S)
        text = (text.replace("@AUDIO@", audio).replace("@DIGIT@", digit or "")
                .replace("@PAUSE_MS@", str(pause_ms)))
        xml = os.path.join(tmp, f"uac_agent-{uuid.uuid4().hex[:6]}.xml")
        with open(xml, "w") as f:
            f.write(text)
        out = subprocess.run(sipp_cmd(xml, self.media, tmp, service=number), capture_output=True,
                             text=True, timeout=timeout + 30, cwd=tmp)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:] + \
            self.media.log()[-5000:]
        started = self.events.wait_event(
            "call.started", lambda e: number in e["data"].get("to", "")
            and e["data"]["call_id"] not in self.seen)
        self.seen.add(started["data"]["call_id"])
        return started["data"]["call_id"]

    def ended(self, call_id):
        return self.events.wait_event("call.ended", lambda e: e["data"]["call_id"] == call_id)

    def transcript(self, call_id, min_turns=1):
        ended = self.ended(call_id)
        turns = [e["data"]["turn"] for e in self.events.all()
                 if e.get("type") == "call.transcript" and e["data"]["call_id"] == call_id]
        assert len(turns) >= min_turns, turns
        return ended, sorted(turns, key=lambda t: t["index"])

    def interrupted(self, call_id):
        return [e["data"] for e in self.events.all()
                if e.get("type") == "call.interrupted" and e["data"]["call_id"] == call_id]

    def recording(self, call_id):
        return Recording(os.path.join(self.rec_dir, call_id + ".wav"))


class Recording:
    """Per FRAME_MS window: the peak of each channel."""

    def __init__(self, path):
        with wave.open(path, "rb") as w:
            assert w.getnchannels() == 2 and w.getsampwidth() == 2
            self.rate = w.getframerate()
            data = w.readframes(w.getnframes())
        import array
        pcm = array.array("h", data)
        per = self.rate * FRAME_MS // 1000
        self.caller, self.agent = [], []
        for i in range(0, len(pcm) // 2 - per + 1, per):
            block = pcm[2 * i: 2 * (i + per)]
            self.caller.append(max(abs(x) for x in block[0::2]))
            self.agent.append(max(abs(x) for x in block[1::2]))

    @staticmethod
    def _first(levels, start_ms=0, threshold=1000):
        for i in range(start_ms // FRAME_MS, len(levels)):
            if levels[i] >= threshold:
                return i * FRAME_MS
        return None

    def agent_onset_ms(self, start_ms=0):
        return self._first(self.agent, start_ms)

    def caller_onset_ms(self, start_ms=0):
        return self._first(self.caller, start_ms)

    def agent_silent_from_ms(self, start_ms, hold_ms=300, threshold=1000):
        """The first time after start_ms the agent stays quiet for hold_ms."""
        need = hold_ms // FRAME_MS
        for i in range(start_ms // FRAME_MS, len(self.agent) - need):
            if all(x < threshold for x in self.agent[i:i + need]):
                return i * FRAME_MS
        return None

    def agent_active_ms(self, start_ms, end_ms, threshold=1000):
        return sum(FRAME_MS for x in self.agent[start_ms // FRAME_MS:end_ms // FRAME_MS]
                   if x >= threshold)


def pcmu(tmp, name, parts):
    """Builds raw PCMU at 8 kHz from parts: ("silence", s), ("say", text), ("noise", s)."""
    pieces = []
    for i, (kind, arg) in enumerate(parts):
        wav = os.path.join(tmp, f"{name}-{i}.wav")
        if kind == "silence":
            subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", wav, "trim", "0",
                            str(arg)], check=True, capture_output=True)
        elif kind == "noise":
            subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", wav, "synth",
                            str(arg), "pinknoise", "vol", "0.6"], check=True, capture_output=True)
        else:
            raw = wav + ".22k.wav"
            subprocess.run(["espeak-ng", "-w", raw, arg], check=True, capture_output=True)
            subprocess.run(["sox", raw, "-r", "8000", "-c", "1", "-b", "16", wav], check=True,
                           capture_output=True)
        pieces.append(wav)
    out = os.path.join(tmp, name + ".ulaw")
    subprocess.run(["sox", *pieces, "-r", "8000", "-c", "1", "-t", "raw", "-e", "mu-law", out],
                   check=True, capture_output=True)
    return out


def speech_duration_ms(tmp, text):
    wav = os.path.join(tmp, "dur-" + uuid.uuid4().hex[:6] + ".wav")
    subprocess.run(["espeak-ng", "-w", wav, text], check=True, capture_output=True)
    with wave.open(wav) as w:
        return 1000 * w.getnframes() // w.getframerate()


@pytest.fixture
def agent_tmp(tmp_path):
    return str(tmp_path)


def menu_agent(**over):
    doc = {
        "name": "runtime test desk",
        "first_message": "Welcome to the test line.",
        "voice": {"provider": "test"},
        "transcriber": {"provider": "test"},
        "response_engine": {"type": "flow", "start": "menu", "nodes": [
            {"id": "menu", "type": "menu", "prompt": "Say sales or support, or press 1 or 2.",
             "choices": [{"keywords": ["sales"], "digit": "1", "next": "sales"},
                         {"keywords": ["support"], "digit": "2", "next": "support"}],
             "retries": 1, "timeout_ms": 1500, "no_input_prompt": "Are you still there?",
             "no_match_prompt": "Sorry, I did not get that.", "fallback": "bye"},
            {"id": "sales", "type": "say", "text": "Sales speaking.", "next": "bye"},
            {"id": "support", "type": "say", "text": "Support speaking.", "next": "bye"},
            {"id": "bye", "type": "hangup", "message": "Goodbye."}]},
    }
    doc.update(over)
    return doc


def dump(obj):
    return json.dumps(obj, indent=1)
