"""microprune's run-time recorder (`microprune trace APP --run CMD`): imported by `site` at start.

Records every file the process opens or imports, and at exit every module file and every file
mapped into it (extensions and their libraries), appending each path to the log named by
MICROPRUNE_PROFILE_LOG as soon as it is seen: a process killed with SIGKILL (jedi's inference
subprocess, a worker a supervisor kills) has written what it read so far, and forked children
(gunicorn workers) merge in. The log is opened by name for each line, never kept open: a
daemon closes every descriptor and may then get ours back for a file of its own. It never raises.
"""
from __future__ import annotations

import atexit
import os
import signal
import sys

_LOG = os.environ.get("MICROPRUNE_PROFILE_LOG", "")
_seen: set[str] = set()
_writing = False              # our own os.open raises an "open" event: not recorded, no recursion


def _write(path: str) -> None:
    # One short O_APPEND write per line: lines from several processes never interleave.
    global _writing
    _writing = True
    try:
        # Not through a link the run put there, and never waiting for a reader of a FIFO
        fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK,
                     0o600)
        try:
            os.write(fd, (path + "\n").encode("utf-8", "surrogateescape"))
        finally:
            os.close(fd)
    except (OSError, ValueError):
        pass
    finally:
        _writing = False


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
    if _writing:
        return
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
    sys.addaudithook(_hook)
    atexit.register(_dump)
    _watch_fatal_signals()
