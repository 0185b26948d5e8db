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


@dataclass(frozen=True)
class Narrowing:
    """A wildcard require inside ``package`` keeps only the names the code passes to ``calls``
    (their first argument) -- unless some call passes a name we cannot read, then all of them."""

    package: str
    glob: str                          # the relative specifier, `*` for the computed part
    calls: tuple[str, ...]             # method names, as in `moment.locale('fr')`
    why: str


_NARROW_KEYS = {"package", "glob", "calls", "why"}


@lru_cache(maxsize=1)
def _table() -> dict[str, list[dict[str, object]]]:
    text = resources.files(__package__).joinpath("hints.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


@lru_cache(maxsize=1)
def load_narrowings() -> dict[str, Narrowing]:
    found = {}
    for raw in _table().get("narrow", []):
        if set(raw) != _NARROW_KEYS:
            raise ValueError(f"bad node [[narrow]] {raw!r}: keys must be {sorted(_NARROW_KEYS)}")
        narrowing = Narrowing(str(raw["package"]), str(raw["glob"]), tuple(map(str, raw["calls"])),  # type: ignore[call-overload]
                              str(raw["why"]))
        found[narrowing.package] = narrowing
    return found


@lru_cache(maxsize=1)
def load_hints() -> dict[str, Hint]:
    hints = {}
    for raw in _table().get("hint", []):
        unknown = set(raw) - _KEYS
        if unknown or "package" not in raw or "why" not in raw:
            raise ValueError(f"bad node hint {raw!r}: unknown keys {sorted(unknown)} or no package/why")
        hint = Hint(str(raw["package"]), str(raw["why"]), str(raw.get("when", "")),
                    tuple(raw.get("keep", ())), tuple(raw.get("scan", ())),  # type: ignore[arg-type]
                    tuple(raw.get("requires", ())),  # type: ignore[arg-type]
                    bool(raw.get("optional-dependencies", False)))
        hints[hint.package] = hint
    return hints
