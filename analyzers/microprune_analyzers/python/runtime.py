"""The local Python runtime an image is built from: interpreter, traced stdlib, start command.

The stdlib closure is measured, not guessed: the target interpreter imports the stdlib modules
the trace reached (plus what start-up needs) in an isolated subprocess and reports every file
in sys.modules. Modules with side effects at import are never imported.
"""
from __future__ import annotations

import io
import json
import os
import shlex
import subprocess
import sys
import time
import zipfile
from pathlib import Path

from microprune.errors import MicropruneError

# Imported at start-up or by name at run time (codecs look encodings up by name): always shipped.
STARTUP_MODULES = ("site", "os", "encodings", "codecs", "io", "abc", "stat", "posixpath", "genericpath",
                   "_collections_abc", "_sitebuiltins", "sysconfig", "traceback", "linecache", "tokenize",
                   "warnings", "runpy", "importlib.util", "importlib.machinery", "zipimport")
# Never imported to measure them: they open windows, print, or start things.
SIDE_EFFECT_MODULES = frozenset({"antigravity", "this", "turtle", "turtledemo", "idlelib", "tkinter", "pydoc",
                                 "test", "ensurepip", "__main__", "__phello__", "_tkinter"})

_LIST_SCRIPT = r"""
import json, sys
import encodings, pkgutil
names = json.loads(sys.argv[1])
if "encodings.*" in names:    # codecs are looked up by name at run time: every one, with what it imports
    names += ["encodings." + m.name for m in pkgutil.iter_modules(encodings.__path__)]
for name in names:
    try:
        __import__(name)
    except BaseException:
        pass
# Packages load some submodules lazily (concurrent.futures' __getattr__): every submodule of a
# stdlib package that is shipped, except tests and __main__ scripts.
stdlib = __import__("sysconfig").get_paths()["stdlib"]
seen = set()
for _ in range(3):
    packages = [m for m in list(sys.modules.values()) if getattr(m, "__path__", None) and m.__name__ not in seen
                and any(str(p).startswith(stdlib + "/") and "site-packages" not in str(p) for p in m.__path__)]
    for package in packages:
        seen.add(package.__name__)
        for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            leaf = info.name.rsplit(".", 1)[-1]
            if leaf in ("__main__", "test", "tests", "idle_test") or leaf.startswith("test_"):
                continue
            try:
                __import__(info.name)
            except BaseException:
                pass
files = sorted({m.__file__ for m in list(sys.modules.values()) if getattr(m, "__file__", None)})
print("\n" + json.dumps({"files": files, "prefix": sys.base_prefix, "stdlib": stdlib,
                         "version": "%d.%d" % sys.version_info[:2]}))
"""


def find_interpreter(version: tuple[int, int]) -> Path:
    """The local interpreter of the target version (its real path: shims and venvs resolved)."""
    base = Path(os.path.realpath(getattr(sys, "_base_executable", sys.executable)))
    if sys.version_info[:2] == version and base.is_file():
        return base
    from shutil import which

    found = which(f"python{version[0]}.{version[1]}")
    if found is None:
        raise MicropruneError(f"no local Python {version[0]}.{version[1]} to build the image's runtime from; "
                              "install it, or pass --base with an image file")
    return Path(os.path.realpath(found))


def stdlib_files(interpreter: Path, modules: set[str]) -> list[str]:
    names = sorted({m for m in modules if m.split(".")[0] not in SIDE_EFFECT_MODULES} | set(STARTUP_MODULES)
                   | {"encodings.*"})
    proc = subprocess.run([str(interpreter), "-I", "-c", _LIST_SCRIPT, json.dumps(names)], capture_output=True,
                          text=True, timeout=300, env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"},
                          stdin=subprocess.DEVNULL)
    try:
        report = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as err:
        raise MicropruneError(f"could not list the stdlib of {interpreter}: {proc.stderr.strip()[-300:]}") from err
    stdlib = report["stdlib"]
    files = {f for f in report["files"] if f.startswith(stdlib + "/") and "/site-packages/" not in f}
    files |= {str(p) for p in Path(stdlib, "encodings").glob("*.py")}
    files.add(os.path.join(stdlib, "os.py"))          # the landmark getpath looks for
    with_bytecode = set(files)
    for path in files:                               # the host's compiled bytecode: faster starts
        if path.endswith(".py"):
            cached = Path(path).parent / "__pycache__" / (Path(path).stem + f".cpython-{report['version'].replace('.', '')}.pyc")
            if cached.is_file():
                with_bytecode.add(str(cached))
    return sorted(with_bytecode)


def zip_stdlib(files: list[str], interpreter: Path, version: tuple[int, int]) -> tuple[list[str], str, bytes]:
    """Pure-Python stdlib modules go into lib/pythonXY.zip (on sys.path by default, as in
    Python's embeddable distribution): a third of the bytes, tracebacks still show source.
    Each .pyc sits beside its .py, and the .py keeps its host mtime, so zipimport accepts the
    bytecode instead of compiling at every start. Returns (files left as files, zip path, zip)."""
    prefix = interpreter.parent.parent
    stdlib = prefix / "lib" / f"python{version[0]}.{version[1]}"
    tag = f".cpython-{version[0]}{version[1]}.pyc"
    members: dict[str, str] = {}
    rest = []
    for path in files:
        rel = Path(path).relative_to(stdlib).as_posix() if Path(path).is_relative_to(stdlib) else None
        if rel is None or rel.startswith(("lib-dynload/", "site-packages/")):
            rest.append(path)
        elif rel.endswith(".py"):
            members[rel] = path
        elif rel.endswith(tag) and "/__pycache__/" in f"/{rel}":
            directory, name = rel.rsplit("__pycache__/", 1)
            members[directory + name[: -len(tag)] + ".pyc"] = path
        else:
            rest.append(path)
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for name in sorted(members):
            source = members[name]
            mtime = time.gmtime(max(os.stat(source).st_mtime, 315532800)) if name.endswith(".py") else time.gmtime(315532800)
            info = zipfile.ZipInfo(name, mtime[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with open(source, "rb") as handle:
                archive.writestr(info, handle.read())
    return rest, str(prefix / "lib" / f"python{version[0]}{version[1]}.zip"), data.getvalue()


def procfile_command(app_root: Path) -> list[str] | None:
    """The `web:` line of a Procfile (else its first line), as words."""
    procfile = app_root / "Procfile"
    if not procfile.is_file() or procfile.is_symlink():
        return None
    lines = [line.split(":", 1) for line in procfile.read_text(encoding="utf-8", errors="replace").splitlines()
             if ":" in line and not line.lstrip().startswith("#")]
    chosen = next((cmd for name, cmd in lines if name.strip() == "web"), lines[0][1] if lines else None)
    if chosen is None:
        return None
    try:
        return shlex.split(chosen)
    except ValueError:
        return None
