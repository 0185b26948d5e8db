"""A CycloneDX SBOM of what ships: only the packages the plan keeps files of.

An SBOM of the whole install lists what a scanner should worry about but the image does
not hold; this one lists the kept distributions and npm packages, with the versions and
licences their own metadata declares, and how much of each is kept. Pure and
deterministic: no timestamp unless SOURCE_DATE_EPOCH is set, a serial number derived
from the content.
"""
from __future__ import annotations

import json
import os
import re
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import __version__
from .model import Package
from .plan import PrunePlan

SPEC_VERSION = "1.5"
# An SPDX licence expression: ids, "WITH", "AND", "OR", parentheses. Anything else is a
# free-text licence name (a whole licence text in metadata is cut, not embedded).
_SPDX_EXPRESSION = re.compile(r"^[A-Za-z0-9.+\-]+( +(AND|OR|WITH|and|or) +\(?[A-Za-z0-9.+\-]+\)?)*$|^\(.*\)$")
MAX_LICENSE_NAME = 120


def build_sbom(plan: PrunePlan, packages: list[Package], app_name: str, language: str) -> dict[str, Any]:
    by_name = {p.name: p for p in packages}
    components = []
    for row in plan.packages:
        if row.kept_files == 0 or row.name not in by_name:
            continue
        package = by_name[row.name]
        components.append(_component(package, row.kept_bytes, row.kept_files, row.dropped_files))
    components.sort(key=lambda c: (c["name"], c.get("version", "")))
    bom: dict[str, Any] = {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "version": 1,
        "metadata": {
            "tools": {"components": [{"type": "application", "name": "microprune", "version": __version__}]},
            "component": {"type": "application", "bom-ref": "app", "name": app_name,
                          "properties": [{"name": "microprune:language", "value": language}]},
            "properties": [{"name": "microprune:scope", "value": "kept files only (a pruned tree)"}],
        },
        "components": components,
        "dependencies": [{"ref": "app", "dependsOn": [c["bom-ref"] for c in components]}],
    }
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    if epoch.isdigit():
        stamp = datetime.fromtimestamp(int(epoch), tz=timezone.utc)
        bom["metadata"]["timestamp"] = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    content = json.dumps(bom, sort_keys=True, separators=(",", ":"))
    bom["serialNumber"] = uuid.uuid5(uuid.NAMESPACE_URL, "microprune-sbom:" + content).urn
    return bom


def _component(package: Package, kept_bytes: int, kept_files: int, dropped_files: int) -> dict[str, Any]:
    ref = package.purl or f"{package.name}@{package.version}"
    component: dict[str, Any] = {"type": "library", "bom-ref": ref, "name": package.name}
    if package.version:
        component["version"] = package.version
    if package.purl:
        component["purl"] = package.purl
    licenses = license_entries(package.license)
    if licenses:
        component["licenses"] = licenses
    component["properties"] = [
        {"name": "microprune:kept_bytes", "value": str(kept_bytes)},
        {"name": "microprune:kept_files", "value": str(kept_files)},
        {"name": "microprune:dropped_files", "value": str(dropped_files)},
    ]
    return component


def license_entries(declared: str) -> list[dict[str, Any]]:
    text = " ".join(declared.split())
    if not text or text.upper() in ("UNKNOWN", "NONE"):
        return []
    if len(text) <= MAX_LICENSE_NAME and _SPDX_EXPRESSION.match(text):
        if " " not in text and "(" not in text:
            return [{"license": {"id": text}}] if _is_spdx_id(text) else [{"license": {"name": text}}]
        return [{"expression": text}]
    return [{"license": {"name": text[:MAX_LICENSE_NAME]}}]


def _is_spdx_id(text: str) -> bool:
    """Only ids CycloneDX's schema knows may go in license.id; the common ones suffice,
    the rest are names (still correct, just not machine-matched)."""
    return text in _COMMON_SPDX_IDS


_COMMON_SPDX_IDS = frozenset({
    "0BSD", "AFL-2.1", "AFL-3.0", "AGPL-3.0-only", "AGPL-3.0-or-later", "Apache-1.1", "Apache-2.0",
    "Artistic-2.0", "BlueOak-1.0.0", "BSD-1-Clause", "BSD-2-Clause", "BSD-3-Clause", "BSL-1.0", "CC-BY-3.0",
    "CC-BY-4.0", "CC0-1.0", "CDDL-1.0", "CDDL-1.1", "EPL-1.0", "EPL-2.0", "GPL-2.0-only",
    "GPL-2.0-or-later", "GPL-3.0-only", "GPL-3.0-or-later", "HPND", "ISC", "LGPL-2.0-only",
    "LGPL-2.1-only", "LGPL-2.1-or-later", "LGPL-3.0-only", "LGPL-3.0-or-later", "MIT", "MIT-0", "MPL-1.1",
    "MPL-2.0", "OFL-1.1", "PSF-2.0", "Python-2.0", "Unicode-DFS-2016", "Unicode-3.0", "Unlicense", "W3C",
    "WTFPL", "X11", "Zlib", "ZPL-2.1",
})


def render_sbom(bom: dict[str, Any]) -> str:
    """The one serialisation: `--sbom FILE` and the copy inside an image are the same bytes."""
    return json.dumps(bom, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_sbom(path: Path, bom: dict[str, Any]) -> None:
    from .paths import write_text_atomically

    write_text_atomically(path, render_sbom(bom))
