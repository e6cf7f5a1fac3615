"""`make bench`: nomadgen's speed and memory targets, printed as figures and ratios measured side
by side in one run (never asserted in tests).

1. Start-up: the console script `nomadgen render examples/dockland.json` (bytecode compiled, as a
   wheel install leaves it) vs `python -c "import typer"`: at most 1.2x.
2. Memory: peak RSS of `nomadgen render -f json --out DIR` at 10k and 50k services (target at
   50k: under 700 MB).
3. Render at 10k services: JSON within 1.5x its serialization floor (the stdlib's
   `json.dumps(indent=2, sort_keys=True)` of the same jobs plus the same writes, same bytes), and
   HCL within 1.2x JSON.
4. Submit (with the stand-in cluster, 20 ms latency per request): see dev/bench_submit.py.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def _time(cmd: list[str], env: dict) -> float:
    """The child's CPU time (user + system): other work on the machine moves it little."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env, cwd=ROOT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def startup(runs: int = 21) -> None:
    # An installed wheel has compiled bytecode; an editable checkout may not (PYTHONDONTWRITEBYTECODE).
    subprocess.run([PY, "-m", "compileall", "-q", str(ROOT / "nomadgen")], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOMAD", "CONSUL"))}
    typer_cmd = [PY, "-c", "import typer"]
    # The installed console script, as users run it (its fast path: nomadgen/entry.py).
    ours = [str(Path(PY).with_name("nomadgen")), "render", "examples/dockland.json"]
    a, b = [], []
    for _ in range(3):  # warm the file cache
        _time(typer_cmd, env), _time(ours, env)
    for _ in range(runs):  # interleaved, so drift hits both alike
        a.append(_time(typer_cmd, env))
        b.append(_time(ours, env))
    ta, tb = statistics.median(a), statistics.median(b)
    print(
        f"start-up   CPU: import typer {ta * 1000:6.1f} ms | nomadgen render {tb * 1000:6.1f} ms "
        f"| ratio {tb / ta:.2f}x (target <= 1.2x)"
    )


def manifest(n: int) -> dict:
    """n services in a web of dependencies: generic ones, shared sets, and declared services."""
    kinds = ["psql", "memcache", "redis", "mysql"]
    doc: dict = {}
    for i in range(n):
        deps = [kinds[i % 4]]
        if i % 3 == 1:
            deps.append(f"svc-{i - 1}")  # a declared service
        if i % 5 == 2 and (i - 2) % 4 == 0:
            deps.append(f"psql:svc-{i - 2}")  # a shared set
        doc[f"svc-{i}"] = {"depends": deps}
    return doc


# Peak memory of the command as users run it: a parent that only reports its child's peak RSS.
RSS_CHILD = r"""
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
"""

# The CLI's own calls for `render -f FMT --out DIR` beside the serialization floor: the stdlib's
# json.dumps(indent=2, sort_keys=True) of the same jobs, written by the same writer. CPU time,
# so that other work on the machine does not move the ratios.
FLOOR_CHILD = r"""
import gc, json, sys, tempfile, time
from pathlib import Path
gc.disable()  # as `nomadgen render` does (nomadgen/cli.py main)
from nomadgen.files import write_tree
from nomadgen.pipeline import build_resolution, iter_files
from nomadgen.render import render
from nomadgen.settings import load_config
cfg = load_config(env={})
out = Path(tempfile.mkdtemp(dir=sys.argv[2]))
def ours(fmt):
    t = time.process_time()
    _, plan = build_resolution(sys.argv[1], cfg, name="bench")
    write_tree(out / fmt, iter_files(plan, cfg.render, fmt))  # as render --out does
    return time.process_time() - t, plan
json_s, plan = ours("json")
hcl_s, _ = ours("hcl")
jobs = list(render(plan, cfg.render))
t = time.process_time()
files = {j.id + ".nomad.json": json.dumps({"Job": j.api}, indent=2, sort_keys=True,
                                           ensure_ascii=False) + "\n" for j in jobs}
write_tree(out / "floor", files)
floor_s = time.process_time() - t
same = all((out / "json" / k).read_text() == v for k, v in files.items())
print(json.dumps({"json": json_s, "hcl": hcl_s, "floor": floor_s, "same_bytes": same,
                  "jobs": len(jobs)}))
"""


def _tmpfs() -> str:
    # Output on tmpfs where there is one, so the figures are CPU rather than disk.
    return (
        "/dev/shm"
        if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK)
        else tempfile.gettempdir()
    )


def scale() -> None:
    cli = str(Path(PY).with_name("nomadgen"))
    with tempfile.TemporaryDirectory(dir=_tmpfs()) as d:
        for n in (10_000, 50_000):
            path = Path(d) / f"m{n}.json"
            path.write_text(json.dumps(manifest(n)))
            peak = float(
                subprocess.run(
                    [
                        PY,
                        "-c",
                        RSS_CHILD,
                        cli,
                        "render",
                        str(path),
                        "-f",
                        "json",
                        "--out",
                        str(Path(d) / f"out{n}"),
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                    cwd=ROOT,
                ).stdout
            )
            target = " (target < 700 MB)" if n == 50_000 else ""
            print(
                f"memory     render -f json --out, {n:>6} services: peak RSS {peak:7.1f} MB{target}"
            )
        path = Path(d) / "m10000.json"
        runs = [
            json.loads(
                subprocess.run(
                    [PY, "-c", FLOOR_CHILD, str(path), d],
                    check=True,
                    capture_output=True,
                    text=True,
                    cwd=ROOT,
                ).stdout
            )
            for _ in range(3)
        ]
    best = {k: min(r[k] for r in runs) for k in ("json", "hcl", "floor")}
    print(
        f"render     10k services, {runs[0]['jobs']} jobs, CPU: json {best['json']:.2f} s, "
        f"floor {best['floor']:.2f} s (json.dumps + writes, same bytes: {runs[0]['same_bytes']}) "
        f"| ratio {best['json'] / best['floor']:.2f}x (target <= 1.5x)"
    )
    print(
        f"render     10k services, CPU: hcl {best['hcl']:.2f} s vs json {best['json']:.2f} s "
        f"| ratio {best['hcl'] / best['json']:.2f}x (target <= 1.2x)"
    )


def main() -> None:
    startup()
    scale()
    try:
        from dev.bench_submit import submit_bench
    except ImportError as exc:  # pragma: no cover
        print(f"submit     skipped: {exc}")
    else:
        submit_bench()


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
