"""The backends' reads for submit's layer waiter: many evaluations or deployments in one list
request, blocking queries on Nomad and Consul (`?index=&wait=`)."""

from __future__ import annotations

from nomadgen.backends import connect
from nomadgen.settings import consul_endpoint, nomad_endpoint


def small_job(job_id: str) -> dict:
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
                        "Resources": {"CPU": 10, "MemoryMB": 16},
                    }
                ],
            }
        ],
    }


def backends(s):
    return connect(
        nomad_endpoint(address=s.nomad_addr, env={}),
        consul_endpoint(address=s.consul_addr, env={}),
    )


def test_evaluations_are_read_by_id_in_chunks(standin_factory):
    s = standin_factory(zones=("zone-a",))
    nomad, _ = backends(s)
    ids = [nomad.register(small_job(j), 0)["EvalID"] for j in ("a", "b", "c")]
    nomad.BY_ID_CHUNK = 2
    s.faults.reset_calls()
    got = nomad.evaluations_by_id(ids + ["no-such-evaluation"])
    assert sorted(e["ID"] for e in got) == sorted(ids)
    assert [p for _, m, p in s.faults.log if "/v1/evaluations" in p and m == "GET"] != []
    assert sum(1 for _, _, p in s.faults.log if p.startswith("/v1/evaluations")) == 2
    deps = [d["ID"] for d in nomad.deployments_by_id([]) or []]
    assert deps == []


def test_blocking_reads_return_the_index_to_wait_from(standin_factory):
    s = standin_factory(zones=("zone-a",))
    nomad, consul = backends(s)
    reg = nomad.register(small_job("a"), 0)
    index = nomad.wait_for_change("evaluation", reg["EvalID"], 1, 0.05)
    assert index > 1
    # from the index it gave, the next query answers when something moves or its wait is over
    assert nomad.wait_for_change("evaluation", reg["EvalID"], index, 0.05) >= index
    assert nomad.wait_for_change("allocations", "a", 1, 0.05) > 1
    assert nomad.wait_for_change("deployment", "no-such-deployment", 1, 0.05) == 0

    consul.register_service("ext", "ext-1", "10.0.0.9", 80, [], {})
    nodes, cindex = consul.healthy_since("ext")
    assert [n["Service"]["ID"] for n in nodes] == ["ext-1"] and cindex > 0
    again, same = consul.healthy_since("ext", cindex, 0.05)
    assert (len(again), same) == (1, cindex)
