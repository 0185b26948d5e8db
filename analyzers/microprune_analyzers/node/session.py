"""A Node.js app opened for analysis: modules, assets and native addons it reaches in node_modules."""
from __future__ import annotations

import os
import posixpath
import re
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from microprune.analyzer import ImageRuntime, Layout, Request
from microprune.elf import is_elf, needed_refs, needed_search_dirs
from microprune.errors import UsageError
from microprune.inventory import Inventory, WalkRules, take_inventory
from microprune.model import (Diagnostic, Edge, Entry, External, Package, Reason, Ref, Resolution, Resolved, Scan,
                              Unresolved)
from microprune.paths import display, is_within, normalise

from .entries import PACKAGE_RUNNERS, START_ORIGIN, EntryFinder, StartCommand
from .hints import CallRule, Hint, Narrowing, load_by_extension, load_calls, load_hints, load_narrowings
from .resolve import Found, Resolver, outermost_node_modules, package_dir_of, split_package
from .evaluate import WILDCARD
from .scan import scan_source

SOURCE_SUFFIXES = (".js", ".mjs", ".cjs", ".jsx")
TYPESCRIPT_SUFFIXES = (".ts", ".mts", ".cts", ".tsx")
APP_EXCLUDED_DIRS = frozenset({".git", ".hg", ".svn", ".cache", ".npm", ".yarn-cache", ".pnpm-store"})
APP_EXCLUDED_MARKERS = ("microprune.json",)
# Read by package managers, never by the running app (and .npmrc may hold a registry token).
APP_BUILD_ONLY_FILES = frozenset({"package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml",
                                  ".npmrc", ".yarnrc", ".yarnrc.yml"})
# Never worth keeping from a glob: build inputs and change logs (nft's list).
GLOB_EXCLUDED_SUFFIXES = (".h", ".cmake", ".c", ".cpp")
GLOB_EXCLUDED_NAMES = frozenset({"CHANGELOG.md", "README.md", "readme.md", "changelog.md"})
# A .js file this big, kept only because its directory is served or read whole, is a browser bundle
# (swagger-ui's is 1.6 MB): data, not parsed.
STATIC_BUNDLE_BYTES = 128 * 1024
# The app's scripts that only development runs (tests, build and lint tools) and browser code
# it serves: not traced as code that may run on the server.
NOT_SHIPPED_CODE_DIRS = frozenset({"test", "tests", "__tests__", "__mocks__", "spec", "e2e", "cypress", "coverage",
                                   "public", "static", "assets", "www", "docs", "examples", "example", "fixtures",
                                   ".storybook", ".husky", ".github"})
NOT_SHIPPED_CODE_FILE = re.compile(
    r"\.(test|spec|stories|bench)\.[cm]?[jt]sx?$"
    r"|^(jest|vitest|webpack|rollup|vite|esbuild|karma|babel|eslint|prettier|tailwind|postcss|playwright|cypress|"
    r"commitlint|lint-staged|stylelint|tsup)\.config\.[cm]?[jt]s$|^\.eslintrc\.[cm]?js$|^(gulpfile|Gruntfile)\.[cm]?js$")
# package.json lists of packages a framework loads by name: (section, key).
MANIFEST_PLUGIN_LISTS = (("oclif", "plugins"),)
# Said only of the app's own files: in a dependency they are the package's business (and many).
APP_ONLY_DIAGNOSTICS = frozenset({"syntax-error", "dynamic-require"})
SHARED_LIBRARY = re.compile(r"\.so(\.\d+)*$")
BUILTINS_FILE = Path(__file__).with_name("builtins.txt")
DEFAULT_NODE_VERSION = "20.0.0"


def _builtins() -> frozenset[str]:
    lines = BUILTINS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


class NodeSession:
    language = "node"
    trace_lists_directories = False

    def __init__(self, request: Request) -> None:
        self.request = request
        self.app_root = normalise(request.app_dir)
        self._diagnostics: list[Diagnostic] = []
        self.start: StartCommand | None = None         # scripts.start, when an entry came from it
        self.runner_program: Path | None = None
        self.deps_root = self._find_deps(request)
        self.layout = Layout(app_dir=".", deps_dir="node_modules")
        self.cwd = normalise(Path(request.options.get("cwd") or self.app_root))
        self.inventory = self._take_inventory()
        self.node_version, self.version_source = _target_version(request.target_version, self.app_root)
        conditions = frozenset({"node", *request.options.get("conditions", ())})
        self.resolver = Resolver(self.inventory, conditions, _module_sync(self.node_version),
                                 ts_roots=(self.app_root,))
        self.resolver.aliases = self._aliases()
        if self.deps_root is not None and self.deps_root != self.app_root / "node_modules":
            self.resolver.fallback_dirs = (self.deps_root,)
        self.builtins = _builtins()
        use_hints = request.options.get("use_hints", True)
        self.hints: dict[str, Hint] = load_hints() if use_hints else {}
        self.narrowings: dict[str, Narrowing] = load_narrowings() if use_hints else {}
        self.by_extension = frozenset(m for rule in load_by_extension() for m in rule.methods) if use_hints \
            else frozenset()
        self.calls: tuple[CallRule, ...] = load_calls() + tuple(
            rule for narrowing in load_narrowings().values() for rule in narrowing.argument_rules()) if use_hints else ()
        self._watched = frozenset(call for n in self.narrowings.values() for call in n.calls)
        self._call_args: dict[str, set[tuple[str, str]]] = {}   # method -> (calling package, first argument)
        self._narrowed: dict[tuple[Path, int, str], Narrowing] = {}     # (importer, line, spec) -> rule
        self._hinted: set[tuple[str, Path]] = set()
        self._static: set[Path] = set()       # kept as part of a directory read whole
        self._code: set[Path] = set()         # kept because something requires or imports it
        self._scan_as_source: set[Path] = set()      # extensionless scripts kept as code (bin files)
        self._packages: dict[Path, Package] | None = None

    def _find_deps(self, request: Request) -> Path | None:
        if request.deps is not None:
            deps = normalise(request.deps)
            if not deps.is_dir():
                raise UsageError(f"--deps {display(deps)} is not a directory")
            if deps.name != "node_modules" and (deps / "node_modules").is_dir():
                deps = deps / "node_modules"
            return deps
        default = self.app_root / "node_modules"
        if default.is_dir() and not default.is_symlink():
            return default
        if default.is_symlink() and default.is_dir():
            # a shared or mounted node_modules (node_modules -> ../shared/node_modules): the app's own
            # deps, read where the link points, never anything else a link could name (`-> /`)
            target = Path(os.path.realpath(default))
            if target.name == "node_modules":
                return default
            raise UsageError(f"{display(default)} is a link to {display(target)}, which is not a node_modules "
                             f"directory: pass --deps with the app's node_modules")
        if request.options.get("deps_optional"):
            return None
        manifest = self.app_root / "package.json"
        if manifest.is_file() and b'"dependencies"' in _head(manifest):
            raise UsageError(f"{display(self.app_root)} has dependencies but no node_modules: run `npm ci` "
                             "(or `npm install`) first, or pass --deps with a node_modules directory")
        return None

    def _take_inventory(self) -> Inventory:
        roots = {"app": self.app_root}
        rules = {"app": WalkRules(exclude_paths=frozenset(self.request.excluded_paths) | self._other_node_modules(),
                                  exclude_dir_names=APP_EXCLUDED_DIRS, exclude_markers=APP_EXCLUDED_MARKERS)}
        if self.deps_root is not None:
            roots["deps"] = self.deps_root
            rules["deps"] = WalkRules(exclude_paths=frozenset(self.request.excluded_paths))
        return take_inventory(roots, rules)

    def _other_node_modules(self) -> frozenset[Path]:
        """APP/node_modules when the deps are elsewhere: never app code. A link to the deps is
        the same tree (left out quietly); a node_modules of its own beside --deps is said."""
        inner = self.app_root / "node_modules"
        if self.deps_root is None or inner == self.deps_root or not os.path.lexists(inner):
            return frozenset()
        if os.path.realpath(inner) != os.path.realpath(self.deps_root):
            self._diagnostics.append(Diagnostic(
                "other-node-modules", f"the app has its own node_modules, but the deps are "
                f"{display(self.deps_root)} (--deps): it is left out of OUT, and Node would search it first "
                "from the app's files", inner))
        return frozenset({inner})

    def _aliases(self) -> dict[str, Path]:
        """The app's `_moduleAliases` (module-alias), then --alias NAME=PATH (wins)."""
        aliases: dict[str, Path] = {}
        manifest = self.resolver.manifest(self.app_root)
        table = manifest.data.get("_moduleAliases") if manifest else None
        pairs = list(table.items()) if isinstance(table, dict) else []
        pairs += [tuple(a.split("=", 1)) for a in self.request.options.get("aliases", ()) if "=" in a]
        for name, target in pairs:
            if isinstance(name, str) and isinstance(target, str) and name and target:
                path = normalise(self.app_root / target)
                if is_within(path, self.app_root) or (self.deps_root and is_within(path, self.deps_root)):
                    aliases[name] = Path(str(path) + ("/" if target.endswith("/") else ""))
                else:
                    self._diagnostics.append(Diagnostic("alias-outside", f"alias {name!r} -> {target!r} leaves "
                                                        "the app; ignored", self.app_root / "package.json"))
        return aliases

    # -- Session protocol: entries and description ----------------------------------------------------
    def entries(self) -> list[Entry]:
        finder = EntryFinder(self.inventory, self.resolver, self.app_root)
        if self.request.entries:
            return finder.from_specs(self.request.entries, self.request.options.get("entry_origin", "--entry"))
        found = finder.detect()
        self.start, self.runner_program = finder.start, finder.runner_program
        if not found:
            raise UsageError(f"no entry point found in {display(self.app_root)}: package.json has no "
                             "scripts.start, main or bin, and there is no server.js/index.js/app.js/main.js; "
                             "pass --entry FILE")
        return found

    def describe(self) -> dict[str, Any]:
        return {"node_version": self.node_version, "node_version_source": self.version_source,
                "conditions": sorted(self.resolver.conditions), "module_sync": self.resolver.module_sync,
                "runtime": f"Node {self.node_version} ({self.version_source})"}

    def diagnostics(self) -> list[Diagnostic]:
        problems = [Diagnostic("bad-package-json", why, path) for path, why in self.resolver.problems]
        return self._diagnostics + problems

    def finish_tree(self, app_out: Path, deps_out: Path, files: Sequence[Path]) -> dict[str, Any]:
        return {}

    def run_command(self, entry: Entry, app_out: str, deps_out: str) -> str:
        return shlex.join(self._command_words(entry, "node", app_out, deps_out))

    def _command_words(self, entry: Entry, node: str, app_out: str, deps_out: str) -> list[str]:
        """`node [preloads] [runner program] SCRIPT` in OUT: what scripts.start ran, with the
        runner's program from the pruned deps (`ts-node index.ts` -> node .../ts-node/dist/bin.js)."""
        script = self._out_path(entry.files[0], app_out, deps_out)
        start = self.start if entry.origin == START_ORIGIN else None
        if start is None:
            return [node, script]
        words = [node]
        for flag, spec in start.preloads:
            words += [flag, spec]
        if start.runner in PACKAGE_RUNNERS and self.runner_program is not None:
            words.append(self._out_path(self.runner_program, app_out, deps_out))
        return [*words, script]

    def _out_path(self, path: Path, app_out: str, deps_out: str) -> str:
        if self.deps_root is not None and is_within(path, self.deps_root):
            return posixpath.join(deps_out, path.relative_to(self.deps_root).as_posix())
        if is_within(path, self.app_root):
            return posixpath.join(app_out, path.relative_to(self.app_root).as_posix())
        return display(path)

    def image_runtime(self, entries: Sequence[Entry], externals: set[str], app_out: str,
                      deps_out: str) -> ImageRuntime:
        """The local `node` (its version should be the target's) and `node <entry>`."""
        node = shutil.which("node")
        if node is None:
            raise UsageError("no local `node` to build the image's runtime from; install Node.js, or pass --base "
                             "with an image file")
        binary = os.path.realpath(node)
        entry = entries[0] if entries else Entry("index.js", "script", "usual name", (self.app_root / "index.js",))
        command = tuple(self._command_words(entry, binary, app_out, deps_out))
        env = (("PATH", f"{posixpath.dirname(binary)}:/usr/local/bin:/usr/bin:/bin"), ("NODE_ENV", "production"),
               ("LANG", "C.UTF-8"))
        return ImageRuntime((binary,), command, env, app_out)

    # -- scanning -------------------------------------------------------------------------------------
    def wants_scan(self, path: Path) -> bool:
        name = path.name
        if path in self._static and path not in self._code and self.inventory.files[path].size > STATIC_BUNDLE_BYTES:
            return False
        if name.endswith(TYPESCRIPT_SUFFIXES):
            # TypeScript inside node_modules is never run by node (packages ship compiled JS)
            return not name.endswith(".d.ts") and self._is_app_file(path)
        if name.endswith(SOURCE_SUFFIXES) or path in self._scan_as_source:
            return True
        return name.endswith(".node") or bool(SHARED_LIBRARY.search(name))

    def scan(self, path: Path, data: bytes) -> Scan:
        name = path.name
        if name.endswith(".node") or SHARED_LIBRARY.search(name):
            return Scan(refs=needed_refs(data)) if is_elf(data) else Scan()
        result = scan_source(str(path), data, str(self.cwd), lambda spec: self._resolve_value(spec, path),
                             self._watched, self.calls, self.by_extension)
        diagnostics = tuple(Diagnostic(d.code, d.message, path, d.line) for d in result.diagnostics
                            if d.code not in APP_ONLY_DIAGNOSTICS or self._is_app_file(path))
        return Scan(result.refs, diagnostics)

    def _resolve_value(self, spec: str, importer: Path) -> str | None:
        """require.resolve(spec) as the code would see it (read-only: safe in scan workers)."""
        found = self.resolver.resolve(spec, importer, False)
        return str(found.files[0]) if found and found.files else None

    def _is_app_file(self, path: Path) -> bool:
        return is_within(path, self.app_root) and "node_modules" not in path.relative_to(self.app_root).parts

    # -- resolution -----------------------------------------------------------------------------------
    def resolve(self, ref: Ref, importer: Path) -> Resolution:
        handler = _RESOLVERS.get(ref.kind)
        if handler is None:
            return Unresolved(f"unknown reference kind {ref.kind!r}")
        return handler(self, ref, importer)

    def _resolve_module(self, ref: Ref, importer: Path) -> Resolution:
        spec = ref.target
        bare = spec[5:] if spec.startswith("node:") else spec
        if spec.startswith("node:") or bare in self.builtins or bare.split("/")[0] in self.builtins \
                and not self._installed(bare, importer):
            return External("node:" + bare)
        esm = ref.kind == "import"
        found = self.resolver.resolve(spec, importer, esm)
        if found is None and esm and spec.endswith(".js") and spec.startswith("."):
            found = self.resolver.resolve(spec[:-3] + ".ts", importer, esm)       # TS sources import x.js
        if found is None:
            return Unresolved(f"cannot resolve {spec!r}", (spec,))
        return Resolved(self._edges(found, Reason.IMPORT, spec))

    def _resolve_if_installed(self, ref: Ref, importer: Path) -> Resolution:
        """One of a [[call]] rule's candidates: kept when installed, silent when not."""
        found = self.resolver.resolve(ref.target, importer, False)
        return Resolved(self._edges(found, Reason.HINT, ref.target)) if found is not None else Resolved(())

    def _installed(self, name: str, importer: Path) -> bool:
        """A package shadowing a builtin name (`require('punycode/')`, npm's `string_decoder`)."""
        return name.endswith("/") and self.resolver.resolve(name, importer, False) is not None

    def _edges(self, found: Found, reason: Reason, detail: str) -> tuple[Edge, ...]:
        self._code.update(self.inventory.canonical(p) for p in found.files)
        edges = [Edge(path, Reason.FALLBACK if path in found.fallbacks else reason, detail) for path in found.files]
        edges.extend(Edge(path, Reason.METADATA, "package.json read by the resolver") for path in found.manifests)
        return tuple(edges)

    def _resolve_glob(self, ref: Ref, importer: Path) -> Resolution:
        narrowing = self._narrowing_for(ref, importer)
        if narrowing is not None:
            self._narrowed[(importer, ref.line, ref.target)] = narrowing
            return Resolved(())          # answered by deferred(), once every call is seen
        if ref.target.startswith(("./", "../", "/")):
            pattern = posixpath.normpath(posixpath.join(str(importer.parent), ref.target))
            files = self._glob(pattern, dot=False, module_extensions=True)
        else:
            files = self._bare_glob(ref.target, importer, ref.kind == "import-glob")
        self._code.update(self.inventory.canonical(f) for f in files)
        if not files:
            return Unresolved(f"no file matches {ref.target.replace(WILDCARD, '*')!r}", ())
        return Resolved(tuple(Edge(p, Reason.DYNAMIC, ref.target) for p in files))

    def _bare_glob(self, spec: str, importer: Path, esm: bool) -> list[Path]:
        """`require('dayjs/locale/' + name)`: the matching files of the package node would find;
        `require('jstransformer-' + name)`: every package the name can make, as node would find
        it from the importer (the nearest node_modules that has one)."""
        name, _, rest = spec.partition("/")
        if name.startswith("@"):
            scope_name, _, rest = rest.partition("/")
            name = f"{name}/{scope_name}"
        files: list[Path] = []
        taken: set[str] = set()
        for modules in self.resolver.node_modules_dirs(importer.parent):
            for package in self._packages_named(modules, name):
                package_name = _package_name(package)
                if package_name in taken:
                    continue            # a nearer node_modules had it: node stops there
                taken.add(package_name)
                if WILDCARD in rest:
                    matched = self._package_glob(package, rest, esm)
                    manifest = package / "package.json"        # node reads it to resolve the name
                    files.extend([*matched, manifest] if matched and self.inventory.is_file(manifest) else matched)
                    continue
                found = self.resolver.resolve(package_name + ("/" + rest if rest else ""), importer, esm)
                if found is not None:
                    files.extend(found.files)
        return list(dict.fromkeys(files))

    def _package_glob(self, package: Path, rest: str, esm: bool) -> list[Path]:
        """The files `<package>/<rest>` can name: through its `exports` when it has them (faker's
        `./locale/*` -> `./dist/locale/*.cjs`), and as laid out on disk (what older node reads)."""
        files = []
        for pattern in self.resolver.export_patterns(package, "./" + rest, esm, WILDCARD):
            files.extend(self._glob(pattern, dot=False, module_extensions=False))
        return files + self._glob(f"{package}/{rest}", dot=False, module_extensions=True)

    def _packages_named(self, modules: Path, name: str) -> list[Path]:
        if WILDCARD not in name:
            return [modules / name] if self.inventory.is_dir(modules / name) else []
        scope, _, base = name.rpartition("/")
        parent = modules / scope if scope else modules
        if WILDCARD in scope or not self.inventory.is_dir(parent):
            return []
        regex = re.compile(re.escape(base).replace(re.escape(WILDCARD), "[^/]*"))
        return sorted(parent / child for child in self.inventory.listdir(parent)
                      if regex.fullmatch(child) and not child.startswith(".") and self.inventory.is_dir(parent / child))

    def _narrowing_for(self, ref: Ref, importer: Path) -> Narrowing | None:
        package_dir = package_dir_of(importer, self.deps_root)
        narrowing = self.narrowings.get(_package_name(package_dir)) if package_dir is not None else None
        if narrowing is None or ref.target != narrowing.glob.replace("*", WILDCARD):
            return None
        return narrowing

    def _resolve_call_arg(self, ref: Ref, importer: Path) -> Resolution:
        package_dir = package_dir_of(importer, self.deps_root)
        caller = _package_name(package_dir) if package_dir is not None else ""
        for method in ref.names:
            self._call_args.setdefault(method, set()).add((caller, ref.target))
        return Resolved(())

    def shipped_code(self) -> list[Path]:
        """Every script of the app outside node_modules, tests, build-tool configs and served
        folders: the app ships them whole, and frameworks run some by path (yargs' and
        commander's command files, oclif's commands, GraphQL resolvers and TypeORM entities
        loaded by a glob). With `npm ci --omit=dev`, what only a dev tool needs is not installed."""
        found = []
        for path, info in self.inventory.files.items():
            if info.root != "app" or not path.name.endswith(SOURCE_SUFFIXES + TYPESCRIPT_SUFFIXES) \
                    or path.name.endswith(".d.ts") or info.size > STATIC_BUNDLE_BYTES:
                continue
            parts = path.relative_to(self.app_root).parts
            if "node_modules" in parts or any(p in NOT_SHIPPED_CODE_DIRS for p in parts[:-1]) \
                    or NOT_SHIPPED_CODE_FILE.search(path.name):
                continue
            found.append(path)
        return sorted(found) + self._manifest_plugins()

    def _manifest_plugins(self) -> list[Path]:
        """Packages the app's package.json lists for a framework to load by name (oclif.plugins)."""
        manifest = self.resolver.manifest(self.app_root)
        files: list[Path] = []
        for section, key in MANIFEST_PLUGIN_LISTS:
            table = manifest.data.get(section) if manifest is not None else None
            names = table.get(key) if isinstance(table, dict) else None
            for name in names if isinstance(names, list) else ():
                found = self.resolver.resolve(name, self.app_root / "package.json", False) \
                    if isinstance(name, str) and name else None
                if found is not None:
                    files.extend((*found.files, *found.manifests))
        return files

    def deferred(self) -> list[tuple[Edge, Path, int]]:
        """Narrowed globs, answered with every call the trace has seen so far."""
        found: list[tuple[Edge, Path, int]] = []
        for (importer, line, spec), narrowing in sorted(self._narrowed.items(), key=lambda kv: str(kv[0])):
            # the package's own calls pass its callers' values along: only outside callers count
            names = {name for call in narrowing.calls for caller, name in self._call_args.get(call, set())
                     if caller != narrowing.package}
            pattern = posixpath.normpath(posixpath.join(str(importer.parent), spec))
            files = self._glob(pattern, dot=False, module_extensions=True)
            if WILDCARD not in names:
                wanted = {variant for name in names for variant in _name_variants(name)}
                files = [f for f in files if f.name.rsplit(".", 1)[0].lower() in wanted]
            detail = f"{spec} narrowed to the names passed to {', '.join(narrowing.calls)}"
            found.extend((Edge(f, Reason.DYNAMIC, detail), importer, line) for f in files)
        return found

    def _resolve_asset(self, ref: Ref, importer: Path) -> Resolution:
        target = ref.target
        wild = target.find(WILDCARD)
        base = Path(target if wild == -1 else target[: target.rfind("/", 0, wild)] or "/")
        if not self.inventory.is_file(base) and not self.inventory.is_dir(base):
            return Resolved(())
        if not self._within_package_scope(Path(target.replace(WILDCARD, "x")), importer):
            return Resolved(())
        if self.inventory.is_file(base):
            if wild != -1:
                return Resolved(())
            return Resolved((Edge(base, Reason.DATA, "read by the code"),))
        if not self._valid_asset_dir(target, importer):
            return Resolved(())
        pattern = target if wild != -1 else target.rstrip("/") + "/" + WILDCARD
        files = self._glob(pattern, dot=True, module_extensions=False)
        self._note_static(files)
        return Resolved(tuple(Edge(p, Reason.DATA, "directory read by the code") for p in files))

    def _resolve_asset_dir(self, ref: Ref, importer: Path) -> Resolution:
        files = self._glob(ref.target.rstrip("/") + "/" + WILDCARD, dot=True, module_extensions=False)
        self._note_static(files)
        return Resolved(tuple(Edge(p, Reason.DATA, "directory listed by the code") for p in files))

    def _note_static(self, files: list[Path]) -> None:
        """Files kept because their directory is read or served whole: data to the code that reads
        them (a served browser bundle is not run by node), unless something also requires them."""
        self._static.update(self.inventory.canonical(f) for f in files)

    def _within_package_scope(self, asset: Path, importer: Path) -> bool:
        """Code inside node_modules only ever reaches assets inside node_modules."""
        base = outermost_node_modules(importer, self.deps_root)
        return base is None or is_within(asset, base)

    def _valid_asset_dir(self, target: str, importer: Path) -> bool:
        """Never glob the importer's own directory, the cwd, a node_modules directory or a parent."""
        suffix = next((s for s in ("/" + WILDCARD, "/", WILDCARD) if target.endswith(s)), "")
        directory = target[: len(target) - len(suffix)]
        here = str(importer.parent)
        if directory in (here, str(self.cwd), "") or directory.endswith("/node_modules"):
            return False
        return not here.startswith(directory + "/")

    def _glob(self, pattern: str, dot: bool, module_extensions: bool) -> list[Path]:
        wild = pattern.find(WILDCARD)
        if wild == -1:
            return [Path(pattern)] if self.inventory.is_file(Path(pattern)) else []
        cut = pattern.rfind("/", 0, wild)
        directory = Path(pattern[:cut] or "/")
        if not self.inventory.is_dir(directory):
            return []
        regex = _glob_regex(pattern[cut:], module_extensions)
        found: list[Path] = []
        top = self.inventory.canonical(directory)
        for path in self.inventory.walk_files(directory):
            rel = "/" + path.relative_to(top).as_posix()
            if "/node_modules/" in rel or (not dot and "/." in rel):
                continue
            if path.name in GLOB_EXCLUDED_NAMES or path.name.endswith(GLOB_EXCLUDED_SUFFIXES):
                continue
            if regex.fullmatch(rel):
                found.append(directory / rel[1:])
        return found

    def _resolve_bindings(self, ref: Ref, importer: Path) -> Resolution:
        """The `bindings` package's search: build/Release, build/Debug, ... from the package root."""
        name = ref.target if ref.target.endswith(".node") else ref.target + ".node"
        root = self.resolver.boundary(importer) or importer.parent
        candidates = [root / d / name for d in _BINDINGS_DIRS]
        edges = tuple(Edge(p, Reason.NATIVE, "bindings()") for p in candidates if self.inventory.is_file(p))
        return Resolved(edges) if edges else Unresolved(f"bindings({ref.target!r}): no {name} built", (name,))

    def _resolve_node_gyp_build(self, ref: Ref, importer: Path) -> Resolution:
        """node-gyp-build(dir): build/Release/*.node, else prebuilds/<platform>-<arch>/*.node."""
        root = Path(ref.target)
        for sub in ("build/Release", "build/Debug"):
            files = [p for p in self._glob(f"{root}/{sub}/{WILDCARD}", dot=False, module_extensions=False)
                     if p.name.endswith(".node")]
            if files:
                return Resolved(tuple(Edge(p, Reason.NATIVE, "node-gyp-build") for p in files))
        other_libc = ".glibc." if _host_libc() == "musl" else ".musl."
        files = [p for p in self._glob(f"{root}/prebuilds/{_host_platform()}/{WILDCARD}", dot=False,
                                       module_extensions=False)
                 if p.name.endswith(".node") and other_libc not in p.name]
        if files:
            return Resolved(tuple(Edge(p, Reason.NATIVE, "node-gyp-build prebuild") for p in files))
        return Unresolved(f"node-gyp-build({display(root)}): no build/Release or prebuilds/{_host_platform()} addon",
                          ("*.node",))

    def _resolve_pre_gyp(self, ref: Ref, importer: Path) -> Resolution:
        """node-pre-gyp's find(package.json): the binary.module_path it names, with its templates."""
        manifest = self.resolver.manifest(Path(ref.target).parent)
        binary = manifest.data.get("binary") if manifest else None
        module_path = binary.get("module_path") if isinstance(binary, dict) else None
        if not isinstance(module_path, str):
            return Unresolved(f"node-pre-gyp: no binary.module_path in {display(ref.target)}", ())
        template = re.sub(r"\{[^}]*\}", WILDCARD, module_path.rstrip("/"))
        pattern = posixpath.normpath(posixpath.join(str(Path(ref.target).parent), template)) + "/" + WILDCARD
        files = [p for p in self._glob(pattern, dot=False, module_extensions=False) if p.name.endswith(".node")]
        return Resolved(tuple(Edge(p, Reason.NATIVE, "node-pre-gyp") for p in files))

    def _resolve_pkginfo(self, ref: Ref, importer: Path) -> Resolution:
        boundary = self.resolver.boundary(importer)
        if boundary is None:
            return Resolved(())
        return Resolved((Edge(boundary / "package.json", Reason.METADATA, "pkginfo"),))

    def _resolve_from(self, ref: Ref, importer: Path) -> Resolution:
        base, _, spec = ref.target.partition("\n")
        found = self.resolver.resolve(spec, Path(base) / "_", False)
        return Resolved(self._edges(found, Reason.IMPORT, spec)) if found else Resolved(())

    def _resolve_needed(self, ref: Ref, importer: Path) -> Resolution:
        for directory in needed_search_dirs(ref, importer):
            path = directory / ref.target
            if self.inventory.is_file(path):
                return Resolved((Edge(path, Reason.NATIVE, f"DT_NEEDED {ref.target}"),))
        return External(ref.target)

    # -- companions: what travels with a kept file ----------------------------------------------------
    def companions(self, path: Path) -> list[Edge]:
        edges: list[Edge] = []
        name = path.name
        if name.endswith((".js", ".ts")):     # .mjs/.cjs do not depend on "type"
            boundary = self.resolver.boundary(path)
            if boundary is not None:
                edges.append(Edge(boundary / "package.json", Reason.METADATA, "decides CommonJS or ESM"))
        package = package_dir_of(path, self.deps_root)
        if package is not None and path != package / "package.json":
            # require() of the package (or of any path in it) reads its manifest: exports, main
            edges.append(Edge(package / "package.json", Reason.METADATA, "the package's manifest"))
        if name.endswith(".node"):
            edges.extend(self._shared_libraries(path))
        if name.endswith((".js", ".cjs", ".mjs")):
            wasm = path.with_name(name.rsplit(".", 1)[0] + ".wasm")
            if self.inventory.is_file(wasm):    # emscripten's loader x.js fetches x.wasm beside it
                edges.append(Edge(wasm, Reason.DATA, "the WebAssembly module of the loader beside it"))
        stand_in = self.resolver.remappings.get(path)
        if stand_in is not None:
            edges.append(Edge(stand_in, Reason.IMPORT, "package.json browser field"))
        edges.extend(self._hint_edges(path))
        return edges

    def _shared_libraries(self, addon: Path) -> list[Edge]:
        package = package_dir_of(addon, self.deps_root) or self.resolver.boundary(addon)
        if package is None:
            return []
        return [Edge(p, Reason.NATIVE, "shared library of a native addon")
                for p in self._glob(f"{package}/{WILDCARD}", dot=True, module_extensions=False)
                if SHARED_LIBRARY.search(p.name)]

    def _hint_edges(self, path: Path) -> list[Edge]:
        package_dir = package_dir_of(path, self.deps_root) if self.hints else None
        if package_dir is None:
            return []
        name = _package_name(package_dir)
        hint = self.hints.get(name)
        if hint is None or (hint.when and path != package_dir / hint.when) or (name, package_dir) in self._hinted:
            return []
        self._hinted.add((name, package_dir))
        detail = f"{name}: {hint.why}"
        edges: list[Edge] = []
        for spec in hint.requires:
            found = self.resolver.resolve(spec, package_dir / "package.json", False)
            if found is not None:
                edges.extend(Edge(p, Reason.HINT, detail) for p in (*found.files, *found.manifests))
        for relative in hint.scan:
            script = package_dir / relative
            if self.inventory.is_file(script):
                self._scan_as_source.add(self.inventory.canonical(script))
                edges.append(Edge(script, Reason.HINT, detail))
        files = self._package_files_under(package_dir)
        for pattern in hint.keep:
            regex = re.compile(_fnmatch_path(pattern.replace("{platform}", _host_platform())))
            edges.extend(Edge(p, Reason.HINT, detail) for p in files
                         if regex.fullmatch(p.relative_to(package_dir).as_posix()))
        if hint.optional_dependencies:
            edges.extend(Edge(p, Reason.HINT, detail) for p in self._optional_dependency_files(package_dir, 2))
        return edges

    def _package_files_under(self, package_dir: Path) -> list[Path]:
        top = self.inventory.canonical(package_dir)
        return [package_dir / p.relative_to(top) for p in self.inventory.walk_files(package_dir)
                if "node_modules" not in p.relative_to(top).parts]

    def _optional_dependency_files(self, package_dir: Path, levels: int) -> list[Path]:
        """The installed optionalDependencies of a package (and theirs), found the way require would."""
        manifest = self.resolver.manifest(package_dir)
        optional = manifest.data.get("optionalDependencies") if manifest else None
        if not isinstance(optional, dict) or levels == 0:
            return []
        files = []
        for dependency in sorted(k for k in optional if isinstance(k, str)):
            if split_package(dependency)[0] != dependency:
                continue
            for modules in self.resolver.node_modules_dirs(self.inventory.canonical(package_dir)):
                installed = modules / dependency
                if self.inventory.is_dir(installed):
                    files.extend(self._package_files_under(installed))
                    files.extend(self._optional_dependency_files(installed, levels - 1))
                    break
        return files

    # -- names, packages, drops -----------------------------------------------------------------------
    def keep_edges(self, pattern: str) -> list[Edge]:
        files = self._package_files(pattern) or self._files_matching(pattern) or self._specifier_files(pattern)
        return [Edge(p, Reason.KEEP, pattern) for p in files]

    def _specifier_files(self, pattern: str) -> list[Path]:
        """`lodash/chunk` as require() would resolve it from the app: the module, not a glob."""
        if any(c in pattern for c in "*?["):
            return []
        found = self.resolver.resolve(pattern, self.app_root / "package.json", False)
        return sorted({*found.files, *found.manifests}) if found else []

    def _package_files(self, name: str) -> list[Path]:
        dirs = [d for d, package in self._package_index().items() if package.name == name]
        files: list[Path] = []
        for directory in dirs:
            files.extend(p for p in self.inventory.walk_files(directory)
                         if package_dir_of(p, self.deps_root) == directory)
        return files

    def _files_matching(self, pattern: str) -> list[Path]:
        regex = re.compile(_fnmatch_path(pattern))
        roots = [r for r in (self.deps_root, self.app_root) if r is not None]
        return sorted(p for p in self.inventory.files for root in roots[:1]
                      if is_within(p, root) and regex.fullmatch(p.relative_to(root).as_posix()))

    def repair_patterns(self, missing: str, app_out: Path, deps_out: Path) -> list[str]:
        """A specifier (`lodash/chunk`) resolved from the app, or a path under the pruned tree,
        as --keep patterns relative to node_modules, if the original deps have it."""
        if self.deps_root is None:
            return []
        if missing.startswith("/"):
            path = Path(missing)
            if not is_within(path, deps_out):
                return []
            found = self.resolver.file_or_dir(self.deps_root / path.relative_to(deps_out))
        else:
            found = self.resolver.resolve(missing, self.app_root / "package.json", False)
        files = [*found.files, *found.manifests] if found else []
        return sorted({self.inventory.canonical(f).relative_to(self.deps_root).as_posix() for f in files
                       if is_within(self.inventory.canonical(f), self.deps_root)})

    def lookup(self, name: str) -> list[Path]:
        for root in [r for r in (self.deps_root, self.app_root) if r is not None]:
            path = normalise(Path(name)) if name.startswith("/") else normalise(root / name)
            if self.inventory.is_file(path):
                return [self.inventory.canonical(path)]
        return self._package_files(name)

    def package_of(self, path: Path) -> Package | None:
        if self.deps_root is None or not is_within(path, self.deps_root):
            return None
        directory = package_dir_of(path, self.deps_root)
        return self._package_index().get(directory) if directory is not None else None

    def packages(self) -> list[Package]:
        return sorted(set(self._package_index().values()), key=lambda p: (p.name, p.version))

    def _package_index(self) -> dict[Path, Package]:
        if self._packages is None:
            index: dict[Path, Package] = {}
            if self.deps_root is not None:
                for directory in self.inventory.dirs:
                    if not is_within(directory, self.deps_root) or directory.name.startswith(".") \
                            or package_dir_of(directory / "_", self.deps_root) != directory:
                        continue
                    manifest = self.resolver.manifest(directory)
                    if manifest is not None:
                        name = manifest.name or _package_name(directory)
                        index[directory] = Package(name, manifest.version, manifest.license,
                                                   _npm_purl(name, manifest.version))
            self._packages = index
        return self._packages

    def drop_reason(self, path: Path) -> Reason:
        if path.name in APP_BUILD_ONLY_FILES and self._is_app_file(path):
            return Reason.EXCLUDED
        return Reason.UNREACHED


_BINDINGS_DIRS = ("build", "build/Debug", "build/Release", "out/Debug", "Debug", "out/Release", "Release",
                  "build/default", "compiled/linux/x64", "addon-build/release/install-root",
                  "addon-build/debug/install-root", "addon-build/default/install-root", "lib/binding/linux-x64")

_RESOLVERS = {
    "require": NodeSession._resolve_module,
    "import": NodeSession._resolve_module,
    "require-glob": NodeSession._resolve_glob,
    "require-installed": NodeSession._resolve_if_installed,
    "import-glob": NodeSession._resolve_glob,
    "asset": NodeSession._resolve_asset,
    "asset-dir": NodeSession._resolve_asset_dir,
    "bindings": NodeSession._resolve_bindings,
    "node-gyp-build": NodeSession._resolve_node_gyp_build,
    "pre-gyp": NodeSession._resolve_pre_gyp,
    "pkginfo": NodeSession._resolve_pkginfo,
    "resolve-from": NodeSession._resolve_from,
    "needed": NodeSession._resolve_needed,
    "call-arg": NodeSession._resolve_call_arg,
}


def _name_variants(name: str) -> list[str]:
    """fr_CA -> fr-ca, fr (how locale loaders fall back)."""
    parts = name.lower().replace("_", "-").split("-")
    return ["-".join(parts[:i]) for i in range(len(parts), 0, -1)]


def _package_name(package_dir: Path) -> str:
    return f"{package_dir.parent.name}/{package_dir.name}" if package_dir.parent.name.startswith("@") \
        else package_dir.name


def _glob_regex(pattern: str, module_extensions: bool) -> re.Pattern[str]:
    """'/dir/\\x1a.txt' -> any depth below dir ending in .txt; a WILDCARD inside a name
    matches within that name only."""
    out = []
    for i, ch in enumerate(pattern):
        if ch == WILDCARD:
            out.append("(?:.*/)?[^/]*" if i > 0 and pattern[i - 1] == "/" else "[^/]*")
        else:
            out.append(re.escape(ch))
    regex = "".join(out)
    if module_extensions and not pattern.endswith(WILDCARD):
        regex += r"(?:\.js|\.json|\.node)?"
    return re.compile(regex)


def _fnmatch_path(pattern: str) -> str:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(1 << 20)
    except OSError:
        return b""


def _target_version(flag: str | None, app_root: Path) -> tuple[str, str]:
    if flag:
        if not re.fullmatch(r"v?\d+(\.\d+){0,2}", flag):
            raise UsageError(f"--node-version {flag!r}: expected a version like 20.19 or 22.12.0")
        return flag.lstrip("v"), "--node-version"
    node = shutil.which("node")
    if node:
        try:
            out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=20,
                                 env={"PATH": os.environ.get("PATH", "")}).stdout.strip()
            if re.fullmatch(r"v\d+\.\d+\.\d+", out):
                return out[1:], "node on PATH"
        except (OSError, subprocess.SubprocessError):
            pass
    engines = re.search(rb'"node"\s*:\s*"[^"0-9]*(\d+(?:\.\d+){0,2})', _head(app_root / "package.json"))
    if engines:
        return engines.group(1).decode(), "package.json engines"
    return DEFAULT_NODE_VERSION, "default"


def _host_platform() -> str:
    """node's `${process.platform}-${process.arch}` for the runtime the image is built from."""
    machine = os.uname().machine
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "armv7l": "arm", "i686": "ia32"}.get(machine, machine)
    return f"linux-{arch}"


def _host_libc() -> str:
    """The C library of the runtime the image is built from (node-gyp-build tags prebuilds by it)."""
    try:
        return "glibc" if os.confstr("CS_GNU_LIBC_VERSION") else "musl"
    except (ValueError, OSError):
        return "musl"


def _module_sync(version: str) -> bool:
    """Node matches the "module-sync" condition from 20.19 and 22.12 on (and in 23+)."""
    parts = [int(p) for p in version.split(".")[:2]] + [0]
    major, minor = parts[0], parts[1]
    return major >= 23 or (major == 22 and minor >= 12) or (major == 20 and minor >= 19)


def _npm_purl(name: str, version: str) -> str:
    """pkg:npm/%40scope/name@version (the purl spec percent-encodes the scope's @)."""
    from urllib.parse import quote

    scope, _, bare = name.rpartition("/")
    path = f"{quote(scope, safe='')}/{quote(bare, safe='.-_~')}" if scope else quote(bare, safe=".-_~")
    return f"pkg:npm/{path}@{quote(version, safe='.+-_')}" if version else f"pkg:npm/{path}"
