"""Run the real `microprune` command and snapshot trees (to prove inputs are untouched)."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.cases import FIXTURES, copy_case


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def run_cli(*args: str | os.PathLike[str], cwd: Path | None = None, timeout: float = 120,
            user: str | None = None) -> Result:
    command = [sys.executable, "-m", "microprune", *map(str, args)]
    if user is not None:
        uid = {"nobody": 65534}.get(user, user)
        command = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *command]
    # Its own session, so that a run that times out is killed with the scan workers it forked
    # (killing the parent alone leaves them running).
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
                            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}, errors="replace",
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return Result(proc.returncode, out, err)


def basic_app(tmp_path: Path) -> tuple[Path, Path]:
    root = copy_case(FIXTURES / "python" / "basic", tmp_path)
    return root / "app", root / "deps"


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under root (links not followed): type, mode and content hash."""
    state: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            key = os.fsencode(path.relative_to(root)).hex()
            if path.is_symlink():
                state[key] = "link:" + os.readlink(path)
            elif path.is_file():
                state[key] = f"file:{st.st_mode:o}:" + hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                state[key] = f"other:{st.st_mode:o}"
    return state


def assert_no_traceback(result: Result) -> None:
    assert "Traceback" not in result.err, result.err
    assert "Traceback" not in result.out, result.out
