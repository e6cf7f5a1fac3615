"""Nomad's tools as processes started ahead of need.

`nomad-sched` and `nomad-jobspec` take one input per process. Most of a short run is Go's
start-up (runtime and package init, 13-19 ms of CPU here), which does not depend on the input.
A pool keeps a few processes started and blocked reading stdin, so a caller pays only for its
input; a background thread starts the next one while the caller waits on the network.

Each process still gets exactly one input, so an answer is the one a cold run gives (the tests
compare both). An idle process exits on its own when its stdin closes: on `close()`, at exit,
or when the owner dies (the kernel closes the pipe), so nothing outlives its owner.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import threading
from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Pool", "Result", "close_all", "run"]


@dataclass(frozen=True)
class Result:
    pid: int
    returncode: int
    stdout: bytes
    stderr: bytes


class Pool:
    """`size` processes of `argv` kept started with `env`; each answers one `run`."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], size: int = 2) -> None:
        self._argv = list(argv)
        self._env = dict(env)
        self._size = size
        self._ready: deque[subprocess.Popen[bytes]] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._fill, name="warm-pool", daemon=True)
        self._thread.start()

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self._argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self._env,
        )

    def _fill(self) -> None:
        while True:
            with self._cond:
                while not self._closed and len(self._ready) >= self._size:
                    self._cond.wait()
                if self._closed:
                    return
            try:
                proc = self._spawn()
            except OSError:
                return  # run() spawns its own and raises the error to its caller
            with self._cond:
                if self._closed:
                    _end(proc)
                    return
                self._ready.append(proc)

    def run(self, data: bytes, timeout: float = 60) -> Result:
        with self._cond:
            proc = self._ready.popleft() if self._ready else None
            self._cond.notify()
        if proc is None or proc.poll() is not None:  # none ready, or one that died idle
            proc = self._spawn()
        try:
            out, err = proc.communicate(data, timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
        return Result(proc.pid, proc.returncode, out, err)

    def ready_pids(self) -> list[int]:
        with self._cond:
            return [p.pid for p in self._ready]

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle = list(self._ready)
            self._ready.clear()
            self._cond.notify_all()
        for proc in idle:
            _end(proc)
        self._thread.join(timeout=5)


def _end(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.communicate()


# Most recently used last; a bound, as tests change the environment between calls.
_POOLS: OrderedDict[tuple[object, ...], Pool] = OrderedDict()
_POOLS_LOCK = threading.Lock()
_MAX_POOLS = 8


def run(
    argv: Sequence[str],
    data: bytes,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
    size: int = 2,
) -> Result:
    """`argv` with `data` on stdin, from the pool for this argv and environment.

    `env` None means the caller's environment as it is now (a change starts another pool, so
    a process never runs with an environment the caller has since left). Pools are per
    process id: a forked child starts its own."""
    environ = dict(os.environ if env is None else env)
    key = (os.getpid(), tuple(argv), tuple(sorted(environ.items())))
    evicted = None
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = _POOLS[key] = Pool(argv, environ, size)
            if len(_POOLS) > _MAX_POOLS:
                evicted = _POOLS.popitem(last=False)[1]
        else:
            _POOLS.move_to_end(key)
    if evicted is not None:
        evicted.close()
    return pool.run(data, timeout)


def close_all() -> None:
    """End every idle process this process started (at exit, and for tests)."""
    with _POOLS_LOCK:
        mine = [p for k, p in _POOLS.items() if k[0] == os.getpid()]
        _POOLS.clear()
    for pool in mine:
        pool.close()


atexit.register(close_all)
