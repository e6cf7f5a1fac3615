"""Run the stand-in cluster in the foreground: `python -m nomad_standin serve [options]`.

Writes NOMAD_ADDR / CONSUL_HTTP_ADDR / NOMADGEN_DNS to --env-file once every port answers,
prints them, and exits on SIGTERM/SIGINT or when --lifetime runs out.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from .server import StandIn


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m nomad_standin", description="Local Nomad + Consul stand-in on 127.0.0.1."
    )
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the stand-in in the foreground")
    s.add_argument(
        "--zones",
        default="zone-a,zone-b,zone-c",
        help="comma-separated zones; each is a Nomad datacenter and node meta zone",
    )
    s.add_argument("--nodes-per-zone", type=int, default=1)
    s.add_argument("--nomad-port", type=int, default=0, help="0 = any free port")
    s.add_argument("--consul-port", type=int, default=0)
    s.add_argument("--dns-port", type=int, default=0)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--lifetime", type=float, default=3600.0, help="seconds before it stops itself")
    s.add_argument(
        "--start-delay",
        type=float,
        default=0.3,
        help="seconds an allocation stays pending before it runs",
    )
    s.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="multiplier for job durations (min_healthy_time, deadlines)",
    )
    s.add_argument(
        "--eval-delay",
        type=float,
        default=0.05,
        help="seconds before the scheduler processes an evaluation (Nomad is async)",
    )
    s.add_argument("--nomad-token", default=None, help="enable Nomad ACLs with this token")
    s.add_argument(
        "--consul-token",
        action="append",
        default=None,
        help="enable Consul ACLs with this token (repeatable)",
    )
    s.add_argument("--env-file", default=None, help="write the client environment here")
    s.add_argument("--log-level", default="WARNING")
    return p


def serve(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    zones = tuple(z.strip() for z in args.zones.split(",") if z.strip())
    standin = StandIn(
        zones=zones,
        nodes_per_zone=args.nodes_per_zone,
        seed=args.seed,
        nomad_acl_token=args.nomad_token,
        consul_acl_tokens=set(args.consul_token or ()) or None,
        start_delay=args.start_delay,
        lifetime=args.lifetime,
        time_scale=args.time_scale,
        nomad_port=args.nomad_port,
        consul_port=args.consul_port,
        dns_port=args.dns_port,
        eval_delay=args.eval_delay,
    )
    done = threading.Event()

    def on_signal(signum, _frame):
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    standin.start()
    env = standin.env()
    text = "".join(f"{k}={v}\n" for k, v in env.items())
    if args.env_file:
        path = Path(args.env_file)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)  # atomic: a watcher never reads half a file
    sys.stdout.write(text)
    sys.stdout.flush()
    # Wake up regularly so signals are handled promptly; stop at lifetime's end too.
    while not done.wait(0.2):
        if standin.wait_stopped(0):
            break
    standin.stop()
    if args.env_file:
        Path(args.env_file).unlink(missing_ok=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
