"""voxi-media with real SIP peers (SIPp): calls with audio, CANCEL, rejections, capacity,
drain, and the RFC 4475 torture messages."""
import os
import signal
import subprocess
import uuid

import pytest

from conftest import REPO, wait_for
from media_util import (Events, Media, SipSocket, media_tmp, options_ping, pcmu_audio,  # noqa
                        run_sipp, scenario, sipp_cmd, status_and_call_id)

TORTURE_DIR = os.path.join(REPO, "tests", "fuzz", "corpus", "sip")


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


def test_call_with_audio_both_ways(media_factory, events, media_tmp, pcmu_audio):
    media = media_factory()
    xml = scenario("uac_call", media_tmp, AUDIO=pcmu_audio, PAUSE_MS=4000)
    rc, out = run_sipp(xml, media, media_tmp)
    assert rc == 0, out
    started = events.wait_event("call.started", lambda e: e["data"]["to"].startswith("sip:demo@"))
    cid = started["data"]["call_id"]
    assert cid.startswith("call_")
    assert started["org_id"] == "org_default"
    for t in ("call.ringing", "call.answered"):
        events.wait_event(t, lambda e: e["data"]["call_id"] == cid)
    ended = events.wait_event("call.ended", lambda e: e["data"]["call_id"] == cid)
    d = ended["data"]
    assert d["reason"] == "remote_hangup"
    assert d["codec"] == "PCMU"
    assert 3500 <= d["duration_ms"] <= 10000, d
    # the caller streamed about 4 s of PCMU (50 packets a second) and we sent our prompt back
    assert d["rtp"]["packets_in"] >= 150, d
    assert d["rtp"]["packets_out"] >= 150, d
    assert d["rtp"]["dropped"] == 0, d
    wait_for(lambda: media.metric("voxi_media_calls_active") == 0, 10, "no active call")
    assert media.metric("voxi_media_calls_total", 'direction="inbound"') == 1


def test_cancel_before_answer(media_factory, events, media_tmp):
    media = media_factory(VOXI_MEDIA_ANSWER_DELAY_MS=20000)
    rc, out = run_sipp(scenario("uac_cancel", media_tmp), media, media_tmp)
    assert rc == 0, out
    failed = events.wait_event("call.failed", lambda e: e["data"]["reason"] == "cancelled")
    assert failed["data"]["sip_code"] == 487
    assert not [e for e in events.all() if e["type"] == "call.answered"]


def test_unknown_number_gets_404(media_factory, media_tmp):
    media = media_factory()
    xml = scenario("uac_rejected", media_tmp, CODE=404, HEADER_REGEXP="To: .*;tag=")
    rc, out = run_sipp(xml, media, media_tmp, service="nobody-here")
    assert rc == 0, out


def test_options_keepalive(media_factory, media_tmp):
    media = media_factory()
    rc, out = run_sipp(scenario("uac_options", media_tmp), media, media_tmp, calls=3, limit=3)
    assert rc == 0, out


def test_503_with_retry_after_when_full(media_factory, media_tmp, pcmu_audio):
    media = media_factory(VOXI_MEDIA_MAX_CALLS=2)
    held = subprocess.Popen(sipp_cmd(scenario("uac_call", media_tmp, AUDIO=pcmu_audio,
                                              PAUSE_MS=6000), media, media_tmp, calls=2, limit=2),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=media_tmp)
    try:
        wait_for(lambda: media.metric("voxi_media_calls_active") == 2, 20, "two calls up")
        xml = scenario("uac_rejected", media_tmp, CODE=503, HEADER_REGEXP="Retry-After: [0-9]+")
        rc, out = run_sipp(xml, media, media_tmp)
        assert rc == 0, out
        assert media.metric("voxi_media_calls_refused_total", 'reason="full"') == 1
        assert held.wait(60) == 0, held.stdout.read().decode()
    finally:
        if held.poll() is None:
            held.kill()
            held.wait()


def test_50_concurrent_calls(media_factory, events, media_tmp, pcmu_audio):
    media = media_factory()
    xml = scenario("uac_call", media_tmp, AUDIO=pcmu_audio, PAUSE_MS=8000)
    run = subprocess.Popen(sipp_cmd(xml, media, media_tmp, calls=50, limit=50, rate=100),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=media_tmp)
    try:
        wait_for(lambda: media.metric("voxi_media_calls_active") == 50, 30, "50 calls at once")
        assert run.wait(90) == 0, run.stdout.read().decode()
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    wait_for(lambda: len([e for e in events.all() if e["type"] == "call.ended"]) == 50, 20,
             "50 call.ended events")
    ended = [e for e in events.all() if e["type"] == "call.ended"]
    assert all(e["data"]["rtp"]["packets_in"] > 100 for e in ended)
    assert all(e["data"]["rtp"]["packets_out"] > 100 for e in ended)
    assert len({e["data"]["call_id"] for e in ended}) == 50


def test_sigterm_drains_calls_then_exits(media_factory, events, media_tmp, pcmu_audio):
    media = media_factory(VOXI_MEDIA_DRAIN_TIMEOUT_MS=20000)
    xml = scenario("uac_call", media_tmp, AUDIO=pcmu_audio, PAUSE_MS=4000)
    call = subprocess.Popen(sipp_cmd(xml, media, media_tmp), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, cwd=media_tmp)
    try:
        wait_for(lambda: media.metric("voxi_media_calls_active") == 1, 20, "the call is up")
        media.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: "draining" in media.log(), 10, "draining")
        # new calls are refused while the current one goes on
        rej = scenario("uac_rejected", media_tmp, CODE=503, HEADER_REGEXP="Retry-After: [0-9]+")
        rc, out = run_sipp(rej, media, media_tmp)
        assert rc == 0, out
        assert media.proc.poll() is None
        assert call.wait(60) == 0, call.stdout.read().decode()
        assert media.proc.wait(15) == 0, media.log()[-3000:]
    finally:
        if call.poll() is None:
            call.kill()
            call.wait()
    events.wait_event("call.ended", lambda e: e["data"]["reason"] == "remote_hangup")


def test_drain_timeout_hangs_up(media_factory, events, media_tmp, pcmu_audio):
    media = media_factory(VOXI_MEDIA_DRAIN_TIMEOUT_MS=1000)
    xml = scenario("uac_call", media_tmp, AUDIO=pcmu_audio, PAUSE_MS=60000)
    call = subprocess.Popen(sipp_cmd(xml, media, media_tmp), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, cwd=media_tmp)
    try:
        wait_for(lambda: media.metric("voxi_media_calls_active") == 1, 20, "the call is up")
        media.proc.send_signal(signal.SIGTERM)
        assert media.proc.wait(15) == 0, media.log()[-3000:]
    finally:
        call.kill()
        call.wait()
    ended = events.wait_event("call.ended", lambda e: e["data"]["reason"] == "shutdown")
    assert ended["data"]["duration_ms"] < 20000


def raw_request(method, call_id, port, extra="", body="", ruri="sip:demo@127.0.0.1",
                to_tag=None):
    to = "<sip:demo@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    return (f"{method} {ruri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
            f"From: <sip:raw@127.0.0.1>;tag={uuid.uuid4().hex[:8]}\r\nTo: {to}\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 {method}\r\n{extra}"
            f"Content-Length: {len(body)}\r\n\r\n{body}").encode()


SDP_G729_ONLY = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                 "m=audio 40000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n")


@pytest.mark.parametrize("method,extra,body,ruri,to_tag,code,header", [
    ("BYE", "Max-Forwards: 70\r\n", "", "sip:demo@127.0.0.1", "nosuchdialog", 481, None),
    ("INVITE", "Max-Forwards: 0\r\nContact: <sip:raw@127.0.0.1>\r\n", "", "sip:demo@127.0.0.1",
     None, 483, None),
    ("INVITE", "Max-Forwards: 70\r\nRequire: 100rel\r\n", "", "sip:demo@127.0.0.1", None, 420,
     "Unsupported: 100rel"),
    ("INVITE", "Max-Forwards: 70\r\nContact: <sip:raw@127.0.0.1>\r\n"
     "Content-Type: application/sdp\r\n", SDP_G729_ONLY, "sip:demo@127.0.0.1", None, 488, None),
    ("SUBSCRIBE", "Max-Forwards: 70\r\n", "", "sip:demo@127.0.0.1", None, 405, "Allow: INVITE"),
    ("FOO", "Max-Forwards: 70\r\n", "", "sip:demo@127.0.0.1", None, 501, None),
    ("OPTIONS", "Max-Forwards: 0\r\n", "", "sip:demo@127.0.0.1", None, 200, "Allow: INVITE"),
    ("INVITE", "Max-Forwards: 70\r\nContact: <sip:raw@127.0.0.1>\r\n"
     "Content-Type: application/sdp\r\n", "v=0\r\nnonsense\r\n", "sip:demo@127.0.0.1", None, 400,
     None),
    ("CANCEL", "Max-Forwards: 70\r\n", "", "sip:demo@127.0.0.1", None, 481, None),
])
def test_error_responses(media_factory, method, extra, body, ruri, to_tag, code, header):
    media = media_factory()
    sock = SipSocket(media.sip_port)
    try:
        cid = f"raw-{uuid.uuid4().hex}"
        sock.send(raw_request(method, cid, sock.local_port, extra, body, ruri, to_tag))
        resp, _ = sock.responses_until(cid)
        got, _ = status_and_call_id(resp)
        assert got == code, resp.decode(errors="replace")
        if header:
            assert header in resp.decode(), resp.decode()
    finally:
        sock.close()


# RFC 4475: what the worker answers each torture message with; None = dropped silently
# (unparseable for libosip2, or a response nobody asked for). See its README.
TORTURE = {
    "wsinv": 481,  # a To tag and no such dialog (RFC 3261 12.2.2)
    "intmeth": None, "esc01": 404, "escnull": 405, "esc02": 501,
    "lwsdisp": 200, "longreq": 404, "dblreq": 405, "semiuri": 200, "transports": 200,
    "mpart01": 405, "unreason": None, "noreason": None,
    "badinv01": None, "clerr": None, "ncl": 400, "scalar02": 400, "scalarlg": None,
    "quotbal": None, "ltgtruri": None, "lwsruri": None, "lwsstart": None, "trws": None,
    "escruri": 400, "baddate": 400, "regbadct": 405, "badaspec": None, "baddn": None,
    "badvers": 505, "mismatch01": 400, "mismatch02": 400, "bigcode": None,
    "badbranch": 200,
    "insuf": 400, "unkscm": 416, "novelsc": None, "unksm2": 405, "bext01": 420, "invut": 415,
    "regaut01": 405, "multi01": None, "mcl01": None, "bcast": None, "zeromf": 200,
    "cparam01": 405, "cparam02": 405, "regescrt": 405, "sdp01": 406,
    "inv2543": 404,
}


def test_rfc4475_torture_messages(media_factory, media_tmp, pcmu_audio):
    media = media_factory()
    sock = SipSocket(media.sip_port)
    seen_ids = set()
    problems = []
    try:
        for name, expect in sorted(TORTURE.items()):
            with open(os.path.join(TORTURE_DIR, f"rfc4475_{name}.dat"), "rb") as f:
                data = f.read()
            _, cid = status_and_call_id(data)
            sock.send(data)
            # an OPTIONS ping after it: messages are handled in order, so anything the
            # torture message caused arrives before the ping's 200
            ping, ping_id = options_ping(sock)
            sock.send(ping)
            _, others = sock.responses_until(ping_id)
            finals = {}
            for r in others:
                code, rid = status_and_call_id(r)
                if code >= 200 and rid not in seen_ids:
                    finals.setdefault(rid, code)
            if cid:
                seen_ids.add(cid)
            got = finals.get(cid) if cid in finals else (next(iter(finals.values()))
                                                        if finals else None)
            if got != expect:
                problems.append(f"{name}: expected {expect}, got {got}")
        assert not problems, "\n".join(problems)
        assert media.proc.poll() is None
        # and it still serves calls
        xml = scenario("uac_call", media_tmp, AUDIO=pcmu_audio, PAUSE_MS=1000)
        rc, out = run_sipp(xml, media, media_tmp)
        assert rc == 0, out
    finally:
        sock.close()
