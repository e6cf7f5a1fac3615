"""Stand-in namespaces, variables and ACLs, driven through python-nomad, py-consul and requests.
Each behaviour follows the Nomad or Consul source file named in dev/standin/ (see dev/README.md)."""

from __future__ import annotations

import nomad
import nomad.api.exceptions as nex
import pytest
import requests

from tests.test_standin_nomad import make_job


def _client(s, token=None, namespace=None):
    return nomad.Nomad(host="127.0.0.1", port=s.nomad_port, timeout=5, token=token,
                       namespace=namespace)


# -- namespaces ---------------------------------------------------------------------------------
def test_job_in_a_missing_namespace_is_refused_with_nomads_text(cluster):
    client = _client(cluster.standin)
    job = make_job("web", count=1) | {"Namespace": "team-a"}
    with pytest.raises(nex.BaseNomadException) as exc:
        client.job.register_job("web", {"Job": job})
    assert exc.value.nomad_resp.status_code == 500
    assert exc.value.nomad_resp.text == (
        '1 error occurred:\n\t* job "web" is in nonexistent namespace "team-a"\n\n')
    client.namespace.create_namespace({"Name": "team-a", "Description": "A"})
    assert [n["Name"] for n in client.namespaces.get_namespaces()] == ["default", "team-a"]
    client.job.register_job("web", {"Job": job})
    # Lists without ?namespace= show the default namespace only; `*` shows every namespace.
    assert client.jobs.get_jobs() == []
    assert [j["ID"] for j in _client(cluster.standin, namespace="team-a").jobs.get_jobs()] == ["web"]
    assert [j["Namespace"] for j in client.jobs.get_jobs(namespace="*")] == ["team-a"]
    with pytest.raises(nex.URLNotFoundNomadException):
        client.job.get_job("web")
    assert client.job.get_job("web", namespace="team-a")["Namespace"] == "team-a"
    # A namespace with a live job cannot go.
    r = requests.delete(f"{cluster.nomad_addr}/v1/namespace/team-a", timeout=5)
    assert r.status_code == 500 and 'namespace "team-a" has non-terminal jobs' in r.text


def test_namespace_names_and_lookups(cluster):
    base = cluster.nomad_addr
    r = requests.put(f"{base}/v1/namespace/bad_name", json={"Name": "bad_name"}, timeout=5)
    assert r.status_code == 500 and 'invalid name "bad_name"' in r.text
    r = requests.put(f"{base}/v1/namespace/a", json={"Name": "b"}, timeout=5)
    assert (r.status_code, r.text) == (400, "Namespace name does not match request path")
    r = requests.get(f"{base}/v1/namespace/nope", timeout=5)
    assert (r.status_code, r.text) == (404, "Namespace not found")
    r = requests.delete(f"{base}/v1/namespace/default", timeout=5)
    assert (r.status_code, r.text) == (500, "can not delete default namespace")


# -- variables ----------------------------------------------------------------------------------
@pytest.mark.parametrize("path, ok", [
    ("nomad/jobs", True), ("nomad/jobs/web/app/task", True), ("nomad/job-templates/x", True),
    ("app/secret", True), ("nomad", False), ("nomad/job-templates", False),
    ("nomad/job-templates/x/y", False), ("nomad/other", False), ("bad path", False),
])
def test_variable_paths_under_nomad_are_reserved(cluster, path, ok):
    r = requests.put(f"{cluster.nomad_addr}/v1/var/{path}", json={"Items": {"a": "b"}}, timeout=5)
    assert (r.status_code == 200) is ok, r.text
    if not ok:
        assert r.status_code == 400


def test_variable_namespace_comes_from_the_body(cluster):
    """python-nomad sends no ?namespace= on /v1/var: the body's Namespace is what counts on
    writes, and reads without ?namespace= look in "default" (nomad/variables_endpoint.go)."""
    client = _client(cluster.standin, namespace="team-b")
    client.variable.create_variable("app/db", {"Namespace": "team-b", "Items": {"pw": "x"}})
    with pytest.raises(nex.URLNotFoundNomadException):
        client.variable.get_variable("app/db")  # python-nomad: no ?namespace= here
    assert client.variable.get_variable("app/db", namespace="team-b")["Items"] == {"pw": "x"}
    assert [v["Namespace"] for v in client.variables.get_variables(namespace="*")] == ["team-b"]
    # Nomad CE does not check that a variable's namespace exists (hashicorp/nomad#15379).
    assert "team-b" not in [n["Name"] for n in client.namespaces.get_namespaces()]
