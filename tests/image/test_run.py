"""`microprune run IMAGE.tar`: the image unpacked into a scratch root and run there, isolated.

Servers are started in their own process group with bounded waits and stopped by group
(helpers.running); every test points TMPDIR at its own directory, so the scratch root is known
and checked to be gone afterwards. Hostile archives must be refused or stay inside the root.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import uuid
from pathlib import Path

import pytest

from tests.e2e.realpkgs import fetch, free_port, installed, wait_for_port
from tests.image.conftest import Built
from tests.image.helpers import (
    NODE_ANSWER,
    PYTHON_ANSWER,
    archive_with_layer,
    build,
    cli,
    group_members,
    layer_tar,
    member,
    output_of,
    run_env,
    running,
    stop_group,
    tree_has,
)
from tests.image.ocivalidate import problems

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
pytestmark = pytest.mark.skipif(os.geteuid() != 0 and shutil.which("bwrap") is None,
                                reason="microprune run needs root (unshare) or bwrap")


def run_image(archive: Path, *args: str, scratch: Path, env: dict[str, str] | None = None,
              timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`microprune run` to completion (bounded), TMPDIR=scratch, in its own process group."""
    proc = subprocess.Popen([sys.executable, "-m", "microprune", "run", str(archive), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
                            start_new_session=True, env=run_env(scratch, env))
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_group(proc)
        out, err = proc.communicate()
        pytest.fail(f"microprune run did not finish within {timeout}s:\n{out[-2000:]}\n{err[-2000:]}")
    finally:
        stop_group(proc)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def assert_scratch_removed(scratch: Path) -> None:
    left = sorted(p.name for p in scratch.iterdir()) if scratch.exists() else []
    assert not left, f"microprune run left its scratch root behind: {left}"


def get(port: int, path: str = "/probe") -> tuple[int, str]:
    try:
        return fetch(f"http://127.0.0.1:{port}{path}")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode("utf-8", "replace")


# -- Node --------------------------------------------------------------------------------------------

def test_node_e_runs_inside_the_image(node_image: Built, tmp_path: Path) -> None:
    script = ("const fs = require('fs');"
              "console.log(JSON.stringify({pid: process.pid, uid: process.getuid(), gid: process.getgid(),"
              " cwd: process.cwd(), env: process.env, version: process.version,"
              " shell: fs.existsSync('/bin/sh') || fs.existsSync('/usr/bin/sh'),"
              " host: fs.existsSync(" + json.dumps(str(Path.cwd())) + "),"
              " scratch: fs.existsSync(" + json.dumps(str(tmp_path)) + "),"
              " greet: require('/app/node_modules/greet')('x')}))")
    scratch = tmp_path / "scratch"
    done = run_image(node_image.archive, "--env", "EXTRA=given", "--", node_image.interpreter, "-e", script,
                     scratch=scratch, env={"MP_HOST_ONLY": "must-not-leak"})
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    host_version = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=30,
                                  check=False).stdout.strip()
    assert seen["version"] == host_version                   # the local node, copied into the image
    assert (seen["uid"], seen["gid"]) == (65532, 65532)      # the image's user, not root
    assert seen["cwd"] == "/app"
    assert seen["pid"] == 1                                   # a PID namespace of its own
    assert seen["greet"] == "hello x"
    assert not seen["shell"] and not seen["host"] and not seen["scratch"], seen
    env = seen["env"]
    assert env.get("EXTRA") == "given" and env.get("NODE_ENV") == "production"
    assert "MP_HOST_ONLY" not in env and "TMPDIR" not in env, env       # a clean environment
    assert_scratch_removed(scratch)


def test_node_entrypoint_serves_http(node_image: Built, tmp_path: Path) -> None:
    port = free_port()
    scratch = tmp_path / "scratch"
    with running(node_image.archive, "--env", f"PORT={port}", scratch=scratch) as proc:
        wait_for_port(port, proc, seconds=60)
        assert get(port) == (200, NODE_ANSWER)
    assert_scratch_removed(scratch)


def test_timeout_stops_what_the_image_started(node_image: Built, tmp_path: Path) -> None:
    """`--timeout S`: after it, nothing the image started may still run (or serve)."""
    port = free_port()
    scratch = tmp_path / "scratch"
    with running(node_image.archive, "--env", f"PORT={port}", "--timeout", "4", scratch=scratch) as proc:
        wait_for_port(port, proc, seconds=60)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("microprune run --timeout 4 still running after 60 s")
        time.sleep(1)
        survivors = group_members(proc.pid)
        serving = _answers(port)
    # read only now: a survivor would hold the pipe open
    assert proc.returncode == 1 and "did not finish within 4 s" in output_of(proc)
    assert not survivors and not serving, \
        f"after --timeout, the image's server still runs (pids {survivors}, answering: {serving})"
    assert_scratch_removed(scratch)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


# -- Python --------------------------------------------------------------------------------------------

def test_python_c_runs_inside_the_image(python_image: Built, tmp_path: Path) -> None:
    # strptime imports _strptime from C only when called: the runtime must carry it anyway.
    script = ("import json, os, sys, datetime, greet; print(json.dumps({'uid': os.getuid(), 'cwd': os.getcwd(), "
              "'path': sys.path, 'hello': greet.hello(), 'host': os.path.exists(" + repr(str(Path.cwd())) + "), "
              "'year': datetime.datetime.strptime('2031', '%Y').year, "
              "'columns': [next(json.dumps.__code__.co_positions())[2], next(greet.hello.__code__.co_positions())[2]]}))")
    done = run_image(python_image.archive, "--", python_image.interpreter, "-c", script,
                     scratch=tmp_path / "scratch")
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["uid"] == 65532 and seen["cwd"] == "/app/app" and not seen["host"]
    assert seen["hello"] == "hello microcontainer" and seen["year"] == 2031
    # Bytecode of the stdlib and the deps is compiled without column tables (-X no_debug_ranges)
    assert seen["columns"] == [None, None]
    assert "/app/site-packages" in seen["path"]


def test_python_entrypoint_serves_http(python_image: Built, tmp_path: Path) -> None:
    """The tiny app serves with the stdlib's http.server (no network needed to build it)."""
    port = free_port()
    scratch = tmp_path / "scratch"
    with running(python_image.archive, "--env", f"PORT={port}", scratch=scratch) as proc:
        wait_for_port(port, proc, seconds=60)
        assert get(port) == (200, PYTHON_ANSWER)
    assert_scratch_removed(scratch)


@pytest.mark.network
def test_python_hello_gunicorn_serves_hello(tmp_path: Path) -> None:
    """The README's example (Flask + gunicorn from PyPI), its Procfile binding 127.0.0.1:8000."""
    app = shutil.copytree(FIXTURES / "examples" / "hello", tmp_path / "hello")
    deps = installed((app / "requirements.txt").read_text().split())
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", 8000))
        except OSError:
            pytest.skip("127.0.0.1:8000 is in use here; the example's Procfile binds it")
    out = tmp_path / "hello.tar"
    report = build(app, out, deps=deps)
    assert problems(out) == []
    assert report["image"]["entrypoint"][1:3] == ["-m", "gunicorn"]
    scratch = tmp_path / "scratch"
    with running(out, scratch=scratch) as proc:
        wait_for_port(8000, proc, seconds=60)
        status, body = get(8000, "/")
    assert status == 200 and "Hello, microcontainer!" in body, body
    assert_scratch_removed(scratch)


# -- hostile archives --------------------------------------------------------------------------------

def _no_escape(tmp_path: Path, token: str, scratch: Path) -> None:
    escaped = [p for p in tree_has(tmp_path, token) if scratch not in p.parents]
    escaped += [Path(p) for p in (f"/etc/{token}", f"/{token}", f"/tmp/{token}") if os.path.lexists(p)]
    for path in escaped:                      # never leave a stray file on the host
        if path.is_file() or path.is_symlink():
            path.unlink()
    assert not escaped, f"written outside the scratch root: {escaped}"


def _hostile_cases(tmp_path: Path, token: str) -> dict[str, bytes]:
    payload = b"escaped\n"
    outside = tmp_path / "outside"
    return {
        "dotdot": layer_tar([member(f"../../../{token}", data=payload)]),
        "dotdot-inside-a-path": layer_tar([member("app/", "dir"), member(f"app/../../../../{token}", data=payload)]),
        "absolute-etc": layer_tar([member(f"/etc/{token}", data=payload)]),
        "absolute-host-dir": layer_tar([member(f"{outside}/{token}", data=payload)]),
        "hardlink-dotdot": layer_tar([member("app/", "dir"), member(f"app/{token}", "hardlink",
                                                                     target="../../../../etc/passwd")]),
        "hardlink-absolute": layer_tar([member("app/", "dir"), member(f"app/{token}", "hardlink",
                                                                       target="/etc/passwd")]),
    }


@pytest.mark.parametrize("case", ["dotdot", "dotdot-inside-a-path", "absolute-etc", "absolute-host-dir",
                                  "hardlink-dotdot", "hardlink-absolute"])
def test_hostile_member_names_are_refused(case: str, tmp_path: Path) -> None:
    token = f"microprune-pwned-{uuid.uuid4().hex[:12]}"
    (tmp_path / "outside").mkdir()
    archive = archive_with_layer(tmp_path / "hostile.tar", _hostile_cases(tmp_path, token)[case],
                                 entrypoint=["/nothing"])
    assert problems(archive), "the validator must flag the hostile member"
    scratch = tmp_path / "scratch"
    done = run_image(archive, scratch=scratch, timeout=60)
    try:
        assert done.returncode == 1, (done.returncode, done.stderr)
        assert "microprune: error:" in done.stderr and "internal error" not in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
        assert "refus" in done.stderr, done.stderr
    finally:
        _no_escape(tmp_path, token, scratch)
    assert_scratch_removed(scratch)


def test_links_in_a_layer_resolve_inside_the_root(node_image: Built, tmp_path: Path) -> None:
    """A symlink to /etc (and one climbing with '..', and one to a real host directory) followed by
    members written through it: they land inside the unpacked root (the image sees them), never
    on the host. A hardlink through such a link stays inside too."""
    token = f"microprune-pwned-{uuid.uuid4().hex[:12]}"
    outside = tmp_path / "outside"
    outside.mkdir()
    layer = layer_tar([
        member("evil", "symlink", target="/etc"),
        member(f"evil/{token}", data=b"inside etc\n"),
        member("up", "symlink", target="../../../../../../.."),
        member(f"up/{token}-up", data=b"inside root\n"),
        member("hostdir", "symlink", target=str(outside)),
        member(f"hostdir/{token}-host", data=b"inside host path\n"),
        member("app/", "dir"),
        member(f"app/{token}-hard", "hardlink", target=f"evil/{token}"),
    ])
    archive = archive_with_layer(tmp_path / "links.tar", layer, base=node_image.archive)
    # Names are clean (the validator would only mind the hand-made order): the danger is in the links.
    assert not [p for p in problems(archive) if "absolute" in p or "'..'" in p]
    script = ("const fs = require('fs'); console.log(JSON.stringify(" + json.dumps(
        [f"/etc/{token}", f"/{token}-up", f"{outside}/{token}-host", f"/app/{token}-hard"]) +
        ".map(p => fs.readFileSync(p, 'utf8'))))")
    scratch = tmp_path / "scratch"
    try:
        done = run_image(archive, "--", node_image.interpreter, "-e", script, scratch=scratch)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout.strip().splitlines()[-1]) == [
            "inside etc\n", "inside root\n", "inside host path\n", "inside etc\n"]
    finally:
        _no_escape(tmp_path, token, scratch)
    assert list(outside.iterdir()) == []
    assert_scratch_removed(scratch)


def test_not_an_image_is_a_clear_error(tmp_path: Path) -> None:
    plain = tmp_path / "plain.tar"
    subprocess.run(["tar", "-cf", str(plain), "-C", str(FIXTURES / "examples"), "hello"], check=True, timeout=60)
    result = cli("run", plain, timeout=60)
    assert result.code == 1 and "microprune: error:" in result.err and "Traceback" not in result.err, result.err


def test_an_image_that_runs_as_root_is_not_run_without_an_engine(tmp_path: Path) -> None:
    """Root can leave a chroot (chroot into a subfolder, then climb out): `run` does not start
    it in the namespaces it has, and says how to go on."""
    archive = archive_with_layer(tmp_path / "root.tar", layer_tar([member("app/", "dir")]), entrypoint=["/nothing"])
    scratch = tmp_path / "scratch"
    done = run_image(archive, scratch=scratch, timeout=60)
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert "runs as root" in done.stderr and "--user" in done.stderr and "Traceback" not in done.stderr
    assert_scratch_removed(scratch)


def _tar_with(dest: Path, files: dict[str, bytes]) -> Path:
    import io
    import tarfile

    with tarfile.open(dest, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return dest


_CONFIG = json.dumps({"config": {"Entrypoint": ["/nothing"], "User": "65532"}}).encode()
MALFORMED = {
    "manifest-object": {"manifest.json": b"{}"},
    "manifest-empty": {"manifest.json": b"[]"},
    "manifest-junk": {"manifest.json": b"\x00\xffjunk"},
    "config-a-list": {"manifest.json": b'[{"Config": "c.json", "Layers": []}]', "c.json": b"[1, 2]"},
    "entrypoint-not-a-list": {"manifest.json": b'[{"Config": "c.json", "Layers": []}]',
                              "c.json": b'{"config": {"Entrypoint": "notalist"}}'},
    "layers-a-string": {"manifest.json": b'[{"Config": "c.json", "Layers": "l"}]', "c.json": _CONFIG},
    "layer-fake-gzip": {"manifest.json": b'[{"Config": "c.json", "Layers": ["l.tar"]}]', "c.json": _CONFIG,
                        "l.tar": b"\x1f\x8bjunk that is no gzip"},
    "layer-not-tar": {"manifest.json": b'[{"Config": "c.json", "Layers": ["l.tar"]}]', "c.json": _CONFIG,
                      "l.tar": b"plain junk" * 100},
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_archive_is_a_clear_error(case: str, tmp_path: Path) -> None:
    archive = _tar_with(tmp_path / "bad.tar", MALFORMED[case])
    scratch = tmp_path / "scratch"
    done = run_image(archive, scratch=scratch, timeout=60)
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert "microprune: error:" in done.stderr and "internal error" not in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert_scratch_removed(scratch)
