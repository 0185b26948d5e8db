"""Options from ``[tool.microprune]`` in the app's pyproject.toml; flags win.

Precedence: defaults < the file < flags. ``keep`` patterns add up (keeping
more never breaks an app, and a repair written to the file must survive a
``--keep`` on the command line). Unknown keys are an error, not a silent no-op.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .paths import display

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

KNOWN_KEYS = {
    "entry": "list of entry points (scripts, modules or console scripts)",
    "deps": "dependencies directory, relative to the app",
    "keep": "list of patterns always kept (distribution, module or path glob)",
    "python-version": "target Python version, e.g. \"3.12\"",
    "language": "analyzer to use",
}


@dataclass(frozen=True)
class FileConfig:
    source: str
    entry: tuple[str, ...] = ()
    deps: Path | None = None
    keep: tuple[str, ...] = ()
    python_version: str | None = None
    language: str | None = None


def load_config(app_dir: Path) -> FileConfig:
    path = app_dir / "pyproject.toml"
    if path.is_symlink() or not path.is_file():
        return FileConfig(source="defaults")
    table = _read_table(path)
    if table is None:
        return FileConfig(source="defaults")
    source = f"{display(path)} [tool.microprune]"
    unknown = sorted(set(table) - set(KNOWN_KEYS))
    if unknown:
        known = ", ".join(sorted(KNOWN_KEYS))
        raise ConfigError(source, f"unknown key(s) {', '.join(unknown)}; known keys: {known}")
    deps = _string(table, "deps", source)
    return FileConfig(
        source=source,
        entry=_string_list(table, "entry", source),
        deps=(app_dir / deps) if deps else None,
        keep=_string_list(table, "keep", source),
        python_version=_string(table, "python-version", source),
        language=_string(table, "language", source),
    )


def _read_table(path: Path) -> dict[str, Any] | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as handle:
            data = tomllib.loads(handle.read().decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(display(path), f"cannot read: {err}") from err
    tool = data.get("tool", {})
    table = tool.get("microprune") if isinstance(tool, dict) else None
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ConfigError(display(path), "[tool.microprune] must be a table")
    return table


def _string(table: dict[str, Any], key: str, source: str) -> str | None:
    value = table.get(key)
    if value is None or isinstance(value, str):
        return value
    raise ConfigError(source, f"{key} must be a string, not {type(value).__name__}")


def _string_list(table: dict[str, Any], key: str, source: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(source, f"{key} must be a string or a list of strings")
