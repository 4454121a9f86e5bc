"""The authenticated hot path under concurrency, through the whole stack (gateway -> auth ->
registry): what the speed-ups (tests/bench/bench_api.py) must never change.

- The gateway spends slices of a key's rate-limit tokens without asking auth
  (gw_authcache.h): answers stay per key and per org.
- The registry answers concurrent GET /v1/agents/{id} in batches, one database query for
  many requests, and serves renderings cached by (org, id, version): each answer must be
  the requested agent of the caller's org, current as of the request, never another
  request's row, another org's agent, or an old version.
"""
import http.client
import json
import threading

from conftest import Api


def flow_agent(name):
    return {"name": name,
            "response_engine": {"type": "flow", "start": "hello", "nodes": [
                {"id": "hello", "type": "say", "text": "Hello", "next": "bye"},
                {"id": "bye", "type": "hangup", "message": "Goodbye"}]}}


def test_concurrent_gets_are_each_their_own_and_current(api, migrated):
    # two orgs with limits that let slices and batches happen
    orgs = []
    for name in ("hot path A", "hot path B"):
        status, _, body = api.post("/v1/orgs", {"name": name})
        assert status == 201, body
        migrated.psql("INSERT INTO org_limits (org_id, read_per_min, write_per_min) VALUES "
                      f"('{body['org']['id']}', 600000, 600000)")
        orgs.append(Api(api.port, body["api_key"]["secret"]))
    agents = {}  # id -> (org index, name)
    for o, client in enumerate(orgs):
        for n in range(4):
            name = f"hot {o}-{n}"
            status, _, agent = client.post("/v1/agents", flow_agent(name=name))
            assert status == 201, agent
            agents[agent["id"]] = (o, name)
    ids = sorted(agents)
    missing = "agt_" + "0" * 20
    errors = []
    lock = threading.Lock()

    def reader(t):
        conns = [http.client.HTTPConnection("127.0.0.1", api.port, timeout=10) for _ in orgs]
        try:
            for i in range(60):
                o = (t + i) % 2
                agent_id = ids[(t * 7 + i) % len(ids)] if i % 10 else missing
                conns[o].request("GET", f"/v1/agents/{agent_id}",
                                 headers={"Authorization": f"Bearer {orgs[o].key}"})
                r = conns[o].getresponse()
                body = json.loads(r.read())
                owner = agents.get(agent_id)
                if owner is None or owner[0] != o:
                    ok = r.status == 404 and body["type"].endswith("/not_found")
                else:
                    ok = (r.status == 200 and body["id"] == agent_id
                          and body["name"] == owner[1])
                if not ok:
                    with lock:
                        errors.append((o, agent_id, r.status, body))
        finally:
            for c in conns:
                c.close()

    threads = [threading.Thread(target=reader, args=(t,)) for t in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:5]

    # a change is seen by the very next read, through any cached rendering
    target = ids[0]
    o, _ = agents[target]
    status, _, before = orgs[o].get(f"/v1/agents/{target}")
    assert status == 200
    for n in range(3):
        status, _, patched = orgs[o].patch(f"/v1/agents/{target}", {"name": f"renamed {n}"})
        assert status == 200, patched
        status, _, got = orgs[o].get(f"/v1/agents/{target}")
        assert status == 200 and got["name"] == f"renamed {n}", got
        assert got["version"] == before["version"] + n + 1
        assert got == patched
    # and so is a deletion
    assert orgs[o].delete(f"/v1/agents/{target}")[0] == 204
    status, _, body = orgs[o].get(f"/v1/agents/{target}")
    assert status == 404, body
