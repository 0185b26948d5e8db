"""Prove a pruned tree works: run the user's smoke command with only that tree visible.

The analyzer of the tree's language says how to hide the host (Python: an interpreter shim
with -S and PYTHONPATH on the pruned dirs; Node: no NODE_PATH, an empty HOME) and how to read
a failure (ModuleNotFoundError, Cannot find module, ENOENT ...). The command runs in its own
process group with a bounded time, and the group is killed on every way out.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UsageError
from .paths import display
from .registry import get_analyzer

DEFAULT_TIMEOUT = 120.0
TAIL_CHARS = 4000


@dataclass
class SmokeResult:
    passed: bool
    exit_code: int | None
    timed_out: bool
    missing: list[str] = field(default_factory=list)
    output_tail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "exit_code": self.exit_code, "timed_out": self.timed_out,
                "missing": self.missing, "output_tail": self.output_tail}


def read_tree_report(out: Path) -> dict[str, Any]:
    marker = out / "microprune.json"
    if not marker.is_file() or marker.is_symlink():
        raise UsageError(f"{display(out)} is not a tree written by `microprune prune` (no microprune.json)")
    try:
        report = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UsageError(f"{display(marker)} cannot be read: {err}") from err
    if not isinstance(report, dict) or "language" not in report or "app_out" not in report:
        raise UsageError(f"{display(marker)} is not a prune report")
    return report


def verify_tree(out: Path, smoke: str, timeout: float = DEFAULT_TIMEOUT) -> SmokeResult:
    report = read_tree_report(out)
    analyzer = get_analyzer(report["language"], out)
    app_out, deps_out = Path(report["app_out"]), Path(report["deps_out"])
    if not app_out.is_dir():
        raise UsageError(f"the pruned app {display(app_out)} is missing (was {display(out)} moved?)")
    with tempfile.TemporaryDirectory(prefix="microprune-verify-") as scratch:
        env = dict(os.environ)
        overrides, removed = analyzer.smoke_environment(app_out, deps_out, report.get("target", {}), Path(scratch))
        for name in removed:
            env.pop(name, None)
        env.update(overrides)
        result = _run(smoke, app_out, env, timeout)
    result.missing = missing_from_output(result.output_tail, analyzer.failure_patterns) if not result.passed else []
    return result


def _run(command: str, cwd: Path, env: dict[str, str], timeout: float) -> SmokeResult:
    proc = subprocess.Popen(["/bin/sh", "-c", command], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    timed_out = False
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill(proc)
        output, _ = proc.communicate()
    finally:
        _kill(proc)
    text = output.decode("utf-8", "replace")
    code = None if timed_out else proc.returncode
    return SmokeResult(code == 0, code, timed_out, [], text[-TAIL_CHARS:])


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def missing_from_output(text: str, patterns: tuple[str, ...]) -> list[str]:
    """Names and paths a failure says are missing, in the order they appear, once each."""
    found: list[str] = []
    for pattern in patterns:
        for match in re.finditer(pattern, text):
            name = match.group(1)
            if name and name not in found:
                found.append(name)
    return found
