#!/usr/bin/env python3
"""Local dev cluster for nomadgen: `up`, `down`, `env` (used by `make dev-up` / `make dev-down`).

    python3 dev/cluster.py up    [--state-dir .dev-cluster] [--backend auto|real|standin]
    eval "$(python3 dev/cluster.py env)"
    python3 dev/cluster.py down

`up` starts real dev agents when both `nomad` and `consul` are on PATH (one Consul dev agent,
one Nomad server, three Nomad clients: one per zone, datacenter = zone, node meta `zone`, all on
127.0.0.1), otherwise the stand-in (`python -m nomad_standin serve`), detached. It writes pid
files, logs and an env file into the state dir and prints `export ...` lines. `down` stops only
the processes named in those pid files. Standard library only: runs before any venv exists.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ZONES = ("zone-a", "zone-b", "zone-c")
REAL_PORTS = {
    "consul_http": 8500,
    "consul_dns": 8600,
    "nomad_http": 4646,
    "nomad_rpc": 4647,
    "nomad_serf": 4648,
}


# -- small helpers ---------------------------------------------------------------------------
def _python() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def _start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (clock ticks since boot), or None without /proc.

    Fixed at fork, unlike the command line, which still shows the parent's until the child
    has exec'd: a busy machine made `up` mistake a starting stand-in for one that had exited.
    """
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int, marker: str, start: str | None = None) -> bool:
    """True if `pid` still runs and is the process the pid file names (pid reuse guarded).

    New pid files record the start time; older ones only a command-line marker.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists; /proc says whether it is ours
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return True  # no /proc (macOS): trust the pid file
    if stat[0] == "Z":
        return False  # a zombie has exited already (orphans linger where pid 1 does not reap)
    if start is not None:
        return stat[19] == start
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return True
    return marker in cmdline


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return resp.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (OSError, ValueError):
        return False


def _spawn(cmd: list[str], log: Path, cwd: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(
            cmd,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _read_env(state: Path) -> dict[str, str]:
    env_file = state / "env"
    if not env_file.exists():
        return {}
    pairs = (line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    return {k: v for k, v in pairs}


def _exports(env: dict[str, str]) -> str:
    return "".join(f"export {k}={v}\n" for k, v in env.items())


def _pids(state: Path) -> list[tuple[Path, int, str, str | None]]:
    """(pid file, pid, marker, start time) for each pid file; format `PID START MARKER`."""
    out = []
    for pid_file in sorted(state.glob("*.pid")):
        try:
            words = pid_file.read_text().split()
            pid = int(words[0])
        except (ValueError, IndexError, OSError):
            continue
        start = words[1] if len(words) > 2 and words[1].isdigit() else None
        marker = " ".join(words[2:] if start is not None else words[1:])
        out.append((pid_file, pid, marker, start))
    return out


def _write_pid(state: Path, name: str, proc: subprocess.Popen, marker: str) -> None:
    start = _start_time(proc.pid)
    text = f"{proc.pid} {start} {marker}\n" if start else f"{proc.pid} {marker}\n"
    (state / f"{name}.pid").write_text(text)


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"dev cluster: {what} did not come up within {timeout:.0f}s")
        time.sleep(0.1)


# -- stand-in --------------------------------------------------------------------------------
def up_standin(state: Path, args) -> dict[str, str]:
    env_file = state / "env"
    env_file.unlink(missing_ok=True)
    cmd = [
        _python(),
        "-m",
        "nomad_standin",
        "serve",
        "--env-file",
        str(env_file),
        "--zones",
        args.zones,
        "--lifetime",
        str(args.lifetime),
        "--start-delay",
        str(args.start_delay),
        "--time-scale",
        str(args.time_scale),
    ]
    proc = _spawn(cmd, state / "standin.log", ROOT)
    _write_pid(state, "standin", proc, "nomad_standin")

    def ready() -> bool:
        if proc.poll() is not None:  # our own child: its exit status is the truth
            log = (state / "standin.log").read_text(errors="replace")[-2000:]
            raise SystemExit(
                f"dev cluster: the stand-in exited early (status {proc.returncode}):\n{log}"
            )
        env = _read_env(state)
        return (
            bool(env)
            and _answers(env["NOMAD_ADDR"] + "/v1/status/leader")
            and _answers("http://" + env["CONSUL_HTTP_ADDR"] + "/v1/status/leader")
        )

    _wait(ready, args.timeout, "the stand-in")
    (state / "backend").write_text("standin\n")
    return _read_env(state)


# -- real agents -------------------------------------------------------------------------------
def _nomad_server_hcl(state: Path) -> str:
    return f"""# Nomad dev server: one voter, loopback only.
name      = "server"
data_dir  = "{state / "nomad-server"}"
bind_addr = "127.0.0.1"
ports {{
  http = {REAL_PORTS["nomad_http"]}
  rpc  = {REAL_PORTS["nomad_rpc"]}
  serf = {REAL_PORTS["nomad_serf"]}
}}
server {{
  enabled          = true
  bootstrap_expect = 1
}}
consul {{
  address = "127.0.0.1:{REAL_PORTS["consul_http"]}"
}}
"""


def _nomad_client_hcl(state: Path, zone: str, i: int) -> str:
    base = 5646 + 10 * i  # each client needs its own http/rpc/serf ports on one host
    return f"""# Nomad dev client for {zone}: datacenter = zone, node meta zone.
name       = "{zone}-1"
datacenter = "{zone}"
data_dir   = "{state / f"nomad-{zone}"}"
bind_addr  = "127.0.0.1"
ports {{
  http = {base}
  rpc  = {base + 1}
  serf = {base + 2}
}}
client {{
  enabled           = true
  servers           = ["127.0.0.1:{REAL_PORTS["nomad_rpc"]}"]
  network_interface = "lo"
  meta {{
    zone = "{zone}"
  }}
}}
consul {{
  address = "127.0.0.1:{REAL_PORTS["consul_http"]}"
}}
"""


def up_real(state: Path, args) -> dict[str, str]:
    consul_dir = state / "consul"
    consul_dir.mkdir(exist_ok=True)
    proc = _spawn(
        [
            "consul",
            "agent",
            "-dev",
            "-client",
            "127.0.0.1",
            "-bind",
            "127.0.0.1",
            "-http-port",
            str(REAL_PORTS["consul_http"]),
            "-dns-port",
            str(REAL_PORTS["consul_dns"]),
        ],
        state / "consul.log",
        state,
    )
    _write_pid(state, "consul", proc, "consul")
    consul_url = f"http://127.0.0.1:{REAL_PORTS['consul_http']}"
    _wait(lambda: _answers(consul_url + "/v1/status/leader"), args.timeout, "consul")

    (state / "nomad-server.hcl").write_text(_nomad_server_hcl(state))
    proc = _spawn(
        ["nomad", "agent", "-config", str(state / "nomad-server.hcl")],
        state / "nomad-server.log",
        state,
    )
    _write_pid(state, "nomad-server", proc, "nomad")
    for i, zone in enumerate(ZONES):
        conf = state / f"nomad-{zone}.hcl"
        conf.write_text(_nomad_client_hcl(state, zone, i))
        proc = _spawn(["nomad", "agent", "-config", str(conf)], state / f"nomad-{zone}.log", state)
        _write_pid(state, f"nomad-{zone}", proc, "nomad")
    nomad_url = f"http://127.0.0.1:{REAL_PORTS['nomad_http']}"

    def nodes_ready() -> bool:
        try:
            with urllib.request.urlopen(nomad_url + "/v1/nodes", timeout=1) as resp:
                nodes = json.load(resp)
        except (OSError, ValueError):
            return False
        return sum(1 for n in nodes if n.get("Status") == "ready") >= len(ZONES)

    _wait(nodes_ready, max(args.timeout, 60), "three ready Nomad clients")
    env = {
        "NOMAD_ADDR": nomad_url,
        "CONSUL_HTTP_ADDR": f"127.0.0.1:{REAL_PORTS['consul_http']}",
        "NOMADGEN_DNS": f"127.0.0.1:{REAL_PORTS['consul_dns']}",
    }
    (state / "env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    (state / "backend").write_text("real\n")
    return env


# -- commands ----------------------------------------------------------------------------------
def cmd_up(args) -> int:
    state = Path(args.state_dir).resolve()
    state.mkdir(parents=True, exist_ok=True)
    running = [e for e in _pids(state) if _alive(e[1], e[2], e[3])]
    if running:
        print("# dev cluster already running; `down` first to restart it", file=sys.stderr)
        sys.stdout.write(_exports(_read_env(state)))
        return 0
    for pid_file, *_ in _pids(state):
        pid_file.unlink()
    have_real = bool(shutil.which("nomad") and shutil.which("consul"))
    backend = args.backend if args.backend != "auto" else ("real" if have_real else "standin")
    if backend == "real" and not have_real:
        raise SystemExit("dev cluster: --backend real needs `nomad` and `consul` on PATH")
    try:
        env = up_real(state, args) if backend == "real" else up_standin(state, args)
    except BaseException:
        _stop_all(state, quiet=True)  # never leave half a cluster behind
        raise
    print(f"# dev cluster up ({backend}); state in {state}", file=sys.stderr)
    sys.stdout.write(_exports(env))
    return 0


def _stop_all(state: Path, quiet: bool = False) -> int:
    """Stop every process named in a pid file; a pid file goes only once its process is gone."""
    stopped = 0
    left = []
    # Clients before the server, the server before Consul: reverse start order.
    entries = sorted(_pids(state), key=lambda e: ("consul" in e[0].name, "server" in e[0].name))
    for pid_file, pid, marker, start in entries:
        if _alive(pid, marker, start):
            os.kill(pid, signal.SIGTERM)
            if not _gone(pid, marker, start, 10):
                os.kill(pid, signal.SIGKILL)
            if not _gone(pid, marker, start, 10):
                left.append(f"{pid_file.stem} (pid {pid})")
                continue
            stopped += 1
            if not quiet:
                print(f"# stopped {pid_file.stem} (pid {pid})", file=sys.stderr)
        pid_file.unlink(missing_ok=True)
    if left:
        raise SystemExit(
            "dev cluster: still running after SIGKILL, pid files kept: " + ", ".join(left)
        )
    (state / "env").unlink(missing_ok=True)
    (state / "backend").unlink(missing_ok=True)
    return stopped


def _gone(pid: int, marker: str, start: str | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid, marker, start):
        if time.monotonic() > deadline:
            return False
        try:  # our own child (a failed `up`) must be reaped, else it stays a zombie
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.05)
    return True


def cmd_down(args) -> int:
    state = Path(args.state_dir).resolve()
    if not state.exists() or not _stop_all(state):
        print("# dev cluster: nothing is running", file=sys.stderr)
    return 0


def cmd_env(args) -> int:
    state = Path(args.state_dir).resolve()
    env = _read_env(state)
    if not env or not any(_alive(pid, m, st) for _, pid, m, st in _pids(state)):
        print("# dev cluster is not running (run `make dev-up`)", file=sys.stderr)
        return 1
    sys.stdout.write(_exports(env))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="dev/cluster.py", description=__doc__.splitlines()[0])
    p.add_argument("--state-dir", default=str(ROOT / ".dev-cluster"))
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the dev cluster and print its exports")
    up.add_argument("--backend", choices=("auto", "real", "standin"), default="auto")
    up.add_argument("--zones", default=",".join(ZONES), help="stand-in zones")
    up.add_argument(
        "--lifetime",
        type=float,
        default=8 * 3600,
        help="stand-in stops itself after this many seconds",
    )
    up.add_argument("--start-delay", type=float, default=0.3)
    up.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="stand-in only: multiply job durations (min healthy time, deadlines)",
    )
    up.add_argument("--timeout", type=float, default=20.0)
    sub.add_parser("down", help="stop what `up` started")
    sub.add_parser("env", help="print the exports again")
    # --state-dir is accepted after the command too (`up --state-dir X`).
    for sp in sub.choices.values():
        sp.add_argument("--state-dir", default=argparse.SUPPRESS)
    args = p.parse_args(argv)
    return {"up": cmd_up, "down": cmd_down, "env": cmd_env}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
