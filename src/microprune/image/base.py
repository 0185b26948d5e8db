"""`--base PATH`: an existing image from a file, used as it is (never extracted).

Reads an OCI image layout directory, an OCI archive (a tar of that layout) or a docker-archive
(`docker save` output). Its layer blobs are copied byte for byte (their digests stay valid) and
its config is returned for merging. Anything that could reach outside when unpacked is refused
with a clear error: member names that are absolute or hold `..`, links in the archive itself,
hardlinks in a layer that point out.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from ..errors import UsageError
from .layer import LayerDigest
from .oci import OCI_LAYER_GZIP, OCI_LAYER_TAR, Blob

MAX_JSON_BYTES = 16 << 20


@dataclass
class BaseImage:
    layers: list[Blob]
    config: dict[str, Any]


# What an index, manifest or config of the wrong shape raises (a list where an object belongs, ...)
_WRONG_SHAPE = (KeyError, IndexError, TypeError, AttributeError, ValueError)


def load_base(path: Path, scratch: Path) -> BaseImage:
    scratch.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        try:
            return _from_layout(_DirReader(path), scratch, str(path))
        except _WRONG_SHAPE as err:
            raise UsageError(f"--base {path}: not a valid OCI layout ({type(err).__name__}: {err})") from err
    if not path.is_file():
        raise UsageError(f"--base {path}: no such file or directory (give auto, an OCI layout directory, "
                         "an OCI archive or a docker-archive)")
    try:
        with tarfile.open(path) as tar:
            reader = _TarReader(tar, str(path))
            if reader.has("manifest.json"):
                return _from_docker(reader, scratch, str(path))
            if reader.has("index.json"):
                return _from_layout(reader, scratch, str(path))
    except tarfile.TarError as err:
        raise UsageError(f"--base {path}: not a tar archive or OCI layout ({err})") from err
    except _WRONG_SHAPE as err:
        raise UsageError(f"--base {path}: not a valid image ({type(err).__name__}: {err})") from err
    raise UsageError(f"--base {path}: neither an OCI layout (index.json) nor a docker-archive (manifest.json)")


class _DirReader:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def has(self, name: str) -> bool:
        return (self.root / name).is_file()

    def read(self, name: str) -> bytes:
        path = self._path(name)
        if path.stat().st_size > MAX_JSON_BYTES:
            raise UsageError(f"--base: {name} is too large to be image metadata")
        return path.read_bytes()

    def copy(self, name: str, dest: Path) -> None:
        shutil.copyfile(self._path(name), dest)

    def _path(self, name: str) -> Path:
        _check_name(name, str(self.root))
        path = (self.root / name)
        if path.is_symlink() or not path.resolve().is_relative_to(self.root) or not path.is_file():
            raise UsageError(f"--base {self.root}: {name} is missing or a link")
        return path


class _TarReader:
    def __init__(self, tar: tarfile.TarFile, label: str) -> None:
        self.tar, self.label = tar, label
        self.members = {}
        for member in tar.getmembers():
            _check_name(member.name, label)
            if member.issym() or member.islnk():
                raise UsageError(f"--base {label}: the archive holds a link ({member.name} -> {member.linkname}); "
                                 "refused")
            self.members[member.name.lstrip("./")] = member

    def has(self, name: str) -> bool:
        return name in self.members

    def read(self, name: str) -> bytes:
        member = self._member(name)
        if member.size > MAX_JSON_BYTES:
            raise UsageError(f"--base {self.label}: {name} is too large to be image metadata")
        return self._open(member).read()

    def copy(self, name: str, dest: Path) -> None:
        with open(dest, "wb") as out:
            shutil.copyfileobj(self._open(self._member(name)), out)

    def _member(self, name: str) -> tarfile.TarInfo:
        member = self.members.get(name.lstrip("./"))
        if member is None or not member.isfile():
            raise UsageError(f"--base {self.label}: {name} is missing")
        return member

    def _open(self, member: tarfile.TarInfo) -> IO[bytes]:
        handle = self.tar.extractfile(member)
        assert handle is not None
        return handle


def _check_name(name: str, label: str) -> None:
    parts = PurePosixPath(name).parts
    if name.startswith("/") or ".." in parts:
        raise UsageError(f"--base {label}: member {name!r} is absolute or climbs with '..'; refused")


def _json(reader: _DirReader | _TarReader, name: str, label: str) -> Any:
    try:
        return json.loads(reader.read(name))
    except (ValueError, UnicodeDecodeError) as err:
        raise UsageError(f"--base {label}: {name} is not valid JSON ({err})") from err


def _from_docker(reader: _TarReader, scratch: Path, label: str) -> BaseImage:
    manifest = _json(reader, "manifest.json", label)
    if not isinstance(manifest, list) or not manifest or not isinstance(manifest[0], dict):
        raise UsageError(f"--base {label}: manifest.json is not a docker-archive manifest")
    entry = manifest[0]
    config = _json(reader, str(entry.get("Config", "")), label)
    names = entry.get("Layers", [])
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise UsageError(f"--base {label}: manifest.json Layers is not a list of layer names")
    layers = [_copy_layer(reader, name, scratch, label) for name in names]
    return BaseImage(layers, _checked_config(config, label))


def _from_layout(reader: _DirReader | _TarReader, scratch: Path, label: str) -> BaseImage:
    descriptor = _json(reader, "index.json", label)
    for _ in range(4):                       # an index may point at an index (multi-platform)
        manifests = descriptor.get("manifests") if isinstance(descriptor, dict) else None
        if not manifests:
            break
        chosen = next((m for m in manifests if (m.get("platform") or {}).get("architecture") in (None, "amd64")),
                      manifests[0])
        descriptor = _json(reader, _blob(chosen.get("digest", ""), label), label)
    if not isinstance(descriptor, dict) or "layers" not in descriptor:
        raise UsageError(f"--base {label}: no image manifest found in index.json")
    config = _json(reader, _blob(descriptor["config"]["digest"], label), label)
    layers = [_copy_layer(reader, _blob(layer["digest"], label), scratch, label, layer.get("mediaType"))
              for layer in descriptor["layers"]]
    return BaseImage(layers, _checked_config(config, label))


def _checked_config(config: Any, label: str) -> dict[str, Any]:
    """The image config as an object whose `config` (Env, User, ...) is an object, if present."""
    if not isinstance(config, dict) or not isinstance(config.get("config", {}), (dict, type(None))):
        raise UsageError(f"--base {label}: the image config is not an object with a `config` object")
    return config


def _blob(digest: str, label: str) -> str:
    algorithm, _, value = digest.partition(":")
    if algorithm != "sha256" or len(value) != 64 or not all(c in "0123456789abcdef" for c in value):
        raise UsageError(f"--base {label}: bad digest {digest!r}")
    return f"blobs/sha256/{value}"


def _copy_layer(reader: _DirReader | _TarReader, name: str, scratch: Path, label: str,
                media_type: str | None = None) -> Blob:
    dest = scratch / f"base-{len(list(scratch.iterdir()))}.layer"
    reader.copy(name, dest)
    digest, size = _sha256_file(dest)
    with open(dest, "rb") as handle:
        compressed = handle.read(2) == b"\x1f\x8b"
    diff_id, raw_size, files = _check_layer(dest, compressed, label, name)
    kind = media_type or (OCI_LAYER_GZIP if compressed else OCI_LAYER_TAR)
    return Blob(dest, LayerDigest(digest, size, diff_id, raw_size, files), kind, "")


def _check_layer(path: Path, compressed: bool, label: str, name: str) -> tuple[str, int, int]:
    """Refuse hostile members; returns the diff_id (sha256 of the tar), its size, its files."""
    sha = hashlib.sha256()
    size = 0
    files = 0
    with open(path, "rb") as raw:
        stream: IO[bytes] = gzip.GzipFile(fileobj=raw) if compressed else raw  # type: ignore[assignment]
        hashing = _Hashing(stream, sha)
        try:
            with tarfile.open(fileobj=hashing, mode="r|") as tar:  # type: ignore[call-overload]
                for member in tar:
                    _check_name(member.name, f"{label} ({name})")
                    if member.islnk() and (member.linkname.startswith("/") or ".." in PurePosixPath(member.linkname).parts):
                        raise UsageError(f"--base {label}: hardlink {member.name} -> {member.linkname} points out; refused")
                    if member.issym() and _climbs_out(member.name, member.linkname):
                        raise UsageError(f"--base {label}: symlink {member.name} -> {member.linkname} climbs out of "
                                         "the image's root; refused")
                    files += not member.isdir()
            while hashing.read(1 << 20):
                pass
        except (tarfile.TarError, OSError, EOFError) as err:
            raise UsageError(f"--base {label}: layer {name} is not a readable tar ({err})") from err
        size = hashing.size
    return "sha256:" + sha.hexdigest(), size, files


def _climbs_out(name: str, target: str) -> bool:
    """A relative link whose target climbs above the root (`x -> ../../../../tmp`). Absolute
    targets resolve inside the image's root, as they do in a container."""
    if target.startswith("/"):
        return False
    depth = 0
    for part in [*PurePosixPath(name).parent.parts, *PurePosixPath(target).parts]:
        if part in ("", ".", "/"):
            continue
        depth += -1 if part == ".." else 1
        if depth < 0:
            return True
    return False


class _Hashing:
    def __init__(self, stream: IO[bytes], sha: Any) -> None:
        self.stream, self.sha, self.size = stream, sha, 0

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(n)
        self.sha.update(data)
        self.size += len(data)
        return data


def _sha256_file(path: Path) -> tuple[str, int]:
    sha = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            sha.update(chunk)
            size += len(chunk)
    return "sha256:" + sha.hexdigest(), size
