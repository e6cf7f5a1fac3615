"""Nomad namespaces without an environment (NOMAD_NAMESPACE / --namespace): jobs and variables
go to that namespace, and a namespace that does not exist is the user's configuration (exit 6,
naming it, with `nomad namespace apply`), said before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from typer.testing import CliRunner

from nomadgen.backends import connect
from nomadgen.cli import app
from nomadgen.errors import ConfigError
from nomadgen.settings import consul_endpoint, nomad_endpoint

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "examples" / "dockland.json"


def _nothing_written(cluster) -> None:
    nomad = cluster.nomad_addr
    assert requests.get(f"{nomad}/v1/jobs?namespace=*", timeout=10).json() == []
    assert requests.get(f"{nomad}/v1/vars?namespace=*", timeout=10).json() == []
    kv = requests.get(f"{cluster.consul_addr}/v1/kv/?recurse=true", timeout=10)
    assert kv.status_code == 404, kv.text  # not one key
    assert requests.get(f"{cluster.consul_addr}/v1/agent/services", timeout=10).json() == {}


@pytest.mark.parametrize(
    ("command", "code"),
    [
        (["plan", str(SEED)], 255),  # plan's one error code, like `nomad job plan`
        (["submit", str(SEED), "--no-wait"], 6),
        (["destroy", "dockland", "--yes"], 6),
    ],
)
def test_a_missing_namespace_is_a_configuration_error(cluster, command, code):
    res = CliRunner().invoke(app, command, env={**cluster.env(), "NOMAD_NAMESPACE": "team-a"})
    assert res.exit_code == code, res.output
    assert 'Nomad namespace "team-a" does not exist' in res.stderr
    assert "nomad namespace apply team-a" in res.stderr
    assert "server is failing" not in res.output and "Traceback" not in res.output
    _nothing_written(cluster)


def test_a_namespace_deleted_after_the_check_is_still_named(cluster):
    """Nomad's admission check (500 `job "x" is in nonexistent namespace "y"`) is translated too,
    never retried as a failing server."""
    requests.put(
        f"{cluster.nomad_addr}/v1/namespace/team-a", json={"Name": "team-a"}, timeout=10
    ).raise_for_status()
    nomad, _ = connect(
        nomad_endpoint(address=cluster.nomad_addr, namespace="team-a", env={}),
        consul_endpoint(address=cluster.consul_addr, env={}),
    )
    assert nomad.jobs() == {}  # the namespace exists: checked once, here
    requests.delete(f"{cluster.nomad_addr}/v1/namespace/team-a", timeout=10).raise_for_status()
    task = {"Name": "t", "Driver": "docker", "Config": {"image": "busybox:1.36"}}
    job = {
        "ID": "x",
        "Name": "x",
        "Namespace": "team-a",
        "Type": "batch",
        "Datacenters": ["*"],
        "TaskGroups": [{"Name": "g", "Count": 1, "Tasks": [task]}],
    }
    with pytest.raises(ConfigError, match='namespace "team-a" does not exist'):
        nomad.plan(job)


def test_jobs_and_variables_go_to_nomad_namespace(cluster):
    requests.put(
        f"{cluster.nomad_addr}/v1/namespace/team-a", json={"Name": "team-a"}, timeout=10
    ).raise_for_status()
    env = {**cluster.env(), "NOMAD_NAMESPACE": "team-a"}
    res = CliRunner().invoke(app, ["submit", str(SEED)], env=env)
    assert res.exit_code == 0, res.output

    def listed(what: str, ns: str) -> list[str]:
        rows = requests.get(f"{cluster.nomad_addr}/v1/{what}?namespace={ns}", timeout=10).json()
        return sorted(r.get("ID") or r["Path"] for r in rows)

    assert listed("jobs", "default") == [] and listed("vars", "default") == []
    assert "psql-app" in listed("jobs", "team-a")
    assert listed("vars", "team-a")  # the generated credentials, in the jobs' namespace
    # A second plan reads them back there: nothing to create again.
    res = CliRunner().invoke(app, ["plan", str(SEED)], env=env)
    assert res.exit_code == 0, res.output
