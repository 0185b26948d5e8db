"""Per-language analyzers for microprune. Adding a language: a subpackage + one line here."""
from __future__ import annotations

from .python import PythonAnalyzer

ANALYZERS = (PythonAnalyzer,)

__all__ = ["ANALYZERS", "PythonAnalyzer"]
