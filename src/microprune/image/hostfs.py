"""Files of the local runtime copied into the base layer, at their host paths.

A host path is added with every symlink on the way kept as a symlink (Debian's /lib -> usr/lib,
libc.so.6 -> libc-2.36.so ...), so the image resolves names the way the host does. Shared
libraries are found by reading ELF headers (DT_NEEDED, RPATH/RUNPATH, PT_INTERP), never by
running ldd. Files with debug sections are stripped on a copy (checked loadable, else kept).
"""
from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterable
from pathlib import Path

from ..elf import interpreter, is_elf, read_dynamic
from ..errors import MicropruneError
from ..native import strip_debug
from .layer import Layer

MAX_LINK_HOPS = 40
# The dynamic loader's default search path on Debian/Ubuntu x86_64 and others (after RPATH).
SYSTEM_LIB_DIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu",
                   "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib", "/usr/local/lib")


class HostFiles:
    """Collects host files (and the links leading to them) into one layer."""

    def __init__(self, layer: Layer, scratch: Path, strip: bool = True) -> None:
        self.layer = layer
        self.scratch = scratch
        self.strip = strip
        self.added: set[str] = set()
        self.real_files: set[str] = set()
        self.missing: list[str] = []

    def add(self, path: str, hops: int = 0) -> str | None:
        """Add a host path; returns the real path of the file or directory, or None."""
        path = os.path.normpath(path)
        if hops > MAX_LINK_HOPS:
            raise MicropruneError(f"symlink loop on the host at {path}")
        parts = path.split("/")[1:]
        current = ""
        for i, part in enumerate(parts):
            current = f"{current}/{part}"
            if os.path.islink(current):
                target = os.readlink(current)
                self.layer.add_symlink(current, target)
                resolved = os.path.normpath(os.path.join(os.path.dirname(current), target))
                rest = "/".join(parts[i + 1:])
                return self.add(resolved + ("/" + rest if rest else ""), hops + 1)
        if path in self.added:
            return path
        try:
            st = os.stat(path, follow_symlinks=False)
        except OSError:
            self.missing.append(path)
            return None
        self.added.add(path)
        if stat.S_ISDIR(st.st_mode):
            self.layer.add_dir(path, 0o1777 if st.st_mode & stat.S_ISVTX else 0o755)
        elif stat.S_ISREG(st.st_mode):
            self.layer.add_file(path, Path(path), executable=bool(st.st_mode & 0o111))
            self.real_files.add(path)
        return path

    def add_with_libraries(self, paths: Iterable[str], inside: Iterable[Path] = ()) -> None:
        """Add files and every shared library their ELF headers need, transitively.
        Libraries found under ``inside`` (the pruned deps) are already shipped: not added."""
        shipped = [str(p) for p in inside]
        queue = [p for p in paths]
        seen: set[str] = set()
        while queue:
            path = queue.pop()
            real = self.add(path) if not any(path.startswith(s + "/") for s in shipped) else path
            if real is None or real in seen:
                continue
            seen.add(real)
            for library in self.needed(real, shipped):
                queue.append(library)

    def needed(self, real: str, shipped: list[str]) -> list[str]:
        try:
            with open(real, "rb") as handle:
                data = handle.read()
        except OSError:
            return []
        if not is_elf(data):
            return []
        found = []
        loader = interpreter(data)
        if loader and _is_elf_file(loader):
            found.append(loader)
        dynamic = read_dynamic(data)
        origin = os.path.dirname(real)
        search = [d.replace("$ORIGIN", origin).replace("${ORIGIN}", origin) for d in dynamic.rpath]
        for name in dynamic.needed:
            for directory in [*search, *SYSTEM_LIB_DIRS]:
                candidate = os.path.normpath(os.path.join(directory, name))
                # Only a shared object is a library: a header naming `shadow` in RUNPATH /etc must
                # not carry /etc/shadow into the image (the loader skips such files too).
                if _is_elf_file(candidate):
                    if not any(candidate.startswith(s + "/") for s in shipped):
                        found.append(candidate)
                    break
            else:
                self.missing.append(name)
        return found

    def strip_copies(self) -> int:
        """Strip debug sections from the ELF files added so far, on copies; bytes saved."""
        if not self.strip or shutil.which("strip") is None:
            return 0
        copies = []
        for path in sorted(self.real_files):
            entry = self.layer.entries.get(path)
            if entry is None or entry.kind != "file" or entry.source is None:
                continue
            with open(path, "rb") as handle:
                head = handle.read(4)
            if not is_elf(head):
                continue
            copy = self.scratch / path.lstrip("/")
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, copy)
            copies.append(copy)
            self.layer.add_file(path, copy, executable=entry.mode == 0o755)
        return strip_debug(copies, "unneeded").saved_bytes


def _is_elf_file(path: str) -> bool:
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with open(path, "rb") as handle:
            return is_elf(handle.read(4))
    except OSError:
        return False
