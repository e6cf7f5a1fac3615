"""Writing output files: each file is checked and written to a temporary name as it is rendered,
then all are renamed, so a failure never leaves a partial tree behind. Reading input
files: regular files of bounded size only."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from .errors import NomadgenError, Problem

MARKER = ".nomadgen-{kind}"  # lists the files a command wrote, so the next run can tidy up


def write_tree(
    root: Path,
    files: Mapping[str, str] | Iterable[tuple[str, str]],
    *,
    kind: str = "render",
    force: bool = False,
) -> list[str]:
    """Write the whole tree or nothing: each file is checked and written to a temporary name as
    it comes (`files` may be a generator, so a big render never holds every text at once), then
    all are renamed into place. A path in the way, an error while writing, or an exception from
    the generator removes every temporary file and new folder: nothing is written. Files that
    the previous run of the same command listed in its marker and this run does not write are
    removed (returned). A folder that holds other files is refused unless `force`; `/` always
    is. Files are created with the usual mode (0666 less the umask: 0644 under umask 022), like
    other command output. A name given twice: the last text wins."""
    marker = MARKER.format(kind=kind)
    root = Path(root)
    try:
        if root.resolve() == Path(root.resolve().anchor):
            raise NomadgenError(
                f"refusing to write into {root}: it is the file system root",
                hint="pass a folder of its own, e.g. --out out/",
            )
        previous = _previous(root, marker)
        _preflight(root, previous is not None, force)
    except OSError as exc:
        raise NomadgenError(
            f"cannot write {root}: {exc.strerror or exc}",
            hint="check the --out folder and its permissions",
        ) from None
    items = sorted(files.items()) if isinstance(files, Mapping) else files
    staged: dict[str, str] = {}  # relative name -> its temporary file
    made: list[Path] = []
    problems: list[tuple[str, Problem]] = []
    in_the_way: dict[Path, bool] = {}  # each folder looked at once, not once per file
    ready: set[Path] = set()  # folders known to exist: one look per folder, not per file

    def undo() -> None:
        for tmp in staged.values():
            Path(tmp).unlink(missing_ok=True)
        for d in reversed(made):
            try:
                d.rmdir()
            except OSError:
                pass

    try:
        for rel, text in items:
            dest = root / rel
            bad = _in_the_way(root, rel, dest, in_the_way)
            if bad is not None:
                problems.append((rel, bad))
            if problems:
                continue  # nothing more is written; the rest are still checked
            if dest.parent not in ready:
                for parent in reversed([dest.parent, *dest.parent.parents]):
                    if parent not in ready and not parent.exists():
                        parent.mkdir()
                        made.append(parent)
                    ready.add(parent)
            fd, tmp = _create_temp(dest.parent, dest.name)
            old = staged.pop(rel, None)
            if old is not None:
                Path(old).unlink(missing_ok=True)
            staged[rel] = tmp
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(text)
    except OSError as exc:
        undo()
        raise NomadgenError(
            f"cannot write {root}: {exc.strerror or exc}; nothing was written",
            hint="check the --out folder and its permissions",
        ) from None
    except BaseException:
        undo()  # the generator failed (bad input, interrupt): nothing half-written stays
        raise
    if problems:
        undo()
        raise NomadgenError(
            f"cannot write into {root}; nothing was written",
            [p for _, p in sorted(problems, key=lambda x: x[0])][:20],
            hint="move those paths out of the way",
        )
    names = sorted(staged)
    try:
        for rel in names:
            os.replace(staged[rel], root / rel)
        stale = sorted(set(previous or ()) - set(names))
        for rel in stale:
            (root / rel).unlink(missing_ok=True)
        fd, tmp = _create_temp(root, marker)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write("".join(f"{rel}\n" for rel in names))
        os.replace(tmp, root / marker)
    except OSError as exc:
        raise NomadgenError(
            f"cannot finish writing {root}: {exc.strerror or exc}", hint="run the command again"
        ) from None
    return stale


def _create_temp(folder: Path, name: str) -> tuple[int, str]:
    """A new file beside `name`, for writing and then renaming into place. Created with mode
    0666 less the umask (0644 under umask 022), as command output usually is; its name holds
    this process's ID, and O_EXCL never reuses a file someone else holds."""
    for n in range(100):
        tmp = os.path.join(folder, f".{name}.{os.getpid()}.{n}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {name} in {folder}")


def _previous(root: Path, marker: str) -> list[str] | None:
    """The files the last run of this command wrote here (None: no marker)."""
    path = root / marker
    if not path.is_file():
        return None
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        rel = line.strip()
        # Only plain relative paths below root: a marker is never a way to delete elsewhere.
        if rel and not rel.startswith("/") and ".." not in Path(rel).parts:
            out.append(rel)
    return out


def _preflight(root: Path, ours: bool, force: bool) -> None:
    if root.exists() and not root.is_dir():
        raise NomadgenError(f"cannot write into {root}: it is a file, not a folder")
    if root.is_dir() and not ours and not force:
        others = [p.name for p in root.iterdir() if not p.name.startswith(".nomadgen-")]
        if others and not any(p.name.startswith(".nomadgen-") for p in root.iterdir()):
            raise NomadgenError(
                f"refusing to write into {root}: it holds files nomadgen did not write "
                f"({', '.join(sorted(others)[:3])}{' ...' if len(others) > 3 else ''})",
                hint="pass an empty or new folder, or --force to write beside those files",
            )


def _in_the_way(root: Path, rel: str, dest: Path, seen: dict[Path, bool]) -> Problem | None:
    """Why `rel` cannot be written (a file where a folder must go, a folder where the file
    must go), or None."""
    for parent in [*reversed(dest.parent.parents), dest.parent]:
        bad = seen.get(parent)
        if bad is None:
            bad = seen[parent] = (
                parent.exists() and not parent.is_dir() and root in (parent, *parent.parents)
            )
        if bad:
            return Problem(f"{parent} is a file, so {rel} cannot be written")
    if dest.is_dir():
        return Problem(f"{dest} is a folder, so {rel} cannot be written")
    return None


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
        raise InputFileError(
            f"not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line})"
        ) from None
