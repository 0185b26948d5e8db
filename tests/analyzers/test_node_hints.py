"""Every entry of the Node hint table is exercised by a fixture case, and has an effect."""
from __future__ import annotations

from pathlib import Path

import pytest

from microprune_analyzers.node.hints import load_by_extension, load_calls, load_hints, load_narrowings
from tests.cases import actual_result, analyze_case, case_dirs, copy_case, load_case

NARROW = "narrow:"
CALL = "call:"
BY_EXTENSION = "by-extension:"


def _named(case: Path) -> list[str]:
    named = load_case(case).get("exercises_hint", [])
    return [named] if isinstance(named, str) else list(named)


HINT_CASES = [c for c in case_dirs("node") if any(not n.startswith((NARROW, CALL, BY_EXTENSION)) for n in _named(c))]
NARROW_CASES = [c for c in case_dirs("node") if any(n.startswith(NARROW) for n in _named(c))]
CALL_CASES = [c for c in case_dirs("node") if any(n.startswith((CALL, BY_EXTENSION)) for n in _named(c))]


def test_every_hint_has_a_case() -> None:
    covered = {name for case in HINT_CASES + NARROW_CASES + CALL_CASES for name in _named(case)}
    table = set(load_hints()) | {NARROW + package for package in load_narrowings()} \
        | {rule.name for rule in load_calls()} | {rule.name for rule in load_by_extension()}
    assert table <= covered, f"hints without a fixture case: {sorted(table - covered)}"
    assert covered <= table, f"cases naming a hint the table does not have: {sorted(covered - table)}"


@pytest.mark.parametrize("case", HINT_CASES, ids=lambda p: p.name)
def test_hint_keeps_what_it_names(case: Path, tmp_path: Path) -> None:
    """A [[hint]] only ever adds files, and at least one kept file is there because of it
    alone: a case whose code already reaches what the hint names would not show it working."""
    options = load_case(case)
    root = copy_case(case, tmp_path)
    analysis = analyze_case(root, options)
    hinted = {d.path for d in analysis.plan.decisions if d.keep and "hint" in d.reasons}
    assert hinted, f"{case.name}: nothing is kept because of a hint"
    with_hints = set(actual_result(root, options)["keep"])
    without = set(actual_result(root, options, use_hints=False)["keep"])
    assert with_hints - without, f"{case.name}: the hint changes nothing"
    assert not without - with_hints, f"{case.name}: a hint drops {sorted(without - with_hints)}"


@pytest.mark.parametrize("case", NARROW_CASES, ids=lambda p: p.name)
def test_narrowing_drops_what_the_code_does_not_name(case: Path, tmp_path: Path) -> None:
    """A [[narrow]] entry only ever removes matches of a glob: without it more is kept."""
    options = load_case(case)
    root = copy_case(case, tmp_path)
    with_hints = set(actual_result(root, options)["keep"])
    without = set(actual_result(root, options, use_hints=False)["keep"])
    assert with_hints < without, f"{case.name}: narrowing drops nothing (or adds {sorted(with_hints - without)})"


@pytest.mark.parametrize("case", CALL_CASES, ids=lambda p: p.name)
def test_call_rule_keeps_the_modules_its_arguments_name(case: Path, tmp_path: Path) -> None:
    """A [[call]] entry only ever adds what the call's arguments name: without the table less is kept."""
    options = load_case(case)
    root = copy_case(case, tmp_path)
    with_hints = set(actual_result(root, options)["keep"])
    without = set(actual_result(root, options, use_hints=False)["keep"])
    assert with_hints > without, f"{case.name}: the call rule adds nothing (or drops {sorted(without - with_hints)})"


def test_call_rules_are_read_as_documented() -> None:
    rules = {rule.name: rule for rule in load_calls()}
    express = rules["call:express().set"]
    assert express.callee == ("().set",) and express.match == ((0, "view engine"),) and express.unless == "().engine"
    assert rules["call:pino.transport"].require[0] == "0.target"
