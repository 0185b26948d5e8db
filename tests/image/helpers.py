"""Small apps to build images from (no network), the CLI with a chosen environment, `microprune run`
as a server with bounded waits and process-group cleanup, and hand-made (hostile) archives."""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.cli.helpers import Result
from tests.image.ocivalidate import OCI_CONFIG, OCI_INDEX, OCI_LAYER_TAR, OCI_MANIFEST

# -- apps -----------------------------------------------------------------------------------------

# A Node app in the shape of fixtures/node/basic: an app file, an app module, a package in
# node_modules with a file nothing requires. Serves HTTP on 127.0.0.1:$PORT.
NODE_APP = {
    "package.json": '{"name": "tiny-node", "version": "1.0.0", "main": "server.js", '
                    '"dependencies": {"greet": "1.0.0"}}\n',
    "server.js": (
        "'use strict';\n"
        "const http = require('http');\n"
        "const greet = require('greet');\n"
        "const name = require('./lib/name');\n"
        "http.createServer((req, res) => {\n"
        "  res.setHeader('content-type', 'text/plain');\n"
        "  res.end(greet(name()) + ' from ' + req.url + '\\n');\n"
        "}).listen(Number(process.env.PORT), '127.0.0.1');\n"
    ),
    "lib/name.js": "module.exports = () => 'microcontainer';\n",
    "data/public.txt": "shipped: not a secret\n",
    "node_modules/greet/package.json": '{"name": "greet", "version": "1.0.0", "main": "lib/index.js"}\n',
    "node_modules/greet/lib/index.js": "module.exports = (who) => 'hello ' + who;\n",
    "node_modules/greet/lib/unused.js": "module.exports = 'never required';\n",
}
NODE_ANSWER = "hello microcontainer from /probe\n"

# A Python app whose only dependency is a fake distribution; serves HTTP with the stdlib's
# http.server on 127.0.0.1:$PORT (a stdlib *submodule*: the image must carry http/server.py).
PYTHON_APP = {
    "app.py": (
        "import os\n"
        "from http.server import BaseHTTPRequestHandler, HTTPServer\n\n"
        "import greet\n\n\n"
        "class Handler(BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        body = (greet.hello() + ' from ' + self.path + '\\n').encode()\n"
        "        self.send_response(200)\n"
        "        self.send_header('Content-Length', str(len(body)))\n"
        "        self.end_headers()\n"
        "        self.wfile.write(body)\n\n"
        "    def log_message(self, *args):\n"
        "        pass\n\n\n"
        "HTTPServer(('127.0.0.1', int(os.environ.get('PORT', '8000'))), Handler).serve_forever()\n"
    ),
    "data/public.txt": "shipped: not a secret\n",
}
PYTHON_DEPS = {
    "greet/__init__.py": "from .core import hello\n",
    "greet/core.py": "def hello():\n    return 'hello microcontainer'\n",
    "greet/unused.py": "X = 1\n",
    "greet-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: greet\nVersion: 1.0\n",
    "greet-1.0.dist-info/RECORD": "greet/__init__.py,,\ngreet/core.py,,\ngreet/unused.py,,\n"
                                  "greet-1.0.dist-info/METADATA,,\ngreet-1.0.dist-info/RECORD,,\n",
}
PYTHON_ANSWER = "hello microcontainer from /probe\n"

RSA_KEY = ("-----BEGIN RSA PRIVATE KEY-----\n"
           "MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n"
           "MP-SECRET-TOKEN-rsa\n"
           "-----END RSA PRIVATE KEY-----\n")
# What must never ship, next to each app: path -> (content, the path as image.left_out names it).
# Each content carries a unique token, searched for in the layers' bytes.
SECRETS = {
    ".env": ("API_KEY=MP-SECRET-TOKEN-env\n", ".env"),
    ".env.production": ("DB_PASSWORD=MP-SECRET-TOKEN-envprod\n", ".env.production"),
    ".npmrc": ("//registry.npmjs.org/:_authToken=MP-SECRET-TOKEN-npmrc\n", ".npmrc"),
    ".git/config": ("[remote \"origin\"]\n\turl = https://MP-SECRET-TOKEN-git@example.com/x.git\n", ".git/"),
    "config/signing.txt": (RSA_KEY, "config/signing.txt"),              # a private key found by content
    "notes.secret": ("MP-SECRET-TOKEN-dockerignore-glob\n", "notes.secret"),   # .dockerignore: *.secret
    "private/data.txt": ("MP-SECRET-TOKEN-dockerignore-dir\n", "private/"),    # .dockerignore: private/
}
DOCKERIGNORE = "# comments and blank lines are ignored\n\n*.secret\nprivate/\n"
SECRET_TOKEN = b"MP-SECRET-TOKEN"


def write_files(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def write_node_app(root: Path) -> Path:
    """The tiny Node app with its node_modules and the secrets beside it."""
    write_files(root, NODE_APP)
    return _with_secrets(root)


def write_python_app(root: Path) -> tuple[Path, Path]:
    """(app, deps): the tiny Python app with the secrets beside it, and a --target style deps dir."""
    app = _with_secrets(write_files(root / "app", PYTHON_APP))
    deps = write_files(root / "deps", PYTHON_DEPS)
    return app, deps


def _with_secrets(app: Path) -> Path:
    write_files(app, {name: content for name, (content, _) in SECRETS.items()})
    (app / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (app / ".dockerignore").write_text(DOCKERIGNORE)
    return app


def set_mtimes(root: Path, seconds: float) -> None:
    """Every file and directory below root (and root) gets this mtime (links not followed)."""
    for directory, dirs, files in os.walk(root, topdown=False):
        for name in files + dirs:
            os.utime(Path(directory, name), (seconds, seconds), follow_symlinks=False)
    os.utime(root, (seconds, seconds))


# -- the CLI ----------------------------------------------------------------------------------------

def cli(*args: str | os.PathLike[str], env: dict[str, str] | None = None, timeout: float = 600,
        cwd: Path | None = None) -> Result:
    """`python -m microprune ARGS` with os.environ updated by env (a value of "" removes the name)."""
    full_env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    full_env.pop("SOURCE_DATE_EPOCH", None)
    for key, value in (env or {}).items():
        if value == "":
            full_env.pop(key, None)
        else:
            full_env[key] = value
    proc = subprocess.run([sys.executable, "-m", "microprune", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env=full_env, errors="replace", check=False)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def build(app: Path, out: Path, *args: str | os.PathLike[str], deps: Path | None = None,
          env: dict[str, str] | None = None) -> dict[str, Any]:
    """`microprune image APP --out OUT --format json [...]`; the report (asserting success)."""
    extra: list[str | os.PathLike[str]] = ["--deps", deps] if deps is not None else []
    result = cli("image", app, "--out", out, "--format", "json", *extra, *args, env=env)
    assert result.code == 0, f"microprune image failed ({result.code}):\n{result.err[-4000:]}"
    assert "Traceback" not in result.err, result.err
    report: dict[str, Any] = result.json()
    return report


# -- `microprune run` as a server -------------------------------------------------------------------

@contextlib.contextmanager
def running(archive: Path, *args: str, scratch: Path, env: dict[str, str] | None = None
            ) -> Iterator[subprocess.Popen[str]]:
    """`microprune run ARCHIVE ARGS` in its own process group, TMPDIR=scratch (so its root is
    found there); stopped on exit: SIGTERM to microprune (it removes its scratch root), then
    SIGKILL to whatever is left of the group."""
    scratch.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "microprune", "run", str(archive), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                            start_new_session=True, env=run_env(scratch, env))
    try:
        yield proc
    finally:
        stop_group(proc)


def run_env(scratch: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, "TMPDIR": str(scratch), "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}


def stop_group(proc: subprocess.Popen[str], grace: float = 20) -> list[int]:
    """Stop `microprune run` and its process group, bounded; returns the pids that outlived it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    survivors = group_members(proc.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    deadline = time.monotonic() + grace
    while group_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return survivors


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes in the process group, from /proc."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


def output_of(proc: subprocess.Popen[str]) -> str:
    """What a stopped process printed."""
    if proc.stdout is None:
        return ""
    with contextlib.suppress(ValueError, OSError):
        return proc.stdout.read()
    return ""


# -- archives -----------------------------------------------------------------------------------------

def layer_tar(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    """An uncompressed layer tar holding exactly these members, names as given (not sanitised)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def member(name: str, kind: str = "file", data: bytes | None = None, target: str = "",
           mode: int | None = None) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    if kind == "dir":
        info.type, info.mode = tarfile.DIRTYPE, 0o755 if mode is None else mode
        return info, None
    if kind == "symlink":
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
        return info, None
    if kind == "hardlink":
        info.type, info.linkname, info.mode = tarfile.LNKTYPE, target, 0o644
        return info, None
    info.mode = 0o644 if mode is None else mode
    return info, data if data is not None else b""


def archive_with_layer(dest: Path, layer: bytes, base: Path | None = None,
                       entrypoint: list[str] | None = None, tag: str = "hostile:test") -> Path:
    """An OCI + docker archive: the base archive's layers (if any) plus ``layer`` on top
    (uncompressed), with consistent digests, diff_ids and manifests."""
    blobs: dict[str, bytes] = {}
    config: dict[str, Any] = {"architecture": "amd64", "os": "linux", "created": "1970-01-01T00:00:00Z",
                              "config": {"Entrypoint": entrypoint or ["/nothing"], "User": "0:0"},
                              "rootfs": {"type": "layers", "diff_ids": []}, "history": []}
    layers: list[dict[str, Any]] = []
    if base is not None:
        with tarfile.open(base) as tar:
            index = json.loads(_read(tar, "index.json"))
            manifest = json.loads(_read(tar, _blob_name(index["manifests"][0]["digest"])))
            config = json.loads(_read(tar, _blob_name(manifest["config"]["digest"])))
            layers = list(manifest["layers"])
            for descriptor in layers:
                blobs[descriptor["digest"]] = _read(tar, _blob_name(descriptor["digest"]))
    digest = _sha256(layer)
    blobs[digest] = layer
    layers.append({"mediaType": OCI_LAYER_TAR, "digest": digest, "size": len(layer)})
    config["rootfs"]["diff_ids"].append(digest)
    config.setdefault("history", []).append({"created": config["created"], "created_by": "test: extra layer"})
    config_bytes = _canonical(config)
    config_digest = _sha256(config_bytes)
    manifest_bytes = _canonical({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                 "config": {"mediaType": OCI_CONFIG, "digest": config_digest,
                                            "size": len(config_bytes)},
                                 "layers": layers})
    manifest_digest = _sha256(manifest_bytes)
    name, _, version = tag.rpartition(":")
    members = {
        "oci-layout": _canonical({"imageLayoutVersion": "1.0.0"}),
        "index.json": _canonical({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": len(manifest_bytes),
             "annotations": {"io.containerd.image.name": tag, "org.opencontainers.image.ref.name": version}}]}),
        "manifest.json": _canonical([{"Config": _blob_name(config_digest), "RepoTags": [f"{name}:{version}"],
                                      "Layers": [_blob_name(d["digest"]) for d in layers]}]),
        _blob_name(config_digest): config_bytes,
        _blob_name(manifest_digest): manifest_bytes,
        **{_blob_name(d): data for d, data in blobs.items()},
    }
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for directory in ("blobs/", "blobs/sha256/"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for member_name in sorted(members):
            info = tarfile.TarInfo(member_name)
            info.size, info.mode = len(members[member_name]), 0o644
            tar.addfile(info, io.BytesIO(members[member_name]))
    return dest


def layer_contents(archive: Path, number: int) -> dict[str, bytes]:
    """name -> bytes of the regular files of layer `number` (0 = the first) of an archive."""
    with tarfile.open(archive) as tar:
        docker_manifest = json.loads(_read(tar, "manifest.json"))
        blob = _read(tar, docker_manifest[0]["Layers"][number])
    data = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
    found = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as layer:
        for info in layer:
            if info.isfile():
                handle = layer.extractfile(info)
                found[info.name] = handle.read() if handle else b""
    return found


def rewrite_member(source: Path, dest: Path, name: str, change: Any) -> Path:
    """A copy of an archive with one member's bytes (or TarInfo) changed by ``change(info, data)``."""
    with tarfile.open(source) as tar, tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as out:
        for info in tar.getmembers():
            data = tar.extractfile(info).read() if info.isfile() else None   # type: ignore[union-attr]
            if info.name == name:
                info, data = change(info, data)
            if data is not None:
                info.size = len(data)
            out.addfile(info, io.BytesIO(data) if data is not None else None)
    return dest


def _read(tar: tarfile.TarFile, name: str) -> bytes:
    handle = tar.extractfile(name)
    assert handle is not None, name
    return handle.read()


def _blob_name(digest: str) -> str:
    return "blobs/sha256/" + digest.split(":", 1)[1]


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def tree_has(root: Path, needle: str) -> list[Path]:
    """Paths under root whose name contains needle (links not followed)."""
    return [Path(d, n) for d, dirs, files in os.walk(root) for n in dirs + files if needle in n]


def copy_tree(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest, symlinks=True)
    return dest
