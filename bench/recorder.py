"""Record which files a Python program really loads, to measure a runtime lower bound.

Usage (stdlib only; run it with the same interpreter flags as the program):

    python3 -S recorder.py OUTFILE [--under DIR]... -- -m MODULE [ARGS...]
    python3 -S recorder.py OUTFILE [--under DIR]... -- SCRIPT.py [ARGS...]

The part after `--` is what you would have given to `python3` itself. The
recorder installs a `sys.addaudithook` hook, then runs the program in the same
process (like `python -m` / `python script.py`: same sys.argv and sys.path[0]).
It records:

  * every `open` audit event (source, bytecode, data files, dist-info files),
  * the file named by every `import` audit event,
  * every `ctypes.dlopen` audit event,
  * at exit: the `__file__` of every module in sys.modules and every file
    mapped in /proc/self/maps (compiled extensions and their shared libraries).

Only paths under one of the --under directories are kept (all paths if none is
given). At exit each process appends its paths to OUTFILE, one per line, in a
single O_APPEND write, so forked children (gunicorn workers inherit the hook
and the atexit handler) and their parent merge into one file. Read it back with
`load(OUTFILE)`. A process killed by a signal it does not handle (SIGKILL)
records nothing; SIGTERM, when the program leaves it at its default, is made
a normal exit (status 143) so that the paths are written.
"""

from __future__ import annotations

import atexit
import os
import runpy
import signal
import sys

_seen: set[str] = set()
_under: tuple[str, ...] = ()
_dumping = False


def _note(path: object) -> None:
    """Remember one path (str or bytes); ignore file descriptors and junk."""
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if isinstance(path, str) and path:
        _seen.add(os.path.abspath(path))


def _hook(event: str, args: tuple) -> None:
    """The audit hook: must be cheap and must never raise."""
    if _dumping:
        return
    try:
        if event == "open" or event == "ctypes.dlopen":
            _note(args[0])
        elif event == "import" and len(args) > 1:
            _note(args[1])
    except Exception:  # noqa: BLE001 - an audit hook must not break the program
        pass


def _mapped_files() -> list[str]:
    """Files mapped into this process (extension modules and the libraries they load)."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            lines = maps.read().splitlines()
    except OSError:
        return []
    paths = []
    for line in lines:
        fields = line.split(None, 5)
        if len(fields) == 6 and fields[5].startswith("/"):
            paths.append(fields[5].removesuffix(" (deleted)"))
    return paths


def _module_files() -> list[str]:
    """The __file__ of every module loaded so far."""
    files = []
    for module in list(sys.modules.values()):
        name = getattr(module, "__file__", None)
        if isinstance(name, str):
            files.append(name)
    return files


def _keep(path: str) -> bool:
    if not _under:
        return True
    return any(path == root or path.startswith(root + os.sep) for root in _under)


def dump(outfile: str) -> None:
    """Append what this process loaded to outfile (called at exit)."""
    global _dumping
    _dumping = True
    for path in _module_files() + _mapped_files():
        _note(path)
    kept = sorted({os.path.realpath(p) for p in _seen} | _seen)
    data = "".join(p + "\n" for p in kept if _keep(os.path.realpath(p)))
    fd = os.open(outfile, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data.encode("utf-8", "surrogateescape"))
    finally:
        os.close(fd)


def load(outfile: str) -> set[str]:
    """The merged set of real paths recorded by every process that wrote outfile."""
    try:
        with open(outfile, encoding="utf-8", errors="surrogateescape") as f:
            return {os.path.realpath(line) for line in f.read().splitlines() if line}
    except FileNotFoundError:
        return set()


def _parse(argv: list[str]) -> tuple[str, list[str], list[str]]:
    """Split `OUTFILE [--under DIR]... -- TARGET...` into its parts."""
    if "--" not in argv or not argv or argv[0].startswith("-"):
        raise SystemExit(__doc__)
    split = argv.index("--")
    head, target = argv[:split], argv[split + 1 :]
    outfile, options = head[0], head[1:]
    under = []
    while options:
        if options[0] != "--under" or len(options) < 2:
            raise SystemExit(f"recorder: unexpected argument {options[0]!r}")
        under.append(os.path.realpath(options[1]))
        options = options[2:]
    if not target or (target[0] == "-m" and len(target) < 2):
        raise SystemExit("recorder: nothing to run after --")
    return os.path.abspath(outfile), under, target


def _run(target: list[str]) -> None:
    """Run `-m MODULE ARGS` or `SCRIPT ARGS` the way the python command would."""
    if target[0] == "-m":
        sys.argv = [target[1], *target[2:]]
        sys.path[0] = os.getcwd()
        runpy.run_module(target[1], run_name="__main__", alter_sys=True)
    else:
        script = os.path.abspath(target[0])
        sys.argv = [target[0], *target[1:]]
        sys.path[0] = os.path.dirname(os.path.realpath(script))
        runpy.run_path(script, run_name="__main__")


def _exit_on_sigterm(signum: int, frame: object) -> None:
    sys.exit(128 + signum)


def main(argv: list[str]) -> None:
    global _under
    outfile, under, target = _parse(argv)
    _under = tuple(under)
    atexit.register(dump, outfile)
    # SIGTERM's default action skips atexit. Servers that take SIGTERM over and
    # re-raise it once stopped (uvicorn) restore this handler first, so they exit
    # through it too.
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    sys.addaudithook(_hook)
    _run(target)


if __name__ == "__main__":
    main(sys.argv[1:])
