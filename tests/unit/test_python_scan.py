"""The Python lexer: exact on real import forms, linear on hostile input."""
from __future__ import annotations

import pytest

from microprune_analyzers.python.scan import scan_source


def refs(source: bytes) -> list[tuple[int, str, str, int, tuple[str, ...], bool]]:
    return [(r.line, r.kind, r.target, r.level, r.names, r.optional) for r in scan_source(source).refs
            if r.kind in ("import", "from", "dynamic", "dynamic-prefix")]


def test_import_forms() -> None:
    source = (b"import os, sys as s\nfrom . import a\nfrom .. x import y\nfrom.b import c\n"
              b"raise E from err\nfrom a.b \\\n   import c\nyield from g\nfrom x import (p,\n q)\n"
              b"s = 'import nothing'  # import not\n\"\"\"\nimport in_docstring\n\"\"\"\n")
    assert refs(source) == [
        (1, "import", "os", 0, (), False), (1, "import", "sys", 0, (), False),
        (2, "from", "", 1, ("a",), False), (3, "from", "x", 2, ("y",), False),
        (4, "from", "b", 1, ("c",), False), (6, "from", "a.b", 0, ("c",), False),
        (9, "from", "x", 0, ("p", "q"), False),
    ]


def test_comments_inside_a_parenthesised_name_list() -> None:
    """astroid's `from astroid.brain import (  # pylint: disable=...` dropped the names after the
    comment, and a `)` inside a comment ended the list early."""
    source = (b"from astroid.brain import (  # pylint: disable=import-outside-toplevel\n"
              b"    brain_argparse,\n    brain_attrs,  # the attrs one (see issue 12)\n"
              b"    # a whole-line comment, with a comma, too\n    brain_boto3,\n)\n"
              b"from pk import (c,  # x\n d)\nimport after\n")
    assert refs(source) == [
        (1, "from", "astroid.brain", 0, ("brain_argparse", "brain_attrs", "brain_boto3"), False),
        (7, "from", "pk", 0, ("c", "d"), False), (9, "import", "after", 0, (), False),
    ]


def test_an_unclosed_parenthesis_with_comments_is_linear() -> None:
    source = b"from a import (" + b"x,  # c\n" * 20000          # never closed
    assert refs(source)[0][:3] == (1, "from", "a")


def test_nested_imports_are_optional() -> None:
    source = (b"def f():\n    import json\ntry: import ujson\nexcept ImportError: pass\n"
              b"if TYPE_CHECKING:\n    from typing_extensions import Self\n")
    assert [(t, o) for _, _, t, _, _, o in refs(source)] == [("json", True), ("ujson", True), ("typing_extensions", True)]


def test_dynamic_imports() -> None:
    source = (b"importlib.import_module( 'pkg.sub')\n__import__('a.dialects.%s' % n)\n"
              b"import_module(f'pkg.backends.{x}')\nimport_module('.rel', __name__)\n"
              b"def iter_modules(path): pass\n")
    assert refs(source) == [
        (1, "dynamic", "pkg.sub", 0, (), True), (2, "dynamic-prefix", "a.dialects.", 0, (), True),
        (3, "dynamic-prefix", "pkg.backends.", 0, (), True), (4, "dynamic", "rel", 1, (), True),
    ]
    assert not [r for r in scan_source(source).refs if r.kind == "all-submodules"]   # a def, not a call


def test_newer_syntax_is_still_lexed() -> None:
    source = b"type Alias = list[int]\ndef f[T](x: T) -> T: ...\nimport after_new_syntax\nmatch x:\n    case 1: pass\n"
    assert refs(source) == [(3, "import", "after_new_syntax", 0, (), False)]


@pytest.mark.parametrize("source", [
    b"x = 1\nfrom" + b" " * 40000 + b"\n",
    b'"""' + b"x\\'" * 60000,
    b"'" * 200000,
    b"x\\'" * 100000,
    b"from " + b"." * 100000 + b" x",
    b"from a" + b" \\\n" * 40000 + b" import b\n",
    b"from a import (" + b"b, " * 100000,
    b"from " + b"a " * 100000,
], ids=["from-blanks", "open-triple", "quotes", "escaped-quotes", "dots", "continuations", "open-paren", "words"])
@pytest.mark.timeout(120)
def test_hostile_input_does_not_hang(source: bytes) -> None:
    """A hang guard, not a speed test: with a backtracking pattern these inputs ran for
    hours (1,600 blanks after `from` already took over 30 s); a linear lexer needs ms."""
    result = scan_source(source)
    assert all(r.kind != "import" or r.target for r in result.refs)


def test_the_lexer_stays_linear_on_hostile_from_chains() -> None:
    """`from a from a ...` once made every `from` search to the end of the file (minutes for a
    few hundred KB): the head of a from-import is now read part by part, so it stops at the
    second word that is not `import` instead of scanning on (checked by what it matches, not
    by time)."""
    from microprune_analyzers.python.scan import _FROM_HEAD

    assert _FROM_HEAD.match(b" a from a import x") is None          # the old pattern matched this
    assert _FROM_HEAD.match(b" a . b import x").group(1).replace(b" ", b"") == b"a.b"
    assert _FROM_HEAD.match(b" ..pkg \\\n import x").group(1).strip() == b"..pkg"
    data = b"from a " * 20000 + b"\nfrom os import path\n"
    assert [(r.kind, r.target, r.names) for r in scan_source(data).refs] == [("from", "os", ("path",))]
