"""--sbom: a CycloneDX 1.5 SBOM of what ships (not of what is installed), validated against the
CycloneDX schema (cyclonedx-python-lib's copy, strict), deterministic, and inside every image."""
from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from tests.cli.helpers import run_cli
from tests.image.helpers import build, write_files, write_python_app
from tests.report.synth import make_app


def valid_cyclonedx(text: str) -> None:
    error = JsonStrictValidator(SchemaVersion.V1_5).validate_str(text)
    assert error is None, str(error)


def sbom_of(*args: Any) -> tuple[str, dict[str, Any]]:
    """Run a command with --sbom FILE (FILE is the last argument): (the SBOM text, the JSON report)."""
    out = Path(args[-1])
    result = run_cli(*args[:-1], "--sbom", out, "--format", "json", timeout=300)
    assert result.code == 0, result.err
    return out.read_text(encoding="utf-8"), result.json()


def test_python_sbom_lists_only_what_ships(tmp_path: Path) -> None:
    app, deps = make_app(tmp_path / "src", files=300)
    text, report = sbom_of("report", app, "--deps", deps, tmp_path / "sbom.json")
    valid_cyclonedx(text)
    bom = json.loads(text)
    assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.5"
    # junk is installed but unused: an SBOM of the install would list it, this one must not
    assert [c["name"] for c in bom["components"]] == ["bigpkg"]
    component = bom["components"][0]
    assert component["version"] == "1.0"
    assert component["purl"] == "pkg:pypi/bigpkg@1.0"
    assert component["licenses"] == [{"expression": "MIT OR Apache-2.0"}]
    row = next(d for d in report["distributions"] if d["name"] == "bigpkg")
    properties = {p["name"]: p["value"] for p in component["properties"]}
    assert properties["microprune:kept_bytes"] == str(row["kept_bytes"])
    assert properties["microprune:kept_files"] == str(row["kept_files"])
    assert bom["dependencies"] == [{"ref": "app", "dependsOn": ["pkg:pypi/bigpkg@1.0"]}]


def test_sbom_is_deterministic_and_dated_by_source_date_epoch(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    app, deps = make_app(tmp_path / "src", files=200)
    first, _ = sbom_of("report", app, "--deps", deps, tmp_path / "a.json")
    second, _ = sbom_of("analyze", app, "--deps", deps, tmp_path / "b.json")
    assert first == second
    assert "timestamp" not in json.loads(first)["metadata"]
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    dated, _ = sbom_of("report", app, "--deps", deps, tmp_path / "c.json")
    valid_cyclonedx(dated)
    bom = json.loads(dated)
    assert bom["metadata"]["timestamp"] == "2023-11-14T22:13:20Z"
    assert bom["serialNumber"] != json.loads(first)["serialNumber"]


NODE_APP = {
    "package.json": '{"name": "sbom-app", "version": "1.0.0", "main": "index.js"}\n',
    "index.js": "require('@acme/used'); require('old-style');\n",
    "node_modules/@acme/used/package.json": '{"name": "@acme/used", "version": "2.1.0", "license": "ISC"}\n',
    "node_modules/@acme/used/index.js": "module.exports = 1;\n",
    "node_modules/old-style/package.json": '{"name": "old-style", "version": "0.3.0", '
                                           '"licenses": [{"type": "MIT"}, {"type": "Apache-2.0"}]}\n',
    "node_modules/old-style/index.js": "module.exports = 2;\n",
    "node_modules/unused/package.json": '{"name": "unused", "version": "9.9.9", "license": "GPL-3.0-only"}\n',
    "node_modules/unused/index.js": "module.exports = 3;\n",
    "node_modules/free-text/package.json": '{"name": "free-text", "version": "1.0.0", "license": "SEE LICENSE IN LICENSE.md"}\n',
}


def test_node_sbom_scoped_purls_and_licence_forms(tmp_path: Path) -> None:
    app = write_files(tmp_path / "app", NODE_APP)
    text, _ = sbom_of("report", app, tmp_path / "sbom.json")
    valid_cyclonedx(text)
    components = {c["name"]: c for c in json.loads(text)["components"]}
    assert sorted(components) == ["@acme/used", "old-style"]
    assert components["@acme/used"]["purl"] == "pkg:npm/%40acme/used@2.1.0"
    assert components["@acme/used"]["licenses"] == [{"license": {"id": "ISC"}}]
    assert components["old-style"]["licenses"] == [{"expression": "MIT OR Apache-2.0"}]


def test_the_image_carries_the_sbom_of_what_it_ships(tmp_path: Path) -> None:
    app, deps = write_python_app(tmp_path / "src")
    build(app, tmp_path / "app.tar", "--sbom", tmp_path / "sbom.json", deps=deps)
    written = (tmp_path / "sbom.json").read_text(encoding="utf-8")
    valid_cyclonedx(written)
    inside = _file_in_image(tmp_path / "app.tar", "usr/share/microprune/sbom.cdx.json")
    assert json.loads(inside) == json.loads(written)
    assert [c["name"] for c in json.loads(inside)["components"]] == ["greet"]


def _file_in_image(archive: Path, wanted: str) -> bytes:
    with tarfile.open(archive) as outer:
        index = json.loads(outer.extractfile("index.json").read())  # type: ignore[union-attr]
        manifest_digest = index["manifests"][0]["digest"].split(":")[1]
        manifest = json.loads(outer.extractfile(f"blobs/sha256/{manifest_digest}").read())  # type: ignore[union-attr]
        for layer in manifest["layers"]:
            blob = outer.extractfile(f"blobs/sha256/{layer['digest'].split(':')[1]}").read()  # type: ignore[union-attr]
            with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as inner:
                for member in inner.getmembers():
                    if member.name.lstrip("./") == wanted:
                        return inner.extractfile(member).read()  # type: ignore[union-attr]
    pytest.fail(f"{wanted} is not in {archive}")
