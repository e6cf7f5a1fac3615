"""One Consul for every Nomad namespace: what nomadgen writes to Consul for a manifest (its
interface documents and push record in KV) records the namespace that owns it, and a run from
another namespace that would write the same Consul service names or KV keys is refused before
anything is written (exit 10; plan 255), naming both namespaces. So is a manifest that would
register a service name another manifest publishes. Copies side by side take environments, or
a scope of their own (NOMADGEN_SCOPE)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from typer.testing import CliRunner

from nomadgen.cli import app

SHOP = {
    "web": {"depends": ["billing"]},
    "billing": {"external": {"address": "10.0.0.9", "port": 443}},
}


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    path = tmp_path / "shop.json"
    path.write_text(json.dumps(SHOP))
    return path


def _namespaces(cluster, *names: str) -> None:
    for ns in names:
        requests.put(
            f"{cluster.nomad_addr}/v1/namespace/{ns}", json={"Name": ns}, timeout=10
        ).raise_for_status()


def run(cluster, args: list[str], **env: str):
    return CliRunner().invoke(app, [str(a) for a in args], env={**cluster.env(), **env})


def written(cluster) -> dict:
    """Everything nomadgen can have written, in every namespace, with its indexes."""
    n, c = cluster.nomad_addr, cluster.consul_addr
    kv = requests.get(f"{c}/v1/kv/?recurse=true", timeout=10)
    return {
        "jobs": sorted(
            (j["Namespace"], j["ID"], j["JobModifyIndex"])
            for j in requests.get(f"{n}/v1/jobs?namespace=*", timeout=10).json()
        ),
        "variables": sorted(
            (v["Namespace"], v["Path"], v["ModifyIndex"])
            for v in requests.get(f"{n}/v1/vars?namespace=*", timeout=10).json()
        ),
        "kv": sorted(
            (k["Key"], k["ModifyIndex"]) for k in (kv.json() if kv.status_code == 200 else [])
        ),
        "services": sorted(
            (sid, s["ModifyIndex"] if "ModifyIndex" in s else 0, json.dumps(s, sort_keys=True))
            for sid, s in requests.get(f"{c}/v1/agent/services", timeout=10).json().items()
        ),
    }


def document(cluster, key: str) -> dict:
    got = requests.get(f"{cluster.consul_addr}/v1/kv/{key}?raw", timeout=10)
    got.raise_for_status()
    return json.loads(got.content)


def test_the_same_manifest_from_a_second_namespace_is_refused_and_writes_nothing(cluster, shop):
    _namespaces(cluster, "dev", "qa")
    res = run(cluster, ["submit", shop], NOMAD_NAMESPACE="dev")
    assert res.exit_code == 0, res.output
    # What Consul holds for shop says where it is deployed.
    assert document(cluster, "nomadgen/shop/interfaces/web")["namespace"] == "dev"
    assert document(cluster, "nomadgen/shop/push/plan")["namespace"] == "dev"
    before = written(cluster)

    for args, code in (
        (["plan", shop], 255),  # said beforehand, as plan's errors are
        (["submit", shop, "--no-wait"], 10),
        (["submit", shop, "--prune", "--no-wait"], 10),
        (["destroy", "shop", "--yes"], 10),
        (["status", "shop"], 10),  # not "every set missing": they are dev's
        (["status", shop], 10),
    ):
        res = run(cluster, args, NOMAD_NAMESPACE="qa")
        assert res.exit_code == code, (args, res.output)
        assert (
            "manifest shop is deployed from namespace dev, and this run is in namespace qa"
            in res.stderr
        ), res.stderr
        assert "--env NAME, each with its own scope" in res.stderr
        assert "Traceback" not in res.output
        assert written(cluster) == before, args  # not a job, variable, key or service

    # dev itself is untouched and still converged.
    assert run(cluster, ["plan", shop], NOMAD_NAMESPACE="dev").exit_code == 0


def test_known_bad_without_the_check_the_second_namespace_takes_the_first_ones_names(
    cluster, shop, monkeypatch
):
    """What the refusal prevents: with the check taken out, qa's submit rewrites dev's interface
    documents and registers a second `web` service in the one Consul catalog."""
    import nomadgen.diff

    _namespaces(cluster, "dev", "qa")
    assert run(cluster, ["submit", shop], NOMAD_NAMESPACE="dev").exit_code == 0
    monkeypatch.setattr(nomadgen.diff, "foreign_records", lambda *a, **k: [])
    res = run(cluster, ["submit", shop], NOMAD_NAMESPACE="qa")
    assert res.exit_code == 0, res.output
    assert document(cluster, "nomadgen/shop/interfaces/web")["namespace"] == "qa"
    web = requests.get(f"{cluster.consul_addr}/v1/health/service/web", timeout=10).json()
    assert len(web) == 6  # three instances from each namespace, under one name


def test_copies_side_by_side_as_environments_or_with_a_scope(cluster, shop, tmp_path):
    _namespaces(cluster, "dev", "qa", "stage")
    assert run(cluster, ["submit", shop], NOMAD_NAMESPACE="dev").exit_code == 0
    # A scope without environments: names of its own (qa-web, nomadgen/shop@qa/...).
    res = run(cluster, ["submit", shop], NOMAD_NAMESPACE="qa", NOMADGEN_SCOPE="qa")
    assert res.exit_code == 0, res.output
    assert document(cluster, "nomadgen/shop@qa/interfaces/qa-web")["namespace"] == "qa"
    # Environments, each with its own scope, in their own namespaces.
    config = tmp_path / "nomadgen.toml"
    config.write_text('[env.stage]\nnamespace = "stage"\n')
    res = run(cluster, ["submit", shop, "--env", "stage", "--config", config])
    assert res.exit_code == 0, res.output

    jobs = requests.get(f"{cluster.nomad_addr}/v1/jobs?namespace=*", timeout=10).json()
    assert sorted((j["Namespace"], j["ID"]) for j in jobs) == [
        ("dev", "web"),
        ("qa", "qa-web"),
        ("stage", "stage-web"),
    ]
    for svc in ("web", "qa-web", "stage-web"):
        got = requests.get(f"{cluster.consul_addr}/v1/health/service/{svc}", timeout=10).json()
        assert len(got) == 3, svc
    assert run(cluster, ["plan", shop], NOMAD_NAMESPACE="dev").exit_code == 0  # untouched
    # Each copy is destroyed on its own.
    res = run(cluster, ["destroy", "shop", "--yes"], NOMAD_NAMESPACE="qa", NOMADGEN_SCOPE="qa")
    assert res.exit_code == 0, res.output
    assert run(cluster, ["plan", shop], NOMAD_NAMESPACE="dev").exit_code == 0


def test_records_of_an_older_nomadgen_without_a_namespace_still_converge(
    cluster, shop, monkeypatch
):
    """Pushed into dev by a nomadgen that recorded no namespace: from dev (where shop's jobs
    are) the records are dev's, submit converges and records it; from qa (no job of shop) they
    are taken as default's and refused."""
    import nomadgen.diff
    import nomadgen.render

    _namespaces(cluster, "dev", "qa")
    with monkeypatch.context() as m:
        for mod in (nomadgen.render, nomadgen.diff):
            m.setattr(mod, "home", lambda settings: {})
        assert run(cluster, ["submit", shop], NOMAD_NAMESPACE="dev").exit_code == 0
    assert "namespace" not in document(cluster, "nomadgen/shop/interfaces/web")

    before = written(cluster)
    res = run(cluster, ["submit", shop, "--no-wait"], NOMAD_NAMESPACE="qa")
    assert res.exit_code == 10, res.output
    assert "deployed from namespace default, and this run is in namespace qa" in res.stderr
    assert "recorded without a namespace" in res.stderr
    assert written(cluster) == before

    res = run(cluster, ["plan", shop], NOMAD_NAMESPACE="dev")
    assert res.exit_code == 1, res.output  # the documents gain the namespace; no job changes
    assert "~ nomadgen/shop/interfaces/web" in res.stdout
    assert "(unchanged" in res.stdout and "(update" not in res.stdout
    res = run(cluster, ["submit", shop], NOMAD_NAMESPACE="dev")
    assert res.exit_code == 0, res.output
    assert document(cluster, "nomadgen/shop/interfaces/web")["namespace"] == "dev"
    assert run(cluster, ["plan", shop], NOMAD_NAMESPACE="dev").exit_code == 0


def test_two_manifests_cannot_register_one_service_name(cluster, tmp_path):
    """shop (namespace dev) publishes web and billing; blog, another manifest, would register
    web from namespace qa (no job of the same ID in the way there), and billing as an external
    service in dev (external services are agent services: no job is in the way at all)."""
    _namespaces(cluster, "dev", "qa")
    shop = tmp_path / "shop.json"
    shop.write_text(json.dumps(SHOP))
    assert run(cluster, ["submit", shop], NOMAD_NAMESPACE="dev").exit_code == 0
    before = written(cluster)

    blog = tmp_path / "blog.json"
    blog.write_text(json.dumps({"web": {}}))
    for args in (["plan", blog], ["submit", blog, "--no-wait"]):
        res = run(cluster, args, NOMAD_NAMESPACE="qa")
        assert res.exit_code == (255 if args[0] == "plan" else 10), res.output
        assert "service web is published by manifest 'shop' (namespace dev)" in res.stderr
        assert written(cluster) == before

    blog.write_text(
        json.dumps({"api": {}, "billing": {"external": {"address": "10.0.0.8", "port": 443}}})
    )
    res = run(cluster, ["submit", blog, "--no-wait"], NOMAD_NAMESPACE="dev")
    assert res.exit_code == 10, res.output
    assert "service billing is published by manifest 'shop' (namespace dev)" in res.stderr
    assert written(cluster) == before
    # A name of its own is fine.
    blog.write_text(json.dumps({"api": {}}))
    assert run(cluster, ["submit", blog, "--no-wait"], NOMAD_NAMESPACE="qa").exit_code == 0


# --- A scope without environments (offline) ---------------------------------------------------


def test_a_scope_without_environments_prefixes_every_name(shop, tmp_path):
    from nomadgen.errors import ConfigError
    from nomadgen.pipeline import build_resolution
    from nomadgen.render import interfaces, render
    from nomadgen.settings import load_config

    for cfg in (
        load_config(env={"NOMADGEN_SCOPE": "qa"}),
        load_config(config=str(_toml(tmp_path, 'scope = "qa"\n')), env={}),
    ):
        _, plan = build_resolution(str(shop), cfg)
        assert plan.manifest == "shop@qa"
        assert sorted(j.id for j in render(plan, cfg.render)) == ["qa-web"]
        assert sorted(e.key for e in interfaces(plan, cfg.render)) == [
            "nomadgen/shop@qa/interfaces/qa-billing",
            "nomadgen/shop@qa/interfaces/qa-web",
        ]
    # An environment's own scope stands (NOMADGEN_SCOPE is for deployments without one).
    cfg = load_config(
        config=str(_toml(tmp_path, "[env.prod]\n")),
        environment="prod",
        env={"NOMADGEN_SCOPE": "qa"},
    )
    assert cfg.render.scope == "prod"
    with pytest.raises(ConfigError) as bad:
        load_config(env={"NOMADGEN_SCOPE": "QA_1"})
    assert bad.value.exit_code == 6
    assert "scope: 'QA_1' is not a short DNS label" in str(bad.value)
    assert "NOMADGEN_SCOPE" in str(bad.value)


def test_records_say_their_namespace_only_outside_default(shop):
    """Default's records stay as every earlier nomadgen wrote them (so upgrading rewrites
    nothing); any other namespace, and a region when one is set, is recorded."""
    from nomadgen.pipeline import build_resolution
    from nomadgen.render import interfaces
    from nomadgen.settings import load_config

    def doc(**env: str) -> dict:
        cfg = load_config(env=env)
        _, plan = build_resolution(str(shop), cfg)
        return json.loads(interfaces(plan, cfg.render)[0].value)

    assert "namespace" not in doc() and "region" not in doc()
    assert "namespace" not in doc(NOMAD_NAMESPACE="default")
    got = doc(NOMAD_NAMESPACE="qa", NOMAD_REGION="eu")
    assert (got["namespace"], got["region"]) == ("qa", "eu")


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "nomadgen.toml"
    path.write_text(text)
    return path
