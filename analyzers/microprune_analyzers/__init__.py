"""Per-language analyzers for microprune. Adding a language: a subpackage + one line here."""
from __future__ import annotations

from .node import NodeAnalyzer
from .python import PythonAnalyzer

# Order matters for detection: a package.json with node_modules is a Node app even if it has .py files.
ANALYZERS = (NodeAnalyzer, PythonAnalyzer)

__all__ = ["ANALYZERS", "NodeAnalyzer", "PythonAnalyzer"]
