"""voxi-media beyond the first slice: TCP, re-INVITE hold/unhold and codec change, INVITE
without SDP, DTMF (SIP INFO and RFC 4733), recording, access control (digest, flood),
heartbeats."""
import audioop
import os
import signal
import subprocess
import time
import uuid
import wave

import pytest

from conftest import wait_for
from media_util import (Events, Media, NatsSub, SipSocket, media_tmp, options_ping,  # noqa
                        pcmu_audio, run_sipp, scenario, status_and_call_id)

BYE_BLOCK = """
  <send retrans="500">
    <![CDATA[

      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:caller@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 3 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true"/>
"""


@pytest.fixture
def events(nats):
    ev = Events(nats.url)
    yield ev
    ev.close()


@pytest.fixture
def media_factory(tmp_root, nats):
    started = []

    def make(**env):
        m = Media(tmp_root, nats.url, **env).start()
        started.append(m)
        return m
    yield make
    for m in started:
        code = m.stop()
        assert code == 0, f"voxi-media exited {code}:\n{m.log()[-4000:]}"


@pytest.fixture(scope="module")
def pcma_audio(tmp_root):
    wav = os.path.join(tmp_root, "speech-a.wav")
    raw = os.path.join(tmp_root, "speech.alaw")
    subprocess.run(["espeak-ng", "-w", wav, "Now in A law. Seven, eight, nine."], check=True,
                   capture_output=True)
    subprocess.run(["sox", wav, "-r", "8000", "-c", "1", "-t", "raw", "-e", "a-law", raw],
                   check=True, capture_output=True)
    return raw


def test_call_over_tcp(media_factory, events, media_tmp, pcmu_audio):
    media = media_factory()
    xml = scenario("uac_call", media_tmp, AUDIO=pcmu_audio, PAUSE_MS=2000)
    rc, out = run_sipp(xml, media, media_tmp, transport="t1")
    assert rc == 0, out
    ended = events.wait_event("call.ended")
    assert ended["data"]["reason"] == "remote_hangup"
    assert ended["data"]["rtp"]["packets_in"] > 50
    assert media.metric("voxi_media_sip_messages_total",
                        'direction="in",transport="tcp"') == 3  # INVITE, ACK, BYE


def test_reinvite_hold_unhold_and_codec_change(media_factory, events, media_tmp, pcmu_audio,
                                               pcma_audio):
    media = media_factory()
    xml = scenario("uac_hold", media_tmp, AUDIO=pcmu_audio, AUDIO_A=pcma_audio)
    rc, out = run_sipp(xml, media, media_tmp)
    assert rc == 0, out
    ended = events.wait_event("call.ended")
    assert ended["data"]["codec"] == "PCMA"
    assert ended["data"]["reason"] == "remote_hangup"
    log = media.log()
    assert "on hold" in log and "resumed" in log
    assert "re-INVITE: PCMA" in log


def test_invite_without_sdp(media_factory, events, media_tmp, pcmu_audio):
    media = media_factory()
    rc, out = run_sipp(scenario("uac_nosdp", media_tmp, AUDIO=pcmu_audio), media, media_tmp)
    assert rc == 0, out
    ended = events.wait_event("call.ended")
    assert ended["data"]["codec"] == "PCMU"
    assert ended["data"]["rtp"]["packets_in"] > 50
    assert ended["data"]["rtp"]["packets_out"] > 50


def test_dtmf_sip_info_and_rfc4733(media_factory, events, media_tmp):
    media = media_factory()
    rc, out = run_sipp(scenario("uac_dtmf", media_tmp), media, media_tmp)
    assert rc == 0, out
    events.wait_event("call.ended")
    digits = [(e["data"]["digit"], e["data"]["source"]) for e in events.all()
              if e["type"] == "call.dtmf"]
    assert digits == [("5", "sip_info"), ("#", "sip_info"), ("1", "rfc4733")], digits
    assert media.metric("voxi_media_dtmf_digits_total") == 3


def read_wav(path):
    with wave.open(path, "rb") as w:
        assert w.getnchannels() == 2 and w.getsampwidth() == 2
        rate = w.getframerate()
        data = w.readframes(w.getnframes())
    left = audioop.tomono(data, 2, 1, 0)
    right = audioop.tomono(data, 2, 0, 1)
    return rate, left, right


def frames_in_order(expected, recorded, frame_bytes):
    """How many of expected's non-silent frames appear, byte for byte and in order, in
    recorded (frames may be separated by inserted ones, never altered)."""
    found = total = 0
    pos = 0
    for i in range(0, len(expected) - frame_bytes + 1, frame_bytes):
        frame = expected[i:i + frame_bytes]
        if audioop.max(frame, 2) == 0:
            continue
        total += 1
        j = recorded.find(frame, pos)
        if j >= 0 and j % 2 == 0:
            found += 1
            pos = j + frame_bytes
    return found, total


def test_recording_is_bit_exact_for_g711(media_factory, events, media_tmp, pcmu_audio):
    media = media_factory(VOXI_MEDIA_RECORDINGS_DIR=media_tmp)
    xml = scenario("uac_call", media_tmp, AUDIO=pcmu_audio, PAUSE_MS=6500)
    rc, out = run_sipp(xml, media, media_tmp)
    assert rc == 0, out
    ended = events.wait_event("call.ended")
    path = ended["data"]["recording_path"]
    assert path.startswith(media_tmp) and path.endswith(ended["data"]["call_id"] + ".wav")
    rate, left, right = read_wav(path)
    assert rate == 8000
    with open(pcmu_audio, "rb") as f:
        sent = audioop.ulaw2lin(f.read(), 2)
    found, total = frames_in_order(sent, left, 320)
    assert total > 100 and found == total, (found, total)
    # the right channel carries what we sent: the welcome prompt, so it is not silent
    assert audioop.rms(right[:8000 * 2 * 3], 2) > 100
    # about as long as the call
    seconds = len(left) / 2 / rate
    assert 5 <= seconds <= ended["data"]["duration_ms"] / 1000 + 1


def auth_scenario(tmp, final, bye):
    return scenario("uac_auth", tmp, FINAL=final, RINGING_OPTIONAL="false" if bye else "true",
                    ACK_URI="[next_url]" if bye else "sip:[service]@[remote_ip]:[remote_port]",
                    BYE=BYE_BLOCK if bye else "")


def test_digest_auth_outside_allowlist(media_factory, media_tmp):
    media = media_factory(VOXI_MEDIA_ALLOW_CIDRS="192.0.2.0/24",
                          VOXI_MEDIA_SIP_USERS="alice:s3cret,bob:hunter2")
    rc, out = run_sipp(auth_scenario(media_tmp, 200, True), media, media_tmp,
                       extra=("-au", "alice", "-ap", "s3cret"))
    assert rc == 0, out
    # a wrong password and an unknown user get the same 403
    rc, out = run_sipp(auth_scenario(media_tmp, 403, False), media, media_tmp,
                       extra=("-au", "alice", "-ap", "wrong"))
    assert rc == 0, out
    rc, out = run_sipp(auth_scenario(media_tmp, 403, False), media, media_tmp,
                       extra=("-au", "mallory", "-ap", "s3cret"))
    assert rc == 0, out
    assert media.metric("voxi_media_sip_auth_total", 'outcome="forbidden"') == 2
    assert "hunter2" not in media.log() and "s3cret" not in media.log()


def test_no_credentials_configured_means_403(media_factory, media_tmp):
    media = media_factory(VOXI_MEDIA_ALLOW_CIDRS="192.0.2.0/24")
    xml = scenario("uac_rejected", media_tmp, CODE=403, HEADER_REGEXP="To: .*;tag=")
    rc, out = run_sipp(xml, media, media_tmp)
    assert rc == 0, out


def test_flood_from_outside_the_allowlist_is_throttled(media_factory):
    media = media_factory(VOXI_MEDIA_ALLOW_CIDRS="192.0.2.0/24", VOXI_MEDIA_SIP_FLOOD_RATE=5)
    sock = SipSocket(media.sip_port)
    try:
        n = 60
        for _ in range(n):
            sock.send(options_ping(sock)[0])
        wait_for(lambda: media.metric("voxi_media_sip_dropped_total", 'reason="flood"') > 0, 10,
                 "flood drops")
        answered = 0
        dropped = 0

        def all_accounted():
            nonlocal answered, dropped
            dropped = media.metric("voxi_media_sip_dropped_total", 'reason="flood"')
            try:
                while True:
                    data = sock.recv(0.05)
                    if status_and_call_id(data)[0] == 200:
                        answered += 1
            except OSError:
                pass
            return answered + dropped >= n
        wait_for(all_accounted, 10, "every OPTIONS answered or dropped")
        # a burst of twice the rate gets through, the rest is dropped without a reply
        assert 8 <= answered <= 15, answered
        assert answered + dropped == n
    finally:
        sock.close()


def test_heartbeat(media_factory, nats):
    sub = NatsSub(nats.url, "voxi.media.heartbeat")
    try:
        media = media_factory(VOXI_INSTANCE_ID="media-hb-test")
        address = f"127.0.0.1:{media.sip_port}".encode()
        sub.wait_for(lambda s, p: b"media-hb-test" in p and address in p, 10, "a heartbeat")
        first = len(sub.messages)
        sub.wait_for(lambda s, p: len(sub.messages) >= first + 2, 5, "two more heartbeats")
        media.proc.send_signal(signal.SIGTERM)
        assert media.proc.wait(10) == 0
    finally:
        sub.close()


@pytest.mark.parametrize("formats,rtpmaps,expect,codec", [
    ("9 0", ["a=rtpmap:9 G722/8000", "a=rtpmap:0 PCMU/8000"],
     ["m=audio [0-9]+ RTP/AVP 9", "a=rtpmap:9 G722/8000"], "G722"),
    ("111 0 101", ["a=rtpmap:111 opus/48000/2", "a=fmtp:111 useinbandfec=1",
                   "a=rtpmap:101 telephone-event/8000"],
     ["m=audio [0-9]+ RTP/AVP 111 101", "a=rtpmap:111 opus/48000/2",
      "a=fmtp:111 maxplaybackrate=16000"], "opus"),
    ("8 0", ["a=rtpmap:8 PCMA/8000"], ["m=audio [0-9]+ RTP/AVP 8", "a=rtpmap:8 PCMA/8000"],
     "PCMA"),
])
def test_codec_negotiation(media_factory, events, media_tmp, formats, rtpmaps, expect, codec):
    media = media_factory()
    eregs = "".join(f'      <ereg regexp="{rx}" search_in="body" check_it="true" '
                    f'assign_to="m{i}"/>\n' for i, rx in enumerate(expect))
    xml = scenario("uac_offer", media_tmp, FORMATS=formats,
                   RTPMAPS="".join(f"      {line}\n" for line in rtpmaps), EREGS=eregs,
                   VARS=",".join(f"m{i}" for i in range(len(expect))))
    rc, out = run_sipp(xml, media, media_tmp)
    assert rc == 0, out
    assert events.wait_event("call.ended")["data"]["codec"] == codec


def test_g722_only_worker_refuses_pcmu_offer(media_factory, media_tmp):
    media = media_factory(VOXI_MEDIA_CODECS="G722")
    xml = scenario("uac_rejected", media_tmp, CODE=488, HEADER_REGEXP="Warning: 304")
    rc, out = run_sipp(xml, media, media_tmp)
    assert rc == 0, out
