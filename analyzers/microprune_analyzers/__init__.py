"""Per-language analyzers for microprune. Adding a language: a subpackage + one line here."""
from __future__ import annotations

from microprune.analyzer import Analyzer

from .node import NodeAnalyzer
from .python import PythonAnalyzer

# Order matters for detection: a package.json with node_modules is a Node app even if it has .py files.
ANALYZERS: tuple[type[Analyzer], ...] = (NodeAnalyzer, PythonAnalyzer)

__all__ = ["ANALYZERS", "NodeAnalyzer", "PythonAnalyzer"]
