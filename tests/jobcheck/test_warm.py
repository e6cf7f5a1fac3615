"""Nomad's tools from processes started ahead (dev/jobcheck/nomad_jobcheck/warm.py).

What the stand-in and the tests rely on: the answer is a cold run's, a process is started
before it is needed and gets one input, and no process outlives its pool or its owner.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from nomad_jobcheck import warm
from nomad_jobcheck.jobspec import binary, missing_reason

_JOB = {
    "ID": "web",
    "Name": "web",
    "Type": "service",
    "Datacenters": ["dc1"],
    "TaskGroups": [
        {
            "Name": "web",
            "Count": 1,
            "Tasks": [{"Name": "web", "Driver": "docker", "Config": {"image": "nginx"}}],
        }
    ],
}


def _wait_ready(pool: warm.Pool, n: int) -> list[int]:
    deadline = time.monotonic() + 20
    while len(pids := pool.ready_pids()) < n:
        assert time.monotonic() < deadline, f"{len(pids)} of {n} processes started"
        time.sleep(0.01)
    return pids


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _gone(pids: list[int], within: float = 10) -> bool:
    deadline = time.monotonic() + within
    while any(_alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.mark.skipif(binary() is None, reason=missing_reason())
def test_the_answer_is_a_cold_runs() -> None:
    argv = [str(binary()), "validate", "-"]
    inputs = [_JOB, dict(_JOB, Priority=0), '{"ID": 3']
    codes = set()
    for item in inputs:
        data = (item if isinstance(item, str) else json.dumps(item)).encode()
        cold = subprocess.run(argv, input=data, capture_output=True, timeout=60)
        for _ in range(3):  # a fresh process each time, never one that answered before
            hot = warm.run(argv, data)
            assert (hot.returncode, hot.stdout, hot.stderr) == (
                cold.returncode,
                cold.stdout,
                cold.stderr,
            )
        codes.add(cold.returncode)
    assert codes == {0, 1}  # accepted and refused inputs both compared


def test_a_process_is_started_ahead_and_answers_one_input(tmp_path: Path) -> None:
    # Each process notes when it ran, by pid, before it reads its input.
    argv = ["sh", "-c", f'date +%s.%N > "{tmp_path}/$$"; cat']

    def ran_at(pid: int) -> float:
        return float((tmp_path / str(pid)).read_text())

    pool = warm.Pool(argv, os.environ, size=2)
    try:
        ahead = _wait_ready(pool, 2)
        deadline = time.monotonic() + 20
        while not all((tmp_path / str(p)).exists() for p in ahead):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        asked = time.time()
        first = pool.run(b"one")
        second = pool.run(b"two")
        assert (first.stdout, second.stdout) == (b"one", b"two")
        assert {first.pid, second.pid} == set(ahead)  # one input each, both started ahead
        assert ran_at(first.pid) < asked and ran_at(second.pid) < asked
    finally:
        pool.close()

    cold = warm.Pool(argv, os.environ, size=0)  # known-bad: nothing started ahead
    try:
        asked = time.time()
        assert ran_at(cold.run(b"x").pid) >= asked
    finally:
        cold.close()


def test_close_leaves_no_process() -> None:
    pool = warm.Pool(["cat"], os.environ, size=3)
    pids = _wait_ready(pool, 3)
    open_pool = warm.Pool(["cat"], os.environ, size=1)  # known-bad: not closed yet
    try:
        assert all(_alive(p) for p in _wait_ready(open_pool, 1))
        pool.close()
        assert not any(_alive(p) for p in pids)
    finally:
        open_pool.close()


def test_an_owner_killed_outright_leaves_no_process() -> None:
    tool = binary()
    # Nomad's tool where present: it exits on EOF too.
    argv = [str(tool), "validate", "-"] if tool else ["cat"]
    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import json, os, sys, time\n"
            "from nomad_jobcheck import warm\n"
            f"pool = warm.Pool({argv!r}, os.environ, size=2)\n"
            "while len(pool.ready_pids()) < 2: time.sleep(0.01)\n"
            "print(json.dumps(pool.ready_pids()), flush=True)\n"
            "time.sleep(120)\n",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert owner.stdout is not None
        pids = json.loads(owner.stdout.readline())
        assert len(pids) == 2 and all(_alive(p) for p in pids)
        owner.send_signal(signal.SIGKILL)  # no atexit: the kernel closes the pipes
        owner.wait(timeout=10)
        assert _gone(pids), "idle processes outlived their owner"
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()


def test_the_callers_environment_of_the_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    argv = ["sh", "-c", 'cat >/dev/null; printf %s "$WARM_PROBE"']
    monkeypatch.setenv("WARM_PROBE", "first")
    stale = warm.Pool(argv, os.environ, size=1)  # known-bad: the environment it started with
    try:
        assert warm.run(argv, b"").stdout == b"first"
        monkeypatch.setenv("WARM_PROBE", "second")
        assert warm.run(argv, b"").stdout == b"second"
        assert warm.run(argv, b"", env={"WARM_PROBE": "given"}).stdout == b"given"
        assert stale.run(b"").stdout == b"first"
    finally:
        stale.close()
        warm.close_all()


def test_pools_are_bounded_and_an_evicted_one_is_ended() -> None:
    argv = ["cat"]
    try:
        warm.run(argv, b"", env={"N": "0"})
        first = next(p for k, p in warm._POOLS.items() if k[1] == ("cat",))
        pids = _wait_ready(first, 2)
        for n in range(1, warm._MAX_POOLS + 1):
            warm.run(argv, b"", env={"N": str(n)})
        assert len(warm._POOLS) == warm._MAX_POOLS
        assert first not in warm._POOLS.values()
        assert _gone(pids)
    finally:
        warm.close_all()


def test_a_run_past_its_timeout_is_killed() -> None:
    pool = warm.Pool(["sh", "-c", "exec sleep 30"], os.environ, size=1)
    try:
        ahead = _wait_ready(pool, 1)
        with pytest.raises(subprocess.TimeoutExpired):
            pool.run(b"", timeout=0.3)
        assert not _alive(ahead[0])
    finally:
        pool.close()


def test_a_missing_program_is_an_oserror() -> None:
    with pytest.raises(OSError):
        warm.run(["/nonexistent/nomad-sched"], b"{}")
