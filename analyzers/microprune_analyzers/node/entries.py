"""Where a Node app starts: --entry, else what package.json and the usual names say."""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from microprune.errors import UsageError
from microprune.inventory import Inventory
from microprune.model import Entry
from microprune.paths import display, is_within, normalise

from .resolve import Resolver

USUAL_NAMES = ("server.js", "index.js", "app.js", "main.js", "server.mjs", "index.mjs", "app.mjs", "main.mjs",
               "server.cjs", "index.cjs", "app.cjs", "main.cjs")
# `node [flags] FILE`, `ts-node FILE`, ... in scripts.start: the first word after the runner's flags.
START_ORIGIN = "package.json scripts.start"
RUNNERS = ("node", "nodejs", "ts-node", "tsx", "nodemon", "bun")
# Runners that are programs of their own (node_modules/.bin/NAME): their package runs the script.
PACKAGE_RUNNERS = frozenset({"ts-node", "tsx", "nodemon"})
# Runners that type-check the app at start (ts-node without --transpile-only): they read the
# declarations of every package the app imports and the compiler's lib.*.d.ts, found through each
# package's package.json (`types`, `typesVersions`).
TYPE_CHECKING_RUNNERS = frozenset({"ts-node"})
DECLARATION_SUFFIXES = (".d.ts", ".d.mts", ".d.cts")
# Flags whose value is a module loaded before the script (`node -r dotenv/config x.js`).
PRELOAD_FLAGS = frozenset({"-r", "--require", "--import", "--loader", "--experimental-loader"})
# Flags that take the next word as their value (node's, and those of the package runners).
VALUE_FLAGS = frozenset({
    "-C", "--conditions", "--env-file", "--input-type", "--inspect-port", "--title", "--redirect-warnings",
    "--openssl-config", "--icu-data-dir", "--diagnostic-dir", "--report-dir", "--disable-warning",
    "--unhandled-rejections", "--watch-path", "--heapsnapshot-signal", "--cpu-prof-dir", "--heap-prof-dir",
    "--secure-heap", "--tls-cipher-list", "--stack-size", "--max-old-space-size", "--max-semi-space-size",
    "-P", "--project", "-O", "--compiler-options", "--compiler", "-I", "--ignore", "--cwd", "--tsconfig",
    "-w", "--watch", "--ext", "-x", "--exec", "--delay", "--signal", "--config",
})
# Flags whose value is the program itself: no script file to trace.
INLINE_CODE_FLAGS = frozenset({"-e", "--eval", "-p", "--print"})


@dataclass(frozen=True)
class StartCommand:
    """What `scripts.start` runs: `node -r dotenv/config dist/main.js` -> runner node, script
    dist/main.js, preloads (("-r", "dotenv/config"),)."""

    runner: str
    script: str | None
    preloads: tuple[tuple[str, str], ...] = ()
    flags: tuple[str, ...] = ()


def _transpile_only(start: StartCommand) -> bool:
    return any(flag in ("-T", "--transpile-only", "--swc") for flag in start.flags)


class EntryFinder:
    def __init__(self, inventory: Inventory, resolver: Resolver, app_root: Path) -> None:
        self.inventory = inventory
        self.resolver = resolver
        self.app_root = app_root
        self.start: StartCommand | None = None     # scripts.start, when an entry comes from it
        self.runner_program: Path | None = None    # the program of its package runner (ts-node's bin)

    def _start_files(self, start: StartCommand) -> list[Path]:
        """What runs before the script: the preloads (`-r dotenv/config`), and a package runner's
        own program with its link in node_modules/.bin (`ts-node index.ts` is run by ts-node)."""
        importer = self.app_root / "package.json"
        files: list[Path] = []
        for flag, spec in start.preloads:
            found = self.resolver.resolve(spec, importer, flag not in ("-r", "--require"))
            if found is None and not spec.startswith((".", "/")):
                found = self.resolver.resolve("./" + spec, importer, False)       # `-r setup.js`: a file
            if found is not None:
                files.extend(f for f in found.files if self.inventory.is_file(f))
        if start.runner in PACKAGE_RUNNERS:
            files.extend(self._runner_program(start.runner))
        if start.runner in TYPE_CHECKING_RUNNERS and not _transpile_only(start):
            files.extend(self._declarations())
        return files

    def _declarations(self) -> list[Path]:
        found = []
        for modules in self.resolver.node_modules_dirs(self.app_root):
            for path in self.inventory.walk_files(modules):
                if path.name.endswith(DECLARATION_SUFFIXES) or path.name == "package.json":
                    found.append(path)
        return found

    def _runner_program(self, runner: str) -> list[Path]:
        for modules in self.resolver.node_modules_dirs(self.app_root):
            link = modules / ".bin" / runner
            manifest = self.resolver.manifest(modules / runner)
            bins = manifest.data.get("bin") if manifest is not None else None
            target = bins if isinstance(bins, str) else bins.get(runner) if isinstance(bins, dict) else None
            if not isinstance(target, str):
                continue
            program = self.resolver.file_or_dir(normalise(modules / runner / target))
            if program is None or not program.files:
                continue
            self.runner_program = program.files[0]
            return [*program.files, *([link] if self.inventory.is_file(link) else [])]
        return []

    def from_specs(self, specs: tuple[str, ...], origin: str) -> list[Entry]:
        entries = []
        for spec in specs:
            path = self._file(spec)
            if path is None:
                raise UsageError(f"--entry {spec!r}: no such file in {display(self.app_root)} "
                                 "(give a script path relative to the app, e.g. server.js or dist/index.js)")
            entries.append(Entry(spec, "script", origin, (path,)))
        return entries

    def detect(self) -> list[Entry]:
        manifest = self.resolver.manifest(self.app_root)
        entries: list[Entry] = []
        if manifest is not None:
            entries.extend(self._from_manifest(manifest.data))
        if not entries:
            for name in USUAL_NAMES:
                path = self.app_root / name
                if self.inventory.is_file(path):
                    entries.append(Entry(name, "script", "usual name", (path,)))
                    break
        seen: set[Path] = set()
        unique = []
        for entry in entries:
            if entry.files[0] not in seen:
                seen.add(entry.files[0])
                unique.append(entry)
        return unique

    def _from_manifest(self, data: dict[str, object]) -> list[Entry]:
        entries = []
        scripts = data.get("scripts")
        start = parse_start(scripts["start"]) if isinstance(scripts, dict) and isinstance(
            scripts.get("start"), str) else None
        path = self._file(start.script) if start is not None and start.script else None
        if start is not None and start.script is not None and path is not None:
            self.start = start
            entries.append(Entry(start.script, "script", START_ORIGIN, (path, *self._start_files(start))))
        main = data.get("main")
        if isinstance(main, str):
            found = self.resolver.file_or_dir(normalise(self.app_root / main))
            if found and found.files and is_within(found.files[0], self.app_root):
                entries.append(Entry(main, "script", "package.json main", (found.files[0],)))
        bins = data.get("bin")
        bin_paths = [bins] if isinstance(bins, str) else list(bins.values()) if isinstance(bins, dict) else []
        for item in bin_paths:
            if isinstance(item, str):
                path = self._file(item)
                if path is not None:
                    entries.append(Entry(item, "script", "package.json bin", (path,)))
        return entries

    def _file(self, spec: str) -> Path | None:
        path = normalise(self.app_root / spec)
        if not is_within(path, self.app_root):
            return None
        found = self.resolver.file_or_dir(path)
        if found and found.files:
            return found.files[0]
        for ext in (".ts", ".mjs", ".cjs", ".mts", ".cts", ".tsx"):
            candidate = path.with_name(path.name + ext)
            if self.inventory.is_file(candidate):
                return candidate
        return None


def parse_start(command: str) -> StartCommand | None:
    """The last command of `scripts.start` (after `&&`/`;`), when a known runner runs a file."""
    try:
        words = shlex.split(command.split("&&")[-1].split(";")[-1])
    except ValueError:
        return None
    while words and "=" in words[0] and not words[0].startswith("-"):
        words = words[1:]                       # NODE_ENV=production node x.js
    if not words or Path(words[0]).name not in RUNNERS:
        return None
    runner = Path(words[0]).name
    preloads: list[tuple[str, str]] = []
    flags: list[str] = []
    rest = iter(words[1:])
    for word in rest:
        flag, has_value, value = word.partition("=")
        if flag in INLINE_CODE_FLAGS:
            return StartCommand(runner, None, tuple(preloads), tuple(flags))
        if flag in PRELOAD_FLAGS:
            value = value if has_value else next(rest, "")
            if value:
                preloads.append((flag, value))
        elif not word.startswith("-"):
            return StartCommand(runner, word, tuple(preloads), tuple(flags))
        else:
            flags.append(flag)
            if flag in VALUE_FLAGS and not has_value:
                next(rest, None)
    return StartCommand(runner, None, tuple(preloads), tuple(flags))
