"""Run one fixture case: fixtures/<lang>/<case>/{app/, deps/, case.toml, expected.json}.

All options live in case.toml; the runner never branches on a case's name.
On a mismatch it writes actual.json beside expected.json (gitignored).

case.toml keys (all optional):
  description     what behaviour the case pins down
  entries         list of --entry values
  keep            list of --keep patterns
  python_version  --python-version (default "3.11"; "" to test detection)
  node_version    --node-version for language = "node" (default "22.12.0")
  conditions      extra exports conditions (node)
  entries_only    --entries-only: the app's other code is not traced (cases about entry detection)
  deps            the deps directory inside the case (default "deps"; "" for none)
  language        --language
  exercises_hint  the hint (its `when`, or a [[virtual]] name) this case covers

expected.json: {"keep": ["app/<path>", "deps/<path>", ...] sorted,
                "warnings": ["<code> <root>/<path>:<line>", ...] sorted (optional-import misses left out)}
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

from microprune.analyzer import Request
from microprune.pipeline import analyze

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def case_dirs(language: str) -> list[Path]:
    return sorted(p for p in (FIXTURES / language).iterdir() if (p / "case.toml").is_file())


def load_case(case: Path) -> dict[str, Any]:
    return tomllib.loads((case / "case.toml").read_text(encoding="utf-8"))


def copy_case(case: Path, tmp_path: Path) -> Path:
    """Tests never run on the fixture itself: the tool must not need to write to its input."""
    dest = tmp_path / case.name
    shutil.copytree(case, dest, symlinks=True, ignore=shutil.ignore_patterns("actual.json", "expected.json"))
    return dest


def actual_result(root: Path, options: dict[str, Any], use_hints: bool = True) -> dict[str, list[str]]:
    analysis = analyze_case(root, options, use_hints)
    roots = analysis.session.inventory.roots
    keep = sorted(f"{d.root}/{d.path.relative_to(roots[d.root]).as_posix()}" for d in analysis.plan.decisions if d.keep)
    warnings = sorted(_warning(w, root) for w in analysis.plan.diagnostics if w.code != "unresolved-optional")
    return {"keep": keep, "warnings": warnings}


def analyze_case(root: Path, options: dict[str, Any], use_hints: bool = True) -> Any:
    deps_name = options.get("deps", "deps")
    request = Request(
        app_dir=root / "app",
        deps=(root / deps_name) if deps_name else None,
        entries=tuple(options.get("entries", ())),
        keep=tuple(options.get("keep", ())),
        target_version=_target_version(options),
        options={"use_hints": use_hints, "conditions": tuple(options.get("conditions", ())),
                 "entries_only": bool(options.get("entries_only", False))},
    )
    return analyze(request, options.get("language"))


def _target_version(options: dict[str, Any]) -> str | None:
    """Pinned unless a case tests detection (""): results must not depend on the host."""
    if options.get("language") == "node":
        return str(options.get("node_version", "22.12.0")) or None
    return str(options.get("python_version", "3.11")) or None


def _warning(diagnostic: Any, root: Path) -> str:
    where = ""
    if diagnostic.path is not None:
        where = diagnostic.path.relative_to(root).as_posix()
        if diagnostic.line:
            where += f":{diagnostic.line}"
    return f"{diagnostic.code} {where}".strip()


def run_case(case: Path, tmp_path: Path, update: bool) -> None:
    options = load_case(case)
    root = copy_case(case, tmp_path)
    actual = actual_result(root, options)
    expected_file = case / "expected.json"
    text = json.dumps(actual, indent=2, sort_keys=True) + "\n"
    if update:
        expected_file.write_text(text, encoding="utf-8")
        return
    expected = json.loads(expected_file.read_text(encoding="utf-8"))
    if actual != expected:
        (case / "actual.json").write_text(text, encoding="utf-8")
    assert actual["keep"] == expected["keep"], f"{case.name}: kept files differ (see actual.json)"
    assert actual["warnings"] == expected.get("warnings", []), f"{case.name}: warnings differ (see actual.json)"
