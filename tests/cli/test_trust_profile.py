"""`prune --profile PROFILE --trust-profile`: code that may run (a lazy or guarded import, a
module named in a string) is dropped unless a recorded run loaded it, while what a kept file
needs whenever it runs (top-level imports, metadata, parent packages) stays. Hand-made
packages: no network."""
from __future__ import annotations

import json
import shutil
import sqlite3
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


def test_data_read_by_native_code_is_recorded_and_kept(tmp_path: Path) -> None:
    """sqlite opens its database in C (as PROJ opens proj.db, OpenSSL certifi's cacert.pem and
    libxslt lxml's stylesheets): no audit event, so only the kernel's record of opens (inotify)
    sees the read. Trusting a profile without it dropped the file, and the app broke."""
    app, deps = tmp_path / "app", tmp_path / "deps"
    app.mkdir()
    (deps / "geo" / "data").mkdir(parents=True)
    (deps / "geo" / "__init__.py").write_text(
        "import os, sqlite3\n"
        "def lookup():\n"
        "    path = os.path.join(os.path.dirname(__file__), 'data', 'codes.db')\n"
        "    with sqlite3.connect(f'file:{path}?mode=ro', uri=True) as db:\n"
        "        return db.execute('select name from codes').fetchone()[0]\n")
    (deps / "geo" / "data" / "unused.db").write_bytes(b"")
    with sqlite3.connect(deps / "geo" / "data" / "codes.db") as db:
        db.execute("create table codes (name text)")
        db.execute("insert into codes values ('EPSG:4326')")
    db.close()
    (app / "main.py").write_text("import geo\nprint(geo.lookup())\n")
    profile = tmp_path / "p.json"
    rec = run_cli("trace", app, "--deps", deps, "--run", "python3 main.py", "--out", profile, "--format", "json")
    assert rec.code == 0, rec.err
    assert json.loads(rec.out)["runs"][0]["kernel_watch"] == "complete"
    files = json.loads(profile.read_text())["files"]
    assert "deps/geo/data/codes.db" in files and "deps/geo/data/unused.db" not in files
    out = tmp_path / "out"
    pruned = run_cli("prune", app, "--deps", deps, "--out", out, "--profile", profile, "--trust-profile",
                     "--smoke", "python3 main.py", "--format", "json")
    assert pruned.code == 0, pruned.out + pruned.err
    assert (out / "site-packages" / "geo" / "data" / "codes.db").is_file()
    assert not (out / "site-packages" / "geo" / "data" / "unused.db").exists()


@pytest.mark.parametrize("case, kept, lazy", [
    ("hint-zoneinfo-tzdata", ["tzdata/zoneinfo/UTC", "tzdata/zones"], False),
    # stdlib zoneinfo imported in a function: the run may have called it, and no record can say
    # (the stdlib is not recorded)
    ("hint-zoneinfo-tzdata", ["tzdata/zoneinfo/UTC", "tzdata/zones"], True),
    ("hint-dateutil-zoneinfo", ["dateutil/zoneinfo/__init__.py", "dateutil/zoneinfo/dateutil-zoneinfo.tar.gz"],
     False),
])
def test_a_system_fallback_is_kept_though_no_run_on_this_host_read_it(case: str, kept: list[str], lazy: bool,
                                                                      tmp_path: Path) -> None:
    """A host with /usr/share/zoneinfo serves zoneinfo and dateutil from it, so a recorded run
    never opens tzdata's zones; a slim image has no system database and needs them."""
    from tests.cases import FIXTURES, copy_case

    root = copy_case(FIXTURES / "python" / case, tmp_path)
    if lazy:
        (root / "app" / "app.py").write_text("def zone(name):\n" + "".join(
            f"    {line}\n" for line in (root / "app" / "app.py").read_text().splitlines() if line) + "    return 1\n")
    profile = tmp_path / "host.profile"
    profile.write_text(json.dumps({"schema_version": 1, "command": "profile", "language": "python",
                                   "app": str(root / "app"), "runs": [], "files": ["app/app.py"]}))
    result = run_cli("prune", root / "app", "--deps", root / "deps", "--out", tmp_path / "out", "--profile", profile,
                     "--trust-profile", "--format", "json")
    assert result.code == 0, result.err
    rows = {row["path"]: row for row in json.loads(result.out)["files"] if row["root"] == "deps"}
    for path in kept:
        assert rows[path]["keep"] and "system-fallback" in rows[path]["reasons"], rows[path]
        assert (tmp_path / "out" / "site-packages" / path).is_file()
