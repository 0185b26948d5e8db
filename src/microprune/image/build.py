"""`microprune image`: prune, then layer the result onto a runtime and write an OCI archive.

Layers, in the order that caches best: the runtime (changes least), the dependencies, the app.
The pruned tree is written to a scratch directory first (the same code as `prune`), so what the
image holds is exactly what `prune` would write, minus what must never ship.
"""
from __future__ import annotations

import fnmatch
import os
import stat
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..analyzer import ImageRuntime, Request
from ..errors import UsageError
from ..paths import display, normalise
from ..pipeline import prune
from ..sbom import build_sbom, render_sbom
from .base import BaseImage, load_base
from .hostfs import HostFiles
from .layer import Layer
from .oci import Blob, image_config, write_archive

IMAGE_ROOT = "/app"
APP_USER = ("app", 65532)
# Never in an app layer: secrets, VCS, caches. (.dockerignore in APP adds more.)
NEVER_SHIP_NAMES = frozenset({".git", ".hg", ".svn", ".npmrc", ".pypirc", ".netrc", ".dockerignore",
                              "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".cache",
                              "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "microprune.json"})
PRIVATE_KEY_MARK = b"PRIVATE KEY-----"
# What ELF headers do not show: libgcc_s (glibc loads it for thread cancellation), TLS trust and
# configuration.
RUNTIME_EXTRAS = ("/etc/ssl/certs/ca-certificates.crt", "/usr/lib/ssl/openssl.cnf", "/usr/lib/ssl/cert.pem",
                  "/etc/ssl/openssl.cnf")
LIBGCC = "libgcc_s.so.1"


@dataclass
class ImageOptions:
    out: Path
    base: str = "auto"
    tag: str = "microprune-app:latest"
    cmd: tuple[str, ...] = ()
    user: str | None = None
    env: tuple[str, ...] = ()
    language: str | None = None


@dataclass
class LeftOut:
    paths: list[str] = field(default_factory=list)

    def add(self, path: str, why: str) -> None:
        self.paths.append(f"{path} ({why})")


SBOM_PATH = "usr/share/microprune/sbom.cdx.json"


def build_image(request: Request, options: ImageOptions) -> tuple[Any, dict[str, Any]]:
    """Returns the analysis and the report; the image holds a CycloneDX SBOM of what it ships."""
    out = normalise(options.out)
    request = replace(request, excluded_paths=(*request.excluded_paths, out))   # an earlier archive in APP
    if out.exists() and (out.is_dir() or out.is_symlink()):
        raise UsageError(f"--out {display(out)} is a directory or a link; give a file name such as app.tar")
    with tempfile.TemporaryDirectory(prefix=".microprune-image-", dir=out.parent) as scratch_name:
        scratch = Path(scratch_name)
        analysis, written, report = prune(request, scratch / "tree", True, options.language)
        session = analysis.session
        layout = session.layout
        app_out = f"{IMAGE_ROOT}/{layout.app_dir}".rstrip("/.") if layout.app_dir != "." else IMAGE_ROOT
        deps_out = f"{IMAGE_ROOT}/{layout.deps_dir}"
        runtime = session.image_runtime(analysis.entries, analysis.trace.externals, app_out, deps_out)

        base: BaseImage | None = None
        if options.base == "auto":
            runtime_layer, runtime_notes = _runtime_layer(runtime.files, written.deps_out, scratch / "stripped")
            for image_path, content in runtime.generated:
                runtime_layer.add_file(image_path, data=content)
        else:
            base = load_base(normalise(Path(options.base)), scratch / "base")
            runtime_notes = {"base": display(normalise(Path(options.base))), "base_layers": len(base.layers)}
        deps_layer = Layer("deps")
        _add_tree(deps_layer, written.deps_out, deps_out, LeftOut(), never_ship=False)
        app_layer = Layer("app")
        left_out = LeftOut()
        ignore = _dockerignore(normalise(request.app_dir))
        skip = {written.deps_out} if _inside(written.deps_out, written.app_out) else set()
        _add_tree(app_layer, written.app_out, app_out, left_out, never_ship=True, ignore=ignore, skip=skip)
        _note_pruned_app_files(analysis, left_out, {out, scratch})
        bom = build_sbom(analysis.plan, list(session.packages()), request.app_dir.name, session.language)
        app_layer.add_file(SBOM_PATH, data=render_sbom(bom).encode("utf-8"))

        ours = [runtime_layer, deps_layer, app_layer] if base is None else [deps_layer, app_layer]
        blobs = []
        for layer in ours:
            path = scratch / f"{layer.name}.tar.gz"
            blobs.append(Blob(path, layer.write(path), name=layer.name))
        container = _container_config(runtime, options, session.language, base)
        base_config = (base.config.get("config") or {}) if base else None
        config = image_config(blobs, container, base_config, base.config.get("history") if base else None)
        if base is not None:
            config["rootfs"]["diff_ids"] = [b.digest.diff_id for b in base.layers] + config["rootfs"]["diff_ids"]
            blobs = base.layers + blobs
        partial = scratch / "image.tar"
        written_image = write_archive(partial, blobs, config, options.tag)
        os.replace(partial, out)
    layers: list[dict[str, Any]] = [
        {"name": b.name or "base", "digest": b.digest.digest, "size": b.digest.size, "diff_id": b.digest.diff_id,
         "uncompressed_size": b.digest.uncompressed_size, "files": b.digest.files} for b in blobs]
    report.update({
        "command": "image",
        "image": {
            "path": display(out), "tag": written_image["tag"], "digest": written_image["digest"],
            "config_digest": written_image["config_digest"], "layers": layers,
            "size": sum(layer["size"] for layer in layers),
            "uncompressed_size": sum(layer["uncompressed_size"] for layer in layers),
            "entrypoint": config["config"].get("Entrypoint"), "cmd": config["config"].get("Cmd"),
            "user": config["config"].get("User"),
            "workdir": runtime.workdir, "left_out": sorted(left_out.paths), "sbom": "/" + SBOM_PATH,
            **runtime_notes,
        },
    })
    report.pop("app_out", None)
    report.pop("deps_out", None)
    shipped_out = {entry.split(" (")[0].rstrip("/") for entry in left_out.paths}
    for row in report.get("files", []):
        if row["root"] == "app" and row["keep"] and any(row["path"] == p or row["path"].startswith(p + "/")
                                                         for p in shipped_out):
            row["keep"], row["reasons"] = False, ["never-shipped"]
    return analysis, report


def _note_pruned_app_files(analysis: Any, left_out: LeftOut, ours: set[Path]) -> None:
    """What the prune itself left out of the app (VCS, caches, lockfiles, .npmrc) is listed too."""
    inventory = analysis.session.inventory
    app_root = inventory.roots["app"]
    for path, why in sorted(inventory.excluded.items()):
        if app_root in path.parents and not any(p == path or p in path.parents or path in p.parents for p in ours):
            left_out.add(path.relative_to(app_root).as_posix() + ("/" if path.is_dir() else ""), why)
    for decision in analysis.plan.decisions:
        if decision.root == "app" and not decision.keep:
            left_out.add(decision.path.relative_to(app_root).as_posix(), ", ".join(decision.reasons))


def _container_config(runtime: ImageRuntime, options: ImageOptions, language: str,
                      base: BaseImage | None) -> dict[str, Any]:
    """Entrypoint/Cmd from the app unless given; on a base image from a file the interpreter is
    found on the base's PATH (its own, kept) and its User stays unless --user says otherwise."""
    env = list(runtime.env)
    command = list(runtime.command)
    user = options.user or f"{APP_USER[1]}:{APP_USER[1]}"
    if base is not None:
        env = [(k, v) for k, v in env if k != "PATH"]
        command[0] = os.path.basename(command[0])
        base_user = (base.config.get("config") or {}).get("User")
        user = options.user or base_user or user
        base_env = [e for e in (base.config.get("config") or {}).get("Env") or [] if isinstance(e, str)]
        ours = {k for k, _ in env} | {e.split("=", 1)[0] for e in options.env}
        inherited = [(e.split("=", 1)[0], e.split("=", 1)[1]) for e in base_env if "=" in e]
        env = [(k, v) for k, v in inherited if k not in ours] + env
    return {
        "Env": [f"{k}={v}" for k, v in env] + list(options.env),
        "Entrypoint": command if not options.cmd else None,
        "Cmd": list(options.cmd) or None,
        "User": user,
        "WorkingDir": runtime.workdir,
        "Labels": {"org.opencontainers.image.title": options.tag.rsplit(":", 1)[0],
                   "dev.microprune.language": language, "dev.microprune.sbom": "/" + SBOM_PATH},
    }


def _runtime_layer(files: tuple[str, ...], deps_tree: Path, scratch: Path) -> tuple[Layer, dict[str, Any]]:
    layer = Layer("runtime")
    host = HostFiles(layer, scratch)
    native = [str(p) for p in _elf_files(deps_tree)]
    host.add_with_libraries([*files, *native], inside=[deps_tree])
    libgcc = next((os.path.join(d, LIBGCC) for d in _lib_dirs() if os.path.exists(os.path.join(d, LIBGCC))), None)
    host.add_with_libraries([libgcc] if libgcc else [])
    for extra in RUNTIME_EXTRAS:
        if os.path.lexists(extra):
            host.add(extra)
    saved = host.strip_copies()
    _add_system_files(layer)
    return layer, {"runtime_stripped_bytes": saved, "runtime_missing": sorted(set(host.missing))}


def _lib_dirs() -> tuple[str, ...]:
    from .hostfs import SYSTEM_LIB_DIRS

    return SYSTEM_LIB_DIRS


def _elf_files(tree: Path) -> list[Path]:
    found = []
    for directory, _dirs, names in os.walk(tree):
        for name in names:
            path = Path(directory, name)
            if path.is_symlink() or not (name.endswith(".node") or ".so" in name):
                continue
            try:
                with open(path, "rb") as handle:
                    if handle.read(4) == b"\x7fELF":
                        found.append(path)
            except OSError:
                continue
    return sorted(found)


def _add_system_files(layer: Layer) -> None:
    name, uid = APP_USER
    layer.add_file("/etc/passwd", data=(f"root:x:0:0:root:/root:/sbin/nologin\n"
                                        f"{name}:x:{uid}:{uid}:{name}:/home/{name}:/sbin/nologin\n").encode())
    layer.add_file("/etc/group", data=f"root:x:0:\n{name}:x:{uid}:\n".encode())
    layer.add_file("/etc/nsswitch.conf", data=b"passwd: files\ngroup: files\nhosts: files dns\n")
    layer.add_dir("/tmp", 0o1777)
    layer.add_dir(f"/home/{name}", 0o755)


def _add_tree(layer: Layer, top: Path, image_dir: str, left_out: LeftOut, never_ship: bool,
              ignore: list[tuple[bool, str]] | None = None, skip: set[Path] | None = None) -> None:
    layer.add_dir(image_dir)
    inodes: dict[tuple[int, int], list[str]] = {}
    for directory, dirs, names in os.walk(top):
        here = Path(directory)
        rel_dir = here.relative_to(top).as_posix()
        keep_dirs = []
        for name in sorted(dirs):
            path = here / name
            rel = f"{rel_dir}/{name}".lstrip("./") if rel_dir != "." else name
            if path in (skip or set()):
                continue
            why = _never_ship(name, rel, path, ignore) if never_ship else None
            if why:
                left_out.add(rel + "/", why)
                continue
            if path.is_symlink():
                layer.add_symlink(f"{image_dir}/{rel}", os.readlink(path))
                continue
            layer.add_dir(f"{image_dir}/{rel}")
            keep_dirs.append(name)
        dirs[:] = keep_dirs
        for name in sorted(names):
            path = here / name
            rel = f"{rel_dir}/{name}" if rel_dir != "." else name
            why = _never_ship(name, rel, path, ignore) if never_ship else None
            if why:
                left_out.add(rel, why)
                continue
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                layer.add_symlink(f"{image_dir}/{rel}", os.readlink(path))
            elif stat.S_ISREG(st.st_mode):
                layer.add_file(f"{image_dir}/{rel}", path, executable=bool(st.st_mode & 0o111))
                if st.st_nlink > 1:
                    inodes.setdefault((st.st_dev, st.st_ino), []).append(f"{image_dir}/{rel}")
    _link_shared_inodes(layer, inodes)


def _link_shared_inodes(layer: Layer, inodes: dict[tuple[int, int], list[str]]) -> None:
    """Files that are one inode in the tree are one file and hardlinks in the layer. The link
    target is the first of them in the layer's (sorted) order, so it precedes its links."""
    for paths in inodes.values():
        if len(paths) > 1:
            first = min(paths)
            for other in paths:
                if other != first:
                    layer.add_hardlink(other, first)


def _never_ship(name: str, rel: str, path: Path, ignore: list[tuple[bool, str]] | None) -> str | None:
    if name in NEVER_SHIP_NAMES:
        return "never shipped"
    if name == ".env" or name.startswith(".env."):
        return "environment file (secrets)"
    if ignore and _ignored(rel, ignore):
        return ".dockerignore"
    if path.is_file() and not path.is_symlink() and path.stat().st_size < (1 << 20):
        with open(path, "rb") as handle:
            head = handle.read(8192)
        if b"-----BEGIN" in head and PRIVATE_KEY_MARK in head:
            return "private key"
    return None


def _dockerignore(app_dir: Path) -> list[tuple[bool, str]]:
    """(negated, pattern) rules of APP/.dockerignore, in order (the last match wins)."""
    path = app_dir / ".dockerignore"
    if not path.is_file() or path.is_symlink():
        return []
    rules = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line[1:] if negated else line
        rules.append((negated, pattern.strip("/").removeprefix("./")))
    return rules


def _ignored(rel: str, rules: list[tuple[bool, str]]) -> bool:
    ignored = False
    for negated, pattern in rules:
        regex = pattern.replace("**/", "*").replace("/**", "/*")
        if fnmatch.fnmatchcase(rel, regex) or fnmatch.fnmatchcase(rel, regex + "/*") \
                or any(fnmatch.fnmatchcase("/".join(rel.split("/")[:i]), regex) for i in range(1, rel.count("/") + 1)):
            ignored = not negated
    return ignored


def _inside(path: Path, top: Path) -> bool:
    return path != top and top in path.parents
