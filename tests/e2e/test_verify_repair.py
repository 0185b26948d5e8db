"""`microprune verify` and `prune --smoke [--repair]` with real packages from PyPI and npm.

Each app loads a module of a real dependency by a name it reads from a JSON file at run time,
which no static analysis (and no hint) can know:

- Python: main.py imports `jinja2.nativetypes` (named in renderer.json) with
  importlib.import_module; a plain prune drops jinja2/nativetypes.py (checked by hand: the pruned
  app fails with ModuleNotFoundError, the unpruned one prints `rendered 3`).
- Node: main.js requires `lodash/chunk` (named in helpers.json); a plain prune drops
  lodash/chunk.js and what only it needs (toInteger, _isIterateeCall, ...).

A plain `prune --smoke` must be caught (exit 3, `verify.missing` names the module), `--repair`
must fix it from the original deps and write `keep` entries into the app's configuration, and a
second plain run must pass without repair. `verify` alone must pass on a good tree, fail on a
sabotaged copy naming what was deleted, and hide the host (site-packages, PYTHONPATH, NODE_PATH,
HOME's global folders, node_modules above OUT). Every run is bounded (--timeout, run_cli's timeout).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.helpers import Result, run_cli, snapshot
from tests.e2e.npmpkgs import copy_installed, needs_node
from tests.e2e.realpkgs import installed

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

pytestmark = pytest.mark.network

VERIFY_KEYS = {"passed", "exit_code", "timed_out", "missing", "output_tail"}
SMOKE_TIMEOUT = "60"                  # verify's own bound on the smoke command, in seconds

# --- the Python app -----------------------------------------------------------------------

PY_REQUIREMENTS = ["jinja2==3.1.*"]
PY_DYNAMIC = "jinja2.nativetypes"        # reached only through renderer.json
PY_PYPROJECT = """\
# The app's own project table and this comment: --repair must leave them as they are.
[project]
name = "renderer-app"
version = "1.0.0"
"""
PY_FILES = {
    "main.py": '''\
"""Render with the template environment class named in renderer.json (read at run time)."""
import importlib
import json
from pathlib import Path

import jinja2

config = json.loads(Path(__file__).with_name("renderer.json").read_text())
environment_class = getattr(importlib.import_module(config["module"]), config["class"])
assert issubclass(environment_class, jinja2.Environment)
result = environment_class().from_string("{{ a + b }}").render(a=1, b=2)
assert result == 3, repr(result)      # NativeEnvironment renders a native int, not "3"
print("rendered", repr(result))
''',
    "renderer.json": json.dumps({"module": PY_DYNAMIC, "class": "NativeEnvironment"}) + "\n",
    "data/notes.txt": "an app data file that must come through untouched\n",
    "pyproject.toml": PY_PYPROJECT,
}
PY_SMOKE = "python3 main.py"

# --- the Node app -------------------------------------------------------------------------

NODE_PACKAGE = {"name": "plugin-app", "version": "1.0.0", "private": True, "main": "main.js",
                "dependencies": {"lodash": "^4.17.21"}}
NODE_DYNAMIC = "lodash/chunk"            # reached only through helpers.json
NODE_KEEP = "lodash/chunk"               # as --keep: a specifier, resolved the way require() does
                                         # (and traced: chunk.js needs toInteger, _isIterateeCall)
NODE_FILES = {
    "main.js": """\
'use strict';
// The batching helper is named in helpers.json, read at run time: no tracer can know it.
const fs = require('fs');
const path = require('path');
const map = require('lodash/map');

const config = JSON.parse(fs.readFileSync(path.join(__dirname, 'helpers.json'), 'utf8'));
const batch = require(config.batch);
const result = JSON.stringify(batch(map([1, 2, 3, 4, 5], (n) => n * 10), 2));
if (result !== '[[10,20],[30,40],[50]]') throw new Error('unexpected ' + result);
console.log('batches', result);
""",
    "check.mjs": """\
import map from 'lodash/map.js';

if (map([1, 2], (n) => n + 1).join() !== '2,3') throw new Error('lodash/map is broken');
console.log('esm ok');
""",
    "helpers.json": json.dumps({"batch": NODE_DYNAMIC}) + "\n",
    "data/notes.txt": "an app data file that must come through untouched\n",
}
NODE_SMOKE = "node main.js"


# --- helpers ------------------------------------------------------------------------------

def write_files(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def python_app(tmp_path: Path) -> tuple[Path, Path]:
    """(APP, deps): the app in tmp_path/app, its deps a cached `pip install --target` tree."""
    return write_files(tmp_path / "app", PY_FILES), installed(PY_REQUIREMENTS)


def node_app(tmp_path: Path) -> Path:
    """APP with its own node_modules (copied from the npm cache)."""
    app = copy_installed(NODE_PACKAGE, tmp_path / "app")
    return write_files(app, NODE_FILES)


def prune(app: Path, out: Path, *args: str | Path) -> tuple[Result, dict[str, Any]]:
    result = run_cli("prune", app, "--out", out, "--format", "json", *args, timeout=600)
    assert_no_traceback(result)
    assert result.code in (0, 3), f"exit {result.code}: {result.err}"
    report: dict[str, Any] = result.json()
    assert report["schema_version"] == 1 and report["command"] == "prune"
    return result, report


def verify(out: Path, smoke: str, *args: str) -> tuple[Result, dict[str, Any]]:
    result = run_cli("verify", out, "--smoke", smoke, "--timeout", SMOKE_TIMEOUT, "--format", "json",
                     *args, timeout=180)
    assert_no_traceback(result)
    assert result.code in (0, 3), f"exit {result.code}: {result.err}"
    report: dict[str, Any] = result.json()
    assert report["schema_version"] == 1 and report["command"] == "verify", report
    check_verify(report, passed=result.code == 0)
    return result, report


def assert_no_traceback(result: Result) -> None:
    """microprune's own: the smoke command's traceback is expected inside output_tail, so stdout
    is checked without it (and must be the JSON report when it is JSON)."""
    assert "Traceback" not in result.err, result.err
    if result.out.lstrip().startswith("{"):
        report = result.json()
        for block in (report, report.get("verify") or {}):
            block.pop("output_tail", None)
        assert "Traceback" not in json.dumps(report), result.out


def check_verify(block: dict[str, Any], passed: bool) -> None:
    """The shape of a verify result (verify's report, or prune's "verify" object)."""
    assert VERIFY_KEYS <= set(block), block
    assert block["passed"] is passed, block
    assert isinstance(block["timed_out"], bool) and isinstance(block["output_tail"], str)
    assert isinstance(block["missing"], list) and all(isinstance(m, str) for m in block["missing"])
    assert block["exit_code"] is None or isinstance(block["exit_code"], int)
    if passed:
        assert block["exit_code"] == 0 and not block["timed_out"] and block["missing"] == [], block
    elif not block["timed_out"]:
        assert isinstance(block["exit_code"], int) and block["exit_code"] != 0, block


def mentions(missing: list[str], name: str) -> bool:
    """`missing` names `name`: as a module or package name, or as a path (with or without .js)."""
    for entry in missing:
        entry = entry.rstrip("/")
        if entry == name or entry.endswith("/" + name) or entry.endswith("/" + name + ".js"):
            return True
    return False


def no_repair(report: dict[str, Any]) -> bool:
    repair = report.get("repair")
    return not repair or (repair.get("rounds", 0) == 0 and not repair.get("added"))


def without(state: dict[str, str], name: str) -> dict[str, str]:
    """A snapshot() without one top-level file (snapshot keys are hex-encoded paths)."""
    return {k: v for k, v in state.items() if k != os.fsencode(name).hex()}


def restored_only_from(deps_out: Path, deps: Path) -> None:
    """Every file of the pruned deps comes from the original deps (bytecode and stripped
    shared objects aside, which the prune writes itself); sources are byte for byte."""
    for path in deps_out.rglob("*"):
        rel = path.relative_to(deps_out)
        if "__pycache__" in rel.parts or path.is_dir() or path.name == ".package-lock.json":
            continue
        assert (deps / rel).exists(), f"{rel} is in the pruned deps but not in the original ones"
        if path.suffix in (".py", ".js", ".json", ".mjs", ".cjs"):
            assert path.read_bytes() == (deps / rel).read_bytes(), rel


def run_isolated_python(out: Path, smoke_args: list[str]) -> subprocess.CompletedProcess[str]:
    """Independent of `verify`: run the pruned app with -S and only OUT on PYTHONPATH."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
           "PYTHONPATH": f"{out / 'site-packages'}:{out / 'app'}", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-S", *smoke_args], cwd=out / "app", env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def run_isolated_node(out: Path, home: Path, smoke_args: list[str]) -> subprocess.CompletedProcess[str]:
    home.mkdir(exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8"}
    return subprocess.run(["node", *smoke_args], cwd=out, env=env, capture_output=True, text=True,
                          timeout=60, check=False)


# --- 1. Python: a plain prune is caught, --repair fixes it and writes the configuration -----

def test_python_plain_prune_is_caught_by_the_smoke(tmp_path: Path) -> None:
    app, deps = python_app(tmp_path)
    app_before, deps_before = snapshot(app), snapshot(deps)
    result, report = prune(app, tmp_path / "out", "--deps", deps, "--smoke", PY_SMOKE)
    assert result.code == 3, result.err
    check_verify(report["verify"], passed=False)
    assert PY_DYNAMIC in report["verify"]["missing"], report["verify"]
    assert "ModuleNotFoundError" in report["verify"]["output_tail"]
    assert no_repair(report)
    # the premise: the dynamic module really was dropped
    assert not (tmp_path / "out" / "site-packages" / "jinja2" / "nativetypes.py").exists()
    assert snapshot(app) == app_before, "a prune without --repair changed APP"
    assert snapshot(deps) == deps_before, "prune changed the deps"


def test_python_repair_then_a_plain_second_run_passes(tmp_path: Path) -> None:
    app, deps = python_app(tmp_path)
    app_before, deps_before = snapshot(app), snapshot(deps)

    result, report = prune(app, tmp_path / "out", "--deps", deps, "--smoke", PY_SMOKE, "--repair")
    assert result.code == 0, (result.err, report.get("verify"), report.get("repair"))
    check_verify(report["verify"], passed=True)
    repair = report["repair"]
    assert repair["rounds"] >= 1 and repair["added"], repair
    assert all(isinstance(p, str) and p for p in repair["added"]), repair
    out = tmp_path / "out"
    assert (out / "site-packages" / "jinja2" / "nativetypes.py").is_file()
    restored_only_from(out / "site-packages", deps)
    ran = run_isolated_python(out, ["main.py"])     # not only verify's word for it
    assert ran.returncode == 0 and "rendered 3" in ran.stdout, ran.stderr

    # the configuration: keep entries added, the rest of pyproject.toml as it was
    text = (app / "pyproject.toml").read_text()
    config = tomllib.loads(text)
    assert set(repair["added"]) <= set(config["tool"]["microprune"]["keep"]), text
    assert config["project"] == tomllib.loads(PY_PYPROJECT)["project"], text
    for line in PY_PYPROJECT.splitlines():
        assert line in text.splitlines(), f"{line!r} lost from pyproject.toml:\n{text}"
    assert without(snapshot(app), "pyproject.toml") == without(app_before, "pyproject.toml")
    assert snapshot(deps) == deps_before, "repair changed the deps"

    # a second, plain run reads the keep entries and needs no repair
    app_after = snapshot(app)
    result2, report2 = prune(app, tmp_path / "out2", "--deps", deps, "--smoke", PY_SMOKE)
    assert result2.code == 0, (result2.err, report2.get("verify"))
    check_verify(report2["verify"], passed=True)
    assert no_repair(report2), report2.get("repair")
    assert (tmp_path / "out2" / "site-packages" / "jinja2" / "nativetypes.py").is_file()
    assert snapshot(app) == app_after, "a plain prune changed APP"
    assert snapshot(deps) == deps_before


@pytest.mark.parametrize("smoke", [
    pytest.param('python3 -c "import pytest"', id="module-not-in-deps"),
    pytest.param('python3 -c "raise SystemExit(5)"', id="fails-for-another-reason"),
])
def test_python_repair_restores_nothing_from_outside_the_deps(smoke: str, tmp_path: Path) -> None:
    """What the deps do not have cannot be repaired: exit 3, nothing added, APP untouched."""
    app, deps = python_app(tmp_path)
    app_before = snapshot(app)
    result, report = prune(app, tmp_path / "out", "--deps", deps, "--smoke", smoke, "--repair")
    assert result.code == 3, result.err
    check_verify(report["verify"], passed=False)
    assert not report.get("repair", {}).get("added"), report.get("repair")
    assert not (tmp_path / "out" / "site-packages" / "pytest").exists()
    assert not (tmp_path / "out" / "site-packages" / "_pytest").exists()
    assert snapshot(app) == app_before, "a repair that added nothing changed APP's configuration"


# --- 2. Node: the same with require(name) and package.json's "microprune" key ----------------

@needs_node
def test_node_plain_prune_is_caught_by_the_smoke(tmp_path: Path) -> None:
    app = node_app(tmp_path)
    before = snapshot(app)
    result, report = prune(app, tmp_path / "out", "--smoke", NODE_SMOKE)
    assert result.code == 3, result.err
    check_verify(report["verify"], passed=False)
    assert mentions(report["verify"]["missing"], NODE_DYNAMIC), report["verify"]
    assert "Cannot find module" in report["verify"]["output_tail"]
    assert no_repair(report)
    assert not (tmp_path / "out" / "node_modules" / "lodash" / "chunk.js").exists()
    assert snapshot(app) == before, "a prune without --repair changed APP"


@needs_node
def test_node_repair_then_a_plain_second_run_passes(tmp_path: Path) -> None:
    app = node_app(tmp_path)
    before = snapshot(app)
    package_before = json.loads((app / "package.json").read_text())

    result, report = prune(app, tmp_path / "out", "--smoke", NODE_SMOKE, "--repair")
    assert result.code == 0, (result.err, report.get("verify"), report.get("repair"))
    check_verify(report["verify"], passed=True)
    repair = report["repair"]
    assert repair["rounds"] >= 1 and repair["added"], repair
    out = tmp_path / "out"
    assert (out / "node_modules" / "lodash" / "chunk.js").is_file()
    restored_only_from(out / "node_modules", app / "node_modules")
    ran = run_isolated_node(out, tmp_path / "home", ["main.js"])
    assert ran.returncode == 0 and "batches [[10,20],[30,40],[50]]" in ran.stdout, ran.stderr

    package = json.loads((app / "package.json").read_text())
    assert set(repair["added"]) <= set(package["microprune"]["keep"]), package
    assert {k: v for k, v in package.items() if k != "microprune"} == package_before
    # APP's node_modules (the deps) and every other file are as they were
    assert without(snapshot(app), "package.json") == without(before, "package.json")

    app_after = snapshot(app)
    result2, report2 = prune(app, tmp_path / "out2", "--smoke", NODE_SMOKE)
    assert result2.code == 0, (result2.err, report2.get("verify"))
    check_verify(report2["verify"], passed=True)
    assert no_repair(report2), report2.get("repair")
    assert (tmp_path / "out2" / "node_modules" / "lodash" / "chunk.js").is_file()
    assert snapshot(app) == app_after, "a plain prune changed APP"


# --- 3. verify alone: a good tree passes, a sabotaged copy fails naming what is gone ---------

def good_python_out(tmp_path: Path, name: str = "out") -> Path:
    """A tree pruned with the dynamic module kept: it passes the smoke (tmp_path/app reused)."""
    app, deps = python_app(tmp_path)
    out = tmp_path / name
    result, _ = prune(app, out, "--deps", deps, "--keep", PY_DYNAMIC)
    assert result.code == 0, result.err
    return out


def good_node_out(tmp_path: Path, name: str = "out") -> Path:
    app = node_app(tmp_path) if not (tmp_path / "app").exists() else tmp_path / "app"
    out = tmp_path / name
    result, _ = prune(app, out, "--keep", NODE_KEEP)
    assert result.code == 0, result.err
    return out


def remove(root: Path, rel: str) -> None:
    """Delete root/rel (file or folder), and the bytecode of a deleted .py (a sourceless
    __pycache__ entry is not imported anyway; this only keeps the sabotage unambiguous)."""
    target = root / rel
    assert target.exists(), f"{rel} is not in the pruned tree: nothing to sabotage"
    if target.is_dir():
        shutil.rmtree(target)
    else:
        target.unlink()
    if target.suffix == ".py":
        for pyc in (target.parent / "__pycache__").glob(target.stem + ".*.pyc"):
            pyc.unlink()


def ends_with(suffix: str) -> Callable[[list[str]], bool]:
    return lambda missing: any(m.endswith(suffix) for m in missing)


def contains(text: str) -> Callable[[list[str]], bool]:
    return lambda missing: any(text in m for m in missing)


def has(name: str) -> Callable[[list[str]], bool]:
    return lambda missing: mentions(missing, name)


PY_METADATA_SMOKE = "python3 -c \"from importlib.metadata import version; print(version('jinja2'))\""


@pytest.mark.parametrize(("smoke", "damage", "named"), [
    pytest.param(PY_SMOKE, "site-packages/jinja2/nativetypes.py", has(PY_DYNAMIC), id="module"),
    pytest.param(PY_SMOKE, "site-packages/markupsafe", has("markupsafe"), id="package"),
    pytest.param(PY_SMOKE, "app/renderer.json", ends_with("renderer.json"), id="FileNotFoundError"),
    pytest.param(PY_METADATA_SMOKE, "site-packages/jinja2-*.dist-info", has("jinja2"),
                 id="PackageNotFoundError"),
])
def test_verify_python_good_tree_passes_and_sabotaged_copy_fails(
        smoke: str, damage: str, named: Callable[[list[str]], bool], tmp_path: Path) -> None:
    out = good_python_out(tmp_path)
    result, report = verify(out, smoke)
    assert result.code == 0 and report["passed"], report
    assert report["exit_code"] == 0

    broken = good_python_out(tmp_path, "broken")     # a second, identical tree to sabotage
    matches = sorted(broken.glob(damage))
    assert len(matches) == 1, f"{damage}: {matches}"
    remove(broken, matches[0].relative_to(broken).as_posix())
    result, report = verify(broken, smoke)
    assert result.code == 3, report
    assert not report["passed"] and not report["timed_out"] and report["exit_code"] == 1, report
    assert named(report["missing"]), report

    text = run_cli("verify", broken, "--smoke", smoke, "--timeout", SMOKE_TIMEOUT, timeout=180)
    assert text.code == 3
    first = report["missing"][0].rsplit("/", 1)[-1]
    assert first in text.out + text.err, "text mode does not say what is missing"


@needs_node
@pytest.mark.parametrize(("smoke", "damage", "named"), [
    pytest.param(NODE_SMOKE, "node_modules/lodash/map.js", has("lodash/map"), id="package-file"),
    pytest.param(NODE_SMOKE, "node_modules/lodash/_baseMap.js", contains("_baseMap"),
                 id="relative-require"),
    pytest.param(NODE_SMOKE, "helpers.json", ends_with("helpers.json"), id="ENOENT"),
    pytest.param("node check.mjs", "node_modules/lodash/map.js", ends_with("lodash/map.js"),
                 id="ERR_MODULE_NOT_FOUND"),
])
def test_verify_node_good_tree_passes_and_sabotaged_copy_fails(
        smoke: str, damage: str, named: Callable[[list[str]], bool], tmp_path: Path) -> None:
    out = good_node_out(tmp_path)
    result, report = verify(out, smoke)
    assert result.code == 0 and report["passed"], report

    broken = good_node_out(tmp_path, "broken")
    remove(broken, damage)
    result, report = verify(broken, smoke)
    assert result.code == 3, report
    assert not report["passed"] and not report["timed_out"] and report["exit_code"] == 1, report
    assert named(report["missing"]), report


@pytest.mark.parametrize("language", ["python", pytest.param("node", marks=needs_node)])
def test_verify_runs_a_moved_tree(language: str, tmp_path: Path) -> None:
    """OUT is a directory a user moves or copies (into an image, to another host): verify runs
    the tree it is given, in ITS app dir, wherever prune first wrote it."""
    out = good_python_out(tmp_path) if language == "python" else good_node_out(tmp_path)
    moved = tmp_path / "moved"
    out.rename(moved)
    app_dir = moved / "app" if language == "python" else moved
    smoke = PY_SMOKE if language == "python" else NODE_SMOKE
    result, report = verify(moved, f'{smoke} && test "$(pwd -P)" = "{app_dir.resolve()}"')
    assert result.code == 0, report


@pytest.mark.parametrize("language", ["python", pytest.param("node", marks=needs_node)])
def test_verify_runs_the_copy_it_is_given_not_the_original(language: str, tmp_path: Path) -> None:
    """A sabotaged copy of a good OUT must fail, even while the original is still in place."""
    if language == "python":
        out, smoke, damage = good_python_out(tmp_path), PY_SMOKE, "site-packages/jinja2/nativetypes.py"
    else:
        out, smoke, damage = good_node_out(tmp_path), NODE_SMOKE, "node_modules/lodash/chunk.js"
    copy = tmp_path / "copy"
    shutil.copytree(out, copy, symlinks=True)
    remove(copy, damage)
    result, report = verify(copy, smoke)
    assert result.code == 3, f"verify of the sabotaged copy passed (it ran {out}?): {report}"
    assert mentions(report["missing"], PY_DYNAMIC if language == "python" else NODE_DYNAMIC), report
    result, report = verify(out, smoke)         # the original is still good
    assert result.code == 0, report


def test_verify_refuses_what_is_not_a_pruned_tree(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    for args in (["verify", tmp_path / "plain", "--smoke", "true"],
                 ["verify", tmp_path / "nonexistent", "--smoke", "true"]):
        result = run_cli(*args, "--timeout", "10", timeout=60)
        assert result.code in (1, 2), result
        assert_no_traceback(result)
        assert "error" in result.err.lower(), result.err
    result = run_cli("verify", good_python_out(tmp_path), timeout=60)    # no --smoke
    assert result.code == 2, result


# --- 4. verify's isolation: what the host has must not leak into the run ------------------

def host_can_import(module: str) -> bool:
    python3 = shutil.which("python3")
    if python3 is None:
        return False
    proc = subprocess.run([python3, "-c", f"import {module}"], capture_output=True, timeout=60, check=False)
    return proc.returncode == 0


@pytest.mark.parametrize("python", ["python3", "python", "/usr/bin/env python3",
                                    f"python{sys.version_info[0]}.{sys.version_info[1]}"])
def test_verify_hides_the_host_site_packages(python: str, tmp_path: Path) -> None:
    # the premise: both the interpreter running these tests and python3 on PATH have pytest
    assert subprocess.run([sys.executable, "-c", "import pytest"], timeout=60, check=False).returncode == 0
    if not host_can_import("pytest"):
        pytest.skip("python3 on PATH has no pytest: nothing to hide")
    out = good_python_out(tmp_path)
    # positive controls: the pruned deps and the app are visible, site is off, cwd is OUT/app
    for smoke in (f'{python} -c "import jinja2.nativetypes, sys; assert sys.flags.no_site"',
                  f"{python} -c \"import json; json.load(open('renderer.json'))\"",
                  "test -f main.py && test -f renderer.json && test -d ../site-packages"):
        result, report = verify(out, smoke)
        assert result.code == 0, (smoke, report)
    result, report = verify(out, f'{python} -c "import pytest"')
    assert result.code == 3, f"the host's pytest was importable under verify: {report}"
    assert "pytest" in report["missing"], report


def test_verify_ignores_the_callers_pythonpath(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = good_python_out(tmp_path)
    leak = tmp_path / "leak"
    write_files(leak, {"leaky_module.py": "VALUE = 1\n"})
    monkeypatch.setenv("PYTHONPATH", str(leak))
    monkeypatch.setenv("PYTHONUSERBASE", str(leak))
    result, report = verify(out, 'python3 -c "import leaky_module"')
    assert result.code == 3, f"the caller's PYTHONPATH leaked into verify: {report}"
    assert "leaky_module" in report["missing"], report
    result, report = verify(out, PY_SMOKE)         # and the pruned tree still works
    assert result.code == 0, report


LEAKY_PACKAGE = {"package.json": json.dumps({"name": "leaky-pkg", "version": "1.0.0", "main": "index.js"}),
                 "index.js": "module.exports = 42;\n"}
LEAKY_SMOKE = "node -e \"require('leaky-pkg')\""


@needs_node
@pytest.mark.parametrize("where", ["NODE_PATH", "HOME/.node_modules", "node_modules above OUT"])
def test_verify_hides_node_modules_outside_the_tree(where: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    app = node_app(tmp_path)
    outer = tmp_path / "outer"
    out = outer / "out"
    outer.mkdir()
    result, _ = prune(app, out, "--keep", NODE_KEEP)
    assert result.code == 0, result.err
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path / "empty-home")}
    if where == "NODE_PATH":
        write_files(tmp_path / "global" / "leaky-pkg", LEAKY_PACKAGE)
        env["NODE_PATH"] = str(tmp_path / "global")
        monkeypatch.setenv("NODE_PATH", env["NODE_PATH"])
    elif where == "HOME/.node_modules":
        write_files(tmp_path / "home" / ".node_modules" / "leaky-pkg", LEAKY_PACKAGE)
        env["HOME"] = str(tmp_path / "home")
        monkeypatch.setenv("HOME", env["HOME"])
    else:
        write_files(outer / "node_modules" / "leaky-pkg", LEAKY_PACKAGE)
    # the premise: plain node, run where verify runs it, does find the package
    plain = subprocess.run(["node", "-e", "require('leaky-pkg')"], cwd=out, env=env, capture_output=True,
                           text=True, timeout=60, check=False)
    assert plain.returncode == 0, plain.stderr
    result, report = verify(out, LEAKY_SMOKE)
    assert result.code == 3, f"leaky-pkg from {where} was visible under verify: {report}"
    assert mentions(report["missing"], "leaky-pkg"), report
    result, report = verify(out, NODE_SMOKE)       # the pruned tree itself still works
    assert result.code == 0, report


# --- bounded time ------------------------------------------------------------------------

@pytest.fixture
def marker_processes() -> Iterator[str]:
    """A unique `sleep` argument; any process still carrying it afterwards is killed (by pid)."""
    marker = f"{time.time_ns() % 10**6 / 10**3 + 500:.3f}"        # e.g. 612.345 seconds
    yield marker
    for pid in processes_with(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def processes_with(argument: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if args[:1] == [b"sleep"] or args[:1] == [b"/usr/bin/sleep"] or args[:1] == [b"/bin/sleep"]:
            if argument.encode() in args:
                pids.append(int(entry.name))
    return pids


@pytest.mark.parametrize("shape", ["foreground", "background-child"])
def test_verify_times_out_and_kills_the_whole_command(shape: str, marker_processes: str,
                                                      tmp_path: Path) -> None:
    out = good_python_out(tmp_path)
    smoke = {"foreground": f"sleep {marker_processes}",
             "background-child": f"sleep {marker_processes} & sleep {marker_processes}; wait"}[shape]
    start = time.monotonic()
    result = run_cli("verify", out, "--smoke", smoke, "--timeout", "3", "--format", "json", timeout=120)
    elapsed = time.monotonic() - start
    assert_no_traceback(result)
    assert result.code == 3, result
    report = result.json()
    check_verify(report, passed=False)
    assert report["timed_out"] is True and report["exit_code"] is None, report
    assert elapsed < 30, f"verify --timeout 3 took {elapsed:.1f}s"
    time.sleep(0.5)
    assert processes_with(marker_processes) == [], "the smoke command outlived verify"


def test_verify_passes_a_command_that_exits_0_leaving_a_background_process(
        marker_processes: str, tmp_path: Path) -> None:
    """`CMD exits 0 within the timeout` is a pass, even if CMD left a child holding the output
    pipe (a server started with &): verify must not wait for that child, and must not leave it."""
    out = good_python_out(tmp_path)
    start = time.monotonic()
    result = run_cli("verify", out, "--smoke", f"sleep {marker_processes} & echo started",
                     "--timeout", "20", "--format", "json", timeout=120)
    elapsed = time.monotonic() - start
    assert_no_traceback(result)
    report = result.json()
    assert result.code == 0 and report["passed"] and not report["timed_out"], (elapsed, report)
    assert "started" in report["output_tail"]
    assert elapsed < 15, f"verify waited {elapsed:.1f}s for a background child"
    time.sleep(0.5)
    assert processes_with(marker_processes) == [], "the smoke command's child outlived verify"


# --- 3. a library that says in its own words which package it could not find -------------------

PINO_PACKAGE = {"name": "log-app", "version": "1.0.0", "private": True, "main": "main.js",
                "dependencies": {"pino": "^9.0.0", "pino-pretty": "^13.0.0"}}
PINO_FILES = {
    "main.js": """\
'use strict';
// The log transport is named in log.json, read at run time: pino resolves it in a worker thread
// and, when it is missing, throws its own message rather than node's "Cannot find module".
const fs = require('fs');
const path = require('path');
const pino = require('pino');

const config = JSON.parse(fs.readFileSync(path.join(__dirname, 'log.json'), 'utf8'));
const logger = pino({ transport: { target: config.transport, options: { colorize: false, destination: 1 } } });
logger.info('pretty hello');
""",
    "log.json": json.dumps({"transport": "pino-pretty"}) + "\n",
}


@needs_node
def test_node_repair_reads_a_librarys_own_missing_message(tmp_path: Path) -> None:
    """pino says `unable to determine transport target for "pino-pretty"`: verify must name
    pino-pretty (not the `${origin}` of the source line node prints above it), and --repair must
    bring it back in one round."""
    app = write_files(copy_installed(PINO_PACKAGE, tmp_path / "app"), PINO_FILES)
    result, report = prune(app, tmp_path / "static", "--smoke", "node main.js")
    assert result.code == 3, result.err
    assert report["verify"]["missing"] == ["pino-pretty"], report["verify"]
    result, report = prune(app, tmp_path / "repaired", "--smoke", "node main.js", "--repair")
    assert result.code == 0, (result.err, report.get("verify"), report.get("repair"))
    assert report["repair"]["rounds"] == 1, report["repair"]
    assert "INFO" in report["verify"]["output_tail"] and "pretty hello" in report["verify"]["output_tail"]
