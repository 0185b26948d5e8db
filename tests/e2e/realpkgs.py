"""Install real packages from PyPI once per requirement set, into a cache directory.

MICROPRUNE_TEST_CACHE (default ~/.cache/microprune-tests) holds pip's download
cache and the installed trees, keyed by the requirements, so reruns are fast
and CI pays the download once per run.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("MICROPRUNE_TEST_CACHE", Path.home() / ".cache" / "microprune-tests"))


def installed(requirements: list[str]) -> Path:
    """A `pip install --target` tree of the requirements (built once, then reused)."""
    key = hashlib.sha256("\n".join(sorted(requirements)).encode()).hexdigest()[:16]
    target = CACHE / "targets" / key
    if (target / ".complete").is_file():
        return target
    shutil.rmtree(target, ignore_errors=True)
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input",
               "--target", str(target), "--cache-dir", str(CACHE / "pip"), *requirements]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        pytest.fail(f"pip install {requirements} failed:\n{proc.stderr[-3000:]}")
    (target / ".complete").write_text("\n".join(requirements))
    return target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serving(command: list[str], cwd: Path, env: dict[str, str], port: int) -> Iterator[subprocess.Popen[str]]:
    """Start a server bound to 127.0.0.1 and stop it (its whole process group) afterwards."""
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        wait_for_port(port, proc)
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=20)


def wait_for_port(port: int, proc: subprocess.Popen[str], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:            # bounded: at most `seconds`
        if proc.poll() is not None:
            output = proc.stdout.read() if proc.stdout else ""
            pytest.fail(f"server exited with {proc.returncode}:\n{output[-4000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.2)
    pytest.fail(f"server did not listen on 127.0.0.1:{port} within {seconds}s")


def fetch(url: str) -> tuple[int, str]:
    assert url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode("utf-8")


def isolated_env(deps_out: str) -> dict[str, str]:
    """Only the pruned deps are importable: used with `python -S` (no site-packages)."""
    return {"PYTHONPATH": deps_out, "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}
