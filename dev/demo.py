"""`make demo`: the whole story on the embedded default (the seed's example, three zones with one
node each), against the local dev cluster (real agents if installed, else the stand-in).

It starts the cluster, submits the seed's example, shows where every instance landed and each
interface, reads one through Consul KV and DNS, writes a marker into each psql:app instance's data,
changes the manifest so only psql:app changes (more memory: safe with kept data), shows the
plan's line about the data, that exactly the affected instances reload and that the markers
survived, and stops the cluster."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SEED = ROOT / "examples" / "dockland.json"


def banner(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m" if sys.stdout.isatty() else f"\n== {text}", flush=True)


def run(*args: str, env: dict, ok=(0,)) -> subprocess.CompletedProcess:
    shown = " ".join(a if " " not in a else repr(a) for a in args)
    print(f"$ {shown.replace(str(ROOT) + '/', '')}", flush=True)
    cmd = [str(BIN / "nomadgen"), *args[1:]] if args[0] == "nomadgen" else list(args)
    # One stream, so progress lines (stderr) and results (stdout) keep their order.
    res = subprocess.run(
        cmd, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT
    )
    sys.stdout.write(res.stdout)
    if res.returncode not in ok:
        raise SystemExit(f"demo: `{shown}` exited {res.returncode}")
    return res


def restarts(env: dict) -> dict[str, dict[str, int]]:
    """Task restarts and allocation IDs per job, read from Nomad's API."""
    import nomad

    host, port = env["NOMAD_ADDR"].split("://")[1].rsplit(":", 1)
    n = nomad.Nomad(host=host, port=int(port), timeout=5, verify=False)
    out = {}
    for job in ("psql-app", "psql-blog", "app", "blog", "worker"):
        allocs = [a for a in n.job.get_allocations(job) if a["DesiredStatus"] == "run"]
        out[job] = {
            "allocs": sorted(a["ID"][:8] for a in allocs),
            "restarts": {
                t: sum((a.get("TaskStates") or {}).get(t, {}).get("Restarts", 0) for a in allocs)
                for t in sorted({t for a in allocs for t in (a.get("TaskStates") or {})})
            },
        }
    return out


def markers(env: dict, *, write: bool) -> dict[str, tuple[str, str, str]]:
    """psql-app's running instances: name -> (alloc, node, marker in its data). The stand-in's
    control API (dev/README.md) stands in for `nomad alloc exec ... psql` on a real cluster."""
    import urllib.request

    import nomad

    base = env["NOMAD_ADDR"]
    host, port = base.split("://")[1].rsplit(":", 1)
    n = nomad.Nomad(host=host, port=int(port), timeout=5, verify=False)
    out = {}
    for a in n.job.get_allocations("psql-app"):
        if a["DesiredStatus"] != "run":
            continue
        url = f"{base}/_standin/data/{a['ID']}"
        try:
            if write:
                body = json.dumps({"key": "marker", "value": f"written in {a['ID'][:8]}"}).encode()
                urllib.request.urlopen(urllib.request.Request(url, body, method="PUT"), timeout=5)
            with urllib.request.urlopen(url, timeout=5) as r:
                mark = json.loads(r.read()).get("Markers", {}).get("marker", "")
        except OSError:
            mark = "(real agents: check with nomad alloc exec)"
        out[a["Name"]] = (a["ID"], a["NodeName"], mark)
    return out


def main() -> None:
    state = Path(tempfile.mkdtemp(prefix="nomadgen-demo-"))
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("NOMAD", "CONSUL"))}
    cluster = [sys.executable, str(ROOT / "dev" / "cluster.py")]
    try:
        banner("1. The manifest: the seed's example (examples/dockland.json)")
        print(SEED.read_text(), end="")

        banner("2. Resolve it: sets, instances per zone, who uses what")
        run("nomadgen", "resolve", str(SEED), env=base_env)

        banner(
            "   ... and render one of its jobs: psql:app, one instance per zone (HCL; --format json for the API)"
        )
        run("nomadgen", "render", str(SEED), "--job", "psql-app", env=base_env)

        banner("3. Start the local cluster (three zones, one node each)")
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

        banner("4. Plan: what submit would do (exit 1 = changes, like `nomad job plan`)")
        run("nomadgen", "plan", str(SEED), env=env, ok=(1,))

        banner("5. Submit: interfaces first, then jobs layer by layer, each layer healthy first")
        run("nomadgen", "submit", str(SEED), env=env)

        banner("6. Where every instance landed (zone/node), health, interfaces")
        run("nomadgen", "status", str(SEED), env=env)

        banner("7. Read psql:app's interface: Consul KV document and healthy instances")
        run("nomadgen", "interface", "get", "psql:app", env=env)
        banner("   ... and through Consul DNS (SRV + A), as any app can")
        dns = env["NOMADGEN_DNS"]
        run(
            sys.executable,
            "-c",
            "from nomadgen.discovery import lookup; "
            f"print(*lookup('psql:app', dns_server={dns!r}).instances, sep=chr(10))",
            env=env,
        )
        host, port = dns.rsplit(":", 1)
        print(f"(the same with dig: dig @{host} -p {port} _psql-app._tcp.service.consul SRV)")

        before = restarts(env)
        banner(
            "   ... and write a marker into each psql:app instance's data (the stand-in's control API)"
        )
        marks = markers(env, write=True)
        for name, (alloc, node, mark) in sorted(marks.items()):
            print(f"{name:<18} alloc {alloc[:8]} on {node:<9} marker {mark!r}")

        banner("8. Change the manifest: app's own database gets more memory (safe with kept data)")
        changed = state / "dockland.json"
        doc = json.loads(SEED.read_text())
        doc["app"]["overrides"] = {"psql": {"resources": {"cpu": 500, "memory": 1024}}}
        changed.write_text(json.dumps(doc, indent=2) + "\n")
        print('app.overrides = {"psql": {"resources": {"cpu": 500, "memory": 1024}}}')
        print(
            "(a minor image version is as safe; postgres:17 over a 16 data directory would need pg_upgrade)"
        )
        run("nomadgen", "plan", str(changed), env=env, ok=(1,))

        banner("9. Submit the change: only psql:app and what depends on it reload")
        run("nomadgen", "submit", str(changed), env=env)
        import time

        time.sleep(1.0)  # templates re-render after Consul changes (splay)
        after = restarts(env)
        print(f"\n{'JOB':<10} {'ALLOCATIONS':<13} TASK RESTARTS")
        for job in after:
            replaced = (
                "replaced"
                if set(after[job]["allocs"]).isdisjoint(before[job]["allocs"])
                else "kept"
            )
            r = ", ".join(
                f"{t} {n - before[job]['restarts'].get(t, 0)}"
                for t, n in after[job]["restarts"].items()
            )
            print(f"{job:<10} {replaced:<13} {r}")

        banner("   ... psql:app's instances were replaced, and each one's data came along")
        after_marks = markers(env, write=False)
        print(f"{'INSTANCE':<18} {'BEFORE':<9} {'AFTER':<9} {'NODE':<9} MARKER")
        for name, (alloc, node, mark) in sorted(after_marks.items()):
            old = marks.get(name, ("", "", ""))
            kept = "kept" if mark and mark == old[2] else "LOST"
            print(f"{name:<18} {old[0][:8]:<9} {alloc[:8]:<9} {node:<9} {mark!r} ({kept})")
        run("nomadgen", "status", str(changed), env=env)

        banner("10. Nothing left to do: plan says no changes (exit 0)")
        run("nomadgen", "plan", str(changed), env=env)
    finally:
        banner("11. Stop the cluster")
        subprocess.run([*cluster, "down", "--state-dir", str(state)], env=base_env)
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
