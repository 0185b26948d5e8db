"""What one Python file refers to: pure functions of its bytes.

One pass of a regular-expression lexer (C speed, about 4x faster than
``ast.parse`` here) that skips comments and strings exactly, so every
``import``/``from`` keyword it sees is an import statement: they are hard
keywords. It never fails on syntax the host cannot parse (newer Python, a
typo), so the same scanner is the tolerant fallback. Beyond imports it reads
the forms real packages use to load code by name: ``import_module`` /
``__import__`` with a literal or a fixed prefix, quoted module paths,
``pkgutil.iter_modules`` over a package, module ``__getattr__``/``__all__``
lazy submodules and ``lazy_loader`` stubs.

An import indented under a block (a function, ``try``, ``if TYPE_CHECKING``)
is *optional*: still kept when installed, but missing it is not a warning.
"""
from __future__ import annotations

import ast
import re
from dataclasses import replace
from collections.abc import Iterator

from microprune.model import Diagnostic, Ref, Scan

_MAX_STRING = 200
_NAME_STRING = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:[.-][A-Za-z_][A-Za-z0-9_]*)*(?::[A-Za-z_][\w.]*)?$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DOTTED_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")

# String bodies written "unrolled" (runs of ordinary bytes, then one escape or lone
# quote): each byte has exactly one way to match, and an unterminated string simply
# ends at the end of its line (or of the file, for triple quotes), as in Python's own
# tokenizer. So a match never fails half-way and never backtracks: linear time on any
# input, however hostile (before this, 1,600 spaces after `from` took over 30 s).
_STRING_BODY = (
    r"(?:'''[^'\\]*(?:(?:\\[\s\S]|'(?!''))[^'\\]*)*(?:'''|\Z)"
    r'|"""[^"\\]*(?:(?:\\[\s\S]|"(?!""))[^"\\]*)*(?:"""|\Z)'
    r"|'[^'\\\n]*(?:\\[\s\S][^'\\\n]*)*'?"
    r'|"[^"\\\n]*(?:\\[\s\S][^"\\\n]*)*"?)'
)
_DYNAMIC_CALLS = (b"import_module", b"__import__", b"find_spec", b"import_string", b"import_from_string",
                  b"load_module", b"iter_modules", b"walk_packages", b"attach_stub")
# One flat alternation (no named groups, no lookbehinds): measured 3x faster than the
# same tokens with groups. The kind of a token is read from its first byte.
_TOKEN = re.compile((
    r"\#[^\n]*|" + _STRING_BODY +
    r"|\b(?:import|from|__getattr__|__all__|" + "|".join(c.decode() for c in _DYNAMIC_CALLS) + r")\b"
).encode())
_CALL_OPEN = re.compile(rb"\s*\(")
_NAME_BYTES = re.compile(rb"\.?[A-Za-z_][A-Za-z0-9_]*(?:[.-][A-Za-z_][A-Za-z0-9_]*)*(?::[A-Za-z_][\w.]*)?")
_QUOTES = frozenset(b"'\"")
_WORD = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")

# After `from`: one lazy run of the only bytes a module spec can hold (blanks, dots, word
# bytes, backslash-newlines), then `import`. One character class cannot backtrack
# quadratically; the run is split into dots and name in Python.
# Bytes \x80-\xff: identifiers may be non-ASCII (PEP 3131: `import café`), in UTF-8.
# Blanks (or backslash-newlines), dots, then a dotted name that may have blanks around its dots
# (`from . import x`, `from a . b import c`), then `import`: each part taken once, no backtracking
# over the line, so "from a from a from a ..." fails at the second `from` in constant time.
_BLANK = rb"(?:[ \t]|\\\n)"
_FROM_HEAD = re.compile(
    rb"(" + _BLANK + rb"*(?:\." + _BLANK + rb"*)*(?:[\w\x80-\xff]+(?:" + _BLANK + rb"*\." + _BLANK
    + rb"*[\w\x80-\xff]+)*)?)" + _BLANK + rb"*(?<![\w\x80-\xff])import(?![\w])[ \t]*")
# `(a,  # a comment, maybe with a ) in it` ... `)`: a comment runs to its newline (required, so
# that a comment cannot be split between the two alternatives: no backtracking blow-up).
_FROM_NAMES = re.compile(rb"\((?:[^)#]|#[^\n]*\n)*\)|[^\n;#]*(?:\\\n[^\n;#]*)*")
_COMMENT = re.compile(rb"#[^\n]*")
# The module part of `from X import`: never longer than this (a bound, so that text such as
# "from a from a from a ..." is not searched to its end once per `from`).
_FROM_SPEC_MAX = 2048
_FROM_SPEC = re.compile(rb"(\.*)([\w.\x80-\xff]*)")
_IMPORT_TAIL = re.compile(rb"[ \t]+([^\n;#]*(?:\\\n[^\n;#]*)*)")
_CALL_ARG = re.compile(rb"""\s*(?P<f>[fF]?)(?P<q>['"])(?P<text>[^'"\\\n]*)(?P=q)\s*(?P<next>[,)%+.]?)(?P<rest>[^)]*)""")
# Calls whose first argument names a distribution (its metadata is read) or a package (its
# files are read): `importlib.metadata.version("requests")`, `pkg_resources.resource_string("certifi", ...)`.
_METADATA_CALLS = frozenset({b"version", b"distribution", b"metadata", b"requires", b"get_distribution",
                             b"require"})
_NAMING_CALL = re.compile(rb"(?<![\w.])(?:[\w.]*\.)?(version|distribution|metadata|requires|get_distribution|require"
                          rb"|resource_string|resource_filename|resource_stream|resource_exists|resource_listdir"
                          rb"|resource_isdir|files|read_text|read_binary|open_text|open_binary|path|contents)"
                          rb"\(\s*$")
# Code in a string, for exec(): one import statement of a dotted (absolute) module.
_IMPORT_IN_STRING = re.compile(rb"[ \t]*(?:from[ \t]+([A-Za-z_]\w*(?:\.\w+)+)[ \t]+import[ \t][^'\"\n]*"
                               rb"|import[ \t]+([A-Za-z_]\w*(?:\.\w+)+)[ \t]*)")
_DYNAMIC_SPECULATIVE = {b"find_spec", b"import_string"}
# The fixed head of an f-string, when it is name-like, ends with a separator and a
# replacement field follows it: `f"opentelemetry_{provider}"` -> "opentelemetry_"
# (`{{` is a literal brace, not a field). `f"tele{x}"` is no group's prefix: too loose.
_FSTRING_HEAD = re.compile(rb"([A-Za-z_][A-Za-z0-9_.-]{1,98}[._-])\{(?!\{)")
# ... and its fixed dotted tail after a replacement field: `f"{APP_NAME}.transforms"` -> ".transforms"
# (`f"{kind}_plugins"` is too loose: only a dot starts a tail)
_FSTRING_TAIL = re.compile(rb"(?<!\})\}(\.[A-Za-z_][A-Za-z0-9_.-]{3,97})$")


_MAIN_GUARD = re.compile(rb"""^if[ \t]+__name__[ \t]*==[ \t]*(['"])__main__\1[ \t]*:""", re.M)
_COLUMN_ZERO_CODE = re.compile(rb"^[^\s#]", re.M)


def scan_source(data: bytes, filename: str = "") -> Scan:
    refs = list(dict.fromkeys(_lex_refs(data)))   # first-seen order, no sort: a hot path
    if any(r.kind == "lazy-submodules" for r in refs):
        # import_module(f".{name}", __package__) inside a module __getattr__: the names are
        # the file's strings (the lazy-submodules ref), not every submodule there is.
        refs = [r for r in refs if not (r.kind == "dynamic-prefix" and r.level and not r.target)]
    blocks = _main_blocks(data)
    if blocks:
        lines = _line_starts(data)
        refs = [replace(r, program_only=True) if _in_blocks(lines, r.line, blocks) else r for r in refs]
    return Scan(refs=tuple(refs))


def _main_blocks(data: bytes) -> list[tuple[int, int]]:
    """Byte ranges of top-level `if __name__ == "__main__":` blocks."""
    blocks: list[tuple[int, int]] = []
    if b"__main__" not in data:            # a C substring search spares the regex on most files
        return blocks
    for match in _MAIN_GUARD.finditer(data):
        body = data.find(b"\n", match.end()) + 1 or len(data)
        end = _COLUMN_ZERO_CODE.search(data, body)
        blocks.append((match.start(), end.start() if end else len(data)))
    return blocks


def _line_starts(data: bytes) -> list[int]:
    starts = [0]
    position = data.find(b"\n")
    while position != -1:
        starts.append(position + 1)
        position = data.find(b"\n", position + 1)
    return starts


def _in_blocks(lines: list[int], line: int, blocks: list[tuple[int, int]]) -> bool:
    offset = lines[line - 1] if 0 < line <= len(lines) else -1
    return any(start <= offset < end for start, end in blocks)


def _lex_refs(data: bytes) -> Iterator[Ref]:
    line, last = 1, 0
    skip_to = -1
    strings: dict[str, int] = {}
    prefixes: dict[str, int] = {}
    suffixes: dict[str, int] = {}
    named: dict[tuple[str, str], int] = {}
    literals: set[bytes] = set()
    lazy = False
    for match in _TOKEN.finditer(data):
        start = match.start()
        if start < skip_to:
            continue
        first = data[start]
        if first == 35:                                   # "#": a comment
            continue
        line += data.count(b"\n", last, start)
        last = start
        if first in _QUOTES:
            if start and data[start - 1] in _WORD:          # a prefix (b"", f"", r""): read it
                _note_string(data, start, match.end(), strings, prefixes, suffixes, named, line)
            else:
                # No prefix: the literal alone decides, and a file repeats most of its
                # literals ('axis', "dtype"); the first one seen gives the line.
                literal = match.group()
                if literal not in literals:
                    literals.add(literal)
                    _note_string(data, start, match.end(), strings, prefixes, suffixes, named, line)
                elif data[start - 1] == 0x28:                # seen, but maybe now as version("x")
                    _note_naming_call(data, start, match.end(), named, line)
            continue
        word = match.group()
        if word in (b"import", b"from"):
            refs, skip_to = _import_statement(data, word, start, match.end(), line)
            yield from refs
        elif word in (b"__getattr__", b"__all__"):
            lazy = lazy or _starts_lazy(data, word, start)
        elif _CALL_OPEN.match(data, match.end()) and not data.endswith(b"def ", 0, start):
            # `def iter_modules(` defines, it does not call.
            yield from _call_ref(data, word, _CALL_OPEN.match(data, match.end()).end(), line)  # type: ignore[union-attr]
    for text, first_line in strings.items():
        if not text.startswith("."):
            yield Ref(first_line, "string", text, speculative=True)
    for text, first_line in prefixes.items():
        yield Ref(first_line, "string-prefix", text, speculative=True)
    for text, first_line in suffixes.items():
        yield Ref(first_line, "string-suffix", text, speculative=True)
    for (kind, text), first_line in named.items():
        yield Ref(first_line, kind, text, speculative=True)
    if lazy:
        # Submodules a module __getattr__ may hand out: names ("dataclasses") and relative
        # names (".functional_validators", ".legacy.client") among the file's strings.
        names = tuple(sorted({s.lstrip(".") for s in strings if _DOTTED_IDENTIFIER.match(s.lstrip("."))
                              and not s.lstrip(".").startswith("__")}))
        if names:
            yield Ref(min(strings.values()), "lazy-submodules", "", names=names, speculative=True)


def _starts_lazy(data: bytes, word: bytes, start: int) -> bool:
    """A module-level `def __getattr__` or `__all__ =` (both at column 0)."""
    line_start = data.rfind(b"\n", 0, start) + 1
    head = data[line_start:start]
    if word == b"__all__":
        return head == b"" and re.match(rb"\s*[=+:]", data[start + 7:start + 12]) is not None
    return head.rstrip() == b"def"


def _note_string(data: bytes, start: int, end: int, strings: dict[str, int], prefixes: dict[str, int],
                 suffixes: dict[str, int], named: dict[tuple[str, str], int], line: int) -> None:
    if end - start > _MAX_STRING + 2 or data[start + 1:start + 3] == data[start:start + 1] * 2:
        return                         # long, or triple-quoted: a docstring, not a name
    prefix_start = start
    while prefix_start > 0 and data[prefix_start - 1] in _WORD and start - prefix_start < 3:
        prefix_start -= 1
    prefix = data[prefix_start:start].lower()
    if prefix in (b"f", b"rf", b"fr"):
        # f"opentelemetry_{kind}": the fixed head may start an entry-point group's name
        head = _FSTRING_HEAD.match(data, start + 1, end - 1)
        if head is not None:
            prefixes.setdefault(head.group(1).decode("ascii"), line)
        tail = _FSTRING_TAIL.search(data, start + 1, end - 1)
        if tail is not None:
            suffixes.setdefault(tail.group(1).decode("ascii"), line)
        return
    if prefix and (b"b" in prefix or b"f" in prefix or not prefix.strip(b"ru") == b""):
        return                         # bytes, f-strings, or the tail of an identifier
    if _NAME_BYTES.fullmatch(data, start + 1, end - 1):
        name = data[start + 1:end - 1].decode("ascii")
        if name not in strings:
            strings[name] = line
        _note_naming_call(data, start, end, named, line)
        return
    statement = _IMPORT_IN_STRING.fullmatch(data, start + 1, end - 1)
    if statement is not None:           # exec('from reportlab.rl_settings import *', ...)
        name = (statement.group(1) or statement.group(2)).decode("ascii")
        if name not in strings:
            strings[name] = line


def _note_naming_call(data: bytes, start: int, end: int, named: dict[tuple[str, str], int], line: int) -> None:
    """version("requests"), resource_filename("certifi", ...): a name the call reads by."""
    if data[start - 1] not in b"( ":            # cheap first: most literals are no call's argument
        return
    call = _NAMING_CALL.search(data, max(0, start - 40), start)
    if call is not None and _NAME_BYTES.fullmatch(data, start + 1, end - 1):
        kind = "dist-metadata" if call.group(1) in _METADATA_CALLS else "resource-package"
        named.setdefault((kind, data[start + 1:end - 1].decode("ascii")), line)


def _is_nested(data: bytes, start: int) -> bool:
    """Indented, or not first on its line (`try: import x`): under some block."""
    line_start = data.rfind(b"\n", 0, start) + 1
    return start != line_start


def _import_statement(data: bytes, word: bytes, start: int, end: int, line: int) -> tuple[list[Ref], int]:
    optional = _is_nested(data, start)
    if word == b"from":
        head = _FROM_HEAD.match(data, end, min(len(data), end + _FROM_SPEC_MAX))
        if head is None:                     # `raise X from err`, `yield from g`
            return [], -1
        spec = _FROM_SPEC.fullmatch(re.sub(rb"[ \t]|\\\n", b"", head.group(1)))
        if spec is None:                     # `x from y import z` is not Python
            return [], -1
        tail = _FROM_NAMES.match(data, head.end())
        assert tail is not None              # it matches the empty string
        names = tuple(n for n in _split_names(tail.group(0).strip(b"()")) if n.isidentifier() or n == "*")
        module = spec.group(2).decode("utf-8", "replace")
        if module and not is_module_path(module):
            return [], -1
        ref = Ref(line, "from", module, len(spec.group(1)), names,
                  optional=optional)
        return [ref], tail.end()
    tail = _IMPORT_TAIL.match(data, end)
    if tail is None:
        return [], -1
    refs = [Ref(line, "import", name, optional=optional) for name in _split_names(tail.group(1))
            if is_module_path(name)]
    return refs, tail.end()


def is_module_path(name: str) -> bool:
    """`a.b.c` with every part a Python identifier (Unicode ones included)."""
    return all(part.isidentifier() for part in name.split("."))


def _split_names(text: bytes) -> list[str]:
    names = []
    text = _COMMENT.sub(b"", text)
    for part in text.replace(b"\\\n", b" ").replace(b"\n", b" ").split(b","):
        words = part.split()
        if words:
            names.append(words[0].decode("utf-8", "replace"))
    return names


def _call_ref(data: bytes, name: bytes, args_start: int, line: int) -> Iterator[Ref]:
    if name in (b"iter_modules", b"walk_packages"):
        # iter_modules(tiktoken_ext.__path__, "tiktoken_ext."): that package; else the caller's own
        yield Ref(line, "all-submodules", _listed_package(data, args_start))
        return
    if name == b"attach_stub":
        yield Ref(line, "stub", "")
        return
    arg = _CALL_ARG.match(data, args_start)
    if arg is None:
        if name in (b"import_module", b"__import__") and data[args_start:args_start + 1] not in (b")", b""):
            yield Ref(line, "computed-import", "", speculative=True)    # import_module(name): unknown
        return
    text = arg.group("text").decode("ascii", "replace")
    following = arg.group("next")
    is_prefix = bool(arg.group("f")) or following in (b"%", b"+", b".")
    if arg.group("f") or following == b".":
        text = text.split("{", 1)[0]
    if following == b"%":
        text = text.split("%", 1)[0]
    level = len(text) - len(text.lstrip("."))
    if level and not re.search(rb"__name__|__package__|__spec__|package\s*=", arg.group("rest")):
        return                      # relative to a package we cannot see: give up quietly
    target = text[level:]
    if name == b"__import__" and not level:
        level = _import_level(data, args_start)     # __import__("region_" + c, globals(), level=1)
    if is_prefix:
        yield Ref(line, "dynamic-prefix", target, level, optional=True)
    elif (target or level) and (not target or _NAME_STRING.match(target)):
        yield Ref(line, "dynamic", target, level, speculative=name in _DYNAMIC_SPECULATIVE, optional=True)


_PACKAGE_PATH = re.compile(rb"(?<![\w.])([A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*)\.__path__\b")


def _listed_package(data: bytes, args_start: int) -> str:
    """The package whose `__path__` a listing call is given (`iter_modules(plugins.__path__)`),
    "" for the caller's own (`__path__`, or a path computed some other way)."""
    end = _call_end(data, args_start)
    found = _PACKAGE_PATH.search(data, args_start, end) if end is not None else None
    if found is None or found.group(1).startswith((b"self.", b"cls.")):
        return ""
    return found.group(1).decode("ascii")


def _call_end(data: bytes, args_start: int) -> int | None:
    """The closing parenthesis of a call whose arguments start at ``args_start`` (bounded)."""
    depth = 0
    for i in range(args_start, min(len(data), args_start + 1024)):
        byte = data[i]
        if byte == 0x28:
            depth += 1
        elif byte == 0x29:
            if depth == 0:
                return i
            depth -= 1
    return None


_LEVEL_KEYWORD = re.compile(rb"\blevel\s*=\s*([1-9])")


def _import_level(data: bytes, args_start: int) -> int:
    """The `level=N` keyword of an __import__ call whose arguments start at ``args_start``
    (within its parentheses, which may hold calls such as globals(); bounded look-ahead)."""
    end = _call_end(data, args_start)
    found = _LEVEL_KEYWORD.search(data, args_start, end) if end is not None else None
    return int(found.group(1)) if found else 0


SYNTAX_CHECK_MAX = 2 << 20


def check_syntax(data: bytes, filename: str) -> Diagnostic | None:
    """A syntax error in the app's own code: worth a warning (deps are only lexed). A file
    over SYNTAX_CHECK_MAX is not checked: `ast` needs about 600 times its size in memory."""
    if len(data) > SYNTAX_CHECK_MAX:
        return None
    try:
        ast.parse(data, filename=filename)
    except SyntaxError as err:
        return Diagnostic("syntax", f"syntax error for the host Python: {err.msg}; imports found by the lexer",
                          None, err.lineno)
    except (ValueError, RecursionError, MemoryError) as err:
        return Diagnostic("syntax", f"cannot parse ({type(err).__name__}: {err})", None, None)
    return None


# -- compiled extension modules ---------------------------------------------------

_DOTTED_BYTES = re.compile(rb"[A-Za-z_][A-Za-z0-9_]{0,63}(?:\.[A-Za-z_][A-Za-z0-9_]{0,63}){1,8}")
# A NUL-delimited identifier: a C string that is exactly a name (`_cffi_backend`).
_C_IDENTIFIER = re.compile(rb"(?<=\x00)(?:[A-Za-z_][A-Za-z0-9_]{1,63}|[0-9a-f]{8,64}__mypyc)(?=\x00)")
# `dns.pyx`, `loop.c`: file names Cython and compilers leave in binaries, not modules.
_FILE_SUFFIXES = frozenset({"py", "pyx", "pxd", "pxi", "c", "h", "cc", "cpp", "hpp", "so", "txt", "o"})


# mypyc keeps a `CPyModule_<name>` symbol for every module its code imports (dots as `___`).
_MYPYC_MODULE_SYMBOL = re.compile(rb"\x00CPyModule_([A-Za-z_][A-Za-z0-9_]{0,200})(?=\x00)")


def mypyc_imports(data: bytes) -> Scan:
    """What a mypyc-compiled wheel's shared runtime imports, from its symbol names (its module
    names are in a length-prefixed table, not C strings)."""
    names = {m.decode().replace("___", ".") for m in _MYPYC_MODULE_SYMBOL.findall(data)}
    refs = [Ref(0, "string", name, speculative=True) for name in sorted(n for n in names if "." in n)]
    refs.append(Ref(0, "native-names", "", names=tuple(sorted(n.partition(".")[0] for n in names)),
                    speculative=True))
    return Scan(refs=tuple(refs))


def scan_extension(data: bytes) -> Scan:
    """What a compiled module may import, read from its string table (.rodata).

    Cython and the C API import by name (``PyImport_ImportModule("pkg.mod")``).
    Cython 3.1 may compress its string table, so names can be invisible: the
    analyzer also keeps every sibling module of a compiled one ("siblings").
    """
    dotted = {m.decode() for m in _DOTTED_BYTES.findall(data)}
    refs = [Ref(0, "string", name, speculative=True) for name in sorted(dotted)
            if name.rsplit(".", 1)[1] not in _FILE_SUFFIXES]
    names = tuple(sorted({m.decode() for m in _C_IDENTIFIER.findall(data)}))
    refs.append(Ref(0, "native-names", "", names=names, speculative=True))
    refs.append(Ref(0, "siblings", "", speculative=True))
    return Scan(refs=tuple(refs))
