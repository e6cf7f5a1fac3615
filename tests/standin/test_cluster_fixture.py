"""The `cluster` / `standin_factory` fixtures, `python -m nomad_standin serve` and dev/cluster.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nomad
import pytest
import requests
from nomad_standin.pytest_plugin import is_loopback, real_cluster

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[2]


def _clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("NOMAD_", "CONSUL_", "NOMADGEN_")) or k == "NOMADGEN_SHARED"
    }
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


@pytest.fixture
def dirty_env(monkeypatch):
    """A developer shell pointing at some real cluster; requested before `cluster`."""
    monkeypatch.setenv("NOMAD_ADDR", "http://10.99.0.1:4646")
    monkeypatch.setenv("NOMAD_TOKEN", "shell-token")
    monkeypatch.setenv("CONSUL_HTTP_ADDR", "10.99.0.1:8500")
    monkeypatch.setenv("CONSUL_HTTP_TOKEN", "shell-consul-token")
    monkeypatch.delenv("NOMADGEN_TEST_REAL", raising=False)


def test_cluster_is_a_standin_on_loopback(cluster):
    assert cluster.backend == "standin"
    assert cluster.standin is not None and cluster.faults is cluster.standin.faults
    for addr in (cluster.nomad_addr, cluster.consul_addr):
        assert addr.startswith("http://127.0.0.1:")
    assert cluster.dns_host == "127.0.0.1" and cluster.dns_port > 0
    assert cluster.nomad_client().status.leader.get_leader()
    assert requests.get(f"{cluster.consul_addr}/v1/status/leader", timeout=5).ok
    assert cluster.env()["CONSUL_HTTP_ADDR"] == f"127.0.0.1:{cluster.consul_port}"


def test_cluster_clears_the_shell_environment(dirty_env, cluster):
    assert not [k for k in os.environ if k.startswith(("NOMAD_", "CONSUL_"))]
    # python-nomad reads NOMAD_ADDR / NOMAD_TOKEN at construction: nothing left to read.
    client = nomad.Nomad()
    assert client.address is None and client.token is None
    assert cluster.backend == "standin"


def test_real_cluster_accepts_loopback_only():
    good = real_cluster(
        {
            "NOMAD_ADDR": "http://127.0.0.1:4646",
            "CONSUL_HTTP_ADDR": "localhost:8500",
            "NOMAD_TOKEN": "t",
        }
    )
    assert (good.backend, good.nomad_port, good.consul_host, good.nomad_token) == (
        "real",
        4646,
        "localhost",
        "t",
    )
    assert good.standin is None and good.faults is None
    for bad in (
        {"NOMAD_ADDR": "http://10.0.0.5:4646", "CONSUL_HTTP_ADDR": "127.0.0.1:8500"},
        {"NOMAD_ADDR": "http://127.0.0.1:4646", "CONSUL_HTTP_ADDR": "consul.example:8500"},
        {"NOMAD_ADDR": "http://127.0.0.1:4646"},
    ):
        with pytest.raises(ValueError):
            real_cluster(bad)
    assert is_loopback("::1") and is_loopback("127.0.0.9") and not is_loopback("0.0.0.0")


INNER = """
import os

def test_inner(cluster):
    assert not os.environ.get("NOMAD_ADDR")
    print("BACKEND=" + cluster.backend)
"""


def test_real_mode_refuses_a_remote_address(pytester, monkeypatch):
    pytester.makeconftest('pytest_plugins = ["nomad_standin.pytest_plugin"]')
    pytester.makepyfile(INNER)
    monkeypatch.setenv("NOMADGEN_TEST_REAL", "1")
    monkeypatch.setenv("NOMAD_ADDR", "http://192.0.2.10:4646")
    monkeypatch.setenv("CONSUL_HTTP_ADDR", "127.0.0.1:8500")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*refuses NOMAD_ADDR=http://192.0.2.10:4646*"])
    result.stdout.fnmatch_lines(["*nomadgen cluster backend: real agents*"])


def test_real_mode_uses_the_addresses_it_saw(pytester, monkeypatch):
    pytester.makeconftest('pytest_plugins = ["nomad_standin.pytest_plugin"]')
    pytester.makepyfile(INNER)
    monkeypatch.setenv("NOMADGEN_TEST_REAL", "1")
    monkeypatch.setenv("NOMAD_ADDR", "http://127.0.0.1:4646")
    monkeypatch.setenv("CONSUL_HTTP_ADDR", "127.0.0.1:8500")
    result = pytester.runpytest("-p", "no:cacheprovider", "-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*BACKEND=real*"])


def test_report_header_names_the_standin(pytester, monkeypatch):
    monkeypatch.delenv("NOMADGEN_TEST_REAL", raising=False)
    pytester.makeconftest('pytest_plugins = ["nomad_standin.pytest_plugin"]')
    pytester.makepyfile(INNER)
    result = pytester.runpytest("-p", "no:cacheprovider", "-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["nomadgen cluster backend: stand-in*", "*BACKEND=standin*"])


def test_standin_factory_options_and_cleanup(pytester):
    pytester.makeconftest('pytest_plugins = ["nomad_standin.pytest_plugin"]')
    pytester.makepyfile("""
        made = []

        def test_make(standin_factory):
            s = standin_factory(zones=("east", "west"), nodes_per_zone=2, start_delay=0.5)
            made.append(s)
            names = sorted(n["Name"] for n in s.nomad.nodes)
            assert names == ["east-1", "east-2", "west-1", "west-2"]
            assert len({n["Address"] for n in s.nomad.nodes}) == 4

        def test_stopped_after():
            assert made and not made[0].running
    """)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_standin_lifetime_ends_the_serve_process(tmp_path):
    env_file = tmp_path / "env"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nomad_standin",
            "serve",
            "--lifetime",
            "1",
            "--env-file",
            str(env_file),
        ],
        cwd=ROOT,
        env=_clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "NOMAD_ADDR=http://127.0.0.1:" in out and "NOMADGEN_DNS=127.0.0.1:" in out
    assert not env_file.exists()  # removed on the way out


def test_serve_exits_on_sigterm(tmp_path):
    env_file = tmp_path / "env"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nomad_standin",
            "serve",
            "--lifetime",
            "60",
            "--env-file",
            str(env_file),
        ],
        cwd=ROOT,
        env=_clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while not env_file.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        env = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        assert requests.get(env["NOMAD_ADDR"] + "/v1/status/leader", timeout=5).ok
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie lingers where pid 1 does not reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _cluster_py(state: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "dev/cluster.py", "--state-dir", str(state), *args],
        cwd=ROOT,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_cluster_py_up_env_down_with_the_standin(tmp_path):
    state = tmp_path / "state"
    up = _cluster_py(state, "up", "--backend", "standin")
    try:
        assert up.returncode == 0, up.stderr
        exports = dict(
            line.removeprefix("export ").split("=", 1) for line in up.stdout.splitlines()
        )
        assert set(exports) == {"NOMAD_ADDR", "CONSUL_HTTP_ADDR", "NOMADGEN_DNS"}
        assert requests.get(exports["NOMAD_ADDR"] + "/v1/status/leader", timeout=5).ok
        assert requests.get(
            "http://" + exports["CONSUL_HTTP_ADDR"] + "/v1/status/leader", timeout=5
        ).ok
        pid = int((state / "standin.pid").read_text().split()[0])
        again = _cluster_py(state, "env")
        assert again.returncode == 0 and again.stdout == up.stdout
        twice = _cluster_py(state, "up")
        assert twice.returncode == 0 and "already running" in twice.stderr
    finally:
        down = _cluster_py(state, "down")
    assert down.returncode == 0 and "stopped standin" in down.stderr
    assert not _running(pid)
    assert not (state / "standin.pid").exists()
    idle = _cluster_py(state, "down")
    assert idle.returncode == 0 and "nothing is running" in idle.stderr
    assert _cluster_py(state, "env").returncode == 1


def _start_time(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]


def _burn() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def test_cluster_py_starts_and_stops_twenty_times_on_a_busy_machine(tmp_path):
    """Issue 7: `up` judged a just-forked stand-in by its command line and gave up."""
    burners = [_burn(), _burn()]
    pids = []
    try:
        for i in range(20):
            state = tmp_path / f"s{i % 2}"
            up = _cluster_py(state, "up", "--backend", "standin", "--timeout", "25")
            assert up.returncode == 0, f"round {i}: {up.stderr}"
            pid = int((state / "standin.pid").read_text().split()[0])
            pids.append(pid)
            env = dict(
                line.removeprefix("export ").split("=", 1) for line in up.stdout.splitlines()
            )
            assert requests.get(env["NOMAD_ADDR"] + "/v1/status/leader", timeout=10).ok
            down = _cluster_py(state, "down")
            assert down.returncode == 0 and "stopped standin" in down.stderr, down.stderr
            assert not _running(pid), f"round {i}: pid {pid} left running"
            assert not list(state.glob("*.pid"))
    finally:
        for b in burners:
            b.kill()
            b.wait()
        for i in range(2):
            _cluster_py(tmp_path / f"s{i}", "down")
    assert not [p for p in pids if _running(p)]


def test_cluster_py_down_stops_a_process_whose_command_line_is_not_switched_yet(tmp_path):
    """A pid file names its process by start time: a fresh fork still shows the parent's cmdline."""
    state = tmp_path / "state"
    state.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (state / "standin.pid").write_text(f"{proc.pid} {_start_time(proc.pid)} nomad_standin\n")
        down = _cluster_py(state, "down")
        assert down.returncode == 0 and "stopped standin" in down.stderr, down.stderr
        assert proc.wait(timeout=10) is not None
        assert not (state / "standin.pid").exists()
    finally:
        proc.kill()
        proc.wait()


def test_cluster_py_leaves_a_reused_pid_alone(tmp_path):
    """Same pid, other start time: another process now; it is neither signalled nor kept."""
    state = tmp_path / "state"
    state.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        wrong = int(_start_time(proc.pid)) - 1
        (state / "standin.pid").write_text(f"{proc.pid} {wrong} nomad_standin\n")
        down = _cluster_py(state, "down")
        assert down.returncode == 0 and "nothing is running" in down.stderr, down.stderr
        assert proc.poll() is None
        assert not (state / "standin.pid").exists()
    finally:
        proc.kill()
        proc.wait()


def test_cluster_py_up_never_judges_the_starting_standin_by_its_command_line(
    tmp_path, monkeypatch, capsys
):
    """The flaky "the stand-in exited early": right after Popen returns, the child can still be
    inside exec, and the kernel shows an empty /proc/PID/cmdline (seen in about half of the
    spawns on this machine). `up` once looked for "nomad_standin" there; it must judge its own
    child by the child's exit status. Here every command line reads empty: `up` still works."""
    import argparse

    from dev import cluster as cluster_py

    real_read_bytes = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        return b"" if self.name == "cmdline" else real_read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    for key in [k for k in os.environ if k.startswith(("NOMAD_", "CONSUL_"))]:
        monkeypatch.delenv(key)
    state = tmp_path / "state"
    args = argparse.Namespace(
        state_dir=str(state),
        backend="standin",
        zones="zone-a",
        lifetime=60.0,
        start_delay=0.3,
        time_scale=1.0,
        timeout=120.0,
    )
    try:
        assert cluster_py.cmd_up(args) == 0
        env = dict(
            line.removeprefix("export ").split("=", 1)
            for line in capsys.readouterr().out.splitlines()
        )
        assert requests.get(env["NOMAD_ADDR"] + "/v1/status/leader", timeout=10).ok
        pid = int((state / "standin.pid").read_text().split()[0])
    finally:
        cluster_py.cmd_down(args)
    assert "stopped standin" in capsys.readouterr().err
    assert not _running(pid)


def _processes_naming(text: str) -> list[int]:
    """Live processes whose command line holds `text` (a test's own state dir)."""
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmdline and _running(int(proc.name)):
                out.append(int(proc.name))
    return out


def test_cluster_py_up_reports_a_stand_in_that_exits_and_keeps_nothing(tmp_path):
    """`up` judges its own child by its exit status: the status and the log are reported, and
    no pid file is left for a process that is gone."""
    state = tmp_path / "state"
    up = _cluster_py(state, "up", "--backend", "standin", "--zones=-x")
    assert up.returncode != 0
    assert "the stand-in exited early (status 2)" in up.stderr
    assert "argument --zones: expected one argument" in up.stderr  # the log, as it is
    assert not list(state.glob("*.pid")) and not (state / "env").exists()


def test_cluster_py_up_that_times_out_stops_what_it_started(tmp_path):
    """A stand-in that does not answer within --timeout is stopped, not left running for
    its 8 h lifetime, and its pid file goes only once it is gone."""
    state = tmp_path / "state"
    up = _cluster_py(state, "up", "--backend", "standin", "--timeout", "0")
    assert up.returncode != 0 and "did not come up within 0s" in up.stderr, up.stderr
    assert _processes_naming(str(state)) == []
    assert not list(state.glob("*.pid"))
    # Known-bad for the process check: a running stand-in of this state dir is found.
    up = _cluster_py(state, "up", "--backend", "standin")
    try:
        assert up.returncode == 0, up.stderr
        pid = int((state / "standin.pid").read_text().split()[0])
        assert _processes_naming(str(state)) == [pid]
    finally:
        _cluster_py(state, "down")
    assert _processes_naming(str(state)) == []
