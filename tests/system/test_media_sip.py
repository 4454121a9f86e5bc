"""voxi-media with real SIP peers (SIPp): calls with audio, CANCEL, rejections, capacity,
drain, and the RFC 4475 torture messages."""
import os
import signal
import select
import socket
import subprocess
import time
import uuid

import pytest

from conftest import REPO, wait_for
from test_agents import bus  # noqa: F401 (fixture)
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


# unknown numbers (404) and an unreachable registry (503): test_media_routing.py


def test_cancel_after_200_leaves_the_call_up(media_factory, events, media_tmp):
    media = media_factory()
    rc, out = run_sipp(scenario("uac_cancel_after_200", media_tmp), media, media_tmp)
    assert rc == 0, out  # the CANCEL got 200, the BYE got 200
    ended = events.wait_event("call.ended", lambda e: e["data"]["to"].startswith("sip:demo@"))
    assert ended["data"]["reason"] == "remote_hangup"
    assert ended["data"]["duration_ms"] >= 900
    assert not [e for e in events.all() if e["type"] == "call.failed"]
    wait_for(lambda: media.metric("voxi_media_calls_active") == 0, 10, "no active call")


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


# RFC 4475: what the worker answers each torture message with; None = dropped silently (a
# response nobody asked for). Requests libosip2 cannot parse get their response from the
# fallback scan (md_sip_fallback.c): 400, 501 for the unknown method of 3.1.1.2, 416 for the
# novel scheme of 3.3.3, as the README's table asks ("where the RFC names a response").
TORTURE = {
    "wsinv": 481,  # a To tag and no such dialog (RFC 3261 12.2.2)
    "intmeth": 501, "esc01": 404, "escnull": 405, "esc02": 501,
    "lwsdisp": 200, "longreq": 404, "dblreq": 405, "semiuri": 200, "transports": 200,
    "mpart01": 405, "unreason": None, "noreason": None,
    "badinv01": 400, "clerr": 400, "ncl": 400, "scalar02": 400, "scalarlg": None,
    "quotbal": 400, "ltgtruri": 400, "lwsruri": 400, "lwsstart": 400, "trws": 400,
    "escruri": 400, "baddate": 400, "regbadct": 405, "badaspec": 400, "baddn": 400,
    "badvers": 505, "mismatch01": 400, "mismatch02": 400, "bigcode": None,
    "badbranch": 200,
    "insuf": 400, "unkscm": 416, "novelsc": 416, "unksm2": 405, "bext01": 420, "invut": 415,
    "regaut01": 405, "multi01": 400, "mcl01": 400, "bcast": None, "zeromf": 200,
    "cparam01": 405, "cparam02": 405, "regescrt": 405, "sdp01": 406,
    "inv2543": 404,
}


def test_rfc4475_torture_messages(bus, tmp_root, media_tmp, pcmu_audio):
    # on the bus of a real registry: INVITEs to unknown users are resolved there (404)
    media = Media(tmp_root, bus.url).start()
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
            if expect is not None and cid and not any(
                    status_and_call_id(r) == (expect, cid) for r in others):
                # an INVITE waits for its number to be resolved: its answer may come later
                try:
                    final, more = sock.responses_until(cid, timeout=5)
                    others += more + [final]
                except (AssertionError, OSError):
                    pass
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
        code = media.stop()
    assert code == 0, media.log()[-4000:]


def early_invite(sip, rtp_port, call_id):
    sdp = ("v=0\r\no=raw 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           f"m=audio {rtp_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
    return (f"INVITE sip:demo@127.0.0.1:{sip.port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{sip.local_port};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
            f"From: <sip:raw@127.0.0.1>;tag=raw1\r\nTo: <sip:demo@127.0.0.1>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
            f"Contact: <sip:raw@127.0.0.1:{sip.local_port}>\r\nMax-Forwards: 70\r\n"
            f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}").encode()


def test_early_media_183_then_200(media_factory, events, media_tmp, pcmu_audio):
    media = media_factory(VOXI_MEDIA_EARLY_MEDIA="true", VOXI_MEDIA_ANSWER_DELAY_MS=1500)
    # SIPp: 183 with the answer, then the 200 with the same m-line, a normal call after
    rc, out = run_sipp(scenario("uac_early_media", media_tmp, AUDIO=pcmu_audio, PAUSE_MS=1000),
                       media, media_tmp)
    assert rc == 0, out
    ringing = events.wait_event("call.ringing", lambda e: e["data"].get("early_media"))
    events.wait_event("call.ended", lambda e: e["data"]["call_id"] == ringing["data"]["call_id"])
    # raw: the prompt's RTP reaches us between the 183 and the 200
    sip = SipSocket(media.sip_port)
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp.bind(("127.0.0.1", 0))
    call_id = f"early-{uuid.uuid4().hex}"
    try:
        sip.send(early_invite(sip, rtp.getsockname()[1], call_id))
        codes, rtp_before_200 = [], 0
        deadline = time.monotonic() + 10
        while 200 not in codes and time.monotonic() < deadline:
            ready, _, _ = select.select([sip.sock, rtp], [], [], 1)
            if rtp in ready:
                rtp.recv(2048)
                if 183 in codes and 200 not in codes:
                    rtp_before_200 += 1
            if sip.sock in ready:
                code, cid = status_and_call_id(sip.sock.recv(65535))
                if cid == call_id:
                    codes.append(code)
        assert codes[-1] == 200 and 183 in codes and 180 not in codes, codes
        assert codes.index(183) < codes.index(200)
        assert rtp_before_200 >= 25, rtp_before_200  # 1.5 s of ringing: ~75 packets
    finally:
        rtp.close()
        sip.close()
