"""schema/microprune-output.schema.json describes what every command prints with --format json:
checked here against real output of every command, in both languages, passing and failing."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.cases import FIXTURES, copy_case
from tests.cli.helpers import run_cli
from tests.image.helpers import build, write_node_app, write_python_app

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema" / "microprune-output.schema.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def check(validator: jsonschema.Draft202012Validator, document: Any) -> None:
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])


def cli_json(*args: Any, codes: tuple[int, ...] = (0,)) -> Any:
    result = run_cli(*args, "--format", "json", timeout=600)
    assert result.code in codes, result.err
    return result.json()


@pytest.fixture(scope="module", params=["python", "node"])
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, Path]:
    root = copy_case(FIXTURES / request.param / "basic", tmp_path_factory.mktemp(request.param))
    return request.param, root / "app", root / "deps"


def deps_args(language: str, deps: Path) -> list[Any]:
    return ["--deps", deps]


def test_analyze_report_prune_and_out_marker(validator: Any, case: tuple[str, Path, Path], tmp_path: Path) -> None:
    language, app, deps = case
    analyzed = cli_json("analyze", app, *deps_args(language, deps))
    check(validator, analyzed)
    reported = cli_json("report", app, *deps_args(language, deps), "--html", tmp_path / "r.html",
                        "--sbom", tmp_path / "s.json")
    check(validator, reported)
    assert reported["html"] and reported["sbom"]
    pruned = cli_json("prune", app, *deps_args(language, deps), "--out", tmp_path / "out")
    check(validator, pruned)
    check(validator, json.loads((tmp_path / "out" / "microprune.json").read_text(encoding="utf-8")))


def test_why_in_all_three_outcomes(validator: Any, case: tuple[str, Path, Path]) -> None:
    language, app, deps = case
    kept_name = "greet" if language == "python" else "a"
    dropped_name = "other" if language == "python" else "unused"
    for name in (kept_name, dropped_name, "no-such-thing-at-all"):
        unknown = name == "no-such-thing-at-all"
        report = cli_json("why", app, name, *deps_args(language, deps), codes=(1,) if unknown else (0,))
        check(validator, report)
        assert report["found"] == (name != "no-such-thing-at-all")


def test_verify_passing_and_failing_and_prune_smoke(validator: Any, case: tuple[str, Path, Path],
                                                    tmp_path: Path) -> None:
    language, app, deps = case
    out = tmp_path / "out"
    cli_json("prune", app, *deps_args(language, deps), "--out", out)
    good = "true"
    bad = ("python3 -c 'import surely_not_installed_module'" if language == "python"
           else "node -e \"require('surely-not-installed')\"")
    passed = cli_json("verify", out, "--smoke", good)
    failed = cli_json("verify", out, "--smoke", bad, codes=(3,))
    assert passed["passed"] and not failed["passed"] and failed["missing"]
    for report in (passed, failed):
        check(validator, report)
    smoked = cli_json("prune", app, *deps_args(language, deps), "--out", out, "--force", "--smoke", bad,
                      codes=(3,))
    check(validator, smoked)
    assert smoked["verify"]["passed"] is False


def test_trace_and_profile(validator: Any, case: tuple[str, Path, Path], tmp_path: Path) -> None:
    language, app, deps = case
    entry = app / ("app.py" if language == "python" else "server.js")
    check(validator, cli_json("trace", entry, "--deps", deps))
    run = "python3 app.py" if language == "python" else "node -e \"require('a')\""
    profile = cli_json("trace", app, "--deps", deps, "--run", run, "--out", tmp_path / "profile.json")
    check(validator, profile)
    check(validator, json.loads((tmp_path / "profile.json").read_text(encoding="utf-8")))


@pytest.mark.parametrize("language", ["python", "node"])
def test_image(validator: Any, language: str, tmp_path: Path) -> None:
    if language == "python":
        app, deps = write_python_app(tmp_path / "src")
        report = build(app, tmp_path / "app.tar", deps=deps)
    else:
        report = build(write_node_app(tmp_path / "src"), tmp_path / "app.tar")
    check(validator, report)
    assert report["image"]["sbom"] == "/usr/share/microprune/sbom.cdx.json"


def test_the_schema_rejects_what_it_should(validator: Any, case: tuple[str, Path, Path]) -> None:
    """The schema is not vacuous: real output with a required key removed or a wrong type fails."""
    language, app, deps = case
    report = cli_json("analyze", app, *deps_args(language, deps))
    for damage in ("drop-totals", "string-bytes", "unknown-command", "file-without-reasons", "bad-version"):
        broken = copy.deepcopy(report)
        if damage == "drop-totals":
            del broken["totals"]
        elif damage == "string-bytes":
            broken["distributions"][0]["kept_bytes"] = "12"
        elif damage == "unknown-command":
            broken["command"] = "frobnicate"
        elif damage == "file-without-reasons":
            broken["files"][0]["reasons"] = []
        else:
            broken["schema_version"] = 2
        assert list(validator.iter_errors(broken)), damage
