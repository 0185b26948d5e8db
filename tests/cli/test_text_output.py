"""Text output for people: the per-distribution table (rich, sorted by kept bytes) and progress
bars on stderr that appear only on a terminal and never with --quiet."""
from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from tests.cli.helpers import basic_app, run_cli
from tests.report.synth import make_app


def run_on_a_terminal(*args: str | os.PathLike[str], timeout: float = 120) -> tuple[int, str, str]:
    """stdout piped, stderr a pseudo-terminal (as in an interactive shell with `> file`)."""
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update({"TERM": "xterm", "COLUMNS": "100"})
    proc = subprocess.Popen([sys.executable, "-m", "microprune", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=follower, stdin=subprocess.DEVNULL, env=env)
    os.close(follower)
    seen = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:          # the child closed the terminal
                break
            if not chunk:
                break
            seen.extend(chunk)
        elif proc.poll() is not None:
            break
    os.close(leader)
    out = proc.stdout.read().decode() if proc.stdout else ""
    code = proc.wait(timeout=30)
    return code, out, seen.decode("utf-8", "replace")


def test_progress_shows_on_a_terminal_only_and_never_with_quiet(tmp_path: Path) -> None:
    app, deps = make_app(tmp_path / "src", files=3000)
    code, out, terminal = run_on_a_terminal("prune", app, "--deps", deps, "--out", tmp_path / "a")
    assert code == 0, terminal
    assert "tracing imports" in terminal and "copying kept files" in terminal
    assert "tracing imports" not in out                       # never mixed into the report
    code, _, terminal = run_on_a_terminal("-q", "prune", app, "--deps", deps, "--out", tmp_path / "b")
    assert code == 0, terminal
    assert "tracing imports" not in terminal and "copying" not in terminal
    assert "warnings:" not in terminal                        # --quiet: no summary either
    code, _, terminal = run_on_a_terminal("prune", app, "--deps", deps, "--out", tmp_path / "b2", "--quiet")
    assert code == 0, terminal
    assert "tracing imports" not in terminal and "warnings:" not in terminal   # after the command too
    piped = run_cli("prune", app, "--deps", deps, "--out", tmp_path / "c")
    assert piped.code == 0
    assert "tracing imports" not in piped.err and "\x1b[" not in piped.err + piped.out


def test_the_table_is_sorted_by_kept_bytes_with_totals(tmp_path: Path) -> None:
    app, deps = basic_app(tmp_path)
    result = run_cli("analyze", app, "--deps", deps)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["distribution", "version"])
    rows = [line.split() for line in lines[header + 2:] if line.strip()][:2]
    assert [r[0] for r in rows] == ["greet", "other"]           # greet keeps bytes, other keeps none
    assert rows[0][-1] == "used" and rows[1][-1] == "unused"
    assert any(line.split()[:2] == ["2", "distributions"] for line in lines)
