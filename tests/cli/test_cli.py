"""The command-line contract that scripts rely on: options, JSON, exit codes, OUT handling."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cases import FIXTURES, copy_case
from tests.cli.helpers import assert_no_traceback, basic_app, run_cli, snapshot

TOTAL_KEYS = {"kept_bytes", "dropped_bytes", "kept_files", "dropped_files"}


ALL_COMMANDS = ("analyze", "prune", "why", "trace", "image", "run", "verify", "report")


def test_help_teaches_every_command() -> None:
    top = run_cli("--help")
    assert top.code == 0
    listed = {line.split()[0] for line in top.out.split("Commands:", 1)[1].splitlines() if line.strip()}
    assert listed == set(ALL_COMMANDS), listed          # a new command must join this test
    assert "3 verification failed" in " ".join(top.out.split())
    for command in ALL_COMMANDS:
        result = run_cli(command, "--help")
        assert result.code == 0
        examples = result.out.split("Examples:", 1)
        assert len(examples) == 2 and f"microprune {command}" in examples[1], command
    for command in ("analyze", "prune", "why", "image", "report"):
        assert "--deps" in run_cli(command, "--help").out


def test_version() -> None:
    result = run_cli("--version")
    assert result.code == 0 and "microprune" in result.out


def test_analyze_json_contract(tmp_path: Path) -> None:
    app, deps = basic_app(tmp_path)
    result = run_cli("analyze", app, "--deps", deps, "--format", "json")
    assert result.code == 0, result.err
    report = result.json()
    assert report["schema_version"] == 1
    assert report["language"] == "python"
    assert report["entries"][0]["spec"] == "app.py"
    assert set(report["totals"]) == TOTAL_KEYS
    rows = {row["name"]: row for row in report["distributions"]}
    assert rows["greet"]["used"] is True and rows["greet"]["version"] == "1.0"
    assert rows["other"]["used"] is False and rows["other"]["kept_bytes"] == 0
    assert rows["other"]["dropped_bytes"] > 0
    deps_totals = report["deps_totals"]
    assert deps_totals["kept_bytes"] == sum(r["kept_bytes"] for r in rows.values())
    assert deps_totals["dropped_files"] == sum(r["dropped_files"] for r in rows.values())
    assert report["totals"]["kept_files"] == deps_totals["kept_files"] + report["app_totals"]["kept_files"]
    kept = {f["path"]: f["reasons"] for f in report["files"] if f["keep"]}
    assert kept["greet/core.py"] == ["import"]
    assert "metadata" in kept["greet-1.0.dist-info/METADATA"]
    assert "app_out" not in report


def test_analyze_json_is_byte_stable(tmp_path: Path) -> None:
    app, deps = basic_app(tmp_path)
    first = run_cli("analyze", app, "--deps", deps, "--format", "json").out
    second = run_cli("analyze", app, "--deps", deps, "--format", "json").out
    assert first == second
    # Canonical: sorted keys, indented, and each row of "files" on one line of its own.
    report = json.loads(first)
    rows = [json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(", ", ": ")) for row in report["files"]]
    assert len(rows) > 3
    expected = json.dumps({**report, "files": []}, indent=2, sort_keys=True, ensure_ascii=False)
    expected = expected.replace('\n  "files": [],', '\n  "files": [\n' + ",\n".join("    " + r for r in rows) + "\n  ],")
    assert first == expected + "\n"
    assert sum(line.startswith('    {"bytes": ') for line in first.splitlines()) == len(rows)


def test_output_does_not_depend_on_creation_order(tmp_path: Path) -> None:
    """The same tree created in another order (other inode and readdir order) reports the same."""
    app, deps = basic_app(tmp_path / "a")
    mirror = tmp_path / "b" / "basic"
    for source in sorted(p for p in (tmp_path / "a" / "basic").rglob("*") if p.is_file())[::-1]:
        target = mirror / source.relative_to(tmp_path / "a" / "basic")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    one = run_cli("analyze", app, "--deps", deps, "--format", "json").json()
    two = run_cli("analyze", mirror / "app", "--deps", mirror / "deps", "--format", "json").json()
    for report in (one, two):
        del report["app"], report["deps"]
    assert one == two


def test_prune_writes_runnable_tree_and_never_touches_input(tmp_path: Path) -> None:
    app, deps = basic_app(tmp_path)
    before = snapshot(app.parent)
    out = tmp_path / "out"
    result = run_cli("prune", app, "--deps", deps, "--out", out, "--format", "json")
    assert result.code == 0, result.err
    report = result.json()
    assert Path(report["app_out"]) == out / "app" and Path(report["deps_out"]) == out / "site-packages"
    assert (out / "site-packages" / "greet" / "core.py").is_file()
    assert not (out / "site-packages" / "greet" / "unused.py").exists()
    assert not (out / "site-packages" / "other").exists()
    assert json.loads((out / "microprune.json").read_text()) == report
    run = subprocess.run([sys.executable, "-S", str(out / "app" / "app.py")], capture_output=True, text=True,
                         env={"PYTHONPATH": report["deps_out"], "PATH": os.environ["PATH"]}, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "hello X"
    assert snapshot(app.parent) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["basic", "out"]   # nothing else written


def test_prune_refuses_non_empty_out_without_force(tmp_path: Path) -> None:
    app, deps = basic_app(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    refused = run_cli("prune", app, "--deps", deps, "--out", out)
    assert refused.code == 1
    assert "not empty" in refused.err and "--force" in refused.err
    assert (out / "precious.txt").read_text() == "keep me"
    forced = run_cli("prune", app, "--deps", deps, "--out", out, "--force")
    assert forced.code == 0, forced.err
    assert not (out / "precious.txt").exists()
    assert (out / "site-packages" / "greet" / "__init__.py").is_file()


@pytest.mark.parametrize("where", ["app", "parent", "deps"])
def test_prune_refuses_out_overlapping_input(tmp_path: Path, where: str) -> None:
    app, deps = basic_app(tmp_path)
    out = {"app": app, "parent": app.parent, "deps": deps / "sub"}[where]
    before = snapshot(app.parent)
    result = run_cli("prune", app, "--deps", deps, "--out", out, "--force")
    assert result.code == 1
    assert result.err.startswith("microprune: error: --out")
    assert snapshot(app.parent) == before


def test_out_inside_app_is_left_out_of_the_copy(tmp_path: Path) -> None:
    app, deps = basic_app(tmp_path)
    out = app / "dist" / "pruned"
    first = run_cli("prune", app, "--deps", deps, "--out", out)
    assert first.code == 0, first.err
    again = run_cli("prune", app, "--deps", deps, "--out", out, "--force")
    assert again.code == 0, again.err
    assert not (out / "app" / "dist").exists()
    other = app / "dist" / "second"             # a new OUT: the earlier one is not app code
    assert run_cli("prune", app, "--deps", deps, "--out", other).code == 0
    assert not (other / "app" / "dist").exists()


def test_why_distribution_module_file_and_nothing(tmp_path: Path) -> None:
    app, deps = basic_app(tmp_path)
    dist = run_cli("why", app, "greet", "--deps", deps)
    assert dist.code == 0 and "greet is kept" in dist.out
    assert "app.py:1 (app): import greet -> greet/__init__.py (deps)" in dist.out
    module = run_cli("why", app, "greet.core", "--deps", deps, "--format", "json").json()
    assert module["kept"] is True and (module["path"], module["root"]) == ("greet/core.py", "deps")
    assert [step["from"] for step in module["chain"]] == [None, "app.py", "greet/__init__.py"]
    assert module["chain"][-1]["line"] == 1
    unused = run_cli("why", app, "other", "--deps", deps)
    assert unused.code == 0 and "nothing keeps it" in unused.out and "unused-distribution" in unused.out
    missing = run_cli("why", app, "no_such_thing", "--deps", deps)
    assert missing.code == 1 and "no distribution, module or file" in missing.out


def test_keep_pattern_and_config_file(tmp_path: Path) -> None:
    app, deps = basic_app(tmp_path)
    (app / "pyproject.toml").write_text('[tool.microprune]\nentry = ["app.py"]\nkeep = ["other"]\ndeps = "../deps"\n')
    report = run_cli("analyze", app, "--format", "json").json()
    rows = {r["name"]: r for r in report["distributions"]}
    assert rows["other"]["used"] is True
    assert report["entries"][0]["origin"].endswith("pyproject.toml [tool.microprune]")


@pytest.mark.parametrize("args, message", [
    (["--deps", "/nonexistent/deps"], "does not exist"),
    (["--entry", "nope.py"], "no such file"),
    (["--entry", "no.such.module"], "not a file in the app"),
    (["--python-version", "2.7"], "not a Python 3 version"),
    (["--language", "cobol"], "unknown language"),
])
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    app, deps = basic_app(tmp_path)
    full = ["analyze", app, *(["--deps", deps] if "--deps" not in args else []), *args]
    result = run_cli(*full)
    assert result.code == 2, (result.code, result.err)
    assert message in result.err
    assert_no_traceback(result)


@pytest.mark.parametrize("seconds", ["nan", "inf", "0", "-1", "1e300", "soon"])
def test_a_timeout_must_be_a_positive_finite_number_of_seconds(tmp_path: Path, seconds: str) -> None:
    """nan or inf would never stop a hung smoke command; 0 or -1 would stop every one at once."""
    app, deps = basic_app(tmp_path)
    marker = tmp_path / "ran"
    for command in (["verify", app, "--smoke", f"touch {marker}"],
                    ["trace", app, "--deps", deps, "--run", f"touch {marker}", "--out", tmp_path / "p.json"],
                    ["prune", app, "--deps", deps, "--out", tmp_path / "out", "--smoke", f"touch {marker}"]):
        result = run_cli(*command, "--timeout", seconds)
        assert result.code == 2, (command, result.code, result.err)
        assert "Invalid value for '--timeout'" in result.err
        assert_no_traceback(result)
    assert not marker.exists()


def test_no_deps_and_no_venv_is_a_usage_error(tmp_path: Path) -> None:
    app, _ = basic_app(tmp_path)
    result = run_cli("analyze", app)
    assert result.code == 2
    assert "--deps" in result.err


def test_venv_inside_app_is_found_and_not_copied(tmp_path: Path) -> None:
    app, deps = basic_app(tmp_path)
    site = app / ".venv" / "lib" / "python3.11" / "site-packages"
    site.parent.mkdir(parents=True)
    shutil.copytree(deps, site)
    (app / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\nversion_info = 3.11.7\n")
    out = tmp_path / "out"
    result = run_cli("prune", app, "--out", out, "--format", "json")
    assert result.code == 0, result.err
    report = result.json()
    assert report["target"]["python_version_source"] == "pyvenv.cfg"
    assert not (out / "app" / ".venv").exists()
    assert (out / "site-packages" / "greet" / "core.py").is_file()


@pytest.mark.parametrize("text, message", [
    ("[tool.microprune]\nentrypoint = 'x'\n", "unknown key(s) entrypoint"),
    ("[tool.microprune\n", "cannot read"),
    ("[tool.microprune]\nkeep = 3\n", "keep must be"),
])
def test_bad_config_is_a_usage_error(tmp_path: Path, text: str, message: str) -> None:
    app, deps = basic_app(tmp_path)
    (app / "pyproject.toml").write_text(text)
    result = run_cli("analyze", app, "--deps", deps)
    assert result.code == 2
    assert message in result.err
    assert_no_traceback(result)


def test_trace_lists_files_and_missing_imports(tmp_path: Path) -> None:
    app, deps = basic_app(tmp_path)
    (app / "app.py").write_text("import greet\nimport greet.nothere\nimport nowhere\n")
    result = run_cli("trace", app / "app.py", "--deps", deps, "--format", "json")
    assert result.code == 0, result.err
    report = result.json()
    files = {Path(f).relative_to(tmp_path / "basic").as_posix() for f in report["files"]}
    assert {"app/app.py", "deps/greet/__init__.py", "deps/greet/core.py", "deps/greet"} <= files
    assert "deps/greet/unused.py" not in files
    assert report["missing"] == ["greet.nothere", "nowhere"]


def test_namespace_package_directory_is_written(tmp_path: Path) -> None:
    app, deps = basic_app(tmp_path)
    (deps / "nsonly").mkdir()
    (deps / "nsonly" / "notes.txt").write_text("not a module")
    (app / "app.py").write_text("import greet\nfrom nsonly import *\nprint(greet.hello())\n")
    out = tmp_path / "out"
    assert run_cli("prune", app, "--deps", deps, "--out", out).code == 0
    assert (out / "site-packages" / "nsonly").is_dir()
    run = subprocess.run([sys.executable, "-S", str(out / "app" / "app.py")], capture_output=True, text=True,
                         env={"PYTHONPATH": str(out / "site-packages")}, timeout=60)
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize("target", ["deps", "app"])
def test_out_through_a_symlink_never_reaches_the_input(tmp_path: Path, target: str) -> None:
    app, deps = basic_app(tmp_path)
    link = tmp_path / "sneaky"
    os.symlink(deps if target == "deps" else app, link)
    before = snapshot(app.parent)
    # Through the link: the deps themselves, a package in them, a new dir in them; the app itself.
    outs = (link / "greet", link / "newdir", link) if target == "deps" else (link, link / ".." / "basic")
    for out in outs:
        result = run_cli("prune", app, "--deps", deps, "--out", out, "--force")
        assert result.code == 1, (out, result.out, result.err)
        assert "--out" in result.err
    assert snapshot(app.parent) == before


def test_force_never_replaces_the_current_directory(tmp_path: Path) -> None:
    app, deps = basic_app(tmp_path / "in")
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("mine")
    result = run_cli("prune", app, "--deps", deps, "--out", ".", "--force", cwd=work)
    assert result.code == 1 and "current or home directory" in result.err
    assert (work / "notes.txt").read_text() == "mine"


def test_two_prunes_write_identical_trees(tmp_path: Path) -> None:
    """Bytecode included: .pyc files must not embed where OUT (or its staging dir) was."""
    app, deps = basic_app(tmp_path)
    trees = []
    for name in ("one", "two"):
        out = tmp_path / name
        assert run_cli("prune", app, "--deps", deps, "--out", out).code == 0
        trees.append({k: v for k, v in snapshot(out).items() if k != os.fsencode("microprune.json").hex()})
    assert trees[0] == trees[1]
    assert any(bytes.fromhex(k).endswith(b".pyc") for k in trees[0])
    reports = [json.loads((tmp_path / n / "microprune.json").read_text()) for n in ("one", "two")]
    for report in reports:
        for key in ("app_out", "deps_out", "run"):
            report.pop(key)
    assert reports[0] == reports[1]


@pytest.mark.parametrize("config, message", [
    ({"entrypoint": "x"}, "unknown key(s) entrypoint; known keys: deps, entry, keep, language, node-version, python-version"),
    ({"keep": 3}, "keep must be a string or a list of strings"),
    ({"node-version": 22}, "node-version must be a string"),
])
def test_bad_package_json_config_is_a_usage_error(tmp_path: Path, config: dict[str, object], message: str) -> None:
    root = copy_case(FIXTURES / "node" / "basic", tmp_path)
    manifest = root / "app" / "package.json"
    data = json.loads(manifest.read_text())
    data["microprune"] = config
    manifest.write_text(json.dumps(data))
    result = run_cli("analyze", root / "app", "--deps", root / "deps")
    assert result.code == 2, result.err
    assert message in result.err and "package.json" in result.err
    assert_no_traceback(result)


def test_report_files_that_cannot_be_written_are_clear_errors(tmp_path: Path) -> None:
    app, deps = basic_app(tmp_path)
    out = tmp_path / "out"
    missing_dir = run_cli("prune", app, "--deps", deps, "--out", out, "--html", tmp_path / "nope" / "r.html")
    assert missing_dir.code == 2 and "--html" in missing_dir.err and "is not a directory" in missing_dir.err
    assert not out.exists()                              # refused before any work
    unwritable = run_cli("report", app, "--deps", deps, "--sbom", "/proc/sbom.json")
    assert unwritable.code == 1, unwritable.err
    assert unwritable.err.startswith("microprune: error: cannot write /proc/sbom.json")
    assert_no_traceback(unwritable)
    assert run_cli("report", app, "--deps", deps).code == 2       # nothing to write: usage error


def test_template_code_kept_as_data_gets_no_bytecode(tmp_path: Path) -> None:
    """alembic's templates/generic/env.py is copied by `alembic init`, never imported: a
    __pycache__ beside it would be copied into the user's project."""
    root = copy_case(FIXTURES / "python" / "data-templates-stubs-scripts", tmp_path)
    out = tmp_path / "out"
    result = run_cli("prune", root / "app", "--deps", root / "deps", "--out", out, "--python-version", "%d.%d"
                     % sys.version_info[:2])
    assert result.code == 0, result.err
    package = out / "site-packages" / "tmplpkg"
    assert (package / "templates" / "generic" / "env.py").is_file()
    assert not (package / "templates" / "generic" / "__pycache__").exists()
    assert list((package / "sansio" / "__pycache__").glob("app.*.pyc")), "imported code still gets bytecode"


def test_a_module_whose_name_is_no_identifier_is_still_compiled(tmp_path: Path) -> None:
    """rich imports _unicode_data/unicode15-0-0.py with import_module: data to the finder (no
    identifier), code to the app. Not a template: it gets its bytecode."""
    app, deps = basic_app(tmp_path)
    (deps / "greet" / "tables").mkdir()
    (deps / "greet" / "tables" / "__init__.py").write_text(
        "from importlib import import_module\nTABLE = import_module('.unicode15-0-0', __name__).TABLE\n")
    (deps / "greet" / "tables" / "unicode15-0-0.py").write_text("TABLE = [(0, 31, 0)]\n")
    (app / "app.py").write_text("import greet.tables\nprint(greet.tables.TABLE)\n")
    out = tmp_path / "out"
    result = run_cli("prune", app, "--deps", deps, "--out", out, "--python-version", "%d.%d" % sys.version_info[:2],
                     "--smoke", "python3 app.py")
    assert result.code == 0, result.out + result.err
    cache = out / "site-packages" / "greet" / "tables" / "__pycache__"
    assert list(cache.glob("unicode15-0-0.*.pyc")), sorted(p.name for p in cache.iterdir())
