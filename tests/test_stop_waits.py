"""destroy and submit --prune end when what they stopped has stopped: Nomad answers a purge or a
stop before its scheduler stops the allocations, and the clients deregister the instances from
Consul as they stop them. Until then dependents still find them, so exit 0 waits for that.

The stand-in's evaluation delay is raised to 5 s after the first push, so the window between
Nomad's answer and the allocations stopping is wide and the known-bad cases are not timing
luck."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from nomadgen import converge
from nomadgen.cli import app
from nomadgen.discovery import InterfaceMissing, lookup
from tests.test_e2e import SEED, backends

SLOW_EVALS = 5.0


def _run(s, *args: str):
    return CliRunner().invoke(app, list(args), env=s.env())


def _deployed(standin_factory):
    s = standin_factory()
    res = _run(s, "submit", str(SEED), "--timeout", "120")
    assert res.exit_code == 0, res.output
    s.nomad.eval_delay = SLOW_EVALS
    return s


def _nomad_services(s) -> list[str]:
    _, consul = backends(s)
    return sorted(
        sid
        for sid, svc in consul.client.agent.services().items()
        if (svc.get("Meta") or {}).get("external-source") == "nomad"
    )


def _running(s, job_ids) -> list[str]:
    nomad, _ = backends(s)
    return [
        a["ID"]
        for j in job_ids
        for a in nomad.allocations(j)
        if a.get("ClientStatus") not in ("complete", "failed", "lost")
    ]


JOBS = ("psql-app", "psql-blog", "app", "worker", "blog")


def test_destroy_exits_when_the_instances_are_gone(standin_factory):
    s = _deployed(standin_factory)
    assert _nomad_services(s) and _running(s, JOBS)
    res = _run(s, "destroy", "dockland", "--yes")
    assert res.exit_code == 0, res.output
    assert _nomad_services(s) == [] and _running(s, JOBS) == []
    with pytest.raises(InterfaceMissing):
        lookup("psql:app", dns_server=f"{s.dns_host}:{s.dns_port}")


def test_known_bad_destroy_without_the_wait_leaves_instances_in_consul(
    standin_factory, monkeypatch
):
    s = _deployed(standin_factory)
    monkeypatch.setattr(converge, "wait_stopped", lambda nomad, jobs, timeout: [])
    res = _run(s, "destroy", "dockland", "--yes")
    assert res.exit_code == 0, res.output
    assert _nomad_services(s) and _running(s, JOBS)  # Nomad has not stopped them yet


def test_destroy_that_runs_out_of_time_says_what_is_still_running(standin_factory):
    s = _deployed(standin_factory)
    res = _run(s, "destroy", "dockland", "--yes", "--timeout", "0.5")
    assert res.exit_code == 11, res.output
    assert "purged job(s) still have allocations running after 0.5 s" in res.stderr
    assert "purge psql-app" in res.stderr  # what was done
    assert "wait for the purged jobs' allocations to stop" in res.stderr  # what was not
    assert "Traceback" not in res.output
    # Nomad finishes on its own; a second destroy finds nothing left to purge.
    s.nomad.run_evals()
    assert _running(s, JOBS) == []


def test_prune_exits_when_the_pruned_instances_are_gone(standin_factory, tmp_path):
    s = _deployed(standin_factory)
    doc = json.loads(SEED.read_text())
    del doc["blog"]
    smaller = tmp_path / "dockland.json"
    smaller.write_text(json.dumps(doc))
    res = _run(s, "submit", str(smaller), "--prune", "--timeout", "120")
    assert res.exit_code == 0, res.output
    assert _running(s, ["blog", "psql-blog"]) == []
    assert not [x for x in _nomad_services(s) if "-blog-" in x]
    assert _running(s, ["app", "psql-app"])  # the rest still runs


class _NeverStops:
    """A Nomad whose clients never stop the job's allocations."""

    def __init__(self) -> None:
        self.waits = 0

    def allocations(self, job_id: str) -> list[dict]:
        return [{"ID": "a1", "ClientStatus": "running", "DesiredStatus": "stop"}]

    def wait_for_change(self, what: str, obj: str, index: int, wait: float) -> int:
        self.waits += 1
        return index + 1


def test_wait_stopped_returns_what_is_still_running_at_the_deadline():
    nomad = _NeverStops()
    assert converge.wait_stopped(nomad, ["a", "b"], 0.2) == ["a", "b"]  # type: ignore[arg-type]
    assert nomad.waits >= 1
    assert converge.wait_stopped(nomad, [], 0.2) == []  # type: ignore[arg-type]
