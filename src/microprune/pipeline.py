"""Library entry points: the data flow from a request to a plan, and to a written tree.

Nothing here exits or prints; the CLI decides exit codes and output.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .analyzer import Request, Session
from .apply import Written, check_out_dir, write_tree
from .errors import UsageError
from .model import Entry, Reason
from .paths import display, normalise
from .plan import PrunePlan, collect_diagnostics, plan_prune
from .registry import get_analyzer
from .report import build_report
from .trace import Trace, trace_app


@dataclass
class Analysis:
    session: Session
    entries: list[Entry]
    trace: Trace
    plan: PrunePlan

    def report(self, command: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return build_report(command, self.session, self.entries, self.plan, extra)


def open_session(request: Request, language: str | None) -> Session:
    app_dir = normalise(request.app_dir)
    if not app_dir.is_dir():
        raise UsageError(f"APP {display(app_dir)} is not a directory")
    analyzer = get_analyzer(language, app_dir)
    return analyzer.open(request)


def analyze(request: Request, language: str | None = None) -> Analysis:
    session = open_session(request, language)
    entries = list(session.entries())
    profile: tuple[tuple[Path, str], ...] = ()
    if request.options.get("profile"):
        from .profile import load_profile

        profile = tuple(pair for pair in load_profile(Path(request.options["profile"]), session.inventory.roots)
                        if session.drop_reason(pair[0]) is Reason.UNREACHED)   # never caches a run left behind
    trace = trace_app(session, entries, request.keep, max_depth=request.options.get("max_depth"), profile=profile,
                      shipped=not request.options.get("entries_only", False),
                      trust_profile=bool(request.options.get("trust_profile")))
    return Analysis(session, entries, trace, plan_prune(session, trace))


def prune(request: Request, out: Path, force: bool,
          language: str | None = None) -> tuple[Analysis, Written, dict[str, Any]]:
    """Analyze, then write OUT; returns the report that OUT/microprune.json holds too."""
    deps = normalise(request.deps) if request.deps else None
    out = check_out_dir(out, normalise(request.app_dir), deps, force)
    request = Request(request.app_dir, request.deps, request.entries, request.keep, request.target_version,
                      (*request.excluded_paths, out), request.options)
    analysis = analyze(request, language)
    if analysis.session.deps_root is not None:
        check_out_dir(out, analysis.session.app_root, analysis.session.deps_root, force)
    layout = analysis.session.layout
    app_out, deps_out = display(out / layout.app_dir), display(out / layout.deps_dir)
    runs = [{"entry": e.spec, "command": analysis.session.run_command(e, app_out, deps_out)}
            for e in analysis.entries]
    # "layout" is relative to OUT, so that a copied or moved OUT can still be verified
    extra = {"app_out": app_out, "deps_out": deps_out, "run": runs,
             "layout": {"app": str(layout.app_dir), "deps": str(layout.deps_dir)}}
    report = analysis.report("prune", extra)
    written = write_tree(analysis.plan, analysis.session.inventory, layout, out, report,
                         analysis.session.finish_tree)
    return analysis, written, report


def trace_report(request: Request, language: str | None = None) -> dict[str, Any]:
    """The files an app's entries reach, as sorted absolute paths, plus missing imports.

    Directories that hold kept files are listed too: for a namespace package
    (no __init__) the directory is all there is.
    """
    session = open_session(request, language)
    entries = list(session.entries())
    trace = trace_app(session, entries, request.keep, max_depth=request.options.get("max_depth"), shipped=False)
    roots = list(session.inventory.roots.values())
    files = set(trace.kept) | trace.kept_dirs | trace.dir_links
    directories: set[Path] = set()
    if session.trace_lists_directories:
        directories = {parent for path in files for parent in path.parents
                       if any(parent != root and root in parent.parents for root in roots)}
    return {
        "schema_version": 1,
        "command": "trace",
        "language": session.language,
        "entries": [e.spec for e in entries],
        "files": sorted(display(p) for p in files | directories),
        "missing": sorted(trace.missing),
        "warnings": [{"code": d.code, "message": d.message, "file": display(d.path) if d.path else None,
                      "line": d.line} for d in collect_diagnostics(session, trace)],
    }
