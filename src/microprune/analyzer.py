"""The contract between the core and a language analyzer.

An analyzer knows one language: where an app's entry points are, what one
file refers to, how a reference resolves to files, and which files must travel
with a kept file. The core owns the loop, the reasons, planning and output.
Imports point one way: analyzers import the core, the core finds analyzers
only through ``registry``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from .inventory import Inventory
from .model import Diagnostic, Edge, Entry, Package, Reason, Ref, Resolution, Scan


@dataclass(frozen=True)
class Request:
    """What the user asked for, after config and flags are merged."""

    app_dir: Path
    deps: Path | None = None
    entries: tuple[str, ...] = ()
    keep: tuple[str, ...] = ()
    target_version: str | None = None
    excluded_paths: tuple[Path, ...] = ()      # e.g. OUT when it sits inside the app
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Layout:
    """Where the app and its deps go under OUT (relative paths)."""

    app_dir: str
    deps_dir: str


@dataclass(frozen=True)
class ImageRuntime:
    """What an image of the app needs from the local runtime, and how it starts.

    ``files`` are host paths copied into the base at the same paths (their shared libraries
    are added by the core, from ELF headers). ``root`` is where OUT lands in the image.
    """

    files: tuple[str, ...]
    command: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    workdir: str
    generated: tuple[tuple[str, bytes], ...] = ()     # (image path, content) made for the image


class Session(Protocol):
    """One app opened by an analyzer: everything the core asks of a language."""

    language: str
    inventory: Inventory
    app_root: Path
    deps_root: Path | None
    layout: Layout
    trace_lists_directories: bool     # `trace` lists the directories of kept files (namespace packages)

    def entries(self) -> Sequence[Entry]: ...
    def describe(self) -> dict[str, Any]: ...
    def diagnostics(self) -> Sequence[Diagnostic]: ...

    def wants_scan(self, path: Path) -> bool: ...
    def scan(self, path: Path, data: bytes) -> Scan: ...          # pure
    def resolve(self, ref: Ref, importer: Path) -> Resolution: ...
    def companions(self, path: Path) -> Sequence[Edge]: ...
    # Refs whose answer depends on the whole trace (a glob narrowed by the names the code passes
    # elsewhere): asked once nothing else is left, as (edge, importer, line); again until it adds nothing.
    def deferred(self) -> Sequence[tuple[Edge, Path, int]]: ...
    # The app's own code that ships though no entry may reach it (a command directory a CLI
    # framework reads, files a library loads by a glob): traced too, as optional reach.
    def shipped_code(self) -> Sequence[Path]: ...

    def run_command(self, entry: Entry, app_out: str, deps_out: str) -> str: ...
    def image_runtime(self, entries: Sequence[Entry], externals: set[str], app_out: str,
                      deps_out: str) -> ImageRuntime: ...
    def finish_tree(self, app_out: Path, deps_out: Path, files: Sequence[Path]) -> dict[str, Any]: ...
    def keep_edges(self, pattern: str) -> Sequence[Edge]: ...     # --keep
    # --repair: keep patterns that bring back what a failed smoke run named (a module, a path
    # under the pruned tree ...), found in the original deps; [] when it is not there either
    def repair_patterns(self, missing: str, app_out: Path, deps_out: Path) -> list[str]: ...
    def lookup(self, name: str) -> Sequence[Path]: ...             # `why NAME`
    def package_of(self, path: Path) -> Package | None: ...
    def packages(self) -> Sequence[Package]: ...
    def drop_reason(self, path: Path) -> Reason: ...


class Analyzer(Protocol):
    language: ClassVar[str]
    # regular expressions whose group 1 is what a failed run says is missing (verify)
    failure_patterns: ClassVar[tuple[str, ...]]
    # directory names the language's resolver searches in every ancestor of the app
    # (node_modules); verify hides those found above OUT
    ancestor_search_dirs: ClassVar[tuple[str, ...]]

    def detect(self, app_dir: Path) -> bool: ...
    def open(self, request: Request) -> Session: ...
    # the environment that records what a command loads and reads into the log (`trace --run`)
    def profile_environment(self, app_dir: Path, deps_dir: Path | None, log: Path,
                            target: dict[str, Any]) -> tuple[dict[str, str], tuple[str, ...]]: ...
    # the environment that shows a smoke command only the pruned tree: (set, unset)
    def smoke_environment(self, app_out: Path, deps_out: Path, target: dict[str, Any],
                          scratch: Path) -> tuple[dict[str, str], tuple[str, ...]]: ...
