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

_KNOWN_KEYS = {"when", "modules", "files", "distributions", "why"}


@dataclass(frozen=True)
class Hint:
    when: str
    why: str
    modules: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    distributions: tuple[str, ...] = ()


@lru_cache(maxsize=1)
def load_hints() -> dict[str, tuple[Hint, ...]]:
    """Hints keyed by the module whose being kept fires them."""
    text = resources.files(__package__).joinpath("hints.toml").read_text(encoding="utf-8")
    table: dict[str, list[Hint]] = {}
    for raw in tomllib.loads(text).get("hint", []):
        unknown = set(raw) - _KNOWN_KEYS
        if unknown or "when" not in raw or "why" not in raw:
            raise ValueError(f"hints.toml: bad hint {raw!r} (unknown keys {sorted(unknown)})")
        hint = Hint(raw["when"], raw["why"], tuple(raw.get("modules", ())), tuple(raw.get("files", ())),
                    tuple(raw.get("distributions", ())))
        table.setdefault(hint.when, []).append(hint)
    return {when: tuple(hints) for when, hints in table.items()}
