#!/bin/sh
# Thin wrapper for make dev-up / dev-down: dev/cluster.sh up|down|env [options].
# Uses the repo's .venv python when there is one (the stand-in needs no other packages).
set -e
root="$(cd "$(dirname "$0")/.." && pwd)"
py="$root/.venv/bin/python"
[ -x "$py" ] || py=python3
cd "$root"
exec "$py" dev/cluster.py "$@"
