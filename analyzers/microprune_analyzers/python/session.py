"""A Python app opened for analysis: imports, data, metadata and native libraries it reaches."""
from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from microprune.analyzer import ImageRuntime, Layout, Request
from microprune.elf import is_elf, needed_refs, needed_search_dirs, section
from microprune.inventory import Inventory, WalkRules, take_inventory
from microprune.native import strip_debug
from microprune.model import (Diagnostic, Edge, Entry, External, Package, Reason, Ref, Resolution, Resolved, Scan,
                              Unresolved)
from microprune.errors import UsageError
from microprune.paths import display, is_within, normalise

from . import env, runtime
from .bytecode import compile_tree
from .dists import SCRIPT_GROUPS, Distribution, canonical_name, index_distributions
from .entries import EntryFinder
from .hints import Hint, load_conventions, load_hints, load_virtuals
from .resolve import EXTERNAL, Module, ModuleFinder, absolute_name
from .scan import check_syntax, mypyc_imports, scan_extension, scan_source
from .stdlib import runtime_modules

# Never part of the app copy: VCS, caches, tool state. (.env and keys are the image's concern.)
APP_EXCLUDED_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", ".mypy_cache", ".pytest_cache",
                               ".ruff_cache", ".tox", ".nox", ".idea", ".vscode", "node_modules"})
# Files that only build tools and type checkers read; never loaded by a running app.
BUILD_ONLY_SUFFIXES = (".pyi", ".pyx", ".pxd", ".pxi", ".c", ".h", ".cpp", ".hpp", ".cc", ".cxx")
BYTECODE_DIR = "__pycache__"
# Never copied as app: an earlier OUT (its report) and any virtualenv (its pyvenv.cfg),
# whether or not it is the deps being pruned.
APP_EXCLUDED_MARKERS = ("microprune.json", "pyvenv.cfg")


class PythonSession:
    language = "python"
    trace_lists_directories = True

    def __init__(self, request: Request) -> None:
        self.request = request
        self.app_root = normalise(request.app_dir)
        self._diagnostics: list[Diagnostic] = []
        deps_input, venv_in_app = env.find_deps(self.app_root, request.deps)
        if deps_input is None and not request.options.get("deps_optional"):
            raise UsageError(
                f"no dependencies directory for {display(self.app_root)}: it has no .venv or venv; pass --deps "
                "with a `pip install --target` directory, a site-packages directory or a virtualenv "
                "(an empty directory for an app without dependencies)")
        self.deps_input = deps_input
        self.deps_root = env.site_packages_of(deps_input) if deps_input else None
        self.layout = Layout(app_dir="app", deps_dir="site-packages")
        # More search directories after the deps (`trace --deps a:b`): searched, never pruned.
        self.extra_paths = [normalise(Path(p)) for p in request.options.get("extra_paths", ())]
        self.inventory = self._take_inventory(venv_in_app)
        self.version, self.version_source, multiarch = env.detect_target(
            self.inventory, deps_input, self.deps_root, request.target_version, self._diagnostics)
        self.target = env.Target(self.version, multiarch)
        self.dists = index_distributions(self.inventory, self.deps_root, self._diagnostics)
        deps_path = self._deps_search_path()
        self.app_paths = self._app_search_path()
        self.finder = ModuleFinder(self.inventory, self.app_paths, deps_path,
                                   self.target.extension_suffixes(), runtime_modules(self.version))
        use_hints = request.options.get("use_hints", True)
        self.hints = load_hints() if use_hints else {}
        self.stdlib_reached: set[str] = set()      # dotted stdlib names the trace met (for images)
        self.virtuals = load_virtuals() if use_hints else {}
        self.conventions = load_conventions() if use_hints else ()
        self._dists_emitted: set[str] = set()
        self._data_cache: dict[Path, list[Path]] = {}
        self._code_as_data: set[Path] = set()      # template .py and stub-tree .pyi: copied, not traced
        self._data_dirs_emitted: set[Path] = set()
        self._tops: set[str] | None = None
        self._string_heads: tuple[frozenset[str], frozenset[str], frozenset[str]] | None = None
        self._hinted: dict[str, tuple[Edge, ...]] = {}
        self._init_words: dict[Path, frozenset[str] | _Everything] = {}

    # -- setting up --------------------------------------------------------------------
    def _take_inventory(self, venv_in_app: Path | None) -> Inventory:
        roots = {"app": self.app_root}
        if self.deps_root is not None:
            roots["deps"] = self.deps_root
        for number, extra in enumerate(self.extra_paths, 1):
            roots[f"path{number}"] = extra
        excluded = set(self.request.excluded_paths)
        if venv_in_app is not None:
            excluded.add(venv_in_app)       # the venv is read as deps, never copied as app
        app_rules = WalkRules(frozenset(excluded), APP_EXCLUDED_DIRS, exclude_markers=APP_EXCLUDED_MARKERS)
        return take_inventory(roots, {"app": app_rules,
                                      "deps": WalkRules(frozenset(excluded))})

    def _app_search_path(self) -> list[Path]:
        """The app root, then APP/src when the app uses the src layout (run with PYTHONPATH=src)."""
        src = self.app_root / "src"
        if self.inventory.is_dir(src) and not self.inventory.is_file(src / "__init__.py"):
            return [self.app_root, src]
        return [self.app_root]

    def _app_dirs_on_path(self) -> list[str]:
        """Search directories inside the app (src layout, an editable install's .pth): the
        run command must put them on PYTHONPATH too."""
        inside = [p for p in [*self.app_paths[1:], *self.finder.deps_path] if is_within(p, self.app_root)]
        return [p.relative_to(self.app_root).as_posix() for p in dict.fromkeys(inside)]

    def _deps_search_path(self) -> list[Path]:
        """site-packages, then the in-tree directories its .pth files add (site.addpackage)."""
        if self.deps_root is None:
            return list(self.extra_paths)
        path = [self.deps_root]
        for name in sorted(self.inventory.listdir(self.deps_root)):
            if name.endswith(".pth"):
                path.extend(self._pth_dirs(self.deps_root / name))
        return path + self.extra_paths

    def _pth_dirs(self, pth: Path) -> list[Path]:
        try:
            text = self.inventory.read_bytes(pth).decode("utf-8", "replace")
        except OSError:
            return []
        dirs = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith(("#", "import ", "import\t")):
                continue
            directory = normalise(self.deps_root / line) if self.deps_root else None
            if directory is not None and self.inventory.is_dir(directory) and any(
                    is_within(directory, r) for r in self.inventory.roots.values()):
                dirs.append(directory)
            elif directory is not None:
                self._diagnostics.append(Diagnostic(
                    "pth-outside", f"path line {line!r} leaves the tree or does not exist; ignored", pth))
        return dirs

    # -- Session protocol: describing ---------------------------------------------------
    def entries(self) -> list[Entry]:
        finder = EntryFinder(self.app_root, self.inventory, self.finder, self.dists)
        try:
            if self.request.entries:
                origin = str(self.request.options.get("entry_origin", "--entry"))
                return [finder.named(spec, origin) for spec in self.request.entries]
            return finder.detect()
        finally:
            self._diagnostics.extend(finder.diagnostics)

    def describe(self) -> dict[str, Any]:
        return {
            "python_version": f"{self.version[0]}.{self.version[1]}",
            "python_version_source": self.version_source,
            "extension_suffixes": list(self.target.extension_suffixes()),
            "runtime": f"Python {self.version[0]}.{self.version[1]} ({self.version_source})",
        }

    def diagnostics(self) -> list[Diagnostic]:
        return list(self._diagnostics)

    def finish_tree(self, app_out: Path, deps_out: Path, files: Sequence[Path]) -> dict[str, Any]:
        """Bytecode for the kept sources; debug info out of shared objects, never in *.libs/
        (auditwheel's patchelf'd libraries break under strip). Template .py files are copied or
        rendered, never imported: no bytecode beside them (a copy of the tree would carry it)."""
        templates = {deps_out / p.relative_to(self.deps_root) for p in self._code_as_data
                     if self.deps_root is not None and is_within(p, self.deps_root)}
        sources = [f for f in files if f not in templates]
        summary = compile_tree(sources, (deps_out, app_out), self.version, self.request.options.get("bytecode", "compile"),
                               positions=self.request.options.get("positions", True))
        shared = [f for f in files if (f.name.endswith(".so") or ".so." in f.name) and is_within(f, deps_out)
                  and not any(part.endswith(".libs") for part in f.relative_to(deps_out).parts)]
        summary["strip"] = strip_debug(shared, self.request.options.get("strip", "debug")).as_dict()
        return summary

    def run_command(self, entry: Entry, app_out: str, deps_out: str) -> str:
        """How to start an entry from OUT with only the pruned deps visible (-S: no site-packages)."""
        path = ":".join([deps_out, *(f"{app_out}/{d}" for d in self._app_dirs_on_path())])
        env = f"PYTHONPATH={shlex.quote(path)}"
        if entry.kind == "script":
            return f"{env} python3 -S {shlex.quote(app_out + '/' + entry.spec)}"
        module = entry.spec.split(":", 1)[0]
        if entry.kind == "console-script":
            module = self.scripts_module(entry.spec)
            return f"cd {shlex.quote(app_out)} && {env} python3 -S -m {module}"
        return f"cd {shlex.quote(app_out)} && {env} python3 -S -c 'import {module}'"

    def image_runtime(self, entries: Sequence[Entry], externals: set[str], app_out: str,
                      deps_out: str) -> ImageRuntime:
        """The local interpreter of the target version, the stdlib modules the trace reached,
        and the command: the Procfile's web line (console scripts run as `python -m`), else
        the first entry."""
        version = (int(self.version[0]), int(self.version[1]))
        python = runtime.find_interpreter(version)
        stdlib = runtime.stdlib_files(python, externals | self.stdlib_reached)
        rest, zip_path, zip_data = runtime.zip_stdlib(stdlib, python, version,
                                                      bool(self.request.options.get("stdlib_source")),
                                                      self.request.options.get("positions", True))
        files = (str(python), *rest)
        command = self._image_command(entries, str(python), app_out)
        path = ":".join([deps_out, *(f"{app_out}/{d}" for d in self._app_dirs_on_path())])
        env = (("PATH", f"{python.parent}:/usr/local/bin:/usr/bin:/bin"), ("PYTHONPATH", path),
               ("PYTHONDONTWRITEBYTECODE", "1"), ("PYTHONUNBUFFERED", "1"), ("LANG", "C.UTF-8"))
        return ImageRuntime(files, tuple(command), env, app_out, ((zip_path, zip_data),))

    def _image_command(self, entries: Sequence[Entry], python: str, app_out: str) -> list[str]:
        words = runtime.procfile_command(self.app_root)
        if words:
            first = words[0]
            if first in ("python", "python3") or first.startswith("python3."):
                return [python, *words[1:]]
            module = self.scripts_module(first)
            if module:
                return [python, "-m", module, *words[1:]]
        if not entries:
            return [python]
        entry = entries[0]
        if entry.kind == "script":
            return [python, f"{app_out}/{entry.spec}"]
        if entry.kind == "console-script":
            return [python, "-m", self.scripts_module(entry.spec)]
        return [python, "-m", entry.spec.split(":", 1)[0]]

    def scripts_module(self, name: str) -> str:
        for dist in self.dists.dists:
            for ep in dist.entry_points:
                if ep.group in SCRIPT_GROUPS and ep.name == name:
                    return ep.module.split(".")[0]
        return name

    # -- Session protocol: scanning and resolving --------------------------------------
    def wants_scan(self, path: Path) -> bool:
        name = path.name
        # .pyi files are kept only as lazy_loader stubs, which decide what it imports.
        if path in self._code_as_data:
            return False
        return name.endswith((".py", ".pyw", ".pth", ".pyi")) or (name.endswith(".so") or ".so." in name)

    def scan(self, path: Path, data: bytes) -> Scan:
        if path.name.endswith(".pth"):
            return _scan_pth(data)
        if is_elf(data):
            return self._scan_native(path, data)
        if path.name.endswith(".so"):
            return Scan()
        in_app = is_within(path, self.app_root) and not (self.deps_root and is_within(path, self.deps_root))
        result = self._only_resolvable_strings(scan_source(data), in_app)
        computed = [r for r in result.refs if r.kind == "computed-import"]
        if computed:
            result = Scan(tuple(r for r in result.refs if r.kind != "computed-import"), result.diagnostics)
        if not in_app:
            return result
        # The app's own code: worth telling (a dependency's computed imports are its business).
        told = [Diagnostic("dynamic-import", "import of a module name computed at run time: what it loads is not "
                           "traced (add it with --keep, or let `prune --smoke CMD --repair` find it)", path, r.line)
                for r in computed]
        problem = check_syntax(data, str(path))
        if problem is not None:
            told.append(Diagnostic(problem.code, problem.message, path, problem.line))
        return Scan(result.refs, tuple(told)) if told else result

    def _scan_native(self, path: Path, data: bytes) -> Scan:
        refs = list(needed_refs(data))
        if self.finder.is_module_file(path):        # an extension module: it may import by name
            # Module names are C string literals: .rodata is a tenth of the file or less.
            refs.extend(scan_extension(section(data, ".rodata") or data).refs)
            if "__mypyc" in path.name:
                refs.extend(mypyc_imports(data).refs)
        return self._only_resolvable_strings(Scan(refs=tuple(refs)))

    def _only_resolvable_strings(self, scan: Scan, in_app: bool = False) -> Scan:
        """Drop the string literals `_resolve_string` could not turn into a kept file.

        Most strings are dict keys and messages: this cheap test, run in the scan
        workers, spares sending and resolving them. It must pass every string that
        can resolve (a superset); what it drops would have resolved to nothing.
        """
        if self._string_heads is None:
            self._string_heads = self._resolvable_string_heads()
        groups, app_packages, tops = self._string_heads
        # A bare name may be a deps package only where a framework convention reads it: the app's code.
        bare = tops if in_app and self.conventions else app_packages
        refs = tuple(r for r in scan.refs if r.kind != "string" or r.target in groups or (
            r.target.replace(":", ".").partition(".")[0] in tops if "." in r.target or ":" in r.target
            else r.target in bare) or r.target.endswith((".py", ".pyw")))
        return scan if len(refs) == len(scan.refs) else Scan(refs, scan.diagnostics)

    def _resolvable_string_heads(self) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
        """(entry-point groups, directory names in the app's search path, every top-level
        name in the app's and the deps' search path): what a resolvable string starts with."""
        app_packages: set[str] = set()
        tops: set[str] = set()
        for directory in self.finder.app_paths:
            app_packages.update(self.finder.directory_names(directory))
        for directory in (*self.finder.app_paths, *self.finder.deps_path):
            tops.update(self.finder.directory_names(directory))
            tops.update(stem for stem in map(self.finder.strip_suffix, self.finder.file_names(directory)) if stem)
        return frozenset(self.dists.groups), frozenset(app_packages), frozenset(tops)

    def resolve(self, ref: Ref, importer: Path) -> Resolution:
        handler = _RESOLVERS.get(ref.kind)
        if handler is None:
            return Unresolved(f"unknown reference kind {ref.kind}")
        return handler(self, ref, importer)

    def _absolute(self, ref: Ref, importer: Path) -> str | None:
        if not ref.level:
            return ref.target
        if importer.suffix == ".pyi":            # a stub speaks for the module beside it
            importer = importer.with_suffix(".py")
        package = self.finder.package_of(importer)
        if package is None:
            return None
        return absolute_name(package, ref.level, ref.target)

    def _module_edges(self, modules: Sequence[Module], reason: Reason, detail: str = "") -> list[Edge]:
        edges = []
        for module in modules:
            if module.file is not None:
                edges.append(Edge(module.file, reason, detail))
            else:      # a namespace package: its directories must exist, even if empty
                edges.extend(Edge(d, reason, detail) for d in module.search_dirs)
        return edges

    def _virtual(self, name: str) -> Resolution | None:
        """six.moves and friends: created at run time by a provider module we keep instead."""
        parts = name.split(".")
        for cut in range(len(parts), 0, -1):
            virtual = self.virtuals.get(".".join(parts[:cut]))
            if virtual is not None:
                chain = self.finder.chain(virtual.provider) if virtual.provider else []
                edges = self._module_edges(chain if isinstance(chain, list) else [], Reason.HINT, virtual.why)
                return Resolved(tuple(edges))
        return None

    def _partial_import(self, name: str) -> Resolution:
        """`import a.b.c` with a.b missing: Python has already run a; keep it, name the rest."""
        parts = name.split(".")
        found: list[Module] = []
        for cut in range(1, len(parts) + 1):
            module = self.finder.find(".".join(parts[:cut]))
            if not isinstance(module, Module):
                missing = tuple(".".join(parts[:i]) for i in range(cut, len(parts) + 1))
                return Unresolved(f"cannot resolve import {name!r}", missing,
                                  tuple(self._module_edges(found, Reason.IMPORT)))
            found.append(module)
        return Unresolved(f"cannot resolve import {name!r}", (name,))

    def _resolve_import(self, ref: Ref, importer: Path) -> Resolution:
        chain = self.finder.chain(ref.target)
        if chain == EXTERNAL:
            return self._external(ref.target)
        if not isinstance(chain, list):
            return self._virtual(ref.target) or self._partial_import(ref.target)
        return Resolved(tuple(self._module_edges(chain, Reason.IMPORT)))

    def _resolve_from(self, ref: Ref, importer: Path) -> Resolution:
        base = self._absolute(ref, importer)
        if base is None:
            return Unresolved(f"relative import {'.' * ref.level}{ref.target} goes above the top-level package")
        chain = self.finder.chain(base)
        if chain == EXTERNAL:
            return self._external(base, ref.names)
        if not isinstance(chain, list):
            return self._virtual(base) or self._partial_import(base)
        edges = self._module_edges(chain, Reason.IMPORT)
        missing = []
        if chain[-1].is_package:
            for name in ref.names:       # `from pkg import sub`: sub may be a module
                if name == "*":
                    continue
                sub = self.finder.find(f"{base}.{name}")
                if isinstance(sub, Module):
                    edges.extend(self._module_edges([sub], Reason.IMPORT))
                elif not self._defines(chain[-1], name):
                    missing.append(f"{base}.{name}")
        if missing:
            return Unresolved(f"{', '.join(missing)}: neither a submodule nor a name in the package", tuple(missing),
                              tuple(edges))
        return Resolved(tuple(edges))

    def _defines(self, package: Module, name: str) -> bool:
        """Could the package's __init__ define `name`? Any mention of the word counts."""
        if package.file is None or not package.file.name.endswith(".py"):
            return package.file is not None       # compiled __init__: cannot tell, assume yes
        words = self._init_words.get(package.file)
        if words is None:
            words = self._init_words[package.file] = self._words_of(package.file)
        return name in words

    def _words_of(self, init: Path) -> frozenset[str] | _Everything:
        try:
            source = self.inventory.read_bytes(init)
        except OSError:
            return _EVERYTHING
        if b"__getattr__" in source or b"import *" in source:
            return _EVERYTHING                     # names it can hand out are not all written down
        return frozenset(w.decode("ascii", "replace") for w in re.findall(rb"[A-Za-z_]\w*", source))

    def _resolve_dynamic(self, ref: Ref, importer: Path) -> Resolution:
        name = self._absolute(ref, importer)
        if name is None:
            return Unresolved(f"dynamic import {ref.target!r} is relative to an unknown package")
        module = self._longest_module(name.replace(":", "."))
        if module == EXTERNAL:
            return self._external(name)
        if module is None:
            return Unresolved(f"dynamic import {name!r} not found")
        chain = self.finder.chain(module)
        return Resolved(tuple(self._module_edges(chain if isinstance(chain, list) else [], Reason.DYNAMIC)))

    def _longest_module(self, dotted: str) -> str | None:
        """'a.b.Class' -> 'a.b' (import_string style); at most one trailing attribute."""
        parts = dotted.split(".")
        for cut in (len(parts), len(parts) - 1):
            if cut < 1:
                break
            name = ".".join(parts[:cut])
            found = self.finder.find(name)
            if found == EXTERNAL:
                return EXTERNAL
            if isinstance(found, Module):
                return name
        return None

    def _resolve_prefix(self, ref: Ref, importer: Path) -> Resolution:
        """import_module('pkg.sub.' + name): every module under pkg.sub (and pkg.sub_* names)."""
        prefix = self._absolute(Ref(ref.line, ref.kind, ref.target.rstrip("."), ref.level), importer)
        if prefix is None:
            return Unresolved(f"dynamic import prefix {ref.target!r} is relative to an unknown package")
        package_name, stem = (prefix, "") if ref.target.endswith(".") or not ref.target else prefix.rpartition(".")[::2]
        package = self.finder.find(package_name) if package_name else None
        if package == EXTERNAL:
            return External(package_name)
        if not isinstance(package, Module) or not package.is_package:
            return Unresolved(f"dynamic import with prefix {ref.target!r}: no such package")
        chain = self.finder.chain(package_name)
        edges = self._module_edges(chain if isinstance(chain, list) else [], Reason.DYNAMIC)
        for sub in self.finder.submodules(package, recursive=True):
            if sub.name[len(package_name) + 1:].startswith(stem):
                edges.extend(self._module_edges([sub], Reason.DYNAMIC, f"prefix {ref.target!r}"))
        return Resolved(tuple(edges))

    def _resolve_string(self, ref: Ref, importer: Path) -> Resolution:
        plugins = self.dists.groups.get(ref.target)
        if plugins and ref.target not in SCRIPT_GROUPS:
            return Resolved(tuple(self._plugin_edges(ref.target)))
        if "." not in ref.target and ":" not in ref.target:
            return self._bare_package_string(ref.target, importer)
        if ref.target.endswith((".py", ".pyw")):
            # os.path.join(os.path.dirname(__file__), "__main__.py"): a script beside the file,
            # run by path in a child process (jedi's inference subprocess)
            beside = self.inventory.child(importer.parent, ref.target)
            if self.inventory.is_file(beside):
                return Resolved((Edge(beside, Reason.STRING, f"{ref.target!r}, a file beside it"),))
        module = self._longest_module(ref.target.replace(":", "."))
        if module is None or module == EXTERNAL:
            return Unresolved("not a module")
        chain = self.finder.chain(module)
        edges = self._module_edges(chain if isinstance(chain, list) else [], Reason.STRING)
        if isinstance(chain, list) and chain[-1].is_package:
            edges.extend(self._convention_edges(module))
        return Resolved(tuple(edges))

    def _resolve_string_prefix(self, ref: Ref, importer: Path) -> Resolution:
        """The fixed head of an f-string (`entry_points(group=f"opentelemetry_{kind}")`): the
        plugins of every entry-point group whose name starts with it. Groups only: a module
        name built this way is loaded through import_module, which has its own prefix rule."""
        return self._groups_named_by(lambda g: g.startswith(ref.target), f"starts with f-string {ref.target!r}")

    def _resolve_string_suffix(self, ref: Ref, importer: Path) -> Resolution:
        """The fixed tail of an f-string (`entry_points(group=f"{APP_NAME}.transforms")`): the
        plugins of every entry-point group that ends with it (groups only, as for heads)."""
        return self._groups_named_by(lambda g: g.endswith(ref.target) and len(g) > len(ref.target),
                                     f"ends with f-string {ref.target!r}")

    def _groups_named_by(self, matches: Callable[[str], bool], how: str) -> Resolution:
        edges = []
        for group in sorted(g for g in self.dists.groups if matches(g) and g not in SCRIPT_GROUPS):
            edges.extend(self._plugin_edges(group, f"entry-point group {group!r} {how}"))
        return Resolved(tuple(edges))

    def _resolve_dist_metadata(self, ref: Ref, importer: Path) -> Resolution:
        """`importlib.metadata.version("requests")`: that distribution's metadata, not its code
        (an app may report the version of what it does not import). Not installed: the call
        raises PackageNotFoundError, which the code expects."""
        dist = self.dists.by_key.get(canonical_name(ref.target))
        if dist is None:
            return Resolved(())
        return Resolved(tuple(self._metadata_edges(dist, f"{dist.name}, read by name")))

    def _resolve_resource_package(self, ref: Ref, importer: Path) -> Resolution:
        """`pkg_resources.resource_string("certifi", "cacert.pem")`, `importlib.resources.files("pkg")`:
        the package (and so its data), when that name is an installed package."""
        found = self.finder.find(ref.target) if _MODULE_NAME.match(ref.target) else None
        if not isinstance(found, Module) or not found.is_package:
            return Resolved(())
        chain = self.finder.chain(ref.target)
        return Resolved(tuple(self._module_edges(chain if isinstance(chain, list) else [], Reason.DATA,
                                                 f"its files are read by package name ({ref.target!r})")))

    def _bare_package_string(self, name: str, importer: Path) -> Resolution:
        """A bare name is too common to be taken for any deps module, but two are meant as one:
        a package of the app itself named in a string ('polls' in INSTALLED_APPS), which ships
        anyway, and a deps package named in the app's own code that has the submodules a
        framework's convention imports ('rest_framework' in INSTALLED_APPS: its apps, migrations,
        templatetags)."""
        found = self.finder.find(name)
        if not isinstance(found, Module) or found.file is None or not found.is_package:
            return Unresolved("not a module path")
        conventions = self._convention_edges(name)
        if self.inventory.root_of(found.file) != "app" and not (conventions and self.inventory.root_of(importer) == "app"):
            return Unresolved("not a module path")
        return Resolved(tuple(self._module_edges([found], Reason.STRING) + conventions))

    def _convention_edges(self, package: str) -> list[Edge]:
        """Submodules a framework imports by convention from packages named in settings."""
        edges = []
        for convention in self.conventions:
            if not isinstance(self.finder.find(convention.when), Module):
                continue
            detail = f"convention of {convention.when}: {convention.why}"
            for pattern in convention.submodules:
                for module in self._modules_matching(f"{package}.{pattern}"):
                    chain = self.finder.chain(module.name)
                    edges.extend(self._module_edges(chain if isinstance(chain, list) else [], Reason.HINT, detail))
        return edges

    def _plugin_edges(self, group: str, why: str = "") -> list[Edge]:
        edges = []
        for ep in self.dists.groups.get(group, []):
            chain = self.finder.chain(ep.module)
            if isinstance(chain, list):
                detail = f"entry point {group}:{ep.name}" + (f" ({why})" if why else "")
                edges.extend(self._module_edges(chain, Reason.PLUGIN, detail))
        return edges

    def _resolve_native_names(self, ref: Ref, importer: Path) -> Resolution:
        """Exact C-string names in a compiled module that are installed top-level modules."""
        edges = []
        for name in sorted(set(ref.names) & self._top_level_names()):
            chain = self.finder.chain(name)
            if isinstance(chain, list):
                edges.extend(self._module_edges(chain, Reason.STRING, f"C string {name!r}"))
        return Resolved(tuple(edges))

    def _top_level_names(self) -> set[str]:
        if self._tops is None:
            self._tops = set()
            for directory in self.finder.deps_path:
                self._tops.update(self.finder.strip_suffix(n) or n for n in self.inventory.listdir(directory))
        return self._tops

    def _resolve_siblings(self, ref: Ref, importer: Path) -> Resolution:
        """A compiled module is opaque (its strings may be compressed): keep the modules beside it."""
        package_name = self.finder.package_of(importer)
        package = self.finder.find(package_name) if package_name else None
        if not isinstance(package, Module) or not package.is_package:
            return Resolved(())
        siblings = [m for m in self.finder.submodules(package) if m.file is not None and not m.is_package]
        return Resolved(tuple(self._module_edges(siblings, Reason.DYNAMIC, f"beside compiled {importer.name}")))

    def _resolve_lazy_submodules(self, ref: Ref, importer: Path) -> Resolution:
        if self.finder.strip_suffix(importer.name) != "__init__":
            return Unresolved("lazy submodules come from a package __init__ only")
        package_name = self.finder.package_of(importer)
        package = self.finder.find(package_name) if package_name else None
        if not isinstance(package, Module) or not package.is_package:
            return Unresolved("not in a package")
        edges = []
        children = self._child_names(package)
        for name in sorted(n for n in ref.names if n.partition(".")[0] in children):
            sub = self.finder.find(f"{package_name}.{name}")
            if isinstance(sub, Module) and sub.file is not None:
                edges.append(Edge(sub.file, Reason.DYNAMIC, f"submodule {name!r} named in {importer.name}"))
        return Resolved(tuple(edges))

    def _child_names(self, package: Module) -> set[str]:
        """Names that could be submodules: entries of the package's directories, suffixes stripped."""
        names = set()
        for directory in package.search_dirs:
            for entry in self.inventory.listdir(directory):
                names.add(self.finder.strip_suffix(entry) or entry)
        return names

    def _resolve_all_submodules(self, ref: Ref, importer: Path) -> Resolution:
        named = self.finder.find(ref.target) if ref.target else None
        if isinstance(named, Module) and named.is_package:
            package_name: str | None = ref.target         # iter_modules(tiktoken_ext.__path__)
        else:
            package_name = self.finder.package_of(importer)
        package = self.finder.find(package_name) if package_name else None
        if not isinstance(package, Module) or not package.is_package:
            return Unresolved("pkgutil module listing outside a package")
        # walk_packages recurses, and iter_modules is often given a subfolder's path
        # (Django lists management/commands from management/__init__.py): keep all below.
        subs = list(self.finder.submodules(package, recursive=True))
        return Resolved(tuple(self._module_edges(subs, Reason.DYNAMIC, "pkgutil lists the package")))

    def _resolve_stub(self, ref: Ref, importer: Path) -> Resolution:
        stub = importer.with_name(importer.name.rsplit(".", 1)[0] + ".pyi")
        if self.inventory.is_file(stub):
            return Resolved((Edge(stub, Reason.DATA, "lazy_loader.attach_stub reads it"),))
        return Unresolved("lazy_loader stub .pyi missing")

    def _resolve_needed(self, ref: Ref, importer: Path) -> Resolution:
        """DT_NEEDED: search RPATH/RUNPATH ($ORIGIN), the file's directory and auditwheel's *.libs."""
        for directory in needed_search_dirs(ref, importer):
            path = directory / ref.target
            if self.inventory.is_file(path):
                return Resolved((Edge(path, Reason.NATIVE, f"DT_NEEDED {ref.target}"),))
        return External(ref.target)            # a system library: the base image's concern

    def _external(self, name: str, names: tuple[str, ...] = ()) -> Resolution:
        # The full dotted names (and `from pkg import x` candidates) are what an image's stdlib needs
        self.stdlib_reached.add(name)
        self.stdlib_reached.update(f"{name}.{n}" for n in names if n != "*")
        hint_edges = self._hint_edges(name.split(".")[0]) + self._hint_edges(name)
        if hint_edges:
            return Resolved(tuple(hint_edges))
        return External(name.split(".")[0])

    # -- Session protocol: what travels with a kept file ---------------------------------
    def deferred(self) -> list[tuple[Edge, Path, int]]:
        return []

    def shipped_code(self) -> list[Path]:
        """Every module of the app outside tests, docs and packaging scripts: the app ships them
        whole and loads some by names the trace cannot read (a handler module named in a config
        file, a plugin folder listed at run time). Tests stay out: a development virtualenv
        would otherwise keep pytest and the rest of its tools."""
        found = []
        for path, info in self.inventory.files.items():
            if info.root != "app" or not path.name.endswith(".py") or NOT_SHIPPED_PY_FILE.match(path.name):
                continue
            if self.deps_root is not None and is_within(path, self.deps_root):
                continue
            if any(part in NOT_SHIPPED_PY_DIRS for part in path.relative_to(self.app_root).parts[:-1]):
                continue
            found.append(path)
        return sorted(found)

    def companions(self, path: Path) -> list[Edge]:
        if self.deps_root is None or not is_within(path, self.deps_root):
            return []
        edges: list[Edge] = []
        dist = self.dists.of(path, self.deps_root)
        if dist is not None and dist.key not in self._dists_emitted:
            self._dists_emitted.add(dist.key)
            edges.extend(self._distribution_edges(dist))
        if self.finder.is_module_file(path):
            edges.extend(self._package_edges(path))
            if path.parent not in self._data_dirs_emitted:      # once per directory, not per module
                self._data_dirs_emitted.add(path.parent)
                edges.extend(Edge(p, Reason.DATA) for p in self._package_data(path.parent))
            name = self.finder.module_name(path)
            if name:
                edges.extend(self._hint_edges(name))
        return edges

    def _metadata_edges(self, dist: Distribution, detail: str) -> list[Edge]:
        return [Edge(p, Reason.METADATA, detail) for p in self.inventory.walk_files(dist.info_dir)]

    def _distribution_edges(self, dist: Distribution) -> list[Edge]:
        edges = self._metadata_edges(dist, dist.name)
        # Every file of <dist>.libs/: loaded through RPATH, invisible to the import system.
        edges.extend(Edge(p, Reason.NATIVE, f"{p.parent.name}/ of {dist.name}") for p in dist.native_libs)
        edges.extend(Edge(p, Reason.PTH, dist.name) for p in dist.pth_files)
        return edges

    def _package_edges(self, path: Path) -> list[Edge]:
        edges = []
        directory = path.parent
        while self.deps_root is not None and directory != self.deps_root and is_within(directory, self.deps_root):
            init = self.finder._first_file(directory, "__init__")
            if init is not None and init != path:
                edges.append(Edge(init, Reason.PACKAGE))
            directory = directory.parent
        return edges

    def _package_data(self, directory: Path) -> list[Path]:
        """Data next to a kept module: its directory and the non-package folders below it."""
        cached = self._data_cache.get(directory)
        if cached is not None:
            return cached
        found: list[Path] = []
        if directory != self.deps_root:       # loose files at the top belong to no package
            self._collect_data(directory, found)
        self._data_cache[directory] = found
        return found

    def _collect_data(self, directory: Path, found: list[Path], below: bool = False,
                      code_is_data: bool = False, visited: set[Path] | None = None) -> None:
        """``below``: a folder under the module's own (stubs there are a tree the code reads);
        ``code_is_data``: a template tree, whose .py files are copied or rendered, never imported.
        ``visited``: real folders already walked, so that links back up the tree (two links to
        ``.`` make every depth twice as many paths) are walked once."""
        visited = set() if visited is None else visited
        real = self.inventory.canonical(directory)
        if real in visited:
            if real != directory:
                found.append(directory)      # the link itself is kept: the code may read through it
            return
        visited.add(real)
        for name in self.inventory.listdir(directory):
            path = self.inventory.child(directory, name)
            if self.inventory.is_dir(path):
                if name == BYTECODE_DIR or name.endswith((".dist-info", ".egg-info")):
                    continue
                if code_is_data or not self._has_python(path):
                    self._collect_data(path, found, True, code_is_data, visited)
                elif self._is_template_tree(path, name):
                    self._collect_data(path, found, True, True, visited)
            elif self._is_data(path, below, code_is_data):
                found.append(path)
                # A template's code is copied, a stub is read: neither is traced nor compiled. A .py
                # whose name is no identifier (rich's _unicode_data/unicode15-0-0.py) is data to the
                # finder but still imported, by import_module: traced and compiled as code.
                if code_is_data and name.endswith((".py", ".pyw")) or name.endswith(".pyi"):
                    self._code_as_data.add(path)

    def _has_python(self, directory: Path) -> bool:
        return any(n.endswith(".py") for n in self.inventory.listdir(directory))

    def _is_template_tree(self, directory: Path, name: str) -> bool:
        """Code beside template files in a folder that is no package (no __init__): alembic's
        templates/generic/ (env.py beside script.py.mako), copied by `alembic init`. A folder
        with no __init__ may also be a namespace subpackage whose modules are imported
        (flask/sansio/ beside its README.md): only template files tell the two apart. Test and
        example folders are left out: they are often written that way, and nothing reads them."""
        if name in NOT_SHIPPED_PY_DIRS or self.finder._first_file(directory, "__init__") is not None:
            return False
        return any(TEMPLATE_FILE.search(n) for n in self.inventory.listdir(directory))

    def _is_data(self, path: Path, below: bool = False, code_is_data: bool = False) -> bool:
        name = path.name
        if _PLAIN_LIBRARY.match(name):
            return True      # libllvmlite.so, loaded with ctypes: importable in name only
        if code_is_data:
            return not name.endswith((".pyc", ".pyo"))
        if below and name.endswith(".pyi"):
            return True      # a stub tree with no modules (typeshed in mypy and jedi): read as data
        if self.finder.is_module_file(path) or name.endswith(BUILD_ONLY_SUFFIXES):
            return False
        return not (name.endswith((".pyc", ".pyo")) or name.endswith(".so") and _CPYTHON_TAG.search(name))

    def _hint_edges(self, module_name: str) -> list[Edge]:
        hints = self.hints.get(module_name)
        if not hints:
            return []
        # What a hint keeps depends on the installed tree only: work it out once (a hint's
        # file patterns are matched against every file; `import zoneinfo` recurs often).
        cached = self._hinted.get(module_name)
        if cached is None:
            cached = self._hinted[module_name] = tuple(edge for hint in hints for edge in self._apply_hint(hint))
        return list(cached)

    def _apply_hint(self, hint: Hint) -> list[Edge]:
        edges = []
        detail = f"hint for {hint.when}: {hint.why}"
        reason = Reason.SYSTEM_FALLBACK if hint.system_fallback else Reason.HINT
        for pattern in hint.modules:
            for module in self._modules_matching(pattern):
                chain = self.finder.chain(module.name)
                edges.extend(self._module_edges(chain if isinstance(chain, list) else [], reason, detail))
        for pattern in hint.files:
            edges.extend(Edge(p, reason, detail) for p in self._deps_files_matching(pattern))
        for name in hint.distributions:
            dist = self.dists.by_key.get(canonical_name(name))
            if dist is not None:
                edges.extend(Edge(p, reason, detail) for p in sorted(dist.files) if self.inventory.is_file(p))
        for pattern in hint.app_files:       # the app's own config modules: traced like imports
            regex = _glob_regex(pattern)
            edges.extend(Edge(p, Reason.HINT, detail) for p in sorted(
                p for p, info in self.inventory.files.items()
                if info.root == "app" and regex.match(p.relative_to(self.app_root).as_posix())))
        return edges

    def _modules_matching(self, pattern: str) -> list[Module]:
        if pattern.endswith(".**") or pattern.endswith(".*"):
            base, _, star = pattern.rpartition(".")
            package = self.finder.find(base)
            if isinstance(package, Module) and package.is_package:
                return [package, *self.finder.submodules(package, recursive=star == "**")]
            return []
        found = self.finder.find(pattern)
        return [found] if isinstance(found, Module) else []

    def _deps_files_matching(self, pattern: str) -> list[Path]:
        if self.deps_root is None:
            return []
        regex = _glob_regex(pattern)
        # Bytecode caches are dropped whatever the pattern: they are rebuilt, never kept.
        return [p for p, info in self.inventory.files.items()
                if info.root == "deps" and regex.match(p.relative_to(self.deps_root).as_posix())
                and self.drop_reason(p) is not Reason.BYTECODE]

    # -- Session protocol: names, packages, drops --------------------------------------
    def keep_edges(self, pattern: str) -> list[Edge]:
        dist = self.dists.by_key.get(canonical_name(pattern))
        if dist is not None:
            return [Edge(p, Reason.KEEP, pattern) for p in sorted(dist.files) if self.inventory.is_file(p)]
        modules = self._modules_matching(pattern if _MODULE_NAME.match(pattern) else "")
        if modules:
            edges = []
            for module in modules:
                subs = self.finder.submodules(module, recursive=True) if module.is_package else []
                edges.extend(self._module_edges([module, *subs], Reason.KEEP, pattern))
            return edges
        return [Edge(p, Reason.KEEP, pattern) for p in sorted(self._deps_files_matching(pattern))]

    def repair_patterns(self, missing: str, app_out: Path, deps_out: Path) -> list[str]:
        """A module (`yaml.constructor`), a distribution (PackageNotFoundError) or a path under
        the pruned deps, as a --keep pattern, if the original deps have it."""
        if missing.startswith("/"):
            path = Path(missing)
            if self.deps_root is not None and is_within(path, deps_out):
                rel = path.relative_to(deps_out).as_posix()
                if self.inventory.is_file(self.deps_root / rel):
                    return [rel]
                if self.inventory.is_dir(self.deps_root / rel):
                    return [f"{rel}/**"]
            return []
        if self.dists.by_key.get(canonical_name(missing)) is not None:
            return [missing]
        if _MODULE_NAME.match(missing) and isinstance(self.finder.find(missing), Module):
            return [missing]
        return []

    def lookup(self, name: str) -> list[Path]:
        candidate = normalise(Path(name)) if name.startswith("/") else None
        for root in ([self.deps_root] if self.deps_root else []) + [self.app_root]:
            path = candidate or normalise(root / name)
            if self.inventory.is_file(path):
                return [self.inventory.canonical(path)]
        dist = self.dists.by_key.get(canonical_name(name))
        if dist is not None:
            return sorted(p for p in dist.files if self.inventory.is_file(p))
        if _MODULE_NAME.match(name):
            found = self.finder.find(name)
            if isinstance(found, Module) and found.file is not None:
                return [found.file]
        return []

    def package_of(self, path: Path) -> Package | None:
        if self.deps_root is None or not is_within(path, self.deps_root):
            return None
        dist = self.dists.of(path, self.deps_root)
        return Package(dist.name, dist.version, dist.license, dist.purl) if dist else None

    def packages(self) -> list[Package]:
        return [Package(d.name, d.version, d.license, d.purl) for d in self.dists.dists]

    def drop_reason(self, path: Path) -> Reason:
        if BYTECODE_DIR in path.parts or path.name.endswith((".pyc", ".pyo")) and self._has_source(path):
            return Reason.BYTECODE
        return Reason.UNREACHED

    def _has_source(self, path: Path) -> bool:
        return self.inventory.is_file(path.with_suffix(".py"))


class _Everything:
    """A set that contains every name (a package whose exports cannot be listed)."""

    def __contains__(self, item: object) -> bool:
        return True


_EVERYTHING = _Everything()
# The app's code that only development runs: not traced as code that may run in production.
NOT_SHIPPED_PY_DIRS = frozenset({"test", "tests", "testing", "docs", "doc", "examples", "benchmarks", "bench",
                                 ".tox", ".nox", "node_modules", "site-packages", "build"})
NOT_SHIPPED_PY_FILE = re.compile(r"^(?:test_.*|.*_test|conftest|setup|noxfile|fabfile)\.py$")
# A shared library a package loads with ctypes (libllvmlite.so, libsndfile_x86_64.so): named like
# an extension module ("lib" + identifier + ".so"), but never imported, so data beside its code.
# Files a template engine renders (alembic's script.py.mako, Django's manage.py-tpl, cookiecutter's
# {{cookiecutter.name}}): a folder holding one is copied, not imported.
TEMPLATE_FILE = re.compile(r"\.(?:mako|jinja2?|j2|tmpl|tpl|template)$|-tpl$|\{\{")
_PLAIN_LIBRARY = re.compile(r"^lib[A-Za-z0-9_]*\.so$")
_CPYTHON_TAG = re.compile(r"\.cpython-\d+")
_MODULE_NAME = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*(?:\.\*\*?)?$")


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob where ** crosses directories and * does not."""
    parts = re.split(r"(\*\*/?|\*|\?)", pattern)
    out = []
    for part in parts:
        if part in ("**", "**/"):
            out.append(".*")
        elif part == "*":
            out.append("[^/]*")
        elif part == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(part))
    return re.compile("^" + "".join(out) + "(?:/.*)?$")


def _scan_pth(data: bytes) -> Scan:
    """Lines starting with `import` are executed at start-up (site.addpackage), whole: the
    lexer reads them like code (distutils-precedence.pth calls __import__('_distutils_hack'))."""
    lines = [line if line.startswith((b"import ", b"import\t")) else b"" for line in data.splitlines()]
    return scan_source(b"\n".join(lines))


_RESOLVERS = {
    "import": PythonSession._resolve_import,
    "from": PythonSession._resolve_from,
    "dynamic": PythonSession._resolve_dynamic,
    "dynamic-prefix": PythonSession._resolve_prefix,
    "string": PythonSession._resolve_string,
    "string-prefix": PythonSession._resolve_string_prefix,
    "string-suffix": PythonSession._resolve_string_suffix,
    "dist-metadata": PythonSession._resolve_dist_metadata,
    "resource-package": PythonSession._resolve_resource_package,
    "lazy-submodules": PythonSession._resolve_lazy_submodules,
    "native-names": PythonSession._resolve_native_names,
    "siblings": PythonSession._resolve_siblings,
    "all-submodules": PythonSession._resolve_all_submodules,
    "stub": PythonSession._resolve_stub,
    "needed": PythonSession._resolve_needed,
}
