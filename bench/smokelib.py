"""Helpers for the benchmark apps' smoke checks (stdlib only).

Each app under apps/python/<name>/ has a smoke.py with one function,
`smoke(session)`, that runs the app through `session` and raises SmokeFailure
(or AssertionError) when the app does not behave. A Session runs the app's
commands as `python3 -S ...` with PYTHONPATH set to the deps directory only,
so the host's site-packages are invisible, optionally under recorder.py.

Everything here is bounded: every process gets a timeout and is always
killed, servers bind 127.0.0.1 only, and readiness polling and HTTP requests
have fixed caps.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

BENCH_DIR = Path(__file__).resolve().parent
RECORDER = BENCH_DIR / "recorder.py"
MAX_REQUESTS = 50  # per smoke check, readiness probes excluded
READY_TIMEOUT = 60.0  # seconds for a server to accept connections
STOP_TIMEOUT = 15.0  # seconds for a server to exit after SIGTERM


class SmokeFailure(Exception):
    """The app did not do what its smoke check expects."""


def tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise SmokeFailure(message)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> object:
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise SmokeFailure(f"not JSON ({exc}): {self.text[:300]!r}") from exc


@dataclass
class Session:
    """How to run one app: which tree, which deps, and whether to record."""

    app_dir: Path
    deps_dir: Path
    record_to: Path | None = None  # recorder OUTFILE, or None to run plainly
    timeout: float = 120.0
    requests_made: int = 0
    logs: list[str] = field(default_factory=list)

    def python(self, *args: str) -> list[str]:
        """The command line for `python3 -S ARGS`, under the recorder if recording."""
        cmd = [sys.executable, "-S"]
        if self.record_to is not None:
            cmd += [str(RECORDER), str(self.record_to), "--under", str(self.deps_dir), "--"]
        return cmd + list(args)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env.update(
            PYTHONPATH=str(self.deps_dir),
            PYTHONDONTWRITEBYTECODE="1",  # never write into the app or deps trees
            PYTHONUNBUFFERED="1",
            PYTHONIOENCODING="utf-8",
            NO_COLOR="1",
            TERM="dumb",
            COLUMNS="120",
        )
        return env

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `python3 -S ARGS` in the app dir to completion (bounded by self.timeout)."""
        try:
            proc = subprocess.run(
                self.python(*args), cwd=self.app_dir, env=self.env(), text=True,
                capture_output=True, timeout=self.timeout, stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise SmokeFailure(f"timed out after {self.timeout}s: {' '.join(args)}") from exc
        self.logs.append(proc.stderr)
        if check and proc.returncode != 0:
            raise SmokeFailure(f"exit {proc.returncode}: {' '.join(args)}\n{tail(proc.stderr)}")
        return proc

    @contextlib.contextmanager
    def server(self, *args: str, port: int) -> Iterator[str]:
        """Start `python3 -S ARGS` as a server on 127.0.0.1:port; yield its base URL.

        The server is stopped with SIGTERM (so it exits cleanly and the recorder
        can write), then its whole process group is killed, whatever happens.
        """
        with tempfile.TemporaryFile("w+") as log:
            proc = subprocess.Popen(
                self.python(*args), cwd=self.app_dir, env=self.env(), text=True,
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                try:
                    _wait_for_port(proc, port)
                    yield f"http://127.0.0.1:{port}"
                except SmokeFailure as exc:
                    raise SmokeFailure(f"{exc}\n--- server log ---\n{_read(log)}") from None
            finally:
                _stop(proc)
                self.logs.append(_read(log))

    def request(self, method: str, url: str, body: object = None) -> Response:
        """One bounded HTTP request to a 127.0.0.1 server (JSON body if given)."""
        self.requests_made += 1
        expect(self.requests_made <= MAX_REQUESTS, "smoke check made too many requests")
        host, _, path = url.removeprefix("http://").partition("/")
        hostname, _, port = host.partition(":")
        expect(hostname == "127.0.0.1", f"refusing non-loopback URL {url}")
        headers = {"Connection": "close"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn = http.client.HTTPConnection(hostname, int(port), timeout=20)
        try:
            conn.request(method, "/" + path, body=data, headers=headers)
            resp = conn.getresponse()
            return Response(resp.status, dict(resp.getheaders()), resp.read())
        except OSError as exc:
            raise SmokeFailure(f"{method} {url} failed: {exc}") from exc
        finally:
            conn.close()

    def get(self, url: str) -> Response:
        return self.request("GET", url)

    def post(self, url: str, body: object) -> Response:
        return self.request("POST", url, body)


def _read(log: object) -> str:
    log.flush()
    log.seek(0)
    return tail(log.read(), 40)


def _wait_for_port(proc: subprocess.Popen[str], port: int) -> None:
    """Poll until 127.0.0.1:port accepts a connection (bounded in time and count)."""
    deadline = time.monotonic() + READY_TIMEOUT
    for _ in range(int(READY_TIMEOUT / 0.1)):
        if proc.poll() is not None:
            raise SmokeFailure(f"server exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    raise SmokeFailure(f"server did not listen on 127.0.0.1:{port} within {READY_TIMEOUT}s")


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM the server, wait a bounded time, then SIGKILL its process group."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STOP_TIMEOUT)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # our own group: stray workers too
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def compile_microprune(command: list[str] | tuple[str, ...], env: dict[str, str] | None = None) -> str:
    """Write the bytecode of microprune's own modules, as `pip install` of its wheel does.

    An editable install run with PYTHONDONTWRITEBYTECODE=1 (set on some machines, this one
    included) compiles every module at every start: about 0.2 s that no installed copy pays.
    Finds the interpreter behind the command (a console script's #! line, or `python -m`).
    Returns what it did, for the bench's notes."""
    interpreter = None
    first = command[0]
    if len(command) >= 3 and command[1] == "-m":
        interpreter = first
    elif os.path.isfile(first) or shutil.which(first):
        path = first if os.path.isfile(first) else shutil.which(first)
        with open(path, "rb") as handle:                       # type: ignore[arg-type]
            line = handle.readline().decode("utf-8", "replace")
        if line.startswith("#!") and "python" in line:
            interpreter = line[2:].strip().split()[0]
    if interpreter is None:
        return "microprune's bytecode: not compiled (interpreter not found)"
    code = ("import compileall, os, microprune, microprune_analyzers\n"
            "for m in (microprune, microprune_analyzers):\n"
            "    compileall.compile_dir(os.path.dirname(m.__file__), quiet=1)\n")
    proc = subprocess.run([interpreter, "-c", code], capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in (env or os.environ).items() if k != "PYTHONDONTWRITEBYTECODE"})
    return "microprune's bytecode: compiled" if proc.returncode == 0 else f"microprune's bytecode: {proc.stderr[-200:]}"
