"""Top-level module names the runtime provides, for the TARGET Python version.

The host's ``sys.stdlib_module_names`` (3.10+) is the base; this table
corrects it for targets on either side of the host (PEP 594 removals, new
modules). Data, not logic.
"""
from __future__ import annotations

import sys

ADDED_IN = {
    "tomllib": (3, 11),
    "wsgiref": (2, 5),
    "_interpreters": (3, 13),
    "annotationlib": (3, 14),
    "compression": (3, 14),
}

REMOVED_IN = {
    **{name: (3, 12) for name in ("asynchat", "asyncore", "distutils", "imp", "smtpd")},
    **{name: (3, 13) for name in (
        "aifc", "audioop", "cgi", "cgitb", "chunk", "crypt", "imghdr", "lib2to3", "mailcap", "msilib",
        "nis", "nntplib", "ossaudiodev", "pipes", "sndhdr", "spwd", "sunau", "telnetlib", "uu", "xdrlib")},
}


def runtime_modules(target: tuple[int, int]) -> frozenset[str]:
    names = set(getattr(sys, "stdlib_module_names", ())) | set(sys.builtin_module_names)
    names |= set(REMOVED_IN) | set(ADDED_IN)
    names -= {n for n, v in ADDED_IN.items() if target < v}
    names -= {n for n, v in REMOVED_IN.items() if target >= v}
    return frozenset(names)
