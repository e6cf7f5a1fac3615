"""Stateless per-zone sets against the stand-in, which decides placements with Nomad 1.5.8's own
scheduler (nomad-sched) where the binary is: a set that fills every zone is one task group per
zone, so it scales in place; a set smaller than its zones is one group and still scales; moving
between the two forms is a group replacement that plan names and submit converges."""

from __future__ import annotations

import copy
import json
from collections import Counter

from tests.test_e2e import backends, cli, manifest_copy

ZONES = ("zone-a", "zone-b", "zone-c")


def _running(cluster, job: str) -> dict[str, tuple[str, str]]:
    """alloc ID -> (group, zone) of the job's allocations that run, once every one is healthy."""
    s = cluster.standin
    with s.nomad.lock:
        allocs = [a for a in s.nomad.allocs.values() if a.job_id == job and a.desired == "run"]
        return {a.id: (a.group, a.node["Datacenter"]) for a in allocs if a.client == "running"}


def _settle(cluster, job: str, want: int) -> dict[str, tuple[str, str]]:
    s = cluster.standin
    s.wait_for(
        lambda: (
            len(_running(cluster, job)) == want
            and len([a for a in s.nomad.allocs.values() if a.job_id == job and a.desired == "run"])
            == want
        ),
        timeout=60,
    )
    return _running(cluster, job)


def _submit(cluster, tmp_path, doc: dict) -> str:
    res = cli(cluster, "submit", str(manifest_copy(tmp_path, doc)))
    assert res.exit_code == 0, res.output
    return res.output


def test_per_zone_one_to_two_on_a_stateless_set_is_in_place(cluster, tmp_path):
    _submit(cluster, tmp_path, {"web": {}})
    before = _settle(cluster, "web", 3)
    assert sorted(before.values()) == [(f"web-{z}", z) for z in ZONES]
    plan = cli(cluster, "plan", str(manifest_copy(tmp_path, {"web": {"per_zone": 2}})))
    assert plan.exit_code == 1 and "cannot be placed" not in plan.stdout, plan.stdout
    for z in ZONES:
        assert f"~ group web-{z} (1 create, 1 in-place update)" in plan.stdout, plan.stdout
    _submit(cluster, tmp_path, {"web": {"per_zone": 2}})
    after = _settle(cluster, "web", 6)
    assert before.keys() <= after.keys()  # every instance kept its allocation
    new = [after[a] for a in after.keys() - before.keys()]
    assert sorted(new) == [(f"web-{z}", z) for z in ZONES]  # one new instance per zone


def test_the_single_group_form_cannot_scale_a_full_set_in_place(cluster, tmp_path):
    """Known-bad, why zone groups: the same scale-up of the single-group form (every zone full,
    distinct_property) is refused by Nomad's scheduler, which counts the allocations it updates
    in place twice (scheduler/propertyset.go)."""
    _submit(cluster, tmp_path, {"web": {"count": 2}})  # the single-group form, from nomadgen
    _settle(cluster, "web", 2)
    nomad, _ = backends(cluster)
    job = nomad.job("web")
    full = copy.deepcopy(job)
    full["TaskGroups"][0]["Count"] = 3
    nomad.register(full, job["JobModifyIndex"])
    _settle(cluster, "web", 3)
    job = nomad.job("web")
    more = copy.deepcopy(job)
    g = more["TaskGroups"][0]
    g["Count"] = 6
    for c in g["Constraints"]:
        if c["Operand"] == "distinct_property":
            c["RTarget"] = "2"
    failed = nomad.plan(more).get("FailedTGAllocs") or {}
    assert "web" in failed and any(
        k.startswith("distinct_property") for k in failed["web"]["ConstraintFiltered"]
    ), failed


def test_a_set_smaller_than_its_zones_scales_and_moves_to_zone_groups(cluster, tmp_path):
    _submit(cluster, tmp_path, {"web": {"count": 1}})
    one = _settle(cluster, "web", 1)
    # A zone without an instance always has room: Nomad places the new one there, in place.
    _submit(cluster, tmp_path, {"web": {"count": 2}})
    two = _settle(cluster, "web", 2)
    assert one.keys() <= two.keys()
    assert sorted(g for g, _ in two.values()) == ["web", "web"]
    assert len({z for _, z in two.values()}) == 2  # distinct_property: one per zone

    # count 2 -> 4 over 3 zones: every zone gets an instance, so one group per zone. Plan says
    # it is a replacement; submit converges it.
    path = manifest_copy(tmp_path, {"web": {"count": 4}})
    plan = cli(cluster, "plan", str(path))
    assert plan.exit_code == 1
    assert (
        "! group web is replaced by groups web-zone-a, web-zone-b, web-zone-c: 2 instance(s) "
        "stop and 4 start (every instance restarts, none is updated in place); stateless: "
        "no data to keep"
    ) in plan.stdout, plan.stdout
    doc = json.loads(cli(cluster, "plan", str(path), "--json").stdout)
    (change,) = [j for j in doc["jobs"] if j["job"] == "web"]
    assert change["group_replacement"].startswith("group web is replaced by groups web-zone-a")
    _submit(cluster, tmp_path, {"web": {"count": 4}})
    four = _settle(cluster, "web", 4)
    assert not four.keys() & two.keys()
    assert Counter(four.values()) == Counter(
        {("web-zone-a", "zone-a"): 2, ("web-zone-b", "zone-b"): 1, ("web-zone-c", "zone-c"): 1}
    )
    # And back: one group again, a replacement too.
    res = cli(cluster, "plan", str(manifest_copy(tmp_path, {"web": {"count": 2}})))
    assert "! groups web-zone-a, web-zone-b, web-zone-c are replaced by group web:" in res.stdout
    _submit(cluster, tmp_path, {"web": {"count": 2}})
    assert sorted(g for g, _ in _settle(cluster, "web", 2).values()) == ["web", "web"]
    assert cli(cluster, "plan", str(manifest_copy(tmp_path, {"web": {"count": 2}}))).exit_code == 0


def test_a_job_rendered_before_zone_groups_moves_on_the_next_submit(cluster, tmp_path):
    """After an upgrade: `web` (per_zone 1) still runs as the single group an older nomadgen
    wrote (count 3, distinct_property, a spread). The next plan shows the replacement of its
    instances; submit converges it."""
    _submit(cluster, tmp_path, {"web": {"count": 2}})  # the single-group form, from nomadgen
    _settle(cluster, "web", 2)
    nomad, _ = backends(cluster)
    old = nomad.job("web")
    job = copy.deepcopy(old)
    job["TaskGroups"][0]["Count"] = 3
    nomad.register(job, old["JobModifyIndex"])
    before = _settle(cluster, "web", 3)
    path = manifest_copy(tmp_path, {"web": {}})
    plan = cli(cluster, "plan", str(path))
    assert (
        "! group web is replaced by groups web-zone-a, web-zone-b, web-zone-c: 3 instance(s) "
        "stop and 3 start"
    ) in plan.stdout, plan.stdout
    _submit(cluster, tmp_path, {"web": {}})
    after = _settle(cluster, "web", 3)
    assert not after.keys() & before.keys()
    assert sorted(after.values()) == [(f"web-{z}", z) for z in ZONES]
