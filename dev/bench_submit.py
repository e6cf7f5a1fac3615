"""Submit benchmarks against the stand-in with 20 ms of latency on every request (see dev/bench.py).

- a first push of 200 jobs in three dependency layers: concurrent requests vs one at a time;
- a push of the unchanged manifest: how many writes it makes (target 0);
- publishing n interfaces: how many Consul transactions (target ceil(n/128));
- 200 jobs in 10 layers: time per layer against its floor (round trip + the stand-in's health
  delay), and requests per job;
- 1000 jobs in 3 layers: the stand-in scales; the push against its request-count floor
  (requests x latency / concurrency + layers x health delay).

Both are also set against a fuller floor: the issue's, plus the stand-in's other waits on each
layer's path (the evaluation delay after a register, and the layer's latest first check run,
which Consul staggers within the check's interval), plus the CPU of Nomad's own tools that the
stand-in runs (a nomad-sched process per evaluation and dry-run plan, a nomad-jobspec validate
per job text) spread over the cores; each line says which target is met on which floor.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from pathlib import Path

LATENCY = 0.02


def layered_manifest(n: int = 200, layers: int = 3) -> dict:
    """n declared services in layers, each depending on one of the layer before:
    base <- mid <- top for three layers, l0 <- l1 <- ... otherwise."""
    small = {"count": 1, "resources": {"cpu": 10, "memory": 16}, "check": {"type": "tcp"}}
    names = ("base", "mid", "top") if layers == 3 else tuple(f"l{k}" for k in range(layers))
    sizes = [n // layers] * (layers - 1) + [n - (layers - 1) * (n // layers)]
    doc = {}
    for k, (name, size) in enumerate(zip(names, sizes, strict=True)):
        for i in range(size):
            doc[f"{name}-{i}"] = (
                dict(small)
                if k == 0
                else {**small, "depends": [f"{names[k - 1]}-{i % sizes[k - 1]}"]}
            )
    return doc


STANDIN = dict(
    zones=("zone-a", "zone-b", "zone-c"), nodes_per_zone=1, lifetime=1800, time_scale=0.01
)


def _health_delay(s, prep) -> float:
    """What the stand-in makes a layer wait once its jobs are placed: the start delay, the
    scaled min_healthy_time of the slowest group, and one tick of its clock."""
    longest = max(
        (
            int((g.get("Update") or j.api.get("Update") or {}).get("MinHealthyTime") or 0)
            for j in prep.rendered.jobs
            for g in j.api.get("TaskGroups") or []
        ),
        default=0,
    )
    return s.nomad.start_delay + s.nomad.scaled(longest) + s._tick  # noqa: SLF001


def _modelled_waits(s, prep, per_layer: float) -> tuple[float, float]:
    """The stand-in's other waits on every layer's path, which the issue's floor predates:
    (the evaluation delay after a register, the expected latest first check run of a layer of
    `per_layer` jobs). Consul runs a new check first at a random moment within its interval
    (agent/checks/check.go), so the latest of n uniform draws is expected at interval x n/(n+1).
    """
    interval = max(
        (
            int(c.get("Interval") or 0)
            for j in prep.rendered.jobs
            for g in j.api.get("TaskGroups") or []
            for svc in (g.get("Services") or [])
            + [x for t in g.get("Tasks") or [] for x in t.get("Services") or []]
            for c in svc.get("Checks") or []
        ),
        default=0,
    )
    return s.nomad.eval_delay, s.nomad.scaled(interval) * per_layer / (per_layer + 1)


def _counting_tool_runs() -> list[int]:
    """Count the stand-in's runs of Nomad's tools: [nomad-sched (each evaluation and plan is one
    process), nomad-jobspec validate (Job.Validate, once per distinct job text)]."""
    from nomad_jobcheck import jobspec
    from nomad_standin import nomadsched

    runs = [0, 0]
    for k, (mod, name) in enumerate(((nomadsched, "run"), (jobspec, "_validate"))):
        fn = getattr(mod, name)
        fn = getattr(fn, "__wrapped__", fn)

        def counted(*args, _fn=fn, _k=k, **kwargs):
            runs[_k] += 1
            return _fn(*args, **kwargs)

        counted.__wrapped__ = fn  # type: ignore[attr-defined]
        setattr(mod, name, counted)
    return runs


def _children_cpu() -> float:
    t = os.times()
    return t.children_user + t.children_system


def layers_bench(n: int, layers: int, concurrency: int = 16) -> dict:
    """One first push of n jobs in `layers` layers at LATENCY per request: figures and floors."""
    from nomad_standin.server import StandIn

    runs = _counting_tool_runs()

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bench.json"
        path.write_text(json.dumps(layered_manifest(n, layers)))
        with StandIn(**STANDIN) as s:
            s.faults.latency["nomad"] = s.faults.latency["consul"] = LATENCY
            cpu, children = time.process_time(), _children_cpu()
            error = ""
            marks: list[float] = []
            try:
                seconds, prep, _ = _push(s, str(path), concurrency, marks)
            except Exception as exc:  # noqa: BLE001 - the bench reports a failed push
                seconds, prep, error = float("nan"), None, str(exc).splitlines()[0]
            cpu = time.process_time() - cpu
            sched_cpu = _children_cpu() - children
            requests = len(s.faults.log)
            if prep is None:
                return {"error": error, "requests": requests, "cpu": cpu, "n": n}
            delay = _health_delay(s, prep)
            layer_count = len(prep.rendered.plan.layers)
            eval_delay, first_check = _modelled_waits(s, prep, n / layer_count)
            return {
                "seconds": seconds,
                "prepare": marks[0] if marks else float("nan"),
                # Nomad's tools' CPU in the layers (observe's dry-run plans excluded)
                "layers_sched_cpu": sched_cpu - (marks[1] - children if len(marks) > 1 else 0.0),
                "requests": requests,
                "cpu": cpu,
                "n": n,
                "error": "",
                "layers": layer_count,
                "delay": delay,
                "waits": eval_delay + first_check,
                "eval_delay": eval_delay,
                "first_check": first_check,
                "floor": requests * LATENCY / concurrency + layer_count * delay,
                "sched_errors": len(s.nomad.sched_errors),
                "sched_runs": runs[0],
                "jobspec_runs": runs[1],
                "sched_cpu": sched_cpu,
            }


def depth_and_scale_bench() -> None:
    cores = os.cpu_count() or 1
    r = layers_bench(200, 10)
    if r["error"]:
        print(f"submit     200 jobs in 10 layers: FAILED: {r['error']}")
    else:
        # The layers only: observe (one dry-run plan per job) comes before the first one.
        per_layer = (r["seconds"] - r["prepare"]) / r["layers"]
        floor = 2 * LATENCY + r["delay"]  # a round trip (request, answer) and the health wait
        waits = floor + r["waits"]
        tools = r["layers_sched_cpu"] / r["layers"] / cores  # a layer's evaluations, spread
        print(
            f"submit     200 jobs in {r['layers']} layers: {per_layer:.2f} s per layer "
            f"(after {r['prepare']:.2f} s of observe and plans), floor {floor:.2f} s (round trip "
            f"+ health delay {r['delay']:.2f} s) | ratio {per_layer / floor:.2f}x (target <= "
            f"1.5x); {r['requests'] / r['n']:.1f} requests per job, {r['cpu']:.1f} s CPU"
        )
        print(
            f"submit     with the stand-in's other waits on each layer's path (evaluation delay "
            f"{r['eval_delay']:.2f} s, a layer's latest first check run {r['first_check']:.3f} s"
            f" expected) the floor is {waits:.2f} s | ratio {per_layer / waits:.2f}x; with "
            f"Nomad's tools too ({r['layers_sched_cpu']:.2f} s CPU in the layers, an evaluation "
            f"per job, one nomad-sched run each, a layer's share spread over {cores} cores) "
            f"{waits + tools:.2f} s | ratio {per_layer / (waits + tools):.2f}x "
            f"({_met(per_layer / (waits + tools), 1.5)}; on the issue's floor: "
            f"{_met(per_layer / floor, 1.5)})"
        )
    r = layers_bench(1000, 3)
    if r["error"]:
        print(
            f"submit     1000 jobs in 3 layers: FAILED after {r['requests']} requests "
            f"({r['cpu']:.1f} s CPU): {r['error']}"
        )
        return
    print(
        f"submit     1000 jobs in {r['layers']} layers, {LATENCY * 1000:.0f} ms latency: "
        f"{r['seconds']:.2f} s ({r['prepare']:.2f} s of it observe and plans), floor "
        f"{r['floor']:.2f} s ({r['requests']} requests x "
        f"{LATENCY * 1000:.0f} ms / 16 + {r['layers']} x {r['delay']:.2f} s) | ratio "
        f"{r['seconds'] / r['floor']:.2f}x (target <= 2x); {r['requests'] / r['n']:.1f} "
        f"requests per job, {r['cpu']:.1f} s CPU (nomadgen and stand-in)"
    )
    if r["sched_runs"]:
        with_tools = r["floor"] + r["layers"] * r["waits"] + r["sched_cpu"] / cores
        print(
            f"submit     of which Nomad's tools: {r['sched_runs']} nomad-sched runs (a dry-run "
            f"plan and an evaluation per job) and {r['jobspec_runs']} nomad-jobspec validate "
            f"runs (one per job text), {r['sched_cpu']:.1f} s CPU, which the floor does not "
            f"count; with it spread over {cores} cores and the stand-in's other waits "
            f"({r['layers']} x {r['waits']:.2f} s) the floor is {with_tools:.2f} s | ratio "
            f"{r['seconds'] / with_tools:.2f}x ({_met(r['seconds'] / with_tools, 2.0)}; on the "
            f"issue's floor: {_met(r['seconds'] / r['floor'], 2.0)})"
        )


def _met(ratio: float, target: float) -> str:
    return f"target <= {target}x {'met' if ratio <= target else 'not met'}"


def _push(standin, path: str, concurrency: int, marks: list[float] | None = None):
    from nomadgen.backends import connect
    from nomadgen.converge import apply
    from nomadgen.operations import prepare
    from nomadgen.settings import consul_endpoint, load_config, nomad_endpoint

    cfg = load_config(env={})
    nomad, consul = connect(
        nomad_endpoint(address=standin.nomad_addr, env={}),
        consul_endpoint(address=standin.consul_addr, env={}),
    )
    t = time.perf_counter()
    prep = prepare(path, cfg, nomad, consul, name="bench", concurrency=concurrency)
    if marks is not None:
        marks.extend((time.perf_counter() - t, _children_cpu()))
    report = apply(prep.changes, nomad, consul, cfg.render, concurrency=concurrency, timeout=600)
    return time.perf_counter() - t, prep, report


def submit_bench() -> None:
    from nomad_standin.server import StandIn

    for k in [k for k in os.environ if k.startswith(("NOMAD_", "CONSUL_"))]:
        del os.environ[k]
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bench.json"
        doc = layered_manifest(200)
        path.write_text(json.dumps(doc))
        times = {}
        for label, conc in (("one at a time", 1), ("concurrent (16)", 16)):
            with StandIn(**STANDIN) as s:
                s.faults.latency["nomad"] = s.faults.latency["consul"] = LATENCY
                seconds, prep, report = _push(s, str(path), conc)
                times[label] = seconds
                jobs = sum(1 for c in prep.changes.jobs if c.action == "create")
                print(
                    f"submit     first push, {jobs} jobs in {len(prep.rendered.plan.layers)} layers, "
                    f"{LATENCY * 1000:.0f} ms latency, {label}: {seconds:6.2f} s"
                )
                if conc == 16:
                    s.faults.reset_calls()
                    _, prep2, report2 = _push(s, str(path), conc)
                    writes = [
                        x
                        for x in s.faults.log
                        if x[1] in ("PUT", "DELETE") or (x[1] == "POST" and "/plan" not in x[2])
                    ]
                    print(f"submit     unchanged push: {len(writes)} writes (target 0)")
                    n = len(prep.rendered.interfaces)
                    iface_txn = next(
                        (
                            int(st.detail.split()[0])
                            for st in report.steps
                            if st.what == "interfaces"
                        ),
                        0,
                    )
                    print(
                        f"submit     publishing {n} interfaces: {iface_txn} transaction(s) "
                        f"(target ceil({n}/128) = {math.ceil(n / 128)})"
                    )
        ratio = times["one at a time"] / times["concurrent (16)"]
        print(f"submit     speed-up concurrent vs one at a time: {ratio:.1f}x (target >= 4x)")
    depth_and_scale_bench()
