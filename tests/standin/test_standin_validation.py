"""The stand-in validates submitted jobs with Nomad 1.5.8's own code (when ../shared has it):
register, plan and /v1/validate/job answer with Nomad's message and Nomad's status code."""

from __future__ import annotations

import copy
import uuid

import nomad
import nomad.api.exceptions as nex
import pytest
import requests

from tests.nomad_tools import nomad_validate, requires_nomad
from tests.standin.test_standin_nomad import make_job

pytestmark = requires_nomad


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
def job_id():
    return f"v-{uuid.uuid4().hex[:8]}"  # never registered: every job here is refused


def test_a_job_real_nomad_rejects_is_refused_with_nomads_message(client, job_id):
    bad = make_job(job_id)
    bad["Priority"] = 0  # api.Job keeps an explicit 0; the server's range check refuses it
    ok, message = nomad_validate(bad)
    assert not ok and "job priority must be between [1, 100]" in message
    for call in (
        lambda: client.job.register_job(job_id, {"Job": bad}),
        lambda: client.job.plan_job(job_id, {"Job": bad}),
    ):
        with pytest.raises(nex.BaseNomadException) as exc:
            call()
        assert (exc.value.nomad_resp.status_code, exc.value.nomad_resp.text) == (500, message)
    with pytest.raises(nex.URLNotFoundNomadException):
        client.job.get_job(job_id)


def test_validate_endpoint_lists_nomads_errors(cluster, job_id):
    bad = make_job(job_id)
    bad["TaskGroups"][0]["Count"] = -1
    r = requests.post(f"{cluster.nomad_addr}/v1/validate/job", json={"Job": bad}, timeout=10)
    assert r.status_code == 200
    body = r.json()
    assert body["Error"] == nomad_validate(bad)[1]
    assert any("count can't be negative" in e for e in body["ValidationErrors"])
    good = requests.post(
        f"{cluster.nomad_addr}/v1/validate/job", json={"Job": make_job(job_id)}, timeout=10
    ).json()
    assert good["ValidationErrors"] is None and good["Error"] == ""


def test_a_body_nomad_cannot_decode_is_a_400(cluster, job_id):
    bad = copy.deepcopy(make_job(job_id))
    bad["Priority"] = "high"
    # command/agent/job_endpoint.go: each endpoint answers a body it cannot decode with 400
    for path in (f"/v1/job/{job_id}", f"/v1/job/{job_id}/plan", "/v1/validate/job"):
        r = requests.put(cluster.nomad_addr + path, json={"Job": bad}, timeout=10)
        assert r.status_code == 400, path
        assert "cannot unmarshal string" in r.text and "Priority" in r.text, path


@pytest.fixture
def standin():
    from nomad_standin.server import StandIn

    with StandIn(lifetime=120, eval_delay=3600) as s:
        yield s


def _answers(addr: str, job: dict) -> list[tuple[int, str]]:
    """(status, text) of register, plan and validate for one job."""
    jid = job["ID"]
    out = []
    for method, path in (
        ("PUT", f"/v1/job/{jid}"),
        ("PUT", f"/v1/job/{jid}/plan"),
        ("PUT", "/v1/validate/job"),
    ):
        r = requests.request(method, addr + path, json={"Job": job}, timeout=10)
        out.append((r.status_code, r.json()["Error"] if path.endswith("validate/job") else r.text))
    return out


def test_nomads_validation_decides_even_where_jobcheck_would_accept(standin, monkeypatch, job_id):
    """The stand-in runs Nomad's own Job.Validate, not only jobcheck: with jobcheck made to
    accept everything, a job Nomad rejects is still refused, in Nomad's words, on each
    endpoint (register and plan 500, validate 200 with the errors)."""
    import nomad_standin.nomad as standin_nomad

    monkeypatch.setattr(standin_nomad.jobcheck, "check_job", lambda *a, **k: [])
    bad = make_job(job_id)
    bad["Priority"] = 0
    ok, message = nomad_validate(bad)
    assert not ok
    assert _answers(standin.nomad_addr, bad) == [(500, message), (500, message), (200, message)]
    # Known-bad: without the tool (jobcheck alone, here made lenient) the same job is taken,
    # so the refusal above is Nomad's code at work.
    monkeypatch.setattr(standin_nomad.nomad_jobspec, "binary", lambda: None)
    (reg, _, val) = _answers(standin.nomad_addr, bad)
    assert reg[0] == 200 and val == (200, "")


def test_jobcheck_still_checks_what_nomad_1_5_does_not_know(standin, job_id):
    """A field newer than 1.5 with a wrong type: Nomad 1.5.8's decoder drops it and its
    validation passes, jobcheck (which knows the field) refuses it, as Nomad 1.6 would."""
    bad = make_job(job_id)
    bad["NodePool"] = 5
    assert nomad_validate(bad) == (True, "")
    (reg, plan, val) = _answers(standin.nomad_addr, bad)
    assert reg[0] >= 400 and plan[0] >= 400 and val[0] == 200  # refused (the point here)
    for _, text in (reg, plan, val):
        assert "Job.NodePool: expected string, got integer 5" in text
