"""Find analyzers without the core importing any language at module level."""
from __future__ import annotations

from pathlib import Path

from .analyzer import Analyzer
from .errors import UsageError


def all_analyzers() -> tuple[Analyzer, ...]:
    from microprune_analyzers import ANALYZERS  # the one lookup from core to analyzers

    return tuple(cls() for cls in ANALYZERS)


def languages() -> list[str]:
    return sorted(a.language for a in all_analyzers())


def get_analyzer(language: str | None, app_dir: Path) -> Analyzer:
    analyzers = all_analyzers()
    if language:
        for analyzer in analyzers:
            if analyzer.language == language:
                return analyzer
        raise UsageError(f"unknown language {language!r}; known: {', '.join(languages())}")
    for analyzer in analyzers:
        if analyzer.detect(app_dir):
            return analyzer
    raise UsageError(
        f"cannot tell the language of {app_dir}: no analyzer recognises it; "
        f"pass --language ({', '.join(languages())})")
