"""`why NAME`: the chain of files (file:line) from an entry to what keeps NAME."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .analyzer import Session
from .model import Parent, Reason
from .paths import display
from .plan import PrunePlan
from .trace import Trace


@dataclass(frozen=True)
class Link:
    path: Path
    via: Parent


def explain(trace: Trace, path: Path) -> list[Link]:
    """Follow each file's first parent (its discoverer: the loop is breadth-first)."""
    chain: list[Link] = []
    seen: set[Path] = set()
    current: Path | None = path
    while current is not None and current not in seen:
        seen.add(current)
        prov = trace.kept.get(current)
        if prov is None or not prov.parents:
            break
        parent = prov.parents[0]
        chain.append(Link(current, parent))
        current = parent.path
    chain.reverse()
    return chain


def why_report(session: Session, trace: Trace, plan: PrunePlan, name: str, candidates: list[Path]) -> dict[str, Any]:
    kept = [p for p in candidates if p in trace.kept]
    # The file that pulled the name in first is the most telling one.
    kept.sort(key=lambda p: trace.kept[p].order)
    report: dict[str, Any] = {"schema_version": 1, "command": "why", "name": name, "found": bool(candidates),
                              "kept": bool(kept), "path": None, "root": None, "chain": [], "also_kept_by": 0}
    if kept:
        target = kept[0]
        report["path"], report["root"] = _where(session, target)
        report["chain"] = [_link(session, link) for link in explain(trace, target)]
        report["also_kept_by"] = max(0, trace.parent_counts.get(target, 1) - 1)
        report["reasons"] = sorted(r.value for r in trace.kept[target].reasons)
    elif candidates:
        decisions = {d.path: d for d in plan.decisions}
        first = decisions.get(candidates[0])
        report["path"], report["root"] = _where(session, candidates[0])
        report["dropped_because"] = list(first.reasons) if first else []
        unrun = trace.unprofiled.get(candidates[0])
        if unrun is not None and report["dropped_because"] == [Reason.UNPROFILED.value]:
            # --trust-profile: the reference that could have loaded it, which no recorded run took
            report["unrun_reference"] = _link(session, Link(candidates[0], unrun))
    return report


def _where(session: Session, path: Path) -> tuple[str, str | None]:
    """(path relative to its root, root name) for people and scripts alike."""
    roots = sorted(session.inventory.roots.items(), key=lambda kv: len(kv[1].parts), reverse=True)
    for name, root in roots:
        if root in path.parents:
            return display(path.relative_to(root).as_posix()), name
    return display(path), None


def _link(session: Session, link: Link) -> dict[str, Any]:
    via = link.via
    file, root = _where(session, link.path)
    source, source_root = _where(session, via.path) if via.path else (None, None)
    return {"file": file, "root": root, "reason": via.reason.value, "detail": via.detail,
            "from": source, "from_root": source_root, "line": via.line}


def _label(path: str, root: str | None, line: int | None = None) -> str:
    return f"{path}{':' + str(line) if line else ''} ({root})" if root else path


def render_why_text(report: dict[str, Any]) -> str:
    name = report["name"]
    if not report["found"]:
        return f"{name}: no distribution, module or file of that name in the app or its deps\n"
    if not report["kept"]:
        reasons = ", ".join(report.get("dropped_because", [])) or "nothing reaches it"
        text = f"{name}: nothing keeps it; {_label(report['path'], report['root'])} is dropped ({reasons})\n"
        unrun = report.get("unrun_reference")
        if unrun:
            text += (f"  only {_label(unrun['from'], unrun['from_root'], unrun['line'])} may load it "
                     f"({' '.join(filter(None, (unrun['reason'], unrun['detail'])))}), and no recorded run did "
                     "(--trust-profile)\n")
        return text
    lines = [f"{name} is kept: {_label(report['path'], report['root'])} [{', '.join(report['reasons'])}]"]
    for step in report["chain"]:
        target = _label(step["file"], step["root"])
        if step["from"] is None:
            lines.append(f"  {step['reason']} {step['detail']}: {target}")
        else:
            detail = f" {step['detail']}" if step["detail"] else ""
            lines.append(f"  {_label(step['from'], step['from_root'], step['line'])}: {step['reason']}{detail}"
                         f" -> {target}")
    if report["also_kept_by"]:
        lines.append(f"  (and {report['also_kept_by']} other reference(s))")
    return "\n".join(lines) + "\n"
