"""Load the hint table (hints.toml beside this file): data, not code."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_KNOWN_KEYS = {"when", "modules", "files", "distributions", "app-files", "why", "system-fallback"}


@dataclass(frozen=True)
class Hint:
    when: str
    why: str
    modules: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    distributions: tuple[str, ...] = ()
    app_files: tuple[str, ...] = ()     # globs relative to the app: Python the framework runs
    system_fallback: bool = False       # what it keeps stands in for a system copy (see hints.toml)


@dataclass(frozen=True)
class Virtual:
    name: str          # the module (and its submodules) that only exist at run time
    provider: str      # the module that creates them ("" for none: type-checking only)
    why: str


@lru_cache(maxsize=1)
def _table() -> dict[str, list[dict[str, object]]]:
    text = resources.files(__package__).joinpath("hints.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


@dataclass(frozen=True)
class Convention:
    when: str                          # fires when this module is installed
    submodules: tuple[str, ...]        # relative patterns: "apps", "migrations.**", "commands.*"
    why: str


@lru_cache(maxsize=1)
def load_conventions() -> tuple[Convention, ...]:
    found = []
    for raw in _table().get("convention", []):
        if set(raw) != {"when", "submodules", "why"}:
            raise ValueError(f"hints.toml: bad [[convention]] {raw!r}")
        found.append(Convention(str(raw["when"]), tuple(raw["submodules"]), str(raw["why"])))  # type: ignore[arg-type]
    return tuple(found)


@lru_cache(maxsize=1)
def load_virtuals() -> dict[str, Virtual]:
    found = {}
    for raw in _table().get("virtual", []):
        if set(raw) != {"name", "provider", "why"}:
            raise ValueError(f"hints.toml: bad [[virtual]] {raw!r}")
        found[str(raw["name"])] = Virtual(str(raw["name"]), str(raw["provider"]), str(raw["why"]))
    return found


@lru_cache(maxsize=1)
def load_hints() -> dict[str, tuple[Hint, ...]]:
    """Hints keyed by the module whose being kept fires them."""
    table: dict[str, list[Hint]] = {}
    for raw in _table().get("hint", []):
        unknown = set(raw) - _KNOWN_KEYS
        if unknown or "when" not in raw or "why" not in raw:
            raise ValueError(f"hints.toml: bad hint {raw!r} (unknown keys {sorted(unknown)})")
        hint = Hint(str(raw["when"]), str(raw["why"]), tuple(raw.get("modules", ())),  # type: ignore[arg-type]
                    tuple(raw.get("files", ())), tuple(raw.get("distributions", ())),  # type: ignore[arg-type]
                    tuple(raw.get("app-files", ())), bool(raw.get("system-fallback", False)))  # type: ignore[arg-type]
        table.setdefault(hint.when, []).append(hint)
    return {when: tuple(hints) for when, hints in table.items()}
