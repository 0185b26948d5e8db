"""Load the Node hint table (hints.toml beside this file): per-package knowledge as data."""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_KEYS = {"package", "when", "keep", "scan", "requires", "optional-dependencies", "why"}


@dataclass(frozen=True)
class Hint:
    package: str                       # fires when a file of this package is kept
    why: str
    when: str = ""                     # only when this file (relative to the package) is kept
    keep: tuple[str, ...] = ()         # globs relative to the package directory
    scan: tuple[str, ...] = ()         # files kept and read as code (scripts without an extension)
    requires: tuple[str, ...] = ()     # specifiers the package loads by computed names
    optional_dependencies: bool = False    # its installed optionalDependencies, whole (platform binaries)


@dataclass(frozen=True)
class Narrowing:
    """A wildcard require inside ``package`` keeps only the names the code passes to ``calls``
    (their first argument) -- unless some call passes a name we cannot read, then all of them."""

    package: str
    glob: str                          # the relative specifier, `*` for the computed part
    calls: tuple[str, ...]             # method names, as in `moment.locale('fr')`
    why: str
    # Calls that take the name as a later argument (`moment(text, format, 'fr')`): the
    # packages whose value is called, the callee paths ("" the module itself), the index.
    argument_of: tuple[str, ...] = ()
    argument_callees: tuple[str, ...] = ()
    argument_index: int = 0

    def argument_rules(self) -> tuple[CallRule, ...]:
        """The calls that name a match through an argument, as [[call]] rules that report it
        as if passed to the first of ``calls``."""
        return tuple(CallRule(package, self.argument_callees, (str(self.argument_index),), self.why,
                              narrows=self.calls[0]) for package in self.argument_of)


_NARROW_KEYS = {"package", "glob", "calls", "why"}
_NARROW_ARGUMENT_KEYS = {"packages", "callee", "index"}


@dataclass(frozen=True)
class CallRule:
    """A call of a package's function whose arguments name modules the package loads by that name
    (pino's transports, express's view engine): each string found at a ``require`` path is followed
    as require() from the calling file."""

    package: str                       # the module the function is imported from
    callee: tuple[str, ...]            # paths from the module's value: "" itself, "transport", "().set"
    require: tuple[str, ...]           # "0", "0.transport.target", "0.targets[].target"
    why: str
    match: tuple[tuple[int, str], ...] = ()    # (argument index, the string literal it must be)
    unless: str = ""                   # a callee path of the package: once called in the file, no module
    narrows: str = ""                  # set by a [[narrow]]: the argument is a name for it, not a require
    unreadable: tuple[str, ...] = ()   # when the argument cannot be read: these, if installed

    @property
    def name(self) -> str:
        """How fixture cases name it: `call:pino`, `call:pino.transport`, `call:express().set`."""
        first = self.callee[0]
        return "call:" + self.package + ("" if not first or first.startswith("(") else ".") + first


_CALL_KEYS = {"package", "callee", "require", "match", "unless", "unreadable", "why"}
_CALLEE = re.compile(r"^$|^(\(\)|[A-Za-z_$][\w$]*)(\.(\(\)|[A-Za-z_$][\w$]*))*$")
_REQUIRE_PATH = re.compile(r"^\d+(\.[A-Za-z_$][\w$]*(\[\])?)*$")


@lru_cache(maxsize=1)
def _table() -> dict[str, list[dict[str, object]]]:
    text = resources.files(__package__).joinpath("hints.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


@lru_cache(maxsize=1)
def load_narrowings() -> dict[str, Narrowing]:
    found = {}
    for raw in _table().get("narrow", []):
        argument = raw.get("argument", {})
        if set(raw) - {"argument"} != _NARROW_KEYS or not isinstance(argument, dict) \
                or (argument and set(argument) != _NARROW_ARGUMENT_KEYS):
            raise ValueError(f"bad node [[narrow]] {raw!r}: keys must be {sorted(_NARROW_KEYS)} and optionally "
                             f"argument = {{ {', '.join(sorted(_NARROW_ARGUMENT_KEYS))} }}")
        narrowing = Narrowing(str(raw["package"]), str(raw["glob"]), tuple(map(str, raw["calls"])),  # type: ignore[call-overload]
                              str(raw["why"]), tuple(map(str, argument.get("packages", ()))),
                              tuple(map(str, argument.get("callee", ()))), int(argument.get("index", 0)))
        found[narrowing.package] = narrowing
    return found


@lru_cache(maxsize=1)
def load_hints() -> dict[str, Hint]:
    hints = {}
    for raw in _table().get("hint", []):
        unknown = set(raw) - _KEYS
        if unknown or "package" not in raw or "why" not in raw:
            raise ValueError(f"bad node hint {raw!r}: unknown keys {sorted(unknown)} or no package/why")
        hint = Hint(str(raw["package"]), str(raw["why"]), str(raw.get("when", "")),
                    tuple(raw.get("keep", ())), tuple(raw.get("scan", ())),  # type: ignore[arg-type]
                    tuple(raw.get("requires", ())),  # type: ignore[arg-type]
                    bool(raw.get("optional-dependencies", False)))
        hints[hint.package] = hint
    return hints


@lru_cache(maxsize=1)
def load_calls() -> tuple[CallRule, ...]:
    rules = []
    for raw in _table().get("call", []):
        unknown = set(raw) - _CALL_KEYS
        missing = {"package", "callee", "require", "why"} - set(raw)
        callee = raw.get("callee", [])
        paths = raw.get("require", [])
        match = raw.get("match", {})
        unless = raw.get("unless", "")
        if (unknown or missing or not isinstance(callee, list) or not callee or not isinstance(paths, list)
                or not paths or not isinstance(match, dict) or not isinstance(unless, str)
                or not isinstance(raw.get("unreadable", []), list)
                or not all(isinstance(c, str) and _CALLEE.match(c) for c in callee + [unless])
                or not all(isinstance(p, str) and _REQUIRE_PATH.match(p) for p in paths)
                or not all(isinstance(k, str) and k.isdigit() and isinstance(v, str) for k, v in match.items())):
            raise ValueError(f"bad node [[call]] {raw!r}: keys {sorted(_CALL_KEYS)}, callee/require paths "
                             f"as the header of hints.toml describes")
        rules.append(CallRule(str(raw["package"]), tuple(callee), tuple(paths), str(raw["why"]),
                              tuple(sorted((int(k), v) for k, v in match.items())), unless,
                              unreadable=tuple(map(str, raw.get("unreadable", ())))))  # type: ignore[call-overload]
    names = [rule.name for rule in rules]
    if len(set(names)) != len(names):
        raise ValueError(f"node [[call]] entries with the same first callee: {sorted(names)}")
    return tuple(rules)


@dataclass(frozen=True)
class ExtensionRule:
    """A method whose first argument is a file name, and the package that then requires the
    module named by its extension (express: res.render('page.ejs') requires 'ejs')."""

    package: str
    methods: tuple[str, ...]
    why: str

    @property
    def name(self) -> str:
        return "by-extension:" + self.package


_EXTENSION_KEYS = {"package", "methods", "why"}


@lru_cache(maxsize=1)
def load_by_extension() -> tuple[ExtensionRule, ...]:
    rules = []
    for raw in _table().get("by-extension", []):
        methods = raw.get("methods")
        if set(raw) != _EXTENSION_KEYS or not isinstance(methods, list) or not methods \
                or not all(isinstance(m, str) and re.fullmatch(r"[A-Za-z_$][\w$]*", m) for m in methods):
            raise ValueError(f"bad node [[by-extension]] {raw!r}: keys {sorted(_EXTENSION_KEYS)}, methods a list of names")
        rules.append(ExtensionRule(str(raw["package"]), tuple(methods), str(raw["why"])))
    return tuple(rules)
