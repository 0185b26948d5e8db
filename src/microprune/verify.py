"""Prove a pruned tree works: run the user's smoke command with only that tree visible.

The analyzer of the tree's language says how to hide the host (Python: an interpreter shim
with -S and PYTHONPATH on the pruned dirs; Node: no NODE_PATH, an empty HOME) and how to read
a failure (ModuleNotFoundError, Cannot find module, ENOENT ...). The command runs in its own
process group with a bounded time, and the group is killed on every way out.
"""
from __future__ import annotations

import contextlib
import html
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UsageError
from .paths import display, normalise
from .registry import get_analyzer

DEFAULT_TIMEOUT = 120.0
TAIL_CHARS = 4000
# What is searched for missing names: the cause comes first and a long stack trace may follow it
# (node's require stack), so more than the tail shown; bounded for a chatty command.
SEARCHED_BYTES = 1 << 20

RUN_TOKEN = "MICROPRUNE_RUN_TOKEN"
MAX_ESCAPE_SWEEPS = 5


@dataclass
class SmokeResult:
    passed: bool
    exit_code: int | None
    timed_out: bool
    missing: list[str] = field(default_factory=list)
    output_tail: str = ""
    searched_output: str = field(default="", repr=False)    # the last SEARCHED_BYTES, not reported
    escaped: int = 0          # processes that had left the command's process group (daemons), killed

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "exit_code": self.exit_code, "timed_out": self.timed_out,
                "missing": self.missing, "output_tail": self.output_tail, "escaped": self.escaped}


def read_tree_report(out: Path) -> dict[str, Any]:
    marker = out / "microprune.json"
    if not marker.is_file() or marker.is_symlink():
        raise UsageError(f"{display(out)} is not a tree written by `microprune prune` (no microprune.json)")
    try:
        report = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UsageError(f"{display(marker)} cannot be read: {err}") from err
    if not isinstance(report, dict) or "language" not in report or "app_out" not in report:
        raise UsageError(f"{display(marker)} is not a prune report")
    return report


def tree_dirs(out: Path, report: dict[str, Any]) -> tuple[Path, Path]:
    """The app and deps directories of the tree at OUT, wherever OUT lives now.

    The report's layout is relative to OUT; a path that would leave OUT is refused, since
    the report is input like any other file.
    """
    layout = report.get("layout")
    if not isinstance(layout, dict):
        raise UsageError(f"{display(out / 'microprune.json')} has no layout: prune again with this version")
    dirs = []
    for key in ("app", "deps"):
        rel = layout.get(key)
        if not isinstance(rel, str) or Path(rel).is_absolute() or ".." in Path(rel).parts:
            raise UsageError(f"{display(out / 'microprune.json')}: layout.{key} must be a path inside OUT")
        dirs.append(out / rel if rel not in ("", ".") else out)
    return dirs[0], dirs[1]


def verify_tree(out: Path, smoke: str, timeout: float = DEFAULT_TIMEOUT) -> SmokeResult:
    # absolute: the smoke runs in the app's directory, where a relative OUT means something else
    out = normalise(out)
    report = read_tree_report(out)
    analyzer = get_analyzer(report["language"], out)
    app_out, deps_out = tree_dirs(out, report)
    if not app_out.is_dir():
        raise UsageError(f"the pruned app {display(app_out)} is missing from {display(out)}")
    with tempfile.TemporaryDirectory(prefix="microprune-verify-") as scratch:
        env = dict(os.environ)
        overrides, removed = analyzer.smoke_environment(app_out, deps_out, report.get("target", {}), Path(scratch))
        for name in removed:
            env.pop(name, None)
        env.update(overrides)
        hidden = dirs_to_hide(out, analyzer.ancestor_search_dirs)
        result = _run(smoke, app_out, env, timeout, hidden)
    result.missing = missing_from_output(result.searched_output, analyzer.failure_patterns) if not result.passed else []
    return result


def _tail(text: str) -> str:
    """The last TAIL_CHARS of the output, from the start of a line (a cut name reads as a real one)."""
    if len(text) <= TAIL_CHARS:
        return text
    tail = text[-TAIL_CHARS:]
    newline = tail.find("\n")
    return tail[newline + 1:] if 0 <= newline < len(tail) - 1 else tail


def dirs_to_hide(out: Path, names: tuple[str, ...]) -> list[Path]:
    """Directories above OUT that the language would search (a node_modules in /srv when OUT is
    /srv/out): left visible, they could make a broken tree pass."""
    found = []
    for ancestor in out.resolve().parents:
        for name in names:
            candidate = ancestor / name
            if candidate.is_dir():
                found.append(candidate)
    return found


# Runs in a private mount namespace: an empty read-only tmpfs over each directory to hide,
# then the smoke command. unshare execs the shell, so the process group stays ours.
_HIDE_SCRIPT = ('cmd="$1"; shift; for d in "$@"; do '
                'mount -t tmpfs -o ro,size=4k,mode=555 microprune-hidden "$d" || exit 125; done; '
                'exec /bin/sh -c "$cmd"')


def _shell_argv(command: str, hidden: list[Path]) -> list[str]:
    if not hidden:
        return ["/bin/sh", "-c", command]
    names = ", ".join(display(d) for d in hidden)
    if not shutil.which("unshare"):
        raise UsageError(f"{names} above OUT would be visible to the smoke command and `unshare` "
                         "(util-linux) is missing to hide it: move OUT elsewhere")
    namespace = ["--mount"] if os.geteuid() == 0 else ["--user", "--map-root-user", "--mount"]
    probe = subprocess.run(["unshare", *namespace, "--propagation", "private", "true"],
                           capture_output=True, check=False)
    if probe.returncode != 0:
        raise UsageError(f"{names} above OUT would be visible to the smoke command and this user "
                         "cannot create a mount namespace to hide it: move OUT elsewhere, or run as root")
    return ["unshare", *namespace, "--propagation", "private", "/bin/sh", "-c", _HIDE_SCRIPT, "sh",
            command, *map(str, hidden)]


def _run(command: str, cwd: Path, env: dict[str, str], timeout: float,
         hidden: list[Path] | None = None) -> SmokeResult:
    """Run COMMAND in its own process group; its result is the shell's exit.

    Output goes to a temporary file, not a pipe: a server the command starts in the
    background would hold a pipe open and make us wait for it. Whatever the group left
    running is killed when the shell is done, and so is a daemon that left the group
    (setsid): every process of the run carries a token in its environment.
    """
    token = secrets.token_hex(16)
    with tempfile.TemporaryFile() as sink:
        proc = subprocess.Popen(_shell_argv(command, hidden or []), cwd=cwd, env={**env, RUN_TOKEN: token},
                                stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            _kill(proc)
            proc.wait()
            escaped = kill_escaped(token)
        sink.seek(0, os.SEEK_END)
        size = sink.tell()
        sink.seek(max(0, size - SEARCHED_BYTES))
        text = sink.read().decode("utf-8", "replace")
    code = None if timed_out else proc.returncode
    return SmokeResult(code == 0, code, timed_out, [], _tail(text), text, escaped)


def kill_escaped(token: str) -> int:
    """SIGKILL every process whose environment carries this run's token: what a command left
    running outside its process group. Repeated while it finds some (one may fork as it dies)."""
    needle = f"{RUN_TOKEN}={token}".encode()
    killed: set[int] = set()
    for _ in range(MAX_ESCAPE_SWEEPS):
        found = [pid for pid in _pids() if pid not in killed and _environ_has(pid, needle)]
        if not found:
            break
        for pid in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
            killed.add(pid)
    return len(killed)


def _pids() -> list[int]:
    try:
        return [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc"))) if pid != os.getpid()]
    except OSError:
        return []


def _environ_has(pid: int, needle: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            return needle in handle.read(1 << 20).split(b"\0")
    except OSError:
        return False                    # gone, or another user's


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def missing_from_output(text: str, patterns: tuple[str, ...]) -> list[str]:
    """Names and paths a failure says are missing, in the order they appear, once each. A
    server's HTML error page escapes the quotes (`Cannot find module &#39;pug&#39;`): it is
    read unescaped too."""
    found: list[str] = []
    unescaped = html.unescape(text)
    for pattern in patterns:
        for match in (*re.finditer(pattern, text), *(re.finditer(pattern, unescaped) if unescaped != text else ())):
            name = match.group(1)
            if "${" in name:
                continue                # the throwing line of source, printed above the error
            if name and name not in found:
                found.append(name)
    return found
