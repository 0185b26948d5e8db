"""Installed distributions, read from their .dist-info / .egg-info through the inventory.

This is what ``importlib.metadata`` sees at run time; we read the same files
(METADATA, RECORD, top_level.txt, entry_points.txt) without importing anything.
Broken metadata is a warning, never fatal: the directory name still names it.
"""
from __future__ import annotations

import configparser
import csv
import email.message
import email.parser
import io
import os
import re
from dataclasses import dataclass, field
from urllib.parse import quote
from pathlib import Path

from microprune.inventory import Inventory
from microprune.model import Diagnostic
from microprune.paths import is_within

_DIST_DIR = re.compile(r"^(?P<name>[^-]+?)(?:-(?P<version>[^-]+?))?(?:-py\d.*)?\.(?:dist|egg)-info$")


def canonical_name(name: str) -> str:
    """PEP 503 normalisation: 'Jinja2', 'jinja_2' and 'jinja-2' are one project."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class EntryPoint:
    group: str
    name: str
    module: str
    attr: str


@dataclass
class Distribution:
    name: str
    version: str
    info_dir: Path
    files: set[Path] = field(default_factory=set)          # from RECORD, inside site-packages
    native_libs: tuple[Path, ...] = ()                      # files under <top>.libs/ (auditwheel)
    pth_files: tuple[Path, ...] = ()                        # .pth files at the top of site-packages
    top_level: tuple[str, ...] = ()
    entry_points: tuple[EntryPoint, ...] = ()
    license: str = ""                                       # as declared: see _declared_license

    @property
    def purl(self) -> str:
        return f"pkg:pypi/{canonical_name(self.name)}@{quote(self.version, safe='.+-_!')}"

    @property
    def key(self) -> str:
        return canonical_name(self.name)


@dataclass
class DistIndex:
    dists: list[Distribution]
    owner: dict[Path, Distribution]                         # file -> distribution
    by_top_level: dict[str, Distribution]
    by_key: dict[str, Distribution]
    groups: dict[str, list[EntryPoint]]                     # entry-point group -> plugins

    def of(self, path: Path, site: Path) -> Distribution | None:
        dist = self.owner.get(path)
        if dist is not None:
            return dist
        if not is_within(path, site) or path == site:
            return None
        top = path.relative_to(site).parts[0]
        return self.by_top_level.get(top.split(".")[0])


SCRIPT_GROUPS = frozenset({"console_scripts", "gui_scripts"})


def index_distributions(inventory: Inventory, site: Path | None, diagnostics: list[Diagnostic]) -> DistIndex:
    dists: list[Distribution] = []
    if site is not None:
        for name in sorted(inventory.listdir(site)):
            path = site / name
            if (name.endswith(".dist-info") or name.endswith(".egg-info")) and inventory.is_dir(path):
                dists.append(_read_distribution(inventory, site, path, diagnostics))
    owner: dict[Path, Distribution] = {}
    by_top: dict[str, Distribution] = {}
    groups: dict[str, list[EntryPoint]] = {}
    for dist in dists:
        for file in dist.files:
            owner.setdefault(file, dist)
        for file in inventory.walk_files(dist.info_dir):
            owner[file] = dist
        for top in dist.top_level or (_top_levels_from_files(dist, site) if site else ()):
            by_top.setdefault(top, dist)
        for ep in dist.entry_points:
            groups.setdefault(ep.group, []).append(ep)
    return DistIndex(dists, owner, by_top, {d.key: d for d in dists}, groups)


def _read_distribution(inventory: Inventory, site: Path, info_dir: Path, diagnostics: list[Diagnostic]) -> Distribution:
    match = _DIST_DIR.match(info_dir.name)
    fallback_name = match.group("name") if match else info_dir.name.rsplit(".", 1)[0]
    fallback_version = (match.group("version") if match else None) or "unknown"
    meta_name = "METADATA" if info_dir.name.endswith(".dist-info") else "PKG-INFO"
    headers = _read_metadata(inventory, info_dir / meta_name, diagnostics)
    name = headers.get("Name") or fallback_name
    version = headers.get("Version") or fallback_version
    dist = Distribution(name=name.strip(), version=version.strip(), info_dir=info_dir,
                        license=headers.get("License", ""))
    dist.files = _read_record(inventory, site, info_dir, diagnostics)
    dist.native_libs, dist.pth_files = _special_files(dist.files, site)
    dist.top_level = tuple(_read_lines(inventory, info_dir / "top_level.txt"))
    dist.entry_points = _read_entry_points(inventory, info_dir / "entry_points.txt", diagnostics)
    return dist


def _special_files(files: set[Path], site: Path) -> tuple[tuple[Path, ...], tuple[Path, ...]]:
    libs, pth = [], []
    prefix = len(str(site)) + 1
    for file in files:
        relative = str(file)[prefix:]
        top, _, rest = relative.partition(os.sep)
        if rest and top.endswith(".libs"):
            libs.append(file)
        elif not rest and relative.endswith(".pth"):
            pth.append(file)
    return tuple(sorted(libs)), tuple(sorted(pth))


def _read_metadata(inventory: Inventory, path: Path, diagnostics: list[Diagnostic]) -> dict[str, str]:
    try:
        raw = inventory.read_bytes(path) if inventory.is_file(path) else None
    except OSError:
        raw = None
    if raw is None:
        diagnostics.append(Diagnostic("broken-metadata", "missing or unreadable; name taken from the directory", path))
        return {}
    # Only the header block: the body can be megabytes of README.
    try:
        head = raw.split(b"\n\n", 1)[0].decode("utf-8")
    except UnicodeDecodeError:
        diagnostics.append(Diagnostic("broken-metadata", "not valid UTF-8; name taken from the directory", path))
        return {}
    message = email.parser.HeaderParser().parsestr(head)
    headers = {k: str(v) for k, v in message.items() if k in ("Name", "Version") and str(v).isprintable()}
    headers["License"] = _declared_license(message)
    if "Name" not in headers:
        diagnostics.append(Diagnostic("broken-metadata", "has no Name header; name taken from the directory", path))
    return headers


# Trove classifiers that name exactly one SPDX licence (others are kept as names).
_CLASSIFIER_SPDX = {
    "MIT License": "MIT", "Apache Software License": "Apache-2.0", "ISC License (ISCL)": "ISC",
    "Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0", "Python Software Foundation License": "PSF-2.0",
    "The Unlicense (Unlicense)": "Unlicense", "Zope Public License": "ZPL-2.1",
    "GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "GNU General Public License v3 (GPLv3)": "GPL-3.0-only", "GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "Boost Software License 1.0 (BSL-1.0)": "BSL-1.0", "MIT No Attribution License (MIT-0)": "MIT-0",
}
MAX_LICENSE_TEXT = 120


def _declared_license(message: email.message.Message) -> str:
    """License-Expression (PEP 639), else the licence classifiers, else a short License field
    (many put the whole licence text there: that is not a name)."""
    expression = str(message.get("License-Expression") or "").strip()
    if expression and expression.isprintable():
        return expression
    names = []
    for classifier in message.get_all("Classifier") or []:
        parts = [p.strip() for p in str(classifier).split("::")]
        if len(parts) >= 2 and parts[0] == "License" and parts[-1] not in ("OSI Approved", "Other/Proprietary License", "DFSG approved"):
            names.append(_CLASSIFIER_SPDX.get(parts[-1], parts[-1]))
    if names:
        return " OR ".join(dict.fromkeys(names)) if len(names) > 1 else names[0]
    text = str(message.get("License") or "").strip()
    if text and "\n" not in text and len(text) <= MAX_LICENSE_TEXT and text.isprintable():
        return text
    return ""


def _read_record(inventory: Inventory, site: Path, info_dir: Path, diagnostics: list[Diagnostic]) -> set[Path]:
    text = inventory.read_text(info_dir / "RECORD")
    if text is None:
        text = inventory.read_text(info_dir / "installed-files.txt")     # egg-info
        base = info_dir
    else:
        base = site
    if text is None:
        return set()
    files: set[Path] = set()
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as err:
        diagnostics.append(Diagnostic("broken-metadata", f"RECORD is not valid CSV ({err})", info_dir / "RECORD"))
        return set()
    base_text, site_text = str(base), str(site) + os.sep
    for row in rows:
        if not row or not row[0]:
            continue
        # String ops, not pathlib: botocore's RECORD alone has thousands of rows.
        text = os.path.normpath(os.path.join(base_text, row[0]))
        if text.startswith(site_text):     # RECORD also lists ../../bin/scripts: not ours
            files.add(inventory.path(text))
    return files


def _read_lines(inventory: Inventory, path: Path) -> list[str]:
    text = inventory.read_text(path) or ""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _read_entry_points(inventory: Inventory, path: Path, diagnostics: list[Diagnostic]) -> tuple[EntryPoint, ...]:
    text = inventory.read_text(path)
    if not text:
        return ()
    parser = configparser.ConfigParser(delimiters=("=",), interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # names are case-sensitive
    try:
        parser.read_string(text)
    except configparser.Error as err:
        diagnostics.append(Diagnostic("broken-metadata", f"entry_points.txt unreadable ({err.__class__.__name__})", path))
        return ()
    found = []
    for group in parser.sections():
        for name, value in parser.items(group):
            target = value.split("[", 1)[0].strip()          # drop "[extras]"
            module, _, attr = target.partition(":")
            if module.strip():
                found.append(EntryPoint(group, name, module.strip(), attr.strip()))
    return tuple(found)


def _top_levels_from_files(dist: Distribution, site: Path) -> list[str]:
    tops = set()
    prefix = str(site) + os.sep
    for file in dist.files:
        text = str(file)
        if not text.startswith(prefix):
            continue
        first, separator, _ = text[len(prefix):].partition(os.sep)
        if not separator:                  # a module at the top: six.py, _cffi_backend.*.so
            if first.endswith((".py", ".so", ".pyd")):
                tops.add(first.split(".")[0])
        elif not first.endswith((".dist-info", ".egg-info", ".data")) and first != "__pycache__":
            tops.add(first)
    return sorted(tops)
