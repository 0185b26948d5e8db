"""microprune: prune what an app does not use from its installed dependencies."""
from __future__ import annotations

__version__ = "0.1.0"
