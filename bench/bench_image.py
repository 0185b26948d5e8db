"""Benchmark `microprune image` on real apps (stdlib only, Python 3.11).

For each app (default: the Flask+gunicorn app bench/apps/python/flask_gunicorn
and the Express app bench/apps/node/express_api):

  1. installs its dependencies the way bench_python.py / bench_node.py do
     (`pip install --target CACHE/<name>/deps`, cached by requirements.txt;
     `npm ci --omit=dev` into CACHE/image/node/<name>/full);
  2. builds its image --runs times, `microprune image APP --out IMAGE.tar
     --format json` with the app's entries from its bench.toml, and reports
     the median wall time, whether every run gave the same image digest, and
     the sizes the JSON gives: the whole image and each layer (runtime, deps,
     app), uncompressed (the layer tars) and compressed (gzip, what a registry
     stores and a pull transfers);
  3. runs the app's own smoke check (bench/apps/*/<name>/smoke.py) against
     the image:
       (a) through `microprune run IMAGE -- INTERPRETER ARGS` (no engine); it
           shares the host's network, so the check's requests go to
           127.0.0.1 from here; files the check reads (express_api's log
           file) are copied out of the run's root while it runs;
       (b) in a real engine, when `docker` and `dockerd` are installed: a
           PRIVATE dockerd started here with its own data root, exec root,
           pid file and socket in a temp dir under CACHE/image (never the
           host's daemon; other dockerds may run beside it), `docker load
           -i`, `docker run -d --network none`, every request made from
           inside the container's own loopback with `docker exec CONTAINER
           INTERPRETER -c/-e CLIENT` (the images have no shell and no curl;
           the client is a few lines of socket code), the check's temp
           directory bind-mounted at the same path; the daemon is stopped by
           its own pid at the end.
  4. prints the published compressed sizes of the official images
     (python:3.11-slim, gcr.io/distroless/python3, node:20-slim,
     gcr.io/distroless/nodejs20) from the data table below, with where each
     figure was read. No registry is reachable from the machine this was
     written on: figures that could not be read from a source are shown as
     "unverified", never estimated.

Sizes are in MB = 1,000,000 bytes. Targets: a Flask+gunicorn image of at most
30 MB uncompressed / 12 MB compressed, an Express image of at most 100 MB /
40 MB, both answering their check in a real engine.

Usage:
    python3 bench/bench_image.py [--app NAME]... [--cache DIR] [--runs N]
        [--microprune CMD] [--no-engine] [--json] [--json-out FILE]

    --microprune  the microprune command, split like a shell would (default:
                  $MICROPRUNE, else `microprune` on PATH, else .venv/bin/microprune
                  of this checkout, else this checkout run as `python3 -m
                  microprune`), as bench_node.py
    --no-engine   skip the real-engine check even when docker is installed
    --json        print the results as JSON (sorted keys) instead of the tables
    --json-out F  also write that JSON to file F

Progress goes to stderr; the tables (or JSON) to stdout. Exit status 0 when
every app's image builds and passes its check through `microprune run` and, when
an engine ran, in the engine; else 1 (size targets are reported, not enforced).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

import bench_node  # noqa: E402  (after the sys.path insert)
import bench_python  # noqa: E402  (after the sys.path insert)
import smokelib  # noqa: E402  (after the sys.path insert)

DEFAULT_APPS = ("flask_gunicorn", "express_api")
MB = 1_000_000
TARGETS = {  # bytes: the whole image, uncompressed and compressed
    "flask_gunicorn": {"uncompressed": 30 * MB, "compressed": 12 * MB},
    "express_api": {"uncompressed": 100 * MB, "compressed": 40 * MB},
}
BUILD_TIMEOUT = 900
DOCKER_TIMEOUT = 300
ENGINE_START_TIMEOUT = 90.0
READY_TIMEOUT = 60.0
EXEC_TIMEOUT = 30.0
SOCKET_PATH_MAX = 100  # sun_path is 108 bytes; leave room

# Published sizes of the official images, for comparison. No registry or web page is
# reachable from the machine this benchmark was written on, so each figure was read from a
# stored copy of its source on 2026-12-03 (UTC) and is given with it. Docker's repo-info
# publishes the compressed transfer size (the sum of the gzip layers, linux/amd64) and no
# uncompressed size. Figures that could not be read from any source are None: "unverified".
PUBLISHED_IMAGES = [
    {"image": "python:3.11-slim", "platform": "linux/amd64",
     "compressed_bytes": 45_520_747, "uncompressed_bytes": None,
     "as_of": "Python 3.11.15 on Debian trixie, layers last modified 2026-08-05",
     "source": "https://github.com/docker-library/repo-info/blob/2477d553d2fdfa57b4ec11f63c8376eca8b7a253/"
               "repos/python/remote/3.11-slim.md",
     "note": "Docker repo-info 'Total Size' (compressed transfer size, not on-disk size)"},
    {"image": "gcr.io/distroless/python3", "platform": "linux/amd64",
     "compressed_bytes": None, "uncompressed_bytes": None, "as_of": None, "source": None,
     "note": "unverified: no published size could be read here (gcr.io is not reachable; the distroless "
             "README publishes none). DESIGN.md's 'about 50 MB' has no source and is not repeated"},
    {"image": "node:20-slim", "platform": "linux/amd64",
     "compressed_bytes": 70_683_740, "uncompressed_bytes": None,
     "as_of": "Node 20.18.1 on Debian bookworm, layers last modified 2025-01-14",
     "source": "https://github.com/maxmood96/repo-info/blob/00304a4845cb1cd8dc24ebd5cd14ab6f2db2ef68/"
               "repos/node/remote/20-slim.md",
     "note": "a mirror of docker-library/repo-info repos/node/remote/20-slim.md; Docker repo-info "
             "'Total Size' (compressed transfer size)"},
    {"image": "gcr.io/distroless/nodejs20", "platform": "linux/amd64",
     "compressed_bytes": None, "uncompressed_bytes": None, "as_of": None, "source": None,
     "note": "unverified: no published size could be read here (gcr.io is not reachable; the distroless "
             "README publishes none). DESIGN.md's 'about 55 MB' has no source and is not repeated"},
]

# The HTTP clients run inside the images with their own interpreter: argv = PORT REQUEST_HEX.
# They send the raw request, read to EOF and print the raw response as hex (parsed here), so
# they need nothing but sockets. An empty REQUEST_HEX only connects (a readiness probe).
PY_CLIENT = """
import socket, sys
port, request = int(sys.argv[1]), bytes.fromhex(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port), timeout=20)
data = b""
if request:
    s.sendall(request)
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
s.close()
sys.stdout.write(data.hex())
"""
JS_CLIENT = """
const net = require('net');
const [port, request] = process.argv.slice(1);
const chunks = [];
const s = net.connect(Number(port), '127.0.0.1', () => { if (request) s.write(Buffer.from(request, 'hex')); else s.end(); });
s.setTimeout(20000, () => { console.error('timed out'); process.exit(1); });
s.on('data', (d) => chunks.push(d));
s.on('error', (e) => { console.error(e.message); process.exit(1); });
s.on('close', () => process.stdout.write(Buffer.concat(chunks).toString('hex')));
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def tail(text: str, lines: int = 25) -> str:
    return smokelib.tail(text or "", lines)


# --- apps -------------------------------------------------------------------------


@dataclass(frozen=True)
class App:
    name: str
    language: str  # python | node
    spec: bench_python.AppSpec | bench_node.AppSpec

    @property
    def tag(self) -> str:
        return f"mpbench-{self.name.replace('_', '-')}:latest"


def all_apps() -> dict[str, str]:
    apps = {name: "python" for name in bench_python.all_app_names()}
    apps.update({name: "node" for name in bench_node.all_app_names()})
    return apps


def load_app(name: str) -> App:
    language = all_apps()[name]
    spec = bench_python.load_spec(name) if language == "python" else bench_node.load_spec(name)
    return App(name, language, spec)


def load_smoke(app: App) -> Callable[[smokelib.Session], None]:
    return bench_python.load_smoke(app.spec) if app.language == "python" else bench_node.load_smoke(app.spec)


def image_arguments(app: App, cache: Path, ws: bench_node.Workspace) -> list[str]:
    """Install the app's dependencies; the `microprune image` arguments before --out."""
    if app.language == "python":
        spec = app.spec
        deps = bench_python.ensure_deps(spec, cache)
        args = [str(spec.app_dir), "--deps", str(deps)]
        for entry in spec.entries:
            args += ["--entry", entry]
        for pattern in spec.keep:
            args += ["--keep", pattern]
        return args
    work = cache / "image" / "node" / app.name
    work.mkdir(parents=True, exist_ok=True)
    full, _ = bench_node.install_app(app.spec, ws, work)
    return [str(full), "--entry", app.spec.entry]


# --- building ---------------------------------------------------------------------


def build(app: App, mp: bench_node.Microprune, args: list[str], out: Path, runs: int, row: dict) -> dict | None:
    """`microprune image` `runs` times into `out`; the last JSON report, or None on failure."""
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [*args, "--out", str(out), "--tag", app.tag, "--format", "json"]
    row["image_command"] = shlex.join([*mp.cmd, "image", *cmd])
    times, digests, report = [], [], None
    for n in range(runs):
        log(f"[{app.name}] microprune image {n + 1}/{runs}")
        start = time.perf_counter()
        try:
            proc = bench_node.run([*mp.cmd, "image", *cmd], REPO_DIR, BUILD_TIMEOUT, mp.env)
        except OSError as exc:
            row["error"] = f"cannot run {shlex.join(mp.cmd)}: {exc}"
            return None
        times.append(round(time.perf_counter() - start, 3))
        if proc.returncode != 0:
            row["error"] = f"microprune image failed (exit {proc.returncode}):\n{tail(proc.stderr or proc.stdout)}"
            break
        try:
            report = json.loads(proc.stdout)
            digests.append(report["image"]["digest"])
        except (ValueError, KeyError, TypeError) as exc:
            row["error"] = f"unreadable microprune image JSON ({exc}): {proc.stdout[:300]!r}"
            report = None
            break
    row["build_seconds"] = times
    row["build_seconds_median"] = round(statistics.median(times), 3) if times else None
    row["build_digests"] = digests
    row["reproducible"] = len(set(digests)) == 1 and len(digests) == runs if digests else None
    return report if row["error"] is None else None


def describe_image(report: dict, out: Path, row: dict) -> None:
    image = report["image"]
    row.update(
        archive=str(out), archive_bytes=out.stat().st_size, digest=image["digest"],
        size=image["size"], uncompressed_size=image["uncompressed_size"],
        entrypoint=image.get("entrypoint"), cmd=image.get("cmd"), user=image.get("user"),
        workdir=image.get("workdir"), runtime_missing=image.get("runtime_missing", []),
        layers=[{k: layer.get(k) for k in ("name", "digest", "size", "uncompressed_size", "files")}
                for layer in image["layers"]],
        unresolved_warnings=sum(w.get("code") == "unresolved" for w in report.get("warnings", [])))


def interpreter_of(row: dict) -> str:
    """The image's interpreter: the first word of its entrypoint (the images have no PATH lookup)."""
    words = (row.get("entrypoint") or []) + (row.get("cmd") or [])
    if not words or not words[0].startswith("/"):
        raise smokelib.SmokeFailure(f"cannot tell the image's interpreter from its entrypoint {words}")
    return words[0]


# --- HTTP over raw bytes ------------------------------------------------------------


def http_request_bytes(method: str, path: str, port: int, body: object) -> bytes:
    """An HTTP/1.0 request (the server closes the connection and sends no chunked body)."""
    lines = [f"{method} {path} HTTP/1.0", f"Host: 127.0.0.1:{port}", "Connection: close"]
    data = b""
    if body is not None:
        data = json.dumps(body).encode()
        lines += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def parse_http_response(raw: bytes) -> smokelib.Response:
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise smokelib.SmokeFailure(f"not an HTTP response: {raw[:200]!r}")
    lines = head.decode("iso-8859-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise smokelib.SmokeFailure(f"bad HTTP status line: {lines[0]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip()] = value.strip()
    if any(k.lower() == "transfer-encoding" and "chunked" in v.lower() for k, v in headers.items()):
        body = dechunk(body)
    return smokelib.Response(int(parts[1]), headers, body)


def dechunk(body: bytes) -> bytes:
    out, rest = b"", body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out, rest = out + rest[:size], rest[size + 2:]
    return out


def split_url(url: str) -> tuple[int, str]:
    host, _, path = url.removeprefix("http://").partition("/")
    hostname, _, port = host.partition(":")
    smokelib.expect(hostname == "127.0.0.1", f"refusing non-loopback URL {url}")
    return int(port), "/" + path


# --- files the check reads -------------------------------------------------------------


@contextlib.contextmanager
def shared_tmp() -> Iterator[Path]:
    """A directory directly under /tmp where the check's temp files go (tempfile.tempdir).

    Directly under /tmp, so an image's non-root user can create the same path in the image's
    own writable /tmp; the engine bind-mounts it, and the microprune run mirror copies it out.
    """
    path = Path(tempfile.mkdtemp(prefix="mpbench-image-", dir="/tmp"))
    saved = tempfile.tempdir
    tempfile.tempdir = str(path)
    try:
        yield path
    finally:
        tempfile.tempdir = saved
        shutil.rmtree(path, ignore_errors=True)


class RunRootMirror:
    """Copy SHARED/** out of the root `microprune run` unpacked (TMPDIR/microprune-run-*/rootfs),
    every 0.1 s while the image runs, and once more when it stops."""

    def __init__(self, scratch: Path, shared: Path) -> None:
        self.scratch, self.shared = scratch, shared
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.copied: set[str] = set()

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join(timeout=5)
        self.sync()

    def _loop(self) -> None:
        while not self.done.wait(0.1):
            self.sync()

    def sync(self) -> None:
        for root in self.scratch.glob("*/rootfs"):
            source = root / self.shared.relative_to("/")
            with contextlib.suppress(OSError):
                for dirpath, _dirnames, filenames in os.walk(source):
                    rel = Path(dirpath).relative_to(source)
                    for filename in filenames:
                        src, dst = Path(dirpath) / filename, self.shared / rel / filename
                        if src.is_symlink() or not src.is_file():
                            continue
                        st = src.stat()
                        with contextlib.suppress(OSError):
                            if dst.is_file() and dst.stat().st_size == st.st_size and dst.stat().st_mtime_ns == st.st_mtime_ns:
                                continue
                        dst.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(src, dst)
                        self.copied.add(str(rel / filename))


def open_up(shared: Path) -> None:
    """Let the image's non-root user write the check's temp directories (bind-mounted)."""
    for dirpath, dirnames, _ in os.walk(shared):
        for d in [dirpath, *(os.path.join(dirpath, n) for n in dirnames)]:
            os.chmod(d, 0o1777 if d == str(shared) else 0o777)


# --- sessions: the smoke checks against an image ------------------------------------------


@dataclass
class ImageSession(smokelib.Session):
    """A smokelib.Session whose commands run in the image: python(ARGS) is INTERPRETER ARGS.

    serve() and wait_for() are those of bench_node.NodeSession, so the Node apps' checks run
    unchanged; the Python apps' checks call server() and get() directly.
    """

    interpreter: str = ""
    entry: str = ""
    shared: Path = Path("/nonexistent")
    extra_env: dict[str, str] = field(default_factory=dict)

    def python(self, *args: str) -> list[str]:
        return [self.interpreter, *args]

    @contextlib.contextmanager
    def serve(self, port: int, env: dict[str, str] | None = None) -> Iterator[str]:
        self.extra_env = {"PORT": str(port), **(env or {})}
        with self.server(self.entry, port=port) as url:
            yield url

    def wait_for(self, predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        for _ in range(int(timeout / 0.1)):
            with contextlib.suppress(OSError, ValueError):
                if predicate():
                    return
            time.sleep(0.1)
        raise smokelib.SmokeFailure(f"timed out after {timeout}s waiting for {what}")


@dataclass
class RunSession(ImageSession):
    """(a) `microprune run IMAGE -- INTERPRETER ARGS`: no engine, the host's network."""

    mp: bench_node.Microprune | None = None
    archive: Path = Path("/nonexistent")
    scratch: Path = Path("/nonexistent")  # TMPDIR of microprune run: where its root is unpacked

    def command(self, *args: str) -> list[str]:
        envs = [w for k, v in self.extra_env.items() for w in ("--env", f"{k}={v}")]
        return [*self.mp.cmd, "run", *envs, str(self.archive), "--", *self.python(*args)]

    def mp_env(self) -> dict[str, str]:
        return {**(self.mp.env or os.environ), "TMPDIR": str(self.scratch)}

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = bench_node.run(self.command(*args), REPO_DIR, self.timeout, self.mp_env())
        self.logs.append(proc.stderr)
        if check and proc.returncode != 0:
            raise smokelib.SmokeFailure(f"exit {proc.returncode}: {' '.join(args)}\n{tail(proc.stderr)}")
        return proc

    @contextlib.contextmanager
    def server(self, *args: str, port: int) -> Iterator[str]:
        with tempfile.TemporaryFile("w+") as out, RunRootMirror(self.scratch, self.shared):
            proc = subprocess.Popen(self.command(*args), cwd=REPO_DIR, env=self.mp_env(), text=True,
                                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
            try:
                try:
                    smokelib._wait_for_port(proc, port)
                    yield f"http://127.0.0.1:{port}"
                except smokelib.SmokeFailure as exc:
                    raise smokelib.SmokeFailure(f"{exc}\n--- microprune run output ---\n{smokelib._read(out)}") from None
            finally:
                smokelib._stop(proc)  # SIGTERM, then SIGKILL to its whole process group
                self.logs.append(smokelib._read(out))


@dataclass
class EngineSession(ImageSession):
    """(b) `docker run -d --network none`; every request from inside the container."""

    engine: Engine | None = None
    image: str = ""
    language: str = "python"
    container: str | None = None

    def client(self, port: int, request: bytes) -> list[str]:
        if self.language == "node":
            return [self.interpreter, "-e", JS_CLIENT, str(port), request.hex()]
        return [self.interpreter, "-I", "-S", "-c", PY_CLIENT, str(port), request.hex()]

    def docker_args(self, name: str, *args: str, detach: bool) -> list[str]:
        words = ["run", "-d" if detach else "--rm", "--network", "none", "--name", name,
                 "-v", f"{self.shared}:{self.shared}", "--entrypoint", self.interpreter]
        for key, value in self.extra_env.items():
            words += ["-e", f"{key}={value}"]
        return [*words, self.image, *args]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        open_up(self.shared)
        name = f"mpbench-{uuid.uuid4().hex[:12]}"
        proc = self.engine.docker(*self.docker_args(name, *args, detach=False), timeout=self.timeout)
        self.engine.docker("rm", "-f", name, timeout=60)
        self.logs.append(proc.stderr)
        if check and proc.returncode != 0:
            raise smokelib.SmokeFailure(f"exit {proc.returncode}: {' '.join(args)}\n{tail(proc.stderr)}")
        return proc

    @contextlib.contextmanager
    def server(self, *args: str, port: int) -> Iterator[str]:
        open_up(self.shared)
        name = f"mpbench-{uuid.uuid4().hex[:12]}"
        started = self.engine.docker(*self.docker_args(name, *args, detach=True))
        if started.returncode != 0:
            self.engine.docker("rm", "-f", name, timeout=60)
            raise smokelib.SmokeFailure(f"docker run failed: {tail(started.stderr)}")
        self.container = name
        try:
            try:
                self.wait_ready(port)
                yield f"http://127.0.0.1:{port}"
            except smokelib.SmokeFailure as exc:
                logs = self.engine.docker("logs", name, timeout=60)
                raise smokelib.SmokeFailure(f"{exc}\n--- container log ---\n{tail(logs.stdout + logs.stderr, 40)}") from None
        finally:
            logs = self.engine.docker("logs", name, timeout=60)
            self.logs.append(logs.stdout + logs.stderr)
            self.engine.docker("rm", "-f", name, timeout=60)
            self.container = None

    def wait_ready(self, port: int) -> None:
        """Until the container's own 127.0.0.1:port accepts a connection (probed from inside)."""
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            state = self.engine.docker("inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}", self.container)
            running, _, code = state.stdout.strip().partition(" ")
            if running != "true":
                raise smokelib.SmokeFailure(f"the container exited (code {code}) before listening")
            probe = self.engine.docker("exec", self.container, *self.client(port, b""), timeout=EXEC_TIMEOUT)
            if probe.returncode == 0:
                return
            time.sleep(0.2)
        raise smokelib.SmokeFailure(f"nothing listened on the container's 127.0.0.1:{port} within {READY_TIMEOUT}s")

    def request(self, method: str, url: str, body: object = None) -> smokelib.Response:
        self.requests_made += 1
        smokelib.expect(self.requests_made <= smokelib.MAX_REQUESTS, "smoke check made too many requests")
        port, path = split_url(url)
        proc = self.engine.docker("exec", self.container,
                                  *self.client(port, http_request_bytes(method, path, port, body)),
                                  timeout=EXEC_TIMEOUT)
        if proc.returncode != 0:
            raise smokelib.SmokeFailure(f"{method} {url} from inside the container failed: {tail(proc.stderr, 5)}")
        try:
            raw = bytes.fromhex(proc.stdout.strip())
        except ValueError as exc:
            raise smokelib.SmokeFailure(f"{method} {url}: the client printed no hex: {proc.stdout[:200]!r}") from exc
        return parse_http_response(raw)


def run_check(app: App, session: ImageSession) -> dict:
    """The app's smoke check in `session`: status pass/FAIL, the error, wall seconds."""
    start = time.perf_counter()
    error = None
    try:
        load_smoke(app)(session)
    except (smokelib.SmokeFailure, AssertionError, KeyError, IndexError, TypeError, ValueError) as exc:
        error = f"{type(exc).__name__}: {exc}".strip()
    except Exception:  # noqa: BLE001 - report, never crash the whole benchmark
        error = traceback.format_exc(limit=5)
    return {"status": "pass" if error is None else "FAIL", "error": error,
            "seconds": round(time.perf_counter() - start, 2)}


def check_with_run(app: App, mp: bench_node.Microprune, row: dict, work: Path) -> dict:
    log(f"[{app.name}] check through microprune run (no engine)")
    scratch = work / "run-scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        with shared_tmp() as shared:
            session = RunSession(app_dir=REPO_DIR, deps_dir=REPO_DIR, interpreter=interpreter_of(row),
                                 entry=getattr(app.spec, "entry", ""), shared=shared, mp=mp,
                                 archive=Path(row["archive"]), scratch=scratch)
            result = run_check(app, session)
    except smokelib.SmokeFailure as exc:
        result = {"status": "FAIL", "error": str(exc), "seconds": None}
    # microprune run removes the root it unpacked: whatever is left here it did not.
    result["left_behind"] = sorted(p.name for p in scratch.iterdir())
    shutil.rmtree(scratch, ignore_errors=True)
    return result


def check_in_engine(app: App, engine: Engine, row: dict) -> dict:
    log(f"[{app.name}] docker load, then the check in the private engine")
    start = time.perf_counter()
    loaded = engine.docker("load", "-i", row["archive"], timeout=DOCKER_TIMEOUT)
    load_seconds = round(time.perf_counter() - start, 2)
    if loaded.returncode != 0:
        return {"status": "FAIL", "error": f"docker load failed: {tail(loaded.stderr or loaded.stdout)}",
                "seconds": None, "load_seconds": load_seconds}
    inspected = engine.docker("image", "inspect", "-f", "{{.Size}}", app.tag)
    engine_size = int(inspected.stdout.strip()) if inspected.stdout.strip().isdigit() else None
    try:
        with shared_tmp() as shared:
            session = EngineSession(app_dir=REPO_DIR, deps_dir=REPO_DIR, interpreter=interpreter_of(row),
                                    entry=getattr(app.spec, "entry", ""), shared=shared, engine=engine,
                                    image=app.tag, language=app.language)
            result = run_check(app, session)
    except smokelib.SmokeFailure as exc:
        result = {"status": "FAIL", "error": str(exc), "seconds": None}
    engine.docker("image", "rm", "-f", app.tag, timeout=DOCKER_TIMEOUT)
    return {**result, "load_seconds": load_seconds, "loaded": loaded.stdout.strip(), "engine_image_size": engine_size}


# --- the private engine ---------------------------------------------------------------


class Engine:
    """A private dockerd: its own data root, exec root, pid file and socket under `parent`.

    Started with exactly the flags of DESIGN.md; stopped by its own pid (SIGTERM, then
    SIGKILL), never by name, so other daemons on the machine are never touched.
    """

    def __init__(self, parent: Path) -> None:
        parent.mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix="dockerd-", dir=parent))
        if len(str(self.dir / "exec" / "containerd" / "containerd.sock")) > SOCKET_PATH_MAX:
            shutil.rmtree(self.dir)
            self.dir = Path(tempfile.mkdtemp(prefix="mpbench-dockerd-", dir="/tmp"))
            log(f"engine: {parent} is too long a path for the daemon's sockets; using {self.dir}")
        self.socket = self.dir / "docker.sock"
        self.pidfile = self.dir / "dockerd.pid"
        self.logfile = self.dir / "dockerd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.version: str | None = None
        self.start_seconds: float | None = None
        self.stopped_by: str | None = None
        self.removed: bool | None = None

    def command(self) -> list[str]:
        return ["dockerd", "--storage-driver=vfs", "--iptables=false", "--ip6tables=false", "--bridge=none",
                f"--data-root={self.dir / 'data'}", f"--exec-root={self.dir / 'exec'}",
                f"--pidfile={self.pidfile}", f"--host=unix://{self.socket}"]

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env.update(DOCKER_HOST=f"unix://{self.socket}", DOCKER_CONFIG=str(self.dir / "client"))
        return env

    def docker(self, *args: str, timeout: float = DOCKER_TIMEOUT) -> subprocess.CompletedProcess[str]:
        return bench_node.run(["docker", *args], self.dir, timeout, self.env())

    def start(self) -> None:
        log(f"engine: starting a private dockerd in {self.dir}")
        start = time.perf_counter()
        with open(self.logfile, "wb") as out:
            self.proc = subprocess.Popen(self.command(), cwd=self.dir, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + ENGINE_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited with {self.proc.returncode}:\n{tail(self.logfile.read_text(errors='replace'), 15)}")
            if self.socket.exists():
                probe = self.docker("version", "--format", "{{.Server.Version}}", timeout=30)
                if probe.returncode == 0:
                    self.version = probe.stdout.strip()
                    self.start_seconds = round(time.perf_counter() - start, 2)
                    return
            time.sleep(0.2)
        raise RuntimeError(f"dockerd did not answer on {self.socket} within {ENGINE_START_TIMEOUT:.0f}s:\n"
                           + tail(self.logfile.read_text(errors="replace"), 15))

    def stop(self) -> None:
        """SIGTERM the daemon by its pid, SIGKILL it (and its own process group) if it lingers."""
        if self.proc is None:
            return
        pid = self.proc.pid
        with contextlib.suppress(OSError, ValueError):
            recorded = int(self.pidfile.read_text().strip())
            if recorded != pid:
                log(f"engine: pid file says {recorded}, started {pid}; stopping {pid}")
        if self.proc.poll() is None:
            log(f"engine: stopping dockerd (pid {pid})")
            os.kill(pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
                self.stopped_by = "SIGTERM"
            except subprocess.TimeoutExpired:
                os.kill(pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
                self.stopped_by = "SIGKILL"
                # Its containerd and shims are in the session this script created for it.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
        else:
            self.stopped_by = f"exited by itself ({self.proc.returncode})"
        mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
                  if line.split()[4].startswith(str(self.dir) + "/")]
        if mounts:
            log(f"engine: {len(mounts)} mount(s) still under {self.dir}; leaving it in place")
            self.removed = False
            return
        shutil.rmtree(self.dir, ignore_errors=True)
        self.removed = not self.dir.exists()


def engine_status(no_engine: bool) -> str | None:
    """None when a private engine can be started here, else why not."""
    if no_engine:
        return "skipped (--no-engine)"
    if not shutil.which("docker") or not shutil.which("dockerd"):
        return "not installed"
    if os.geteuid() != 0:
        return "not available: dockerd needs root"
    return None


# --- one app --------------------------------------------------------------------------


def measure_app(app: App, cache: Path, ws: bench_node.Workspace, mp: bench_node.Microprune, runs: int,
                engine: Engine | None, engine_note: str | None) -> dict:
    work = cache / "image" / app.name
    work.mkdir(parents=True, exist_ok=True)
    row: dict = {"app": app.name, "language": app.language, "tag": app.tag, "error": None,
                 "targets": TARGETS.get(app.name), "check_run": None, "check_engine": None}
    try:
        args = image_arguments(app, cache, ws)
    except (bench_node.BenchError, subprocess.CalledProcessError, OSError) as exc:
        row["error"] = f"installing the dependencies failed: {exc}"
        return row
    out = work / "image.tar"
    report = build(app, mp, args, out, runs, row)
    if report is None:
        return row
    describe_image(report, out, row)
    row["check_run"] = check_with_run(app, mp, row, work)
    if engine is not None:
        row["check_engine"] = check_in_engine(app, engine, row)
    else:
        row["check_engine"] = {"status": "skipped", "error": f"engine: {engine_note}", "seconds": None}
    return row


def evaluate_targets(row: dict) -> dict | None:
    target = row.get("targets")
    if not target or row.get("size") is None:
        return None
    engine_ok = (row.get("check_engine") or {}).get("status") == "pass"
    result = {"uncompressed": row["uncompressed_size"] <= target["uncompressed"],
              "compressed": row["size"] <= target["compressed"], "runs_in_engine": engine_ok}
    result["pass"] = all(result.values())
    return result


# --- reporting ------------------------------------------------------------------------------


def mb(value: int | None) -> str:
    return "-" if value is None else f"{value / MB:.1f}"


def table(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    grid = [header, *rows]
    widths = [max(len(line[i]) for line in grid) for i in range(len(header))]
    lines = []
    for n, line in enumerate(grid):
        cells = [c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True))]
        lines.append(" | ".join(cells).rstrip())
        if n == 0:
            lines.append("-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def status_cell(check: dict | None) -> str:
    return "-" if check is None else check["status"]


def image_table(rows: list[dict]) -> str:
    body = []
    for r in rows:
        target = r.get("targets")
        goal = "-" if not target else f"<= {mb(target['uncompressed'])} / {mb(target['compressed'])}"
        if r["error"] and r.get("size") is None:
            body.append([r["app"], "error", "error", goal, "-" if r.get("build_seconds_median") is None
                         else f"{r['build_seconds_median']:.2f}", "-", "-", "-"])
            continue
        met = r["target_result"]
        verdict = "-" if met is None else ("met" if met["uncompressed"] and met["compressed"] else "MISSED")
        body.append([r["app"], mb(r["uncompressed_size"]), mb(r["size"]), f"{goal} {verdict}",
                     f"{r['build_seconds_median']:.2f}", "yes" if r["reproducible"] else "NO",
                     status_cell(r["check_run"]), status_cell(r["check_engine"])])
    return table(["app", "image MB", "compressed MB", "target MB (size)", "build s", "same digest",
                  "microprune run", "engine"], body)


def layer_table(rows: list[dict]) -> str:
    body = []
    for r in rows:
        for layer in r.get("layers") or []:
            body.append([r["app"], layer["name"], mb(layer["uncompressed_size"]), mb(layer["size"]),
                         f"{layer['files']:,}" if layer.get("files") is not None else "-"])
    return table(["app", "layer", "MB", "compressed MB", "files"], body, left=2)


def published_table() -> str:
    body = [[p["image"], mb(p["compressed_bytes"]) if p["compressed_bytes"] else "unverified",
             mb(p["uncompressed_bytes"]) if p["uncompressed_bytes"] else "not published",
             p["as_of"] or "-"] for p in PUBLISHED_IMAGES]
    return table(["official image (linux/amd64)", "compressed MB", "uncompressed MB", "as of"], body)


def brief(text: str, lines: int = 12) -> str:
    """The first line of an error (what failed) and its last lines (why)."""
    all_lines = text.strip().splitlines()
    if len(all_lines) <= lines + 1:
        return "\n".join(all_lines)
    return "\n".join([all_lines[0], "...", *all_lines[-lines:]])


def problem_lines(rows: list[dict]) -> list[str]:
    lines = []
    for r in rows:
        if r["error"]:
            lines.append(f"- {r['app']}: {r['error']}".replace("\n", "\n    "))
        for key, label in (("check_run", "microprune run"), ("check_engine", "engine")):
            check = r.get(key)
            if check and check["status"] == "FAIL":
                lines.append(f"- {r['app']} / {label}: " + brief(check["error"] or "").replace("\n", "\n    "))
        left = (r.get("check_run") or {}).get("left_behind")
        if left:
            lines.append(f"- {r['app']} / microprune run: left {', '.join(left)} in its TMPDIR")
        if r.get("runtime_missing"):
            lines.append(f"- {r['app']}: runtime files microprune could not find: {r['runtime_missing']}")
        if r.get("reproducible") is False:
            digests = ", ".join(d.removeprefix("sha256:")[:12] for d in r.get("build_digests", []))
            lines.append(f"- {r['app']}: the {len(r['build_seconds'])} builds gave different image digests "
                         f"({digests}); was microprune's source edited meanwhile? (see the last line)")
    return lines


def format_report(result: dict) -> str:
    rows = list(result["apps"].values())
    title = (f"images (MB = 10^6 bytes; compressed = the gzip layers; build s = median of {result['runs']} "
             "run(s); checks: the app's smoke check)")
    out = [title, image_table(rows), "", "layers", layer_table(rows), ""]
    for r in rows:
        if r.get("build_seconds"):
            engine = r.get("check_engine") or {}
            extra = ""
            if engine.get("load_seconds") is not None:
                extra = (f"; docker load {engine['load_seconds']:.2f} s, engine reports "
                         f"{mb(engine.get('engine_image_size'))} MB")
            out.append(f"{r['app']}: builds {', '.join(f'{t:.2f}' for t in r['build_seconds'])} s; "
                       f"archive {mb(r.get('archive_bytes'))} MB; entrypoint {json.dumps(r.get('entrypoint'))}"
                       f"; user {r.get('user')}{extra}")
    for r in rows:
        met = r.get("target_result")
        if met is not None:
            verdict = "PASS" if met["pass"] else "FAIL (" + ", ".join(k for k, v in met.items() if k != "pass" and not v) + ")"
            out.append(f"target {r['app']}: <= {mb(r['targets']['uncompressed'])} MB uncompressed, "
                       f"<= {mb(r['targets']['compressed'])} MB compressed, runs in a real engine: {verdict}")
    out += ["", ("published sizes of the official images, for comparison (not measured here: no registry "
                 "is reachable from this machine; read from the sources below)"), published_table()]
    for p in PUBLISHED_IMAGES:
        out.append(f"  {p['image']}: {p['source'] or '(no source)'}" + (f" - {p['note']}" if p["note"] else ""))
    engine = result["engine"]
    out += ["", "engine: " + (engine["status"] if engine["version"] is None else
                              f"private dockerd {engine['version']} (vfs, --network none containers), "
                              f"started in {engine['start_seconds']:.2f} s, stopped by pid with "
                              f"{engine['stopped_by']}")]
    problems = problem_lines(rows)
    if problems:
        out += ["", "Problems:", *problems]
    about = result["microprune"]
    out += ["", f"microprune: {shlex.join(about['command'])} ({about['version']}) at {about['git_head']}"
            + (" (uncommitted changes in src/ or analyzers/)" if about["git_dirty"] else "")]
    return "\n".join(out)


# --- main -------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--app", action="append", choices=sorted(all_apps()),
                        help=f"app to run (repeatable; default: {', '.join(DEFAULT_APPS)})")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "microprune-bench",
                        help="work directory (shared with bench_python.py/bench_node.py; ours is CACHE/image)")
    parser.add_argument("--runs", type=int, default=3, help="image builds per app (median reported)")
    parser.add_argument("--microprune", metavar="CMD", help="microprune command (default: $MICROPRUNE, PATH, "
                        "the checkout's .venv, else this checkout via python3 -m microprune)")
    parser.add_argument("--no-engine", action="store_true", help="skip the real-engine check")
    parser.add_argument("--json", action="store_true", help="print JSON (sorted keys) instead of the tables")
    parser.add_argument("--json-out", type=Path, metavar="FILE",
                        help="also write the JSON to FILE (the tables still go to stdout)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    cache = args.cache.expanduser().resolve()
    apps = [load_app(name) for name in (args.app or DEFAULT_APPS)]
    ws = bench_node.Workspace(cache / "node")
    if any(app.language == "node" for app in apps):
        for directory in (ws.root, ws.home, ws.npm_cache, cache / "image" / "node"):
            directory.mkdir(parents=True, exist_ok=True)
        try:
            bench_node.assert_isolated(cache / "image" / "node", ws.home)
        except bench_node.BenchError as exc:
            log(f"bench: {exc}")
            return 1
    mp = bench_node.microprune_command(args.microprune)

    note = engine_status(args.no_engine)
    engine = None
    engine_info: dict = {"status": f"{note}" if note else "private dockerd", "version": None,
                         "start_seconds": None, "stopped_by": None, "removed": None, "flags": None}
    if note:
        log(f"engine: {note}")
    try:
        if note is None:
            engine = Engine(cache / "image")
            engine_info["flags"] = engine.command()[1:]
            try:
                engine.start()
            except RuntimeError as exc:
                log(f"engine: {exc}")
                engine_info["status"] = f"failed to start: {str(exc).splitlines()[0]}"
                engine.stop()
                engine = None
        rows = [measure_app(app, cache, ws, mp, args.runs, engine, engine_info["status"]) for app in apps]
    finally:
        if engine is not None:
            engine.stop()
            engine_info.update(version=engine.version, start_seconds=engine.start_seconds,
                               stopped_by=engine.stopped_by, removed=engine.removed)
    for r in rows:
        r["target_result"] = evaluate_targets(r)
    result = {"apps": {r["app"]: r for r in rows}, "runs": args.runs, "engine": engine_info,
              "published_images": PUBLISHED_IMAGES, "targets": TARGETS, "mb": MB,
              "microprune": bench_node.describe(mp), "python": sys.version.split()[0]}
    text = json.dumps(result, indent=2, sort_keys=True)
    if args.json_out:
        args.json_out.write_text(text + "\n")
    print(text if args.json else format_report(result))
    ok = all(not r["error"] and (r["check_run"] or {}).get("status") == "pass"
             and (r["check_engine"] or {}).get("status") in ("pass", "skipped") for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
