"""The rules behind data predictions (nomadgen/data.py) and the stand-in's data identities
(dev/standin/nomad_standin/data.py), case by case, without a cluster."""

from __future__ import annotations

from types import SimpleNamespace

from nomad_standin.data import EMPTY, MIGRATED, STICKY, VOLUME, DataStore

from nomadgen import data

NODE_A = {"ID": "a", "Name": "zone-a-1"}
NODE_B = {"ID": "b", "Name": "zone-a-2"}
JOB = {"ID": "psql-app", "Namespace": "default"}


def group(disk=None, volume=None) -> dict:
    g = {"Name": "psql", "Count": 1, "Tasks": [{"Name": "psql"}]}
    if disk is not None:
        g["EphemeralDisk"] = disk
    if volume is not None:
        g["Volumes"] = {"data": {"Name": "data", **volume}}
        g["Tasks"][0]["VolumeMounts"] = [{"Volume": "data", "Destination": "/d"}]
    return g


EPHEMERAL = {"Sticky": True, "Migrate": True, "SizeMB": 1024}


def first_and_replacement(g_old, g_new, node_new, down=False, index=0):
    store = DataStore()
    data_id, _, disk_id = store.attach(
        job=JOB, group=g_old, index=index, node=NODE_A, prev=None, prev_node_down=False
    )
    store.write(data_id, "marker", "x")
    prev = SimpleNamespace(node=NODE_A, data_id=data_id, disk_id=disk_id)
    new_id, origin, _ = store.attach(
        job=JOB, group=g_new, index=index, node=node_new, prev=prev, prev_node_down=down
    )
    return origin, store.read(new_id).get("marker")


def test_sticky_disk_stays_on_its_node_and_migrates_only_from_a_live_node():
    assert first_and_replacement(group(EPHEMERAL), group(EPHEMERAL), NODE_A) == (STICKY, "x")
    assert first_and_replacement(group(EPHEMERAL), group(EPHEMERAL), NODE_B) == (MIGRATED, "x")
    assert first_and_replacement(group(EPHEMERAL), group(EPHEMERAL), NODE_B, down=True) == (
        EMPTY,
        None,
    )
    sticky_only = {"Sticky": True}
    assert first_and_replacement(group(sticky_only), group(sticky_only), NODE_B) == (EMPTY, None)
    # The known-bad case: a disk that is neither sticky nor migrating is never carried over.
    assert first_and_replacement(group({}), group({}), NODE_A) == (EMPTY, None)
    # The new version's settings decide (Nomad reads the replacement's task group).
    assert first_and_replacement(group({}), group(EPHEMERAL), NODE_A) == (STICKY, "x")


def test_volumes_hold_data_per_node_or_per_allocation_index():
    host = {"Type": "host", "Source": "psql-app"}
    assert first_and_replacement(group(volume=host), group(volume=host), NODE_A) == (VOLUME, "x")
    assert first_and_replacement(group(volume=host), group(volume=host), NODE_B) == (EMPTY, None)
    csi = {"Type": "csi", "Source": "psql-app", "PerAlloc": True}
    assert first_and_replacement(group(volume=csi), group(volume=csi), NODE_B, down=True) == (
        VOLUME,
        "x",
    )
    # A volume's data is not the disk's: moving from a volume to the disk starts empty.
    assert first_and_replacement(group(EPHEMERAL, volume=host), group(EPHEMERAL), NODE_A) == (
        STICKY,
        None,
    )


def annotations(**u) -> dict:
    return {
        "psql": {
            "Ignore": 0,
            "Place": 0,
            "Migrate": 0,
            "Stop": 0,
            "InPlaceUpdate": 0,
            "DestructiveUpdate": 0,
            **u,
        }
    }


ALLOCS = [
    {
        "ID": str(i),
        "Name": f"psql-app.psql[{i}]",
        "TaskGroup": "psql",
        "NodeID": n,
        "NodeName": n,
        "DesiredStatus": "run",
        "ClientStatus": "running",
    }
    for i, n in enumerate("abc")
]
UP = {n: data.NodeView(n, True, True) for n in "abc"}


def job(g: dict, count: int = 3) -> dict:
    return {"ID": "psql-app", "TaskGroups": [dict(g, Count=count)]}


def test_predictions_from_plan_annotations():
    eph = job(group(EPHEMERAL))
    (kept,) = data.predict(
        "psql:app", eph, eph, annotations(DestructiveUpdate=1, Ignore=2), ALLOCS, UP
    )
    assert (kept.outcome, kept.instances) == (
        "kept",
        3,
    )  # the whole rollout, not just its first batch
    (inplace,) = data.predict("psql:app", eph, eph, annotations(InPlaceUpdate=3), ALLOCS, UP)
    assert inplace.outcome == "kept" and "in place" in inplace.how
    nodes = dict(UP, b=data.NodeView("b", True, False))  # b drains: the disk migrates
    outs = data.predict("psql:app", eph, eph, annotations(DestructiveUpdate=1), ALLOCS, nodes)
    assert sorted((d.outcome, d.instances) for d in outs) == [("kept", 1), ("kept", 2)]
    nodes = dict(UP, b=data.NodeView("b", False, False))  # b is down: its disk is gone
    outs = data.predict("psql:app", eph, eph, annotations(DestructiveUpdate=1), ALLOCS, nodes)
    assert sorted((d.outcome, d.instances) for d in outs) == [("kept", 2), ("lost", 1)]
    host = job(group(volume={"Type": "host", "Source": "psql-app"}))
    outs = data.predict("psql:app", host, eph, annotations(DestructiveUpdate=1), ALLOCS, UP)
    assert [(d.outcome, d.instances) for d in outs] == [("lost", 3)]
    assert "storage changes from ephemeral" in outs[0].how
    grown = job(group(EPHEMERAL), count=6)
    outs = data.predict("psql:app", grown, eph, annotations(InPlaceUpdate=3, Place=3), ALLOCS, UP)
    assert sorted((d.outcome, d.instances) for d in outs) == [("kept", 3), ("new", 3)]
    shrunk = job(group(EPHEMERAL), count=2)
    outs = data.predict("psql:app", shrunk, eph, annotations(Stop=1, InPlaceUpdate=2), ALLOCS, UP)
    assert sorted((d.outcome, d.instances) for d in outs) == [("kept", 2), ("lost", 1)]
    assert [(d.outcome, d.instances) for d in data.losses(outs)] == [("lost", 1)]
    # A rolling update waiting behind new placements: Ignore on a changed job, replaced later.
    outs = data.predict("psql:app", grown, eph, annotations(Place=3, Ignore=3), ALLOCS, UP)
    assert sorted((d.outcome, d.instances) for d in outs) == [("kept", 3), ("new", 3)]
    outs = data.predict("psql:app", eph, eph, annotations(Ignore=3), ALLOCS, UP, job_changed=False)
    assert outs == []


def sized(g: dict, memory: int) -> dict:
    g = dict(g, Tasks=[dict(g["Tasks"][0], Resources={"CPU": 500, "MemoryMB": memory})])
    return job(g)


def test_a_replacement_that_no_longer_fits_its_node_goes_elsewhere():
    """The previous node is tried first; with no room for the new resources there, another
    node gets the replacement (scheduler/stack.go): a host volume's data stays behind, a
    migrating disk follows, a sticky-only disk does not."""
    host = {"Type": "host", "Source": "psql-app"}
    old, new = sized(group(volume=host), 512), sized(group(volume=host), 1024)
    room = dict(UP, a=data.NodeView("a", True, True, room=(3000, 180)))  # 180 + 512 < 1024
    outs = data.predict("psql:app", new, old, annotations(DestructiveUpdate=1), ALLOCS, room)
    assert sorted((d.outcome, d.instances) for d in outs) == [("kept", 2), ("lost", 1)]
    assert "does not fit on a" in data.losses(outs)[0].how
    # Room enough once the old allocation's memory is freed: the same node, the data kept.
    enough = dict(UP, a=data.NodeView("a", True, True, room=(3000, 600)))
    outs = data.predict("psql:app", new, old, annotations(DestructiveUpdate=1), ALLOCS, enough)
    assert [(d.outcome, d.instances) for d in outs] == [("kept", 3)]
    eph_old, eph_new = sized(group(EPHEMERAL), 512), sized(group(EPHEMERAL), 1024)
    outs = data.predict(
        "psql:app", eph_new, eph_old, annotations(DestructiveUpdate=1), ALLOCS, room
    )
    assert sorted((d.outcome, d.instances) for d in outs) == [("kept", 1), ("kept", 2)]
    sticky = {"Sticky": True}
    st_old, st_new = sized(group(sticky), 512), sized(group(sticky), 1024)
    outs = data.predict("psql:app", st_new, st_old, annotations(DestructiveUpdate=1), ALLOCS, room)
    assert sorted((d.outcome, d.instances) for d in outs) == [("kept", 2), ("lost", 1)]


def test_a_group_that_goes_away_loses_its_instances_data():
    """A stateful set moving from one group to one group per zone: a destructive change."""
    one = job(group(EPHEMERAL))
    zoned = {
        "ID": "psql-app",
        "TaskGroups": [dict(group(EPHEMERAL), Name=f"psql-zone-{z}", Count=1) for z in "abc"],
    }
    ann = {"psql": {"Stop": 3}, **{f"psql-zone-{z}": {"Place": 1} for z in "abc"}}
    outs = data.predict("psql:app", zoned, one, ann, ALLOCS, UP)
    assert [(d.outcome, d.instances) for d in outs] == [("lost", 3)]
    assert "group psql is removed" in outs[0].how


def test_started_empty_clears_only_for_the_recorded_origin():
    empty = data.InstanceData("j.g[0]", "b2", "n", "ephemeral", data.STARTED_EMPTY, "", "b2")
    fresh = data.InstanceData("j.g[1]", "c1", "n", "ephemeral", data.FRESH, "")
    assert data.unacknowledged([empty, fresh]) == [empty]
    assert data.unacknowledged(data.acknowledged([empty, fresh], ["b2"])) == []
    # Known-bad: a record of another allocation (an earlier loss) does not clear this one.
    assert data.unacknowledged(data.acknowledged([empty, fresh], ["a1"])) == [empty]
