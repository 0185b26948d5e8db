"""Pure planning: (inventory, trace) -> keep or drop for every file, with reasons.

No disk access here; ``apply`` carries a plan out and ``report`` shows it.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from .analyzer import Session
from .model import Diagnostic, Reason
from .trace import Trace

UNOWNED = "(no distribution)"


@dataclass(frozen=True)
class Decision:
    path: Path
    root: str
    keep: bool
    size: int
    reasons: tuple[str, ...]
    package: str | None


@dataclass
class Totals:
    kept_bytes: int = 0
    dropped_bytes: int = 0
    kept_files: int = 0
    dropped_files: int = 0

    def add(self, decision: Decision) -> None:
        if decision.keep:
            self.kept_bytes += decision.size
            self.kept_files += 1
        else:
            self.dropped_bytes += decision.size
            self.dropped_files += 1


@dataclass
class PackageSummary(Totals):
    name: str = ""
    version: str = ""

    @property
    def used(self) -> bool:
        return self.kept_files > 0


@dataclass
class PrunePlan:
    decisions: list[Decision]
    packages: list[PackageSummary]
    totals: Totals
    app_totals: Totals
    deps_totals: Totals
    dir_links: list[Path]
    kept_dirs: list[Path]
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def kept(self) -> list[Decision]:
        return [d for d in self.decisions if d.keep]


def plan_prune(session: Session, trace: Trace) -> PrunePlan:
    inventory = session.inventory
    decisions = [_decide(session, trace, path) for path in inventory.files]
    decisions = _mark_unused_packages(decisions)
    decisions.sort(key=lambda d: (d.root, d.path.parts))    # Path order, compared in C
    totals, app_totals, deps_totals = Totals(), Totals(), Totals()
    packages = {p.name: PackageSummary(name=p.name, version=p.version) for p in session.packages()}
    for decision in decisions:
        totals.add(decision)
        (app_totals if decision.root == "app" else deps_totals).add(decision)
        if decision.root != "app":
            name = decision.package or UNOWNED
            packages.setdefault(name, PackageSummary(name=name)).add(decision)
    diagnostics = collect_diagnostics(session, trace)
    return PrunePlan(
        decisions=decisions,
        packages=sorted(packages.values(), key=lambda p: p.name.lower()),
        totals=totals, app_totals=app_totals, deps_totals=deps_totals,
        dir_links=sorted(trace.dir_links),
        kept_dirs=sorted(trace.kept_dirs),
        diagnostics=diagnostics,
    )


def collect_diagnostics(session: Session, trace: Trace) -> list[Diagnostic]:
    """Every warning of a run, from the walk, the analyzer and the trace: sorted, no repeats."""
    found = set(session.inventory.diagnostics) | set(session.diagnostics()) | set(trace.diagnostics)
    return sorted(found, key=_diagnostic_key)


def _decide(session: Session, trace: Trace, path: Path) -> Decision:
    info = session.inventory.files[path]
    package = session.package_of(path)
    name = package.name if package else None
    prov = trace.kept.get(path)
    if info.root == "app":
        drop = session.drop_reason(path)
        if drop in (Reason.BYTECODE, Reason.EXCLUDED):
            return Decision(path, info.root, False, info.size, (drop.value,), name)
        reasons = {Reason.APP} | (prov.reasons if prov else set())
        return Decision(path, info.root, True, info.size, _sorted(reasons), name)
    if prov is not None:
        return Decision(path, info.root, True, info.size, _sorted(prov.reasons), name)
    if path in trace.unprofiled and session.drop_reason(path) is Reason.UNREACHED:
        return Decision(path, info.root, False, info.size, (Reason.UNPROFILED.value,), name)
    return Decision(path, info.root, False, info.size, (session.drop_reason(path).value,), name)


def _mark_unused_packages(decisions: list[Decision]) -> list[Decision]:
    """A file of a package of which nothing is kept goes with the whole package."""
    used = {d.package for d in decisions if d.keep and d.package}
    unreached = (Reason.UNREACHED.value,)
    return [replace(d, reasons=(Reason.UNUSED_DIST.value,))
            if not d.keep and d.package and d.package not in used and d.reasons == unreached else d
            for d in decisions]


def _sorted(reasons: set[Reason]) -> tuple[str, ...]:
    return tuple(sorted(r.value for r in reasons))


def _diagnostic_key(d: Diagnostic) -> tuple[str, int, str, str]:
    return (str(d.path or ""), d.line or 0, d.code, d.message)
