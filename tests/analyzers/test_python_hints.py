"""Every entry of the Python hint table is exercised by a fixture case, and has an effect."""
from __future__ import annotations

from pathlib import Path

import pytest

from microprune_analyzers.python.hints import load_conventions, load_hints, load_virtuals
from tests.cases import actual_result, analyze_case, case_dirs, copy_case, load_case

HINT_CASES = [c for c in case_dirs("python") if "exercises_hint" in load_case(c)]


def test_every_hint_has_a_case() -> None:
    covered: set[str] = set()
    for case in HINT_CASES:
        named = load_case(case)["exercises_hint"]
        covered.update([named] if isinstance(named, str) else named)
    table = set(load_hints()) | {name for name, v in load_virtuals().items() if v.provider} \
        | {f"convention:{c.when}" for c in load_conventions()}
    assert table <= covered, f"hints without a fixture case: {sorted(table - covered)}"


@pytest.mark.parametrize("case", HINT_CASES, ids=lambda p: p.name)
def test_hint_keeps_what_it_names(case: Path, tmp_path: Path) -> None:
    options = load_case(case)
    root = copy_case(case, tmp_path)
    analysis = analyze_case(root, options)
    hinted = {d.path for d in analysis.plan.decisions if d.keep and {"hint", "system-fallback"} & set(d.reasons)}
    assert hinted, f"{case.name}: nothing is kept because of a hint"
    with_hints = actual_result(root, options)
    without = actual_result(root, options, use_hints=False)
    lost = set(with_hints["keep"]) - set(without["keep"])
    # A hint may double a rule that already keeps the file (certifi's cacert.pem is package
    # data too); the case says so with `redundant = true`. Otherwise the hint must be the
    # only reason for a kept file, or (a [[virtual]] module) the only thing between the
    # user and a false warning.
    if not options.get("redundant", False):
        assert lost or without["warnings"] != with_hints["warnings"], f"{case.name}: the hint changes nothing"
