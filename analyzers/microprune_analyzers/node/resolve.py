"""Node's module resolution, over the inventory (never the live disk).

CommonJS (`require`) and ESM (`import`) resolution for a TARGET Node version:
relative and absolute paths, extensions and directory indexes, `main`,
`exports` and `imports` maps with conditions, self-reference, and the
`node_modules` walk up from the importer. Targets that leave their package
(`../../x`, absolute paths) are refused with a warning. Where Node would pick
one of several targets depending on the version (`module-sync`), every
candidate is kept: keeping one file too many never breaks an app.
"""
from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from microprune.inventory import Inventory
from microprune.paths import is_within

CJS_EXTENSIONS = (".js", ".json", ".node")
TS_EXTENSIONS = (".ts", ".tsx")
MAX_PACKAGE_JSON_BYTES = 8 * 1024 * 1024
MAX_TARGET_DEPTH = 32


@dataclass
class PackageJson:
    directory: Path
    data: dict[str, Any]
    error: str | None = None

    @property
    def name(self) -> str | None:
        name = self.data.get("name")
        return name if isinstance(name, str) else None

    @property
    def version(self) -> str:
        version = self.data.get("version")
        return version if isinstance(version, str) else ""

    @property
    def license(self) -> str:
        """"license" (an SPDX expression, or {"type": ...} in old packages), else the old "licenses" list."""
        value = self.data.get("license")
        if isinstance(value, dict):
            value = value.get("type")
        if isinstance(value, str):
            return value.strip()[:120]
        old = self.data.get("licenses")
        if isinstance(old, list):
            types = [item.get("type") for item in old if isinstance(item, dict)]
            return " OR ".join(t for t in types if isinstance(t, str))[:120]
        return ""


@dataclass(frozen=True)
class Found:
    """What a specifier resolved to: the files, plus the package.json files read on the way."""

    files: tuple[Path, ...]
    manifests: tuple[Path, ...] = ()
    # those of ``files`` that only a runtime without `exports` support would load (the
    # package's main, beside the `exports` that today's Node follows)
    fallbacks: frozenset[Path] = frozenset()


@dataclass
class Resolver:
    inventory: Inventory
    conditions: frozenset[str]              # user conditions, plus "node"
    module_sync: bool                        # the target Node matches "module-sync"
    ts_roots: tuple[Path, ...] = ()          # where .ts files may be required without extension (the app)
    # module-alias's `_moduleAliases` and --alias: name -> path ("@lib" matches "@lib" and "@lib/x";
    # a name ending in "/" matches as a prefix)
    aliases: dict[str, Path] = field(default_factory=dict)
    # Searched after the node_modules walk, as NODE_PATH is: --deps given outside the app (at run
    # time it is OUT/node_modules, above every app file)
    fallback_dirs: tuple[Path, ...] = ()
    problems: list[tuple[Path, str]] = field(default_factory=list)
    # "browser" field replacements (only with the browser condition): file -> its stand-in
    remappings: dict[Path, Path] = field(default_factory=dict)
    _manifests: dict[Path, PackageJson | None] = field(default_factory=dict)
    _boundaries: dict[Path, Path | None] = field(default_factory=dict)

    # -- package.json ---------------------------------------------------------------------------------
    def manifest(self, directory: Path) -> PackageJson | None:
        if directory in self._manifests:
            return self._manifests[directory]
        path = directory / "package.json"
        result: PackageJson | None = None
        if self.inventory.is_file(path):
            result = self._read_manifest(directory, path)
        self._manifests[directory] = result
        return result

    def _read_manifest(self, directory: Path, path: Path) -> PackageJson:
        size = self.inventory.files.get(self.inventory.canonical(path))
        if size is not None and size.size > MAX_PACKAGE_JSON_BYTES:
            return self._broken(directory, path, f"larger than {MAX_PACKAGE_JSON_BYTES >> 20} MB; ignored")
        try:
            data = json.loads(self.inventory.read_bytes(path).decode("utf-8-sig"))
        except OSError as err:
            return self._broken(directory, path, f"cannot read: {err}")
        except (UnicodeDecodeError, ValueError, RecursionError) as err:
            return self._broken(directory, path, f"not valid JSON ({str(err).splitlines()[0][:120]}); ignored")
        if not isinstance(data, dict):
            return self._broken(directory, path, "not a JSON object; ignored")
        return PackageJson(directory, data)

    def _broken(self, directory: Path, path: Path, why: str) -> PackageJson:
        self.problems.append((path, why))
        return PackageJson(directory, {}, why)

    def boundary(self, path: Path) -> Path | None:
        """The directory of the nearest package.json above ``path`` (it decides CJS vs ESM)."""
        directory = path.parent
        seen = []
        result: Path | None = None
        while True:
            if directory in self._boundaries:
                result = self._boundaries[directory]
                break
            seen.append(directory)
            if self.inventory.is_file(directory / "package.json"):
                result = directory
                break
            if directory.parent == directory or self.inventory.root_of(directory) is None:
                break
            directory = directory.parent
        for d in seen:
            self._boundaries[d] = result
        return result

    # -- the algorithm -------------------------------------------------------------------------------
    def resolve(self, spec: str, importer: Path, esm: bool) -> Found | None:
        if spec.startswith(("./", "../", "/")) or spec in (".", ".."):
            base = importer.parent / spec if not spec.startswith("/") else Path(spec)
            target = _normal(base)
            found = self.file_or_dir(target, spec.endswith("/"))
            return Found(found.files, found.manifests) if found else None
        if spec.startswith("#"):
            return self._imports(spec, importer, esm)
        aliased = self._alias(spec)
        if aliased is not None:
            found = self.file_or_dir(aliased, str(aliased).endswith("/"))
            if found is not None:
                return found
        return self._package(spec, importer, esm)

    def _alias(self, spec: str) -> Path | None:
        for name in sorted(self.aliases, key=len, reverse=True):
            target = self.aliases[name]
            if spec == name:
                return target
            prefix = name if name.endswith("/") else name + "/"
            if spec.startswith(prefix):
                return _normal(target / spec[len(prefix):])
        return None

    def file_or_dir(self, target: Path, directory_only: bool = False) -> Found | None:
        if not directory_only:
            file = self._file(target)
            if file is not None:
                return Found((file,))
        return self._directory(target)

    def _file(self, target: Path) -> Path | None:
        if not target.name:                  # "/" (a path that climbed to the root): not a file
            return None
        if self.inventory.is_file(target):
            return target
        candidates: tuple[str, ...] = CJS_EXTENSIONS
        real = self.inventory.canonical(target.parent) / target.name      # a workspace link: its real place
        if any(is_within(real, root) and "node_modules" not in real.relative_to(root).parts
               for root in self.ts_roots):
            candidates = TS_EXTENSIONS + CJS_EXTENSIONS
        for ext in candidates:
            candidate = target.with_name(target.name + ext)
            if self.inventory.is_file(candidate):
                return candidate
        return None

    def _directory(self, target: Path) -> Found | None:
        if not self.inventory.is_dir(target):
            return None
        manifest = self.manifest(target)
        main = manifest.data.get("main") if manifest else None
        if isinstance(main, str) and main:
            main_path = _normal(target / main)
            if not is_within(main_path, target):
                self.problems.append((target / "package.json", f"main {main!r} leaves the package; ignored"))
            else:
                file = self._file(main_path) or self._file(main_path / "index")
                if file is not None:
                    return Found((file,), (target / "package.json",))
        index = self._file(target / "index")
        return Found((index,)) if index is not None else None

    def _package(self, spec: str, importer: Path, esm: bool) -> Found | None:
        name, subpath = split_package(spec)
        if name is None:
            return None
        directory_only = spec.endswith("/")        # `prismjs/components/`: the directory, as node reads it
        found: list[Path] = []
        manifests: list[Path] = []
        own = self._self_reference(name, subpath, importer, esm)
        if own is not None:
            found.extend(own.files)
            manifests.extend(own.manifests)
        for modules in self.node_modules_dirs(importer.parent):
            package_dir = modules / name
            if not self.inventory.is_dir(package_dir):
                continue
            manifest = self.manifest(package_dir)
            if manifest is not None and "browser" in self.conditions:
                self._note_browser_remappings(package_dir, manifest)
            exports = manifest.data.get("exports") if manifest else None
            if exports is not None and not own:
                mapped = self._map(package_dir, exports, "." + subpath, esm, imports=False)
                legacy = self.file_or_dir(_normal(modules / spec), directory_only)
                if mapped:
                    extra = [f for f in (legacy.files if legacy else ()) if f not in mapped.files]
                    return Found((*mapped.files, *extra), (package_dir / "package.json", *mapped.manifests),
                                 frozenset(extra))
                return legacy
            result = self.file_or_dir(_normal(modules / spec), directory_only)
            if result is not None:
                return Found(tuple(dict.fromkeys((*result.files, *found))), (*result.manifests, *manifests))
        return Found(tuple(found), tuple(manifests)) if found else None

    def _note_browser_remappings(self, package_dir: Path, manifest: PackageJson) -> None:
        browser = manifest.data.get("browser")
        if not isinstance(browser, dict):
            return
        for key, value in browser.items():
            if isinstance(key, str) and isinstance(value, str) and key.startswith("./") and value.startswith("./"):
                source, target = self._file(_normal(package_dir / key)), self._file(_normal(package_dir / value))
                if source is not None and target is not None and is_within(target, package_dir):
                    self.remappings[source] = target

    def node_modules_dirs(self, start: Path) -> list[Path]:
        result = []
        directory = start
        while True:
            if directory.name != "node_modules":
                candidate = directory / "node_modules"
                if self.inventory.is_dir(candidate):
                    result.append(candidate)
            if directory.parent == directory or self.inventory.root_of(directory.parent) is None:
                break
            directory = directory.parent
        return result + [d for d in self.fallback_dirs if d not in result]

    def _self_reference(self, name: str, subpath: str, importer: Path, esm: bool) -> Found | None:
        boundary = self.boundary(importer)
        if boundary is None:
            return None
        manifest = self.manifest(boundary)
        if manifest is None or manifest.name != name or manifest.data.get("exports") is None:
            return None
        mapped = self._map(boundary, manifest.data["exports"], "." + subpath, esm, imports=False)
        if mapped is None:
            return None
        return Found(mapped.files, (boundary / "package.json", *mapped.manifests))

    def _imports(self, spec: str, importer: Path, esm: bool) -> Found | None:
        if spec in ("#", ) or spec.startswith("#/"):
            return None
        boundary = self.boundary(importer)
        manifest = self.manifest(boundary) if boundary else None
        if boundary is None or manifest is None or not isinstance(manifest.data.get("imports"), dict):
            return None
        mapped = self._map(boundary, manifest.data["imports"], spec, esm, imports=True, importer=importer)
        if mapped is None:
            return None
        return Found(mapped.files, (boundary / "package.json", *mapped.manifests))

    # -- exports / imports maps -----------------------------------------------------------------------
    def _map(self, package_dir: Path, mapping: Any, subpath: str, esm: bool, imports: bool,
             importer: Path | None = None) -> Found | None:
        if not imports:
            mapping = _exports_table(mapping)
        if not isinstance(mapping, dict):
            if not imports:
                self.problems.append((package_dir / "package.json", f"exports {mapping!r:.40} is not a string, an "
                                      "array or an object; ignored"))
            return None
        if subpath in mapping and "*" not in subpath:
            return self._targets(package_dir, mapping[subpath], esm, "", imports, importer)
        best = None
        for key in mapping:
            if key.count("*") == 1:
                prefix, suffix = key.split("*")
                if subpath.startswith(prefix) and subpath.endswith(suffix) and len(subpath) >= len(key) - 1 \
                        and (best is None or len(prefix) > len(best[0].split("*")[0])):
                    best = (key, subpath[len(prefix):len(subpath) - len(suffix)] if suffix else subpath[len(prefix):])
            elif key.endswith("/") and subpath.startswith(key) and (best is None or len(key) > len(best[0])):
                best = (key, subpath[len(key):])
        if best is None:
            return None
        key, rest = best
        if key.endswith("/") and "*" not in key:
            return self._targets(package_dir, mapping[key], esm, "\0" + rest, imports, importer)
        return self._targets(package_dir, mapping[key], esm, rest, imports, importer)

    def export_patterns(self, package_dir: Path, subpath: str, esm: bool, wildcard: str) -> list[str]:
        """The files a subpath with a computed part (``wildcard`` in it: `./locale/<?>`) can name
        through the package's `exports`, as absolute path patterns (the wildcard kept)."""
        manifest = self.manifest(package_dir)
        mapping = _exports_table(manifest.data.get("exports")) if manifest is not None else None
        if not isinstance(mapping, dict):
            return []
        fixed = re.compile(re.escape(subpath).replace(re.escape(wildcard), "[^/]*"))
        patterns = []
        for key, target in mapping.items():
            if key.count("*") == 1:
                prefix, suffix = key.split("*")
                if not (subpath.startswith(prefix) and subpath.endswith(suffix)):
                    continue
                star = subpath[len(prefix):len(subpath) - len(suffix)]
            elif fixed.fullmatch(key):
                star = ""
            else:
                continue
            for text in self._select(target, esm, 0):
                if text.startswith("./") and not text.startswith("\0"):
                    path = posixpath.normpath(str(package_dir) + "/" + text.replace("*", star))
                    if path.startswith(str(package_dir) + "/"):
                        patterns.append(path)
        return patterns

    def _targets(self, package_dir: Path, target: Any, esm: bool, star: str, imports: bool,
                 importer: Path | None) -> Found | None:
        """Every target the conditions can select (plus module-sync alternatives)."""
        strings = self._select(target, esm, 0)
        files: list[Path] = []
        manifests: list[Path] = []
        for text in strings:
            if text.startswith("\0null"):
                continue
            if star.startswith("\0"):
                text = text + star[1:]
            elif "*" in text:
                text = text.replace("*", star)
            if not text.startswith("./"):
                if imports and importer is not None and not text.startswith(("/", "../")):
                    found = self._package(text, importer, esm)     # "imports" may name a dependency
                    if found:
                        files.extend(found.files)
                        manifests.extend(found.manifests)
                    continue
                why = "leaves the package" if text.startswith(("../", "/")) else "does not start with ./"
                self.problems.append((package_dir / "package.json", f"export target {text!r} {why}; ignored"))
                continue
            path = _normal(package_dir / text)
            if not is_within(path, package_dir):
                self.problems.append((package_dir / "package.json",
                                      f"export target {text!r} leaves the package; ignored"))
                continue
            if self.inventory.is_file(path):
                files.append(path)
            elif not esm:
                found = self.file_or_dir(path)
                if found:
                    files.extend(found.files)
                    manifests.extend(found.manifests)
        if not files:
            return None
        return Found(tuple(dict.fromkeys(files)), tuple(manifests))

    def _select(self, target: Any, esm: bool, depth: int) -> list[str]:
        """The targets a condition object selects, first match wins (module-sync: both)."""
        if depth > MAX_TARGET_DEPTH:
            return []
        if isinstance(target, str):
            return [target]
        if target is None:
            return ["\0null"]
        if isinstance(target, list):
            for item in target:      # fallbacks: the first valid target (./..., or null) wins
                chosen = self._select(item, esm, depth + 1)
                valid = [c for c in chosen if c.startswith("./") or c == "\0null"]
                if valid:
                    return valid
            return []
        if not isinstance(target, dict):
            return []
        result: list[str] = []
        for condition, value in target.items():
            if condition == "module-sync":
                # Node >= 20.19 / 22.12 picks it; the fallback stays too (a different Node may run the app)
                if self.module_sync:
                    result.extend(self._select(value, esm, depth + 1))
                continue
            if self._matches(condition, esm):
                chosen = self._select(value, esm, depth + 1)
                if chosen:
                    return result + chosen
        return result

    def _matches(self, condition: str, esm: bool) -> bool:
        if condition == "default":
            return True
        if condition == "import":
            return esm
        if condition == "require":
            return not esm
        return condition in self.conditions


def _exports_table(exports: Any) -> Any:
    """`exports` as a subpath table: a bare target or a conditions object stands for "."."""
    if isinstance(exports, (str, list)) or exports is None or (
            isinstance(exports, dict) and exports and not next(iter(exports)).startswith(".")):
        return {".": exports}
    return exports


def split_package(spec: str) -> tuple[str | None, str]:
    """'@scope/pkg/sub/x' -> ('@scope/pkg', '/sub/x'); invalid names -> (None, '')."""
    if spec.startswith("node:") or not spec or spec.startswith((".", "/")) or "\\" in spec:
        return None, ""
    parts = spec.split("/")
    count = 2 if spec.startswith("@") else 1
    if len(parts) < count or not all(parts[:count]) or any(p in (".", "..") for p in parts):
        return None, ""
    name = "/".join(parts[:count])
    rest = "/".join(parts[count:])
    return name, ("/" + rest if rest else "")


def _normal(path: Path) -> Path:
    import os

    return Path(os.path.normpath(path))


def package_dir_of(path: Path, modules_root: Path | None = None) -> Path | None:
    """The package directory of a file under a node_modules directory (node_modules/@s/p or
    node_modules/p), the innermost one; ``modules_root`` counts as a node_modules directory
    whatever its name (--deps). String work: this runs for every file of the deps."""
    text = str(path)
    cut = text.rfind("/node_modules/") + len("/node_modules/")
    if cut < len("/node_modules/") and modules_root is not None:
        root = str(modules_root).rstrip("/") + "/"
        cut = len(root) if text.startswith(root) else 0
    if cut <= 0:
        return None
    rest = text[cut:].split("/")
    count = 2 if rest[0].startswith("@") else 1
    if len(rest) <= count:
        return None
    return Path(text[:cut] + "/".join(rest[:count]))


def outermost_node_modules(path: Path, modules_root: Path | None = None) -> Path | None:
    if modules_root is not None and is_within(path, modules_root):
        return modules_root
    parts = path.parts
    for i, part in enumerate(parts):
        if part == "node_modules":
            return Path(*parts[: i + 1])
    return None
