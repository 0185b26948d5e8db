"""Type-check (mypy --strict) and lint (ruff) the code: part of the suite, not a CI extra."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("command", [
    ["mypy", "src", "analyzers"],
    ["ruff", "check", "src", "analyzers", "tests", "bench", "--select", "E,F,W,B", "--ignore", "E501"],
], ids=["mypy", "ruff"])
def test_static_checks(command: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
