"""The local Python runtime an image is built from: interpreter, traced stdlib, start command.

The stdlib closure is measured, not guessed: the target interpreter imports the stdlib modules
the trace reached (plus what start-up needs) in an isolated subprocess and reports every file
in sys.modules. Importing only runs module-level imports, so the shipped stdlib files are then
lexed for the imports they make later (in functions: `os.popen` imports subprocess), and the
compiled ones read for the modules their C code imports (`datetime.strptime` imports
_strptime); those are imported too, until nothing new turns up. Modules with side effects at
import are never imported.
"""
from __future__ import annotations

import io
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from microprune.elf import section
from microprune.errors import MicropruneError

from .bytecode import compile_without_positions
from .resolve import absolute_name
from .scan import scan_extension, scan_source
from .stdlib import runtime_modules

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
print("\n" + json.dumps({"files": files, "prefix": sys.base_prefix, "stdlib": stdlib, "modules": sorted(sys.modules),
                         "version": "%d.%d" % sys.version_info[:2]}))
"""

# Imports made from C when a function runs, by modules built into the interpreter (no file
# to read): CPython's own sources say so. Compiled modules in lib-dynload are read instead.
BUILTIN_LAZY_IMPORTS = {
    "time": ("_strptime",),                   # time.strptime
    "_datetime": ("_strptime",),              # datetime.strptime (when built in)
    "_socket": ("encodings.idna",),           # non-ASCII host names
    "_elementtree": ("xml.etree.ElementPath",),
    "_warnings": ("warnings",),
}
# Imported inside stdlib functions only to test or document the stdlib itself (`def _test():
# import doctest`, help()): not followed from there. An app that imports them gets them.
NOT_FOLLOWED = frozenset({"doctest", "unittest", "pydoc", "pydoc_data", "test", "idlelib", "lib2to3",
                          "turtledemo", "ensurepip", "venv", "distutils"})
MAX_ROUNDS = 8


def find_interpreter(version: tuple[int, int]) -> Path:
    """The local interpreter of the target version (its real path: shims and venvs resolved)."""
    base = Path(os.path.realpath(getattr(sys, "_base_executable", sys.executable)))
    if sys.version_info[:2] == version and base.is_file():
        return base
    from shutil import which

    found = which(f"python{version[0]}.{version[1]}")
    real = _real_interpreter(found, version) if found is not None else None
    if real is None:
        raise MicropruneError(f"no local Python {version[0]}.{version[1]} to build the image's runtime from "
                              "or to run the smoke with; install it, or pass --python-version (and --base "
                              "with an image file)")
    return real


def _real_interpreter(candidate: str, version: tuple[int, int]) -> Path | None:
    """The executable behind ``candidate`` as the interpreter itself reports it. A version
    manager's shim (pyenv's python3.10 is a bash script) is not the interpreter: run through
    the smoke's PATH it finds itself again and never starts, and it may name a version that
    is not installed at all."""
    probe = "import sys; print(sys.version_info[0], sys.version_info[1], sys.executable)"
    try:
        done = subprocess.run([candidate, "-S", "-c", probe], capture_output=True, text=True, timeout=30,
                              check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    fields = done.stdout.strip().split(" ", 2) if done.returncode == 0 else []
    if len(fields) != 3 or (fields[0], fields[1]) != (str(version[0]), str(version[1])):
        return None
    real = Path(os.path.realpath(fields[2]))
    return real if real.is_file() else None


def stdlib_files(interpreter: Path, modules: set[str]) -> list[str]:
    wanted = {m for m in modules if _importable(m)} | set(STARTUP_MODULES) | {"encodings.*"}
    read: set[str] = set()
    for _ in range(MAX_ROUNDS):
        report = _import_and_list(interpreter, wanted)
        stdlib = report["stdlib"]
        files = {f for f in report["files"] if f.startswith(stdlib + "/") and "/site-packages/" not in f}
        version = tuple(int(n) for n in report["version"].split("."))
        stdlib_names = runtime_modules((version[0], version[1]))
        later = _imported_later(files - read, stdlib) | {
            name for module in report["modules"] for name in BUILTIN_LAZY_IMPORTS.get(module, ())}
        read |= files
        new = {n for n in later if n.split(".")[0] in stdlib_names and n.split(".")[0] not in NOT_FOLLOWED
               and _importable(n)} - set(report["modules"]) - wanted
        if not new:
            break
        wanted |= new
    files |= {str(p) for p in Path(stdlib, "encodings").glob("*.py")}
    files.add(os.path.join(stdlib, "os.py"))          # the landmark getpath looks for
    with_bytecode = set(files)
    for path in files:                               # the host's compiled bytecode: faster starts
        if path.endswith(".py"):
            cached = Path(path).parent / "__pycache__" / (Path(path).stem + f".cpython-{report['version'].replace('.', '')}.pyc")
            if cached.is_file():
                with_bytecode.add(str(cached))
    return sorted(with_bytecode)


def _importable(name: str) -> bool:
    return bool(name) and name.split(".")[0] not in SIDE_EFFECT_MODULES and not name.startswith("__")


def _import_and_list(interpreter: Path, names: set[str]) -> dict:  # type: ignore[type-arg]
    proc = subprocess.run([str(interpreter), "-I", "-c", _LIST_SCRIPT, json.dumps(sorted(names))],
                          capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}, stdin=subprocess.DEVNULL)
    try:
        report = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as err:
        raise MicropruneError(f"could not list the stdlib of {interpreter}: {proc.stderr.strip()[-300:]}") from err
    return report  # type: ignore[no-any-return]


def _imported_later(files: set[str], stdlib: str) -> set[str]:
    """Module names the given stdlib files may import after their import: every import
    statement (in functions too) and, for compiled modules, the C strings that name a
    module. Over-approximate on purpose: a name that is no module is simply not found."""
    names: set[str] = set()
    for path in sorted(files):
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError:
            continue
        if path.endswith(".py"):
            names |= _source_imports(data, _package_of(path, stdlib))
        elif path.endswith(".so"):
            names |= _native_imports(data)
    return names


def _source_imports(data: bytes, package: str) -> set[str]:
    names: set[str] = set()
    for ref in scan_source(data).refs:
        if ref.kind not in ("import", "from", "dynamic") or ref.program_only:
            continue                  # `if __name__ == "__main__":` is never run by an import
        base = absolute_name(package, ref.level, ref.target)
        if base:
            names.add(base)
            names.update(f"{base}.{n}" for n in ref.names if n != "*")
    return names


def _native_imports(data: bytes) -> set[str]:
    names: set[str] = set()
    for ref in scan_extension(section(data, ".rodata") or data).refs:     # C strings live there
        if ref.kind == "native-names":
            names.update(ref.names)
        elif ref.kind == "string":
            names.add(ref.target)
    return names


def _package_of(path: str, stdlib: str) -> str:
    """The package a stdlib file's relative imports are relative to ('' at the top)."""
    parts = os.path.relpath(path, stdlib)[: -len(".py")].split(os.sep)
    return ".".join(parts[:-1])       # a package's __init__ and its modules: the same package


def zip_stdlib(files: list[str], interpreter: Path, version: tuple[int, int],
               with_source: bool = False, positions: bool = True) -> tuple[list[str], str, bytes]:
    """Pure-Python stdlib modules go into lib/pythonXY.zip (on sys.path by default, as in
    Python's embeddable distribution). By default a module with bytecode ships as bytecode
    only (zipimport then loads it unchecked: there is no source to compare with), which is
    what the embeddable distribution does; tracebacks keep file, line and function.
    ``with_source``: each .py beside its .pyc too, the .py with its host mtime, so zipimport
    accepts the bytecode instead of compiling at every start. ``positions=False`` (bytecode
    only): the modules are compiled again without column tables (`-X no_debug_ranges`), a
    quarter smaller compressed. Returns (files left as files, zip path, zip)."""
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
    with tempfile.TemporaryDirectory(prefix="microprune-stdlib-") as scratch:
        if not with_source and not positions:
            sources = sorted(name for name in members if name.endswith(".py"))
            targets = [os.path.join(scratch, f"{number}.pyc") for number in range(len(sources))]
            done = compile_without_positions(interpreter, [(members[n], t, members[n]) for n, t in zip(sources, targets, strict=True)])
            members.update({name + "c": target for name, target, ok in zip(sources, targets, done, strict=True) if ok})
        if not with_source:
            members = {name: path for name, path in members.items() if not (name.endswith(".py") and name + "c" in members)}
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
