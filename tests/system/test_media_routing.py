"""voxi-media routing inbound calls through the control plane: the dialled user part is
resolved by the registry (voxi.registry.numbers.resolve) while the caller holds our 100
Trying; unknown numbers get 404, an unreachable or silent registry 503 with Retry-After, and
the demo user stays the offline echo demo. Call events carry the resolved org, the agent,
the number and the worker."""
import re

import pytest

from conftest import Nats
from media_util import (Events, Media, NatsSub, media_tmp, pcmu_audio, run_sipp,  # noqa: F401
                        scenario)
from test_agents import bus, flow_agent  # noqa: F401 (fixture)
from test_numbers import e164


@pytest.fixture
def own_nats(tmp_root):
    n = Nats(tmp_root)
    n.start()
    yield n
    n.stop()


@pytest.fixture
def media_factory(tmp_root):
    started = []

    def make(nats_url, **env):
        m = Media(tmp_root, nats_url, **env).start()
        started.append(m)
        return m
    yield make
    for m in started:
        code = m.stop()
        assert code == 0, f"voxi-media exited {code}:\n{m.log()[-4000:]}"


def test_number_routes_to_its_org_and_agent(bus, media_factory, media_tmp, pcmu_audio):
    org = bus.new_org("routing org")
    agent = bus.ok("agents.create", org, 201, body=flow_agent("Router"))
    number = e164()
    pn = bus.ok("numbers.create", org, 201, body={"number": number, "agent_id": agent["id"]})
    events = Events(bus.url)
    try:
        media = media_factory(bus.url)
        xml = scenario("uac_call", media_tmp, AUDIO=pcmu_audio, PAUSE_MS=500)
        # carriers send the digits without "+": they match the registered E.164 number
        rc, out = run_sipp(xml, media, media_tmp, service=number.lstrip("+"))
        assert rc == 0, out
        started = events.wait_event("call.started", lambda e: e["org_id"] == org)
        d = started["data"]
        assert d["agent_id"] == agent["id"] and d["number_id"] == pn["id"]
        assert d["worker_id"].startswith("media-")
        cid = d["call_id"]
        subjects = [s for s, _ in events.messages]
        assert f"voxi.events.{org}.call.started" in subjects
        for t in ("call.answered", "call.ended"):
            e = events.wait_event(t, lambda e: e["data"]["call_id"] == cid)
            assert e["org_id"] == org and e["data"]["agent_id"] == agent["id"]
        assert media.metric("voxi_media_route_lookups_total", 'outcome="resolved"') == 1
        # a second call within the cache TTL does not ask the registry again
        rc, out = run_sipp(xml, media, media_tmp, service=number.lstrip("+"))
        assert rc == 0, out
        events.wait_event("call.ended", lambda e: e["org_id"] == org and
                          e["data"]["call_id"] != cid)
        assert media.metric("voxi_media_route_lookups_total", 'outcome="cached"') == 1
        assert media.metric("voxi_media_route_lookups_total", 'outcome="resolved"') == 1
    finally:
        events.close()


def test_unknown_number_404_and_demo_still_echoes(bus, media_factory, media_tmp, pcmu_audio):
    events = Events(bus.url)
    try:
        media = media_factory(bus.url, VOXI_MEDIA_ROUTE_CACHE_TTL_MS=0)
        xml = scenario("uac_rejected", media_tmp, CODE=404, HEADER_REGEXP="To: .*;tag=")
        rc, out = run_sipp(xml, media, media_tmp, service=e164().lstrip("+"))
        assert rc == 0, out
        assert media.metric("voxi_media_route_lookups_total", 'outcome="not_found"') == 1
        # no number "demo" in the registry: the demo answers, in the default org
        call = scenario("uac_call", media_tmp, AUDIO=pcmu_audio, PAUSE_MS=500)
        rc, out = run_sipp(call, media, media_tmp, service="demo")
        assert rc == 0, out
        started = events.wait_event("call.started", lambda e: e["data"]["to"].startswith(
            "sip:demo@") and e["data"]["worker_id"] == media_worker_id(media))
        assert started["org_id"] == "org_default"
        assert "agent_id" not in started["data"] and "number_id" not in started["data"]
        assert media.metric("voxi_media_route_lookups_total", 'outcome="not_found"') == 2
    finally:
        events.close()


def media_worker_id(media):
    m = re.search(r"instance (media-[^ ,]+)", media.log())
    return m.group(1) if m else None


def test_registry_unreachable_503_but_demo_works(own_nats, media_factory, media_tmp,
                                                 pcmu_audio):
    media = media_factory(own_nats.url)
    xml = scenario("uac_rejected", media_tmp, CODE=503, HEADER_REGEXP="Retry-After: [0-9]+")
    rc, out = run_sipp(xml, media, media_tmp, service="15550001111")
    assert rc == 0, out
    assert media.metric("voxi_media_route_lookups_total", 'outcome="unavailable"') == 1
    call = scenario("uac_call", media_tmp, AUDIO=pcmu_audio, PAUSE_MS=500)
    rc, out = run_sipp(call, media, media_tmp, service="demo")
    assert rc == 0, out


def test_silent_registry_hits_the_deadline(own_nats, media_factory, media_tmp, pcmu_audio):
    # something subscribes to the resolve subject but never answers: the deadline decides
    silent = NatsSub(own_nats.url, "voxi.registry.numbers.resolve")
    try:
        media = media_factory(own_nats.url, VOXI_MEDIA_ROUTE_TIMEOUT_MS=300)
        xml = scenario("uac_rejected", media_tmp, CODE=503, HEADER_REGEXP="Retry-After: [0-9]+")
        rc, out = run_sipp(xml, media, media_tmp, service="15550002222")
        assert rc == 0, out
        silent.wait_for(lambda s, p: b"15550002222" in p, 5, "the resolve request")
        call = scenario("uac_call", media_tmp, AUDIO=pcmu_audio, PAUSE_MS=500)
        rc, out = run_sipp(call, media, media_tmp, service="demo")
        assert rc == 0, out
        assert media.metric("voxi_media_route_lookups_total", 'outcome="unavailable"') == 2
    finally:
        silent.close()
