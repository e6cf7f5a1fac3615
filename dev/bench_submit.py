"""Submit benchmarks against the stand-in with 20 ms of latency on every request (see dev/bench.py).

- a first push of 200 jobs in three dependency layers: concurrent requests vs one at a time;
- a push of the unchanged manifest: how many writes it makes (target 0);
- publishing n interfaces: how many Consul transactions (target ceil(n/128)).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from pathlib import Path

LATENCY = 0.02


def layered_manifest(n: int = 200) -> dict:
    """n declared services in three layers: base <- mid <- top."""
    small = {"count": 1, "resources": {"cpu": 10, "memory": 16}, "check": {"type": "tcp"}}
    sizes = (n // 3, n // 3, n - 2 * (n // 3))
    doc = {}
    for i in range(sizes[0]):
        doc[f"base-{i}"] = dict(small)
    for i in range(sizes[1]):
        doc[f"mid-{i}"] = {**small, "depends": [f"base-{i % sizes[0]}"]}
    for i in range(sizes[2]):
        doc[f"top-{i}"] = {**small, "depends": [f"mid-{i % sizes[1]}"]}
    return doc


def _push(standin, path: str, concurrency: int):
    from nomadgen.backends import connect
    from nomadgen.converge import apply
    from nomadgen.operations import prepare
    from nomadgen.settings import consul_endpoint, load_config, nomad_endpoint

    cfg = load_config(env={})
    nomad, consul = connect(nomad_endpoint(address=standin.nomad_addr, env={}),
                            consul_endpoint(address=standin.consul_addr, env={}))
    t = time.perf_counter()
    prep = prepare(path, cfg, nomad, consul, name="bench", concurrency=concurrency)
    report = apply(prep.changes, nomad, consul, cfg.render, concurrency=concurrency, timeout=600)
    return time.perf_counter() - t, prep, report


def submit_bench() -> None:
    from dev.standin.server import StandIn

    for k in [k for k in os.environ if k.startswith(("NOMAD_", "CONSUL_"))]:
        del os.environ[k]
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bench.json"
        doc = layered_manifest(200)
        path.write_text(json.dumps(doc))
        times = {}
        for label, conc in (("one at a time", 1), ("concurrent (16)", 16)):
            big = dict(zones=("zone-a", "zone-b", "zone-c"), nodes_per_zone=1, lifetime=1800,
                       time_scale=0.01)
            with StandIn(**big).start() as s:
                s.faults.latency["nomad"] = s.faults.latency["consul"] = LATENCY
                seconds, prep, report = _push(s, str(path), conc)
                times[label] = seconds
                jobs = sum(1 for c in prep.changes.jobs if c.action == "create")
                print(f"submit     first push, {jobs} jobs in {len(prep.rendered.plan.layers)} layers, "
                      f"{LATENCY * 1000:.0f} ms latency, {label}: {seconds:6.2f} s")
                if conc == 16:
                    s.faults.reset_calls()
                    _, prep2, report2 = _push(s, str(path), conc)
                    writes = [x for x in s.faults.log if x[1] in ("PUT", "DELETE")
                              or (x[1] == "POST" and "/plan" not in x[2])]
                    print(f"submit     unchanged push: {len(writes)} writes (target 0)")
                    n = len(prep.rendered.interfaces)
                    iface_txn = next((int(st.detail.split()[0]) for st in report.steps
                                      if st.what == "interfaces"), 0)
                    print(f"submit     publishing {n} interfaces: {iface_txn} transaction(s) "
                          f"(target ceil({n}/128) = {math.ceil(n / 128)})")
        ratio = times["one at a time"] / times["concurrent (16)"]
        print(f"submit     speed-up concurrent vs one at a time: {ratio:.1f}x (target >= 4x)")
