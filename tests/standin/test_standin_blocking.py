"""The stand-in's scheduler workers and blocking queries: evaluations made with the state lock
released are checked before they commit (as Nomad's plan applier checks plans), and reads
answer `?index=&wait=` as Nomad's HTTP agent does."""

from __future__ import annotations

import threading

import pytest
import requests
from nomad_standin import nomadsched
from nomad_standin.nomad import NomadState

SEC = 1_000_000_000
needs_sched = pytest.mark.skipif(
    nomadsched.binary() is None, reason="nomad-sched not found (set NOMADGEN_SHARED)"
)


def big_job(job_id: str, memory: int) -> dict:
    return {
        "ID": job_id,
        "Name": job_id,
        "Type": "service",
        "Datacenters": ["zone-a"],
        "TaskGroups": [
            {
                "Name": "app",
                "Count": 1,
                "Tasks": [
                    {
                        "Name": "app",
                        "Driver": "docker",
                        "Config": {"image": "example/app:1.0"},
                        "Resources": {"CPU": 100, "MemoryMB": memory},
                    }
                ],
            }
        ],
    }


def memory_used(st: NomadState) -> int:
    with st.lock:
        return sum(a.ref().memory_mb for a in st.allocs.values() if not a.terminal)


@needs_sched
@pytest.mark.parametrize("recheck", [True, False], ids=["checked", "known-bad: not checked"])
def test_a_plan_made_outside_the_lock_is_checked_before_it_commits(monkeypatch, recheck):
    """Job b is placed on the only node while job a's scheduler run has the lock released;
    both need 5000 of the node's 8192 MB. a's plan no longer fits when it commits: it is made
    again on the new state, and a cannot be placed. Without the check both land: the node is
    overcommitted."""
    st = NomadState(zones=("zone-a",), nodes_per_zone=1)
    capacity = st.nodes[0]["NodeResources"]["Memory"]["MemoryMB"]
    if not recheck:
        monkeypatch.setattr(NomadState, "_plan_still_applies", lambda self, *a: True)
    run = nomadsched.run
    meanwhile = []

    def run_while_another_lands(binary, payload):
        if '"ID": "a"' in payload and not meanwhile:
            meanwhile.append(st.register(big_job("b", 5000)))  # the lock is released here
        return run(binary, payload)

    monkeypatch.setattr(nomadsched, "run", run_while_another_lands)
    reg = st.register(big_job("a", 5000))
    assert meanwhile, "job b was not registered during a's scheduler run"
    ev = st.evals[reg["EvalID"]]
    assert ev["Status"] == "complete"
    if recheck:
        assert memory_used(st) <= capacity
        assert ev["FailedTGAllocs"], "a's placement should fail on the node b filled"
    else:
        assert memory_used(st) > capacity  # what the check prevents


def test_blocking_queries_answer_like_nomads_http_agent(standin_factory):
    s = standin_factory(zones=("zone-a",))
    url = f"{s.nomad_addr}/v1/jobs"
    first = requests.get(url, timeout=5)
    index = int(first.headers["X-Nomad-Index"])
    # nothing changes: the answer comes when wait is over, with the same index
    same = requests.get(url, params={"index": index, "wait": "50ms"}, timeout=5)
    assert int(same.headers["X-Nomad-Index"]) == index
    # a change wakes the query with a larger index
    got = {}

    def block():
        r = requests.get(url, params={"index": index, "wait": "30s"}, timeout=40)
        got["index"] = int(r.headers["X-Nomad-Index"])
        got["jobs"] = [j["ID"] for j in r.json()]

    t = threading.Thread(target=block)
    t.start()
    s.nomad.register(big_job("woken", 100))
    t.join(timeout=40)
    assert got["index"] > index and got["jobs"] == ["woken"]
    # command/agent/http.go parseWait
    bad = requests.get(url, params={"index": index, "wait": "soon"}, timeout=5)
    assert (bad.status_code, bad.text.strip()) == (400, "Invalid wait time")
    bad = requests.get(url, params={"index": "-1"}, timeout=5)
    assert (bad.status_code, bad.text.strip()) == (400, "Invalid index")


def test_list_filters_take_alternatives(standin_factory):
    s = standin_factory(zones=("zone-a",))
    ids = [s.nomad.register(big_job(j, 100))["EvalID"] for j in ("x", "y", "z")]
    url = f"{s.nomad_addr}/v1/evaluations"
    pick = f'ID == "{ids[0]}" or ID == "{ids[2]}"'
    got = requests.get(url, params={"filter": pick}, timeout=5).json()
    assert sorted(e["ID"] for e in got) == sorted([ids[0], ids[2]])
    mixed = 'JobID == "y" or JobID == "z" and Status == "nothing"'  # and binds tighter
    got = requests.get(url, params={"filter": mixed}, timeout=5).json()
    assert [e["JobID"] for e in got] == ["y"]
    bad = requests.get(url, params={"filter": "ID =="}, timeout=5)
    assert bad.status_code == 400


def test_a_template_naming_its_service_by_the_nodes_tag_is_watched_by_that_service():
    """consul-template re-renders when a blocking query on what it reads answers with a new
    index: `service (print (env "node.datacenter") ".db")` reads service db (with the node's
    tag), so the client evaluates it again only when db's index moves."""
    from nomad_standin import consul_template
    from nomad_standin.consul import ConsulState

    c = ConsulState()
    c.register_node("n1", "10.0.0.1")
    c.register_service(
        node="n1", service_id="db-1", name="db", address="10.0.0.1", port=5432, tags=["zone-a"]
    )
    text = '{{ with service (print (env "node.datacenter") ".db") }}{{ .Address }}{{ end }}'
    before = consul_template.watch_index(text, c)
    assert before is not None
    c.register_service(
        node="n1", service_id="other-1", name="other", address="10.0.0.1", port=1, tags=[]
    )
    assert consul_template.watch_index(text, c) == before  # another service moved
    c.register_service(
        node="n1", service_id="db-2", name="db", address="10.0.0.1", port=5433, tags=["zone-b"]
    )
    assert consul_template.watch_index(text, c) != before
    # a name made at run time is not known before the run: evaluated every time
    dynamic = '{{ with service (print (env "a") (env "b")) }}{{ .Address }}{{ end }}'
    assert consul_template.watch_index(dynamic, c) is None
