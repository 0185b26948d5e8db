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
from .paths import display, is_within, write_text_atomically

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

KNOWN_KEYS = {
    "entry": "list of entry points (scripts, modules or console scripts)",
    "deps": "dependencies directory, relative to the app",
    "keep": "list of patterns always kept (distribution, module or path glob)",
    "python-version": "target Python version, e.g. \"3.12\"",
    "node-version": "target Node.js version, e.g. \"22.12\"",
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
    """[tool.microprune] of pyproject.toml, else the "microprune" key of package.json."""
    path = app_dir / "pyproject.toml"
    table: dict[str, Any] | None = None
    if not path.is_symlink() and path.is_file():
        table = _read_table(path)
        source = f"{display(path)} [tool.microprune]"
    if table is None:
        path = app_dir / "package.json"
        table = _read_package_json(path) if not path.is_symlink() and path.is_file() else None
        source = f"{display(path)} \"microprune\""
    if table is None:
        return FileConfig(source="defaults")
    unknown = sorted(set(table) - set(KNOWN_KEYS))
    if unknown:
        known = ", ".join(sorted(KNOWN_KEYS))
        raise ConfigError(source, f"unknown key(s) {', '.join(unknown)}; known keys: {known}")
    deps = _string(table, "deps", source)
    if deps and not _inside(app_dir / deps, app_dir) and not _looks_like_deps(app_dir / deps):
        # the app's own file picks what is read: outside the app, only a directory of installed
        # packages (never /etc with keep = ["**"])
        raise ConfigError(source, f"deps {deps!r} is not inside the app and holds no installed packages "
                                  "(no .dist-info, virtualenv or node_modules); give it with --deps")
    return FileConfig(
        source=source,
        entry=_string_list(table, "entry", source),
        deps=(app_dir / deps) if deps else None,
        keep=_string_list(table, "keep", source),
        python_version=_string(table, "python-version", source) or _string(table, "node-version", source),
        language=_string(table, "language", source),
    )


def _read_package_json(path: Path) -> dict[str, Any] | None:
    import json

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as handle:
            data = json.loads(handle.read(8 << 20).decode("utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None                      # a broken package.json is the analyzer's warning, not a config error
    table = data.get("microprune") if isinstance(data, dict) else None
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ConfigError(display(path), '"microprune" must be an object')
    return table


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


def add_keep_patterns(app_dir: Path, patterns: list[str]) -> Path:
    """Write --repair's patterns as `keep` entries of the app's microprune configuration, so the
    next run needs no repair: [tool.microprune] of pyproject.toml when the app has that file,
    else the "microprune" key of package.json. Transactional: a complete new file is renamed
    over the old one (an interrupted run leaves the old file), and it must read back."""
    pyproject, package = app_dir / "pyproject.toml", app_dir / "package.json"
    if pyproject.is_file() or not package.is_file():
        path, text = pyproject, _read_text(pyproject)
        updated = _toml_with_keep(text, patterns, pyproject)
        check = _read_table_text(updated, pyproject)
    else:
        import json

        path = package
        data = json.loads(_read_text(package) or "{}")
        if not isinstance(data, dict):
            raise ConfigError(display(package), "not a JSON object; cannot add keep entries")
        table = data.setdefault("microprune", {})
        if not isinstance(table, dict):
            raise ConfigError(display(package), '"microprune" must be an object')
        table["keep"] = list(dict.fromkeys([*table.get("keep", []), *patterns]))
        updated = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        check = json.loads(updated)["microprune"]
    if not set(patterns) <= set(check.get("keep", [])):
        raise ConfigError(display(path), "the keep entries did not read back; file left as it was")
    write_text_atomically(path, updated)
    return path


def _read_text(path: Path) -> str:
    if path.is_symlink():
        raise ConfigError(display(path), "is a symlink; not edited")
    return path.read_text(encoding="utf-8") if path.is_file() else ""


_KEEP_ARRAY = r"""^keep\s*=\s*\[(?:[^\]"'#]|"(?:[^"\\]|\\.)*"|'[^']*'|#[^\n]*)*\]"""


def _toml_with_keep(text: str, patterns: list[str], path: Path) -> str:
    import json
    import re

    current = (_read_table_text(text, path) or {}).get("keep", []) if text else []
    merged = list(dict.fromkeys([*(current if isinstance(current, list) else [current]), *patterns]))
    line = "keep = [" + ", ".join(json.dumps(p) for p in merged) + "]"
    header = re.search(r"^\[tool\.microprune\][ \t]*$", text, re.MULTILINE)
    if header is None:
        separator = "" if not text else ("\n" if text.endswith("\n") else "\n\n")
        return f"{text}{separator}[tool.microprune]\n{line}\n"
    start = header.end()
    following = re.search(r"^\[", text[start:], re.MULTILINE)
    end = start + following.start() if following else len(text)
    body = text[start:end]
    if re.search(_KEEP_ARRAY, body, re.MULTILINE):
        body = re.sub(_KEEP_ARRAY, lambda _m: line, body, count=1, flags=re.MULTILINE)
    elif re.search(r"^keep\s*=", body, re.MULTILINE):
        body = re.sub(r"^keep\s*=.*$", lambda _m: line, body, count=1, flags=re.MULTILINE)
    else:
        body = "\n" + line + body
    return text[:start] + body + text[end:]


def _read_table_text(text: str, path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(display(path), f"would not be valid TOML after adding keep entries ({err}); "
                                         "left as it was") from err
    table = data.get("tool", {}).get("microprune", {})
    return table if isinstance(table, dict) else {}


def _inside(path: Path, root: Path) -> bool:
    return is_within(Path(os.path.realpath(path)), Path(os.path.realpath(root)))


def _looks_like_deps(path: Path) -> bool:
    """A pip --target/site-packages directory, a virtualenv, or a node_modules."""
    if not path.is_dir():
        return True                      # the analyzer says it is missing, in its own words
    if path.name == "node_modules" or (path / "node_modules").is_dir() or (path / "pyvenv.cfg").is_file():
        return True
    return any(path.glob("*.dist-info")) or any(path.glob("lib/python3*/site-packages"))
