"""Barge-in, end to end, measured on the worker's own recording (left: what the caller sent,
right: what the agent sent): the caller talking over a long prompt stops the agent's audio
within min_speech_ms + 60 ms of the speech onset (plus one 20 ms frame of analysis slack),
call.interrupted is published and the agent turn is marked interrupted; a short noise burst
and an "uh-huh" (an ignore phrase) do not interrupt: the prompt plays to its end."""
import pytest

from agent_util import AgentRig, agent_tmp, dump, pcmu  # noqa: F401 (fixture)
from conftest import Nats

LONG = ("This is a long announcement that goes on and on so that the caller has plenty of "
        "time to talk over it, and it keeps going for a while longer still.")
MIN_SPEECH_MS = 200


@pytest.fixture(scope="module")
def nats(tmp_root):
    n = Nats(tmp_root)
    n.start()
    yield n
    n.stop()


@pytest.fixture(scope="module")
def rig(tmp_root, migrated, nats):
    r = AgentRig(tmp_root, migrated)
    yield r
    r.close()


def announcement(**interruptions):
    return {
        "name": "barge-in test",
        "voice": {"provider": "test"},
        "transcriber": {"provider": "test"},
        "interruptions": {"min_speech_ms": MIN_SPEECH_MS, **interruptions},
        "response_engine": {"type": "flow", "start": "long", "nodes": [
            {"id": "long", "type": "say", "text": LONG, "next": "bye"},
            {"id": "bye", "type": "hangup", "message": "Goodbye."}]},
    }


def test_caller_speech_stops_the_agent_within_budget(rig, agent_tmp):
    agent, number = rig.agent(announcement())
    audio = pcmu(agent_tmp, "talkover", [("silence", 1.5), ("say", "wait, stop right there"),
                                         ("silence", 6)])
    call_id = rig.call(number, audio, tmp=agent_tmp)
    ended, turns = rig.transcript(call_id, 2)
    intr = rig.interrupted(call_id)
    assert len(intr) == 1, dump(intr)
    long_turn = [t for t in turns if t["role"] == "agent" and t["text"] == LONG]
    assert long_turn and long_turn[0]["interrupted"], dump(turns)
    assert intr[0]["turn_index"] == long_turn[0]["index"]
    rec = rig.recording(call_id)
    agent_on = rec.agent_onset_ms()
    assert agent_on is not None and agent_on <= 100
    onset = rec.caller_onset_ms(1000)
    stop = rec.agent_silent_from_ms(onset)
    reaction = stop - onset
    print(f"barge-in reaction on the recording: {reaction} ms (onset {onset} ms)")
    assert reaction <= MIN_SPEECH_MS + 60 + 20, (onset, stop)
    # and it really stopped: no more of the long prompt (the tone) until the goodbye
    assert rec.agent_active_ms(stop, stop + 1500) <= 200
    assert " ".join(t["text"] for t in turns if t["role"] == "agent").endswith("Goodbye.")


def test_noise_burst_and_backchannel_do_not_interrupt(rig, agent_tmp):
    agent, number = rig.agent(announcement(ignore_phrases=["uh-huh", "okay"]))
    audio = pcmu(agent_tmp, "backchannel", [("silence", 1.0), ("noise", 0.1), ("silence", 1.2),
                                            ("say", "uh-huh"), ("silence", 6)])
    call_id = rig.call(number, audio, tmp=agent_tmp)
    ended, turns = rig.transcript(call_id, 2)
    assert rig.interrupted(call_id) == [], dump(turns)
    long_turn = [t for t in turns if t["role"] == "agent" and t["text"].startswith(LONG)]
    assert long_turn and not long_turn[0]["interrupted"], dump(turns)
    rec = rig.recording(call_id)
    # the burst left the agent's audio alone
    burst = rec.caller_onset_ms(900)
    assert burst is not None and burst < 1300
    assert rec.agent_active_ms(burst, burst + 400) >= 380
    # the uh-huh may hold the audio for a moment, then it resumes and the prompt plays out:
    # the tone lasts 20 ms per character
    uh = rec.caller_onset_ms(burst + 600)
    assert uh is not None
    total = rec.agent_active_ms(0, len(rec.agent) * 10)
    print(f"uh-huh at {uh} ms; agent audio {total} ms in all")
    # all of the prompt (and the goodbye) was heard: nothing was dropped
    assert total >= 20 * (len(LONG) + len("Goodbye.")) - 100, total
    last = max(i for i, level in enumerate(rec.agent) if level >= 1000) * 10
    assert last >= uh + 600, (uh, last)  # it spoke on after the uh-huh

