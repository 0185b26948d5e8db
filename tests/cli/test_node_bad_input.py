"""Hostile and broken input for the Node analyzer, through the real command: a warning
naming the file (or a one-line error with exit code 1/2), never a traceback, never a hang,
nothing read or copied from outside APP, and APP left as it was.

Every app is written by the test: APP/package.json, APP/server.js and a package
APP/node_modules/dep. Reads of files outside the tree are caught with inotify (IN_OPEN,
IN_ACCESS): following a link out, or a refused target, would show up there.
"""
from __future__ import annotations

import contextlib
import ctypes
import json
import os
import random
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.cli.helpers import Result, assert_no_traceback, run_cli, snapshot

NODE = ("--node-version", "22.12.0")      # never ask the host's node, never depend on it
TIMEOUT = 60
DEEP_TIMEOUT = 90      # one small file: seconds on a loaded machine; minutes would be a hang
SECRET = "SECRET-CONTENT-5d1c9e"

APP_MANIFEST = {"name": "app", "version": "1.0.0", "main": "server.js", "dependencies": {"dep": "1.0.0"}}
DEP_MANIFEST = {"name": "dep", "version": "1.0.0", "main": "index.js"}


# -- building apps ------------------------------------------------------------------------------------
def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def node_app(root: Path, server: str = "require('dep');\n", dep_index: str | bytes = "module.exports = 1;\n",
             app_manifest: str | bytes | None = None, dep_manifest: str | bytes | None = None) -> Path:
    app = root / "app"
    write(app / "package.json", app_manifest if app_manifest is not None else json.dumps(APP_MANIFEST))
    write(app / "server.js", server)
    dep = app / "node_modules" / "dep"
    write(dep / "package.json", dep_manifest if dep_manifest is not None else json.dumps(DEP_MANIFEST))
    write(dep / "index.js", dep_index)
    return app


def outside_tree(root: Path) -> Path:
    """A directory next to APP (never inside it) holding a secret, a module and a package.json."""
    outside = root / "outside"
    write(outside / "secret.txt", SECRET + "\n")
    write(outside / "secret.js", f"module.exports = '{SECRET}';\nrequire('./more');\n")
    write(outside / "more.js", f"module.exports = '{SECRET}-more';\n")
    write(outside / "index.js", f"module.exports = '{SECRET}-index';\n")
    write(outside / "package.json", json.dumps({"name": "evil", "version": "6.6.6", "main": "index.js"}))
    return outside


# -- running and reading results ----------------------------------------------------------------------
def cli(*args: str | os.PathLike[str], timeout: float = TIMEOUT, user: str | None = None) -> Result:
    """run_cli, with a hang reported as a test failure (the child is killed)."""
    try:
        return run_cli(*args, timeout=timeout, user=user)
    except subprocess.TimeoutExpired:
        pytest.fail(f"microprune {' '.join(map(str, args))[:300]} hung: no answer in {timeout:.0f} s")


def analyze(app: Path, *args: str | os.PathLike[str], timeout: float = TIMEOUT) -> Result:
    return cli("analyze", app, *NODE, "--format", "json", *args, timeout=timeout)


def prune(app: Path, out: Path, *args: str | os.PathLike[str], timeout: float = TIMEOUT) -> Result:
    return cli("prune", app, *NODE, "--out", out, "--format", "json", *args, timeout=timeout)


def assert_clean(result: Result) -> None:
    """No traceback, and no crash turned into a one-liner either."""
    assert_no_traceback(result)
    for word in ("RecursionError", "internal error"):
        assert word not in result.err, result.err


def ok(result: Result) -> dict[str, Any]:
    assert_clean(result)
    assert result.code == 0, result.err
    report: dict[str, Any] = result.json()
    return report


def warnings(report: dict[str, Any], code: str | None = None) -> list[dict[str, Any]]:
    return [w for w in report["warnings"] if code is None or w["code"] == code]


def warned_files(report: dict[str, Any], code: str, root: Path) -> set[str]:
    """The files (relative to root) a warning with this code names."""
    return {os.path.relpath(w["file"], root) for w in warnings(report, code) if w["file"]}


def kept(report: dict[str, Any], root: str = "deps") -> set[str]:
    return {f["path"] for f in report["files"] if f["keep"] and f["root"] == root}


def tree_bytes(top: Path) -> bytes:
    """Every regular file under top (links not followed), concatenated."""
    chunks = []
    for dirpath, _dirs, files in os.walk(top, followlinks=False):
        for name in files:
            path = Path(dirpath) / name
            if not path.is_symlink() and path.is_file():
                chunks.append(path.read_bytes())
    return b"\n".join(chunks)


def links_leaving(top: Path) -> list[str]:
    """Symlinks under top that resolve outside it (or nowhere)."""
    real_top = os.path.realpath(top)
    return [os.path.relpath(os.path.join(d, n), top) for d, dirs, files in os.walk(top, followlinks=False)
            for n in dirs + files if os.path.islink(os.path.join(d, n))
            and not os.path.realpath(os.path.join(d, n)).startswith(real_top + os.sep)]


def tree_entries(top: Path) -> set[str]:
    return {os.path.relpath(os.path.join(d, n), top) for d, dirs, files in os.walk(top, followlinks=False)
            for n in dirs + files}


# -- catching reads outside the tree ------------------------------------------------------------------
IN_ACCESS, IN_OPEN = 0x1, 0x20
_EVENT = struct.Struct("iIII")


class OpenWatch:
    """Records every open or read of the watched files and directories (listing a
    directory opens it) until closed."""

    def __init__(self, paths: list[Path]) -> None:
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            pytest.skip("inotify is not available")
        self.watches: dict[int, Path] = {}
        for path in paths:
            wd = self.libc.inotify_add_watch(self.fd, os.fsencode(path), IN_OPEN | IN_ACCESS)
            assert wd >= 0, f"cannot watch {path}: errno {ctypes.get_errno()}"
            self.watches[wd] = path

    def events(self) -> list[str]:
        seen: list[str] = []
        while True:
            try:
                data = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return seen
            offset = 0
            while offset < len(data):
                wd, mask, _cookie, size = _EVENT.unpack_from(data, offset)
                name = data[offset + _EVENT.size: offset + _EVENT.size + size].rstrip(b"\0").decode(errors="replace")
                where = self.watches.get(wd, Path("?"))
                seen.append(f"{'open' if mask & IN_OPEN else 'read'} {where / name if name else where}")
                offset += _EVENT.size + size

    def close(self) -> None:
        os.close(self.fd)


@contextmanager
def no_reads_of(*paths: Path) -> Iterator[OpenWatch]:
    """Fails if anything opens or reads the given files or directories (or files inside)."""
    watch = OpenWatch(list(paths))
    try:
        yield watch
        events = watch.events()
        assert events == [], f"read outside the tree: {events}"
    finally:
        watch.close()


def watched(outside: Path) -> list[Path]:
    return [outside, *sorted(p for p in outside.rglob("*") if not p.is_symlink())]


# -- broken package.json ------------------------------------------------------------------------------
def _nested_json(depth: int) -> bytes:
    return b'{"name": "dep", "main": "index.js", "x": ' + b"[" * depth + b"]" * depth + b"}"


BROKEN_MANIFESTS = {
    "invalid-json": (b'{"name": "dep", "main": "index.js",', "not valid JSON"),
    "not-an-object": (b'["dep", "index.js"]', "not a JSON object"),
    "a-string": (b'"index.js"', "not a JSON object"),
    "exports-5": (b'{"name": "dep", "exports": 5}', "exports"),
    "invalid-utf8": (b'{"name": "d\xffep", "main": "ind\xfe\xfdex.js"}', "not valid JSON"),
    "nested-100k": (_nested_json(100_000), "not valid JSON"),
    "empty": (b"", "not valid JSON"),
}


def _huge_manifest() -> bytes:
    return b'{"name": "dep", "main": "index.js", "pad": "' + b"x" * (20 << 20) + b'"}'


@pytest.mark.parametrize("case", [*BROKEN_MANIFESTS, "huge-20MB"])
def test_broken_package_json_in_a_dependency(tmp_path: Path, case: str) -> None:
    content, why = BROKEN_MANIFESTS[case] if case in BROKEN_MANIFESTS else (_huge_manifest(), "larger than")
    app = node_app(tmp_path, dep_manifest=content)
    report = ok(analyze(app))
    bad = [w for w in warnings(report, "bad-package-json")
           if os.path.relpath(w["file"], app) == "node_modules/dep/package.json"]
    assert bad, report["warnings"]
    assert any(why in w["message"] for w in bad), bad
    # still resolved the way Node falls back: the directory's index.js
    assert "dep/index.js" in kept(report)


def test_broken_package_json_in_a_dependency_is_copied_as_it_is(tmp_path: Path) -> None:
    raw = b'\xef\xbb\xbf{"name": "dep", "main": \xff\xfe "index.js",\x00'
    app = node_app(tmp_path, dep_manifest=raw)
    out = tmp_path / "out"
    report = ok(prune(app, out))
    assert "node_modules/dep/package.json" in warned_files(report, "bad-package-json", app)
    assert (out / "node_modules" / "dep" / "package.json").read_bytes() == raw
    assert (out / "node_modules" / "dep" / "index.js").is_file()


def test_a_bom_in_package_json_is_not_an_error(tmp_path: Path) -> None:
    """Node strips a UTF-8 BOM from package.json: `main` must be honoured, with no warning."""
    bom = b"\xef\xbb\xbf"
    app = node_app(tmp_path, server="require('dep');\n",
                   app_manifest=bom + json.dumps({**APP_MANIFEST, "main": "start.js"}).encode(),
                   dep_manifest=bom + json.dumps({**DEP_MANIFEST, "main": "lib/main.js"}).encode())
    write(app / "start.js", "require('dep');\n")
    write(app / "node_modules" / "dep" / "lib" / "main.js", "module.exports = 2;\n")
    report = ok(analyze(app))
    assert warnings(report, "bad-package-json") == []
    assert [e["files"] for e in report["entries"]] == [["start.js"]]
    assert kept(report) == {"dep/package.json", "dep/lib/main.js"}


@pytest.mark.parametrize("case", [*BROKEN_MANIFESTS, "huge-20MB"])
def test_broken_package_json_in_the_app(tmp_path: Path, case: str) -> None:
    """The app's own package.json is broken: a warning, then the usual entry names."""
    content, why = BROKEN_MANIFESTS[case] if case in BROKEN_MANIFESTS else (_huge_manifest(), "larger than")
    content = content.replace(b'"dep"', b'"app"')
    app = node_app(tmp_path, app_manifest=content)
    out = tmp_path / "out"
    result = prune(app, out)
    report = ok(result)
    bad = [w for w in warnings(report, "bad-package-json") if os.path.relpath(w["file"], app) == "package.json"]
    if case != "exports-5":           # the app's own exports matter only to a self-reference
        assert bad and any(why in w["message"] for w in bad), report["warnings"]
    assert [e["files"] for e in report["entries"]] == [["server.js"]]
    assert (out / "package.json").read_bytes() == content          # app files are copied as they are
    assert (out / "node_modules" / "dep" / "index.js").is_file()


# -- exports / imports / main that leave the package --------------------------------------------------
def test_exports_and_imports_targets_outside_the_package_are_refused(tmp_path: Path) -> None:
    outside = outside_tree(tmp_path)
    manifest = {
        "name": "dep", "version": "1.0.0",
        "exports": {".": "../../x.js", "./passwd": "/etc/passwd", "./abs": str(outside / "secret.js"),
                    "./up": "./../../../outside/secret.js", "./star/*": "./../../../outside/*.js",
                    "./ok": "./index.js"},
        "imports": {"#up": "../../../outside/secret.js", "#abs": str(outside / "more.js")},
    }
    server = "".join(f"require('{s}');\n" for s in ("dep", "dep/passwd", "dep/abs", "dep/up", "dep/star/more",
                                                     "dep/ok"))
    app = node_app(tmp_path, server=server, dep_manifest=json.dumps(manifest),
                   dep_index="require('#up');\nrequire('#abs');\nmodule.exports = 1;\n")
    write(app / "x.js", "module.exports = 'x';\n")          # what ../../x.js would name (in the app)
    out = tmp_path / "out"
    with no_reads_of(*watched(outside)):
        report = ok(prune(app, out))
    messages = [w["message"] for w in warnings(report, "bad-package-json")
                if os.path.relpath(w["file"], app) == "node_modules/dep/package.json"]
    for target in ("../../x.js", "/etc/passwd", str(outside / "secret.js"), "./../../../outside/secret.js",
                   "../../../outside/secret.js", str(outside / "more.js")):
        assert any(repr(target) in m for m in messages), (target, messages)
    assert "dep/index.js" in kept(report)
    assert all(not f["path"].startswith(("..", "/")) for f in report["files"])
    copied = tree_bytes(out)
    assert SECRET.encode() not in copied
    assert b"root:x:0:0" not in copied
    assert links_leaving(out) == []


def test_main_outside_the_package_is_refused(tmp_path: Path) -> None:
    outside = outside_tree(tmp_path)
    app = node_app(tmp_path, server="require('dep');\nrequire('dep2');\n",
                   dep_manifest=json.dumps({**DEP_MANIFEST, "main": "../../../outside/secret.js"}))
    write(app / "node_modules" / "dep2" / "package.json", json.dumps({"name": "dep2", "main": "/etc/passwd"}))
    write(app / "node_modules" / "dep2" / "index.js", "module.exports = 2;\n")
    out = tmp_path / "out"
    with no_reads_of(*watched(outside)):
        report = ok(prune(app, out))
    assert {"dep/index.js", "dep2/index.js"} <= kept(report)         # Node's fallback: index.js
    assert SECRET.encode() not in tree_bytes(out) and b"root:x:0:0" not in tree_bytes(out)
    # refused with a word about it, as exports targets are
    assert {"node_modules/dep/package.json", "node_modules/dep2/package.json"} <= \
        warned_files(report, "bad-package-json", app), report["warnings"]


def test_app_main_outside_the_app_is_not_an_entry(tmp_path: Path) -> None:
    outside = outside_tree(tmp_path)
    app = node_app(tmp_path, app_manifest=json.dumps({**APP_MANIFEST, "main": "../outside/secret.js"}))
    (app / "server.js").unlink()
    with no_reads_of(*watched(outside)):
        result = analyze(app)
    assert_clean(result)
    assert result.code == 2, result.err
    assert result.err.startswith("microprune: error: no entry point found") and result.err.count("\n") == 1
    assert result.out == ""


CLIMB = "../" * 40


@pytest.mark.parametrize("where", ["app-code", "dep-code", "app-main", "dep-main", "bin"])
def test_paths_that_climb_to_the_root(tmp_path: Path, where: str) -> None:
    """`require('../../..')` past `/`, or a `main` that does: refused (not found), not a crash."""
    server, dep_index = "require('dep');\n", "module.exports = 1;\n"
    app_manifest, dep_manifest = dict(APP_MANIFEST), dict(DEP_MANIFEST)
    climbs = [CLIMB, CLIMB.rstrip("/"), "/.", "/..", CLIMB + ".", CLIMB + ".."]
    if where == "app-code":
        server += "".join(f"require('{c}');\n" for c in climbs) + f"import('{CLIMB}..');\n"
    elif where == "dep-code":
        dep_index += "".join(f"require('{c}');\n" for c in climbs)
    elif where == "app-main":
        app_manifest["main"] = CLIMB.rstrip("/")
    elif where == "dep-main":
        dep_manifest["main"] = CLIMB.rstrip("/")
    else:
        app_manifest["bin"] = {"a": CLIMB.rstrip("/"), "b": "/.", "c": CLIMB + ".."}
    app = node_app(tmp_path, server=server, dep_index=dep_index, app_manifest=json.dumps(app_manifest),
                   dep_manifest=json.dumps(dep_manifest))
    report = ok(analyze(app))
    assert [e["files"] for e in report["entries"]] == [["server.js"]]
    assert "dep/index.js" in kept(report)
    assert all(not f["path"].startswith(("..", "/")) for f in report["files"])
    if where == "app-code":
        assert {w["line"] for w in warnings(report, "unresolved")} == set(range(2, 9))


@pytest.mark.parametrize("entry", ["../outside/secret.js", "{outside}/secret.js", "/etc/passwd",
                                   "node_modules/../../outside/secret.js", "../app2/server.js", "link.js"])
def test_entry_outside_the_app_is_refused(tmp_path: Path, entry: str) -> None:
    outside = outside_tree(tmp_path)
    app = node_app(tmp_path)
    write(tmp_path / "app2" / "server.js", f"module.exports = '{SECRET}';\n")    # a sibling sharing a prefix
    os.symlink(outside / "secret.js", app / "link.js")
    out = tmp_path / "out"
    with no_reads_of(*watched(outside), tmp_path / "app2" / "server.js"):
        result = cli("prune", app, *NODE, "--entry", entry.format(outside=outside), "--out", out,
                         timeout=TIMEOUT)
    assert_clean(result)
    assert result.code == 2, result.err
    assert result.err.startswith("microprune: error: --entry") and result.err.count("\n") == 1, result.err
    assert not out.exists()


def test_module_aliases_outside_the_app_are_refused(tmp_path: Path) -> None:
    outside = outside_tree(tmp_path)
    manifest = {**APP_MANIFEST, "_moduleAliases": {"@evil": "../outside", "@etc": "/etc", "@ok": "lib"}}
    app = node_app(tmp_path, app_manifest=json.dumps(manifest),
                   server="require('@evil/secret');\nrequire('@etc/passwd');\nrequire('@up/more');\n"
                          "require('@ok/x');\n")
    write(app / "lib" / "x.js", "module.exports = 'x';\n")
    out = tmp_path / "out"
    with no_reads_of(*watched(outside)):
        report = ok(prune(app, out, "--alias", f"@up={outside}"))
    messages = [w["message"] for w in warnings(report, "alias-outside")]
    assert all(any(repr(name) in m for m in messages) for name in ("@evil", "@etc", "@up")), report["warnings"]
    assert (out / "lib" / "x.js").is_file()
    copied = tree_bytes(out)
    assert SECRET.encode() not in copied and b"root:x:0:0" not in copied


@pytest.mark.parametrize("entry", ["fifo.js", "link.js", "missing.js"])
def test_trace_refuses_an_entry_that_is_not_a_file_of_the_tree(tmp_path: Path, entry: str) -> None:
    outside = outside_tree(tmp_path)
    app = node_app(tmp_path)
    os.mkfifo(app / "fifo.js")
    os.symlink(outside / "secret.js", app / "link.js")
    with no_reads_of(*watched(outside)):
        result = cli("trace", app / entry, *NODE, timeout=30)
    assert_clean(result)
    assert result.code == 2, result.err
    assert result.err.startswith("microprune: error:") and entry in result.err and result.err.count("\n") == 1
    assert result.out == ""


# -- symlinks -----------------------------------------------------------------------------------------
def test_symlink_loops_in_node_modules(tmp_path: Path) -> None:
    server = ("require('loop_a');\nrequire('cyc');\nrequire('dep/self/self/self/index.js');\n"
              "require('dep/lib/up/dep/lib/x');\n")
    app = node_app(tmp_path, server=server)
    modules = app / "node_modules"
    os.symlink("loop_b", modules / "loop_a")                  # a loop of two
    os.symlink("loop_a", modules / "loop_b")
    os.symlink("cyc", modules / "cyc")                        # a link to itself
    os.symlink(".", modules / "dep" / "self")                 # a cycle through a directory link
    write(modules / "dep" / "lib" / "x.js", "module.exports = 'x';\n")
    os.symlink("../..", modules / "dep" / "lib" / "up")       # back to node_modules
    before = snapshot(app)
    out = tmp_path / "out"
    report = ok(prune(app, out))
    assert {"node_modules/loop_a", "node_modules/loop_b", "node_modules/cyc"} <= \
        warned_files(report, "symlink-outside", app), report["warnings"]
    assert {"dep/index.js", "dep/lib/x.js"} <= kept(report)
    deps_out = out / "node_modules"
    for name in ("loop_a", "loop_b", "cyc"):
        assert not os.path.lexists(deps_out / name)
    for link, target in (("dep/self", "."), ("dep/lib/up", "../..")):
        assert os.readlink(deps_out / link) == target          # kept as the link it is, never unrolled
    assert len(tree_entries(out)) < 30 and links_leaving(out) == []
    assert snapshot(app) == before


def test_symlinks_out_of_the_tree_are_never_read_or_copied(tmp_path: Path) -> None:
    outside = outside_tree(tmp_path)
    dep_index = ("const fs = require('fs');\nconst path = require('path');\nrequire('./leak');\n"
                 "fs.readFileSync(path.join(__dirname, 'data', 'secret.txt'), 'utf8');\n"
                 "fs.readdirSync(path.join(__dirname, 'data'));\n"
                 "fs.readFileSync(path.join(__dirname, 'etc', 'passwd'));\n"
                 "require('./data/secret.js');\nmodule.exports = 1;\n"
                 # absolute paths outside the tree, straight in the code
                 f"fs.readFileSync('{outside}/secret.txt');\nfs.readdirSync('{outside}');\n"
                 "fs.readFileSync('/etc/passwd');\n")
    server = ("require('dep');\nrequire('evil');\nrequire('./conf.json');\nrequire('./lib/x');\n"
              f"require('{outside}/secret.js');\nrequire('../outside/more.js');\n")
    app = node_app(tmp_path, server=server, dep_index=dep_index)
    dep = app / "node_modules" / "dep"
    os.symlink(outside / "secret.js", dep / "leak.js")        # a file link out
    os.symlink(outside, dep / "data")                         # a directory link out
    os.symlink("/etc", dep / "etc")                           # an absolute one
    os.symlink("../../outside", app / "node_modules" / "evil")   # a whole package out (relative)
    os.symlink(outside / "secret.txt", app / "conf.json")     # in the app itself
    os.symlink(outside, app / "lib")
    write(app / "node_modules" / "dep2" / "index.js", "module.exports = 2;\n")
    os.symlink(outside / "package.json", app / "node_modules" / "dep2" / "package.json")   # a manifest out
    (app / "server.js").write_text(server + "require('dep2');\n")
    before = snapshot(app)
    out = tmp_path / "out"
    with no_reads_of(*watched(outside)):
        report = ok(prune(app, out))
        traced = cli("trace", app / "server.js", "--base", app, *NODE, "--format", "json", timeout=TIMEOUT)
        assert_clean(traced)
        assert traced.code == 0, traced.err
    links = {"node_modules/dep/leak.js", "node_modules/dep/data", "node_modules/dep/etc", "node_modules/evil",
             "conf.json", "lib", "node_modules/dep2/package.json"}
    assert "dep2/index.js" in kept(report)
    assert links <= warned_files(report, "symlink-outside", app), report["warnings"]
    for link in links:
        assert not os.path.lexists(out / link), link
    copied = tree_bytes(out)
    assert SECRET.encode() not in copied and b"root:x:0:0" not in copied
    assert links_leaving(out) == []
    assert all(str(outside) not in f and not f.startswith("/etc") for f in traced.json()["files"])
    assert snapshot(app) == before


# -- files that are not what their name says ----------------------------------------------------------
ELF_HEADER = b"\x7fELF\x02\x01\x01" + b"\0" * 9 + b"\x02\x00\x3e\x00\x01\x00\x00\x00"


def test_binary_files_named_js(tmp_path: Path) -> None:
    rng = random.Random(7)
    noise = rng.randbytes(64 << 10)
    no_nul = noise.replace(b"\0", b"\1")
    server = "require('./elf');\nrequire('dep');\nrequire('dep/junk');\nimport('./noise.mjs');\n"
    app = node_app(tmp_path, server=server, dep_index=noise)
    write(app / "elf.js", ELF_HEADER + rng.randbytes(4096))
    write(app / "noise.mjs", no_nul)
    write(app / "node_modules" / "dep" / "junk.js", b"#!" + no_nul)
    out = tmp_path / "out"
    report = ok(prune(app, out))
    assert {"elf.js", "node_modules/dep/index.js"} <= warned_files(report, "binary-source", app)
    assert {"dep/index.js", "dep/junk.js"} <= kept(report)
    for rel in ("elf.js", "noise.mjs", "node_modules/dep/index.js", "node_modules/dep/junk.js"):
        assert (out / rel).read_bytes() == (app / rel).read_bytes(), rel      # copied, never altered


def test_source_with_invalid_utf8_and_nul_bytes(tmp_path: Path) -> None:
    """Node runs these (a NUL in a comment or string is valid JS; bad UTF-8 decodes to U+FFFD):
    the requires around them are still found, and a file that is mostly NULs is a warning."""
    source = (b"require('./a');\n// caf\xe9 \xff\xfe\xc3\x28\n"
              b"const s = '\xed\xa0\x80 \xf8\x88\x80\x80\x80';\nrequire('./b');\n"
              b"/*" + b"pad " * 3000 + b"*/\nconst t = '\0\0';\n// \0\0\0\nrequire('./c');\n")
    app = node_app(tmp_path, server="require('dep');\nrequire('./nul');\n", dep_index=source)
    for name in ("a", "b", "c"):
        write(app / "node_modules" / "dep" / f"{name}.js", f"module.exports = '{name}';\n")
    write(app / "nul.js", b"\0" * 100 + b"\nrequire('dep/a');\n")
    report = ok(analyze(app))
    assert {"dep/a.js", "dep/b.js", "dep/c.js"} <= kept(report)
    assert "nul.js" in warned_files(report, "binary-source", app)


def test_warnings_in_text_mode_name_the_file_and_line(tmp_path: Path) -> None:
    app = node_app(tmp_path, server="require('dep');\nrequire('missing-pkg');\nrequire('./broken');\n",
                   dep_manifest=b'{\n  "name": "dep",\n  "main": index.js\n}\n')
    write(app / "broken.js", "module.exports = 1;\n\nconst x = ;\n")
    result = cli("analyze", app, *NODE, "--format", "text")
    assert_clean(result)
    assert result.code == 0, result.err
    lines = result.err.splitlines()
    assert lines[0].startswith("warnings: ")
    assert f"  {app}/server.js:2: cannot resolve 'missing-pkg'" in lines
    assert any(line.startswith(f"  {app}/broken.js:3: syntax error") for line in lines), lines
    bad = [line for line in lines if line.startswith(f"  {app}/node_modules/dep/package.json")]
    assert bad and ("line 3" in bad[0] or bad[0].startswith(f"  {app}/node_modules/dep/package.json:3:")), lines


@pytest.mark.parametrize("escape", ["\\u{110000}", "\\u{FFFFFFFFFF}", "\\u{0000000000000000000041}", "\\uD800",
                                    "\\uDCff", "\\x", "\\u{}", "\\u{10FFFF}"])
def test_escapes_that_are_not_characters(tmp_path: Path, escape: str) -> None:
    """String escapes past U+10FFFF are a SyntaxError to Node; to the scan, only a string it
    cannot know. The rest of the file is still scanned."""
    source = (f"const s = '{escape}';\nconst t = `${{__dirname}}/{escape}`;\nrequire('./x{escape}');\n"
              f"require(__dirname + '/{escape}');\nrequire('./after');\n")
    app = node_app(tmp_path, dep_index=source)
    write(app / "node_modules" / "dep" / "after.js", "module.exports = 1;\n")
    report = ok(analyze(app))
    assert "dep/after.js" in kept(report)


# -- depth and size -----------------------------------------------------------------------------------
DEEP_SOURCES = {
    "parens-5000": "const x = " + "(" * 5000 + "1" + ")" * 5000 + ";\n",
    "require-parens-5000": "require(" + "(" * 5000 + "'./a'" + ")" * 5000 + ");\n",
    "concat-100k": "const p = __dirname" + " + '/x'" * 100_000 + ";\n",
    "require-concat-100k": "require('./a'" + " + ''" * 100_000 + ");\n",
    "join-nested-3000": "const path = require('path');\nconst p = " + "path.join(" * 3000 + "__dirname"
                        + ", 'x')" * 3000 + ";\n",
    "arrays-5000": "const a = " + "[" * 5000 + "]" * 5000 + ";\n",
    "calls-5000": "f" + "(g" * 5000 + ")" * 5000 + ";\n",
    "arrows-3000": "const f = " + "() => " * 3000 + "require('./a');\n",
    "ternary-5000": "const t = " + "c ? './a' : " * 5000 + "'./b';\nrequire(t);\n",
    "templates-1000": "const u = " + "`${" * 1000 + "__dirname" + "}`" * 1000 + ";\n",
    "members-100k": "const m = a" + ".b" * 100_000 + ";\n",
    "blocks-5000": "{" * 5000 + "}" * 5000 + "\n",
    "unclosed-5000": "(" * 5000 + "[" * 5000 + "{" * 5000 + "\n",
}


@pytest.mark.parametrize("case", list(DEEP_SOURCES))
def test_deeply_nested_expressions(tmp_path: Path, case: str) -> None:
    """The scan finishes, and the code after the deep expression is still scanned."""
    source = DEEP_SOURCES[case] + "\nrequire('./after');\n"
    app = node_app(tmp_path, dep_index=source)
    for name in ("a", "b", "after"):
        write(app / "node_modules" / "dep" / f"{name}.js", f"module.exports = '{name}';\n")
    write(app / "deep.js", source)                   # in the app too (syntax errors are reported there)
    (app / "server.js").write_text("require('dep');\nrequire('./deep');\n")
    write(app / "after.js", "module.exports = 1;\n")
    report = ok(analyze(app, timeout=DEEP_TIMEOUT))
    if not case.startswith("unclosed"):
        assert "dep/after.js" in kept(report)


def test_require_cycles_and_a_chain_of_3000_files(tmp_path: Path) -> None:
    app = node_app(tmp_path, server="require('dep/a');\nrequire('chain');\nrequire('p0');\n")
    dep = app / "node_modules" / "dep"
    write(dep / "a.js", "require('./b');\nrequire('./a');\nmodule.exports = 'a';\n")
    write(dep / "b.js", "require('./a');\nrequire('dep/b');\nmodule.exports = 'b';\n")
    chain = app / "node_modules" / "chain"
    write(chain / "package.json", json.dumps({"name": "chain", "main": "f0.js"}))
    for i in range(3000):
        write(chain / f"f{i}.js", f"require('./f{i + 1}');\nrequire('./f{max(i - 1, 0)}');\n" if i < 2999
              else "require('./f0');\n")
    # packages nested 60 deep, each requiring the next from its own node_modules
    here = app / "node_modules"
    for i in range(60):
        write(here / f"p{i}" / "index.js", f"require('p{i + 1}');\nrequire('p0');\n" if i < 59 else "module.exports = 1;\n")
        here = here / f"p{i}" / "node_modules"
    report = ok(analyze(app, timeout=120))
    deps_kept = kept(report)
    assert {"dep/a.js", "dep/b.js"} <= deps_kept
    assert {f"chain/f{i}.js" for i in range(3000)} <= deps_kept
    assert "/node_modules/".join(f"p{i}" for i in range(60)) + "/index.js" in deps_kept
    why = cli("why", app, *NODE, "chain/f2999.js", "--format", "json", timeout=120)
    assert_clean(why)
    assert why.code == 0, why.err
    assert len(why.json()["chain"]) == 3001                  # server.js, then f0 ... f2999


# -- special and unreadable files ---------------------------------------------------------------------
def test_fifos_named_like_modules_do_not_hang(tmp_path: Path) -> None:
    app = node_app(tmp_path, server="require('./fifo');\nrequire('dep/pipe');\nrequire('fifopkg');\n")
    os.mkfifo(app / "fifo.js")
    os.mkfifo(app / "node_modules" / "dep" / "pipe.js")
    write(app / "node_modules" / "fifopkg" / "index.js", "module.exports = 1;\n")
    os.mkfifo(app / "node_modules" / "fifopkg" / "package.json")    # read by the resolver, if anything
    special = {"fifo.js", "node_modules/dep/pipe.js", "node_modules/fifopkg/package.json"}
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(app / "node_modules" / "dep" / "sock.js"))
        special.add("node_modules/dep/sock.js")
        try:                                   # /dev/zero named like a module: reading it never ends
            os.mknod(app / "node_modules" / "dep" / "zero.js", 0o644 | stat.S_IFCHR, os.makedev(1, 5))
            special.add("node_modules/dep/zero.js")
        except PermissionError:
            pass
        (app / "server.js").write_text("require('./fifo');\nrequire('dep/pipe');\nrequire('fifopkg');\n"
                                       "require('dep/sock');\nrequire('dep/zero');\n")
        out = tmp_path / "out"
        report = ok(prune(app, out, timeout=60))
    assert warned_files(report, "special-file", app) == special
    assert "fifopkg/index.js" in kept(report)
    for rel in special:
        assert not os.path.lexists(out / rel)


@pytest.fixture
def world_readable_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="microprune-node-nobody-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
def test_unreadable_files_as_an_unprivileged_user(world_readable_dir: Path) -> None:
    """chmod 000 means nothing to root: run as nobody."""
    app = node_app(world_readable_dir, server="require('dep');\nrequire('dep2');\n")
    write(app / "node_modules" / "dep2" / "package.json", json.dumps({"name": "dep2", "main": "main.js"}))
    write(app / "node_modules" / "dep2" / "main.js", "module.exports = 2;\n")
    for path in [world_readable_dir, *world_readable_dir.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    (app / "node_modules" / "dep" / "index.js").chmod(0o000)          # required: cannot be read
    (app / "node_modules" / "dep2" / "package.json").chmod(0o000)     # the resolver cannot read it
    locked = app / "node_modules" / "locked"
    locked.mkdir()
    locked.chmod(0o000)                                                # cannot be listed
    out = world_readable_dir / "out"
    out.mkdir()
    out.chmod(0o777)
    result = cli("analyze", app, *NODE, "--format", "json", user="nobody", timeout=TIMEOUT)
    report = ok(result)
    assert "node_modules/dep/index.js" in warned_files(report, "unreadable", app)
    assert "node_modules/locked" in warned_files(report, "unreadable-dir", app)
    assert "node_modules/dep2/package.json" in warned_files(report, "bad-package-json", app)
    pruned = cli("prune", app, *NODE, "--out", out / "tree", user="nobody", timeout=TIMEOUT)
    assert_clean(pruned)
    assert pruned.code == 1
    assert pruned.err.startswith("microprune: error:") and "index.js" in pruned.err
    assert list(out.iterdir()) == []


def test_names_that_are_not_utf8(tmp_path: Path) -> None:
    dep_index = "const fs = require('fs');\nconst path = require('path');\n" \
                "fs.readdirSync(path.join(__dirname, 'locales'));\n"
    app = node_app(tmp_path, dep_index=dep_index)
    odd_app = os.fsdecode(b"caf\xe9-notes.txt")
    odd_locale = os.fsdecode(b"\xff\xfe.json")
    odd_package = os.fsdecode(b"p\xe9kg")
    write(app / odd_app, "app file")
    write(app / "node_modules" / "dep" / "locales" / odd_locale, "{}")
    write(app / "node_modules" / "dep" / "locales" / "en.json", "{}")
    write(app / "node_modules" / odd_package / "package.json", json.dumps({"name": "pekg"}))
    write(app / "node_modules" / odd_package / "index.js", "module.exports = 1;\n")
    (app / "server.js").write_text("require('dep');\n")
    out = tmp_path / "out"
    for fmt in ("text", "json"):
        result = cli("prune", app, *NODE, "--out", out, "--force", "--format", fmt, timeout=TIMEOUT)
        assert_clean(result)
        assert result.code == 0, result.err
    assert (out / odd_app).read_text() == "app file"
    assert (out / "node_modules" / "dep" / "locales" / odd_locale).read_text() == "{}"
    assert not (out / "node_modules" / odd_package).exists()
    assert "\\\\xff\\\\xfe.json" in result.out                     # shown escaped, JSON-escaped
    analyzed = cli("analyze", app, *NODE, timeout=TIMEOUT)
    assert_clean(analyzed)
    assert analyzed.code == 0, analyzed.err


def test_paths_longer_than_path_max(tmp_path: Path) -> None:
    """A tree deeper than PATH_MAX (4096 bytes) can be made with *at() calls: a warning, no crash."""
    dep_index = "require('fs').readdirSync(__dirname + '/deep');\nrequire('./deep/x');\n"
    app = node_app(tmp_path, dep_index=dep_index)
    fd = os.open(app / "node_modules" / "dep", os.O_RDONLY)
    try:
        for name in ["deep", *["d" * 200] * 25]:
            os.mkdir(name, dir_fd=fd)
            inner = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
            if name == "deep":
                write(app / "node_modules" / "dep" / "deep" / "x.js", "module.exports = 1;\n")
        leaf = os.open("leaf.js", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.close(leaf)
    finally:
        os.close(fd)
    out = tmp_path / "out"
    report = ok(prune(app, out))
    assert warnings(report, "unreadable") or warnings(report, "unreadable-dir"), report["warnings"]
    assert "dep/deep/x.js" in kept(report)
    assert (out / "node_modules" / "dep" / "deep" / "x.js").is_file()


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry))
    return members


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_killed_run_leaves_no_scan_workers_behind(tmp_path: Path) -> None:
    """SIGKILL (the OOM killer, a CI timeout) cannot be caught, but the forked scan workers must
    not outlive the run: nothing would ever reap them."""
    body = "".join(f"const p{i} = require('path').join(__dirname, 'data', 'f{i}.txt');\n" for i in range(600))
    app = node_app(tmp_path, dep_index="".join(f"require('./m{i}');\n" for i in range(400)))
    for i in range(400):
        write(app / "node_modules" / "dep" / f"m{i}.js", body)
    command = [sys.executable, "-m", "microprune", "analyze", str(app), *NODE, "--format", "json"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, "MICROPRUNE_JOBS": "2"})
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None and len(_group_members(proc.pid)) < 2:
            time.sleep(0.02)
        if proc.poll() is not None:
            pytest.skip("the run finished before its workers could be seen")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _group_members(proc.pid):
            time.sleep(0.05)
        left = _group_members(proc.pid)
        assert left == [], f"scan workers still running after the run was killed: {left}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)      # the group this test started, whatever is left of it
        proc.wait(timeout=10)


# -- OUT and APP --------------------------------------------------------------------------------------
def test_prune_refuses_a_non_empty_out_without_force(tmp_path: Path) -> None:
    app = node_app(tmp_path)
    out = tmp_path / "out"
    write(out / "precious.txt", "do not delete")
    before = snapshot(out)
    result = prune(app, out)
    assert_clean(result)
    assert result.code == 1
    assert result.err.startswith("microprune: error:") and "not empty" in result.err and "--force" in result.err
    assert result.err.count("\n") == 1 and result.out == ""
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app", "out"]       # no staging left behind
    forced = ok(prune(app, out, "--force"))
    assert forced["command"] == "prune"
    assert not (out / "precious.txt").exists() and (out / "node_modules" / "dep" / "index.js").is_file()


@pytest.mark.parametrize("where", ["node_modules/out", "node_modules/dep/out", "node_modules"])
def test_out_inside_node_modules_is_refused(tmp_path: Path, where: str) -> None:
    app = node_app(tmp_path)
    before = snapshot(app)
    result = prune(app, app / where, "--force")
    assert_clean(result)
    assert result.code == 1, result.err
    assert result.err.startswith("microprune: error: --out")
    assert snapshot(app) == before


def test_app_is_unchanged_by_prune_with_out_inside_it(tmp_path: Path) -> None:
    outside = outside_tree(tmp_path)
    app = node_app(tmp_path, server="require('dep');\nrequire('./lib/util');\n")
    write(app / "lib" / "util.js", "module.exports = 1;\n")
    (app / "lib" / "util.js").chmod(0o751)
    os.symlink("util.js", app / "lib" / "alias.js")
    os.symlink(outside, app / "node_modules" / "dep" / "data")
    write(app / "node_modules" / "dep" / "unused.js", "module.exports = 2;\n")
    before = snapshot(app)
    out = app / "dist"
    for _ in range(2):                                    # the second run must not copy the first OUT
        report = ok(prune(app, out, "--force"))
        assert not [f for f in report["files"] if f["path"].startswith("dist")]
    after = snapshot(app)
    assert {k: v for k, v in after.items() if not bytes.fromhex(k).startswith(b"dist")} == before
    assert (out / "lib" / "util.js").stat().st_mode & 0o777 == 0o755          # execute bits kept
    assert os.readlink(out / "lib" / "alias.js") == "util.js"
    assert not (out / "dist").exists() and not (out / "node_modules" / "dep" / "unused.js").exists()


def _shared_layout(root: Path) -> tuple[Path, Path]:
    """An app whose node_modules is a link to a shared one (a monorepo, a mounted volume)."""
    shared = root / "shared" / "node_modules"
    (shared / "dep").mkdir(parents=True)
    (shared / "dep" / "package.json").write_text(json.dumps({"name": "dep", "version": "1.0.0"}))
    (shared / "dep" / "index.js").write_text("module.exports = 'from the shared dep';\n")
    (shared / "unused").mkdir()
    (shared / "unused" / "package.json").write_text(json.dumps({"name": "unused", "version": "1.0.0"}))
    app = root / "app"
    app.mkdir()
    (app / "package.json").write_text(json.dumps({"name": "app", "main": "index.js",
                                                  "dependencies": {"dep": "1.0.0"}}))
    (app / "index.js").write_text("console.log(require('dep'));\n")
    return app, shared


@pytest.mark.parametrize("deps", ["found", "the link's target"])
def test_a_node_modules_that_is_a_link_to_a_shared_one(deps: str, tmp_path: Path) -> None:
    app, shared = _shared_layout(tmp_path)
    os.symlink(shared, app / "node_modules")
    out = tmp_path / "out"
    args = ["--deps", shared] if deps != "found" else []
    result = run_cli("prune", app, *args, "--out", out, "--smoke", "node index.js")
    assert result.code == 0, result.out + result.err
    assert (out / "node_modules" / "dep" / "index.js").is_file() and not (out / "node_modules").is_symlink()
    assert not (out / "node_modules" / "unused").exists()


def test_a_node_modules_link_to_anything_else_is_refused(tmp_path: Path) -> None:
    app, _ = _shared_layout(tmp_path)
    os.symlink("/", app / "node_modules")                       # never walked as the deps
    result = run_cli("analyze", app)
    assert result.code == 2, result.out + result.err
    assert "which is not a node_modules directory: pass --deps" in result.err
    assert_no_traceback(result)


def test_an_own_node_modules_beside_deps_elsewhere_is_left_out_and_said(tmp_path: Path) -> None:
    app, shared = _shared_layout(tmp_path)
    (app / "node_modules" / "stray").mkdir(parents=True)
    (app / "node_modules" / "stray" / "index.js").write_text("module.exports = 1;\n")
    out = tmp_path / "out"
    result = run_cli("prune", app, "--deps", shared, "--out", out, "--format", "json")
    assert result.code == 0, result.err
    assert "other-node-modules" in {w["code"] for w in result.json()["warnings"]}
    assert not (out / "node_modules" / "stray").exists() and (out / "node_modules" / "dep" / "index.js").is_file()
