"""The one worklist loop: from the entries, keep every file something reaches.

Language-agnostic: the session scans and resolves, this loop only records
what was kept, why, and who pulled it in (for `why`). Scans are pure, so the
loop is the only place trace state changes.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from .analyzer import Session
from .model import Diagnostic, Edge, Entry, External, Parent, Provenance, Reason, Resolved, Unresolved

MAX_PARENTS = 16        # enough for `why`; a popular module has hundreds of importers
# Kept because something *may* load it (a name in a string, a prefix, a hint): edges of
# these kinds never make a file certain.
SPECULATIVE_REASONS = frozenset({Reason.STRING, Reason.DYNAMIC, Reason.HINT, Reason.PLUGIN, Reason.KEEP})


@dataclass
class Trace:
    entries: list[Entry]
    kept: dict[Path, Provenance] = field(default_factory=dict)
    dir_links: set[Path] = field(default_factory=set)
    externals: set[str] = field(default_factory=set)        # e.g. stdlib modules reached
    diagnostics: list[Diagnostic] = field(default_factory=list)
    parent_counts: dict[Path, int] = field(default_factory=dict)
    # Files an entry reaches through unconditional imports only: a missing import in
    # one of them breaks the app; anywhere else it breaks only the path that loads it.
    certain: set[Path] = field(default_factory=set)
    missing: set[str] = field(default_factory=set)        # names of unresolved imports
    kept_dirs: set[Path] = field(default_factory=set)     # must exist even if empty (namespace packages)


class _Tracer:
    def __init__(self, session: Session, entries: list[Entry]) -> None:
        self.session = session
        self.inventory = session.inventory
        self.trace = Trace(entries=entries)
        self.queue: deque[Path] = deque()
        self.children: dict[Path, list[Path]] = {}      # certain-preserving edges only

    def emit(self, edge: Edge, parent: Parent, firm: bool = True) -> None:
        """Keep edge.path. ``firm``: the edge holds whenever its parent runs (not optional)."""
        path = self.inventory.canonical(edge.path)
        if path in self.inventory.dirs:
            self.trace.kept_dirs.add(path)
            return
        if path not in self.inventory.files:
            return
        self._keep_dir_links(edge.path)
        if firm and edge.reason not in SPECULATIVE_REASONS:
            if parent.path is None:
                self._make_certain(path)
            else:
                self.children.setdefault(parent.path, []).append(path)
                if parent.path in self.trace.certain:
                    self._make_certain(path)
        prov = self.trace.kept.get(path)
        if prov is None:
            prov = self.trace.kept[path] = Provenance(order=len(self.trace.kept))
            self.queue.append(path)
        prov.reasons.add(edge.reason)
        count = self.trace.parent_counts.get(path, 0)
        if count < MAX_PARENTS:
            prov.parents.append(parent)
        self.trace.parent_counts[path] = count + 1

    def _make_certain(self, path: Path) -> None:
        stack = [path]
        while stack:
            current = stack.pop()
            if current not in self.trace.certain:
                self.trace.certain.add(current)
                stack.extend(self.children.get(current, ()))

    def _keep_dir_links(self, path: Path) -> None:
        if not self.inventory.dir_links:
            return
        for ancestor in path.parents:
            if ancestor in self.inventory.dir_links:
                self.trace.dir_links.add(ancestor)

    def process(self, path: Path) -> None:
        info = self.inventory.files[path]
        if info.link is not None:
            self.emit(Edge(info.link, Reason.LINK), Parent(path, None, Reason.LINK))
            return
        for edge in self.session.companions(path):
            self.emit(edge, Parent(path, None, edge.reason, edge.detail))
        if self.session.wants_scan(path):
            self._follow_refs(path)

    def _follow_refs(self, path: Path) -> None:
        try:
            data = self.inventory.read_bytes(path)
        except OSError as err:
            self.trace.diagnostics.append(Diagnostic("unreadable", f"cannot read: {err}", path))
            return
        scan = self.session.scan(path, data)
        self.trace.diagnostics.extend(scan.diagnostics)
        for ref in scan.refs:
            result = self.session.resolve(ref, path)
            firm = not (ref.optional or ref.speculative)
            if isinstance(result, (Resolved, Unresolved)):
                for edge in result.edges:
                    self.emit(edge, Parent(path, ref.line, edge.reason, edge.detail or ref.target), firm)
            if isinstance(result, External):
                self.trace.externals.add(result.name)
            if isinstance(result, Unresolved) and not ref.speculative:
                self.trace.missing.update(result.missing)
                code = "unresolved-optional" if ref.optional else "unresolved"
                self.trace.diagnostics.append(Diagnostic(code, result.why, path, ref.line))

    def run(self) -> Trace:
        while self.queue:
            self.process(self.queue.popleft())
        self.trace.diagnostics = [self._soften(d) for d in self.trace.diagnostics]
        return self.trace

    def _soften(self, diagnostic: Diagnostic) -> Diagnostic:
        if diagnostic.code == "unresolved" and diagnostic.path not in self.trace.certain:
            return Diagnostic("unresolved-optional", diagnostic.message, diagnostic.path, diagnostic.line)
        return diagnostic


def trace_app(session: Session, entries: list[Entry], keep: tuple[str, ...] = ()) -> Trace:
    tracer = _Tracer(session, entries)
    for entry in entries:
        for path in entry.files:
            tracer.emit(Edge(path, Reason.ENTRY, entry.spec), Parent(None, None, Reason.ENTRY, entry.spec))
    for pattern in keep:
        edges = session.keep_edges(pattern)
        if not edges:
            tracer.trace.diagnostics.append(Diagnostic("keep-unmatched", f"--keep {pattern!r} matches nothing"))
        for edge in edges:
            tracer.emit(edge, Parent(None, None, Reason.KEEP, pattern))
    return tracer.run()
