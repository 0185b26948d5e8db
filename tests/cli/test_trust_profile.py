"""`prune --profile PROFILE --trust-profile`: code that may run (a lazy or guarded import, a
module named in a string) is dropped unless a recorded run loaded it, while what a kept file
needs whenever it runs (top-level imports, metadata, parent packages) stays. Hand-made
packages: no network."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest

from tests.cli.helpers import run_cli

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schema" / "microprune-output.schema.json").read_text())

PY_MAIN = """\
import importlib
import sys

import plug


def report():
    import plug.lazy                      # only when report() is called: never, in the smoke
    return plug.lazy.VALUE


if "--fancy" in sys.argv:
    import plug.fancy                     # guarded: not taken by the smoke
name = "plug." + "named"
print(plug.VALUE, importlib.import_module(name).VALUE, importlib.import_module("plug.literal").VALUE,
      plug.greeting())
"""


def _python_app(root: Path) -> tuple[Path, Path]:
    app, deps = root / "app", root / "deps"
    app.mkdir(parents=True)
    (app / "main.py").write_text(PY_MAIN)
    plug = deps / "plug"
    plug.mkdir(parents=True)
    (plug / "__init__.py").write_text("import pathlib\nfrom . import core\nVALUE = core.VALUE\n"
                                      "def later():\n    from . import lazy_too\n"
                                      "def greeting():\n"
                                      "    return (pathlib.Path(__file__).parent / 'read.txt').read_text().strip()\n")
    (plug / "read.txt").write_text("hello\n")            # package data the run reads
    (plug / "unread.txt").write_text("never read\n")     # package data it does not
    for name in ("core", "lazy", "lazy_too", "fancy", "named", "literal", "unused"):
        (plug / f"{name}.py").write_text(f"VALUE = {name!r}\n")
    info = deps / "plug-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: plug\nVersion: 1.0\n")
    (info / "RECORD").write_text("".join(f"plug/{p.name},,\n" for p in sorted(plug.iterdir()))
                                 + "plug-1.0.dist-info/METADATA,,\nplug-1.0.dist-info/RECORD,,\n")
    return app, deps


def _record(app: Path, deps: list[str], smoke: str, tmp_path: Path) -> Path:
    profile = tmp_path / "app.profile"
    rec = run_cli("trace", app, *deps, "--run", smoke, "--out", profile, "--format", "json")
    assert rec.code == 0, rec.err
    assert json.loads(profile.read_text())["runs"][0]["exit_code"] == 0
    return profile


def _rows(result_out: str) -> dict[str, dict]:
    return {row["path"]: row for row in json.loads(result_out)["files"] if row["root"] != "app"}


def test_python_trusted_profile_drops_what_no_run_loaded(tmp_path: Path) -> None:
    app, deps = _python_app(tmp_path)
    smoke = "python3 main.py"
    profile = _record(app, ["--deps", str(deps)], smoke, tmp_path)

    union = run_cli("prune", app, "--deps", deps, "--out", tmp_path / "union", "--profile", profile,
                    "--format", "json")
    assert union.code == 0, union.err
    union_rows = _rows(union.out)
    for name in ("lazy", "lazy_too", "fancy", "literal"):       # static reach: kept in the union
        assert union_rows[f"plug/{name}.py"]["keep"], name

    trusted = run_cli("prune", app, "--deps", deps, "--out", tmp_path / "trusted", "--profile", profile,
                      "--trust-profile", "--smoke", smoke, "--format", "json")
    assert trusted.code == 0, trusted.out + trusted.err
    report = json.loads(trusted.out)
    assert report["verify"]["passed"] and "core named literal hello" in report["verify"]["output_tail"]
    rows = _rows(trusted.out)
    for name in ("__init__", "core", "named", "literal"):       # loaded by the run
        assert rows[f"plug/{name}.py"]["keep"], name
    assert rows["plug-1.0.dist-info/METADATA"]["keep"]           # metadata of a kept distribution: always
    assert rows["plug/read.txt"]["keep"] and union_rows["plug/unread.txt"]["keep"]
    assert rows["plug/unread.txt"]["reasons"] == ["not-in-profile"]   # data: kept only if a run read it
    for name in ("lazy", "lazy_too", "fancy"):                   # may run, did not
        assert not rows[f"plug/{name}.py"]["keep"], name
        assert rows[f"plug/{name}.py"]["reasons"] == ["not-in-profile"], rows[f"plug/{name}.py"]
    assert rows["plug/unused.py"]["reasons"] == ["unreached"]
    assert not (tmp_path / "trusted" / "deps" / "plug" / "lazy.py").exists()
    text = run_cli("analyze", app, "--deps", deps, "--profile", profile, "--trust-profile")
    assert text.code == 0, text.err
    dropped = sum((deps / "plug" / name).stat().st_size for name in ("lazy.py", "lazy_too.py", "fancy.py",
                                                                        "unread.txt"))
    assert f"not-in-profile: drop {dropped} B in 4 files" in text.out, text.out
    plain = run_cli("analyze", app, "--deps", deps, "--profile", profile)
    assert "not-in-profile" not in plain.out


def test_why_names_the_reference_no_run_took(tmp_path: Path) -> None:
    app, deps = _python_app(tmp_path)
    profile = _record(app, ["--deps", str(deps)], "python3 main.py", tmp_path)
    text = run_cli("why", app, "--deps", deps, "plug.lazy", "--profile", profile, "--trust-profile")
    assert text.code == 0, text.err
    assert "dropped (not-in-profile)" in text.out, text.out
    assert "only main.py:8 (app) may load it" in text.out, text.out
    data = run_cli("why", app, "--deps", deps, "plug.lazy", "--profile", profile, "--trust-profile",
                   "--format", "json").json()
    assert data["unrun_reference"] == {"file": "plug/lazy.py", "root": "deps", "from": "main.py",
                                       "from_root": "app", "line": 8, "reason": "import",
                                       "detail": "plug.lazy"}, data
    jsonschema.validate(data, SCHEMA, cls=jsonschema.Draft202012Validator)
    with pytest.raises(jsonschema.ValidationError):      # the step's shape is checked, not just allowed
        jsonschema.validate({**data, "unrun_reference": {"file": 1}}, SCHEMA, cls=jsonschema.Draft202012Validator)
    kept = run_cli("why", app, "--deps", deps, "plug.lazy", "--profile", profile, "--format", "json").json()
    assert kept["kept"] and "unrun_reference" not in kept


def test_trust_profile_needs_a_profile(tmp_path: Path) -> None:
    app, deps = _python_app(tmp_path)
    result = run_cli("prune", app, "--deps", deps, "--out", tmp_path / "out", "--trust-profile")
    assert result.code == 2, result.out + result.err
    assert "--trust-profile needs --profile" in result.err
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_node_trusted_profile_drops_requires_in_functions_never_called(tmp_path: Path) -> None:
    app = tmp_path / "app"
    pkg = app / "node_modules" / "plug"
    pkg.mkdir(parents=True)
    (app / "package.json").write_text(json.dumps({"name": "app", "main": "main.js"}))
    (app / "main.js").write_text(
        "const plug = require('plug');\n"
        "function report() { return require('plug/lazy'); }\n"
        "console.log(plug.VALUE, (function () { return require('plug/iife').VALUE; })());\n")
    (pkg / "package.json").write_text(json.dumps({"name": "plug", "version": "1.0.0"}))
    (pkg / "index.js").write_text("const core = require('./core');\n"
                                  "exports.later = () => require('./lazy-too');\n"
                                  "exports.VALUE = core.VALUE;\n")
    for name in ("core", "lazy", "lazy-too", "iife"):
        (pkg / f"{name}.js").write_text(f"exports.VALUE = {name!r};\n")
    smoke = "node main.js"
    profile = _record(app, [], smoke, tmp_path)
    result = run_cli("prune", app, "--out", tmp_path / "trusted", "--profile", profile, "--trust-profile",
                     "--smoke", smoke, "--format", "json")
    assert result.code == 0, result.out + result.err
    rows = _rows(result.out)
    for name in ("index.js", "core.js", "iife.js", "package.json"):
        assert rows[f"plug/{name}"]["keep"], name
    for name in ("lazy.js", "lazy-too.js"):
        assert rows[f"plug/{name}"]["reasons"] == ["not-in-profile"], rows[f"plug/{name}"]
    union = run_cli("prune", app, "--out", tmp_path / "union", "--profile", profile, "--format", "json")
    assert all(_rows(union.out)[f"plug/{name}"]["keep"] for name in ("lazy.js", "lazy-too.js"))
