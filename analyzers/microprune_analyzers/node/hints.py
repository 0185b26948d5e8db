"""Load the Node hint table (hints.toml beside this file): per-package knowledge as data."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_KEYS = {"package", "when", "keep", "scan", "requires", "optional-dependencies", "why"}


@dataclass(frozen=True)
class Hint:
    package: str                       # fires when a file of this package is kept
    why: str
    when: str = ""                     # only when this file (relative to the package) is kept
    keep: tuple[str, ...] = ()         # globs relative to the package directory
    scan: tuple[str, ...] = ()         # files kept and read as code (scripts without an extension)
    requires: tuple[str, ...] = ()     # specifiers the package loads by computed names
    optional_dependencies: bool = False    # its installed optionalDependencies, whole (platform binaries)


@lru_cache(maxsize=1)
def load_hints() -> dict[str, Hint]:
    text = resources.files(__package__).joinpath("hints.toml").read_text(encoding="utf-8")
    hints = {}
    for raw in tomllib.loads(text).get("hint", []):
        unknown = set(raw) - _KEYS
        if unknown or "package" not in raw or "why" not in raw:
            raise ValueError(f"bad node hint {raw!r}: unknown keys {sorted(unknown)} or no package/why")
        hint = Hint(raw["package"], raw["why"], raw.get("when", ""), tuple(raw.get("keep", ())),
                    tuple(raw.get("scan", ())), tuple(raw.get("requires", ())),
                    bool(raw.get("optional-dependencies", False)))
        hints[hint.package] = hint
    return hints
