"""The README's least-privilege ACL policies, per command, read out of the README itself (so the
documentation cannot drift) and applied to the stand-in's per-capability ACLs: each command
succeeds with exactly those policies, and fails with permission denied (exit 8; plan 255),
naming what is missing, when one capability is taken away."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import requests
from typer.testing import CliRunner

from nomadgen.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MGMT, CONSUL_MGMT = "nomad-management-secret", "consul-management-secret"
BLOCK = re.compile(r"<!-- acl: ([a-z-]+) (nomad|consul) -->\n```hcl\n(.*?)```", re.S)


def readme_manifest() -> dict:
    """The README's example: no dependent reads another set's credentials, so no job-scoped
    ACL policy is needed (those need a management token: see the test below)."""
    text = README.read_text(encoding="utf-8")
    found = re.search(r"<!-- acl: manifest -->\n```json\n(.*?)```", text, re.S)
    assert found, "the README's ACL example manifest is missing"
    return json.loads(found.group(1))


def readme_policies() -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for command, service, rules in BLOCK.findall(README.read_text(encoding="utf-8")):
        out.setdefault(command, {})[service] = rules
    return out


def test_the_readme_has_both_policies_of_every_command():
    assert {c: sorted(p) for c, p in readme_policies().items()} == {
        c: ["consul", "nomad"] for c in ("plan", "submit", "status", "interface-get", "destroy")
    }


def _without(rules: str, capability: str) -> str:
    """The rules with one capability (`"submit-job"` in a list) or one rule line taken out."""
    q = re.escape(f'"{capability}"')
    out = re.sub(rf",\s*{q}|{q},\s*|{q}", "", rules, count=1)
    if out == rules:
        out = "\n".join(line for line in rules.splitlines() if capability not in line)
    assert out != rules, f"{capability!r} is not in the README's policy"
    return out


class Cluster:
    def __init__(self, standin_factory, tmp_path: Path) -> None:
        self.s = standin_factory(nomad_acl_token=MGMT, consul_acl_tokens={CONSUL_MGMT})
        self.manifest = tmp_path / "shop.json"
        self.manifest.write_text(json.dumps(readme_manifest()))
        self.admin = {**self.s.env(), "NOMAD_TOKEN": MGMT, "CONSUL_HTTP_TOKEN": CONSUL_MGMT}

    def run(self, args: list[str], env: dict[str, str]):
        args = [str(self.manifest) if a == "MANIFEST" else a for a in args]
        return CliRunner().invoke(app, args, env=env)

    def env_for(self, nomad_rules: str, consul_rules: str) -> dict[str, str]:
        return {
            **self.s.env(),
            "NOMAD_TOKEN": self.s.nomad_token(rules={"nomadgen-least": nomad_rules}),
            "CONSUL_HTTP_TOKEN": self.s.consul_token(consul_rules),
        }

    def deploy(self) -> None:
        res = self.run(["submit", "MANIFEST", "--timeout", "120"], self.admin)
        assert res.exit_code == 0, res.output

    def written(self) -> dict:
        """Everything nomadgen can have written, read with management tokens."""
        n, c = self.s.nomad_addr, self.s.consul_addr
        nh, ch = {"X-Nomad-Token": MGMT}, {"X-Consul-Token": CONSUL_MGMT}
        jobs = requests.get(f"{n}/v1/jobs?namespace=*", headers=nh, timeout=10).json()
        kv = requests.get(f"{c}/v1/kv/nomadgen/?recurse=true", headers=ch, timeout=10)
        return {
            "jobs": sorted((j["ID"], j["Version"], j["Status"] == "dead") for j in jobs),
            "variables": sorted(
                (v["Path"], v["ModifyIndex"])
                for v in requests.get(f"{n}/v1/vars?namespace=*", headers=nh, timeout=10).json()
            ),
            "kv": sorted(
                (k["Key"], k["ModifyIndex"])
                for k in (kv.json() if kv.status_code == 200 else [])
                if not k["Key"].endswith("/lock")
            ),
            "services": sorted(
                requests.get(f"{c}/v1/agent/services", headers=ch, timeout=10).json()
            ),
        }


# command -> (arguments, deployed first?, exit code with the README's policies)
COMMANDS = {
    "plan": (["plan", "MANIFEST"], True, 0),  # 0: no changes, so every read was complete
    "submit": (["submit", "MANIFEST", "--timeout", "120"], False, 0),
    "status": (["status", "shop"], True, 0),
    "interface-get": (["interface", "get", "api", "--manifest", "shop"], True, 0),
    "destroy": (["destroy", "shop", "--yes"], True, 0),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_command_works_with_exactly_the_readme_policies(standin_factory, tmp_path, command):
    c = Cluster(standin_factory, tmp_path)
    args, deployed, code = COMMANDS[command]
    if deployed:
        c.deploy()
    policy = readme_policies()[command]
    res = c.run(args, c.env_for(policy["nomad"], policy["consul"]))
    assert res.exit_code == code, res.output
    after = c.written()
    if command == "submit":  # converged: a plan with full rights has nothing to do
        assert c.run(["plan", "MANIFEST"], c.admin).exit_code == 0
    if command == "destroy":
        assert after == {"jobs": [], "variables": after["variables"], "kv": [], "services": []}
        assert (
            "kept 1 generated credential(s)" in res.stdout and "nomad/jobs/psql-web" in res.stdout
        )
    if command == "interface-get":
        assert len(json.loads(res.stdout)["instances"]) == 3


# command -> (service, what is taken out, what the error names, exit code)
KNOWN_BAD = {
    "plan": ("nomad", "submit-job", "submit-job", 255),
    "submit": ("nomad", "submit-job", "submit-job", 8),
    "status": ("nomad", "read-job", "read-job", 8),
    "interface-get": ("consul", 'key_prefix "nomadgen/shop/', "key:read", 8),
    "destroy": ("nomad", "submit-job", "submit-job", 8),
}


@pytest.mark.parametrize("command", sorted(KNOWN_BAD))
def test_one_capability_less_is_permission_denied_and_writes_nothing(
    standin_factory, tmp_path, command
):
    c = Cluster(standin_factory, tmp_path)
    args, deployed, _ = COMMANDS[command]
    if deployed:
        c.deploy()
    before = c.written()
    service, taken, named, code = KNOWN_BAD[command]
    policy = dict(readme_policies()[command])
    policy[service] = _without(policy[service], taken)
    res = c.run(args, c.env_for(policy["nomad"], policy["consul"]))
    assert res.exit_code == code, res.output
    assert named in res.stderr and "Traceback" not in res.output
    assert c.written() == before


@pytest.mark.parametrize("command", ["plan", "submit"])
def test_other_manifests_keys_need_list_on_the_prefix(standin_factory, tmp_path, command):
    """Which service names other manifests publish is read from a listing of the prefix. Once
    another manifest has keys there, a token without `list` on the prefix would see only some
    (Consul filters the list by ACL and says so): permission denied, nothing written. With the
    README's rule the same command works."""
    c = Cluster(standin_factory, tmp_path)
    blog = tmp_path / "blog.json"
    blog.write_text(json.dumps({"blog": {}}))
    assert c.run(["submit", str(blog), "--timeout", "120"], c.admin).exit_code == 0
    args, deployed, code = COMMANDS[command]
    if deployed:
        c.deploy()
    before = c.written()
    policy = readme_policies()[command]
    narrow = _without(policy["consul"], 'key_prefix "nomadgen/" { policy = "list" }')
    res = c.run(args, c.env_for(policy["nomad"], narrow))
    assert res.exit_code == (255 if command == "plan" else 8), res.output
    assert "cannot list every key under nomadgen/" in res.stderr
    assert 'key_prefix "nomadgen/" { policy = "list" }' in res.stderr
    assert c.written() == before
    res = c.run(args, c.env_for(policy["nomad"], policy["consul"]))
    assert res.exit_code == code, res.output


def _for_seed(rules: str) -> str:
    """The README's policies for the seed (manifest `dockland`, no external service)."""
    return "\n".join(
        line.replace("nomadgen/shop/", "nomadgen/dockland/")
        for line in rules.splitlines()
        if '"billing"' not in line
    )


def test_job_scoped_policies_need_a_management_token(standin_factory, tmp_path):
    """The seed's dependents read psql's credentials through job-scoped policies, which only a
    management token can list and write: a client token stops before anything is written."""
    c = Cluster(standin_factory, tmp_path)
    c.manifest.write_text((ROOT / "examples" / "dockland.json").read_text())
    c.manifest = c.manifest.rename(tmp_path / "dockland.json")
    policy = readme_policies()["submit"]
    env = c.env_for(_for_seed(policy["nomad"]), _for_seed(policy["consul"]))
    for args, code in ((["plan", "MANIFEST"], 255), (["submit", "MANIFEST"], 8)):
        res = c.run(args, env)
        assert res.exit_code == code, res.output
        assert "need a management Nomad token" in res.stderr
        assert (
            "acl policy nomadgen-dockland-J-app-G-app-zone-a-T-app: job app, group app-zone-a, "
            "task app reads nomad/jobs/psql-app"
        ) in res.stderr, res.stderr
        assert c.written() == {"jobs": [], "variables": [], "kv": [], "services": []}

    c.deploy()  # with management tokens
    before = c.written()
    policy = readme_policies()["destroy"]
    env = c.env_for(_for_seed(policy["nomad"]), _for_seed(policy["consul"]))
    res = c.run(["destroy", "dockland", "--yes"], env)
    assert res.exit_code == 8, res.output
    assert "need a management Nomad token" in res.stderr
    assert c.written() == before  # nothing purged, the policies are not left behind unseen
    assert c.run(["destroy", "dockland", "--yes"], c.admin).exit_code == 0
    policies = requests.get(
        f"{c.s.nomad_addr}/v1/acl/policies", headers={"X-Nomad-Token": MGMT}, timeout=10
    ).json()
    assert [p["Name"] for p in policies if p["Name"].startswith("nomadgen-dockland")] == []


def test_permission_denied_inside_a_consul_transaction_is_exit_8(standin_factory, tmp_path):
    """The lock key may be written, the interface documents not: Consul refuses the ops inside
    the transaction (409 with each op's error), which is permission denied, not a lost race."""
    c = Cluster(standin_factory, tmp_path)
    policy = readme_policies()["submit"]
    consul = policy["consul"].replace(
        'key_prefix "nomadgen/shop/" { policy = "write" }',
        'key_prefix "nomadgen/shop/" { policy = "read" }\n'
        'key "nomadgen/shop/lock" { policy = "write" }',
    )
    assert consul != policy["consul"]
    res = c.run(["submit", "MANIFEST"], c.env_for(policy["nomad"], consul))
    assert res.exit_code == 8, res.output
    assert "Consul refused the interface transaction" in res.stderr
    assert "lacks permission 'key:write'" in res.stderr
    assert "another push ran at the same time" not in res.output
    assert c.written() == {"jobs": [], "variables": [], "kv": [], "services": []}


DESTROY_NARROWED = {
    # The external service readable, not writable: deregister would be refused.
    "service": (
        'service "billing" { policy = "write" }',
        'service "billing" { policy = "read" }',
        "Permission denied",
    ),
    # The lock key writable, the interface documents and push record not.
    "keys": (
        'key_prefix "nomadgen/shop/" { policy = "write" }',
        'key_prefix "nomadgen/shop/" { policy = "read" }\nkey "nomadgen/shop/lock" { policy = "write" }',
        "the Consul token may not delete the manifest's keys",
    ),
}


def test_destroy_checks_its_consul_writes_before_it_purges(standin_factory, tmp_path, monkeypatch):
    """Consul refuses a write only at the write, so destroy asks first (a check-not-exists
    transaction on the keys it will delete, maintenance off on its external services): a token
    that cannot delete a key or deregister a service stops it before any job is purged.
    Known-bad: without that check the same destroy purges every job, then fails."""
    from nomadgen import operations

    c = Cluster(standin_factory, tmp_path)
    c.deploy()
    before = c.written()
    policy = readme_policies()["destroy"]
    envs = {}
    for narrowed, (old, new, named) in sorted(DESTROY_NARROWED.items()):
        assert old in policy["consul"]
        envs[narrowed] = env = c.env_for(policy["nomad"], policy["consul"].replace(old, new))
        res = c.run(["destroy", "shop", "--yes"], env)
        assert res.exit_code == 8, (narrowed, res.output)
        assert named in res.stderr and "Traceback" not in res.output, narrowed
        assert c.written() == before, narrowed  # nothing purged, deregistered or deleted

    monkeypatch.setattr(operations, "_probe_consul_write", lambda *a: None)
    res = c.run(["destroy", "shop", "--yes"], envs["service"])
    assert res.exit_code == 8, res.output
    assert "destroy stopped" in res.stderr and "done: purge " in res.stderr
    assert "not done: deregister nomadgen:shop:billing" in res.stderr
    assert c.written()["jobs"] == []  # the harm the check prevents


def test_submit_asks_for_variables_write_before_its_first_write(
    standin_factory, tmp_path, monkeypatch
):
    """The credentials submit generates are written after the interface documents. A token
    without `write` on the variables is asked first (a check-and-set that can only lose, so
    nothing is stored) and stops submit with nothing written. Known-bad: without asking, the
    interface documents are written and then the run stops."""
    from nomadgen import operations

    c = Cluster(standin_factory, tmp_path)
    policy = readme_policies()["submit"]
    nomad_rules = policy["nomad"].replace(
        'capabilities = ["list", "write"]', 'capabilities = ["list"]'
    )
    assert nomad_rules != policy["nomad"]
    env = c.env_for(nomad_rules, policy["consul"])
    empty = {"jobs": [], "variables": [], "kv": [], "services": []}
    res = c.run(["submit", "MANIFEST"], env)
    assert res.exit_code == 8, res.output
    assert "checking variables write on nomad/jobs/psql-web" in res.stderr
    assert c.written() == empty

    monkeypatch.setattr(operations, "probe_submit_writes", lambda *a: None)
    res = c.run(["submit", "MANIFEST"], env)
    assert res.exit_code == 8, res.output
    assert c.written()["kv"] != []  # the harm the question prevents
