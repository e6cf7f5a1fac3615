"""Writers that meet: another owner, another nomadgen, a refused token. Each case ends in a
documented state, with nothing of another owner touched."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from nomadgen.cli import app

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "examples" / "dockland.json"


def test_permission_denied_inside_a_transaction_is_exit_8(standin_factory):
    s = standin_factory(consul_acl_tokens={"consul-secret"})
    res = CliRunner().invoke(app, ["submit", str(SEED)], env=s.env())  # no Consul token
    assert res.exit_code == 8, res.output
    assert "another push ran at the same time" not in res.output
    assert "Permission denied" in res.stderr
