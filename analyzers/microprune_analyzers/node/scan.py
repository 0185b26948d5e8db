"""What one JavaScript or TypeScript file refers to: modules, assets, native addons.

Pure: bytes in, refs out. Parsing is tree-sitter's (error-tolerant: a file with a
syntax error is still scanned as far as its tree goes). The scan does not walk
every node in Python: one compiled query finds the few node kinds that can
refer to another file, and only those are evaluated.

Ref kinds (the resolver gives them meaning):
  require       require()/require.resolve()/createRequire() specifier (CommonJS resolution)
  import        import/export ... from, import(), module.register() (ESM resolution)
  require-glob  a relative specifier with a WILDCARD part: every matching module
  asset         an absolute path (may hold WILDCARDs) the code reads or passes around
  asset-dir     a directory read whole (fs.readdir(__dirname))
  bindings, node-gyp-build, pre-gyp, pkginfo: native addon and metadata locators
"""
from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterator
from functools import lru_cache
from itertools import islice
from typing import Any

import tree_sitter_javascript
import tree_sitter_typescript
from tree_sitter import Language, Node, Parser, Query, QueryCursor

from microprune.model import Diagnostic, Ref, Scan

from .evaluate import (BINDINGS, BOUND_REQUIRE, CALL_SITE, CREATE_REQUIRE, FS_DIR_FN, FS_FN, MODULE_REGISTER, NA,
                       NODE_GYP_BUILD, PKGINFO, PREGYP_FIND, REQUIRE, RESOLVE_FROM, UNDEFINED, WILDCARD, Cond, Env,
                       Evaluator, Fn, parameter_names, url_to_path)

MAX_SOURCE_BYTES = 16 * 1024 * 1024      # bigger "sources" are generated blobs; not parsed
TYPESCRIPT_SUFFIXES = (".ts", ".mts", ".cts")

_QUERY_SOURCE = """
(import_statement) @import
(export_statement source: (_)) @export
(call_expression) @call
(variable_declarator) @declare
(assignment_expression left: (identifier)) @assign
((identifier) @leaf (#any-of? @leaf "__dirname" "__filename"))
(meta_property) @meta
(function_declaration) @function
(function_expression parameters: (formal_parameters (identifier) @param (#eq? @param "require"))) @shadowing
"""
# A path is never built through more nested expressions than this (and hostile nesting stays linear).
MAX_CLIMB = 24
# How deep a [[call]] argument is followed (properties, variables, branches) before giving up.
MAX_SELECT_DEPTH = 32
MAX_SELECTED = 256          # ... and how many expressions one path of one call may name
# `const x = <one of these>` may bind a module we model (fs, path ...) or a path.
_BINDABLE_VALUES = frozenset({
    "call_expression", "identifier", "member_expression", "string", "template_string", "binary_expression",
    "ternary_expression", "parenthesized_expression", "new_expression", "await_expression",
    "subscript_expression", "sequence_expression", "as_expression", "non_null_expression", "meta_property",
})
# Every ref starts from one of these words (fs and path must be required or imported first).
_MAY_REFER = re.compile(rb"require|import|export|__dirname|__filename|cwd")
# `function load(x) { ...; const m = require(x); ...; return m; }`: a require wrapper (small functions only)
MAX_WRAPPER_BYTES = 4096
_RETURN_REQUIRE = re.compile(r"\breturn\s+require\(\s*([\w$]+)\s*\)")
_ASSIGN_REQUIRE = re.compile(r"([\w$]+)\s*=\s*require\(\s*([\w$]+)\s*\)")
_ASSERT_CLAUSE = re.compile(rb"""(['"]\s*)assert(\s*\{)""")
# Where climbing from a path leaf stops: statements and declarations are not values.
_EXPRESSION_PARENTS = frozenset({
    "binary_expression", "call_expression", "member_expression", "subscript_expression", "arguments",
    "template_substitution", "template_string", "parenthesized_expression", "ternary_expression",
    "new_expression", "array", "as_expression", "non_null_expression", "await_expression",
})
_FUNCTION_TYPES = frozenset({"function_declaration", "function_expression", "arrow_function", "method_definition",
                             "generator_function_declaration", "generator_function", "function"})


@lru_cache(maxsize=None)
def _language(dialect: str) -> Language:
    if dialect == "ts":
        return Language(tree_sitter_typescript.language_typescript())
    if dialect == "tsx":
        return Language(tree_sitter_typescript.language_tsx())
    return Language(tree_sitter_javascript.language())


@lru_cache(maxsize=None)
def _parser(dialect: str) -> Parser:
    return Parser(_language(dialect))


@lru_cache(maxsize=None)
def _query(dialect: str) -> Query:
    source = _QUERY_SOURCE
    if dialect != "js":       # TypeScript wraps each parameter: (required_parameter pattern: (identifier))
        source = re.sub(r"\(formal_parameters \(identifier\) (@\w+) (\(#eq\? \1 \"require\"\))\)",
                        r"(formal_parameters (required_parameter pattern: (identifier) \1 \2))", source)
    return Query(_language(dialect), source)


@lru_cache(maxsize=None)
def _parameters_query(dialect: str) -> Query:
    """Every parameter list, and the lone parameter of `x => ...`."""
    return Query(_language(dialect), "(formal_parameters) @params (arrow_function parameter: (identifier) @params)")


def dialect_of(path: str) -> str:
    if path.endswith(".tsx"):
        return "tsx"
    if path.endswith(TYPESCRIPT_SUFFIXES) and not path.endswith(".d.ts"):
        return "ts"
    return "js"


def scan_source(path: str, data: bytes, cwd: str, resolve: Callable[[str], str | None] | None = None,
                watched: frozenset[str] = frozenset(), calls: tuple[Any, ...] = (),
                by_extension: frozenset[str] = frozenset()) -> Scan:
    """Refs of one source file at absolute ``path``; ``cwd`` is process.cwd() at run time;
    ``resolve`` answers require.resolve(spec) from this file (read-only lookups); calls of the
    ``watched`` method names report their first argument (``call-arg`` refs, the method in ``names``);
    ``calls``: the [[call]] rules of hints.toml (CallRule), whose arguments name modules;
    ``by_extension``: method names whose first argument's extension names a module ([[by-extension]])."""
    if len(data) > MAX_SOURCE_BYTES:
        return Scan(diagnostics=(Diagnostic("not-scanned", f"larger than {MAX_SOURCE_BYTES >> 20} MB; not scanned"),))
    if b"\0" in data[:8192]:
        return Scan(diagnostics=(Diagnostic("binary-source", "binary content in a source file; not scanned"),))
    if not _MAY_REFER.search(data):
        return Scan()             # nothing in it can name another file: no need to parse
    if data.startswith(b"#!"):
        newline = data.find(b"\n")
        data = b"//" + data[2:] if newline != -1 else b""
    if b"assert" in data:
        # `import x from './x.json' assert { type: 'json' }` (the old spelling of `with`): same length,
        # so positions and lines stay right
        data = _ASSERT_CLAUSE.sub(lambda m: m.group(1) + b"with  " + m.group(2), data)
    dialect = dialect_of(path)
    tree = _parser(dialect).parse(data)
    scanner = _Scanner(path, data, cwd, resolve, watched, calls, by_extension)
    scanner.eval.parameter_names = parameter_names(
        QueryCursor(_parameters_query(dialect)).captures(tree.root_node).get("params", []))
    scanner.run(tree.root_node, _query(dialect))
    diagnostics = list(dict.fromkeys(scanner.diagnostics))
    if tree.root_node.has_error:
        line = _first_error_line(tree.root_node)
        diagnostics.append(Diagnostic("syntax-error", "syntax error; scanned as far as the parse tree allows",
                                      None, line))
    return Scan(refs=tuple(dict.fromkeys(scanner.refs)), diagnostics=tuple(diagnostics))


def _first_error_line(root: Node) -> int | None:
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            return node.start_point[0] + 1
        if node.has_error:
            stack.extend(reversed(node.children))
    return None


# an extension that can be a package name (no wildcard, no path): 'ejs', 'hbs', 'pug'
_EXTENSION_MODULE = re.compile(r"[a-z][a-z0-9_-]{0,63}")

class _Scanner:
    def __init__(self, path: str, data: bytes, cwd: str, resolve: Callable[[str], str | None] | None,
                 watched: frozenset[str] = frozenset(), calls: tuple[Any, ...] = (),
                 by_extension: frozenset[str] = frozenset()) -> None:
        self.path = path
        self.watched = watched
        self.by_extension = by_extension
        self.dir = posixpath.dirname(path)
        self.env = Env(path, cwd, resolve, calls)
        self.eval = Evaluator(self.env, data)
        self.refs: list[Ref] = []
        self.diagnostics: list[Diagnostic] = []
        self.climbed: set[tuple[int, int]] = set()
        self.last_climbed = (-1, -1)
        # the [[call]] callees called so far ("<package>:<path>") -> their first arguments (None: unreadable)
        self.called: dict[str, set[str | None]] = {}
        self.declared: dict[str, Node] = {}   # `const x = <init>`: the last init of each name, so far
        self.require_shadowed: list[tuple[int, int]] = []     # byte ranges of functions with a `require` param

    # -- the pass -----------------------------------------------------------------------------------
    def run(self, root: Node, query: Query) -> None:
        matches = QueryCursor(query).matches(root)
        for _pattern, captures in matches:
            for name, nodes in captures.items():
                handler = getattr(self, "_on_" + name, None)     # helper captures (@param) have none
                if handler is not None:
                    for node in nodes:
                        handler(node)

    def _on_import(self, node: Node) -> None:
        source = node.child_by_field_name("source")
        if source is None or _is_type_only(node):
            return
        spec = self.eval.value(source, False)
        if not isinstance(spec, str):
            return
        self.add("import", spec, node)
        self._bind_import(node, spec)

    def _on_export(self, node: Node) -> None:
        if _is_type_only(node):
            return
        source = node.child_by_field_name("source")
        spec = self.eval.value(source, False) if source is not None else NA
        if isinstance(spec, str):
            self.add("import", spec, node)

    def _bind_import(self, node: Node, spec: str) -> None:
        module = self.env.static_module(spec)
        if module is NA:
            return
        clause = next((c for c in node.named_children if c.type == "import_clause"), None)
        if clause is None:
            return
        for child in clause.named_children:
            if child.type == "identifier":                        # import x from 'm'
                default = module.get("default", module) if isinstance(module, dict) else module
                self.env.bindings[self.eval.text(child)] = default
            elif child.type == "namespace_import":                # import * as x from 'm'
                names = [c for c in child.named_children if c.type == "identifier"]
                if names:
                    self.env.bindings[self.eval.text(names[0])] = module
            elif child.type == "named_imports":                   # import { a as b } from 'm'
                for spec_node in child.named_children:
                    if spec_node.type != "import_specifier":
                        continue
                    imported = spec_node.child_by_field_name("name")
                    local = spec_node.child_by_field_name("alias") or imported
                    if imported is not None and local is not None and isinstance(module, dict):
                        value = module.get(self.eval.text(imported), NA)
                        if value is not NA:
                            self.env.bindings[self.eval.text(local)] = value

    def _on_shadowing(self, node: Node) -> None:
        """`function (require, module, exports) { ... }`: a bundle's module wrapper."""
        self.require_shadowed.append((node.start_byte, node.end_byte))


    def _on_function(self, node: Node) -> None:
        """Bundler wrappers pass their own `require`: calls inside read module ids, not paths,
        unless the function is a require wrapper (`function r(x) { return require(x) }`)."""
        params = node.child_by_field_name("parameters")
        if params is None:
            return
        for param in params.named_children:
            if param.type == "required_parameter":
                param = param.child_by_field_name("pattern") or param
            if param.type == "identifier" and self.eval.text(param) == "require":
                self.require_shadowed.append((node.start_byte, node.end_byte))
        self._bind_require_wrapper(node, params)

    def _bind_require_wrapper(self, node: Node, params: Node) -> None:
        name_node = node.child_by_field_name("name")
        body = node.child_by_field_name("body")
        first = params if params.type == "identifier" else next((p for p in params.named_children), None)
        if first is not None and first.type == "required_parameter":
            first = first.child_by_field_name("pattern")
        if name_node is None or body is None or first is None or first.type != "identifier":
            return
        if body.end_byte - body.start_byte > MAX_WRAPPER_BYTES:
            return
        text = self.eval.text(body)
        if "require" not in text:
            return
        param = self.eval.text(first)
        returned = {m.group(1) for m in _RETURN_REQUIRE.finditer(text)}
        assigned = {m.group(1) for m in _ASSIGN_REQUIRE.finditer(text) if m.group(2) == param}
        if param in returned or any(re.search(r"\breturn\s+" + re.escape(v) + r"\b", text) for v in assigned):
            self.env.bindings[self.eval.text(name_node)] = BOUND_REQUIRE

    def _on_declare(self, node: Node) -> None:
        name = node.child_by_field_name("name")
        init = node.child_by_field_name("value")
        if name is None or init is None or _in_loop_head(node):
            return
        if name.type == "identifier":
            self.declared[self.eval.text(name)] = init
        if name.type == "identifier" and self.eval.text(name) == "require" and not _is_create_require(init, self):
            self.env.bindings["require"] = NA        # the file's own `require`: not Node's
            return
        if init.type in ("function_expression", "arrow_function") and name.type == "identifier":
            params = init.child_by_field_name("parameters") or init.child_by_field_name("parameter")
            if params is not None:
                fake = _Named(init, name)
                self._bind_require_wrapper(fake, params)  # type: ignore[arg-type]
            return
        if init.type not in _BINDABLE_VALUES:
            return                  # objects, arrays, classes, numbers: never a path or a module we model
        value = self.eval.value(init, True)
        if value is NA:
            return
        self._bind(name, value)
        if isinstance(value, Cond) and _is_path(value.then) and _is_path(value.other):
            self.emit_value(value, init)

    def _on_assign(self, node: Node) -> None:
        left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
        if left is None or right is None or _in_loop(node):
            return
        name = self.eval.text(left)
        if name in self.env.bindings and name not in ("require",):
            return
        value = self.eval.value(right, False)
        if value is NA or isinstance(value, Cond):
            return
        self._bind(left, value)
        if _is_path(value):
            self.emit_value(value, right)

    def _bind(self, target: Node, value: Any) -> None:
        if target.type == "identifier":
            name = self.eval.text(target)
            if name == "require" and value is not BOUND_REQUIRE:
                return
            self.env.bindings[name] = value
        elif target.type == "object_pattern" and isinstance(value, dict):
            for prop in target.named_children:
                if prop.type == "shorthand_property_identifier_pattern":
                    key = self.eval.text(prop)
                    local = prop
                elif prop.type == "pair_pattern":
                    key_node, local_node = prop.child_by_field_name("key"), prop.child_by_field_name("value")
                    if key_node is None or local_node is None or local_node.type != "identifier":
                        continue
                    key, local = self.eval.text(key_node), local_node
                else:
                    continue
                if key in value and value[key] is not NA:
                    self.env.bindings[self.eval.text(local)] = value[key]

    def _on_leaf(self, node: Node) -> None:
        parent = node.parent
        if parent is None or _is_declaration_name(node, parent):
            return
        self.climb(node, self.eval.value(node))

    def _on_meta(self, node: Node) -> None:
        # (a pattern on the member_expression itself is quadratic in tree-sitter on long a.b.c chains)
        parent = node.parent
        if parent is None or parent.type != "member_expression" or parent.child_by_field_name("object") != node:
            return
        node = parent
        prop = node.child_by_field_name("property")
        if prop is not None and self.eval.text(prop) in ("url", "dirname", "filename"):
            self.climb(node, self.eval.value(node))

    def _on_call(self, node: Node) -> None:
        callee = node.child_by_field_name("function")
        args_node = node.child_by_field_name("arguments")
        if callee is None or args_node is None or args_node.type != "arguments":
            return
        args = self.eval.arguments(args_node)
        if callee.type == "import":
            if args:
                self.require_arg(args[0], node, "import")
            return
        if (self.watched or self.by_extension) and callee.type == "member_expression" and args:
            prop = callee.child_by_field_name("property")
            method = self.eval.text(prop) if prop is not None else ""
            if method in self.watched:
                self._watched_call(method, args[0], node)
            if method in self.by_extension:
                self._named_by_extension(args[0], node)
        root = _root_identifier(callee)
        if root is None or root not in self.env.bindings:
            if _is_join_like(callee, self.eval):
                self.climb(node, self.eval.value(node))
            return
        value = self.eval.value(callee, False)
        if isinstance(value, dict) and "__call__" in value:
            value = value["__call__"]
        if not isinstance(value, Fn):
            return
        self.call(value, node, callee, args)

    def _named_by_extension(self, arg: Node, at: Node) -> None:
        """res.render('page.ejs'): the module named by the extension, if installed."""
        for name in _strings(self.eval.value(arg, True)):
            extension = posixpath.splitext(posixpath.basename(name))[1][1:]
            if _EXTENSION_MODULE.fullmatch(extension):
                self.add("require-installed", extension, at)

    def _readable_names(self, arg: Node) -> bool:
        """The argument gives module names we can read (every branch of it)."""
        names = list(_strings(self.eval.value(arg, True)))
        return bool(names) and not any(name.startswith(WILDCARD) for name in names)

    def _named_by_argument(self, method: str, arg: Node, at: Node) -> None:
        """`moment(text, format, 'fr')`: the name as if given to .locale(); a flag there
        (`moment(text, format, true)`, strict parsing) names nothing."""
        value = self.eval.value(arg, False)
        if isinstance(value, (bool, int, float)) or value is None or value is UNDEFINED:
            return
        self._watched_call(method, arg, at)

    def _watched_call(self, method: str, arg: Node, at: Node) -> None:
        value = self.eval.value(arg, True)
        names = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        if isinstance(value, Cond):
            names = list(_strings(value))
        readable = [n for n in names if isinstance(n, str) and WILDCARD not in n]
        if not readable or len(readable) != len(names):
            readable = [WILDCARD]          # a name we cannot read: the narrowing must give up
        for name in readable:
            if len(name) <= 256 and "\0" not in name:
                self.refs.append(Ref(line=at.start_point[0] + 1, kind="call-arg", target=name, names=(method,),
                                     speculative=True))

    # -- calls we understand --------------------------------------------------------------------------
    def call(self, fn: Fn, node: Node, callee: Node, args: list[Node]) -> None:
        if fn is REQUIRE or fn is BOUND_REQUIRE or fn.tag == "require-resolve":
            if args:
                # Inside `function (require, ...)` the name may be a bundle's own loader or the real
                # require handed in (UMD): followed, but as optional
                self.require_arg(args[0], node, "require", optional=fn is REQUIRE and self._require_shadowed(node))
            return
        if fn is CREATE_REQUIRE:
            self._bind_created_require(node)
            return
        if fn is MODULE_REGISTER:
            self._module_register(node, args)
            return
        if fn in (FS_FN, FS_DIR_FN):
            self._fs_call(fn, node, args)
            return
        if fn.tag == CALL_SITE:
            self._call_site(fn, node, args)
            return
        handler = _TAG_HANDLERS.get(fn.tag)
        if handler is not None:
            handler(self, node, args)
            return
        if fn.trigger:
            self.climb(node, self.eval.value(node))

    def _require_shadowed(self, node: Node) -> bool:
        start = node.start_byte
        return any(a <= start < b for a, b in self.require_shadowed)

    def _bind_created_require(self, node: Node) -> None:
        parent = node.parent
        if parent is not None and parent.type == "variable_declarator":
            name = parent.child_by_field_name("name")
            if name is not None and name.type == "identifier":
                self.env.bindings[self.eval.text(name)] = BOUND_REQUIRE

    def _module_register(self, node: Node, args: list[Node]) -> None:
        if not args:
            return
        spec = self.eval.value(args[0], False)
        if not isinstance(spec, str):
            return
        if spec.startswith(".") and len(args) > 1:
            base = self.eval.value(args[1], False)
            base_url = base if isinstance(base, str) else (base.get("parentURL") if isinstance(base, dict) else None)
            base_path = url_to_path(base_url) if isinstance(base_url, str) else None
            if base_path is None:
                return
            target = posixpath.normpath(posixpath.join(posixpath.dirname(base_path), spec))
            rel = posixpath.relpath(target, self.dir)
            spec = rel if rel.startswith("../") else "./" + rel
        self.add("import", spec, node)

    def _fs_call(self, fn: Fn, node: Node, args: list[Node]) -> None:
        if not args:
            return
        value = self.eval.value(args[0], True)
        if value is NA:
            return
        if fn is FS_DIR_FN and args[0].type == "identifier" and self.eval.text(args[0]) == "__dirname":
            self.add("asset-dir", self.dir, node)
            return
        self.emit_value(value, args[0])

    def _call_site(self, fn: Fn, node: Node, args: list[Node]) -> None:
        """A function of a [[call]] rule: each string at one of its `require` paths is a require()."""
        first = self.eval.value(args[0], False) if args else None
        self.called.setdefault(fn.site, set()).add(first.lstrip(".") if isinstance(first, str) else None)
        for rule in fn.rules:
            if not all(i < len(args) and self.eval.value(args[i], False) == text for i, text in rule.match):
                continue
            for path in rule.require:
                index, *segments = path.split(".")
                if int(index) < len(args):
                    for leaf in islice(self._select(args[int(index)], segments, 0, frozenset()), MAX_SELECTED):
                        if self._served_by_unless(rule, leaf):
                            continue
                        if rule.narrows:
                            self._named_by_argument(rule.narrows, leaf, node)
                        elif rule.unreadable and not self._readable_names(leaf):
                            for spec in rule.unreadable:    # any of these, if installed
                                self.add("require-installed", spec, node)
                        else:
                            self.require_arg(leaf, node, "require")

    def _served_by_unless(self, rule: Any, leaf: Node) -> bool:
        """The file has already called the rule's `unless` callee with this very name first
        (app.engine('pug', fn) before app.set('view engine', 'pug')): the app serves it itself.
        An engine registered for another extension (app.engine('html', ...)) changes nothing."""
        if not rule.unless:
            return False
        registered = self.called.get(f"{rule.package}:{rule.unless}", set())
        name = self.eval.value(leaf, False)
        return isinstance(name, str) and name.lstrip(".") in registered

    def _select(self, node: Node, segments: list[str], depth: int, seen: frozenset[str]) -> Iterator[Node]:
        """The expressions at a property path of ``node`` (["transport", "targets[]", "target"])."""
        if not segments:
            yield node                        # require_arg reads it (both branches of ?:, ||)
            return
        if depth > MAX_SELECT_DEPTH:
            return
        first, rest = segments[0], segments[1:]
        name, each = (first[:-2], True) if first.endswith("[]") else (first, False)
        for obj in self._values(node, depth + 1, seen):
            for value in self._props(obj, name, depth + 1, seen):
                if not each:
                    yield from self._select(value, rest, depth + 1, seen)
                    continue
                for array in self._values(value, depth + 1, seen):
                    for item in self._items(array, depth + 1, seen):
                        yield from self._select(item, rest, depth + 1, seen)

    def _values(self, node: Node, depth: int, seen: frozenset[str]) -> Iterator[Node]:
        """The expressions ``node`` may stand for, as far as the file tells: through parentheses,
        both branches of `?:`, both sides of `||`/`??`/`&&`, a variable's declaration, `a.b` and
        `a[k]` into object literals (every property when k is unknown)."""
        if depth > MAX_SELECT_DEPTH:
            return
        kind = node.type
        if kind in ("parenthesized_expression", "as_expression", "satisfies_expression", "non_null_expression",
                    "await_expression"):
            inner = [c for c in node.named_children if c.type != "comment"]
            if inner:
                yield from self._values(inner[-1] if kind == "parenthesized_expression" else inner[0], depth + 1,
                                        seen)
        elif kind == "ternary_expression":
            for field in ("consequence", "alternative"):
                branch = node.child_by_field_name(field)
                if branch is not None:
                    yield from self._values(branch, depth + 1, seen)
        elif kind == "binary_expression" and self._logical(node):
            for field in ("left", "right"):
                side = node.child_by_field_name(field)
                if side is not None:
                    yield from self._values(side, depth + 1, seen)
        elif kind in ("identifier", "shorthand_property_identifier"):
            name = self.eval.text(node)
            init = self.declared.get(name)
            if init is not None and name not in seen:
                yield from self._values(init, depth + 1, seen | {name})
        elif kind in ("member_expression", "subscript_expression"):
            yield from self._members(node, depth + 1, seen)
        else:
            yield node

    def _members(self, node: Node, depth: int, seen: frozenset[str]) -> Iterator[Node]:
        """`a.b`, `a[k]` (every property or item when k is unknown) of object and array literals."""
        table = node.child_by_field_name("object")
        if node.type == "member_expression":
            prop = node.child_by_field_name("property")
            key: Any = self.eval.text(prop) if prop is not None else NA
        else:
            index = node.child_by_field_name("index")
            key = self.eval.value(index, False) if index is not None else NA
        if table is None:
            return
        for obj in self._values(table, depth + 1, seen):
            if obj.type == "object":
                values = self._props(obj, key if isinstance(key, str) else None, depth + 1, seen)
            elif obj.type == "array" and not isinstance(key, str):
                values = self._items(obj, depth + 1, seen)
            else:
                continue
            for value in values:
                yield from self._values(value, depth + 1, seen)

    def _logical(self, node: Node) -> bool:
        op = node.child_by_field_name("operator")
        return op is not None and self.eval.text(op) in ("||", "&&", "??")

    def _props(self, obj: Node, key: str | None, depth: int, seen: frozenset[str]) -> Iterator[Node]:
        """The values of property ``key`` (of every property when None) of an object literal."""
        if obj.type != "object" or depth > MAX_SELECT_DEPTH:
            return
        for pair in obj.named_children:
            if pair.type == "pair":
                key_node, value = pair.child_by_field_name("key"), pair.child_by_field_name("value")
                if key_node is None or value is None:
                    continue
                name = self.eval.text(key_node) if key_node.type == "property_identifier" \
                    else self.eval.value(key_node, False)
                if key is None or name == key:
                    yield value
            elif pair.type == "shorthand_property_identifier" and key in (None, self.eval.text(pair)):
                yield pair
            elif pair.type == "spread_element" and pair.named_children:
                for inner in self._values(pair.named_children[0], depth + 1, seen):
                    yield from self._props(inner, key, depth + 1, seen)

    def _items(self, array: Node, depth: int, seen: frozenset[str]) -> Iterator[Node]:
        """Every item of an array literal, the items of its spreads too."""
        if array.type != "array" or depth > MAX_SELECT_DEPTH:
            return
        for item in array.named_children:
            if item.type == "spread_element" and item.named_children:
                for inner in self._values(item.named_children[0], depth + 1, seen):
                    yield from self._items(inner, depth + 1, seen)
            elif item.type != "comment":
                yield item

    # -- helpers --------------------------------------------------------------------------------------
    def require_arg(self, arg: Node, at: Node, kind: str, optional: bool = False) -> None:
        """require(x)/import(x): both branches of a conditional, both sides of || and &&."""
        if arg.type == "ternary_expression":
            for field in ("consequence", "alternative"):
                branch = arg.child_by_field_name(field)
                if branch is not None:
                    self.require_arg(branch, at, kind, optional)
            return
        if arg.type == "binary_expression":
            op = arg.child_by_field_name("operator")
            if op is not None and self.eval.text(op) in ("||", "&&", "??"):
                for field in ("left", "right"):
                    side = arg.child_by_field_name(field)
                    if side is not None:
                        self.require_arg(side, at, kind, optional)
                return
        value = self.eval.value(arg, True)
        specs = list(_strings(value))
        for spec in specs:
            if WILDCARD not in spec:
                self.add(kind, spec, at, optional)
            elif spec.startswith(WILDCARD):
                self._computed_name(at, kind)
            else:
                # ./locale/<name>, dayjs/locale/<name>, jstransformer-<name>: every module it can name
                self.add(kind + "-glob" if kind == "require" else "import-glob", spec, at)
        if not specs:
            self._computed_name(at, kind)

    def _computed_name(self, at: Node, kind: str) -> None:
        """A module name made at run time with no fixed start: nothing to follow. Said (the session
        keeps it for the app's own files), since a miss here only shows when that line runs. Inside
        `try` the code expects the load to fail (optional modules): not said."""
        if _inside_try(at):
            return
        self.diagnostics.append(Diagnostic(
            "dynamic-require", f"{kind}() of a name computed at run time: what it loads is not traced "
            "(add it with --keep, or let `prune --smoke CMD --repair` find it)", None, at.start_point[0] + 1))

    def climb(self, node: Node, value: Any) -> None:
        """From a static leaf, go out to the largest expression that is still static, then
        keep what it names if it is a path (nft's "backtracking")."""
        if value is NA or self._inside_climbed(node):
            return
        current = node
        for _level in range(MAX_CLIMB):
            parent = current.parent
            if parent is None or parent.type not in _EXPRESSION_PARENTS:
                break
            if parent.type == "arguments":
                parent = parent.parent
                if parent is None:
                    break
            if parent.type in ("template_substitution",):
                current = parent
                continue
            parent_value = self.eval.value(parent, True)
            if parent_value is NA or isinstance(parent_value, (Fn, dict)) or parent_value is UNDEFINED:
                break
            current, value = parent, parent_value
        key = (current.start_byte, current.end_byte)
        if key in self.climbed:
            return
        self.climbed.add(key)
        self.last_climbed = key
        self.emit_value(value, current)

    def _inside_climbed(self, node: Node) -> bool:
        """A leaf or call inside an expression already climbed (nested path.join(path.join(...))):
        its answer is part of the outer one. Document order makes the last one enough."""
        start, end = self.last_climbed
        return start <= node.start_byte and node.end_byte <= end

    def emit_value(self, value: Any, at: Node) -> None:
        """Keep what an absolute path or file: URL names. (Relative paths are relative to the
        cwd, which is the app: always kept whole.)"""
        for item in _strings(value, arrays=True):
            path = _as_path(item)
            if path is not None:
                self.add("asset", path, at)

    def add(self, kind: str, target: str, at: Node, optional: bool = False) -> None:
        if len(target) > 4096 or "\0" in target:
            return
        optional = optional or _inside_try(at)          # the code expects the load to fail
        self.refs.append(Ref(line=at.start_point[0] + 1, kind=kind, target=target, optional=optional,
                             lazy=_inside_function(at)))


# -- calls with their own meaning ------------------------------------------------------------------
def _bindings_call(scanner: _Scanner, node: Node, args: list[Node]) -> None:
    if not args:
        return
    value = scanner.eval.value(args[0], False)
    name = value.get("bindings") if isinstance(value, dict) else value
    if isinstance(name, str):
        scanner.add("bindings", name, node)


def _absolute_path_call(kind: str) -> Callable[[_Scanner, Node, list[Node]], None]:
    """A locator called with an absolute path: node-gyp-build(__dirname), pre-gyp's find(package.json)."""
    def handle(scanner: _Scanner, node: Node, args: list[Node]) -> None:
        value = scanner.eval.value(args[0], False) if args else NA
        if isinstance(value, str) and value.startswith("/"):
            scanner.add(kind, value, node)
    return handle


def _pkginfo_call(scanner: _Scanner, node: Node, _args: list[Node]) -> None:
    scanner.add("pkginfo", scanner.dir, node)


def _resolve_from_call(scanner: _Scanner, node: Node, args: list[Node]) -> None:
    if len(args) >= 2:
        base = scanner.eval.value(args[0], False)
        spec = scanner.eval.value(args[1], False)
        if isinstance(base, str) and isinstance(spec, str) and base.startswith("/"):
            scanner.add("resolve-from", base + "\n" + spec, node)


_TAG_HANDLERS = {
    BINDINGS.tag: _bindings_call, NODE_GYP_BUILD.tag: _absolute_path_call("node-gyp-build"),
    PREGYP_FIND.tag: _absolute_path_call("pre-gyp"),
    PKGINFO.tag: _pkginfo_call, RESOLVE_FROM.tag: _resolve_from_call,
}


# -- small tree helpers ----------------------------------------------------------------------------
class _Named:
    """A function expression seen with the name of the variable it is assigned to."""

    def __init__(self, node: Node, name: Node) -> None:
        self.node, self.name = node, name

    def child_by_field_name(self, field: str) -> Node | None:
        return self.name if field == "name" else self.node.child_by_field_name(field)


def _is_type_only(statement: Node) -> bool:
    """`import type { X } from 'm'` / `export type { X } from 'm'` (TypeScript): erased, never loaded."""
    keywords = [c.type for c in statement.children[:3] if not c.is_named]
    return "type" in keywords[1:2] or keywords[:2] == ["export", "type"]


def _is_create_require(init: Node, scanner: _Scanner) -> bool:
    return init.type == "call_expression" and scanner.eval.value(init.child_by_field_name("function") or init,
                                                                 False) is CREATE_REQUIRE


def _is_join_like(callee: Node, evaluator: Evaluator) -> bool:
    prop = callee.child_by_field_name("property") if callee.type == "member_expression" else None
    return prop is not None and evaluator.text(prop) in ("join", "resolve")


def _root_identifier(node: Node) -> str | None:
    while node.type in ("member_expression", "subscript_expression", "parenthesized_expression",
                        "call_expression"):
        inner = node.child_by_field_name("object") or node.child_by_field_name("function")
        if inner is None:
            inner = node.named_children[0] if node.named_children else None
        if inner is None:
            return None
        node = inner
    if node.type == "sequence_expression" and node.named_children:
        return _root_identifier(node.named_children[-1])
    if node.type == "identifier":
        return node.text.decode("utf-8", "replace") if node.text is not None else None
    return None


def _is_declaration_name(node: Node, parent: Node) -> bool:
    if parent.type in ("variable_declarator", "assignment_expression"):
        return parent.child_by_field_name("name") == node or parent.child_by_field_name("left") == node
    return parent.type in ("formal_parameters", "shorthand_property_identifier_pattern", "pair_pattern")


def _inside_function(node: Node) -> bool:
    current = node.parent
    while current is not None:
        if current.type in _FUNCTION_TYPES:
            return True
        current = current.parent
    return False


def _inside_try(node: Node) -> bool:
    current: Node | None = node
    while current is not None:
        parent = current.parent
        if parent is None:
            return False
        if parent.type == "try_statement" and parent.child_by_field_name("body") == current:
            return True
        if parent.type == "catch_clause":          # the fallback when the first load failed
            return True
        if parent.type in _FUNCTION_TYPES:
            return False
        current = parent
    return False


def _in_loop_head(node: Node) -> bool:
    parent = node.parent
    grand = parent.parent if parent is not None else None
    return grand is not None and grand.type in ("for_in_statement", "for_statement")


def _in_loop(node: Node) -> bool:
    current = node.parent
    while current is not None:
        if current.type in ("for_statement", "for_in_statement", "while_statement", "do_statement"):
            return True
        if current.type in _FUNCTION_TYPES:
            return False
        current = current.parent
    return False


def _strings(value: Any, arrays: bool = False) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Cond):
        yield from _strings(value.then)
        yield from _strings(value.other)
    elif arrays and isinstance(value, list):
        for item in value:
            if isinstance(item, str):
                yield item


def _is_path(value: Any) -> bool:
    return isinstance(value, str) and _as_path(value) is not None


def _as_path(value: str) -> str | None:
    """An absolute path or file: URL, as a path (WILDCARDs kept)."""
    if value.startswith("file:"):
        return url_to_path(value)
    if value.startswith("/") and len(value) > 1 and not value.startswith("//"):
        return posixpath.normpath(value)
    return None
