"""Effects: write a plan out as a NEW tree. The input is only ever read.

The tree is built in a staging directory next to OUT and renamed into place
at the end, so an interrupted run leaves either the old OUT or the new one,
never half of one. Sources are opened with O_NOFOLLOW: a file swapped for a
symlink since the walk is refused, not followed out of the tree.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .analyzer import Layout
from .errors import OutputError
from .inventory import Inventory
from .paths import display, is_within, normalise
from .plan import PrunePlan
from .progress import progress

T = TypeVar("T")

MARKER = "microprune.json"
STAGING_TAG = ".microprune-partial-"
STAGING_MARKER = ".microprune-staging"       # inside a staging tree until it becomes OUT


@dataclass(frozen=True)
class Written:
    out: Path
    app_out: Path
    deps_out: Path


def check_out_dir(out: Path, app_dir: Path, deps_dir: Path | None, force: bool) -> Path:
    """Refuse an OUT that would overwrite, contain or sit inside what we read.

    Compared through real paths: an OUT spelled through a symlink must not reach
    the input. OUT inside the app is fine (the walk leaves it out); inside the
    deps it is not. --force never replaces the current directory, an ancestor of
    it, or the home directory.
    """
    out = normalise(out)
    real_out = Path(os.path.realpath(out))
    for source in (app_dir, deps_dir):
        if source is None:
            continue
        real_source = Path(os.path.realpath(source))
        if is_within(real_source, real_out) or is_within(source, out):
            raise OutputError(f"--out {display(out)} contains the input {display(source)}; choose another directory")
    if deps_dir is not None and (is_within(real_out, Path(os.path.realpath(deps_dir))) or is_within(out, deps_dir)):
        raise OutputError(f"--out {display(out)} is inside the dependencies {display(deps_dir)}")
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise OutputError(f"--out {display(out)} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise OutputError(f"--out {display(out)} is not empty; pass --force to replace it")
        protected = [Path(os.path.realpath(Path.cwd())), Path(os.path.realpath(Path.home()))]
        if any(is_within(p, real_out) for p in protected):
            raise OutputError(f"--out {display(out)} is the current or home directory (or holds it); "
                              "--force will not replace it")
    return out


Finisher = Callable[[Path, Path, list[Path]], dict[str, Any]]


def write_tree(plan: PrunePlan, inventory: Inventory, layout: Layout, out: Path,
               report: dict[str, Any], finish: Finisher | None = None) -> Written:
    """Write the kept files; ``finish`` (the analyzer's, e.g. bytecode) runs on the staged
    tree before it is renamed into place, and its summary joins the report."""
    try:
        return _write_tree(plan, inventory, layout, out, report, finish)
    except OutputError:
        raise
    except OSError as err:
        raise OutputError(f"cannot write {display(out)}: {err.strerror or err}") from err


def _write_tree(plan: PrunePlan, inventory: Inventory, layout: Layout, out: Path,
                report: dict[str, Any], finish: Finisher | None) -> Written:
    targets = {"app": layout.app_dir, "deps": layout.deps_dir}
    written = Written(out, out / layout.app_dir, out / layout.deps_dir)
    with _staging(out) as stage:
        for sub in {layout.app_dir, layout.deps_dir}:
            (stage / sub).mkdir(parents=True, exist_ok=True)
        copied: list[Path] = []
        kept = list(plan.kept())
        linked: dict[tuple[int, int], Path] = {}      # hardlinked inputs stay hardlinked in OUT
        with progress().task("copying kept files", total=len(kept)) as bar:
            for decision in kept:
                copied.append(_guarded(decision.path, _place, inventory, decision.path, stage, targets, linked))
                bar.advance()
        for directory in plan.kept_dirs:     # namespace packages without kept files
            _guarded(directory, _make_dir, inventory, directory, stage, targets)
        for link in plan.dir_links:
            _guarded(link, _place_link, inventory, link, inventory.dir_links[link], stage, targets)
        if finish is not None:
            report.update(finish(stage / layout.app_dir, stage / layout.deps_dir, copied))
        _guarded(stage / MARKER, (stage / MARKER).write_text,
                 json.dumps(report, indent=2, sort_keys=True) + "\n", "utf-8")
    return written


def _guarded(path: Path, action: Callable[..., T], *args: Any) -> T:
    """An OS error while copying is the user's to fix: say which file, then clean up."""
    try:
        return action(*args)
    except OSError as err:
        raise OutputError(f"cannot copy {display(path)}: {err.strerror or err}; nothing was written") from err


@contextmanager
def _staging(out: Path) -> Iterator[Path]:
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(out)
    stage = out.parent / f".{out.name}{STAGING_TAG}{os.getpid()}"
    # Removed on any way out once made here, never otherwise (a directory that only looks like
    # ours is left alone): with the signals held, no Ctrl-C lands between making and knowing it.
    made = False
    try:
        with _signals_held():
            stage.mkdir(mode=0o755)
            made = True
        (stage / STAGING_MARKER).write_text("a microprune run's unfinished output; removed by the next run\n")
        yield stage
        with _signals_held():
            _commit(stage, out)
    except BaseException:
        if made:
            _remove_despite_interrupts(stage)
        raise


def _remove_despite_interrupts(stage: Path) -> None:
    """Remove the staging tree even when a burst of Ctrl-C arrives: one that lands before the
    signals are held (the handler runs between any two bytecodes) starts the removal again,
    and is raised once the tree is gone."""
    interrupted: KeyboardInterrupt | None = None
    while True:
        try:
            with _signals_held():
                shutil.rmtree(stage, ignore_errors=True)
            break
        except KeyboardInterrupt as err:     # held signals are delivered as the block ends
            interrupted = err
            if not os.path.lexists(stage):
                break
    if interrupted is not None:
        raise interrupted


@contextmanager
def _signals_held() -> Iterator[None]:
    """Block SIGINT/SIGTERM for a moment; they are delivered when it ends."""
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _remove_stale_staging(out: Path) -> None:
    """Left by a run that was killed (SIGKILL cannot be caught). Only what a run of ours made:
    the exact name with the pid of a process that is gone, and our marker inside (a staging
    tree) or our report (the previous OUT, set aside) -- never a directory that merely looks so."""
    pattern = re.compile(re.escape(f".{out.name}{STAGING_TAG}") + r"(old-)?(\d+)")
    for stale in out.parent.glob(f".{out.name}{STAGING_TAG}*"):
        found = pattern.fullmatch(stale.name)
        if found is None or not stale.is_dir() or stale.is_symlink() or _alive(int(found.group(2))):
            continue
        ours = stale / ("microprune.json" if found.group(1) else STAGING_MARKER)
        if ours.is_file() and not ours.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _commit(stage: Path, out: Path) -> None:
    (stage / STAGING_MARKER).unlink(missing_ok=True)
    if not out.exists():
        os.rename(stage, out)
        return
    old = out.parent / f".{out.name}{STAGING_TAG}old-{os.getpid()}"
    os.rename(out, old)
    try:
        os.rename(stage, out)
    except BaseException:
        os.rename(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _destination(inventory: Inventory, path: Path, stage: Path, targets: dict[str, str]) -> Path:
    root_name = inventory.root_of(path)
    if root_name is None:
        raise OutputError(f"internal: {display(path)} is outside every root")
    relative = path.relative_to(inventory.roots[root_name])
    dest = normalise(stage / targets[root_name] / relative)
    if not is_within(dest, stage):
        raise OutputError(f"refusing to write outside OUT: {display(dest)}")
    return dest


def _place(inventory: Inventory, path: Path, stage: Path, targets: dict[str, str],
           linked: dict[tuple[int, int], Path] | None = None) -> Path:
    dest = _destination(inventory, path, stage, targets)
    dest.parent.mkdir(parents=True, exist_ok=True)
    info = inventory.files[path]
    if info.link is not None:
        _place_link(inventory, path, info.link, stage, targets)
    else:
        _copy_file(path, dest, info.mode, linked)
    return dest


def _make_dir(inventory: Inventory, directory: Path, stage: Path, targets: dict[str, str]) -> None:
    _destination(inventory, directory, stage, targets).mkdir(parents=True, exist_ok=True)


def _place_link(inventory: Inventory, link: Path, target: Path, stage: Path, targets: dict[str, str]) -> None:
    dest = _destination(inventory, link, stage, targets)
    dest_target = _destination(inventory, target, stage, targets)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Relative, so the tree can be moved or layered into an image as it is.
    os.symlink(os.path.relpath(dest_target, dest.parent), dest)


def _copy_file(source: Path, dest: Path, mode: int, linked: dict[tuple[int, int], Path] | None = None) -> None:
    """Copy one regular file (never through a link). A file hardlinked to one already copied
    becomes a hardlink to that copy: the same bytes once, as in the input."""
    src = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(src)
        if not stat.S_ISREG(st.st_mode):
            raise OutputError(f"{display(source)} changed into a non-regular file while running")
        key = (st.st_dev, st.st_ino)
        if linked is not None and st.st_nlink > 1:
            if key in linked:
                os.link(linked[key], dest)
                return
            linked[key] = dest
        # Keep the execute bits, normalise the rest: no setuid, no world-writable files.
        out_mode = 0o755 if mode & 0o111 else 0o644
        dst = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, out_mode)
        try:
            _copy_bytes(src, dst, st.st_size)
        finally:
            os.close(dst)
        os.chmod(dest, out_mode)
    finally:
        os.close(src)


def _copy_bytes(src: int, dst: int, size: int) -> None:
    offset = 0
    try:
        while offset < size:
            sent = os.sendfile(dst, src, offset, size - offset)
            if sent == 0:
                break
            offset += sent
    except OSError:
        os.lseek(src, offset, os.SEEK_SET)
        while chunk := os.read(src, 1 << 20):
            os.write(dst, chunk)
