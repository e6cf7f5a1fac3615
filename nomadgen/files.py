"""Writing output files: everything is rendered first, then each file is written to a temporary
name and renamed, so a failure never leaves a half-written file behind."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import NomadgenError


def write_tree(root: Path, files: dict[str, str]) -> None:
    try:
        for rel, text in sorted(files.items()):
            dest = root / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
            try:
                with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
                    fh.write(text)
                os.replace(tmp, dest)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
    except OSError as exc:
        raise NomadgenError(f"cannot write {root}: {exc.strerror or exc}",
                            hint="check the --out folder and its permissions") from None


# Inputs are regular files of bounded size (README "Limits"): a FIFO would block forever and
# /dev/zero would never end.
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
MAX_SMALL_FILE_BYTES = 1024 * 1024  # templates, nomadgen.toml, token files


class InputFileError(Exception):
    """Why a file cannot be read as text; the caller wraps it in its own error kind."""


def read_text(path: str | Path, limit: int = MAX_SMALL_FILE_BYTES) -> str:
    """A regular file of at most `limit` bytes, as UTF-8 text. FileNotFoundError passes
    through; anything else wrong is an InputFileError with a short reason."""
    import stat

    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:
        raise InputFileError(getattr(exc, "strerror", None) or str(exc)) from None
    if stat.S_ISDIR(st.st_mode):
        raise InputFileError("it is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise InputFileError("not a regular file (a pipe or device cannot be read as input)")
    if st.st_size > limit:
        raise InputFileError(f"{st.st_size:,} bytes, more than the limit of {limit:,}")
    try:
        with open(p, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise InputFileError(exc.strerror or str(exc)) from None
    if len(data) > limit:
        raise InputFileError(f"more than the limit of {limit:,} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputFileError(f"not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line})") from None
