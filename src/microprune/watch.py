"""Files opened under some directories while a command runs, as the kernel saw them (inotify).

The language recorders see what the interpreter opens; a file opened by native code is theirs
to miss: OpenSSL reading certifi's cacert.pem, libxslt reading lxml's XSL resources, PROJ
opening proj.db through sqlite, a native addon reading its data. inotify reports every open
of a file in a watched directory, by any process (a daemon that left the process group too),
with no privilege: one watch per directory, one background thread draining the queue.
What it cannot see is said: directories past the user's watch limit, and events the kernel
dropped when its queue overflowed.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import select
import struct
import threading
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

IN_OPEN = 0x00000020
IN_Q_OVERFLOW = 0x00004000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
_EVENT = struct.Struct("iIII")           # wd, mask, cookie, len; then len bytes of name
_READ_SIZE = 1 << 16
_POLL_MS = 50


class OpenWatch:
    """``with OpenWatch(dirs) as watch: run()`` -- then ``watch.opened`` holds the files opened
    in those directories. ``available`` is False where inotify is not (not Linux, no libc)."""

    def __init__(self, directories: Iterable[Path]) -> None:
        self.directories = sorted(set(directories))
        self.opened: set[Path] = set()
        self.unwatched = 0              # directories the watch limit (or an error) left out
        self.overflowed = False         # the kernel dropped events: opened is incomplete
        self.available = False
        self._fd = -1
        self._dirs: dict[int, bytes] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> OpenWatch:
        libc = _libc()
        if libc is None:
            return self
        fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            return self
        self._fd, self.available = fd, True
        flags = IN_OPEN | IN_ONLYDIR | IN_DONT_FOLLOW     # a link to a directory is never watched through
        for directory in self.directories:
            raw = os.fsencode(directory)
            wd = libc.inotify_add_watch(fd, raw, flags)
            if wd < 0:
                self.unwatched += 1
            else:
                self._dirs[wd] = raw
        self._thread = threading.Thread(target=self._drain_until_stopped, name="microprune-watch", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _drain_until_stopped(self) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        while not self._stop.is_set():
            if poller.poll(_POLL_MS):
                self._read_available()
        self._read_available()          # what the kernel queued before the command ended

    def _read_available(self) -> None:
        while True:
            try:
                data = os.read(self._fd, _READ_SIZE)
            except OSError:             # EAGAIN: the queue is empty
                return
            if not data:
                return
            self._parse(data)

    def _parse(self, data: bytes) -> None:
        offset = 0
        while offset + _EVENT.size <= len(data):
            wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
            name = data[offset + _EVENT.size:offset + _EVENT.size + length].split(b"\0", 1)[0]
            offset += _EVENT.size + length
            if mask & IN_Q_OVERFLOW:
                self.overflowed = True
            elif mask & IN_OPEN and not mask & IN_ISDIR and name and wd in self._dirs:
                self.opened.add(Path(os.fsdecode(self._dirs[wd] + b"/" + name)))


def _libc() -> ctypes.CDLL | None:
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.inotify_init1.argtypes = [ctypes.c_int]
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        return libc
    return None


def watch_limit() -> int:
    """The user's inotify watch limit (fs.inotify.max_user_watches)."""
    try:
        return int(Path("/proc/sys/fs/inotify/max_user_watches").read_text().strip())
    except (OSError, ValueError):
        return 8192                     # the kernel's old default
