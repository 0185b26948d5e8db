"""A pure-Python (stdlib only) validator of an image archive written by `microprune image`.

The archive is one tar that is both an OCI image layout (oci-layout, index.json,
blobs/sha256/...) and a docker-archive (Docker's manifest.json). `validate` walks
index.json -> manifest -> config -> layers and checks, collecting every problem:

- every blob's sha256 matches its file name and the descriptor's digest, and its size the
  descriptor's size;
- the config's rootfs.diff_ids are the sha256 of each decompressed layer, in order;
- media types (index, manifest, config, layers; gzip magic matches the layer's type);
- Docker's manifest.json names the same config and layers, and the index's tag;
- canonical JSON (sorted keys, no spaces), so the bytes are reproducible;
- the outer tar and every layer: no absolute or '..' member names (nor hardlink targets),
  entries sorted and unique, uid/gid 0 with empty owner names, mtime = SOURCE_DATE_EPOCH
  (or 0), normalised modes, gzip header without a file name or a time.

Usage: ``report = validate(path)`` (raises InvalidImage listing the problems), or
``problems(path)`` for the list. Also runnable: ``python ocivalidate.py IMAGE.tar``.
"""
from __future__ import annotations

import datetime
import gzip
import hashlib
import itertools
import json
import os
import re
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

OCI_LAYOUT = "oci-layout"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
LAYER_TYPES = (OCI_LAYER_GZIP, OCI_LAYER_TAR)
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
FILE_MODES = (0o644, 0o755)
DIR_MODES = (0o755, 0o1777)
CHUNK = 1 << 20


class InvalidImage(AssertionError):
    def __init__(self, path: Path, problems: list[str]) -> None:
        self.problems = problems
        listed = "\n  ".join(problems[:60]) + (f"\n  ... and {len(problems) - 60} more" if len(problems) > 60 else "")
        super().__init__(f"{path}: {len(problems)} problem(s):\n  {listed}")


@dataclass
class Member:
    name: str            # as in the tar ("app/server.js", directories end with "/")
    kind: str            # file | dir | symlink | hardlink | other
    mode: int
    size: int
    linkname: str = ""


@dataclass
class LayerReport:
    digest: str
    media_type: str
    size: int                     # compressed (the blob)
    diff_id: str
    uncompressed_size: int
    members: list[Member] = field(default_factory=list)

    def names(self) -> set[str]:
        """Member paths without a trailing '/' ("app/server.js", "usr/bin")."""
        return {m.name.rstrip("/") for m in self.members}

    def member(self, name: str) -> Member | None:
        return next((m for m in self.members if m.name.rstrip("/") == name.strip("/")), None)


@dataclass
class ImageReport:
    path: Path
    manifest_digest: str
    config_digest: str
    config: dict[str, Any]
    manifest: dict[str, Any]
    index: dict[str, Any]
    docker_manifest: list[dict[str, Any]]
    layers: list[LayerReport]
    outer_members: list[str]

    @property
    def size(self) -> int:
        return sum(layer.size for layer in self.layers)

    @property
    def uncompressed_size(self) -> int:
        return sum(layer.uncompressed_size for layer in self.layers)

    def all_names(self) -> set[str]:
        return set().union(*(layer.names() for layer in self.layers)) if self.layers else set()


def expected_epoch() -> int:
    value = os.environ.get("SOURCE_DATE_EPOCH", "")
    return int(value) if value.isdigit() else 0


def validate(path: Path | str, epoch: int | None = None) -> ImageReport:
    """Validate the archive; return what was read, or raise InvalidImage with every problem."""
    found, report = _validate(Path(path), expected_epoch() if epoch is None else epoch)
    if found or report is None:
        raise InvalidImage(Path(path), found or ["nothing could be read"])
    return report


def problems(path: Path | str, epoch: int | None = None) -> list[str]:
    return _validate(Path(path), expected_epoch() if epoch is None else epoch)[0]


# -- the walk -------------------------------------------------------------------------------------

def _validate(path: Path, epoch: int) -> tuple[list[str], ImageReport | None]:
    bad: list[str] = []
    try:
        outer = tarfile.open(path, "r:")  # noqa: SIM115 - closed by the `with` below; plain tar, as docker load expects
    except (tarfile.TarError, OSError) as err:
        return [f"not a plain tar archive: {err}"], None
    with outer:
        members = outer.getmembers()
        by_name: dict[str, tarfile.TarInfo] = {}
        for info in members:
            _check_tar_header(info, epoch, "archive", bad)
            if info.name.rstrip("/") in by_name:
                bad.append(f"archive: duplicate member {info.name!r}")
            by_name[info.name.rstrip("/")] = info
            if not (info.isfile() or info.isdir()):
                bad.append(f"archive: member {info.name!r} is neither a file nor a directory")
            elif info.isfile() and info.mode & 0o7777 != 0o644:
                bad.append(f"archive: file {info.name!r} has mode {info.mode & 0o7777:o}, expected 644")
        _check_sorted([m.name for m in members], "archive", bad)

        def read(name: str, what: str) -> bytes | None:
            info = by_name.get(name)
            if info is None or not info.isfile():
                bad.append(f"{what}: no member {name!r}")
                return None
            handle = outer.extractfile(info)
            return handle.read() if handle else None

        def load_json(name: str, what: str) -> Any:
            data = read(name, what)
            if data is None:
                return None
            try:
                value = json.loads(data)
            except ValueError as err:
                bad.append(f"{what} ({name}): not JSON: {err}")
                return None
            if data != _canonical(value):
                bad.append(f"{what} ({name}): not canonical JSON (sorted keys, no spaces, UTF-8)")
            return value

        layout = load_json(OCI_LAYOUT, "oci-layout")
        if layout is not None and layout != {"imageLayoutVersion": "1.0.0"}:
            bad.append(f"oci-layout: {layout!r}, expected imageLayoutVersion 1.0.0")

        index = load_json("index.json", "index.json")
        if not isinstance(index, dict):
            bad.append("index.json: not an object")
            return bad, None
        _expect(index.get("schemaVersion") == 2, "index.json: schemaVersion is not 2", bad)
        _expect(index.get("mediaType") == OCI_INDEX, f"index.json: mediaType {index.get('mediaType')!r}", bad)
        descriptors = index.get("manifests") or []
        if len(descriptors) != 1:
            bad.append(f"index.json: {len(descriptors)} manifests, expected exactly 1")
            if not descriptors:
                return bad, None
        descriptor = descriptors[0]
        _expect(descriptor.get("mediaType") == OCI_MANIFEST,
                f"index.json: manifest descriptor mediaType {descriptor.get('mediaType')!r}", bad)
        referenced = {"oci-layout", "index.json", "manifest.json"}

        manifest_digest = descriptor.get("digest", "")
        manifest_bytes = _blob(outer, by_name, descriptor, "manifest", bad, referenced)
        if manifest_bytes is None:
            return bad, None
        manifest = json.loads(manifest_bytes)
        if manifest_bytes != _canonical(manifest):
            bad.append("manifest: not canonical JSON")
        _expect(manifest.get("schemaVersion") == 2, "manifest: schemaVersion is not 2", bad)
        _expect(manifest.get("mediaType") == OCI_MANIFEST, f"manifest: mediaType {manifest.get('mediaType')!r}", bad)
        config_descriptor = manifest.get("config") or {}
        _expect(config_descriptor.get("mediaType") == OCI_CONFIG,
                f"manifest: config mediaType {config_descriptor.get('mediaType')!r}", bad)
        config_bytes = _blob(outer, by_name, config_descriptor, "config", bad, referenced)
        if config_bytes is None:
            return bad, None
        config = json.loads(config_bytes)
        if config_bytes != _canonical(config):
            bad.append("config: not canonical JSON")
        _check_config(config, epoch, bad)

        layers: list[LayerReport] = []
        diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
        layer_descriptors = manifest.get("layers") or []
        if len(diff_ids) != len(layer_descriptors):
            bad.append(f"config: {len(diff_ids)} diff_ids for {len(layer_descriptors)} layers")
        for number, layer_descriptor in enumerate(layer_descriptors):
            what = f"layer {number}"
            media_type = layer_descriptor.get("mediaType", "")
            _expect(media_type in LAYER_TYPES, f"{what}: mediaType {media_type!r}", bad)
            name = _blob_member(layer_descriptor.get("digest", ""), what, bad)
            if name is None:
                continue
            referenced.add(name)
            blob_info = by_name.get(name)
            if blob_info is None or not blob_info.isfile():
                bad.append(f"{what}: blob {name} missing")
                continue
            layer = _check_layer(outer, blob_info, layer_descriptor, media_type, epoch, what, bad)
            expected_diff_id = diff_ids[number] if number < len(diff_ids) else None
            if expected_diff_id != layer.diff_id:
                bad.append(f"{what}: config diff_id {expected_diff_id} but the decompressed layer is {layer.diff_id}")
            layers.append(layer)

        docker_manifest = load_json("manifest.json", "manifest.json")
        _check_docker_manifest(docker_manifest, config_descriptor, layer_descriptors, descriptor, bad)

        for name, info in by_name.items():
            if info.isfile() and name not in referenced:
                bad.append(f"archive: member {name!r} is not referenced by index.json or its manifest")

    report = ImageReport(path, manifest_digest, config_descriptor.get("digest", ""), config, manifest, index,
                         docker_manifest if isinstance(docker_manifest, list) else [], layers,
                         [m.name for m in members])
    return bad, report


def _blob(outer: tarfile.TarFile, by_name: dict[str, tarfile.TarInfo], descriptor: dict[str, Any], what: str,
          bad: list[str], referenced: set[str]) -> bytes | None:
    """The bytes of a (small, JSON) blob, checked against its descriptor."""
    name = _blob_member(descriptor.get("digest", ""), what, bad)
    if name is None:
        return None
    referenced.add(name)
    info = by_name.get(name)
    if info is None or not info.isfile():
        bad.append(f"{what}: blob {name} missing")
        return None
    handle = outer.extractfile(info)
    data = handle.read() if handle else b""
    actual = "sha256:" + hashlib.sha256(data).hexdigest()
    _expect(actual == descriptor.get("digest"), f"{what}: blob {name} has sha256 {actual}", bad)
    _expect(len(data) == descriptor.get("size"), f"{what}: size {len(data)}, descriptor says {descriptor.get('size')}",
            bad)
    try:
        json.loads(data)
    except ValueError as err:
        bad.append(f"{what}: not JSON: {err}")
        return None
    return data


def _blob_member(digest: str, what: str, bad: list[str]) -> str | None:
    if not isinstance(digest, str) or not DIGEST.match(digest):
        bad.append(f"{what}: bad digest {digest!r}")
        return None
    return "blobs/sha256/" + digest.split(":", 1)[1]


def _check_config(config: dict[str, Any], epoch: int, bad: list[str]) -> None:
    _expect(config.get("os") == "linux", f"config: os {config.get('os')!r}", bad)
    _expect(isinstance(config.get("architecture"), str) and bool(config.get("architecture")),
            "config: no architecture", bad)
    rootfs = config.get("rootfs") or {}
    _expect(rootfs.get("type") == "layers", f"config: rootfs.type {rootfs.get('type')!r}", bad)
    for diff_id in rootfs.get("diff_ids") or []:
        _expect(isinstance(diff_id, str) and bool(DIGEST.match(diff_id)), f"config: bad diff_id {diff_id!r}", bad)
    created = _timestamp(epoch)
    _expect(config.get("created") == created, f"config: created {config.get('created')!r}, expected {created}", bad)
    history = config.get("history") or []
    non_empty = [h for h in history if not h.get("empty_layer")]
    _expect(len(non_empty) == len(rootfs.get("diff_ids") or []),
            f"config: {len(non_empty)} history entries with a layer for {len(rootfs.get('diff_ids') or [])} layers", bad)
    for entry in history:
        _expect(entry.get("created") == created, f"config: history created {entry.get('created')!r}", bad)
    inner = config.get("config") or {}
    _expect(bool(inner.get("Entrypoint") or inner.get("Cmd")), "config: neither Entrypoint nor Cmd", bad)
    for item in inner.get("Env") or []:
        _expect("=" in item, f"config: Env item {item!r} is not K=V", bad)


def _check_docker_manifest(docker_manifest: Any, config_descriptor: dict[str, Any],
                           layer_descriptors: list[dict[str, Any]], index_descriptor: dict[str, Any],
                           bad: list[str]) -> None:
    if not isinstance(docker_manifest, list) or len(docker_manifest) != 1 or not isinstance(docker_manifest[0], dict):
        bad.append("manifest.json: expected a list of exactly one object")
        return
    entry = docker_manifest[0]
    expected_config = "blobs/sha256/" + str(config_descriptor.get("digest", "")).partition(":")[2]
    _expect(entry.get("Config") == expected_config,
            f"manifest.json: Config {entry.get('Config')!r}, the OCI manifest's is {expected_config!r}", bad)
    expected_layers = ["blobs/sha256/" + str(d.get("digest", "")).partition(":")[2] for d in layer_descriptors]
    _expect(entry.get("Layers") == expected_layers,
            f"manifest.json: Layers {entry.get('Layers')!r}, the OCI manifest's are {expected_layers!r}", bad)
    tags = entry.get("RepoTags") or []
    _expect(len(tags) == 1, f"manifest.json: RepoTags {tags!r}", bad)
    annotations = index_descriptor.get("annotations") or {}
    ref_name = annotations.get("org.opencontainers.image.ref.name")
    full_name = annotations.get("io.containerd.image.name")
    if tags:
        _expect(full_name == tags[0], f"index.json: io.containerd.image.name {full_name!r} but RepoTags {tags!r}", bad)
        _expect(ref_name == tags[0].rsplit(":", 1)[-1],
                f"index.json: org.opencontainers.image.ref.name {ref_name!r} but RepoTags {tags!r}", bad)


class _Hashing:
    """Reads through a stream, hashing and counting what passes."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream, self.sha, self.size = stream, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(n)
        self.sha.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


def _check_layer(outer: tarfile.TarFile, info: tarfile.TarInfo, descriptor: dict[str, Any], media_type: str,
                 epoch: int, what: str, bad: list[str]) -> LayerReport:
    handle = outer.extractfile(info)
    assert handle is not None
    head = handle.read(10)
    handle.seek(0)
    gzipped = head[:2] == b"\x1f\x8b"
    if media_type == OCI_LAYER_GZIP and not gzipped:
        bad.append(f"{what}: mediaType says gzip but the blob is not gzip")
    if media_type == OCI_LAYER_TAR and gzipped:
        bad.append(f"{what}: mediaType says an uncompressed tar but the blob is gzip")
    if gzipped:
        flags, mtime = head[3], int.from_bytes(head[4:8], "little")
        _expect(flags & 0x08 == 0, f"{what}: the gzip header carries a file name", bad)
        _expect(mtime == 0, f"{what}: the gzip header carries a time ({mtime})", bad)
    raw = _Hashing(handle)
    plain = _Hashing(gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw)   # type: ignore[call-overload,arg-type]
    members: list[Member] = []
    try:
        with tarfile.open(fileobj=plain, mode="r|") as layer:     # type: ignore[call-overload]
            for member in layer:
                members.append(_check_layer_member(member, epoch, what, bad))
                if member.isfile():
                    stream = layer.extractfile(member)
                    if stream is not None:
                        while stream.read(CHUNK):
                            pass
        plain.drain()            # the zero blocks after the last member belong to the diff_id too
        raw.drain()
    except (tarfile.TarError, OSError, EOFError) as err:
        bad.append(f"{what}: unreadable: {err}")
    digest = "sha256:" + raw.sha.hexdigest()
    name_digest = "sha256:" + info.name.rsplit("/", 1)[-1]
    _expect(digest == name_digest, f"{what}: blob {info.name} has sha256 {digest}", bad)
    _expect(digest == descriptor.get("digest"), f"{what}: descriptor digest {descriptor.get('digest')}, blob {digest}",
            bad)
    _expect(raw.size == descriptor.get("size") == info.size,
            f"{what}: size {raw.size} (tar member {info.size}), descriptor says {descriptor.get('size')}", bad)
    _check_sorted([m.name for m in members], what, bad)
    seen: set[str] = set()
    for member_ in members:
        key = member_.name.rstrip("/")
        if key in seen:
            bad.append(f"{what}: duplicate member {member_.name!r}")
        seen.add(key)
        parent = str(PurePosixPath(key).parent)
        if parent != "." and parent not in seen:
            bad.append(f"{what}: {member_.name!r} comes before (or without) its directory {parent!r}")
        if member_.kind == "hardlink" and member_.linkname.rstrip("/") not in seen:
            bad.append(f"{what}: hardlink {member_.name!r} -> {member_.linkname!r} before its target")
    return LayerReport(digest, media_type, raw.size, "sha256:" + plain.sha.hexdigest(), plain.size, members)


def _check_layer_member(member: tarfile.TarInfo, epoch: int, what: str, bad: list[str]) -> Member:
    _check_tar_header(member, epoch, what, bad)
    mode = member.mode & 0o7777
    if member.isdir():
        kind = "dir"
        _expect(mode in DIR_MODES, f"{what}: directory {member.name!r} has mode {mode:o}", bad)
    elif member.issym():
        kind = "symlink"
        _expect(bool(member.linkname), f"{what}: symlink {member.name!r} without a target", bad)
    elif member.islnk():
        kind = "hardlink"
        if not _safe(member.linkname):
            bad.append(f"{what}: hardlink {member.name!r} -> {member.linkname!r}: absolute or with '..'")
    elif member.isfile():
        kind = "file"
        _expect(mode in FILE_MODES, f"{what}: file {member.name!r} has mode {mode:o}", bad)
    else:
        kind = "other"
        bad.append(f"{what}: {member.name!r} is a device, FIFO or other special member")
    return Member(member.name + ("/" if member.isdir() and not member.name.endswith("/") else ""), kind, mode,
                  member.size, member.linkname)


def _check_tar_header(info: tarfile.TarInfo, epoch: int, what: str, bad: list[str]) -> None:
    if not _safe(info.name):
        bad.append(f"{what}: member name {info.name!r} is absolute or has '..'")
    _expect(info.uid == 0 and info.gid == 0, f"{what}: {info.name!r} owned by {info.uid}:{info.gid}", bad)
    _expect(info.uname == "" and info.gname == "",
            f"{what}: {info.name!r} has owner names {info.uname!r}:{info.gname!r}", bad)
    _expect(int(info.mtime) == epoch, f"{what}: {info.name!r} has mtime {info.mtime}, expected {epoch}", bad)


def _safe(name: str) -> bool:
    return bool(name) and not name.startswith("/") and ".." not in PurePosixPath(name).parts


def _check_sorted(names: list[str], what: str, bad: list[str]) -> None:
    keys = [n.rstrip("/") for n in names]
    for earlier, later in itertools.pairwise(keys):
        if earlier >= later:
            bad.append(f"{what}: entries not sorted: {earlier!r} before {later!r}")
            return


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _timestamp(epoch: int) -> str:
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _expect(condition: bool, message: str, bad: list[str]) -> None:
    if not condition:
        bad.append(message)


def main(argv: list[str]) -> int:
    status = 0
    for name in argv:
        found = problems(name)
        print(f"{name}: {'ok' if not found else f'{len(found)} problem(s)'}")
        for problem in found:
            print(f"  {problem}")
        status |= bool(found)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
