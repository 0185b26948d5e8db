"""Find modules the way CPython's PathFinder/FileFinder does, over an explicit path list.

The search path is the app root (``sys.path[0]`` of a script), then the
stdlib (provided by the runtime: not ours to keep), then the deps and the
directories their ``.pth`` files add. Only the inventory is consulted, so the
result depends on the deps, never on the interpreter running microprune.
"""
from __future__ import annotations

import re

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from microprune.inventory import Inventory
from microprune.paths import is_within

_PKGUTIL_MARKERS = (b"extend_path", b"declare_namespace")


@dataclass(frozen=True)
class Module:
    name: str
    file: Path | None                   # None for a namespace package
    search_dirs: tuple[Path, ...] = ()  # __path__ of a package, () for a plain module

    @property
    def is_package(self) -> bool:
        return bool(self.search_dirs)


EXTERNAL = "external"       # provided by the runtime (stdlib / builtin)


def absolute_name(package: str, level: int, target: str) -> str | None:
    """`from ..x import y` in package `a.b.c` (level 2, target `x`) -> `a.b.x`; None when the
    dots go beyond the top-level package, as Python refuses it."""
    if not level:
        return target or None
    parts = package.split(".") if package else []
    if level - 1 >= len(parts):
        return None
    return ".".join(parts[: len(parts) - (level - 1)] + ([target] if target else [])) or None


class ModuleFinder:
    def __init__(self, inventory: Inventory, app_paths: list[Path], deps_path: list[Path],
                 extension_suffixes: tuple[str, ...], runtime_modules: frozenset[str]) -> None:
        self.inventory = inventory
        self.app_root = app_paths[0]
        self.app_paths = tuple(app_paths)       # the app root, then APP/src for a src layout
        self.deps_path = deps_path
        self.runtime_modules = runtime_modules
        # FileFinder's order: extension modules, then source, then bytecode.
        self.module_suffixes = extension_suffixes + (".py", ".pyc")
        self._cache: dict[str, Module | str | None] = {}
        self._names: dict[Path, str | None] = {}
        self._listing: dict[Path, tuple[frozenset[str], frozenset[str]]] = {}

    def _entries(self, directory: Path) -> tuple[frozenset[str], frozenset[str]]:
        """(file names, directory names) of a directory, from the inventory, cached."""
        listing = self._listing.get(directory)
        if listing is None:
            names = self.inventory.listdir(directory)
            dirs = frozenset(n for n in names if self.inventory.is_dir(self.inventory.child(directory, n)))
            listing = self._listing[directory] = (frozenset(names) - dirs, dirs)
        return listing

    def file_names(self, directory: Path) -> frozenset[str]:
        return self._entries(directory)[0]

    def directory_names(self, directory: Path) -> frozenset[str]:
        return self._entries(directory)[1]

    # -- names of files ----------------------------------------------------------
    def module_name(self, path: Path) -> str | None:
        """The dotted name a file is imported as, or None if it is not a module."""
        if path not in self._names:
            self._names[path] = self._module_name(path)
        return self._names[path]

    def _module_name(self, path: Path) -> str | None:
        # The most specific root wins: the deps may sit inside the app (APP/.venv).
        roots = sorted([*self.app_paths, *self.deps_path], key=lambda r: len(r.parts), reverse=True)
        for root in roots:
            if is_within(path, root) and path != root:
                parts = list(path.relative_to(root).parts)
                stem = self.strip_suffix(parts[-1])
                if stem is None:
                    return None
                parts[-1] = stem
                if parts[-1] == "__init__":
                    parts.pop()
                if parts and all(_importable_name(p) for p in parts):
                    return ".".join(parts)
        return None

    def strip_suffix(self, filename: str) -> str | None:
        for suffix in self.module_suffixes:
            if filename.endswith(suffix):
                return filename[: -len(suffix)]
        return None

    def is_module_file(self, path: Path) -> bool:
        stem = self.strip_suffix(path.name)
        return stem is not None and _importable_name(stem)

    def package_of(self, path: Path) -> str | None:
        """The package a file's relative imports are relative to."""
        name = self.module_name(path)
        if name is None:
            return None
        if self.strip_suffix(path.name) == "__init__":
            return name
        return name.rpartition(".")[0]

    # -- lookups -------------------------------------------------------------------
    def find(self, fullname: str) -> Module | str | None:
        if fullname in self._cache:
            return self._cache[fullname]
        result = self._find(fullname)
        self._cache[fullname] = result
        return result

    def chain(self, fullname: str) -> list[Module] | str | None:
        """``import a.b.c`` runs a, a.b and a.b.c: all three, or None."""
        parts = fullname.split(".")
        found: list[Module] = []
        for i in range(1, len(parts) + 1):
            result = self.find(".".join(parts[:i]))
            if result == EXTERNAL:
                return EXTERNAL
            if not isinstance(result, Module):
                return None
            found.append(result)
        return found

    def _find(self, fullname: str) -> Module | str | None:
        if not fullname or any(not _importable_name(p) for p in fullname.split(".")):
            return None
        parent_name, _, tail = fullname.rpartition(".")
        if not parent_name:
            return self._find_top(tail)
        parent = self.find(parent_name)
        if parent == EXTERNAL:
            return EXTERNAL
        if not isinstance(parent, Module) or not parent.is_package:
            return None
        return self._find_in(fullname, tail, parent.search_dirs)

    def _find_top(self, name: str) -> Module | str | None:
        # The app shadows the stdlib (sys.path[0] comes first); the stdlib shadows the deps.
        in_app = self._find_in(name, name, self.app_paths)
        if isinstance(in_app, Module) and in_app.file is not None:
            return in_app
        if name in self.runtime_modules:
            return EXTERNAL
        return self._find_in(name, name, (*self.app_paths, *self.deps_path))

    def _find_in(self, fullname: str, tail: str, dirs: tuple[Path, ...]) -> Module | None:
        if tail == "__pycache__":          # bytecode caches are never packages
            return None
        portions: list[Path] = []
        for directory in dirs:
            files, subdirs = self._entries(directory)
            if tail in subdirs:
                candidate = self.inventory.child(directory, tail)
                init = self._first_file(candidate, "__init__")
                if init is not None:
                    return Module(fullname, init, self._package_path(fullname, candidate, init, dirs))
            module = self._first_file(directory, tail, files)
            if module is not None:
                return Module(fullname, module)
            if tail in subdirs:
                portions.append(self.inventory.child(directory, tail))        # PEP 420 namespace portion
        if portions:
            return Module(fullname, None, tuple(portions))
        return None

    def _first_file(self, directory: Path, stem: str, files: frozenset[str] | None = None) -> Path | None:
        """directory/stem + the first module suffix that exists (FileFinder's order)."""
        if files is None:
            files = self._entries(directory)[0]
        for suffix in self.module_suffixes:
            if stem + suffix in files:
                return self.inventory.child(directory, stem + suffix)
        return None

    def _package_path(self, fullname: str, directory: Path, init: Path, dirs: tuple[Path, ...]) -> tuple[Path, ...]:
        """pkgutil/pkg_resources-style namespace packages span every same-named directory."""
        if init.suffix != ".py" or not self._is_pkgutil_namespace(init):
            return (directory,)
        tail = fullname.rpartition(".")[2]
        spread = [self.inventory.child(d, tail) for d in dirs if tail in self._entries(d)[1]]
        return tuple(dict.fromkeys([directory, *spread]))

    def _is_pkgutil_namespace(self, init: Path) -> bool:
        try:
            data = self.inventory.read_bytes(init)
        except OSError:
            return False
        return any(marker in data for marker in _PKGUTIL_MARKERS)

    def submodules(self, package: Module, recursive: bool = False) -> Iterator[Module]:
        """Modules and subpackages directly in (or below) a package's directories."""
        seen: set[str] = set()
        for directory in package.search_dirs:
            for entry in sorted(self.inventory.listdir(directory)):
                path = self.inventory.child(directory, entry)
                name = entry if self.inventory.is_dir(path) else self.strip_suffix(entry)
                if not name or not name.isidentifier() or name in seen or name == "__init__":
                    continue
                found = self.find(f"{package.name}.{name}")
                if isinstance(found, Module):
                    seen.add(name)
                    yield found
                    if recursive and found.is_package:
                        yield from self.submodules(found, recursive=True)


# mypyc's shared runtime of a compiled wheel is a top-level module named by a hash, often starting
# with a digit ("85cae5375ceb5d1ca6c6__mypyc"): no `import` statement can name it, but the C code
# imports it by that name.
_MYPYC_RUNTIME = re.compile(r"^[0-9a-f]{8,64}__mypyc$")


def _importable_name(name: str) -> bool:
    return name.isidentifier() or _MYPYC_RUNTIME.match(name) is not None
