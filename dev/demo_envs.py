"""`make demo-envs`: one manifest as dev and prod, side by side on one local cluster.

It declares two environments in a nomadgen.toml (own Nomad namespaces; prod pins PostgreSQL
and gives it more memory), compares them offline, submits both, reads prod's interface, changes
dev only, and shows prod untouched: the same allocations, no restarts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo import ROOT, SEED, banner, run  # noqa: E402

CONFIG = """\
[env.dev]
namespace = "dev"

[env.prod]
namespace = "prod"

[env.prod.overrides."psql:app"]
image = "postgres:16.4-alpine"
resources = { memory = 1024 }

[env.prod.overrides.app]
env = { LOG_LEVEL = "warn" }
"""


def allocations(env: dict, namespace: str) -> dict[str, list[str]]:
    import nomad

    host, port = env["NOMAD_ADDR"].split("://")[1].rsplit(":", 1)
    n = nomad.Nomad(host=host, port=int(port), timeout=5, verify=False, namespace=namespace)
    return {
        j["ID"]: sorted(
            a["ID"][:8] for a in n.job.get_allocations(j["ID"]) if a["DesiredStatus"] == "run"
        )
        for j in n.jobs.get_jobs()
    }


def main() -> None:
    state = Path(tempfile.mkdtemp(prefix="nomadgen-demo-envs-"))
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("NOMAD", "CONSUL"))}
    cluster = [sys.executable, str(ROOT / "dev" / "cluster.py")]
    config = state / "nomadgen.toml"
    config.write_text(CONFIG)
    cfg = ["--config", str(config)]
    try:
        banner("1. Two environments in nomadgen.toml")
        print(CONFIG, end="")

        banner("2. What prod gets that dev has not (offline; exit 1 = they differ)")
        run(
            "nomadgen",
            "diff",
            str(SEED),
            "--env",
            "dev",
            "--env",
            "prod",
            *cfg,
            env=base_env,
            ok=(1,),
        )

        banner("3. Start the local cluster and create the namespaces dev and prod")
        up = subprocess.run(
            [*cluster, "up", "--state-dir", str(state), "--time-scale", "0.05"],
            text=True,
            capture_output=True,
            env=base_env,
        )
        print(up.stdout + up.stderr, end="")
        if up.returncode != 0:
            raise SystemExit("demo: the cluster did not start")
        env = dict(base_env)
        for line in up.stdout.splitlines():
            if line.startswith("export "):
                k, _, v = line[len("export ") :].partition("=")
                env[k] = v.strip("'\"")
        for ns in ("dev", "prod"):
            req = urllib.request.Request(
                f"{env['NOMAD_ADDR']}/v1/namespace/{ns}",
                method="PUT",
                data=('{"Name": "%s"}' % ns).encode(),
            )
            urllib.request.urlopen(req, timeout=10).close()

        banner("4. Submit dev, then prod: the same manifest, names scoped per environment")
        run("nomadgen", "submit", "--env", "dev", str(SEED), *cfg, env=env)
        run("nomadgen", "submit", "--env", "prod", str(SEED), *cfg, env=env)

        banner("5. prod's status and its psql:app interface")
        run("nomadgen", "status", "--env", "prod", str(SEED), *cfg, env=env)
        run("nomadgen", "interface", "get", "--env", "prod", "psql:app", *cfg, env=env)

        before = allocations(env, "prod")
        dev_before = allocations(env, "dev")
        banner("6. Change dev only: PostgreSQL 17 for dev's psql:app (--set)")
        run(
            "nomadgen",
            "submit",
            "--env",
            "dev",
            "--set",
            "psql:app.image=postgres:17-alpine",
            str(SEED),
            *cfg,
            env=env,
        )
        after = allocations(env, "prod")
        print(f"\n{'PROD JOB':<16} ALLOCATIONS")
        for job in sorted(after):
            print(
                f"{job:<16} {'kept' if after[job] == before.get(job) else 'CHANGED'} {' '.join(after[job])}"
            )
        # CI runs this demo (tests/test_demo.py): it fails unless dev really changed and prod
        # did not move at all.
        if after != before or len(after) != 5:
            raise SystemExit("demo: prod's jobs or allocations changed with dev's")
        if allocations(env, "dev")["dev-psql-app"] == dev_before["dev-psql-app"]:
            raise SystemExit("demo: dev's psql:app was not replaced")

        banner("7. prod has nothing to do: plan says no changes (exit 0)")
        run("nomadgen", "plan", "--env", "prod", str(SEED), *cfg, env=env)
    finally:
        banner("8. Stop the cluster")
        subprocess.run([*cluster, "down", "--state-dir", str(state)], env=base_env)
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
