"""`microprune run`: unpack an image archive into a scratch root and run it there, isolated.

The quick proof that needs no engine. Layers are applied in order (OCI whiteouts honoured) with
chroot semantics: a symlink in the image is resolved inside the root, so no member can land
outside it. The command runs with a clean environment (the image's Env only), as the image's
user, in new mount and PID namespaces rooted at the unpacked tree (`unshare`, as root), else
`bwrap` for an unprivileged user.
"""
from __future__ import annotations

import contextlib
import gzip
import json
import os
import signal
import shutil
import subprocess
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from ..errors import MicropruneError

MAX_LINK_HOPS = 40


@dataclass
class ImageConfig:
    entrypoint: list[str]
    cmd: list[str]
    env: list[str]
    user: str
    workdir: str


# What a malformed archive raises while it is read (a manifest of the wrong shape, junk JSON,
# a layer that is not gzip or not tar): said as one line about the archive, not as a bug.
_MALFORMED = (KeyError, IndexError, TypeError, AttributeError, ValueError, EOFError, tarfile.TarError,
              gzip.BadGzipFile, zlib.error)


def read_image(archive: Path) -> tuple[ImageConfig, list[str]]:
    """The config and the layer blob names of an OCI/docker archive, in order."""
    try:
        with tarfile.open(archive) as tar:
            manifest_list = json.loads(_member(tar, "manifest.json"))
            entry = manifest_list[0]
            config = json.loads(_member(tar, entry["Config"]))
        inner = config.get("config") or {}
        image = ImageConfig(_strings(inner.get("Entrypoint")), _strings(inner.get("Cmd")), _strings(inner.get("Env")),
                            str(inner.get("User") or "0"), str(inner.get("WorkingDir") or "/"))
        layers = entry["Layers"]
        if not isinstance(layers, list) or not all(isinstance(name, str) for name in layers):
            raise TypeError("Layers is not a list of names")
        return image, list(layers)
    except _MALFORMED as err:
        raise MicropruneError(f"{archive}: not a valid image archive ({type(err).__name__}: {err})") from err


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise TypeError(f"{value!r:.60} is not a list of strings")
    return value


def _member(tar: tarfile.TarFile, name: str) -> bytes:
    try:
        handle = tar.extractfile(name)
    except KeyError as err:
        raise MicropruneError(f"not an image archive: no {name}") from err
    if handle is None:
        raise MicropruneError(f"not an image archive: {name} is not a file")
    return handle.read()


def unpack(archive: Path, root: Path) -> ImageConfig:
    config, layers = read_image(archive)
    root.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive) as outer:
            for name in layers:
                blob = outer.extractfile(name)
                if blob is None:
                    raise MicropruneError(f"layer {name} missing from {archive}")
                _apply_layer(blob, root)
    except _MALFORMED as err:
        raise MicropruneError(f"{archive}: a layer is not a valid tar ({type(err).__name__}: {err})") from err
    return config


def _apply_layer(blob: IO[bytes], root: Path) -> None:
    head = blob.read(2)
    blob.seek(0)
    stream: IO[bytes] = gzip.GzipFile(fileobj=blob) if head == b"\x1f\x8b" else blob  # type: ignore[assignment]
    with tarfile.open(fileobj=stream, mode="r|") as layer:
        for member in layer:
            rel = _safe_name(member.name)
            if rel is None:
                raise MicropruneError(f"refusing layer member {member.name!r}: absolute or with '..'")
            parent_rel, base = os.path.split(rel)
            if base.startswith(".wh."):
                if base[4:] in ("", ".", ".."):
                    raise MicropruneError(f"refusing layer member {member.name!r}: a whiteout of no name")
                _whiteout(root, parent_rel, base[4:])
                continue
            parent = _resolve(root, parent_rel)
            parent.mkdir(parents=True, exist_ok=True)
            dest = parent / base
            _remove(dest, keep_dir=member.isdir())
            if member.isdir():
                dest.mkdir(exist_ok=True)
                os.chmod(dest, member.mode & 0o7777)
            elif member.issym():
                os.symlink(member.linkname, dest)
            elif member.islnk():
                link_name = _safe_name(member.linkname)
                if link_name is None:
                    raise MicropruneError(f"refusing hardlink {member.name!r} -> {member.linkname!r}: it points out")
                target = _resolve(root, link_name)
                if not target.is_file():
                    raise MicropruneError(f"refusing hardlink {member.name!r}: {member.linkname!r} is not a file")
                os.link(target, dest)
            elif member.isfile():
                source = layer.extractfile(member)
                assert source is not None
                with open(dest, "wb") as handle:
                    shutil.copyfileobj(source, handle)
                os.chmod(dest, member.mode & 0o7777)


def _safe_name(name: str) -> str | None:
    parts = [p for p in PurePosixPath(name).parts if p not in ("", ".")]
    if name.startswith("/") or ".." in parts:
        return None
    return "/".join(parts)


def _resolve(root: Path, rel: str, hops: int = 0) -> Path:
    """``rel`` inside ``root`` with symlinks resolved as a chroot would: never outside root."""
    current = root
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    for i, part in enumerate(parts):
        if part == "..":
            current = current.parent if current != root else root
            continue
        candidate = current / part
        if candidate.is_symlink():
            if hops > MAX_LINK_HOPS:
                raise MicropruneError(f"symlink loop in the image at {rel}")
            target = os.readlink(candidate)
            base = "" if target.startswith("/") else str(current.relative_to(root))
            rest = "/".join(parts[i + 1:])
            joined = "/".join(p for p in (base, target.lstrip("/"), rest) if p)
            return _resolve(root, _normal_inside(joined), hops + 1)
        current = candidate
    return current


def _normal_inside(rel: str) -> str:
    out: list[str] = []
    for part in rel.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out:
                out.pop()
            continue
        out.append(part)
    return "/".join(out)


def _whiteout(root: Path, parent_rel: str, name: str) -> None:
    parent = _resolve(root, parent_rel)
    if name == ".wh..opq":
        if parent.is_dir():
            for child in parent.iterdir():
                _remove(child, keep_dir=False)
        return
    _remove(parent / name, keep_dir=False)


def _remove(path: Path, keep_dir: bool) -> None:
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()
    elif path.is_dir() and not keep_dir:
        shutil.rmtree(path)


def isolation_command(root: Path, config: ImageConfig, argv: list[str], user: str | None = None) -> list[str]:
    uid, _, gid = (user or config.user).partition(":")
    uid = uid if uid.isdigit() else _uid_of(root, uid)
    gid = gid if gid.isdigit() else uid
    if int(uid) == 0 or int(gid) == 0:
        # A root process can leave a chroot (chroot into a subfolder, then climb): the
        # namespaces here are no container. Images microprune builds run as 65532.
        raise MicropruneError(f"the image runs as root (user {user or config.user or 'unset'!r}): root can leave "
                              "the unpacked root, so it is not run without an engine; pass --user UID[:GID] "
                              "(e.g. 65532), or run it in a container engine")
    if os.geteuid() == 0 and shutil.which("unshare"):
        (root / "proc").mkdir(exist_ok=True)
        return ["unshare", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc",
                f"--root={root}", f"--wd={config.workdir}", f"--setuid={uid}", f"--setgid={gid}", "--", *argv]
    if shutil.which("bwrap"):
        return ["bwrap", "--bind", str(root), "/", "--proc", "/proc", "--dev", "/dev", "--unshare-pid",
                "--die-with-parent", "--chdir", config.workdir, "--", *argv]
    raise MicropruneError("cannot isolate the run: need root with `unshare` (util-linux), or `bwrap`")


def _uid_of(root: Path, name: str) -> str:
    passwd = root / "etc" / "passwd"
    if passwd.is_file():
        for line in passwd.read_text(encoding="utf-8", errors="replace").splitlines():
            fields = line.split(":")
            if len(fields) > 3 and fields[0] == name:
                return fields[2]
    raise MicropruneError(f"image user {name!r} is not in its /etc/passwd")


def smoke_image(archive: Path, command: list[str], timeout: float) -> tuple[bool, int | None, str]:
    """Run a command inside the image (no shell there: argv, found on the image's PATH) with its
    output captured: (passed, exit code or None on timeout, output tail)."""
    with tempfile.TemporaryDirectory(prefix="microprune-smoke-") as scratch:
        root = Path(scratch) / "rootfs"
        config = unpack(archive, root)
        env = dict(item.split("=", 1) for item in config.env if "=" in item)
        proc = subprocess.Popen(isolation_command(root, config, command), env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        code: int | None
        try:
            output, _ = proc.communicate(timeout=timeout)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
            code = None
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        return code == 0, code, output.decode("utf-8", "replace")[-4000:]


def run_image(archive: Path, command: list[str], timeout: float | None, extra_env: tuple[str, ...] = (),
              user: str | None = None) -> int:
    with tempfile.TemporaryDirectory(prefix="microprune-run-") as scratch:
        root = Path(scratch) / "rootfs"
        config = unpack(archive, root)
        argv = command or [*config.entrypoint, *config.cmd]
        if not argv:
            raise MicropruneError("the image has no Entrypoint or Cmd; give a command after --")
        env = dict(item.split("=", 1) for item in [*config.env, *extra_env] if "=" in item)
        # Its own process group, killed on every way out: the image's process is PID 1 of its
        # namespace (it ignores SIGTERM) and a changed uid drops unshare's --kill-child.
        proc = subprocess.Popen(isolation_command(root, config, argv, user), env=env, start_new_session=True)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired as err:
            raise MicropruneError(f"the command did not finish within {timeout:g} s") from err
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def describe(archive: Path) -> dict[str, Any]:
    config, layers = read_image(archive)
    return {"entrypoint": config.entrypoint, "cmd": config.cmd, "user": config.user, "layers": len(layers)}

