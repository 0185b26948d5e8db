"""Entry points: what the user named, or what a person would look for.

``--entry`` takes a script path (``app.py``), a module (``pkg.mod`` or
``pkg.mod:attr`` as given to gunicorn/uvicorn) or a console script installed
in the deps (``gunicorn``). Without one we look, in order, at
``[project.scripts]``, a ``Procfile``, ``__main__.py`` and the usual script names.
"""
from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

from microprune.errors import UsageError
from microprune.inventory import Inventory
from microprune.model import Diagnostic, Entry
from microprune.paths import display, is_within, normalise

from .dists import SCRIPT_GROUPS, DistIndex
from .resolve import Module, ModuleFinder

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

USUAL_SCRIPTS = ("main.py", "app.py", "wsgi.py", "asgi.py", "manage.py")
_MODULE_SPEC = re.compile(r"^([A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*)(?::.*)?$")
_PYTHON = re.compile(r"^python(\d(\.\d+)?)?$")


class EntryFinder:
    def __init__(self, app_root: Path, inventory: Inventory, finder: ModuleFinder, dists: DistIndex) -> None:
        self.app_root = app_root
        self.inventory = inventory
        self.finder = finder
        self.scripts = {ep.name: ep for d in dists.dists for ep in d.entry_points if ep.group in SCRIPT_GROUPS}
        self.diagnostics: list[Diagnostic] = []

    # -- what the user asked for ----------------------------------------------------
    def named(self, spec: str, origin: str = "--entry") -> Entry:
        entry = self._try(spec, origin)
        if entry is None:
            raise UsageError(
                f"entry {spec!r}: not a file in the app, a module of the app or its deps, "
                "nor a console script of the deps")
        return entry

    def _try(self, spec: str, origin: str) -> Entry | None:
        if spec.endswith((".py", ".pyw")) or "/" in spec:
            return self._script(spec, origin)
        if self.inventory.is_file(self.app_root / spec):
            return self._script(spec, origin)
        # A console script first: `gunicorn` in a Procfile runs the script, not the package.
        if spec in self.scripts:
            return self._console_script(spec, origin)
        match = _MODULE_SPEC.match(spec)
        if match:
            return self._module(match.group(1), spec, origin)
        return None

    def _console_script(self, spec: str, origin: str) -> Entry | None:
        ep = self.scripts[spec]
        target = self._module(ep.module, spec, origin)
        if target is None:
            return None
        # In an image the script's bin/ wrapper is gone: it runs as `python -m <package>`.
        runner = self._module(ep.module.split(".")[0], spec, origin)
        files = tuple(dict.fromkeys(target.files + (runner.files if runner else ())))
        return Entry(spec, "console-script", origin, files)

    def _script(self, spec: str, origin: str) -> Entry:
        path = normalise(self.app_root / spec)
        if not is_within(path, self.app_root) or not self.inventory.is_file(path):
            raise UsageError(f"entry {spec!r}: no such file in {display(self.app_root)}")
        return Entry(spec, "script", origin, (path,))

    def _module(self, name: str, spec: str, origin: str) -> Entry | None:
        chain = self.finder.chain(name)
        if not isinstance(chain, list):
            return None
        files = [m.file for m in chain if m.file is not None]
        last = chain[-1]
        if last.is_package:                     # `python -m pkg` runs pkg/__main__
            main = self.finder.find(f"{name}.__main__")
            if isinstance(main, Module) and main.file is not None:
                files.append(main.file)
        return Entry(spec, "module", origin, tuple(files))

    # -- what a person would look for -------------------------------------------------
    def detect(self) -> list[Entry]:
        for finder in (self._from_pyproject, self._from_procfile, self._from_dunder_main, self._from_usual_names):
            found = finder()
            if found:
                return found
        unresolved = "".join(f"; {d.message}" for d in self.diagnostics if d.code == "entry-unresolved")
        raise UsageError(
            f"no entry point found in {display(self.app_root)} (looked for [project.scripts], a Procfile, "
            f"__main__.py, {', '.join(USUAL_SCRIPTS)}){unresolved}; pass --entry with a script, a module "
            "such as pkg.app:app, or a console script")

    def _from_pyproject(self) -> list[Entry]:
        data = self._read_toml(self.app_root / "pyproject.toml")
        scripts = data.get("project", {}).get("scripts", {}) if isinstance(data.get("project"), dict) else {}
        found = []
        for name, target in sorted(scripts.items() if isinstance(scripts, dict) else []):
            entry = self._try(str(target).split("[", 1)[0].strip(), f"pyproject.toml [project.scripts] {name}")
            if entry is None:
                self.diagnostics.append(Diagnostic("entry-unresolved", f"[project.scripts] {name} = {target!r} "
                                                   "does not resolve to a module", self.app_root / "pyproject.toml"))
            else:
                found.append(entry)
        return found

    def _read_toml(self, path: Path) -> dict:  # type: ignore[type-arg]
        if not self.inventory.is_file(path):
            return {}
        try:
            return tomllib.loads(self.inventory.read_bytes(path).decode("utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
            self.diagnostics.append(Diagnostic("broken-config", f"cannot read: {err}", path))
            return {}

    def _from_procfile(self) -> list[Entry]:
        path = self.app_root / "Procfile"
        if not self.inventory.is_file(path):
            return []
        try:
            text = self.inventory.read_bytes(path).decode("utf-8", "replace")
        except OSError:
            return []
        found: list[Entry] = []
        for number, line in enumerate(text.splitlines(), 1):
            process, sep, command = line.partition(":")
            if sep and process.strip() and not process.lstrip().startswith("#"):
                found.extend(self._from_command(command, f"Procfile line {number} ({process.strip()})"))
        return found

    def _from_command(self, command: str, origin: str) -> list[Entry]:
        try:
            words = shlex.split(command)
        except ValueError:
            return []
        words = [w for w in words if "=" not in w or w.startswith("-")]   # drop VAR=value prefixes
        if not words:
            return []
        found: list[Entry] = []
        program, args = words[0], words[1:]
        if _PYTHON.match(Path(program).name):
            if args[:1] == ["-m"] and len(args) > 1:
                program, args = args[1], args[2:]
            elif args and not args[0].startswith("-"):
                entry = self._try(args[0], origin)
                return [entry] if entry else []
        first = self._try(program, origin)
        if first is not None:
            found.append(first)
        for arg in args:       # app modules named as arguments: "myapp.wsgi:app", "-A proj"
            if arg.startswith("-") or not _MODULE_SPEC.match(arg):
                continue
            module = arg.split(":", 1)[0]
            found_module = self.finder.find(module.split(".")[0])
            in_app = isinstance(found_module, Module) and found_module.file is not None \
                and is_within(found_module.file, self.app_root)
            if in_app:
                entry = self._module(module, arg, origin)
                if entry is not None:
                    found.append(entry)
        return found

    def _from_dunder_main(self) -> list[Entry]:
        if self.inventory.is_file(self.app_root / "__main__.py"):
            return [Entry("__main__.py", "script", "detected __main__.py", (self.app_root / "__main__.py",))]
        return []

    def _from_usual_names(self) -> list[Entry]:
        return [Entry(name, "script", f"detected {name}", (self.app_root / name,))
                for name in USUAL_SCRIPTS if self.inventory.is_file(self.app_root / name)]
