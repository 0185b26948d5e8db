"""Where the deps are and which Python they are for; never the running interpreter's sys.path.

``--deps`` may be a ``pip install --target`` directory, a site-packages
directory, or a virtualenv. The target Python version is read from the deps
themselves (``pyvenv.cfg``, ``lib/pythonX.Y``, extension-module names, wheel
tags) so that a host running 3.11 prunes a 3.12 image correctly.
"""
from __future__ import annotations

import os
import re
import sys
import sysconfig
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from microprune.errors import UsageError
from microprune.inventory import Inventory
from microprune.model import Diagnostic
from microprune.paths import display, normalise, read_regular_file

VENV_DIR_NAMES = (".venv", "venv")
_CPYTHON_SO = re.compile(r"\.cpython-(\d)(\d+)(?:-([A-Za-z0-9_]+(?:-[A-Za-z0-9_]+)*))?\.so$")
# `cp311-cp311-manylinux...`: built for exactly 3.11. `cp310-abi3-...` only says "3.10 or later",
# so it is no clue to the version (protobuf's and wcwidth's wheels are abi3).
_WHEEL_TAG = re.compile(r"^Tag:\s*cp(\d)(\d+)-cp\d+[a-z]*-", re.M)
# pip compiles what it installs: __pycache__/x.cpython-311.pyc
_CPYTHON_PYC = re.compile(r"\.cpython-(\d)(\d+)(?:\.opt-\d)?\.pyc$")
_VERSION = re.compile(r"^(\d+)\.(\d+)")


@dataclass(frozen=True)
class Target:
    version: tuple[int, int]
    multiarch: str

    def extension_suffixes(self) -> tuple[str, ...]:
        # The order FileFinder tries them in (importlib.machinery.EXTENSION_SUFFIXES).
        tag = f"{self.version[0]}{self.version[1]}"
        specific = f".cpython-{tag}-{self.multiarch}.so" if self.multiarch else f".cpython-{tag}.so"
        return (specific, ".abi3.so", ".so")


def find_deps(app_dir: Path, deps: Path | None) -> tuple[Path | None, Path | None]:
    """Return (what the deps input is, the venv to leave out of the app copy)."""
    if deps is not None:
        deps = normalise(deps)
        if not deps.is_dir():
            raise UsageError(f"--deps {display(deps)} is not a directory")
        return deps, deps if _is_within(deps, app_dir) else None
    for name in VENV_DIR_NAMES:
        candidate = app_dir / name
        if (candidate / "pyvenv.cfg").is_file() or (candidate / "lib").is_dir():
            if candidate.is_symlink() or not _is_within(Path(os.path.realpath(candidate)), Path(os.path.realpath(app_dir))):
                # found through the app, but not in it: never followed out of the tree we read
                raise UsageError(f"{display(candidate)} is a link out of {display(app_dir)}; pass --deps with the "
                                 "virtualenv's own path to use it")
            return candidate, candidate
    return None, None


def site_packages_of(deps: Path) -> Path:
    """A virtualenv or prefix -> its site-packages; anything else is taken as is."""
    lib_dirs = [p for pattern in ("lib/python3*/site-packages", "lib64/python3*/site-packages",
                                  "Lib/site-packages") for p in sorted(deps.glob(pattern)) if p.is_dir()]
    is_env = (deps / "pyvenv.cfg").is_file() or bool(lib_dirs)
    if not is_env:
        return deps
    unique = sorted({p.resolve() for p in lib_dirs})
    if not unique:
        raise UsageError(f"{display(deps)} looks like a virtualenv but has no lib/python3.*/site-packages")
    if len(unique) > 1:
        raise UsageError(f"{display(deps)} has several site-packages ({', '.join(display(p) for p in unique)}); "
                         "pass the one to prune with --deps")
    # Keep the path as the user's tree spells it (lib64 is often a symlink to lib).
    return normalise(lib_dirs[0]) if lib_dirs[0].resolve() == unique[0] else unique[0]


def detect_target(inventory: Inventory, deps_input: Path | None, site: Path | None, requested: str | None,
                  diagnostics: list[Diagnostic]) -> tuple[tuple[int, int], str, str]:
    """Read the target version from the deps, through the inventory (never following links out)."""
    versions, arches = _so_tags(inventory, site)
    multiarch = arches.most_common(1)[0][0] if arches else (sysconfig.get_config_var("MULTIARCH") or "")
    if requested:
        return _parse_version(requested), "--python-version", multiarch
    clues: tuple[tuple[str, Callable[[], tuple[int, int] | None]], ...] = (
        ("pyvenv.cfg", lambda: _pyvenv_version(deps_input)),
        ("site-packages path", lambda: _path_version(site)),
        ("extension module names", lambda: versions.most_common(1)[0][0] if versions else None),
        ("bytecode caches", lambda: _pyc_version(inventory)),
        ("wheel tags", lambda: _wheel_tag_version(inventory, site)),
    )
    for source, clue in clues:
        version = clue()
        if version:
            return version, source, multiarch
    host = (sys.version_info[0], sys.version_info[1])
    if site is not None:
        diagnostics.append(Diagnostic(
            "target-python", f"cannot tell the deps' Python version; assuming the host's {host[0]}.{host[1]} "
            "(pass --python-version to be sure)"))
    return host, "host interpreter", multiarch


def _parse_version(text: str) -> tuple[int, int]:
    match = _VERSION.match(text.strip())
    if not match or match.group(1) != "3":
        raise UsageError(f"python version {text!r} (from --python-version or [tool.microprune]) "
                         "is not a Python 3 version like 3.11")
    return int(match.group(1)), int(match.group(2))


def _pyvenv_version(deps: Path | None) -> tuple[int, int] | None:
    # pyvenv.cfg sits at the venv root, outside the walked site-packages.
    raw = read_regular_file(deps / "pyvenv.cfg") if deps else None
    text = raw.decode("utf-8", "replace") if raw else None
    for line in (text or "").splitlines():
        key, _, value = line.partition("=")
        if key.strip() in ("version_info", "version"):
            match = _VERSION.match(value.strip())
            if match:
                return int(match.group(1)), int(match.group(2))
    return None


def _path_version(site: Path | None) -> tuple[int, int] | None:
    if site is None:
        return None
    match = re.search(r"python(\d)\.(\d+)", site.as_posix())
    return (int(match.group(1)), int(match.group(2))) if match else None


def _so_tags(inventory: Inventory, site: Path | None) -> tuple[Counter[tuple[int, int]], Counter[str]]:
    versions: Counter[tuple[int, int]] = Counter()
    arches: Counter[str] = Counter()
    if site is None:
        return versions, arches
    for path, info in inventory.files.items():
        if info.root != "deps" or not path.name.endswith(".so"):
            continue
        match = _CPYTHON_SO.search(path.name)
        if match:
            versions[(int(match.group(1)), int(match.group(2)))] += 1
            if match.group(3):
                arches[match.group(3)] += 1
    return versions, arches


def _pyc_version(inventory: Inventory) -> tuple[int, int] | None:
    counts: Counter[tuple[int, int]] = Counter()
    for path, info in inventory.files.items():
        if info.root == "deps" and path.name.endswith(".pyc") and path.parent.name == "__pycache__":
            match = _CPYTHON_PYC.search(path.name)
            if match:
                counts[(int(match.group(1)), int(match.group(2)))] += 1
    return counts.most_common(1)[0][0] if counts else None


def _wheel_tag_version(inventory: Inventory, site: Path | None) -> tuple[int, int] | None:
    if site is None:
        return None
    counts: Counter[tuple[int, int]] = Counter()
    for name in inventory.listdir(site):
        if name.endswith(".dist-info"):
            text = inventory.read_text(site / name / "WHEEL") or ""
            for major, minor in _WHEEL_TAG.findall(text):
                counts[(int(major), int(minor))] += 1
    return counts.most_common(1)[0][0] if counts else None


def _is_within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents
