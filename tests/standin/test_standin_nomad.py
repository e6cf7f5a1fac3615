"""The Nomad side of the dev stand-in, driven through the real clients (python-nomad, py-consul,
dnspython, requests). Tests that only speak HTTP also run against real agents
(NOMADGEN_TEST_REAL=1); the ones that need the stand-in's levers skip there."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid

import consul
import dns.resolver
import nomad
import nomad.api.exceptions as nex
import nomad_jobcheck as jobcheck
import pytest
import requests
from nomad_jobcheck import jobspec as nomad_jobspec
from nomad_standin.server import StandIn

SEC = 1_000_000_000
ZONES = ("zone-a", "zone-b", "zone-c")


def make_job(
    job_id: str,
    *,
    count: int = 3,
    env: dict | None = None,
    distinct: bool = True,
    update: dict | None = None,
    tags: list[str] | None = None,
    cpu: int = 200,
    constraints: list[dict] | None = None,
) -> dict:
    group_constraints = list(constraints or [])
    if distinct:
        group_constraints.append(
            {"LTarget": "${node.datacenter}", "Operand": "distinct_property", "RTarget": "1"}
        )
    return {
        "ID": job_id,
        "Name": job_id,
        "Type": "service",
        "Datacenters": list(ZONES),
        "TaskGroups": [
            {
                "Name": "app",
                "Count": count,
                "Constraints": group_constraints or None,
                "Networks": [{"Mode": "host", "DynamicPorts": [{"Label": "http", "To": 8080}]}],
                "Services": [
                    {
                        "Name": f"{job_id}-api",
                        "PortLabel": "http",
                        "Provider": "consul",
                        "Tags": tags if tags is not None else ["v1", "${node.datacenter}"],
                        "Checks": [
                            {
                                "Name": "alive",
                                "Type": "tcp",
                                "PortLabel": "http",
                                "Interval": 10 * SEC,
                                "Timeout": 2 * SEC,
                            }
                        ],
                    }
                ],
                "Update": update
                or {
                    "MaxParallel": 1,
                    "MinHealthyTime": 10 * SEC,
                    "HealthyDeadline": 5 * 60 * SEC,
                    "ProgressDeadline": 10 * 60 * SEC,
                },
                "Tasks": [
                    {
                        "Name": "app",
                        "Driver": "docker",
                        "Config": {"image": "example/app:1.0", "ports": ["http"]},
                        "Env": env if env is not None else {"MODE": "one"},
                        "Resources": {"CPU": cpu, "MemoryMB": 128},
                    }
                ],
            }
        ],
    }


def poll(predicate, timeout: float = 5.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def register(c, job_id, body):
    """Register, then wait for the scheduler to process the evaluation (Nomad is asynchronous:
    register returns before the evaluation runs), as `nomad job run` monitors it."""
    reg = c.job.register_job(job_id, body)
    poll(lambda: c.evaluation.get_evaluation(reg["EvalID"])["Status"] != "pending")
    return reg


@pytest.fixture
def client(cluster):
    return nomad.Nomad(
        host=cluster.nomad_host,
        port=cluster.nomad_port,
        timeout=5,
        verify=False,
        token=cluster.nomad_token,
    )


@pytest.fixture
def job_id(client):
    """A fresh job ID, purged afterwards (matters against real agents)."""
    jid = f"t-{uuid.uuid4().hex[:8]}"
    yield jid
    try:
        client.job.deregister_job(jid, purge=True)
    except nex.BaseNomadException:
        pass


@pytest.fixture
def standin(cluster) -> StandIn:
    if cluster.standin is None:
        pytest.skip("needs the stand-in's levers")
    return cluster.standin


def live(client, jid):
    return [
        a
        for a in client.job.get_allocations(jid)
        if a["DesiredStatus"] == "run" and a["ClientStatus"] in ("pending", "running")
    ]


# -- register, read, plan --------------------------------------------------------------------
def test_plan_register_read_versions(client, job_id):
    plan = client.job.plan_job(job_id, {"Job": make_job(job_id)}, diff=True)
    assert plan["Diff"]["Type"] == "Added"
    assert plan["JobModifyIndex"] == 0
    assert plan["FailedTGAllocs"] is None
    assert plan["Annotations"]["DesiredTGUpdates"]["app"]["Place"] == 3
    group = plan["Diff"]["TaskGroups"][0]
    assert group["Type"] == "Added" and group["Updates"] == {"create": 3}
    assert group["Tasks"][0]["Annotations"] == ["forces create"]

    reg = register(client, job_id, {"Job": make_job(job_id)})
    assert reg["EvalID"] and reg["JobModifyIndex"] > 0
    job = client.job.get_job(job_id)
    assert (job["Name"], job["Namespace"], job["Region"], job["Priority"], job["Type"]) == (
        job_id,
        "default",
        "global",
        50,
        "service",
    )
    assert job["Version"] == 0 and job["JobModifyIndex"] == reg["JobModifyIndex"]
    assert job["Status"] in ("pending", "running")
    assert job["TaskGroups"][0]["Tasks"][0]["KillTimeout"] == 5 * SEC  # server default

    # Same spec again: no new version, same JobModifyIndex, and a plan with nothing to do.
    again = register(client, job_id, {"Job": make_job(job_id)})
    assert again["JobModifyIndex"] == reg["JobModifyIndex"]
    assert client.job.get_job(job_id)["Version"] == 0
    same = client.job.plan_job(job_id, {"Job": make_job(job_id)}, diff=True)
    assert same["Diff"]["Type"] == "None"
    assert same["JobModifyIndex"] == reg["JobModifyIndex"]
    assert same["Annotations"]["DesiredTGUpdates"]["app"]["Ignore"] == 3

    edited = client.job.plan_job(job_id, {"Job": make_job(job_id, env={"MODE": "two"})}, diff=True)
    assert edited["Diff"]["Type"] == "Edited"
    task = edited["Diff"]["TaskGroups"][0]["Tasks"][0]
    assert task["Type"] == "Edited"
    assert {
        "Type": "Edited",
        "Name": "Env[MODE]",
        "Old": "one",
        "New": "two",
        "Annotations": None,
    } in task["Fields"]
    assert task["Annotations"] == ["forces create/destroy update"]
    # max_parallel 1: one replacement now, the others wait for it to be healthy.
    updates = edited["Annotations"]["DesiredTGUpdates"]["app"]
    assert (updates["DestructiveUpdate"], updates["Ignore"]) == (1, 2)
    assert edited["Diff"]["TaskGroups"][0]["Updates"] == {"create/destroy update": 1, "ignore": 2}

    register(client, job_id, {"Job": make_job(job_id, env={"MODE": "two"})})
    versions = client.job.get_versions(job_id)["Versions"]
    assert [v["Version"] for v in versions] == [1, 0]
    assert versions[0]["TaskGroups"][0]["Tasks"][0]["Env"] == {"MODE": "two"}


def test_plan_in_place_and_meta_classification(client, job_id):
    register(client, job_id, {"Job": make_job(job_id)})
    # A tag or constraint change is in-place; job-level meta reaches tasks, so it is destructive.
    tagged = client.job.plan_job(job_id, {"Job": make_job(job_id, tags=["v2"])}, diff=True)
    assert tagged["Annotations"]["DesiredTGUpdates"]["app"]["InPlaceUpdate"] == 3
    constrained = make_job(
        job_id, constraints=[{"LTarget": "${attr.kernel.name}", "Operand": "=", "RTarget": "linux"}]
    )
    plan = client.job.plan_job(job_id, {"Job": constrained}, diff=True)
    assert plan["Annotations"]["DesiredTGUpdates"]["app"]["InPlaceUpdate"] == 3
    meta = make_job(job_id)
    meta["Meta"] = {"owner": "team-x"}
    plan = client.job.plan_job(job_id, {"Job": meta}, diff=True)
    assert plan["Annotations"]["DesiredTGUpdates"]["app"]["DestructiveUpdate"] == 1
    assert {
        "Type": "Added",
        "Name": "Meta[owner]",
        "Old": "",
        "New": "team-x",
        "Annotations": None,
    } in plan["Diff"]["Fields"]
    bigger = client.job.plan_job(
        job_id, {"Job": make_job(job_id, distinct=False, count=4)}, diff=True
    )
    count = next(f for f in bigger["Diff"]["TaskGroups"][0]["Fields"] if f["Name"] == "Count")
    assert (count["Old"], count["New"], count["Annotations"]) == ("3", "4", ["forces create"])


# -- placement ---------------------------------------------------------------------------------
def test_distinct_property_places_one_allocation_per_zone(client, job_id):
    register(client, job_id, {"Job": make_job(job_id)})
    allocs = live(client, job_id)
    assert len(allocs) == 3
    zones = [client.node.get_node(a["NodeID"])["Datacenter"] for a in allocs]
    assert sorted(zones) == list(ZONES)
    assert sorted(a["Name"] for a in allocs) == [f"{job_id}.app[{i}]" for i in range(3)]


def test_count_above_zones_fails_placement_in_plan_and_register(client, job_id):
    plan = client.job.plan_job(job_id, {"Job": make_job(job_id, count=4)}, diff=True)
    failed = plan["FailedTGAllocs"]["app"]
    assert failed["NodesEvaluated"] == 3 and failed["NodesFiltered"] == 3
    assert failed["NodesAvailable"] == {z: 1 for z in ZONES}
    assert all(
        k.startswith("distinct_property: ${node.datacenter}=") for k in failed["ConstraintFiltered"]
    )
    assert plan["Annotations"]["DesiredTGUpdates"]["app"]["Place"] == 4

    reg = register(client, job_id, {"Job": make_job(job_id, count=4)})
    ev = client.evaluation.get_evaluation(reg["EvalID"])
    assert ev["Status"] == "complete"
    assert ev["FailedTGAllocs"]["app"]["ConstraintFiltered"]
    assert ev["BlockedEval"]
    # A later evaluation (the deployment watcher's, on health changes) blocks anew and the
    # newer blocked eval replaces the older one (nomad/blocked_evals.go): one stays blocked.
    assert client.evaluation.get_evaluation(ev["BlockedEval"])["Status"] in ("blocked", "canceled")
    assert len([e for e in client.job.get_evaluations(job_id) if e["Status"] == "blocked"]) == 1
    assert len(live(client, job_id)) == 3
    assert client.job.get_summary(job_id)["Summary"]["app"]["Queued"] == 1


def test_resources_exhaust_nodes(client, job_id):
    plan = client.job.plan_job(job_id, {"Job": make_job(job_id, count=1, cpu=50_000)})
    failed = plan["FailedTGAllocs"]["app"]
    assert failed["NodesExhausted"] == 3
    assert failed["DimensionExhausted"] == {"cpu": 3}


def test_constraints_filter_nodes(client, job_id):
    pinned = make_job(
        job_id,
        count=1,
        distinct=False,
        constraints=[
            {"LTarget": "${meta.zone}", "Operand": "=", "RTarget": "zone-b"},
            {"LTarget": "${attr.cpu.arch}", "Operand": "regexp", "RTarget": "^amd"},
            {"LTarget": "${attr.nomad.version}", "Operand": "version", "RTarget": ">= 1.6"},
        ],
    )
    register(client, job_id, {"Job": pinned})
    (alloc,) = live(client, job_id)
    assert alloc["NodeName"] == "zone-b-1"
    nowhere = make_job(
        job_id,
        count=1,
        distinct=False,
        constraints=[{"LTarget": "${attr.kernel.name}", "Operand": "=", "RTarget": "windows"}],
    )
    failed = client.job.plan_job(job_id, {"Job": nowhere})["FailedTGAllocs"]["app"]
    assert failed["ConstraintFiltered"] == {"${attr.kernel.name} = windows": 3}


def test_stale_check_and_set_is_refused_like_nomad(client, job_id):
    first = register(
        client, job_id, {"Job": make_job(job_id), "EnforceIndex": True, "JobModifyIndex": 0}
    )
    index = first["JobModifyIndex"]
    with pytest.raises(nex.BaseNomadException) as exc:
        register(
            client, job_id, {"Job": make_job(job_id), "EnforceIndex": True, "JobModifyIndex": 0}
        )
    assert exc.value.nomad_resp.status_code == 500
    assert "Enforcing job modify index 0: job already exists" in exc.value.nomad_resp.text
    register(
        client,
        job_id,
        {
            "Job": make_job(job_id, env={"MODE": "two"}),
            "EnforceIndex": True,
            "JobModifyIndex": index,
        },
    )
    current = client.job.get_job(job_id)["JobModifyIndex"]
    with pytest.raises(nex.BaseNomadException) as exc:
        register(
            client,
            job_id,
            {
                "Job": make_job(job_id, env={"MODE": "three"}),
                "EnforceIndex": True,
                "JobModifyIndex": index,
            },
        )
    assert exc.value.nomad_resp.status_code == 500
    # Exactly the RPC error's text: no go-multierror wrapping (nomad/job_endpoint.go Register).
    assert exc.value.nomad_resp.text == (
        f"Enforcing job modify index {index}: job exists with "
        f"conflicting job modify index: {current}"
    )
    with pytest.raises(nex.BaseNomadException) as exc:
        register(
            client,
            job_id + "-x",
            {"Job": make_job(job_id + "-x"), "EnforceIndex": True, "JobModifyIndex": 5},
        )
    assert "Enforcing job modify index 5: job does not exist" in exc.value.nomad_resp.text


def test_invalid_job_is_refused_with_multierror_text(client, job_id):
    bad = make_job(job_id)
    bad["TaskGroups"][0]["Services"][0]["Name"] = "not_valid.name"
    problems = jobcheck.check_job(bad)
    assert problems, "jobcheck should reject an invalid service name"
    with pytest.raises(nex.BaseNomadException) as exc:
        register(client, job_id, {"Job": bad})
    assert exc.value.nomad_resp.status_code == 500
    expected = jobcheck.nomad_error_text(problems)
    if nomad_jobspec.binary() is not None:  # then the stand-in answers in Nomad's own words
        expected = nomad_jobspec.validate(bad)[1]
    assert exc.value.nomad_resp.text == expected
    assert "Service name must be valid per RFC 1123" in expected
    with pytest.raises(nex.BaseNomadException):
        client.job.plan_job(job_id, {"Job": bad})
    with pytest.raises(nex.URLNotFoundNomadException):
        client.job.get_job(job_id)


def test_http_errors(cluster, client, job_id, caplog):
    base = cluster.nomad_addr
    with pytest.raises(nex.BadRequestNomadException) as exc:
        register(client, "other", {"Job": make_job(job_id)})
    assert exc.value.nomad_resp.text == "Job ID does not match name"
    r = requests.post(f"{base}/v1/jobs", data="{not json", timeout=5)
    assert r.status_code == 400
    r = requests.post(f"{base}/v1/jobs", json={"NotAJob": {}}, timeout=5)
    assert (r.status_code, r.text) == (400, "Job must be specified")
    with pytest.raises(nex.URLNotFoundNomadException) as exc:
        client.job.get_job("no-such-job")
    assert exc.value.nomad_resp.text == "job not found"
    assert "no-such-job" not in client.job
    r = requests.delete(f"{base}/v1/jobs", timeout=5)
    assert r.status_code == 405
    if cluster.standin is not None:
        with caplog.at_level(logging.WARNING, logger="standin.nomad"):
            r = requests.get(f"{base}/v1/operator/raft/configuration", timeout=5)
        assert r.status_code == 501
        assert "/v1/operator/raft/configuration" in caplog.text
    r = requests.get(f"{base}/v1/jobs", timeout=5)
    assert r.headers["X-Nomad-Index"].isdigit()


# -- nodes -------------------------------------------------------------------------------------
def test_nodes_list_and_detail(client, standin):
    nodes = client.nodes.get_nodes()
    assert sorted(n["Name"] for n in nodes) == [f"{z}-1" for z in ZONES]
    assert all("Meta" not in n and "Attributes" not in n for n in nodes)
    assert len({n["Address"] for n in nodes}) == 3
    detail = client.node.get_node(nodes[0]["ID"])
    assert detail["Meta"]["zone"] == detail["Datacenter"]
    assert detail["Attributes"]["kernel.name"] == "linux"
    assert detail["Attributes"]["unique.network.ip-address"] == detail["HTTPAddr"].split(":")[0]
    assert (detail["Status"], detail["SchedulingEligibility"], detail["NodePool"]) == (
        "ready",
        "eligible",
        "default",
    )
    assert client.regions.get_regions() == ["global"]
    assert [ns["Name"] for ns in client.namespaces.get_namespaces()] == ["default"]


def test_same_seed_gives_same_cluster(standin_factory):
    a, b = standin_factory(seed=7), standin_factory(seed=7)
    ids = []
    for s in (a, b):
        c = nomad.Nomad(host="127.0.0.1", port=s.nomad_port, timeout=5)
        register(c, "det", {"Job": make_job("det")})
        allocs = sorted(c.job.get_allocations("det"), key=lambda x: x["Name"])
        ports = sorted(
            (
                x["NodeName"],
                json.dumps(
                    c.allocation.get_allocation(x["ID"])["AllocatedResources"]["Shared"]["Ports"]
                ),
            )
            for x in allocs
        )
        ids.append(
            ([n["ID"] for n in c.nodes.get_nodes()], [(x["ID"], x["Name"]) for x in allocs], ports)
        )
    # Which of equal nodes gets which instance is Nomad's shuffle, seeded by the evaluation ID
    # (scheduler/util.go shuffleNodes): not the stand-in's to fix when nomad-sched decides.
    assert ids[0] == ids[1]


# -- allocations, Consul and DNS ----------------------------------------------------------------
def test_services_reach_consul_and_dns(cluster, client, job_id):
    register(client, job_id, {"Job": make_job(job_id)})
    poll(lambda: len([a for a in live(client, job_id) if a["ClientStatus"] == "running"]) == 3)
    expected = set()
    for stub in live(client, job_id):
        alloc = client.allocation.get_allocation(stub["ID"])
        (port,) = alloc["AllocatedResources"]["Shared"]["Ports"]
        assert port["Label"] == "http" and 20000 <= port["Value"] <= 32000 and port["To"] == 8080
        node = client.node.get_node(alloc["NodeID"])
        expected.add((node["HTTPAddr"].split(":")[0], port["Value"], node["Datacenter"]))
    c = consul.Consul(
        host=cluster.consul_host, port=cluster.consul_port, token=cluster.consul_token
    )
    _, entries = poll(
        lambda: (r := c.health.service(f"{job_id}-api", passing=True)) and len(r[1]) == 3 and r
    )
    got = {
        (e["Service"]["Address"], e["Service"]["Port"], e["Service"]["Tags"][1]) for e in entries
    }
    assert got == expected
    assert all(e["Service"]["ID"].startswith("_nomad-task-") for e in entries)
    assert all(e["Service"]["Tags"][0] == "v1" for e in entries)

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [cluster.dns_host]
    resolver.port = cluster.dns_port
    answer = resolver.resolve(f"{job_id}-api.service.consul", "SRV", lifetime=3)
    assert {r.port for r in answer} == {p for _, p, _ in expected}
    tagged = resolver.resolve(f"zone-b.{job_id}-api.service.consul", "SRV", lifetime=3)
    assert len(tagged) == 1


def test_stop_and_purge_job(cluster, client, job_id):
    register(client, job_id, {"Job": make_job(job_id)})
    c = consul.Consul(
        host=cluster.consul_host, port=cluster.consul_port, token=cluster.consul_token
    )
    poll(lambda: len(c.health.service(f"{job_id}-api")[1]) == 3)
    client.job.deregister_job(job_id)
    job = poll(lambda: (j := client.job.get_job(job_id))["Status"] == "dead" and j)
    assert job["Stop"] is True
    allocs = client.job.get_allocations(job_id)
    assert allocs and all(a["DesiredStatus"] == "stop" for a in allocs)
    poll(lambda: c.health.service(f"{job_id}-api")[1] == [])
    client.job.deregister_job(job_id, purge=True)
    with pytest.raises(nex.URLNotFoundNomadException):
        client.job.get_job(job_id)


def test_destructive_update_replaces_allocations_and_moves_services(
    cluster, client, job_id, standin
):
    fast = {
        "MaxParallel": 3,
        "MinHealthyTime": 1 * SEC,
        "HealthyDeadline": 60 * SEC,
        "ProgressDeadline": 120 * SEC,
    }
    register(client, job_id, {"Job": make_job(job_id, update=fast)})
    before = {a["ID"] for a in live(client, job_id)}
    c = consul.Consul(host=cluster.consul_host, port=cluster.consul_port)
    ids_before = {e["Service"]["ID"] for e in c.health.service(f"{job_id}-api")[1]}
    register(client, job_id, {"Job": make_job(job_id, update=fast, env={"MODE": "x"})})
    after = {a["ID"] for a in live(client, job_id)}
    assert len(after) == 3 and not after & before
    old = [a for a in client.job.get_allocations(job_id) if a["ID"] in before]
    assert all(a["DesiredStatus"] == "stop" and a["ClientStatus"] == "complete" for a in old)
    ids_after = {e["Service"]["ID"] for e in c.health.service(f"{job_id}-api")[1]}
    assert len(ids_after) == 3 and not ids_after & ids_before
    assert all(any(alloc in sid for alloc in after) for sid in ids_after)

    # An in-place update (tags only) keeps the allocations and re-syncs the services.
    register(client, job_id, {"Job": make_job(job_id, update=fast, env={"MODE": "x"}, tags=["v2"])})
    assert {a["ID"] for a in live(client, job_id)} == after
    tags = [e["Service"]["Tags"] for e in c.health.service(f"{job_id}-api")[1]]
    assert tags == [["v2"]] * 3


def test_deployment_becomes_successful(client, job_id):
    reg = register(client, job_id, {"Job": make_job(job_id)})
    dep = client.job.get_deployment(job_id)
    assert dep["JobVersion"] == 0 and dep["TaskGroups"]["app"]["DesiredTotal"] == 3
    assert client.evaluation.get_evaluation(reg["EvalID"])["DeploymentID"] == dep["ID"]
    done = poll(
        lambda: (d := client.deployment.get_deployment(dep["ID"]))["Status"] == "successful" and d,
        timeout=30,
    )
    assert done["StatusDescription"] == "Deployment completed successfully"
    assert done["TaskGroups"]["app"]["HealthyAllocs"] == 3
    assert all(a["DeploymentStatus"]["Healthy"] is True for a in live(client, job_id))
    assert client.job.get_job(job_id)["Stable"] is True


def test_rolling_update_respects_max_parallel(client, job_id, standin):
    register(client, job_id, {"Job": make_job(job_id)})
    poll(lambda: client.job.get_deployment(job_id)["Status"] == "successful", timeout=10)
    register(client, job_id, {"Job": make_job(job_id, env={"MODE": "two"})})
    seen_versions = []
    deadline = time.monotonic() + 10
    while client.job.get_deployment(job_id)["Status"] == "running":
        new = [a for a in live(client, job_id) if a["JobVersion"] == 1]
        unhealthy_new = [a for a in new if not (a["DeploymentStatus"] or {}).get("Healthy")]
        assert len(unhealthy_new) <= 1  # max_parallel = 1
        seen_versions.append(len(new))
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert client.job.get_deployment(job_id)["Status"] == "successful"
    assert 1 in seen_versions  # the rollout went through a mixed state
    assert {a["JobVersion"] for a in live(client, job_id)} == {1}


def test_never_healthy_job_keeps_deployment_running_then_fails(cluster, client, job_id, standin):
    standin.nomad.never_healthy(job_id)
    update = {
        "MaxParallel": 1,
        "MinHealthyTime": 1 * SEC,
        "HealthyDeadline": 10 * SEC,
        "ProgressDeadline": 30 * SEC,
    }  # x0.02: 0.02s, 0.2s, 0.6s
    register(client, job_id, {"Job": make_job(job_id, update=update)})
    c = consul.Consul(host=cluster.consul_host, port=cluster.consul_port)
    entries = c.health.service(f"{job_id}-api")[1]
    assert entries and all(
        chk["Status"] == "critical" for e in entries for chk in e["Checks"] if chk["ServiceID"]
    )
    assert c.health.service(f"{job_id}-api", passing=True)[1] == []
    time.sleep(0.1)
    assert client.job.get_deployment(job_id)["Status"] == "running"
    dep = poll(
        lambda: (d := client.job.get_deployment(job_id))["Status"] == "failed" and d, timeout=10
    )
    assert dep["StatusDescription"] == "Failed due to progress deadline"
    assert dep["TaskGroups"]["app"]["HealthyAllocs"] == 0
    assert client.job.get_job(job_id)["Stable"] is False


def test_drop_node_marks_allocations_lost(cluster, client, job_id, standin):
    register(client, job_id, {"Job": make_job(job_id)})
    c = consul.Consul(host=cluster.consul_host, port=cluster.consul_port)
    poll(lambda: len(c.health.service(f"{job_id}-api")[1]) == 3)
    standin.nomad.drop_node("zone-b-1")
    allocs = client.job.get_allocations(job_id)
    lost = [a for a in allocs if a["NodeName"] == "zone-b-1"]
    assert [a["ClientStatus"] for a in lost] == ["lost"]
    assert [n["Status"] for n in client.nodes.get_nodes() if n["Name"] == "zone-b-1"] == ["down"]
    nodes = {e["Node"]["Node"] for e in c.health.service(f"{job_id}-api")[1]}
    assert nodes == {"zone-a-1", "zone-c-1"}
    # distinct_property allows no second allocation in zone-a or zone-c: the replacement waits.
    evals = [e for e in client.job.get_evaluations(job_id) if e["TriggeredBy"] == "node-update"]
    assert evals and evals[-1]["FailedTGAllocs"]["app"]["ConstraintFiltered"]
    assert len(live(client, job_id)) == 2
    standin.nomad.restore_node("zone-b-1")
    back = poll(lambda: len(live(client, job_id)) == 3 and live(client, job_id))
    replacement = [a for a in back if a["NodeName"] == "zone-b-1"]
    assert replacement and replacement[0]["ID"] != lost[0]["ID"]


# -- ACL -------------------------------------------------------------------------------------
def test_acl_token_required(standin_factory):
    s = standin_factory(nomad_acl_token="s3cret")
    anonymous = nomad.Nomad(host="127.0.0.1", port=s.nomad_port, timeout=5)
    with pytest.raises(nex.URLNotAuthorizedNomadException) as exc:
        anonymous.jobs.get_jobs()
    assert exc.value.nomad_resp.status_code == 403
    assert exc.value.nomad_resp.text == "Permission denied"
    wrong = nomad.Nomad(host="127.0.0.1", port=s.nomad_port, timeout=5, token="nope")
    with pytest.raises(nex.URLNotAuthorizedNomadException) as exc:
        wrong.jobs.get_jobs()
    # nomad/auth/auth.go: an unknown token fails authentication -> "Permission denied".
    assert exc.value.nomad_resp.text == "Permission denied"
    good = nomad.Nomad(host="127.0.0.1", port=s.nomad_port, timeout=5, token="s3cret")
    assert good.jobs.get_jobs() == []
    r = requests.get(
        f"{s.nomad_addr}/v1/jobs", headers={"Authorization": "Bearer s3cret"}, timeout=5
    )
    assert r.status_code == 200


# -- faults ------------------------------------------------------------------------------------
def test_nth_call_fault(cluster, client, standin):
    standin.faults.add(
        service="nomad",
        kind="status",
        status=500,
        body="boom",
        method="GET",
        path_prefix="/v1/jobs",
        nth=2,
    )
    client.jobs.get_jobs()
    with pytest.raises(nex.BaseNomadException) as exc:
        client.jobs.get_jobs()
    assert (exc.value.nomad_resp.status_code, exc.value.nomad_resp.text) == (500, "boom")
    client.jobs.get_jobs()
    assert standin.faults.count("nomad", "GET", "/v1/jobs") == 3


def test_reset_fault_drops_the_connection(cluster, standin):
    standin.faults.add(service="nomad", kind="reset", times=1)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{cluster.nomad_addr}/v1/jobs", timeout=5)
    assert requests.get(f"{cluster.nomad_addr}/v1/jobs", timeout=5).status_code == 200


def test_latency_and_write_counting(cluster, client, job_id, standin):
    standin.faults.latency["nomad"] = 0.15
    t0 = time.monotonic()
    client.jobs.get_jobs()
    assert time.monotonic() - t0 >= 0.15
    standin.faults.clear()
    t0 = time.monotonic()
    client.jobs.get_jobs()
    assert time.monotonic() - t0 < 0.15
    writes = standin.faults.calls["nomad POST"]
    register(client, job_id, {"Job": make_job(job_id)})
    assert standin.faults.calls["nomad POST"] == writes + 1


def test_consul_faults_and_fraction(cluster, standin):
    standin.faults.add(service="consul", kind="status", status=503, every=2)
    c = consul.Consul(host=cluster.consul_host, port=cluster.consul_port)
    c.kv.put("a", "1")
    with pytest.raises(consul.ConsulException):
        c.kv.put("a", "2")
    standin.faults.clear()
    rule = standin.faults.add(service="nomad", kind="status", fraction=0.5)
    codes = [
        requests.get(f"{cluster.nomad_addr}/v1/regions", timeout=5).status_code for _ in range(40)
    ]
    assert 5 < codes.count(500) < 35 and rule.fired == codes.count(500)


def test_control_api_drives_an_out_of_process_standin(cluster, standin):
    base = cluster.nomad_addr
    r = requests.post(
        f"{base}/_standin/faults",
        timeout=5,
        json={"service": "nomad", "kind": "status", "status": 502, "times": 1},
    )
    assert r.status_code == 200 and r.json()["rule"]["status"] == 502
    assert requests.get(f"{base}/v1/regions", timeout=5).status_code == 502
    assert requests.get(f"{base}/v1/regions", timeout=5).status_code == 200
    calls = requests.get(f"{base}/_standin/calls", timeout=5).json()["calls"]
    assert calls["nomad GET"] == 2  # control requests are not counted
    requests.post(f"{base}/_standin/faults", json={"kind": "acl"}, timeout=5)
    assert requests.get(f"{base}/v1/regions", timeout=5).status_code == 403
    assert requests.delete(f"{base}/_standin/faults", timeout=5).status_code == 200
    assert requests.get(f"{base}/v1/regions", timeout=5).status_code == 200
    r = requests.post(f"{base}/_standin/faults", json={"kind": "nonsense"}, timeout=5)
    assert r.status_code == 400
    assert requests.post(f"{base}/_standin/drop_node/zone-a-1", timeout=5).status_code == 200
    assert standin.nomad.node_by_name("zone-a-1")["Status"] == "down"


def test_blocking_query_returns_on_change(cluster, client, job_id):
    index = int(requests.get(f"{cluster.nomad_addr}/v1/jobs", timeout=5).headers["X-Nomad-Index"])
    threading.Timer(
        0.2, lambda: client.job.register_job(job_id, {"Job": make_job(job_id, count=1)})
    ).start()
    t0 = time.monotonic()
    r = requests.get(
        f"{cluster.nomad_addr}/v1/jobs",
        params={"index": index, "wait": "5s"},
        headers={"X-Nomad-Token": cluster.nomad_token or ""},
        timeout=10,
    )
    assert 0.15 < time.monotonic() - t0 < 4
    assert int(r.headers["X-Nomad-Index"]) > index
    assert job_id in json.dumps(r.json())


def test_spread_targets_and_distinct_hosts(standin_factory):
    s = standin_factory(nodes_per_zone=2)
    c = nomad.Nomad(host="127.0.0.1", port=s.nomad_port, timeout=5)
    spread = make_job("spread", count=4, distinct=False)
    spread["TaskGroups"][0]["Spreads"] = [
        {
            "Attribute": "${node.datacenter}",
            "Weight": 100,
            "SpreadTarget": [
                {"Value": "zone-a", "Percent": 50},
                {"Value": "zone-b", "Percent": 50},
            ],
        }
    ]
    register(c, "spread", {"Job": spread})
    zones = sorted(a["NodeName"][:6] for a in live(c, "spread"))
    assert zones == ["zone-a", "zone-a", "zone-b", "zone-b"]

    hosts = make_job("hosts", count=6, distinct=False)
    hosts["Constraints"] = [{"Operand": "distinct_hosts", "RTarget": "true"}]
    register(c, "hosts", {"Job": hosts})
    assert len({a["NodeID"] for a in live(c, "hosts")}) == 6
    hosts["TaskGroups"][0]["Count"] = 7
    failed = c.job.plan_job("hosts", {"Job": hosts})["FailedTGAllocs"]["app"]
    assert failed["ConstraintFiltered"] == {"distinct_hosts": 6}


# -- templates: what the client renders --------------------------------------------------------
def with_template(job: dict, text: str, mode: str = "restart") -> dict:
    tmpl = {
        "EmbeddedTmpl": text,
        "DestPath": "local/deps.env",
        "Envvars": mode == "restart",
        "ChangeMode": mode,
    }
    if mode == "signal":
        tmpl["ChangeSignal"] = "SIGHUP"
    job["TaskGroups"][0]["Tasks"][0]["Templates"] = [tmpl]
    return job


def test_missing_key_holds_the_task_pending(cluster, client, job_id, standin):
    tmpl = '{{ with key "cfg/%s" | parseJSON }}V={{ .v }}{{ end }}' % job_id
    register(client, job_id, {"Job": with_template(make_job(job_id, count=1), tmpl)})
    time.sleep(0.1)
    (alloc,) = live(client, job_id)
    assert alloc["ClientStatus"] == "pending"
    state = alloc["TaskStates"]["app"]
    assert state["State"] == "pending"
    assert any(e["DisplayMessage"] == f"Missing: kv.block(cfg/{job_id})" for e in state["Events"])
    c = consul.Consul(host=cluster.consul_host, port=cluster.consul_port)
    assert c.health.service(f"{job_id}-api")[1]  # group services register before tasks start
    c.kv.put(f"cfg/{job_id}", '{"v": 1}')
    poll(lambda: live(client, job_id)[0]["ClientStatus"] == "running")


def test_nomad_variable_blocks_until_written(client, job_id, standin):
    tmpl = '{{ with nomadVar "nomad/jobs/%s" }}P={{ .password }}{{ end }}' % job_id
    register(client, job_id, {"Job": with_template(make_job(job_id, count=1), tmpl)})
    time.sleep(0.1)
    assert live(client, job_id)[0]["ClientStatus"] == "pending"
    path = f"nomad/jobs/{job_id}"
    out = client.variable.create_variable(path, {"Items": {"password": "pw"}})
    assert out["Path"] == path and out["Items"] == {"password": "pw"}
    poll(lambda: live(client, job_id)[0]["ClientStatus"] == "running")
    assert client.variable.get_variable(path)["Items"] == {"password": "pw"}
    assert [v["Path"] for v in client.variables.get_variables(prefix="nomad/jobs/")] == [path]
    with pytest.raises(nex.VariableConflict):
        client.variable.create_variable(path, {"Items": {"password": "x"}}, cas=1)
    with pytest.raises(nex.URLNotFoundNomadException):
        client.variable.get_variable("nomad/jobs/none")


def test_dependency_change_restarts_only_dependent_tasks(client, standin):
    fast = {
        "MaxParallel": 3,
        "MinHealthyTime": SEC,
        "HealthyDeadline": 60 * SEC,
        "ProgressDeadline": 120 * SEC,
    }
    register(client, "db", {"Job": make_job("db", update=fast)})
    # Checks start critical; the templates below read passing instances only.
    poll(lambda: len(standin.consul.healthy_instances("db-api")) == 3)
    near = (
        '{{ with service "db-api~_agent" }}{{ with index . 0 }}'
        "DB={{ .Address }}:{{ .Port }}{{ end }}{{ end }}"
    )
    register(client, "web", {"Job": with_template(make_job("web", distinct=True), near)})
    register(client, "other", {"Job": make_job("other")})
    register(
        client,
        "sig",
        {
            "Job": with_template(
                make_job("sig"), '{{ range service "db-api" }}{{ .Port }}{{ end }}', mode="signal"
            )
        },
    )

    def restarts(job):
        return sum(a["TaskStates"]["app"]["Restarts"] for a in live(client, job))

    poll(lambda: all(a["ClientStatus"] == "running" for a in live(client, "web")))
    time.sleep(0.3)
    assert restarts("web") == 0
    # Replace every db allocation: new ports, so every web task re-renders and restarts.
    register(client, "db", {"Job": make_job("db", update=fast, env={"MODE": "two"})})
    poll(lambda: restarts("web") == 3)
    events = [e["Type"] for a in live(client, "web") for e in a["TaskStates"]["app"]["Events"]]
    assert "Restart Signaled" in events
    # change_mode signal re-renders without a restart.
    poll(
        lambda: (
            "Signaling"
            in [e["Type"] for a in live(client, "sig") for e in a["TaskStates"]["app"]["Events"]]
        )
    )
    assert restarts("other") == 0 and restarts("sig") == 0


def test_deleting_a_missing_job_is_a_quiet_200(cluster, job_id):
    """nomad/job_endpoint.go Deregister returns nil for a job that does not exist."""
    resp = requests.delete(
        f"{cluster.nomad_addr}/v1/job/{job_id}",
        timeout=5,
        headers={"X-Nomad-Token": cluster.nomad_token or ""},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["EvalID"] == ""
    assert (
        requests.get(
            f"{cluster.nomad_addr}/v1/job/{job_id}",
            timeout=5,
            headers={"X-Nomad-Token": cluster.nomad_token or ""},
        ).status_code
        == 404
    )


def test_latest_deployment_of_a_job_without_one_is_200_null(client, cluster, job_id):
    """A batch job never gets a deployment: Job.LatestDeployment answers a nil deployment."""
    batch = make_job(job_id, count=1, distinct=False)
    batch["Type"] = "batch"
    del batch["TaskGroups"][0]["Update"]
    del batch["TaskGroups"][0]["Services"]
    client.job.register_job(job_id, {"Job": batch})
    resp = requests.get(
        f"{cluster.nomad_addr}/v1/job/{job_id}/deployment",
        timeout=5,
        headers={"X-Nomad-Token": cluster.nomad_token or ""},
    )
    assert (resp.status_code, resp.text) == (200, "null")


def test_plan_diff_is_contextual(client, job_id):
    """The plan endpoint diffs with contextual=true (nomad/job_endpoint.go Resolution,
    nomad/structs/diff.go): an edited object also lists its unchanged fields as Type None."""
    client.job.register_job(job_id, {"Job": make_job(job_id, tags=["v1", "blue"])})
    diff = client.job.plan_job(job_id, {"Job": make_job(job_id, tags=["v1", "green"])}, diff=True)[
        "Diff"
    ]
    (group,) = diff["TaskGroups"]
    (service,) = [o for o in group["Objects"] if o["Name"] == "Service"]
    assert service["Type"] == "Edited"
    fields = {f["Name"]: (f["Type"], f["Old"], f["New"]) for f in service["Fields"]}
    assert fields["Name"] == ("None", f"{job_id}-api", f"{job_id}-api")
    assert fields["PortLabel"] == ("None", "http", "http")
    (tags,) = [o for o in service["Objects"] if o["Name"] == "Tags"]
    assert sorted((f["Type"], f["Old"], f["New"]) for f in tags["Fields"]) == [
        ("Added", "", "green"),
        ("Deleted", "blue", ""),
        ("None", "v1", "v1"),
    ]
    # Unchanged objects stay out, and so do unchanged top-level fields.
    assert not [o for o in group["Objects"] if o["Type"] == "None"]
    assert not [f for f in group.get("Fields") or [] if f["Type"] == "None"]


# -- asynchrony, first check runs, the agent's view (nomad/job_endpoint.go, scheduler/) ----------
def test_register_returns_before_the_scheduler_runs(standin_factory):
    # The scheduler runs only when the test says so, and the first deployment can end only by
    # being cancelled: its allocations stay pending and no deadline runs out during the test
    # (with the default 1/50 clock a busy machine let it succeed first).
    s = standin_factory(eval_delay=3600, start_delay=3600, time_scale=1.0)
    c = nomad.Nomad(host="127.0.0.1", port=s.nomad_port, timeout=5)
    reg = c.job.register_job("web", {"Job": make_job("web")})
    assert c.evaluation.get_evaluation(reg["EvalID"])["Status"] == "pending"
    assert c.job.get_deployment("web") is None  # a new job: no deployment yet
    assert c.job.get_allocations("web") == []
    s.nomad.run_evals()
    ev = c.evaluation.get_evaluation(reg["EvalID"])
    first = c.job.get_deployment("web")
    assert ev["Status"] == "complete" and ev["DeploymentID"] == first["ID"]
    assert first["JobVersion"] == 0 and len(c.job.get_allocations("web")) == 3

    # A change: until the scheduler runs, "the latest deployment" is still the old one.
    reg = c.job.register_job("web", {"Job": make_job("web", env={"MODE": "two"})})
    assert c.job.get_deployment("web")["ID"] == first["ID"]
    assert c.deployment.get_deployment(first["ID"])["Status"] == "running"  # not cancelled yet
    assert c.evaluation.get_evaluation(reg["EvalID"])["Status"] == "pending"
    assert c.job.get_job("web")["Version"] == 1
    s.nomad.run_evals()
    second = c.job.get_deployment("web")
    assert second["JobVersion"] == 1 and second["JobSpecModifyIndex"] == reg["JobModifyIndex"]
    assert c.deployment.get_deployment(first["ID"])["Status"] == "cancelled"


def test_purge_stops_allocations_when_its_evaluation_runs(standin_factory):
    s = standin_factory(eval_delay=3600)
    c = nomad.Nomad(host="127.0.0.1", port=s.nomad_port, timeout=5)
    c.job.register_job("web", {"Job": make_job("web")})
    s.nomad.run_evals()
    c.job.deregister_job("web", purge=True)

    def running():
        return [
            a
            for a in c.allocations.get_allocations()
            if a["JobID"] == "web" and a["DesiredStatus"] == "run"
        ]

    assert len(running()) == 3
    s.nomad.run_evals()
    assert running() == []


def test_checks_start_critical_until_their_first_run(standin_factory):
    # At time scale 1 a check's first run comes within its interval (1 h here): until then
    # Consul holds it critical, so nothing is healthy yet.
    s = standin_factory(time_scale=1.0, start_delay=0)
    c = nomad.Nomad(host="127.0.0.1", port=s.nomad_port, timeout=5)
    job = make_job("web")
    job["TaskGroups"][0]["Services"][0]["Checks"][0]["Interval"] = 3600 * SEC
    register(c, "web", {"Job": job})
    cc = consul.Consul(host="127.0.0.1", port=s.consul_port)
    entries = poll(lambda: (r := cc.health.service("web-api")[1]) and len(r) == 3 and r)
    checks = [chk for e in entries for chk in e["Checks"] if chk["ServiceID"]]
    assert len(checks) == 3
    assert all(chk["CheckID"].startswith("_nomad-check-") for chk in checks)
    assert all(chk["Status"] == "critical" for chk in checks)
    assert cc.health.service("web-api", passing=True)[1] == []


def test_checks_pass_after_their_first_run(cluster, client, job_id):
    register(client, job_id, {"Job": make_job(job_id)})
    c = consul.Consul(
        host=cluster.consul_host, port=cluster.consul_port, token=cluster.consul_token
    )
    poll(lambda: len(c.health.service(f"{job_id}-api", passing=True)[1]) == 3, timeout=10)


def test_agent_lists_the_instances_nomad_registered_through_it(standin_factory):
    s = standin_factory()
    c = nomad.Nomad(host="127.0.0.1", port=s.nomad_port, timeout=5)
    job = make_job("web")
    # The job's service meta, interpolated, with external-source = nomad over any of its own
    # (command/agent/consul/service_client.go sets it after copying the service's meta).
    job["TaskGroups"][0]["Services"][0]["Meta"] = {
        "owner": "team-a",
        "zone": "${node.datacenter}",
        "external-source": "not-nomad",
    }
    register(c, "web", {"Job": job})
    cc = consul.Consul(host="127.0.0.1", port=s.consul_port)
    poll(lambda: len(cc.catalog.service("web-api")[1]) == 3)
    mine = {sid: svc for sid, svc in cc.agent.services().items() if svc["Service"] == "web-api"}
    assert len(mine) == 3
    assert all(sid.startswith("_nomad-task-") for sid in mine)
    assert sorted(svc["Meta"]["zone"] for svc in mine.values()) == list(ZONES)
    assert all(
        svc["Meta"] | {"zone": ""} == {"owner": "team-a", "zone": "", "external-source": "nomad"}
        for svc in mine.values()
    )
    assert all(chk["CheckID"].startswith("_nomad-check-") for chk in cc.agent.checks().values())
    # Deregistering one through the agent removes it, as a real agent does (until Nomad
    # re-syncs): exactly what nomadgen must never do.
    victim = sorted(mine)[0]
    cc.agent.service.deregister(victim)
    assert victim not in cc.agent.services()
    assert victim not in {e["ServiceID"] for e in cc.catalog.service("web-api")[1]}
    assert len(cc.catalog.service("web-api")[1]) == 2
