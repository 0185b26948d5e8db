"""One tar that is both an OCI image layout archive and a docker-archive.

`docker load` needs Docker's manifest.json (20.10 rejects an OCI-only archive); skopeo, umoci
and podman read the OCI layout (oci-layout, index.json, blobs/sha256/...). Both point at the
same blobs. Everything is canonical JSON and a deterministic tar, so identical inputs give an
identical archive (and digest).
"""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .layer import LayerDigest, source_date_epoch

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Blob:
    """A layer blob on disk with its descriptor facts."""

    path: Path
    digest: LayerDigest
    media_type: str = OCI_LAYER_GZIP
    name: str = ""


def created_timestamp() -> str:
    import datetime

    moment = datetime.datetime.fromtimestamp(source_date_epoch(), tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def image_config(layers: list[Blob], container: dict[str, Any], base_config: dict[str, Any] | None = None,
                 base_history: list[dict[str, Any]] | None = None, architecture: str = "amd64") -> dict[str, Any]:
    created = created_timestamp()
    history = list(base_history or [])
    history.extend({"created": created, "created_by": f"microprune: {blob.name} layer", "comment": blob.name}
                   for blob in layers if blob.name)
    config = dict(base_config or {})
    config.update({k: v for k, v in container.items() if v not in (None, [], {})})
    if container.get("Entrypoint"):
        config.pop("Cmd", None)              # a base's Cmd would become our entrypoint's arguments
    if container.get("Cmd") and not container.get("Entrypoint"):
        config.pop("Entrypoint", None)
    return {
        "architecture": architecture,
        "os": "linux",
        "created": created,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [blob.digest.diff_id for blob in layers]},
        "history": history,
    }


def write_archive(dest: Path, layers: list[Blob], config: dict[str, Any], tag: str) -> dict[str, Any]:
    """Write the archive; returns the digests a report shows."""
    config_bytes = canonical_json(config)
    config_digest = sha256(config_bytes)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config_bytes)},
        "layers": [{"mediaType": blob.media_type, "digest": blob.digest.digest, "size": blob.digest.size}
                   for blob in layers],
    }
    manifest_bytes = canonical_json(manifest)
    manifest_digest = sha256(manifest_bytes)
    name, _, version = tag.rpartition(":") if ":" in tag.rsplit("/", 1)[-1] else (tag, "", "latest")
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": len(manifest_bytes),
                       "annotations": {"org.opencontainers.image.ref.name": version,
                                       "io.containerd.image.name": f"{name}:{version}"}}],
    }
    docker_manifest = [{
        "Config": _blob_name(config_digest),
        "RepoTags": [f"{name}:{version}"],
        "Layers": [_blob_name(blob.digest.digest) for blob in layers],
    }]
    members: dict[str, bytes | Path] = {
        "oci-layout": canonical_json({"imageLayoutVersion": "1.0.0"}),
        "index.json": canonical_json(index),
        "manifest.json": canonical_json(docker_manifest),
        _blob_name(config_digest): config_bytes,
        _blob_name(manifest_digest): manifest_bytes,
    }
    for blob in layers:
        members[_blob_name(blob.digest.digest)] = blob.path
    _write_tar(dest, members)
    return {"digest": manifest_digest, "config_digest": config_digest, "tag": f"{name}:{version}"}


def _blob_name(digest: str) -> str:
    algorithm, _, hexdigest = digest.partition(":")
    return f"blobs/{algorithm}/{hexdigest}"


def _write_tar(dest: Path, members: dict[str, bytes | Path]) -> None:
    mtime = source_date_epoch()
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({str(Path(name).parent) for name in members if "/" in name} | {"blobs"})
        for directory in dirs:
            info = _info(directory + "/", mtime, 0o755)
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        for name in sorted(members):
            content = members[name]
            info = _info(name, mtime, 0o644)
            if isinstance(content, Path):
                info.size = content.stat().st_size
                with open(content, "rb") as handle:
                    tar.addfile(info, handle)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))


def _info(name: str, mtime: int, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode = mtime, 0, 0, "", "", mode
    return info
