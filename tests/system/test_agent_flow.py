"""The agent runtime with a flow agent, end to end: a number resolved through the registry, a
media worker, voxi-providers' test engines (instant STT that hears the first expected phrase,
a 440 Hz tone as speech), and a SIPp caller streaming generated audio and pressing digits.
Checked on the call's events and on the worker's own stereo recording: the greeting starts
within 100 ms of the answer (also when it comes from the greeting cache), DTMF and speech
choose their branches, no-match and no-input prompts play before the fallback, transcripts
carry turns with latencies, call.ended carries usage."""
import pytest

from agent_util import AgentRig, agent_tmp, dump, menu_agent, pcmu  # noqa: F401 (fixture)
from conftest import Nats, wait_for


@pytest.fixture(scope="module")
def nats(tmp_root):
    """Not the session's: voxi.providers.*.open is a queue group the stack also serves."""
    n = Nats(tmp_root)
    n.start()
    yield n
    n.stop()


@pytest.fixture(scope="module")
def rig(tmp_root, migrated, nats):
    r = AgentRig(tmp_root, migrated)
    yield r
    r.close()


def texts(turns, role):
    return [t["text"] for t in turns if t["role"] == role]


def test_greeting_then_dtmf_chooses_support(rig, agent_tmp):
    agent, number = rig.agent(menu_agent())
    audio = pcmu(agent_tmp, "silence", [("silence", 8)])
    first_usage = None
    for attempt in ("synthesised", "cached"):
        call_id = rig.call(number, audio, digit="2", pause_ms=2500, tmp=agent_tmp)
        ended, turns = rig.transcript(call_id, 2)
        assert ended["data"]["reason"] == "flow_hangup", dump(ended)
        agent_said = " ".join(texts(turns, "agent"))
        assert "Welcome to the test line." in agent_said, dump(turns)
        assert "Support speaking." in agent_said and "Sales" not in agent_said, dump(turns)
        assert agent_said.rstrip().endswith("Goodbye."), dump(turns)
        first = turns[0]
        assert first["role"] == "agent" and first["latency_ms"]["first_rtp"] <= 100, dump(first)
        rec = rig.recording(call_id)
        onset = rec.agent_onset_ms()
        assert onset is not None and onset <= 100, (attempt, onset)
        usage = ended["data"]["usage"]
        assert usage["tts_characters"] >= len("Welcome to the test line.Goodbye."), usage
        if attempt == "cached":
            # the greeting did not go through TTS again
            assert usage["tts_characters"] < first_usage["tts_characters"], (usage, first_usage)
        first_usage = usage


def test_speech_chooses_sales_and_caller_turn_is_transcribed(rig, agent_tmp):
    agent, number = rig.agent(menu_agent())
    audio = pcmu(agent_tmp, "sales", [("silence", 2.5), ("say", "sales please"),
                                      ("silence", 8)])
    call_id = rig.call(number, audio, tmp=agent_tmp)
    ended, turns = rig.transcript(call_id, 3)
    assert ended["data"]["reason"] == "flow_hangup"
    caller = [t for t in turns if t["role"] == "caller"]
    assert [t["text"] for t in caller] == ["sales"], dump(turns)
    assert 0 < caller[0]["start_ms"] < caller[0]["end_ms"], dump(caller)
    after = [t for t in turns if t["role"] == "agent" and t["index"] > caller[0]["index"]]
    assert after and after[0]["text"].startswith("Sales speaking."), dump(turns)
    lat = after[0]["latency_ms"]
    assert lat["caller_speech_end"] <= lat["stt_final"] <= lat["tts_first_audio"] \
        <= lat["first_rtp"], dump(lat)
    assert ended["data"]["usage"]["stt_seconds"] > 0.3, dump(ended)


def test_call_record_transcript_and_usage_are_readable_through_the_calls_api(rig, agent_tmp):
    """The registry's consumer of call events stores what the runtime published: the call
    as voxi.registry.calls.get (GET /v1/calls/{id}) returns it, for the org of the number."""
    agent, number = rig.agent(menu_agent())
    audio = pcmu(agent_tmp, "sales-api", [("silence", 2.5), ("say", "sales please"),
                                          ("silence", 8)])
    call_id = rig.call(number, audio, tmp=agent_tmp)
    ended, turns = rig.transcript(call_id, 3)
    stored = {}

    def complete():
        c = rig.bus.ok("calls.get", rig.org, 200, id=call_id)
        stored.update(c)
        return c["status"] == "ended" and len(c["transcript"]) == len(turns) and c["usage"]

    wait_for(complete, 30, "the call, its transcript and usage stored by the registry")
    assert stored["agent_id"] == agent["id"] and stored["direction"] == "inbound", dump(stored)
    assert stored["end_reason"] == ended["data"]["reason"] == "flow_hangup", dump(stored)
    assert [(t["role"], t["text"]) for t in stored["transcript"]] == \
        [(t["role"], t["text"]) for t in turns], dump(stored["transcript"])
    caller = [t for t in stored["transcript"] if t["role"] == "caller"]
    assert [t["text"] for t in caller] == ["sales"], dump(stored["transcript"])
    answer = [t for t in stored["transcript"] if t["index"] > caller[0]["index"]][0]
    assert answer["latency_ms"]["first_rtp"] >= answer["latency_ms"]["caller_speech_end"], \
        dump(answer)
    usage = ended["data"]["usage"]
    assert stored["usage"]["tts_characters"] == usage["tts_characters"] > 0, dump(stored)
    assert stored["usage"]["stt_seconds"] == pytest.approx(usage["stt_seconds"]), dump(stored)
    assert stored["cost"]["total"] > 0, dump(stored["cost"])
    # another org does not see it
    other = rig.bus.new_org("someone else")
    rig.bus.error("calls.get", other, "not_found", id=call_id)


def test_no_match_then_no_input_then_fallback(rig, agent_tmp):
    # the test recogniser hears the first phrase it is given: the agent's own keyword "banana"
    doc = menu_agent(transcriber={"provider": "test", "keywords": ["banana"]})
    doc["response_engine"]["nodes"][0]["retries"] = 2
    agent, number = rig.agent(doc)
    audio = pcmu(agent_tmp, "banana", [("silence", 2.5), ("say", "banana"),
                                       ("silence", 12)])
    call_id = rig.call(number, audio, tmp=agent_tmp)
    ended, turns = rig.transcript(call_id, 3)
    said = " ".join(texts(turns, "agent"))
    assert texts(turns, "caller") == ["banana"], dump(turns)
    nm = said.find("Sorry, I did not get that.")
    ni = said.find("Are you still there?")
    assert 0 < nm < ni, dump(turns)
    assert said.rstrip().endswith("Goodbye.") and "speaking" not in said, dump(turns)
    assert ended["data"]["reason"] == "flow_hangup"
