"""Phone numbers in the registry: CRUD, trunk passwords (never returned, sealed at rest),
same-org agents, uniqueness, pagination, resolve for media workers, events and audit.

Bus tests use the `bus` registry of test_agents.py (own nats-server, encryption key set);
http tests go through the whole stack with the `api` fixture.
"""
import json
import re
import secrets

from conftest import Api
from test_agents import bus, flow_agent, wait_events  # noqa: F401 (fixture)


def e164():
    return "+1555" + "".join(str(secrets.randbelow(10)) for _ in range(7))


def trunk(password="hunter2-trunk"):
    t = {"uri": "sip:trunk.example.com;transport=tcp", "username": "acme"}
    if password is not None:
        t["password"] = password
    return t


def test_create_get_never_returns_the_password(bus):
    org = bus.new_org()
    agent = bus.ok("agents.create", org, 201, body=flow_agent())
    number = e164()
    pn = bus.ok("numbers.create", org, 201,
                body={"number": number, "agent_id": agent["id"], "outbound_trunk": trunk()})
    assert re.fullmatch(r"pn_[0-9a-f]{20}", pn["id"])
    assert pn["object"] == "phone_number" and pn["number"] == number
    assert pn["agent_id"] == agent["id"]
    assert pn["outbound_trunk"] == {"uri": "sip:trunk.example.com;transport=tcp",
                                    "username": "acme", "has_password": True}
    got = bus.ok("numbers.get", org, 200, id=pn["id"])
    assert got == pn
    listed = bus.ok("numbers.list", org, 200)
    assert listed["data"] == [pn]
    assert "hunter2" not in json.dumps([pn, got, listed])
    # at rest: sealed with the key, bound to the row
    stored = bus.pg.psql(f"SELECT trunk_password FROM phone_numbers WHERE id = '{pn['id']}'")
    assert stored.startswith("enc:v1:") and "hunter2" not in stored
    # audit and events never carry it either
    audit = bus.pg.psql(f"SELECT changes::text FROM registry_audit WHERE resource_id = '{pn['id']}'")
    assert "hunter2" not in audit and "<redacted>" in audit
    events = wait_events(bus, org, 2)
    assert "hunter2" not in json.dumps(events)
    assert events[-1]["data"]["type"] == "phone_number.created"
    assert events[-1]["data"]["data"] == pn


def test_patch_keeps_sets_and_clears_the_password(bus):
    org = bus.new_org()
    pn = bus.ok("numbers.create", org, 201, body={"number": e164(), "outbound_trunk": trunk()})
    sealed = bus.pg.psql(f"SELECT trunk_password FROM phone_numbers WHERE id = '{pn['id']}'")
    # a patch that does not mention the password keeps it, untouched
    p = bus.ok("numbers.update", org, 200, id=pn["id"],
               body={"outbound_trunk": {"username": "other"}})
    assert p["outbound_trunk"] == {"uri": pn["outbound_trunk"]["uri"], "username": "other",
                                   "has_password": True}
    assert bus.pg.psql(
        f"SELECT trunk_password FROM phone_numbers WHERE id = '{pn['id']}'") == sealed
    # a new one is sealed again
    bus.ok("numbers.update", org, 200, id=pn["id"], body={"outbound_trunk": {"password": "new"}})
    resealed = bus.pg.psql(f"SELECT trunk_password FROM phone_numbers WHERE id = '{pn['id']}'")
    assert resealed.startswith("enc:v1:") and resealed != sealed
    # null removes it
    p = bus.ok("numbers.update", org, 200, id=pn["id"],
               body={"outbound_trunk": {"password": None}})
    assert p["outbound_trunk"]["has_password"] is False
    # removing the trunk removes everything
    p = bus.ok("numbers.update", org, 200, id=pn["id"], body={"outbound_trunk": None})
    assert p["outbound_trunk"] is None
    assert bus.pg.psql(f"SELECT coalesce(trunk_password, 'NULL') FROM phone_numbers "
                       f"WHERE id = '{pn['id']}'") == "NULL"
    # has_password is read-only; unchanged patch keeps updated_at
    fields = bus.fields("numbers.update", org, id=pn["id"],
                        body={"outbound_trunk": {"uri": "sip:x", "has_password": True}})
    assert fields == {"outbound_trunk.has_password": "is read-only"}
    same = bus.ok("numbers.update", org, 200, id=pn["id"], body={"number": p["number"]})
    assert same["updated_at"] == p["updated_at"]


def test_validation(bus):
    org = bus.new_org()
    fields = bus.fields("numbers.create", org, body={
        "number": "+0123", "agent_id": "agent-7", "outbound_trunk": {
            "uri": "https://trunk", "username": "u" * 129, "password": "p" * 129},
        "label": "x", "id": "pn_mine"})
    assert "E.164" in fields["number"]
    assert "agent id" in fields["agent_id"]
    assert "sip: or sips:" in fields["outbound_trunk.uri"]
    assert "1 to 128 characters" in fields["outbound_trunk.username"]
    assert "1 to 128 characters" in fields["outbound_trunk.password"]
    assert fields["label"] == "unknown field" and fields["id"] == "is read-only"
    assert bus.fields("numbers.create", org, body={}) == {"number": "is required"}
    # a SIP user part is a number too
    pn = bus.ok("numbers.create", org, 201, body={"number": "support-" + secrets.token_hex(4)})
    assert pn["agent_id"] is None and pn["outbound_trunk"] is None


def test_agent_must_belong_to_the_same_org(bus):
    org_a, org_b = bus.new_org("A"), bus.new_org("B")
    agent_a = bus.ok("agents.create", org_a, 201, body=flow_agent())
    fields = bus.fields("numbers.create", org_b, body={"number": e164(),
                                                      "agent_id": agent_a["id"]})
    assert fields == {"agent_id": "no agent with this id"}
    pn = bus.ok("numbers.create", org_b, 201, body={"number": e164()})
    fields = bus.fields("numbers.update", org_b, id=pn["id"], body={"agent_id": agent_a["id"]})
    assert fields == {"agent_id": "no agent with this id"}
    fields = bus.fields("numbers.create", org_a, body={"number": e164(),
                                                      "agent_id": "agt_" + "0" * 20})
    assert fields == {"agent_id": "no agent with this id"}


def test_duplicate_number_is_a_conflict_across_orgs(bus):
    org_a, org_b = bus.new_org(), bus.new_org()
    number = e164()
    first = bus.ok("numbers.create", org_a, 201, body={"number": number})
    err = bus.error("numbers.create", org_b, "conflict", body={"number": number})
    assert "already registered" in err["message"]
    other = bus.ok("numbers.create", org_a, 201, body={"number": e164()})
    bus.error("numbers.update", org_a, "conflict", id=other["id"], body={"number": number})
    # and the other org cannot see or touch the first one
    bus.error("numbers.get", org_b, "not_found", id=first["id"])
    bus.error("numbers.delete", org_b, "not_found", id=first["id"])
    assert bus.ok("numbers.list", org_b, 200)["data"] == []


def test_pagination_and_delete(bus):
    org = bus.new_org()
    ids = [bus.ok("numbers.create", org, 201, body={"number": e164()})["id"] for _ in range(5)]
    p1 = bus.ok("numbers.list", org, 200, limit=2)
    p2 = bus.ok("numbers.list", org, 200, limit=2, starting_after=p1["next_cursor"])
    p3 = bus.ok("numbers.list", org, 200, limit=2, starting_after=p2["next_cursor"])
    assert [n["id"] for n in p1["data"] + p2["data"] + p3["data"]] == ids
    assert (p1["has_more"], p2["has_more"], p3["has_more"]) == (True, True, False)
    assert bus.fields("numbers.list", org, starting_after="pn_" + "0" * 20) == {
        "starting_after": "no phone number with this id"}
    assert bus.ok("numbers.delete", org, 204, id=ids[0]) is None
    bus.error("numbers.get", org, "not_found", id=ids[0])
    events = wait_events(bus, org, 6)
    assert events[-1]["data"]["type"] == "phone_number.deleted"
    assert events[-1]["data"]["data"]["id"] == ids[0]


def test_deleting_the_agent_unbinds_the_number(bus):
    org = bus.new_org()
    agent = bus.ok("agents.create", org, 201, body=flow_agent())
    pn = bus.ok("numbers.create", org, 201, body={"number": e164(), "agent_id": agent["id"]})
    bus.ok("agents.delete", org, 204, id=agent["id"])
    assert bus.ok("numbers.get", org, 200, id=pn["id"])["agent_id"] is None


def test_resolve_for_media_workers(bus):
    org = bus.new_org()
    agent = bus.ok("agents.create", org, 201, body=flow_agent())
    number = e164()
    pn = bus.ok("numbers.create", org, 201, body={"number": number, "agent_id": agent["id"],
                                                  "outbound_trunk": trunk()})
    for dialled in (number, number[1:]):  # "+1555..." and the carrier's "1555..."
        code, reply = bus.call("numbers.resolve", "-", resolve=dialled)
        assert code == 0 and "reply" in reply, reply
        r = reply["reply"]
        assert r["org_id"] == org and r["number_id"] == pn["id"] and r["number"] == number
        assert r["agent_id"] == agent["id"] and r["agent_version"] == 1
        assert r["agent"] == agent
        assert "hunter2" not in json.dumps(reply)
    code, reply = bus.call("numbers.resolve", "-", resolve="+19999999999")
    assert reply["error"]["status"] == "not_found"
    unbound = bus.ok("numbers.create", org, 201, body={"number": e164()})
    code, reply = bus.call("numbers.resolve", "-", resolve=unbound["number"])
    assert reply["error"]["status"] == "not_found"


# ---------------------------------------------------------------- http: through the gateway

def test_http_number_crud(api):
    status, _, agent = api.post("/v1/agents", flow_agent(name="numbers agent"))
    assert status == 201, agent
    number = e164()
    status, _, pn = api.post("/v1/phone-numbers", {"number": number, "agent_id": agent["id"],
                                                    "outbound_trunk": trunk()})
    assert status == 201, pn
    assert pn["outbound_trunk"]["has_password"] is True
    status, _, got = api.get(f"/v1/phone-numbers/{pn['id']}")
    assert status == 200 and got == pn
    status, _, page = api.get("/v1/phone-numbers?limit=100")
    assert status == 200 and pn["id"] in [n["id"] for n in page["data"]]
    assert "hunter2" not in json.dumps([pn, got, page])
    status, _, patched = api.patch(f"/v1/phone-numbers/{pn['id']}", {"agent_id": None})
    assert status == 200 and patched["agent_id"] is None
    status, _, problem = api.post("/v1/phone-numbers", {"number": number})
    assert status == 409 and problem["type"].endswith("/conflict")
    assert api.delete(f"/v1/phone-numbers/{pn['id']}")[0] == 204
    assert api.get(f"/v1/phone-numbers/{pn['id']}")[0] == 404


def test_http_numbers_cross_org(api):
    status, _, pn = api.post("/v1/phone-numbers", {"number": e164()})
    assert status == 201, pn
    status, _, org_b = api.post("/v1/orgs", {"name": "numbers org B"})
    assert status == 201, org_b
    b = Api(api.port, org_b["api_key"]["secret"])
    assert b.get(f"/v1/phone-numbers/{pn['id']}")[0] == 404
    status, _, page = b.get("/v1/phone-numbers?limit=100")
    assert status == 200 and pn["id"] not in [n["id"] for n in page["data"]]
