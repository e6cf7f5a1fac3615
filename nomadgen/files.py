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
