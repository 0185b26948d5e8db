"""The Node.js analyzer: modules, assets and native addons an app reaches in node_modules.

Detection is cheap; the session (tree-sitter and the rest) loads only when a
Node app is opened.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from microprune.analyzer import Request

if TYPE_CHECKING:
    from .session import NodeSession


class NodeAnalyzer:
    language: ClassVar[str] = "node"

    def detect(self, app_dir: Path) -> bool:
        if not (app_dir / "package.json").is_file():
            return False
        python_markers = ("pyproject.toml", "setup.py", "requirements.txt", "Pipfile")
        return (app_dir / "node_modules").is_dir() or not any((app_dir / m).is_file() for m in python_markers)

    def open(self, request: Request) -> NodeSession:
        from .session import NodeSession

        return NodeSession(request)
