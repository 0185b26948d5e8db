"""Strip debug information from shared objects of a written tree (an effect at the edge).

Uses binutils' `strip --strip-debug` on a copy, and keeps the result only if the
loader would still accept it (``elf.loadable``); otherwise the original stays.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .elf import is_elf, loadable


@dataclass
class StripSummary:
    policy: str
    stripped: int = 0
    saved_bytes: int = 0
    kept_as_is: int = 0          # strip failed or its result would not load
    why: str = ""

    def as_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"policy": self.policy, "stripped": self.stripped,
                                   "saved_bytes": self.saved_bytes, "kept_as_is": self.kept_as_is}
        if self.why:
            data["why"] = self.why
        return data


def strip_debug(files: Iterable[Path], policy: str) -> StripSummary:
    if policy == "none":
        return StripSummary("none")
    tool = shutil.which("strip")
    if tool is None:
        return StripSummary("none", why="binutils `strip` is not installed; shared objects left as they are")
    summary = StripSummary(policy)
    # "debug": debug sections only (native backtraces keep their symbols); "unneeded": also the
    # symbol tables the loader never reads (.dynsym stays), for a runtime's own binaries
    flag = "--strip-unneeded" if policy == "unneeded" else "--strip-debug"
    for path in files:
        saved = _strip_one(tool, path, flag)
        if saved is None:
            summary.kept_as_is += 1
        elif saved > 0:
            summary.stripped += 1
            summary.saved_bytes += saved
    return summary


def _strip_one(tool: str, path: Path, flag: str = "--strip-debug") -> int | None:
    """Bytes saved (0: nothing to strip), or None when the original had to stay."""
    if path.is_symlink() or not path.is_file():
        return 0
    original = path.read_bytes()
    if not is_elf(original) or (flag == "--strip-debug" and b".debug_" not in original):
        return 0
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        stripped = Path(scratch) / "stripped"
        proc = subprocess.run([tool, flag, "-o", str(stripped), str(path)],
                              capture_output=True, timeout=120)
        if proc.returncode != 0 or not stripped.is_file():
            return None
        data = stripped.read_bytes()
        if not loadable(data) or len(data) >= len(original):
            return None
        mode = path.stat().st_mode
        os.replace(stripped, path)
        path.chmod(mode & 0o7777)
        return len(original) - len(data)
