"""A real engine: a private dockerd (started here, stopped by its own pid) loads and runs the
images with no network, and skopeo + umoci read the same archives.

The daemon runs exactly as DESIGN.md ("Images without an engine") says:
`dockerd --storage-driver=vfs --iptables=false --ip6tables=false --bridge=none --data-root=D
--exec-root=E --pidfile=P --host=unix://S`, everything under one temporary directory. The
images have no shell and no curl: the HTTP check runs the image's own interpreter with
`docker exec` against the container's loopback. .ci/run installs docker.io, skopeo and umoci;
elsewhere these tests are skipped when they are missing.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.realpkgs import installed
from tests.image.conftest import Built
from tests.image.helpers import build

DOCKER, DOCKERD = shutil.which("docker"), shutil.which("dockerd")
SKOPEO, UMOCI = shutil.which("skopeo"), shutil.which("umoci")
START_SECONDS = 60          # dockerd is up in about 2 s here
STOP_SECONDS = 30
ANSWER_SECONDS = 60

needs_engine = pytest.mark.skipif(
    DOCKER is None or DOCKERD is None or os.geteuid() != 0,
    reason="needs root and Debian's Docker engine (docker + dockerd: apt-get install docker.io; .ci/run installs it)")
needs_oci_tools = pytest.mark.skipif(
    SKOPEO is None or UMOCI is None,
    reason="needs skopeo and umoci (apt-get install skopeo umoci; .ci/run installs them)")


# -- the private daemon -----------------------------------------------------------------------------

@dataclass
class Engine:
    root: Path
    socket: Path
    pid: int

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": f"unix://{self.socket}", "DOCKER_CONFIG": str(self.root / "client")}

    def docker(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
        assert DOCKER is not None
        proc = subprocess.run([DOCKER, *args], capture_output=True, text=True, errors="replace", env=self.env,
                              timeout=timeout, stdin=subprocess.DEVNULL, check=False)
        if check and proc.returncode != 0:
            pytest.fail(f"docker {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n"
                        f"{proc.stderr[-3000:]}")
        return proc


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    if DOCKER is None or DOCKERD is None or os.geteuid() != 0:
        pytest.skip("needs root and Debian's Docker engine (docker.io)")
    # A short path: the daemon's and containerd's unix sockets live below it (108-byte limit).
    root = Path(tempfile.mkdtemp(prefix="mp-dockerd-"))
    socket_path, pidfile = root / "docker.sock", root / "dockerd.pid"
    command = [DOCKERD, "--storage-driver=vfs", "--iptables=false", "--ip6tables=false", "--bridge=none",
               f"--data-root={root / 'data'}", f"--exec-root={root / 'exec'}", f"--pidfile={pidfile}",
               f"--host=unix://{socket_path}"]
    log_path = root / "dockerd.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    engine = Engine(root, socket_path, proc.pid)
    try:
        started = time.monotonic()
        while True:                           # bounded: START_SECONDS
            if proc.poll() is not None:
                pytest.fail(f"dockerd exited with {proc.returncode}:\n{_tail(log_path)}")
            if socket_path.exists() and engine.docker("version", "--format", "{{.Server.Version}}",
                                                      timeout=10, check=False).returncode == 0:
                break
            if time.monotonic() - started > START_SECONDS:
                pytest.fail(f"dockerd did not answer within {START_SECONDS}s:\n{_tail(log_path)}")
            time.sleep(0.2)
        assert pidfile.read_text().strip() == str(proc.pid), "the pidfile names another process"
        print(f"\nprivate dockerd (pid {proc.pid}) answered after {time.monotonic() - started:.1f}s")
        yield engine
    finally:
        _stop_daemon(proc, root)


def _stop_daemon(proc: subprocess.Popen[bytes], root: Path) -> None:
    """Stop dockerd by its own pid (SIGTERM, then SIGKILL), then whatever it started that is
    still up by the pids in its exec-root (its containerd), unmount what is left, remove all."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_SECONDS)
    for pidfile in sorted((root / "exec").rglob("*.pid")) if (root / "exec").exists() else []:
        with contextlib.suppress(ValueError, OSError):
            pid = int(pidfile.read_text().strip())
            if pid > 1 and _cmdline(pid).startswith(("containerd", "/usr/bin/containerd", "/usr/sbin/containerd")):
                os.kill(pid, signal.SIGKILL)
    with open("/proc/mounts", encoding="utf-8") as mounts:
        ours = [line.split()[1] for line in mounts if line.split()[1].startswith(str(root) + "/")]
    for mount in sorted(ours, key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True, timeout=30, check=False)
    shutil.rmtree(root, ignore_errors=True)


def _cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    return ""


def _tail(path: Path, size: int = 4000) -> str:
    with contextlib.suppress(OSError):
        return path.read_text(errors="replace")[-size:]
    return ""


# -- the images -------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def flask_image(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """Flask + gunicorn from PyPI (the e2e app: templates, gthread workers, 127.0.0.1:8000)."""
    from tests.e2e.test_python_flask_gunicorn import write_app

    root = tmp_path_factory.mktemp("flask-image")
    deps = installed(["flask==3.1.*", "gunicorn==23.*"])
    app = write_app(root / "app")
    archive = root / "flask.tar"
    return Built(app, deps, archive, build(app, archive, "--tag", "mp-flask:test", deps=deps))


@pytest.fixture(scope="session")
def express_image(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """Express 4 + ejs + moment/dayjs from npm (the e2e app; its page is known exactly)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("needs node and npm")
    from tests.e2e.test_node_real import EXPRESS_EJS, write_app

    root = tmp_path_factory.mktemp("express-image")
    app = write_app(EXPRESS_EJS, root / "app")
    archive = root / "express.tar"
    return Built(app, None, archive, build(app, archive, "--tag", "mp-express:test"))


@dataclass(frozen=True)
class Case:
    fixture: str
    port: int
    env: tuple[str, ...]               # docker run -e
    expect: str                        # in the body of GET /
    exact: bool = False
    files: tuple[str, ...] = ()        # in the unpacked rootfs (umoci)


def _express_page() -> str:
    from tests.e2e.test_node_real import EXPRESS_EJS

    return EXPRESS_EJS.page


CASES = {
    "tiny-node": Case("node_image", 3000, ("PORT=3000",), "hello microcontainer from /\n", exact=True,
                      files=("app/server.js", "app/lib/name.js", "app/node_modules/greet/lib/index.js")),
    "tiny-python": Case("python_image", 8080, ("PORT=8080",), "hello microcontainer from /\n", exact=True,
                        files=("app/app/app.py", "app/site-packages/greet/core.py")),
    "flask-gunicorn": Case("flask_image", 8000, (), "<li>ALPHA</li><li>BETA</li>",
                           files=("app/app/app.py", "app/app/templates/index.html",
                                  "app/site-packages/flask/__init__.py", "app/site-packages/gunicorn/__init__.py")),
    "express": Case("express_image", 3000, ("PORT=3000",), "", exact=True,
                    files=("app/server.js", "app/views/index.ejs", "app/views/partials/footer.ejs",
                           "app/node_modules/express/index.js", "app/node_modules/moment/locale/fr.js")),
}
PARAMS = [pytest.param("tiny-node", id="tiny-node"), pytest.param("tiny-python", id="tiny-python"),
          pytest.param("flask-gunicorn", id="flask-gunicorn", marks=pytest.mark.network),
          pytest.param("express", id="express", marks=pytest.mark.network)]

# HTTP clients for `docker exec <ctr> <interpreter> -c/-e CODE`: no shell, no curl in the image.
# Both print the status on the first line, then the body; the Python one uses only `socket` and `sys`.
PY_CLIENT = """\
import socket, sys
s = socket.create_connection(('127.0.0.1', {port}), timeout=5)
s.sendall(b'GET / HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n')
data = b''
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
head, _, body = data.partition(b'\\r\\n\\r\\n')
sys.stdout.write(head.split()[1].decode() + '\\n' + body.decode('utf-8'))
"""
NODE_CLIENT = """\
require('http').get({{host: '127.0.0.1', port: {port}, path: '/'}}, (res) => {{
  let body = ''; res.setEncoding('utf8');
  res.on('data', (d) => {{ body += d; }});
  res.on('end', () => process.stdout.write(res.statusCode + '\\n' + body));
}}).on('error', (e) => {{ console.error(e.message); process.exit(3); }});
"""


def _client(built: Built, port: int) -> list[str]:
    if built.report["language"] == "node":
        return [built.interpreter, "-e", NODE_CLIENT.format(port=port)]
    return [built.interpreter, "-c", PY_CLIENT.format(port=port)]


@needs_engine
@pytest.mark.parametrize("name", PARAMS)
def test_docker_loads_and_runs_the_image_without_network(name: str, engine: Engine,
                                                         request: pytest.FixtureRequest) -> None:
    case = CASES[name]
    built: Built = request.getfixturevalue(case.fixture)
    image = built.image
    loaded = engine.docker("load", "-i", str(built.archive))
    assert f"Loaded image: {image['tag']}" in loaded.stdout, loaded.stdout
    inspected = json.loads(engine.docker("image", "inspect", image["tag"]).stdout)[0]
    assert inspected["Id"] == image["config_digest"]
    assert inspected["RootFS"]["Layers"] == [layer["diff_id"] for layer in image["layers"]]
    assert inspected["Config"]["User"] == "65532:65532"

    container = f"mp-{name}-{uuid.uuid4().hex[:8]}"
    run = ["run", "-d", "--name", container, "--network", "none"]
    for item in case.env:
        run += ["-e", item]
    engine.docker(*run, image["tag"])
    try:
        answer = _answer(engine, container, _client(built, case.port))
        uid = engine.docker("exec", container, built.interpreter,
                            "-e" if built.report["language"] == "node" else "-c",
                            "console.log(process.getuid())" if built.report["language"] == "node"
                            else "import os; print(os.getuid())").stdout.strip()
        networks = json.loads(engine.docker("inspect", container).stdout)[0]["NetworkSettings"]["Networks"]
    finally:
        engine.docker("rm", "-f", container, check=False, timeout=120)
    assert answer["status"] == 200, answer
    expected = _express_page() if name == "express" else case.expect
    if case.exact:
        assert answer["body"] == expected
    else:
        assert expected in str(answer["body"]), answer["body"]
    assert uid == "65532"
    assert list(networks) == ["none"]


def _answer(engine: Engine, container: str, client: list[str]) -> dict[str, object]:
    """Run the client in the container until the server answers (bounded by ANSWER_SECONDS)."""
    deadline = time.monotonic() + ANSWER_SECONDS
    last = ""
    while time.monotonic() < deadline:
        state = engine.docker("inspect", "-f", "{{.State.Running}}", container, check=False).stdout.strip()
        if state != "true":
            logs = engine.docker("logs", container, check=False)
            pytest.fail(f"container {container} stopped ({state}):\n{logs.stdout[-3000:]}\n{logs.stderr[-3000:]}")
        done = engine.docker("exec", container, *client, check=False, timeout=60)
        if done.returncode == 0 and done.stdout:
            status, _, body = done.stdout.partition("\n")
            return {"status": int(status), "body": body}
        last = done.stderr.strip()[-500:]
        time.sleep(0.5)
    logs = engine.docker("logs", container, check=False)
    pytest.fail(f"no HTTP answer inside {container} within {ANSWER_SECONDS}s (last: {last}):\n"
                f"{logs.stdout[-2000:]}\n{logs.stderr[-2000:]}")


@needs_oci_tools
@pytest.mark.parametrize("name", PARAMS)
def test_skopeo_copies_and_umoci_unpacks_the_archive(name: str, tmp_path: Path,
                                                     request: pytest.FixtureRequest) -> None:
    case = CASES[name]
    built: Built = request.getfixturevalue(case.fixture)
    assert SKOPEO is not None and UMOCI is not None
    layout, bundle = tmp_path / "oci", tmp_path / "bundle"
    copied = subprocess.run([SKOPEO, "--insecure-policy", "copy", f"oci-archive:{built.archive}",
                             f"oci:{layout}:test"], capture_output=True, text=True, timeout=600, check=False)
    assert copied.returncode == 0, copied.stderr
    index = json.loads((layout / "index.json").read_text())
    assert index["manifests"][0]["digest"] == built.image["digest"], "skopeo rewrote the manifest"
    unpacked = subprocess.run([UMOCI, "unpack", "--image", f"{layout}:test", str(bundle)], capture_output=True,
                              text=True, timeout=600, check=False)
    assert unpacked.returncode == 0, unpacked.stderr
    rootfs = bundle / "rootfs"
    missing = [f for f in case.files if not (rootfs / f).is_file()]
    assert not missing, f"not in the unpacked rootfs: {missing}"
    interpreter = rootfs / built.interpreter.lstrip("/")
    assert interpreter.is_file() and os.access(interpreter, os.X_OK)
    runtime = json.loads((bundle / "config.json").read_text())
    assert runtime["process"]["args"] == built.image["entrypoint"]
    assert runtime["process"]["cwd"] == built.image["workdir"]
    assert (runtime["process"]["user"]["uid"], runtime["process"]["user"]["gid"]) == (65532, 65532)
