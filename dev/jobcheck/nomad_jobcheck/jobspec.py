"""Nomad 1.5.8's own job parser and validator (`../shared/tools/nomad-jobspec`), as functions.

One place for the tests and the stand-in to find and call the binary:

    binary()                 its path, or None (then `missing_reason()` says why)
    parse(hcl)               jobspec2 (`nomad job run -output`), optionally canonicalized
    decode(job)              JSON into api.Job and back: shows the keys Nomad drops
    canonicalize(job)        api.Job.Canonicalize()
    validate(job)            the server's validation: (ok, Nomad's message)

Each call is one short process (a few ms). Input is the bare job or {"Job": ...}; output is
the bare job. A problem raises JobspecError with Nomad's own message.
"""

from __future__ import annotations

import json
import os
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

__all__ = [
    "JobspecError",
    "binary",
    "canonicalize",
    "decode",
    "missing_reason",
    "parse",
    "shared_dir",
    "validate",
]

_REPO_ROOT = Path(__file__).resolve().parents[3]  # dev/jobcheck/nomad_jobcheck/jobspec.py
_REL = Path("tools") / "nomad-jobspec" / "nomad-jobspec"


class JobspecError(Exception):
    """nomad-jobspec refused its input; the message is Nomad's."""


def shared_dir() -> Path:
    base = os.environ.get("NOMADGEN_SHARED")
    return Path(base) if base else _REPO_ROOT.parent / "shared"


@cache
def _binary(shared: Path) -> Path | None:
    path = shared / _REL
    return path if path.is_file() and os.access(path, os.X_OK) else None


def binary() -> Path | None:
    return _binary(shared_dir())


def missing_reason() -> str:
    return (
        f"Nomad's jobspec tool is not at {shared_dir() / _REL} "
        "(put ../shared beside the repo or set NOMADGEN_SHARED)"
    )


def _run(args: list[str], text: str) -> str:
    path = binary()
    if path is None:
        raise FileNotFoundError(missing_reason())
    res = subprocess.run(
        [str(path), *args, "-"], input=text.encode(), capture_output=True, timeout=60
    )
    if res.returncode != 0:
        raise JobspecError((res.stderr or res.stdout).decode(errors="replace").strip())
    return res.stdout.decode()


def _bare(out: str) -> dict:
    return json.loads(out)["Job"]


def _json(job: Any) -> str:
    return json.dumps(job, ensure_ascii=False)


def parse(hcl: str, canonicalize: bool = False) -> dict:
    return _bare(_run(["parse", "-canonicalize"] if canonicalize else ["parse"], hcl))


def decode(job: Any) -> dict:
    return _bare(_run(["decode"], _json(job)))


def canonicalize(job: Any) -> dict:
    return _bare(_run(["canonicalize"], _json(job)))


def validate(job: Any) -> tuple[bool, str]:
    """(True, "") or (False, Nomad's go-multierror text: "N errors occurred:\\n\\t* ...\\n\\n").
    Warnings do not fail a job, as in Nomad. JSON that api.Job cannot decode (a wrong type)
    raises JobspecError with the decoder's message, as the HTTP API answers 400."""
    return _validate_cached(_json(job))


_DECODE_PREFIX = "Failed to parse JSON job: "
_VERDICTS: dict[str, tuple[bool, str]] = {}  # job text -> verdict: tests register the same jobs


def _validate_cached(text: str) -> tuple[bool, str]:
    verdict = _VERDICTS.get(text)
    if verdict is None:
        verdict = _validate(text)
        if len(_VERDICTS) > 4096:
            _VERDICTS.clear()
        _VERDICTS[text] = verdict
    if isinstance(verdict, JobspecError):
        raise verdict
    return verdict


def _validate(text: str) -> tuple[bool, str] | JobspecError:
    path = binary()
    if path is None:
        raise FileNotFoundError(missing_reason())
    res = subprocess.run(
        [str(path), "validate", "-"], input=text.encode(), capture_output=True, timeout=60
    )
    out = res.stdout.decode(errors="replace")
    if res.returncode == 0:
        return True, ""
    marker = "Job validation errors:\n"
    if marker in out:
        return False, out.split(marker, 1)[1].rstrip("\n") + "\n\n"
    err = (res.stderr.decode(errors="replace") or out).strip()
    return JobspecError(err.removeprefix(_DECODE_PREFIX))
