"""Bytecode for the pruned tree: compiled once at prune time instead of at every start.

Measured here (see README "Policies"): with no .pyc a read-only image recompiles on
every start (Flask app 964 ms -> 435 ms with .pyc, pandas 2.7 s -> 0.8 s), for
+1.0 MB and +4.3 MB of gzip. The .pyc files are written in *unchecked-hash* mode
(PEP 552): valid whatever mtimes the files get in an image layer, and the same
bytes for the same source. Only possible when the host Python is the target's.
"""
from __future__ import annotations

import importlib.util
import json
import multiprocessing
import os
import py_compile
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from microprune.trace import ignore_interrupts

# CPython's compiler needs memory far beyond a file's size on huge expressions (a 50 MB
# one-line module took 18 GB here): such files are left to compile at run time.
MAX_COMPILE_BYTES = 4 << 20


def compile_tree(files: Sequence[Path], roots: Sequence[Path], target: tuple[int, int], policy: str,
                 positions: bool = True) -> dict[str, Any]:
    """Compile the written .py files under ``roots`` (OUT/app, OUT/site-packages).
    ``positions=False``: without the column tables (`-X no_debug_ranges`), see
    compile_without_positions."""
    host = (sys.version_info[0], sys.version_info[1])
    sources = [f for f in files if f.suffix == ".py" and not f.is_symlink()
               and f.stat().st_size <= MAX_COMPILE_BYTES]
    too_big = sum(1 for f in files if f.suffix == ".py" and not f.is_symlink() and f.stat().st_size > MAX_COMPILE_BYTES)
    summary: dict[str, Any] = {"policy": policy, "compiled": 0, "failed": 0, "bytes": 0, "too_big": too_big}
    if policy == "none" or not sources:
        return {"bytecode": summary}
    if host != target:
        summary["policy"] = "none"
        summary["why"] = (f"the host runs Python {host[0]}.{host[1]}, the target is {target[0]}.{target[1]}: "
                          "bytecode can only be written by the target's interpreter")
        return {"bytecode": summary}
    jobs = [(path, _recorded_name(path, roots)) for path in sources]
    if positions:
        results = _compile_all(jobs)
    else:
        summary["positions"] = False
        done = compile_without_positions(Path(sys.executable), [(str(path), None, name) for path, name in jobs])
        results = [os.path.getsize(importlib.util.cache_from_source(str(path))) if ok else -1
                   for (path, _), ok in zip(jobs, done, strict=True)]
    summary["compiled"] = sum(1 for size in results if size >= 0)
    summary["failed"] = sum(1 for size in results if size < 0)
    summary["bytes"] = sum(size for size in results if size > 0)
    return {"bytecode": summary}


def _recorded_name(path: Path, roots: Sequence[Path]) -> str:
    """The file name stored in the code objects: relative to the tree, so the bytes do not
    depend on where OUT (or its staging directory) is. importlib replaces it with the real
    path when it loads the .pyc, so tracebacks still show where the file is."""
    for root in roots:
        if root in path.parents:
            return path.relative_to(root).as_posix()
    return path.name


def _compile_all(jobs: list[tuple[Path, str]]) -> list[int]:
    workers = min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1, 8)
    if workers < 2 or len(jobs) < 64:
        return [_compile_one(job) for job in jobs]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=ignore_interrupts,
                             initargs=(os.getpid(),)) as pool:
        return list(pool.map(_compile_one, jobs, chunksize=32))


def _compile_one(job: tuple[Path, str]) -> int:
    """Bytes written, or -1 when the host cannot compile it (a syntax error, newer syntax)."""
    path, recorded = job
    try:
        target = py_compile.compile(str(path), dfile=recorded, doraise=True, quiet=2,
                                    invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    except (py_compile.PyCompileError, OSError, ValueError, SyntaxError):
        return -1
    return os.path.getsize(target) if target else -1


_COMPILE_SCRIPT = r"""
import json, py_compile, sys
for source, cfile, dfile in json.loads(sys.stdin.read()):
    try:
        py_compile.compile(source, cfile=cfile, dfile=dfile, doraise=True, quiet=2,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        print("ok", flush=True)
    except Exception:
        print("failed", flush=True)
"""


def compile_without_positions(interpreter: Path, jobs: list[tuple[str, str | None, str]]) -> list[bool]:
    """Compile (source, .pyc path or None for __pycache__, recorded name) in ``interpreter``
    run with `-X no_debug_ranges`: bytecode without the column tables of PEP 657 (the ^^^^
    under a failing expression in tracebacks; file, line and function stay). CPython documents
    the flag for smaller code objects and .pyc files: a quarter less bytecode after gzip.
    Two processes, each given half the files; PYTHONHASHSEED=0, so the bytes repeat."""
    if not jobs:
        return []
    halves = [jobs[: len(jobs) // 2], jobs[len(jobs) // 2:]] if len(jobs) >= 64 else [jobs]
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "PYTHONHASHSEED": "0"}
    procs = [subprocess.Popen([str(interpreter), "-I", "-X", "no_debug_ranges", "-c", _COMPILE_SCRIPT],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True, env=env) for _ in halves]
    done: list[bool] = []
    try:
        for proc, half in zip(procs, halves, strict=True):
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(half))
            proc.stdin.close()
        for proc, half in zip(procs, halves, strict=True):
            assert proc.stdout is not None
            lines = proc.stdout.read().split()
            proc.wait(timeout=600)
            done.extend(line == "ok" for line in (lines + ["failed"] * len(half))[: len(half)])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return done
