"""Where a Node app starts: --entry, else what package.json and the usual names say."""
from __future__ import annotations

import shlex
from pathlib import Path

from microprune.errors import UsageError
from microprune.inventory import Inventory
from microprune.model import Entry
from microprune.paths import display, is_within, normalise

from .resolve import Resolver

USUAL_NAMES = ("server.js", "index.js", "app.js", "main.js", "server.mjs", "index.mjs", "app.mjs", "main.mjs",
               "server.cjs", "index.cjs", "app.cjs", "main.cjs")
# `node [flags] FILE`, `ts-node FILE`, ... in scripts.start: the word after the runner.
RUNNERS = ("node", "nodejs", "ts-node", "tsx", "nodemon", "bun")


class EntryFinder:
    def __init__(self, inventory: Inventory, resolver: Resolver, app_root: Path) -> None:
        self.inventory = inventory
        self.resolver = resolver
        self.app_root = app_root

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
        if isinstance(scripts, dict) and isinstance(scripts.get("start"), str):
            target = _script_target(scripts["start"])
            path = self._file(target) if target else None
            if path is not None and target is not None:
                entries.append(Entry(target, "script", "package.json scripts.start", (path,)))
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


def _script_target(command: str) -> str | None:
    """`node --enable-source-maps dist/server.js` -> dist/server.js (first command only)."""
    try:
        words = shlex.split(command.split("&&")[-1].split(";")[-1])
    except ValueError:
        return None
    while words and "=" in words[0] and not words[0].startswith("-"):
        words = words[1:]                       # NODE_ENV=production node x.js
    if not words or Path(words[0]).name not in RUNNERS:
        return None
    for word in words[1:]:
        if not word.startswith("-"):
            return word
    return None
