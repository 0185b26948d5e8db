"""microprune's run-time recorder (`microprune trace APP --run CMD`): imported by `site` at start.

Records every file the process opens or imports, and at exit every module file and every file
mapped into it (extensions and their libraries), appending each path to the log named by
MICROPRUNE_PROFILE_LOG as soon as it is seen: a process killed with SIGKILL (jedi's inference
subprocess, a worker a supervisor kills) has written what it read so far. Forked children
(gunicorn workers) share the descriptor, so their paths merge in. It never raises.
"""
from __future__ import annotations

import atexit
import os
import signal
import sys

_LOG = os.environ.get("MICROPRUNE_PROFILE_LOG", "")
_seen: set[str] = set()
_fd = -1


def _write(path: str) -> None:
    # One short O_APPEND write per line: lines from several processes never interleave.
    # (os.write raises no audit event, so the hook cannot recurse through it.)
    try:
        os.write(_fd, (path + "\n").encode("utf-8", "surrogateescape"))
    except (OSError, ValueError):
        pass


def _add(path: str) -> None:
    if path not in _seen:
        _seen.add(path)
        _write(path)


def _note(path: object) -> None:
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if isinstance(path, str) and path:
        path = os.path.abspath(path)
        _add(path)
        if path.endswith(".pyc") and os.path.basename(os.path.dirname(path)) == "__pycache__":
            # a cached module: its source is what ships. A module whose import failed (an
            # ImportError caught by its importer) leaves only this open behind, no sys.modules entry.
            # (Worked out here, not with importlib.util: no import from inside the audit hook.)
            cache_dir, name = os.path.split(path)
            _add(os.path.join(os.path.dirname(cache_dir), name.split(".", 1)[0] + ".py"))


def _hook(event: str, args: tuple[object, ...]) -> None:
    try:
        if event in ("open", "ctypes.dlopen"):
            _note(args[0])
        elif event == "import" and len(args) > 1:
            _note(args[1])
    except Exception:
        pass


def _dump() -> None:
    """What only the end shows: modules loaded without an open (extensions) and mapped libraries."""
    try:
        for module in list(sys.modules.values()):
            _note(getattr(module, "__file__", None))
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                fields = line.split(None, 5)
                if len(fields) == 6 and fields[5].startswith("/"):
                    _note(fields[5].strip().removesuffix(" (deleted)"))
    except Exception:
        pass


def _dump_then_die(signum: int, _frame: object) -> None:
    """A server stopped by SIGTERM (uvicorn re-raises it with the handler it found at start,
    which is this one) dies without running atexit: write the log first, then die of the
    same signal, so the exit status is what it would have been."""
    _dump()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _watch_fatal_signals() -> None:
    for signum in (signal.SIGTERM, signal.SIGHUP):
        try:
            if signal.getsignal(signum) == signal.SIG_DFL:
                signal.signal(signum, _dump_then_die)
        except (ValueError, OSError):     # not the main thread, or an odd platform
            pass


if _LOG:
    try:
        # Opened before the hook exists (its own open is not recorded); closed on exec, since an
        # exec'd Python opens its own through this same module.
        _fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        _fd = -1
    if _fd >= 0:
        sys.addaudithook(_hook)
        atexit.register(_dump)
        _watch_fatal_signals()
