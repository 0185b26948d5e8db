"""Read what an ELF shared object needs (DT_NEEDED, RPATH, RUNPATH) from its bytes.

Pure and tolerant: anything that is not a well-formed ELF file gives an empty
answer. We never run ``ldd`` (it executes the loader on untrusted files).
See the System V ABI, "Dynamic Section".
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

from .model import Ref

ELF_MAGIC = b"\x7fELF"
PT_DYNAMIC = 2
PT_LOAD = 1
DT_NULL, DT_NEEDED, DT_STRTAB, DT_SONAME, DT_RPATH, DT_RUNPATH = 0, 1, 5, 14, 15, 29


@dataclass(frozen=True)
class DynamicInfo:
    needed: tuple[str, ...] = ()
    rpath: tuple[str, ...] = ()        # RUNPATH when present, else RPATH (the loader's rule)
    soname: str | None = None


def is_elf(data: bytes) -> bool:
    return data[:4] == ELF_MAGIC


@dataclass(frozen=True)
class Segment:
    type: int
    offset: int
    vaddr: int
    filesz: int
    align: int


def _layout(data: bytes) -> tuple[bool, str]:
    """(64-bit?, struct byte order) of an ELF file; ValueError if it is not one."""
    if not is_elf(data) or len(data) < 64:
        raise ValueError("not ELF")
    return data[4] == 2, "<" if data[5] == 1 else ">"


def _segments(data: bytes) -> list[Segment]:
    is64, endian = _layout(data)
    if is64:
        phoff, = struct.unpack_from(endian + "Q", data, 0x20)
        phentsize, phnum = struct.unpack_from(endian + "HH", data, 0x36)
    else:
        phoff, = struct.unpack_from(endian + "I", data, 0x1C)
        phentsize, phnum = struct.unpack_from(endian + "HH", data, 0x2A)
    found = []
    for i in range(min(phnum, 512)):
        if is64:
            p_type, _, offset, vaddr, _, filesz, _, align = struct.unpack_from(
                endian + "IIQQQQQQ", data, phoff + i * phentsize)
        else:
            p_type, offset, vaddr, _, filesz, _, _, align = struct.unpack_from(
                endian + "IIIIIIII", data, phoff + i * phentsize)
        found.append(Segment(p_type, offset, vaddr, filesz, align))
    return found


def read_dynamic(data: bytes) -> DynamicInfo:
    try:
        return _read_dynamic(data)
    except (struct.error, IndexError, ValueError, UnicodeDecodeError):
        return DynamicInfo()


def _read_dynamic(data: bytes) -> DynamicInfo:
    is64, endian = _layout(data)
    segments = _segments(data)
    loads = [(seg.vaddr, seg.offset, seg.filesz) for seg in segments if seg.type == PT_LOAD]
    dynamic = next(((seg.offset, seg.filesz) for seg in segments if seg.type == PT_DYNAMIC), None)
    if dynamic is None:
        return DynamicInfo()
    dyn_fmt = endian + ("qQ" if is64 else "iI")
    entries = _dynamic_entries(data, dynamic, dyn_fmt)
    strtab = next((v for t, v in entries if t == DT_STRTAB), None)
    if strtab is None:
        return DynamicInfo()
    str_offset = _vaddr_to_offset(strtab, loads)

    def string(offset: int) -> str:
        start = str_offset + offset
        end = data.index(b"\0", start)
        return data[start:end].decode("utf-8", "replace")

    needed = tuple(string(v) for t, v in entries if t == DT_NEEDED)
    runpath = [string(v) for t, v in entries if t == DT_RUNPATH]
    rpath = runpath or [string(v) for t, v in entries if t == DT_RPATH]
    soname = next((string(v) for t, v in entries if t == DT_SONAME), None)
    dirs = tuple(d for entry in rpath for d in entry.split(":") if d)
    return DynamicInfo(needed, dirs, soname)


def _dynamic_entries(data: bytes, dynamic: tuple[int, int], fmt: str) -> list[tuple[int, int]]:
    offset, size = dynamic
    step = struct.calcsize(fmt)
    entries = []
    for pos in range(offset, min(offset + size, len(data)) - step + 1, step):
        tag, value = struct.unpack_from(fmt, data, pos)
        if tag == DT_NULL:
            break
        entries.append((tag, value))
    return entries


def _vaddr_to_offset(vaddr: int, loads: list[tuple[int, int, int]]) -> int:
    for start, offset, size in loads:
        if start <= vaddr < start + size:
            return vaddr - start + offset
    return vaddr


def section(data: bytes, wanted: str) -> bytes | None:
    """The bytes of one section by name (e.g. ".rodata"), or None."""
    try:
        return _section(data, wanted)
    except (struct.error, IndexError, ValueError):
        return None


def _section(data: bytes, wanted: str) -> bytes | None:
    is64, endian = _layout(data)
    if is64:
        shoff, = struct.unpack_from(endian + "Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(endian + "HHH", data, 0x3A)
        sh_fmt = endian + "IIQQQQIIQQ"
    else:
        shoff, = struct.unpack_from(endian + "I", data, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(endian + "HHH", data, 0x2E)
        sh_fmt = endian + "IIIIIIIIII"
    if not shoff or shnum == 0 or shstrndx >= shnum:
        return None
    headers = [struct.unpack_from(sh_fmt, data, shoff + i * shentsize) for i in range(min(shnum, 4096))]
    names = headers[shstrndx]
    names_offset = names[4]
    for header in headers:
        start = names_offset + header[0]
        name = data[start:data.index(b"\0", start)].decode("ascii", "replace")
        if name == wanted:
            offset, size = header[4], header[5]
            return data[offset:offset + size]
    return None


def loadable(data: bytes) -> bool:
    """Would the loader accept the program headers? Each PT_LOAD must keep
    p_offset == p_vaddr modulo p_align and lie inside the file: what `strip` breaks
    on patchelf'd libraries ("ELF load command address/offset not page-aligned")."""
    try:
        return _loadable(data)
    except (struct.error, IndexError, ValueError):
        return False


def _loadable(data: bytes) -> bool:
    for seg in _segments(data):
        if seg.type != PT_LOAD:
            continue
        if seg.align > 1 and seg.offset % seg.align != seg.vaddr % seg.align:
            return False
        if seg.offset + seg.filesz > len(data):
            return False
    return True


def needed_refs(data: bytes) -> tuple[Ref, ...]:
    """One ``needed`` ref per DT_NEEDED library, carrying the RPATH/RUNPATH to search."""
    dynamic = read_dynamic(data)
    return tuple(Ref(0, "needed", lib, names=dynamic.rpath) for lib in dynamic.needed)


def needed_search_dirs(ref: Ref, importer: Path) -> list[Path]:
    """Where the loader looks for a DT_NEEDED library inside the tree: $ORIGIN-relative
    RPATH/RUNPATH entries, then the importer's own directory. Anything else is the
    system's (the base image's concern)."""
    origin = str(importer.parent)
    dirs = [Path(os.path.normpath(d.replace("${ORIGIN}", origin).replace("$ORIGIN", origin)))
            for d in ref.names if "$ORIGIN" in d or "${ORIGIN}" in d]
    dirs.append(importer.parent)
    return dirs


PT_INTERP = 3


def interpreter(data: bytes) -> str | None:
    """The program interpreter (PT_INTERP: /lib64/ld-linux-x86-64.so.2) of an executable."""
    try:
        for seg in _segments(data):
            if seg.type == PT_INTERP:
                return data[seg.offset:seg.offset + seg.filesz].rstrip(b"\0").decode("utf-8", "replace")
    except (struct.error, IndexError, ValueError):
        return None
    return None
