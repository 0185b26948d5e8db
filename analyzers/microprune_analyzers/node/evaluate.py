"""A small partial evaluator for the path expressions JavaScript code builds.

It answers one question about an expression node: which string (or strings)
can it be, as far as the file alone tells? ``__dirname``, ``__filename``,
``import.meta.url``, ``path.join``/``resolve``, template literals,
concatenation and both branches of a conditional are understood; a part that
cannot be known becomes the WILDCARD character, so that
``require('./locale/' + name)`` is ``./locale/\\x1a`` (a glob inside the
package), never "everything".

Values are plain Python: str, int/float, bool, None for JS null, UNDEFINED,
list, dict, ``Fn`` for functions we model, ``Cond`` for "one of two". An
expression we cannot evaluate gives ``NA``.
"""
from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import quote, unquote, urljoin, urlparse

from tree_sitter import Node

WILDCARD = "\x1a"


class _Sentinel:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NA = _Sentinel("NA")                 # not statically known
UNDEFINED = _Sentinel("undefined")   # JS undefined


@dataclass(frozen=True)
class Cond:
    """``test ? then : other`` with an unknown test: the value is one of the two."""

    then: Any
    other: Any


@dataclass(frozen=True)
class Fn:
    """A function the evaluator models. ``tag`` names what calling it means to the
    scanner (a require, an fs read, a native-addon locator ...); ``call`` computes
    its static result, when it has one; ``trigger``: a static result of a call is a
    path worth checking (path.join, path.resolve ...)."""

    tag: str
    call: Callable[..., Any] | None = None
    trigger: bool = False
    site: str = ""                     # a [[call]] callee: "<package>:<path>"
    rules: tuple[Any, ...] = ()        # the [[call]] rules (CallRule) of calling it


def _none(*_args: Any) -> Any:
    return NA


class Env:
    """What names mean in one file: the module's own bindings over the globals."""

    def __init__(self, filename: str, cwd: str, resolve: Callable[[str], str | None] | None = None,
                 calls: tuple[Any, ...] = ()) -> None:
        self.filename = filename
        self.call_modules = call_modules(calls)
        # require.resolve(x) as a value (`path.join(require.resolve('pkg'), '../x.wasm')`): the
        # resolver's answer, when the caller gives one
        self.require_resolve = Fn("require-resolve", (lambda spec: (resolve(spec) if isinstance(spec, str)
                                                                    else None) or NA) if resolve else None,
                                  trigger=True)
        self.dirname = posixpath.dirname(filename)
        self.cwd = cwd
        self.url = path_to_url(filename)
        self.bindings: dict[str, Any] = {
            "__dirname": self.dirname,
            "__filename": filename,
            "require": REQUIRE,
            # the CommonJS `module` (its filename and path: bullmq's `module.filename || __filename`)
            "module": {"require": REQUIRE, "createRequire": CREATE_REQUIRE, "register": MODULE_REGISTER,
                       "filename": filename, "path": self.dirname, UNKNOWN_KEYS: True},
            "process": self.process_object(),
            "URL": Fn("URL", url_constructor),
            "undefined": UNDEFINED,
            "Object": {"assign": Fn("assign", _object_assign), UNKNOWN_KEYS: True},
            # mongoose: `global.MONGOOSE_DRIVER_PATH || './drivers/node-mongodb-native'`
            "global": {"MONGOOSE_DRIVER_PATH": UNDEFINED, UNKNOWN_KEYS: True},
            # require() calls that babel and tsc wrap around `import` statements
            "_interopRequireDefault": Fn("interop", lambda m: {"default": m}),
            "__importDefault": Fn("interop", lambda m: {"default": m}),
            "_interopRequireWildcard": Fn("interop", lambda m: m),
            "__importStar": Fn("interop", lambda m: m),
        }
        self.import_meta = {"url": self.url, "dirname": self.dirname, "filename": filename}

    def process_object(self) -> dict[Any, Any]:
        return {"cwd": Fn("cwd", lambda: self.cwd), "env": {UNKNOWN_KEYS: True}, "platform": "linux",
                UNKNOWN_KEYS: True}

    def static_module(self, name: str) -> Any:
        """The value of require(name) for the modules whose meaning we model."""
        name = name[5:] if name.startswith("node:") else name
        builder = self.call_modules.get(name) or STATIC_MODULES.get(name)
        return builder(self) if builder is not None else NA


UNKNOWN_KEYS = "\x00unknown-keys"    # in a dict: keys we do not list are unknown, not undefined


# -- the modules and functions we model ------------------------------------------------------------
REQUIRE = Fn("require")
BOUND_REQUIRE = Fn("require")          # createRequire(...) results and require wrappers
CREATE_REQUIRE = Fn("create-require")
MODULE_REGISTER = Fn("module-register")
FS_FN = Fn("fs")
FS_DIR_FN = Fn("fs-dir")
BINDINGS = Fn("bindings")
NODE_GYP_BUILD = Fn("node-gyp-build")
PREGYP_FIND = Fn("pre-gyp-find")
CALL_SITE = "call-site"               # the tag of the functions [[call]] rules describe
PKGINFO = Fn("pkginfo")
RESOLVE_FROM = Fn("resolve-from")

FS_FUNCTIONS = ("access", "accessSync", "createReadStream", "exists", "existsSync", "lstat", "lstatSync",
                "open", "openSync", "readFile", "readFileSync", "stat", "statSync", "realpath", "realpathSync")
FS_DIR_FUNCTIONS = ("readdir", "readdirSync", "opendir", "opendirSync")
FS_EXTRA_FUNCTIONS = ("pathExists", "pathExistsSync", "readJson", "readJSON", "readJsonSync", "readJSONSync",
                      "copy", "copySync")


def _fs_module(extra: tuple[str, ...] = ()) -> Callable[[Env], Any]:
    def build(_env: Env) -> Any:
        table: dict[Any, Any] = {name: FS_FN for name in FS_FUNCTIONS + extra}
        table.update({name: FS_DIR_FN for name in FS_DIR_FUNCTIONS})
        table["promises"] = dict(table)
        table[UNKNOWN_KEYS] = True
        table["default"] = dict(table)
        return table
    return build


def _path_module(env: Env) -> Any:
    def resolve(*parts: Any) -> Any:
        if not all(isinstance(p, str) for p in parts):
            return NA
        return posixpath.normpath(posixpath.join(env.cwd, *parts))

    def join(*parts: Any) -> Any:
        if not all(isinstance(p, str) for p in parts):
            return NA
        return posixpath.normpath(posixpath.join(*parts)) if parts else "."

    def strings(fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            return fn(*args) if args and all(isinstance(a, str) for a in args) else NA
        return call

    table: dict[Any, Any] = {
        "join": Fn("path", join, trigger=True),
        "resolve": Fn("path", resolve, trigger=True),
        "dirname": Fn("path", strings(lambda p: posixpath.dirname(p.rstrip("/")) or "."), trigger=True),
        "basename": Fn("path", strings(_basename), trigger=False),
        "extname": Fn("path", strings(lambda p: posixpath.splitext(p)[1]), trigger=False),
        "normalize": Fn("path", strings(posixpath.normpath), trigger=True),
        "relative": Fn("path", strings(lambda a, b: posixpath.relpath(b, a)), trigger=False),
        "sep": "/", "delimiter": ":",
        UNKNOWN_KEYS: True,
    }
    table["posix"] = table
    table["default"] = table
    return table


def _basename(path: str, ext: str = "") -> str:
    base = posixpath.basename(path.rstrip("/"))
    return base[: -len(ext)] if ext and base.endswith(ext) and base != ext else base


def _url_module(_env: Env) -> Any:
    table = {"fileURLToPath": Fn("url", _url_to_path_value),
             "pathToFileURL": Fn("url", lambda p: path_to_url(p, _env.cwd)),
             "URL": Fn("URL", url_constructor), UNKNOWN_KEYS: True}
    table["default"] = dict(table)
    return table


def _module_module(_env: Env) -> Any:
    table = {"createRequire": CREATE_REQUIRE, "register": MODULE_REGISTER, UNKNOWN_KEYS: True}
    table["default"] = dict(table)
    return table


def _os_module(_env: Env) -> Any:
    table = {"platform": Fn("os", lambda: "linux"), "arch": Fn("os", lambda: "x64"), "EOL": "\n",
             UNKNOWN_KEYS: True}
    table["default"] = dict(table)
    return table


def _process_module(env: Env) -> Any:
    table = env.process_object()
    table["default"] = dict(table)
    return table


def _single(fn: Fn) -> Callable[[Env], Any]:
    return lambda _env: {"default": fn, UNKNOWN_KEYS: True, "__call__": fn}


def _pregyp(_env: Env) -> Any:
    table = {"find": PREGYP_FIND, UNKNOWN_KEYS: True}
    table["default"] = dict(table)
    return table


class _Callee:
    """A node of the tree of a package's [[call]] callee paths: its properties, what calling it
    returns, and the rules of calling it."""

    def __init__(self) -> None:
        self.props: dict[str, _Callee] = {}
        self.result: _Callee | None = None
        self.rules: list[Any] = []
        self.site = ""

    def child(self, segment: str) -> _Callee:
        if segment == "()":
            self.result = self.result or _Callee()
            return self.result
        return self.props.setdefault(segment, _Callee())

    def value(self) -> Any:
        """A fresh value (the evaluator's dicts may be written by Object.assign)."""
        result = self.result
        table: dict[Any, Any] = {key: node.value() for key, node in self.props.items()}
        table[UNKNOWN_KEYS] = True
        table["__call__"] = Fn(CALL_SITE, (lambda *_a: result.value()) if result is not None else None,
                               site=self.site, rules=tuple(self.rules))
        return table


def _at(root: _Callee, package: str, path: str) -> _Callee:
    node = root
    for segment in path.split(".") if path else ():
        node = node.child(segment)
    node.site = f"{package}:{path}"
    return node


@lru_cache(maxsize=8)
def call_modules(rules: tuple[Any, ...]) -> dict[str, Callable[[Env], Any]]:
    """The modules of the [[call]] rules: require('pino') is a function with a .transport() ..."""
    roots: dict[str, _Callee] = {}
    for rule in rules:
        root = roots.setdefault(rule.package, _Callee())
        for path in rule.callee:
            _at(root, rule.package, path).rules.append(rule)
        if rule.unless:
            _at(root, rule.package, rule.unless)
    return {package: _builder(root) for package, root in roots.items()}


def _builder(root: _Callee) -> Callable[[Env], Any]:
    return lambda _env: root.value()


STATIC_MODULES: dict[str, Callable[[Env], Any]] = {
    "fs": _fs_module(), "fs/promises": _fs_module(), "graceful-fs": _fs_module(),
    "fs-extra": _fs_module(FS_EXTRA_FUNCTIONS),
    "path": _path_module, "path/posix": _path_module,
    "url": _url_module, "module": _module_module, "os": _os_module, "process": _process_module,
    "bindings": lambda _env: BINDINGS,
    "node-gyp-build": lambda _env: NODE_GYP_BUILD, "@aminya/node-gyp-build": lambda _env: NODE_GYP_BUILD,
    "node-pre-gyp": _pregyp, "@mapbox/node-pre-gyp": _pregyp,
    "node-pre-gyp/lib/pre-binding": _pregyp, "node-pre-gyp/lib/pre-binding.js": _pregyp,
    "pkginfo": lambda _env: PKGINFO,
    "resolve-from": lambda _env: RESOLVE_FROM,
}


# -- URLs -------------------------------------------------------------------------------------------
def path_to_url(path: Any, cwd: str = "/") -> Any:
    if not isinstance(path, str) or not path:
        return NA
    trailing = "/" if path.endswith("/") else ""
    path = posixpath.normpath(posixpath.join(cwd, path)) + trailing
    return "file://" + quote(path, safe="/" + WILDCARD + "@:+,;=$&!*'()~")


def url_to_path(url: str) -> str | None:
    if not url.startswith("file:"):
        return None
    parsed = urlparse(url)
    if parsed.netloc not in ("", "localhost"):
        return None
    return unquote(parsed.path)


def _url_to_path_value(url: Any) -> Any:
    if not isinstance(url, str):
        return NA
    path = url_to_path(url)
    return path if path is not None else NA


def url_constructor(spec: Any, base: Any = UNDEFINED) -> Any:
    if not isinstance(spec, str):
        return NA
    if base is UNDEFINED:
        return spec if spec.startswith("file:") else NA
    if not isinstance(base, str) or not base.startswith("file:"):
        return NA
    return urljoin(base, spec)


def _object_assign(target: Any, *sources: Any) -> Any:
    if not isinstance(target, dict) or not all(isinstance(s, dict) for s in sources):
        return NA
    merged = dict(target)
    for source in sources:
        merged.update(source)
    return merged


# -- the evaluator ----------------------------------------------------------------------------------
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}
_ESCAPE_RE = re.compile(r"\\(u\{[0-9a-fA-F]{1,8}\}|u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|\r\n|[\s\S])")
MAX_DEPTH = 60          # deeply nested expressions are not paths; give up instead of recursing


def unescape(raw: str) -> str:
    def one(match: re.Match[str]) -> str:
        body = match.group(1)
        if body[0] == "u" and len(body) > 1:
            code = int(body[2:-1] if body[1] == "{" else body[1:], 16)
            return chr(code) if code <= 0x10FFFF else "\ufffd"     # not a character: JS rejects it too
        if body[0] == "x" and len(body) == 3:
            return chr(int(body[1:], 16))
        if body in ("\n", "\r\n", "\r", "\u2028", "\u2029"):
            return ""
        return _ESCAPES.get(body, body)
    return _ESCAPE_RE.sub(one, raw) if "\\" in raw else raw


class Evaluator:
    def __init__(self, env: Env, source: bytes) -> None:
        self.env = env
        self.source = source
        self._parameters: dict[int, frozenset[str]] = {}     # function node id -> the names it binds
        # Every name any parameter list of the file binds (None: not known). A name outside it is
        # shadowed by no parameter: no walk up the tree, whose every step costs the node's depth.
        self.parameter_names: frozenset[str] | None = None

    def text(self, node: Node) -> str:
        return self.source[node.start_byte:node.end_byte].decode("utf-8", "replace")

    def value(self, node: Node, branches: bool = True) -> Any:
        """The static value of ``node``; ``branches``: allow wildcards and conditionals."""
        return self._eval(node, branches, 0)

    def _eval(self, node: Node, branches: bool, depth: int) -> Any:
        if depth > MAX_DEPTH:
            return NA
        method = getattr(self, "_" + node.type, None)
        if method is None:
            return NA
        return method(node, branches, depth + 1)

    # literals
    def _string(self, node: Node, _b: bool, _d: int) -> Any:
        raw = self.text(node)
        return unescape(raw[1:-1]) if len(raw) >= 2 else NA

    def _template_string(self, node: Node, branches: bool, depth: int) -> Any:
        result: Any = ""
        for child in node.named_children:
            if child.type == "string_fragment":
                part: Any = self.text(child)
            elif child.type == "escape_sequence":
                part = unescape(self.text(child))
            elif child.type == "template_substitution":
                inner = child.named_children[0] if child.named_children else None
                part = self._eval(inner, branches, depth) if inner is not None else NA
                if isinstance(part, Cond) and not branches:
                    return NA
                if not isinstance(part, (str, int, float, Cond)) or isinstance(part, bool):
                    if not branches:
                        return NA
                    part = WILDCARD
            else:
                continue
            result = _plus(result, part, branches)
            if result is NA:
                return NA
        return result

    def _number(self, node: Node, _b: bool, _d: int) -> Any:
        raw = self.text(node).replace("_", "")
        try:
            return int(raw, 0) if raw.isdigit() or raw[:2].lower() in ("0x", "0o", "0b") else float(raw)
        except ValueError:
            return NA

    def _true(self, *_a: Any) -> Any:
        return True

    def _false(self, *_a: Any) -> Any:
        return False

    def _null(self, *_a: Any) -> Any:
        return None

    def _undefined(self, *_a: Any) -> Any:
        return UNDEFINED

    def _identifier(self, node: Node, _b: bool, _d: int) -> Any:
        name = self.text(node)
        value = self.env.bindings.get(name, NA)
        if value is NA or isinstance(value, (Fn, dict)) or name == "require":
            return value
        # Bindings are per file: a parameter of the same name in an enclosing function is another
        # variable (`function load(name) { return require(name) }` beside `var name = 'a'`).
        return NA if self._shadowed_by_parameter(node, name) else value

    def _shadowed_by_parameter(self, node: Node, name: str) -> bool:
        if self.parameter_names is not None and name not in self.parameter_names:
            return False
        parent = node.parent
        while parent is not None:
            if parent.type in _FUNCTIONS:
                names = self._parameters.get(parent.id)
                if names is None:
                    params = parent.child_by_field_name("parameters") or parent.child_by_field_name("parameter")
                    names = self._parameters[parent.id] = _parameter_names(params, 0) if params is not None \
                        else frozenset()
                if name in names:
                    return True
            parent = parent.parent
        return False

    _shorthand_property_identifier = _identifier

    def _parenthesized_expression(self, node: Node, branches: bool, depth: int) -> Any:
        inner = [c for c in node.named_children if c.type != "comment"]
        return self._eval(inner[-1], branches, depth) if inner else NA

    def _as_expression(self, node: Node, branches: bool, depth: int) -> Any:
        return self._eval(node.named_children[0], branches, depth) if node.named_children else NA

    def _sequence_expression(self, node: Node, branches: bool, depth: int) -> Any:
        items = [c for c in node.named_children if c.type != "comment"]
        return self._eval(items[-1], branches, depth) if items else NA

    _non_null_expression = _as_expression
    _satisfies_expression = _as_expression
    _await_expression = _as_expression

    def _type_assertion(self, node: Node, branches: bool, depth: int) -> Any:
        return self._eval(node.named_children[-1], branches, depth) if node.named_children else NA

    def _array(self, node: Node, branches: bool, depth: int) -> Any:
        items = []
        for child in node.named_children:
            if child.type == "comment":
                continue
            value = self._eval(child, branches, depth)
            if value is NA or isinstance(value, Cond):
                return NA
            items.append(value)
        return items

    def _object(self, node: Node, branches: bool, depth: int) -> Any:
        result: dict[Any, Any] = {}
        for child in node.named_children:
            if child.type == "pair":
                key_node, value_node = child.child_by_field_name("key"), child.child_by_field_name("value")
                if key_node is None or value_node is None:
                    return NA
                key = self.text(key_node) if key_node.type == "property_identifier" \
                    else self._eval(key_node, False, depth)
                if not isinstance(key, str):
                    return NA
                result[key] = _storable(self._eval(value_node, branches, depth))
            elif child.type == "shorthand_property_identifier":
                result[self.text(child)] = _storable(self._eval(child, branches, depth))
            elif child.type != "comment":
                return NA
        return result

    def _meta_property(self, node: Node, _b: bool, _d: int) -> Any:
        return self.env.import_meta if self.text(node).replace(" ", "") == "import.meta" else NA

    def _ternary_expression(self, node: Node, branches: bool, depth: int) -> Any:
        test = self._eval(node.child_by_field_name("condition"), False, depth)  # type: ignore[arg-type]
        then_node, else_node = node.child_by_field_name("consequence"), node.child_by_field_name("alternative")
        if then_node is None or else_node is None:
            return NA
        if test is not NA and not isinstance(test, Cond) and not isinstance(test, Fn):
            return self._eval(then_node if _truthy(test) else else_node, branches, depth)
        if not branches:
            return NA
        then, other = self._eval(then_node, branches, depth), self._eval(else_node, branches, depth)
        if then is NA or other is NA or isinstance(then, Cond) or isinstance(other, Cond):
            return NA
        if _has_wildcard(then) or _has_wildcard(other):
            return NA
        return Cond(then, other)

    def _binary_expression(self, node: Node, branches: bool, depth: int) -> Any:
        op_node = node.child_by_field_name("operator")
        left_node, right_node = node.child_by_field_name("left"), node.child_by_field_name("right")
        if op_node is None or left_node is None or right_node is None:
            return NA
        op = self.text(op_node)
        left = self._eval(left_node, branches, depth)
        if left is NA and op != "+":
            return NA
        right = self._eval(right_node, branches, depth)
        if op == "+":
            return _plus(left, right, branches)
        if left is NA or right is NA:
            if op == "||" and left is not NA and not isinstance(left, Cond) and _truthy(left):
                return left
            return NA
        return _binary(op, left, right)

    def _member_expression(self, node: Node, branches: bool, depth: int) -> Any:
        obj_node, prop_node = node.child_by_field_name("object"), node.child_by_field_name("property")
        if obj_node is None or prop_node is None:
            return NA
        obj = self._eval(obj_node, branches, depth)
        if (obj is REQUIRE or obj is BOUND_REQUIRE) and self.text(prop_node) == "resolve":
            return self.env.require_resolve
        return _member(obj, self.text(prop_node))

    def _subscript_expression(self, node: Node, branches: bool, depth: int) -> Any:
        obj_node, index_node = node.child_by_field_name("object"), node.child_by_field_name("index")
        if obj_node is None or index_node is None:
            return NA
        obj = self._eval(obj_node, branches, depth)
        key = self._eval(index_node, False, depth)
        if isinstance(obj, list) and isinstance(key, int) and not isinstance(key, bool):
            return obj[key] if 0 <= key < len(obj) else UNDEFINED
        return _member(obj, key) if isinstance(key, str) else NA

    def _call_expression(self, node: Node, branches: bool, depth: int) -> Any:
        callee_node, args_node = node.child_by_field_name("function"), node.child_by_field_name("arguments")
        if callee_node is None or args_node is None or args_node.type != "arguments":
            return NA
        callee = self._eval(callee_node, False, depth)
        if isinstance(callee, dict) and "__call__" in callee:
            callee = callee["__call__"]
        if callee is REQUIRE or callee is BOUND_REQUIRE:
            args = self.arguments(args_node)
            if len(args) == 1:
                name = self._eval(args[0], False, depth)
                if isinstance(name, str):
                    return self.env.static_module(name)
            return NA
        if callee_node.type == "member_expression" and isinstance(callee, Fn) is False:
            prop = callee_node.child_by_field_name("property")
            obj_value = self._eval(callee_node.child_by_field_name("object"), branches, depth)  # type: ignore[arg-type]
            if prop is not None and isinstance(obj_value, str) and self.text(prop) == "concat":
                return self._apply(lambda *parts: obj_value + "".join(_js_str(p) for p in parts),
                                   args_node, branches, depth, allow_all_wild=True)
        if callee is NA and callee_node.type == "member_expression":
            callee = self._bundled_path_function(callee_node, args_node, depth)
        if not isinstance(callee, Fn) or callee.call is None:
            return NA
        return self._apply(callee.call, args_node, branches, depth)

    def _bundled_path_function(self, callee_node: Node, args_node: Node, depth: int) -> Any:
        """`x.join(__dirname, 'a')`/`x.resolve(process.cwd(), 'b')` on an unknown `x`: bundlers
        rename the path module, but a join whose first part is an absolute path is a path."""
        prop = callee_node.child_by_field_name("property")
        args = self.arguments(args_node)
        if prop is None or self.text(prop) not in ("join", "resolve") or len(args) < 2:
            return NA
        first = self._eval(args[0], False, depth)
        if not (isinstance(first, str) and first.startswith("/")):
            return NA
        return self.env.static_module("path")[self.text(prop)]

    def _new_expression(self, node: Node, branches: bool, depth: int) -> Any:
        ctor_node, args_node = node.child_by_field_name("constructor"), node.child_by_field_name("arguments")
        if ctor_node is None or args_node is None:
            return NA
        ctor = self._eval(ctor_node, False, depth)
        if isinstance(ctor, Fn) and ctor.tag == "URL" and ctor.call is not None:
            return self._apply(ctor.call, args_node, branches, depth)
        return NA

    def _apply(self, fn: Callable[..., Any], args_node: Node, branches: bool, depth: int,
               allow_all_wild: bool = False) -> Any:
        args = self.arguments(args_node)
        values: list[Any] = []
        wild = 0
        cond_at = -1
        for i, arg in enumerate(args):
            if arg.type == "spread_element":
                if not branches:
                    return NA
                values.append(WILDCARD)
                wild += 1
                continue
            value = self._eval(arg, branches, depth)
            if value is NA:
                if not branches:
                    return NA
                value = WILDCARD
                wild += 1
            elif isinstance(value, Cond):
                if cond_at >= 0:
                    return NA
                cond_at = i
            values.append(value)
        if args and wild == len(args) and not allow_all_wild:
            return NA
        if cond_at >= 0:
            if wild:
                return NA
            then = _safe_call(fn, [v.then if i == cond_at else v for i, v in enumerate(values)])
            other = _safe_call(fn, [v.other if i == cond_at else v for i, v in enumerate(values)])
            return NA if then is NA or other is NA else Cond(then, other)
        result = _safe_call(fn, values)
        if wild and (not isinstance(result, str) or result.count(WILDCARD) < 1):
            return NA
        return result

    def arguments(self, args_node: Node) -> list[Node]:
        return [c for c in args_node.named_children if c.type != "comment"]


def _storable(value: Any) -> Any:
    """`{ require }`: a require kept in an object is not followed (nft's rule: `s.require(x)`
    is not analysable)."""
    return NA if value is REQUIRE or value is BOUND_REQUIRE else value


def _safe_call(fn: Callable[..., Any], args: list[Any]) -> Any:
    try:
        return fn(*args)
    except (TypeError, ValueError, IndexError, KeyError, AttributeError, ZeroDivisionError, OverflowError,
            RecursionError, UnicodeError):
        return NA


def _member(obj: Any, key: Any) -> Any:
    if obj is NA or isinstance(obj, (Cond, Fn)):
        return NA
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        return NA if obj.get(UNKNOWN_KEYS) else UNDEFINED
    if isinstance(obj, str) and key == "length":
        return len(obj)
    return NA


def _has_wildcard(value: Any) -> bool:
    return isinstance(value, str) and WILDCARD in value


def _truthy(value: Any) -> bool:
    if value is UNDEFINED or value is None:
        return False
    return bool(value) if isinstance(value, (str, int, float, bool)) else True


def _js_str(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if value is UNDEFINED:
        return "undefined"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _plus(left: Any, right: Any, branches: bool) -> Any:
    if isinstance(left, Cond) or isinstance(right, Cond):
        if left is NA or right is NA or (isinstance(left, Cond) and isinstance(right, Cond)):
            return NA
        if isinstance(left, Cond):
            return Cond(_plus(left.then, right, branches), _plus(left.other, right, branches))
        return Cond(_plus(left, right.then, branches), _plus(left, right.other, branches))
    if left is NA and right is NA:
        return NA
    if left is NA:
        return WILDCARD + right if branches and isinstance(right, str) else NA
    if right is NA:
        return left + WILDCARD if branches and isinstance(left, str) else NA
    if isinstance(left, str) or isinstance(right, str):
        if isinstance(left, (list, dict, Fn)) or isinstance(right, (list, dict, Fn)):
            return NA
        return _js_str(left) + _js_str(right)
    if isinstance(left, (int, float)) and isinstance(right, (int, float)) \
            and not isinstance(left, bool) and not isinstance(right, bool):
        return left + right
    return NA


def _binary(op: str, left: Any, right: Any) -> Any:
    if isinstance(left, Cond) or isinstance(right, Cond):
        if isinstance(left, Cond) and isinstance(right, Cond):
            return NA
        if isinstance(left, Cond):
            return Cond(_binary(op, left.then, right), _binary(op, left.other, right))
        return Cond(_binary(op, left, right.then), _binary(op, left, right.other))
    if op in ("===", "=="):
        return left == right and type(left) is type(right) if op == "===" else left == right
    if op in ("!==", "!="):
        return not (left == right and type(left) is type(right)) if op == "!==" else left != right
    if op == "||":
        return left if _truthy(left) else right
    if op == "&&":
        return right if _truthy(left) else left
    if op == "??":
        return right if left is None or left is UNDEFINED else left
    return NA


_FUNCTIONS = frozenset({"function_declaration", "function_expression", "arrow_function", "method_definition",
                        "generator_function_declaration", "generator_function"})


def parameter_names(lists: Iterable[Node]) -> frozenset[str]:
    """The names these parameter lists (or single arrow-function parameters) bind."""
    names: set[str] = set()
    for node in lists:
        names |= _parameter_names(node, 0)
    return frozenset(names)


def _parameter_names(node: Node, depth: int) -> frozenset[str]:
    """The names a parameter list binds (plain, defaulted, destructured, rest; TypeScript's too)."""
    if node.type in ("identifier", "shorthand_property_identifier_pattern"):
        return frozenset({node.text.decode("utf-8", "replace")}) if node.text is not None else frozenset()
    if depth > 8:
        return frozenset()
    names: frozenset[str] = frozenset()
    for child in node.named_children:
        if node.type == "assignment_pattern" and child == node.child_by_field_name("right"):
            continue                    # a default value names nothing
        if node.type in ("pair_pattern",) and child == node.child_by_field_name("key"):
            continue
        if child.type in ("type_annotation", "comment"):
            continue
        names |= _parameter_names(child, depth + 1)
    return names
