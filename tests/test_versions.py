"""Target Nomad version: output valid for Nomad 1.5 unless nomadgen.toml asks for more
(nomad_version), and fields newer than the target are caught by jobcheck, each with a known-bad
case; Nomad 1.5.8's own decoder confirms that every one of them is unknown to 1.5."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from nomad_jobcheck import FIELD_SINCE, OLDEST_NOMAD, check_job, newer_fields
from nomad_standin import nomadsched
from typer.testing import CliRunner

from nomadgen.cli import app
from nomadgen.errors import ConfigError
from nomadgen.hcl import to_hcl
from nomadgen.model import OLDEST_NOMAD as MODEL_OLDEST
from nomadgen.settings import load_config
from tests.nomad_tools import (
    JobspecError,
    assert_proven,
    dropped_keys,
    nomad_decode,
    nomad_parse,
    requires_nomad,
)

CASES = Path(__file__).parent / "cases"
ROOT = Path(__file__).resolve().parents[1]

# Where each component sits in a skeleton job (every component once).
SKELETON = {
    "ID": "j",
    "Periodic": {},
    "TaskGroups": [
        {
            "Name": "g",
            "Consul": {},
            "RestartPolicy": {},
            "Volumes": {"v": {}},
            "Networks": [{"DynamicPorts": [{"Label": "p"}]}],
            "Services": [
                {
                    "Name": "s",
                    "Checks": [{}],
                    "Connect": {
                        "SidecarService": {"Proxy": {"Upstreams": [{}]}},
                        "SidecarTask": {},
                        "Gateway": {"Ingress": {"TLS": {}, "Listeners": [{"Services": [{}]}]}},
                    },
                }
            ],
            "Tasks": [
                {
                    "Name": "t",
                    "Identity": {},
                    "Resources": {},
                    "LogConfig": {},
                    "Templates": [{}],
                    "Vault": {},
                    "VolumeMounts": [{}],
                    "Artifacts": [{}],
                }
            ],
        }
    ],
}
G, T = ("TaskGroups", 0), ("TaskGroups", 0, "Tasks", 0)
SVC = (*G, "Services", 0)
WHERE = {
    "Job": (),
    "PeriodicConfig": ("Periodic",),
    "TaskGroup": G,
    "Consul": (*G, "Consul"),
    "Task": T,
    "WorkloadIdentity": (*T, "Identity"),
    "Resources": (*T, "Resources"),
    "RestartPolicy": (*G, "RestartPolicy"),
    "LogConfig": (*T, "LogConfig"),
    "Template": (*T, "Templates", 0),
    "Vault": (*T, "Vault"),
    "VolumeMount": (*T, "VolumeMounts", 0),
    "VolumeRequest": (*G, "Volumes", "v"),
    "TaskArtifact": (*T, "Artifacts", 0),
    "NetworkResource": (*G, "Networks", 0),
    "Port": (*G, "Networks", 0, "DynamicPorts", 0),
    "Service": SVC,
    "ServiceCheck": (*SVC, "Checks", 0),
    "ConsulSidecarService": (*SVC, "Connect", "SidecarService"),
    "ConsulProxy": (*SVC, "Connect", "SidecarService", "Proxy"),
    "ConsulUpstream": (*SVC, "Connect", "SidecarService", "Proxy", "Upstreams", 0),
    "SidecarTask": (*SVC, "Connect", "SidecarTask"),
    "ConsulIngressService": (*SVC, "Connect", "Gateway", "Ingress", "Listeners", 0, "Services", 0),
    "ConsulGatewayTLSConfig": (*SVC, "Connect", "Gateway", "Ingress", "TLS"),
}


def _with_field(key: str) -> tuple[dict, str]:
    comp, field = key.split(".")
    job = copy.deepcopy(SKELETON)
    obj = job
    path = "Job"
    for p in WHERE[comp]:
        obj = obj[p]
        path += f"[{p}]" if isinstance(p, int) else f".{p}"
    obj[field] = "x"
    return job, f"{path}.{field}"


def test_the_oldest_supported_version_is_one_fact():
    assert OLDEST_NOMAD == MODEL_OLDEST == (1, 5)
    assert load_config(env={}).render.nomad_version == (1, 5)


@pytest.mark.parametrize("key", sorted(FIELD_SINCE))
def test_each_newer_field_is_refused_below_its_version(key):
    since = FIELD_SINCE[key]
    job, path = _with_field(key)
    below = (since[0], since[1] - 1) if since[1] else (since[0] - 1, 99)
    assert newer_fields(job, below) == [
        f"{path}: needs Nomad {since[0]}.{since[1]}; the target is Nomad {below[0]}.{below[1]}"
    ]
    assert newer_fields(job, since) == []
    assert newer_fields(job, OLDEST_NOMAD)  # and so for the default target


@requires_nomad
def test_every_newer_field_is_unknown_to_nomad_1_5():
    """Nomad 1.5.8's decoder drops each of them (so 1.5 would silently ignore it)."""
    for key in sorted(FIELD_SINCE):
        job, path = _with_field(key)
        dropped = dropped_keys(job, nomad_decode(job))
        assert any(d.startswith(path + ":") for d in dropped), key


def test_rendered_golden_jobs_need_nothing_newer_than_1_5():
    for case in sorted(p for p in CASES.iterdir() if (p / "render.json").is_file()):
        if (case / "nomadgen.toml").is_file():
            continue
        for jid, body in json.loads((case / "render.json").read_text()).items():
            assert check_job(body["Job"], nomad_version=OLDEST_NOMAD) == [], (case.name, jid)


def _render(tmp_path: Path, toml: str, *extra: str):
    cfg = tmp_path / "nomadgen.toml"
    cfg.write_text(toml)
    return CliRunner().invoke(
        app,
        [
            "render",
            str(ROOT / "examples/dockland.json"),
            "--config",
            str(cfg),
            "-f",
            "json",
            *extra,
        ],
    )


def test_node_pool_is_rendered_only_when_the_target_allows_it(tmp_path):
    res = _render(tmp_path, 'nomad_version = "1.6"\nnode_pool = "edge"\n', "--job", "psql-app")
    assert res.exit_code == 0, res.output
    job = json.loads(res.stdout)["Job"]
    assert job["NodePool"] == "edge"
    assert check_job(job, nomad_version=(1, 6)) == []
    assert check_job(job, nomad_version=(1, 5)) == [
        "Job.NodePool: needs Nomad 1.6; the target is Nomad 1.5"
    ]
    assert 'node_pool   = "edge"' in to_hcl(job)


def test_default_output_has_no_node_pool(tmp_path):
    res = _render(tmp_path, "", "--job", "psql-app")
    assert res.exit_code == 0, res.output
    assert "NodePool" not in json.loads(res.stdout)["Job"]


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('node_pool = "edge"\n', "node_pool needs Nomad 1.6 or later; the target is Nomad 1.5"),
        ('nomad_version = "1.5"\nnode_pool = "edge"\n', "node_pool needs Nomad 1.6 or later"),
        ('nomad_version = "1.4"\n', "nomad_version: '1.4' is not a supported Nomad version"),
        ('nomad_version = "latest"\n', "is not a supported Nomad version"),
        ('nomad_version = "1.6"\nnode_pool = "a b"\n', "node_pool: must be a node pool name"),
        ("nomad_version = 1.6\n", "nomad_version must be a string"),
    ],
)
def test_bad_version_settings_are_configuration_errors(tmp_path, toml, message):
    cfg = tmp_path / "nomadgen.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError) as exc:
        load_config(config=str(cfg), env={})
    assert message in str(exc.value) + "".join(str(p) for p in getattr(exc.value, "problems", []))
    res = _render(tmp_path, toml)
    assert res.exit_code == 6 and res.stdout == "" and "Traceback" not in res.output


@requires_nomad
def test_a_1_6_job_is_proven_on_its_1_5_part_and_refused_whole_by_1_5(tmp_path):
    """What Nomad's 1.5.8 code can prove of a job for a newer target: everything but the
    newer fields (which jobcheck checks against the target)."""
    res = _render(tmp_path, 'nomad_version = "1.6"\nnode_pool = "edge"\n', "--job", "psql-app")
    job = json.loads(res.stdout)["Job"]
    with pytest.raises(JobspecError, match="node_pool"):
        nomad_parse(to_hcl(job))
    older = {k: v for k, v in job.items() if k != "NodePool"}
    assert newer_fields(older, OLDEST_NOMAD) == []
    assert_proven([("psql-app without NodePool", to_hcl(older), older)])


# A service's node_pool is a constraint on ${node.pool}: a Nomad 1.6 attribute too.
POOLED = {"web": {"node_pool": "edge"}, "api": {}}


def _render_manifest(tmp_path: Path, doc: dict, toml: str):
    (tmp_path / "m.json").write_text(json.dumps(doc))
    cfg = tmp_path / "nomadgen.toml"
    cfg.write_text(toml)
    return CliRunner().invoke(
        app, ["render", str(tmp_path / "m.json"), "--config", str(cfg), "-f", "json"]
    )


def test_a_service_node_pool_needs_a_1_6_target(tmp_path, cluster):
    res = _render_manifest(tmp_path, POOLED, "")
    assert res.exit_code == 3 and res.stdout == "" and "Traceback" not in res.output
    assert "node_pool needs Nomad 1.6 or later; the target is Nomad 1.5" in res.output
    assert "web.node_pool" in res.output and 'nomad_version = "1.6"' in res.output
    for cmd, code in (("plan", 255), ("submit", 3)):  # plan: 255 for any error, as Nomad's
        out = CliRunner().invoke(
            app,
            [cmd, str(tmp_path / "m.json"), "--config", str(tmp_path / "nomadgen.toml")],
            env=cluster.env(),
        )
        assert out.exit_code == code and "node_pool needs Nomad 1.6" in out.output, cmd
    assert cluster.standin is None or cluster.standin.nomad.jobs == {}  # nothing submitted
    ok = _render_manifest(tmp_path, POOLED, 'nomad_version = "1.6"\n')
    assert ok.exit_code == 0, ok.output
    web = json.loads(ok.stdout)["web"]["Job"]
    assert {"LTarget": "${node.pool}", "Operand": "=", "RTarget": "edge"} in web["TaskGroups"][0][
        "Constraints"
    ]
    assert _render_manifest(tmp_path, {"api": {}}, "").exit_code == 0  # no node_pool: fine


@pytest.mark.skipif(nomadsched.binary() is None, reason="nomad-sched is not in ../shared/tools")
def test_nomad_1_5_places_nothing_with_a_node_pool_constraint():
    """Why: Nomad 1.5.8's own scheduler filters every node for `${node.pool}` (and places the
    same job without it)."""
    job = {
        "ID": "j",
        "Datacenters": ["dc1"],
        "TaskGroups": [
            {
                "Name": "g",
                "Count": 1,
                "Tasks": [
                    {
                        "Name": "t",
                        "Driver": "docker",
                        "Config": {"image": "x"},
                        "Resources": {"CPU": 100, "MemoryMB": 64},
                    }
                ],
            }
        ],
    }
    nodes = [{"Name": "n1", "Datacenter": "dc1"}]
    out = nomadsched.run(nomadsched.binary(), {"nodes": nodes, "job": job})
    assert len(out["run"]["task_groups"]["g"]["placed"]) == 1
    pooled = copy.deepcopy(job)
    pooled["TaskGroups"][0]["Constraints"] = [
        {"LTarget": "${node.pool}", "Operand": "=", "RTarget": "default"}
    ]
    group = nomadsched.run(nomadsched.binary(), {"nodes": nodes, "job": pooled})["run"][
        "task_groups"
    ]["g"]
    assert group["placed"] == [] and group["failed_tg_allocs"]["NodesFiltered"] == 1
