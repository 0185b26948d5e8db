"""Reports: a plan as sorted, stable JSON (schema_version 1) or as text for people.

Renderers are pure: they take data and return a string.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from . import __version__
from .analyzer import Session
from .model import Diagnostic, Entry, Reason
from .paths import display
from .plan import PrunePlan, Totals

SCHEMA_VERSION = 1
MAX_TEXT_WARNINGS = 15
QUIET_CODES = frozenset({"unresolved-optional"})


def build_report(command: str, session: Session, entries: list[Entry], plan: PrunePlan,
                 extra: dict[str, Any] | None = None) -> dict[str, Any]:
    roots = session.inventory.roots
    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "microprune", "version": __version__},
        "command": command,
        "language": session.language,
        "app": display(session.app_root),
        "deps": display(session.deps_root) if session.deps_root else None,
        "target": session.describe(),
        "entries": [_entry(e, roots) for e in entries],
        "totals": _totals(plan.totals),
        "app_totals": _totals(plan.app_totals),
        "deps_totals": _totals(plan.deps_totals),
        "distributions": [
            {"name": p.name, "version": p.version, "used": p.used,
             "kept_bytes": p.kept_bytes, "dropped_bytes": p.dropped_bytes,
             "kept_files": p.kept_files, "dropped_files": p.dropped_files}
            for p in plan.packages],
        "warnings": [_diagnostic(d) for d in plan.diagnostics],
        "files": [
            {"root": d.root, "path": display(str(d.path)[len(str(roots[d.root])) + 1:]),
             "keep": d.keep, "bytes": d.size, "reasons": list(d.reasons), "distribution": d.package}
            for d in plan.decisions],
    }
    report.update(extra or {})
    return report


def _entry(entry: Entry, roots: dict[str, Path]) -> dict[str, Any]:
    return {"spec": entry.spec, "kind": entry.kind, "origin": entry.origin,
            "files": [_relative(f, roots) for f in entry.files]}


def _relative(path: Path, roots: dict[str, Path]) -> str:
    for root in sorted(roots.values(), key=lambda r: len(r.parts), reverse=True):
        if root in path.parents:
            return display(path.relative_to(root).as_posix())
    return display(path)


def _totals(totals: Totals) -> dict[str, int]:
    return {"kept_bytes": totals.kept_bytes, "dropped_bytes": totals.dropped_bytes,
            "kept_files": totals.kept_files, "dropped_files": totals.dropped_files}


def _diagnostic(d: Diagnostic) -> dict[str, Any]:
    return {"code": d.code, "message": d.message, "file": display(d.path) if d.path else None, "line": d.line}


_FILES_PLACEHOLDER = "\x00files\x00"     # a NUL is escaped in JSON: no value can print like it


def render_json(report: dict[str, Any]) -> str:
    """Sorted, indented JSON; the per-file rows one per line (a report lists every file
    of the deps: indenting each row would make it 7 lines per file, and json's indenting
    encoder is pure Python, about 8x slower than its compact one)."""
    files = report.get("files")
    if not isinstance(files, list) or not files:
        return json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    text = json.dumps({**report, "files": _FILES_PLACEHOLDER}, indent=2, sort_keys=True, ensure_ascii=False)
    rows = ",\n".join("    " + json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))
                      for row in files)
    return text.replace(json.dumps(_FILES_PLACEHOLDER), "[\n" + rows + "\n  ]", 1) + "\n"


# -- text ------------------------------------------------------------------------------

def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def render_text(report: dict[str, Any], color: bool = False) -> str:
    lines = [_headline(report)]
    for entry in report["entries"]:
        lines.append(f"entry: {entry['spec']} ({entry['kind']}, from {entry['origin']})")
    lines.append("")
    lines.append(distribution_table(report["distributions"], color).rstrip("\n"))
    lines.append("")
    lines.extend(_totals_lines(report))
    if report.get("app_out"):
        lines.append(f"wrote app to  {report['app_out']}")
        lines.append(f"wrote deps to {report['deps_out']}")
        bytecode = report.get("bytecode")
        if bytecode:
            detail = (f"{bytecode['compiled']} .pyc, {human_bytes(bytecode['bytes'])}" if bytecode["policy"] == "compile"
                      else bytecode.get("why", "none"))
            lines.append(f"bytecode:     {detail}")
        strip = report.get("strip")
        if strip:
            lines.append(f"strip:        {strip.get('why') or str(strip['stripped']) + ' shared objects, saved ' + human_bytes(strip['saved_bytes'])}")
        for run in report.get("run", []):
            lines.append(f"run {run['entry']}: {run['command']}")
        lines.extend(_verify_lines(report))
    return "\n".join(lines) + "\n"


def _verify_lines(report: dict[str, Any]) -> list[str]:
    lines = []
    verify, repair = report.get("verify"), report.get("repair")
    if repair and repair["added"]:
        lines.append(f"repair:       {repair['rounds']} round(s), kept {', '.join(repair['added'])}"
                     + (f"; written to {repair['written_to']}" if repair.get("written_to") else ""))
    if repair and repair.get("stopped"):
        lines.append(f"repair:       gave up: {repair['stopped']}")
    if verify:
        state = "passed" if verify["passed"] else ("timed out" if verify["timed_out"]
                                                   else f"FAILED (exit {verify['exit_code']})")
        lines.append(f"smoke {state}: {verify['smoke']}")
        if verify["missing"]:
            lines.append(f"  missing: {', '.join(verify['missing'])}")
        if not verify["passed"]:
            lines.extend("  | " + line for line in verify["output_tail"].splitlines()[-12:])
    return lines


def _headline(report: dict[str, Any]) -> str:
    runtime = report["target"].get("runtime")
    where = f"deps {report['deps']}" if report["deps"] else "no deps directory"
    detail = f", {runtime}" if runtime else ""
    return f"{report['language']} app {report['app']}; {where}{detail}"


MAX_TABLE_ROWS = 40


def distribution_table(rows: list[dict[str, Any]], color: bool = False) -> str:
    """Per distribution, by kept bytes (then dropped), rendered by rich; colour only for a terminal."""
    if not rows:
        return "(no distributions installed)\n"
    import io

    from rich import box
    from rich.console import Console
    from rich.table import Table

    rows = sorted(rows, key=lambda r: (-r["kept_bytes"], -r["dropped_bytes"], r["name"].lower()))
    table = Table(box=box.SIMPLE_HEAD, show_footer=len(rows) > 1, pad_edge=False)
    kept_total, dropped_total = sum(r["kept_bytes"] for r in rows), sum(r["dropped_bytes"] for r in rows)
    table.add_column("distribution", footer=f"{len(rows)} distributions", overflow="fold")
    table.add_column("version", max_width=16, overflow="ellipsis")
    table.add_column("kept", justify="right", footer=human_bytes(kept_total))
    table.add_column("dropped", justify="right", footer=human_bytes(dropped_total))
    table.add_column("kept %", justify="right", footer=_share(kept_total, dropped_total))
    table.add_column("status")
    for r in rows[:MAX_TABLE_ROWS]:
        status = "[green]used[/]" if r["used"] else "[dim]unused[/]"
        table.add_row(r["name"], r["version"], human_bytes(r["kept_bytes"]), human_bytes(r["dropped_bytes"]),
                      _share(r["kept_bytes"], r["dropped_bytes"]), status)
    if len(rows) > MAX_TABLE_ROWS:
        rest = rows[MAX_TABLE_ROWS:]
        table.add_row(f"... {len(rest)} more", "", human_bytes(sum(r["kept_bytes"] for r in rest)),
                      human_bytes(sum(r["dropped_bytes"] for r in rest)), "", "")
    sink = io.StringIO()
    Console(file=sink, width=110, force_terminal=color, no_color=not color, highlight=False,
            emoji=False).print(table)
    lines = [line.rstrip() for line in sink.getvalue().splitlines()]
    return "\n".join(line for i, line in enumerate(lines) if line or 0 < i < len(lines) - 1) + "\n"


def _share(kept: int, dropped: int) -> str:
    return f"{100 * kept / (kept + dropped):.0f}%" if kept + dropped else "-"


def _totals_lines(report: dict[str, Any]) -> list[str]:
    deps = report["deps_totals"]
    total = deps["kept_bytes"] + deps["dropped_bytes"]
    share = f" ({100 * deps['dropped_bytes'] / total:.1f}% of the deps)" if total else ""
    app = report["app_totals"]
    return [
        f"deps: keep {human_bytes(deps['kept_bytes'])} in {deps['kept_files']} files, "
        f"drop {human_bytes(deps['dropped_bytes'])} in {deps['dropped_files']} files{share}",
        f"app:  keep {human_bytes(app['kept_bytes'])} in {app['kept_files']} files, "
        f"drop {human_bytes(app['dropped_bytes'])} in {app['dropped_files']} files"
        + (" (caches, bytecode, lockfiles: never read at run time)" if app["dropped_files"] else ""),
        *_unprofiled_line(report),
    ]


def _unprofiled_line(report: dict[str, Any]) -> list[str]:
    """With --trust-profile, what trusting the runs dropped: said, since a run that missed a
    path of the app makes exactly these files the ones that break it."""
    rows = [row for row in report.get("files", ()) if not row["keep"] and row["reasons"] == [Reason.UNPROFILED.value]]
    if not rows:
        return []
    return [f"not-in-profile: drop {human_bytes(sum(row['bytes'] for row in rows))} in {len(rows)} files that code "
            "which may run reaches but no recorded run loaded (`why NAME --profile P --trust-profile` "
            "names the reference)"]


def render_warnings(report: dict[str, Any]) -> str:
    """For stderr in text mode: a count per kind, then the first few, located."""
    warnings = report["warnings"]
    if not warnings:
        return ""
    counts = Counter(w["code"] for w in warnings)
    summary = ", ".join(f"{n} {code}" for code, n in sorted(counts.items()))
    lines = [f"warnings: {len(warnings)} ({summary})"]
    # Optional imports (guarded, lazy, TYPE_CHECKING) missing is normal: counted, not listed.
    shown = [w for w in warnings if w["code"] not in QUIET_CODES]
    if len(shown) < len(warnings):
        lines.append(f"  optional imports that are not installed: {len(warnings) - len(shown)} "
                     "(expected; --format json lists them)")
    warnings = shown
    for w in warnings[:MAX_TEXT_WARNINGS]:
        where = _one_line(w["file"] or "")          # a file name may hold a newline: never a fake line
        if where and w["line"]:
            where += f":{w['line']}"
        lines.append(f"  {where + ': ' if where else ''}{_one_line(w['message'])}")
    if len(warnings) > MAX_TEXT_WARNINGS:
        lines.append(f"  ... {len(warnings) - MAX_TEXT_WARNINGS} more; --format json lists them all")
    return "\n".join(lines) + "\n"


def _one_line(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r") if ("\n" in text or "\r" in text) else text
