"""Showing paths to people and to JSON without crashing on names that are not UTF-8.

POSIX file names are bytes; Python keeps undecodable bytes as lone surrogates
(PEP 383). Printing those raises UnicodeEncodeError, so every path that leaves
the program goes through ``display``: undecodable bytes become ``\\xNN``.
"""
from __future__ import annotations

import os
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
