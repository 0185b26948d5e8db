"""Showing paths to people and to JSON without crashing on names that are not UTF-8.

POSIX file names are bytes; Python keeps undecodable bytes as lone surrogates
(PEP 383). Printing those raises UnicodeEncodeError, so every path that leaves
the program goes through ``display``: undecodable bytes become ``\\xNN``.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path, PurePath


def display(path: PurePath | str) -> str:
    raw = os.fsencode(str(path))
    return raw.decode("utf-8", "backslashreplace")


def is_within(path: PurePath, root: PurePath) -> bool:
    """Lexical containment of two absolute, normalised paths (string compare: hot path)."""
    inner, outer = str(path), str(root)
    return inner == outer or inner.startswith(outer if outer.endswith("/") else outer + "/")


def normalise(path: Path) -> Path:
    """Absolute and lexically normal, without resolving symlinks."""
    return Path(os.path.normpath(os.path.abspath(path)))


def read_regular_file(path: Path, limit: int = 1 << 20) -> bytes | None:
    """Read a small file that is not part of a walked tree (pyvenv.cfg, pyproject.toml).

    Never follows a symlink and never blocks on a FIFO; None when the path is
    missing, not a regular file, or larger than ``limit``.
    """
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            return None
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read(limit)
    except OSError:
        return None
    finally:
        os.close(fd)


def output_file_problem(path: Path) -> str | None:
    """Why PATH cannot take a file microprune writes by renaming a new one over it, or None.
    A device, FIFO or socket there (`--out /dev/null`) would be replaced by a plain file;
    a directory cannot be."""
    import stat

    if not path.name:
        return "is not a file name"
    if not path.parent.is_dir():
        return f"cannot be written: {display(path.parent)} is not a directory"
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as err:
        return f"cannot be checked ({err.strerror})"
    if stat.S_ISDIR(st.st_mode):
        return "is a directory"
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
        return "is not a regular file (a device, FIFO or socket): microprune would replace it; give a file path"
    return None


def write_text_atomically(path: Path, text: str) -> None:
    """A complete new file renamed over PATH: a reader never sees half of it, an
    interrupted run leaves the old file (or none) in place."""
    problem = output_file_problem(path)
    if problem is not None:
        from .errors import OutputError

        raise OutputError(f"{display(path)} {problem}")
    mode = path.stat().st_mode & 0o7777 if path.exists() and not path.is_symlink() else 0o644
    # A fresh name made with O_EXCL: never a file (or a link) someone placed there beforehand.
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".microprune", dir=path.parent)
    partial = Path(name)
    try:
        with open(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(partial, mode)
        os.replace(partial, path)
    finally:
        if partial.exists():
            partial.unlink()
