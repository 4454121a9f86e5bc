"""voxi-media calling out and controlling calls over NATS: voxi.media.dial through a trunk
that challenges with digest, CANCEL when nobody answers, call control (hangup, transfer with
REFER), and 487/NOTIFY handling with SIPp as the peer."""
import json
import os
import subprocess

import pytest

from conftest import TOOLS, Nats, wait_for
from media_util import (Events, Media, free_rtp_range, free_udp_tcp_port, media_tmp,  # noqa
                        pcmu_audio, run_sipp, scenario, sipp_cmd)


@pytest.fixture(scope="module")
def nats(tmp_root):
    """A NATS server of this module's own: voxi.media.dial is a queue group, and the session
    stack's media worker must not take the dials these tests send to their own worker."""
    n = Nats(tmp_root)
    n.start()
    yield n
    n.stop()


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


def media_ctl(nats, *args):
    out = subprocess.run([os.path.join(TOOLS, "voxi_media_ctl"), nats.url, *args],
                         capture_output=True, text=True, timeout=30)
    return out.returncode, (json.loads(out.stdout) if out.returncode == 0 else None), out.stderr


class SippUas:
    """SIPp as the far end of an outbound call, listening before we dial."""

    def __init__(self, xml, tmp):
        self.port = free_udp_tcp_port()
        self.proc = subprocess.Popen(
            ["sipp", "-sf", xml, "-i", "127.0.0.1", "-p", str(self.port), "-mp",
             str(free_rtp_range(8)[0]), "-m", "1", "-timeout", "60s", "-timeout_error",
             "-nostdin", "-trace_err", "-error_file", os.path.join(tmp, "uas-err.log")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp)

    def wait(self, timeout=60):
        try:
            return self.proc.wait(timeout), self.proc.stdout.read().decode(errors="replace")
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None, self.proc.stdout.read().decode(errors="replace")


def test_outbound_call_through_trunk_with_digest(media_factory, events, nats, media_tmp,
                                                 pcmu_audio):
    uas = SippUas(scenario("uas_trunk_auth", media_tmp, USER="voxi", PASS="trunkpass",
                           AUDIO=pcmu_audio), media_tmp)
    media_factory(VOXI_MEDIA_TRUNK_URI=f"sip:127.0.0.1:{uas.port}", VOXI_MEDIA_TRUNK_USER="voxi",
                  VOXI_MEDIA_TRUNK_PASSWORD="trunkpass")
    code, reply, err = media_ctl(nats, "dial", "+15551234567", "agent7")
    assert code == 0, err
    call_id = reply["call_id"]
    assert call_id.startswith("call_") and reply["worker_id"].startswith("media-")
    rc, out = uas.wait()
    assert rc == 0, out
    started = events.wait_event("call.started", lambda e: e["data"]["call_id"] == call_id)
    assert started["data"]["direction"] == "outbound"
    assert started["data"]["to"] == f"sip:+15551234567@127.0.0.1:{uas.port}"
    assert started["data"]["from"].startswith("sip:agent7@")
    events.wait_event("call.ringing", lambda e: e["data"]["call_id"] == call_id)
    events.wait_event("call.answered", lambda e: e["data"]["call_id"] == call_id)
    ended = events.wait_event("call.ended", lambda e: e["data"]["call_id"] == call_id)
    assert ended["data"]["reason"] == "remote_hangup"
    assert ended["data"]["rtp"]["packets_in"] > 50   # the trunk's audio reached us
    assert ended["data"]["rtp"]["packets_out"] > 50  # and our prompt reached it


def test_outbound_wrong_password_fails(media_factory, events, nats, media_tmp, pcmu_audio):
    uas = SippUas(scenario("uas_trunk_auth", media_tmp, USER="voxi", PASS="right",
                           AUDIO=pcmu_audio), media_tmp)
    media_factory(VOXI_MEDIA_TRUNK_URI=f"sip:127.0.0.1:{uas.port}", VOXI_MEDIA_TRUNK_USER="voxi",
                  VOXI_MEDIA_TRUNK_PASSWORD="wrong")
    code, reply, err = media_ctl(nats, "dial", "200")
    assert code == 0, err
    failed = events.wait_event("call.failed", lambda e: e["data"]["call_id"] == reply["call_id"])
    assert failed["data"]["sip_code"] == 403
    assert failed["data"]["reason"] == "unauthorized"
    uas.wait()


def test_outbound_no_answer_is_cancelled(media_factory, events, nats, media_tmp):
    uas = SippUas(scenario("uas_ring_forever", media_tmp), media_tmp)
    media_factory()
    code, reply, err = media_ctl(nats, "dial", f"sip:callee@127.0.0.1:{uas.port}", "", "1500")
    assert code == 0, err
    rc, out = uas.wait()
    assert rc == 0, out  # it saw our CANCEL and our ACK of its 487
    failed = events.wait_event("call.failed", lambda e: e["data"]["call_id"] == reply["call_id"])
    assert failed["data"]["reason"] == "no_answer"
    events.wait_event("call.ringing", lambda e: e["data"]["call_id"] == reply["call_id"])


def test_outbound_answer_crossing_our_cancel_is_acked_and_byed(media_factory, events, nats,
                                                                media_tmp):
    uas = SippUas(scenario("uas_answer_late", media_tmp), media_tmp)
    media = media_factory()
    code, reply, err = media_ctl(nats, "dial", f"sip:callee@127.0.0.1:{uas.port}", "", "1500")
    assert code == 0, err
    rc, out = uas.wait()
    assert rc == 0, out  # it got our ACK for its late 200, then our BYE
    failed = events.wait_event("call.failed", lambda e: e["data"]["call_id"] == reply["call_id"])
    assert failed["data"]["reason"] == "no_answer"
    assert not [e for e in events.all() if e["type"] == "call.answered"]
    assert "answered after our CANCEL: ACK and BYE" in media.log()


def test_dial_carries_org_agent_and_number(media_factory, events, nats, media_tmp):
    uas = SippUas(scenario("uas_ring_forever", media_tmp), media_tmp)
    media_factory()
    code, reply, err = media_ctl(nats, "dial", f"sip:callee@127.0.0.1:{uas.port}", "", "1500",
                                 "call_from_registry_1", "org_dialtest", "agt_dialtest",
                                 "pn_dialtest", "", "customer=Ann")
    assert code == 0, err
    assert reply["call_id"] == "call_from_registry_1"  # the registry's id is used
    rc, out = uas.wait()
    assert rc == 0, out
    for t in ("call.started", "call.ringing", "call.failed"):
        e = events.wait_event(t, lambda e: e["data"]["call_id"] == "call_from_registry_1")
        assert e["org_id"] == "org_dialtest"  # the dial's org, not the default one
        d = e["data"]
        assert (d["agent_id"], d["number_id"]) == ("agt_dialtest", "pn_dialtest")
        assert d["worker_id"] == reply["worker_id"]
    # an id that cannot be a subject token or a file name is refused
    code, _, err = media_ctl(nats, "dial", "sip:x@127.0.0.1:1", "", "0", "call.bad*id")
    assert code == 5 and "invalid" in err


def test_dial_refused_without_route_and_when_draining(media_factory, nats):
    media = media_factory()
    code, _, err = media_ctl(nats, "dial", "15551234567")  # a number but no trunk
    assert code == 5 and "invalid" in err
    code, _, err = media_ctl(nats, "dial", "sip:x@127.0.0.1:1", "", "0", "call_fixed_id_1")
    assert code == 0, err
    media.svc.proc.send_signal(15)
    wait_for(lambda: "draining" in media.log(), 10, "draining")
    code, _, err = media_ctl(nats, "dial", "sip:x@127.0.0.1:1")
    assert code in (3, 5), err  # no responders (unsubscribed) or refused


def test_transfer_with_refer_and_hangup_over_nats(media_factory, events, nats, media_tmp,
                                                  pcmu_audio):
    media = media_factory()
    target = "sip:alice@example.com"
    xml = scenario("uac_refer", media_tmp, AUDIO=pcmu_audio, TARGET=target)
    call = subprocess.Popen(sipp_cmd(xml, media, media_tmp), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, cwd=media_tmp)
    try:
        answered = events.wait_event("call.answered")
        call_id = answered["data"]["call_id"]
        # a bad target is refused, the call goes on
        code, _, err = media_ctl(nats, "ctl", call_id, "transfer", "not a uri")
        assert code == 5 and "invalid" in err
        code, reply, err = media_ctl(nats, "ctl", call_id, "transfer", target)
        assert code == 0, err
        assert reply == {"call_id": call_id, "state": "active"}
        assert call.wait(60) == 0, call.stdout.read().decode()
    finally:
        if call.poll() is None:
            call.kill()
            call.wait()
    t = events.wait_event("call.transferred", lambda e: e["data"]["call_id"] == call_id)
    assert t["data"]["outcome"] == "completed" and t["data"]["target"] == target
    ended = events.wait_event("call.ended", lambda e: e["data"]["call_id"] == call_id)
    assert ended["data"]["reason"] == "transferred"
    # the call is gone: control requests find nobody
    code, _, err = media_ctl(nats, "ctl", call_id, "hangup")
    assert code == 3, err


def test_hangup_over_nats(media_factory, events, nats, media_tmp, pcmu_audio):
    media = media_factory()
    xml = scenario("uac_call", media_tmp, AUDIO=pcmu_audio, PAUSE_MS=60000)
    call = subprocess.Popen(sipp_cmd(xml, media, media_tmp), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, cwd=media_tmp)
    try:
        call_id = events.wait_event("call.answered")["data"]["call_id"]
        code, reply, err = media_ctl(nats, "ctl", call_id, "hangup", "agent_done")
        assert code == 0, err
        assert reply["state"] == "ended"
        ended = events.wait_event("call.ended", lambda e: e["data"]["call_id"] == call_id)
        assert ended["data"]["reason"] == "agent_done"
    finally:
        call.kill()
        call.wait()


def test_record_route_behind_a_proxy(media_factory, events, nats, media_tmp):
    media = media_factory()
    call = subprocess.Popen(sipp_cmd(scenario("uac_record_route", media_tmp), media, media_tmp),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=media_tmp)
    try:
        call_id = events.wait_event("call.answered")["data"]["call_id"]
        # the remote target (Contact 192.0.2.99) is unreachable: only the route gets the BYE
        code, _, err = media_ctl(nats, "ctl", call_id, "hangup")
        assert code == 0, err
        assert call.wait(30) == 0, call.stdout.read().decode()
    finally:
        if call.poll() is None:
            call.kill()
            call.wait()
