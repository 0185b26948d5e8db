"""Plain data shared by the core and the analyzers: no I/O here.

Every path in these types is absolute and lexically normal (never resolved
through symlinks): the inventory decides what a path means on disk.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union


class Reason(str, enum.Enum):
    """Why a file is kept (or, for the last group, why it is dropped)."""

    ENTRY = "entry"              # an entry point the user named or we detected
    IMPORT = "import"            # a static import
    DYNAMIC = "dynamic"          # import_module/__import__ with a literal or fixed prefix
    STRING = "string"            # a dotted module name in a string literal
    PACKAGE = "package"          # parent package __init__ of a kept module
    DATA = "data"                # package data next to a kept module
    METADATA = "metadata"        # dist-info of a kept distribution
    NATIVE = "native"            # shared library a kept extension needs (*.libs/)
    PLUGIN = "plugin"            # entry-point plugin of a group a kept module reads
    HINT = "hint"                # the analyzer's table of known run-time loads
    KEEP = "keep"                # the user's --keep pattern
    PROFILE = "profile"          # seen in a real run (`trace --run`, `prune --profile`)
    PTH = "pth"                  # a .pth file of a kept distribution
    LINK = "link"                # target of a kept symlink
    APP = "app"                  # part of the app itself (copied whole)
    FALLBACK = "fallback"        # what an older runtime would load instead (package.json main beside exports)
    # data the runtime reads only where the system has no copy of its own (tzdata's zones where
    # there is no /usr/share/zoneinfo): a run on a full host never shows it, a slim image needs it
    SYSTEM_FALLBACK = "system-fallback"
    # drop reasons
    UNREACHED = "unreached"      # nothing imports or reads it
    UNUSED_DIST = "unused-distribution"
    BYTECODE = "bytecode"        # __pycache__ / stale .pyc
    EXCLUDED = "excluded"        # VCS, caches, the deps dir inside the app
    UNSAFE = "unsafe"            # symlink leaving the tree, unreadable
    UNPROFILED = "not-in-profile"  # `--trust-profile`: only code that may run reaches it, and none did


@dataclass(frozen=True, order=True)
class Ref:
    """One thing a file refers to, as written in it (not yet resolved).

    ``kind`` is analyzer-defined ("import", "from", "dynamic", "string", ...).
    ``speculative`` refs (string literals) that resolve to nothing are silent;
    ``optional`` ones (guarded, lazy) that resolve to nothing are reported as
    optional, not as warnings.
    """

    line: int
    kind: str
    target: str
    level: int = 0                       # relative-import dots
    names: tuple[str, ...] = ()          # `from target import names`
    speculative: bool = False
    optional: bool = False
    program_only: bool = False           # runs only when this file is the program (`__main__` block)
    # inside a function body: loads only when that function is called (Python marks such imports
    # optional already). Only `--trust-profile` reads it: such a ref needs a recorded run.
    lazy: bool = False


@dataclass(frozen=True)
class Diagnostic:
    """A warning about the input: never fatal, always located when possible."""

    code: str
    message: str
    path: Path | None = None
    line: int | None = None


@dataclass(frozen=True)
class Scan:
    """What one file's bytes say: the pure result of ``Session.scan``."""

    refs: tuple[Ref, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()


@dataclass(frozen=True)
class Edge:
    """A file kept because of another one (or of an entry, when parent is None)."""

    path: Path
    reason: Reason
    detail: str = ""


@dataclass(frozen=True)
class Resolved:
    edges: tuple[Edge, ...]


@dataclass(frozen=True)
class External:
    """Provided by the runtime (stdlib, builtin module): nothing to keep here."""

    name: str


@dataclass(frozen=True)
class Unresolved:
    why: str
    missing: tuple[str, ...] = ()    # names of the modules or files that are not there
    edges: tuple[Edge, ...] = ()     # what was found on the way (`import pkg.gone` runs pkg)


Resolution = Union[Resolved, External, Unresolved]


@dataclass(frozen=True)
class Entry:
    """An entry point as the user would say it, and the files it starts from."""

    spec: str          # "app.py", "pkg.mod:app", "gunicorn"
    kind: str          # "script" | "module" | "console-script"
    origin: str        # "--entry", "pyproject [project.scripts]", "Procfile", ...
    files: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Package:
    """A unit of the deps that users think in: a distribution, an npm package."""

    name: str
    version: str
    license: str = ""      # as its metadata declares it: an SPDX expression when it has one
    purl: str = ""         # package URL (pkg:pypi/..., pkg:npm/...) for SBOMs


@dataclass(frozen=True)
class Parent:
    """Who pulled a file in, and where (for `why`)."""

    path: Path | None          # None for entries and --keep
    line: int | None
    reason: Reason
    detail: str = ""


@dataclass
class Provenance:
    reasons: set[Reason] = field(default_factory=set)
    parents: list[Parent] = field(default_factory=list)
    order: int = 0             # discovery order: the first parent is on a shortest chain
