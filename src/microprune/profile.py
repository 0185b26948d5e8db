"""Dynamic mode: run an app's commands with a recorder and keep what they really load.

`microprune trace APP --run CMD... --out PROFILE` runs each command once in APP's directory,
with the analyzer's recorder (Python: an audit hook; Node: a --require hook and an ESM resolve
hook), and the kernel's record of every file opened under APP and its deps (inotify: what
native code reads, OpenSSL's CA bundle, libxslt's stylesheets). Every file under APP or its
deps that a run loaded or read goes into one merged
profile, as paths relative to those roots (so a profile travels with the app).
`prune --profile PROFILE` keeps the union of the static trace and the profile.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .analyzer import Request
from .errors import OutputError, UsageError
from .paths import display, is_within, normalise, read_regular_file, write_text_atomically
from .pipeline import open_session
from .registry import get_analyzer
from .verify import _run
from .watch import OpenWatch

SCHEMA_VERSION = 1
# A log or profile is one path per line: a million paths is about 100 MB. Anything larger is
# not one (a run that swapped its log for a link to /dev/zero, a hostile --profile).
MAX_LOG_BYTES = 512 << 20
MAX_PROFILE_BYTES = 512 << 20


def record_profile(request: Request, commands: tuple[str, ...], out: Path, timeout: float,
                   language: str | None) -> dict[str, Any]:
    session = open_session(request, language)
    analyzer = get_analyzer(session.language, session.app_root)
    roots = {name: root for name, root in session.inventory.roots.items()}
    found: set[str] = set()
    runs = []
    for command in commands:
        with tempfile.TemporaryDirectory(prefix="microprune-profile-") as scratch:
            log = Path(scratch) / "seen.log"
            env = dict(os.environ)
            overrides, removed = analyzer.profile_environment(session.app_root, session.deps_root, log,
                                                              session.describe())
            for name in removed:
                env.pop(name, None)
            env.update(overrides)
            with OpenWatch(session.inventory.dirs) as watch:
                result = _run(command, session.app_root, env, timeout)
            seen = [Path(line) for line in _read_log(log, command) if line.startswith("/")]
        mine = {_relative(path, roots) for path in (*seen, *watch.opened)} - {""}
        runs.append({"command": command, "exit_code": result.exit_code, "timed_out": result.timed_out,
                     "files": len(mine), "kernel_watch": _watch_state(watch), "escaped": result.escaped,
                     **({"unwatched_dirs": watch.unwatched} if watch.unwatched else {})})
        found.update(mine)
    profile = {"schema_version": SCHEMA_VERSION, "command": "profile", "language": session.language,
               "app": display(session.app_root), "runs": runs, "files": sorted(found)}
    write_text_atomically(out, json.dumps(profile, indent=1, sort_keys=True) + "\n")
    return profile


def _watch_state(watch: OpenWatch) -> str:
    """How much of what native code opened the run's record holds: "complete", "partial" (past
    the watch limit, or the kernel dropped events) or "unavailable" (no inotify here)."""
    if not watch.available:
        return "unavailable"
    return "partial" if watch.unwatched or watch.overflowed else "complete"


def _read_log(log: Path, command: str) -> list[str]:
    """The recorder's lines. The run owns the scratch directory while it runs, so the log is
    read without following a link or waiting on a FIFO, and only up to a bound."""
    if not os.path.lexists(log):
        return []              # nothing started the recorder (or the run removed its log)
    data = read_regular_file(log, MAX_LOG_BYTES)
    if data is None:
        raise OutputError(f"the recording log of {command!r} was replaced by something that is not a regular "
                          f"file, or grew past {MAX_LOG_BYTES >> 20} MB: nothing recorded from it can be trusted")
    return data.decode("utf-8", "surrogateescape").splitlines()


def _relative(path: Path, roots: dict[str, Path]) -> str:
    """'deps/<rel>' or 'app/<rel>' for a file under a root (the most specific one), else ''."""
    path = normalise(path)
    for name, root in sorted(roots.items(), key=lambda kv: len(kv[1].parts), reverse=True):
        if is_within(path, root) and path != root:
            return f"{name}/{path.relative_to(root).as_posix()}"
    real = Path(os.path.realpath(path))
    if real != path:
        return _relative(real, roots) if any(is_within(real, r) for r in roots.values()) else ""
    return ""


def load_profile(path: Path, roots: dict[str, Path]) -> tuple[tuple[Path, str], ...]:
    """(file, label) pairs of a profile, mapped onto this run's roots."""
    raw = read_regular_file(Path(os.path.realpath(path)), MAX_PROFILE_BYTES)   # a link is the user's own
    if raw is None:
        raise UsageError(f"--profile {display(path)}: not a regular file of at most {MAX_PROFILE_BYTES >> 20} MB "
                         "(a link, a FIFO or a device is not read)")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as err:      # RecursionError: [[[[... nested past the parser's limit
        raise UsageError(f"--profile {display(path)}: cannot read it ({type(err).__name__}: "
                         f"{str(err)[:200] or 'nested too deep'})") from err
    if not isinstance(data, dict) or data.get("command") != "profile" or not isinstance(data.get("files"), list):
        raise UsageError(f"--profile {display(path)}: not a profile written by `microprune trace --run`")
    label = path.name
    pairs = []
    for item in data["files"]:
        root_name, _, rel = str(item).partition("/")
        root = roots.get(root_name)
        if root is None or not rel or ".." in Path(rel).parts or rel.startswith("/"):
            continue
        pairs.append((normalise(root / rel), label))
    return tuple(pairs)
