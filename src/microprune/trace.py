"""The one worklist loop: from the entries, keep every file something reaches.

Language-agnostic: the session scans and resolves, this loop only records
what was kept, why, and who pulled it in (for `why`). Scans are pure, so the
loop is the only place trace state changes.
"""
from __future__ import annotations

import multiprocessing
import os
from collections import deque
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .analyzer import Session
from .model import Diagnostic, Edge, Entry, External, Parent, Provenance, Reason, Resolved, Scan, Unresolved
from .progress import Task, progress

# Scans are pure, so a batch of them can run in forked workers. Below this many files (or
# bytes) the fork and pickling cost more than they save. Measured on 2 cores: 16 files / 64 KB
# traced the Express benchmark app 13% faster than 48 / 256 KB, and Python apps the same.
PARALLEL_MIN_BATCH = 16
PARALLEL_MIN_BYTES = 64 * 1024     # ... or this much source: a few big bundles are worth splitting
# Files go to the workers in chunks of this many files or bytes (one message each way).
CHUNK_FILES = 8
CHUNK_BYTES = 128 * 1024
# With a trusted profile these need a recorded run as well: data beside a module is kept
# because the module *may* read it (certifi's CA bundle, botocore's service models).
RUN_CONFIRMED_REASONS = frozenset({Reason.DATA})
# Kept with their referrer whatever the runs did: a run on this host reads the system's copy
# instead, so a profile cannot say whether an image without one needs them.
NEVER_PROFILED_REASONS = frozenset({Reason.SYSTEM_FALLBACK})
MAX_PARENTS = 16        # enough for `why`; a popular module has hundreds of importers
# Kept because something *may* load it (a name in a string, a prefix, a hint): edges of
# these kinds never make a file certain.
SPECULATIVE_REASONS = frozenset({Reason.STRING, Reason.DYNAMIC, Reason.HINT, Reason.PLUGIN, Reason.KEEP,
                                 Reason.PROFILE, Reason.FALLBACK})


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
    # With a trusted profile: files that only code which may not run reaches (a lazy or guarded
    # import, a name in a string, a hint, a plugin) and that no recorded run loaded; each with
    # the first such reference, for `why`.
    unprofiled: dict[Path, Parent] = field(default_factory=dict)


class _Tracer:
    def __init__(self, session: Session, entries: list[Entry], jobs: int | None = None,
                 max_depth: int | None = None, trusted: frozenset[Path] | None = None) -> None:
        self.session = session
        self.inventory = session.inventory
        self.trace = Trace(entries=entries)
        self.queue: deque[Path] = deque()
        self.children: dict[Path, list[Path]] = {}      # certain-preserving edges only
        self.entry_files = {f for entry in entries for f in entry.files}
        self.scanner = _ScanAhead(session, jobs if jobs is not None else _default_jobs())
        self.max_depth = max_depth          # `trace --depth N`: files N import steps from an entry are not read
        self.depth = 0                      # the batch being processed is this many steps from the entries
        # `--trust-profile`: the files recorded runs loaded; a reference that may not run is
        # followed only to these. None: every reference is followed.
        self.trusted = trusted

    def emit(self, edge: Edge, by: Path | None, line: int | None, detail: str, firm: bool = True,
             lazy: bool = False) -> None:
        """Keep edge.path, pulled in by the kept file ``by`` at ``line`` (None: an entry, a
        keep, a profile). ``firm``: the edge holds whenever ``by`` runs (not optional); ``lazy``:
        only when a function of ``by`` is called (a trusted profile must then have seen it)."""
        path = self.inventory.canonical(edge.path)
        if path in self.inventory.dirs:
            self.trace.kept_dirs.add(path)
            self._keep_dir_links(edge.path)           # a folder reached through a link keeps the link
            return
        if path not in self.inventory.files:
            return
        holds = firm and edge.reason not in SPECULATIVE_REASONS
        if (self.trusted is not None and by is not None and path not in self.trusted
                and edge.reason not in NEVER_PROFILED_REASONS
                and (lazy or not holds or edge.reason in RUN_CONFIRMED_REASONS)):
            self.trace.unprofiled.setdefault(path, Parent(by, line, edge.reason, detail))
            return
        self._keep_dir_links(edge.path)
        if holds:
            if by is None:
                self._make_certain(path)
            else:
                self.children.setdefault(by, []).append(path)
                if by in self.trace.certain:
                    self._make_certain(path)
        prov = self.trace.kept.get(path)
        if prov is None:
            prov = self.trace.kept[path] = Provenance(order=len(self.trace.kept))
            self.queue.append(path)
            if self.max_depth is None and self.inventory.files[path].link is None and self.session.wants_scan(path):
                self.scanner.offer(path)
        prov.reasons.add(edge.reason)
        count = self.trace.parent_counts.get(path, 0)
        if count < MAX_PARENTS:                  # a popular module has hundreds of importers
            prov.parents.append(Parent(by, line, edge.reason, detail))
        self.trace.parent_counts[path] = count + 1

    def _make_certain(self, path: Path) -> None:
        stack = [path]
        while stack:
            current = stack.pop()
            if current not in self.trace.certain:
                self.trace.certain.add(current)
                stack.extend(self.children.get(current, ()))

    def _keep_dir_links(self, path: Path) -> None:
        """The directory links PATH is reached through (PATH itself when it is one)."""
        if not self.inventory.dir_links:
            return
        for ancestor in (path, *path.parents):
            if ancestor in self.inventory.dir_links:
                self.trace.dir_links.add(ancestor)

    def process_batch(self, batch: list[Path]) -> None:
        """Companions in queue order, then the batch's scans (maybe in parallel), then refs."""
        to_scan = []
        for path in batch:
            info = self.inventory.files[path]
            if info.link is not None:
                self.emit(Edge(info.link, Reason.LINK), path, None, "")
                continue
            for edge in self.session.companions(path):
                self.emit(edge, path, None, edge.detail)
            if self.session.wants_scan(path) and (self.max_depth is None or self.depth < self.max_depth):
                to_scan.append(path)
        for path in to_scan:
            self._follow_refs(path, self.scanner.scan(path))

    def _follow_refs(self, path: Path, scan: Scan) -> None:
        self.trace.diagnostics.extend(scan.diagnostics)
        for ref in scan.refs:
            if ref.program_only and path not in self.entry_files:
                continue                   # a library's `if __name__ == "__main__":` never runs
            result = self.session.resolve(ref, path)
            firm = not (ref.optional or ref.speculative)
            if isinstance(result, (Resolved, Unresolved)):
                for edge in result.edges:
                    self.emit(edge, path, ref.line, edge.detail or ref.target, firm, ref.lazy)
            if isinstance(result, External):
                self.trace.externals.add(result.name)
            if isinstance(result, Unresolved) and not ref.speculative:
                self.trace.missing.update(result.missing)
                # A load inside a function body fails only if that function is called: in a
                # dependency that is the normal shape of an optional driver (knex's dialects);
                # in the app's own code it is still said, since the app's author wrote it.
                lazy_in_deps = ref.lazy and self.inventory.files[path].root != "app"
                code = "unresolved-optional" if ref.optional or lazy_in_deps else "unresolved"
                self.trace.diagnostics.append(Diagnostic(code, result.why, path, ref.line))

    def run(self) -> Trace:
        try:
            with progress().task("tracing imports", total=None) as bar:
                self._drain(bar)
        finally:
            self.scanner.close()
        self.trace.diagnostics = [self._soften(d) for d in self.trace.diagnostics]
        self.trace.unprofiled = {p: v for p, v in self.trace.unprofiled.items() if p not in self.trace.kept}
        return self.trace

    def _drain(self, bar: Task) -> None:
        while self.queue:
            while self.queue:
                batch = list(self.queue)
                self.queue.clear()
                self.process_batch(batch)
                bar.advance(len(batch))
                self.depth += 1
            for edge, importer, line in self.session.deferred():
                self.emit(edge, importer, line, edge.detail, firm=False)

    def _soften(self, diagnostic: Diagnostic) -> Diagnostic:
        if diagnostic.code == "unresolved" and diagnostic.path not in self.trace.certain:
            return Diagnostic("unresolved-optional", diagnostic.message, diagnostic.path, diagnostic.line)
        return diagnostic


class _ScanAhead:
    """Scans the files the trace keeps in forked workers as soon as they are found, so that
    the workers read ahead while the loop follows the references of earlier files.

    The loop still takes every scan in its own order (``scan``), so a trace is the same
    as a one-process run: only where the scanning happens changes. A file the loop asks
    for before it was handed to a worker is scanned in the loop's own process.
    """

    def __init__(self, session: Session, jobs: int) -> None:
        self.session = session
        self.jobs = jobs
        self.pool: Executor | None = None
        self.pending: dict[Path, None] = {}     # offered, not yet handed to a worker (in order)
        self.pending_bytes = 0
        self.handed: dict[Path, tuple[Future[list[Scan]], int]] = {}

    def offer(self, path: Path) -> None:
        """``path`` will be scanned later: a worker may start on it now."""
        if self.jobs <= 1:
            return
        self.pending[path] = None
        self.pending_bytes += self.session.inventory.files[path].size
        if not self._worth_workers():
            return                            # too little yet to be worth starting workers
        if len(self.pending) >= CHUNK_FILES or self.pending_bytes >= CHUNK_BYTES:
            self._hand_over()

    def scan(self, path: Path) -> Scan:
        handed = self.handed.pop(path, None)
        if handed is None:
            # Not with a worker (yet): read it here, and let the workers start on the rest.
            if path in self.pending:
                del self.pending[path]
                self.pending_bytes -= self.session.inventory.files[path].size
            if self.pending and self._worth_workers():
                self._hand_over()
            return _scan_file(self.session, path)
        future, index = handed
        if not future.done() and self.pending:
            self._hand_over()                 # keep the workers busy while this one waits
        return future.result()[index]

    def _worth_workers(self) -> bool:
        """Workers are running already, or enough is waiting to be worth starting them."""
        return (self.pool is not None or len(self.pending) >= PARALLEL_MIN_BATCH
                or self.pending_bytes >= PARALLEL_MIN_BYTES)

    def _hand_over(self) -> None:
        paths = list(self.pending)
        self.pending.clear()
        self.pending_bytes = 0
        pool = self._pool()
        if pool is None:
            return                            # no workers: `scan` reads them here
        future = pool.submit(_scan_in_worker, paths)
        for index, path in enumerate(paths):
            self.handed[path] = (future, index)

    def _pool(self) -> Executor | None:
        if self.pool is None and self.jobs > 1:
            global _WORKER_SESSION
            _WORKER_SESSION = self.session            # inherited by the forked workers
            try:
                context = multiprocessing.get_context("fork")
                self.pool = ProcessPoolExecutor(max_workers=self.jobs, mp_context=context,
                                                initializer=ignore_interrupts, initargs=(os.getpid(),))
            except (ValueError, OSError):
                self.jobs = 1
        return self.pool

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


_WORKER_SESSION: Session | None = None


def _scan_in_worker(paths: list[Path]) -> list[Scan]:
    assert _WORKER_SESSION is not None
    return [_scan_file(_WORKER_SESSION, path) for path in paths]


def _scan_file(session: Session, path: Path) -> Scan:
    try:
        data = session.inventory.read_bytes(path)
    except OSError as err:
        return Scan(diagnostics=(Diagnostic("unreadable", f"cannot read: {err.strerror or err}", path),))
    try:
        return session.scan(path, data)
    except (ValueError, OverflowError, RecursionError, UnicodeError, MemoryError) as err:
        # One hostile file must not end the run: it is kept, unread, and reported.
        return Scan(diagnostics=(Diagnostic("not-scanned", f"could not be analysed ({type(err).__name__}: "
                                                          f"{str(err)[:120]}); kept, its references unknown", path),))


def ignore_interrupts(parent: int | None = None) -> None:
    """In pool workers: Ctrl-C reaches the whole process group, but only the parent
    should react (it cleans up and stops the workers). And a worker dies with its parent:
    a SIGKILLed run (OOM killer, CI timeout) must not leave scan workers behind."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent()
    if parent is not None and os.getppid() != parent:
        os._exit(1)                          # the parent died before we could ask to follow it


def _die_with_parent() -> None:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, 9, 0, 0, 0)            # PR_SET_PDEATHSIG, SIGKILL (Linux)
    except (OSError, AttributeError):
        pass


def _default_jobs() -> int:
    """MICROPRUNE_JOBS, else the CPUs this process may use."""
    configured = os.environ.get("MICROPRUNE_JOBS", "")
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def trace_app(session: Session, entries: list[Entry], keep: tuple[str, ...] = (), jobs: int | None = None,
              max_depth: int | None = None, profile: tuple[tuple[Path, str], ...] = (),
              shipped: bool = True, trust_profile: bool = False) -> Trace:
    """``profile``: (file, profile name) pairs seen in real runs; kept, and traced from, like keeps.
    ``trust_profile``: what may run or be read but was not in any recorded run is dropped. Only
    references that hold whenever their file runs (top-level imports, metadata, parent packages,
    native libraries) are followed to files the profile lacks; data is kept only if a run read it.
    ``shipped``: also trace the app's own code no entry reaches (it ships with the app); off for
    `trace`, which answers what the entries reach."""
    trusted = frozenset(session.inventory.canonical(path) for path, _ in profile) if trust_profile else None
    tracer = _Tracer(session, entries, jobs, max_depth, trusted)
    for path, name in profile:
        tracer.emit(Edge(path, Reason.PROFILE, name), None, None, name)
    for entry in entries:
        for path in entry.files:
            tracer.emit(Edge(path, Reason.ENTRY, entry.spec), None, None, entry.spec)
    for path in session.shipped_code() if shipped else ():
        tracer.emit(Edge(path, Reason.APP, "shipped with the app"), None, None, "the app's own code", firm=False)
    for pattern in keep:
        edges = session.keep_edges(pattern)
        if not edges:
            tracer.trace.diagnostics.append(Diagnostic("keep-unmatched", f"--keep {pattern!r} matches nothing"))
        for edge in edges:
            tracer.emit(edge, None, None, pattern)
    return tracer.run()
