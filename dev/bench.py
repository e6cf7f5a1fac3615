"""`make bench`: nomadgen's speed targets, printed as figures and ratios (never asserted in tests).

1. Start-up: `nomadgen render examples/dockland.json` vs `python -c "import typer"`, side by side
   (target: at most 1.5x).
2. Scale: a generated manifest of 10,000 services resolves and renders to JSON in under 10 s and
   2 GB; 20,000 take at most 2.2x as long.
3. Submit (with the stand-in cluster, 20 ms latency per request): a first push of 200 jobs in
   three layers vs one request at a time (target >= 4x); an unchanged push makes zero writes;
   n interfaces take ceil(n/128) transactions.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def _time(cmd: list[str], env: dict) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env, cwd=ROOT)
    return time.perf_counter() - t


def startup(runs: int = 21) -> None:
    # An installed wheel has compiled bytecode; an editable checkout may not (PYTHONDONTWRITEBYTECODE).
    subprocess.run([PY, "-m", "compileall", "-q", str(ROOT / "nomadgen")], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOMAD", "CONSUL"))}
    typer_cmd = [PY, "-c", "import typer"]
    ours = [PY, "-m", "nomadgen", "render", "examples/dockland.json"]
    a, b = [], []
    for _ in range(3):  # warm the file cache
        _time(typer_cmd, env), _time(ours, env)
    for _ in range(runs):  # interleaved, so drift hits both alike
        a.append(_time(typer_cmd, env))
        b.append(_time(ours, env))
    ta, tb = statistics.median(a), statistics.median(b)
    print(f"start-up   import typer {ta * 1000:6.1f} ms | nomadgen render {tb * 1000:6.1f} ms "
          f"| ratio {tb / ta:.2f}x (target <= 1.5x)")


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


# What `nomadgen render --format json --out DIR` computes (same calls), minus the disk writes.
SCALE_CHILD = r"""
import gc, json, resource, sys, time
gc.disable()  # as `nomadgen render` does (nomadgen/cli.py main)
from nomadgen.pipeline import build_plan, no_gc, render_files
from nomadgen.render import interfaces
from nomadgen.settings import load_config
cfg = load_config(env={})
t = time.perf_counter()
with no_gc():
    _, plan = build_plan(sys.argv[1], cfg, name="bench")
files = render_files(plan, cfg.render, "json")
with no_gc():
    docs = interfaces(plan, cfg.render)
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "jobs": len(files), "sets": len(plan.sets),
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def scale() -> None:
    results = {}
    with tempfile.TemporaryDirectory() as d:
        for n in (10_000, 20_000):
            path = Path(d) / f"m{n}.json"
            path.write_text(json.dumps(manifest(n)))
            runs = []
            for _ in range(3):
                out = subprocess.run([PY, "-c", SCALE_CHILD, str(path)], check=True,
                                     capture_output=True, text=True, cwd=ROOT)
                runs.append(json.loads(out.stdout))
            best = min(runs, key=lambda r: r["seconds"])
            results[n] = best
            print(f"scale      {n:>6} services -> {best['sets']:>6} sets, {best['jobs']:>6} jobs: "
                  f"{best['seconds']:6.2f} s, peak RSS {best['maxrss_mb']:7.1f} MB "
                  f"(target < 10 s, < 2048 MB)")
    ratio = results[20_000]["seconds"] / results[10_000]["seconds"]
    print(f"scale      20k/10k time ratio {ratio:.2f}x (target <= 2.2x)")


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
