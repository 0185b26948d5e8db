"""The world as microprune sees it: every file under the roots it was given.

This is the one place that walks the input. Everything else asks the
inventory (``is_file``, ``listdir``, ``read_bytes``) instead of the disk, so
nothing outside the roots can be reached: symlinks are recorded, never
followed out of the tree, and a read of a path that is not in the inventory is
refused. Directory symlinks that stay inside the tree are recorded as aliases.
"""
from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .model import Diagnostic
from .paths import display, is_within, normalise

MAX_LINK_HOPS = 40          # same bound as the kernel's ELOOP


@dataclass(frozen=True)
class FileInfo:
    root: str                       # name of the root it lives under ("app", "deps")
    size: int
    link: Path | None = None        # in-tree target when this entry is a symlink
    mode: int = 0o644


@dataclass
class Inventory:
    roots: dict[str, Path]
    files: dict[Path, FileInfo] = field(default_factory=dict)
    dirs: dict[Path, list[str]] = field(default_factory=dict)     # dir -> child names
    dir_links: dict[Path, Path] = field(default_factory=dict)      # link -> in-tree dir
    excluded: dict[Path, str] = field(default_factory=dict)        # path -> why
    diagnostics: list[Diagnostic] = field(default_factory=list)
    # dir -> child name -> the child's Path: the very objects that key `files` and `dirs`,
    # so lookups compare by identity and hash from cache (building a Path is slow).
    children: dict[Path, dict[str, Path]] = field(default_factory=dict)
    by_text: dict[str, Path] = field(default_factory=dict)         # str(path) -> that same object

    # -- queries (no disk access) -------------------------------------------------
    def canonical(self, path: Path) -> Path:
        """Map ``path`` through in-tree directory symlinks to a real tree path."""
        if not self.dir_links or path in self.files or path in self.dirs:
            return path
        for _ in range(MAX_LINK_HOPS):
            if path in self.files or path in self.dirs:
                return path
            for parent in (path, *path.parents):        # the path itself may be the link
                target = self.dir_links.get(parent)
                if target is not None:
                    path = target / path.relative_to(parent)
                    break
            else:
                return path
        return path

    def is_file(self, path: Path) -> bool:
        return self.canonical(path) in self.files

    def is_dir(self, path: Path) -> bool:
        return self.canonical(path) in self.dirs

    def listdir(self, path: Path) -> list[str]:
        return self.dirs.get(self.canonical(path), [])

    def child(self, directory: Path, name: str) -> Path:
        """``directory / name``, as the walk's own object when there is one. Through a
        directory link it stays a path under the link, as ``/`` gives it."""
        known = self.children.get(directory)
        path = known.get(name) if known is not None else None
        return path if path is not None else directory / name

    def path(self, text: str) -> Path:
        """``Path(text)`` for a normalised absolute path, as the walk's own object when there is one."""
        known = self.by_text.get(text)
        return known if known is not None else Path(text)

    def root_of(self, path: Path) -> str | None:
        info = self.files.get(path)
        if info is not None:
            return info.root
        # The most specific root wins: the deps may sit inside the app (APP/.venv/...).
        for name, root in sorted(self.roots.items(), key=lambda kv: len(kv[1].parts), reverse=True):
            if is_within(path, root):
                return name
        return None

    def walk_files(self, top: Path) -> Iterator[Path]:
        """Every file at or below ``top`` (a directory of the tree), sorted."""
        top = self.canonical(top)
        stack = [top]
        while stack:
            current = stack.pop()
            for name in sorted(self.dirs.get(current, []), reverse=True):
                child = self.child(current, name)
                if child in self.dirs:
                    stack.append(child)
                elif child in self.files:
                    yield child

    # -- the one reader -----------------------------------------------------------
    def read_bytes(self, path: Path) -> bytes:
        """Read a file of the tree; refuses anything the walk did not record."""
        real = self.canonical(path)
        info = self.files.get(real)
        if info is None:
            raise FileNotFoundError(f"not in the inventory: {display(path)}")
        if info.link is not None:
            real = self.canonical(info.link)
            if real not in self.files or self.files[real].link is not None:
                raise FileNotFoundError(f"dangling link: {display(path)}")
        # O_NOFOLLOW and O_NONBLOCK: a file swapped for a link or a FIFO since the walk
        # fails here instead of leading us out of the tree or hanging.
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(f"not a regular file: {display(real)}")
            with os.fdopen(fd, "rb", closefd=False) as handle:
                return handle.read()
        finally:
            os.close(fd)

    def read_text(self, path: Path) -> str | None:
        """A small text file of the tree (metadata, config), or None if absent/unreadable."""
        if not self.is_file(path):
            return None
        try:
            return self.read_bytes(path).decode("utf-8", "replace")
        except OSError:
            return None



@dataclass(frozen=True)
class WalkRules:
    """What the walk leaves out before anything is analysed."""

    exclude_paths: frozenset[Path] = frozenset()
    exclude_dir_names: frozenset[str] = frozenset()
    # A directory holding one of these files is left out whole (an earlier output, a venv).
    exclude_markers: tuple[str, ...] = ()


def take_inventory(roots: dict[str, Path], rules: dict[str, WalkRules]) -> Inventory:
    """Walk every root with its own rules (the app leaves out caches; the deps keep
    them, so that what is dropped is counted)."""
    inventory = Inventory(roots={name: normalise(p) for name, p in roots.items()})
    for name, root in inventory.roots.items():
        # A root inside another (deps inside the app) is walked once, as itself.
        nested = frozenset(p for n, p in inventory.roots.items() if n != name and p != root and is_within(p, root))
        _walk(inventory, name, root, rules.get(name, WalkRules()), nested)
    _link_symlinks(inventory)
    return inventory


def _walk(inv: Inventory, name: str, root: Path, rules: WalkRules, nested_roots: frozenset[Path]) -> None:
    stack = [root]
    inv.dirs.setdefault(root, [])
    while stack:
        current = stack.pop()
        try:
            entries = sorted(os.scandir(current), key=lambda e: e.name)
        except OSError as err:
            inv.diagnostics.append(Diagnostic("unreadable-dir", f"cannot list directory: {err.strerror}", current))
            continue
        children = inv.dirs.setdefault(current, [])
        child_paths = inv.children.setdefault(current, {})
        for entry in entries:
            path = child_paths[entry.name] = _child(current, entry.name)
            inv.by_text[entry.path] = path
            if path in nested_roots:
                continue                     # walked as its own root
            if path in rules.exclude_paths:
                inv.excluded[path] = "excluded"
                continue
            _record(inv, name, path, entry, rules, children, stack)


def _record(inv: Inventory, name: str, path: Path, entry: os.DirEntry[str], rules: WalkRules,
            children: list[str], stack: list[Path]) -> None:
    try:
        st = entry.stat(follow_symlinks=False)
    except OSError as err:
        inv.diagnostics.append(Diagnostic("unreadable", f"cannot stat: {err.strerror}", path))
        return
    if stat.S_ISDIR(st.st_mode):
        if entry.name in rules.exclude_dir_names or _has_marker(path, rules.exclude_markers):
            inv.excluded[path] = "excluded"
            return
        children.append(entry.name)
        inv.dirs.setdefault(path, [])
        stack.append(path)
    elif stat.S_ISREG(st.st_mode):
        children.append(entry.name)
        inv.files[path] = FileInfo(name, st.st_size, None, stat.S_IMODE(st.st_mode))
    elif stat.S_ISLNK(st.st_mode):
        children.append(entry.name)
        inv.files[path] = FileInfo(name, 0, _link_target(path), 0o777)
    else:
        inv.diagnostics.append(Diagnostic("special-file", "not a regular file, directory or symlink; skipped", path))


# Path.iterdir's own way to make a child from a plain name (a third of the cost of `/`);
# private, so only where this Python has it.
_CHILD_FROM_NAME = getattr(Path, "_make_child_relpath", None)


def _child(directory: Path, name: str) -> Path:
    if _CHILD_FROM_NAME is not None:
        child = _CHILD_FROM_NAME(directory, name)
        if isinstance(child, Path):
            return child
    return directory / name


def _has_marker(directory: Path, markers: tuple[str, ...]) -> bool:
    return any(os.path.isfile(directory / m) and not os.path.islink(directory / m) for m in markers)


def _link_target(path: Path) -> Path | None:
    try:
        raw = os.readlink(path)
    except OSError:
        return None
    return normalise(path.parent / raw)


def _link_symlinks(inv: Inventory) -> None:
    """Classify every symlink once the whole tree is known.

    A link stays in the tree only if following it, hop by hop through the
    inventory, ends on a recorded file or directory inside one of the roots.
    """
    links = [p for p, info in inv.files.items() if info.link is not None]
    targets = {path: _follow(inv, path) for path in links}
    for path, target in targets.items():
        if target is None:
            _drop_link(inv, path, "symlink-outside",
                       "symlink leaves the tree, is broken or loops; not followed, not copied")
        elif target in inv.dirs:
            del inv.files[path]
            inv.dir_links[path] = target
        else:
            info = inv.files[path]
            inv.files[path] = FileInfo(info.root, 0, target, info.mode)


def _follow(inv: Inventory, path: Path) -> Path | None:
    current = path
    for _ in range(MAX_LINK_HOPS):
        info = inv.files.get(current)
        if info is None:
            if current in inv.dirs and any(is_within(current, r) for r in inv.roots.values()):
                return current
            alias = _through_dir_link(inv, current)
            if alias is None or alias == current:
                return None
            current = alias
            continue
        if info.link is None:
            return current
        current = info.link
    return None


def _through_dir_link(inv: Inventory, path: Path) -> Path | None:
    for parent in path.parents:
        link_info = inv.files.get(parent)
        if link_info is not None and link_info.link is not None:
            target = _follow(inv, parent) if parent != path else None
            if target is not None and target in inv.dirs:
                return target / path.relative_to(parent)
            return None
        target = inv.dir_links.get(parent)
        if target is not None:
            return target / path.relative_to(parent)
    return None


def _drop_link(inv: Inventory, path: Path, code: str, message: str) -> None:
    del inv.files[path]
    children = inv.dirs.get(path.parent)
    if children is not None and path.name in children:
        children.remove(path.name)
    inv.excluded[path] = "unsafe"
    inv.diagnostics.append(Diagnostic(code, message, path))
