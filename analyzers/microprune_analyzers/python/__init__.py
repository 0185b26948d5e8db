"""The Python analyzer: imports, data, metadata and native libraries an app reaches.

Detection is cheap; the session (and everything it imports) loads only when a
Python app is opened.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from microprune.analyzer import Request

if TYPE_CHECKING:
    from .session import PythonSession


class PythonAnalyzer:
    language: ClassVar[str] = "python"

    def detect(self, app_dir: Path) -> bool:
        markers = ("pyproject.toml", "setup.py", "setup.cfg", "requirements.txt", "Pipfile", "__main__.py")
        if any((app_dir / m).is_file() for m in markers):
            return True
        return any(app_dir.glob("*.py")) or any(app_dir.glob("*/*.py"))

    def open(self, request: Request) -> PythonSession:
        from .session import PythonSession

        return PythonSession(request)
