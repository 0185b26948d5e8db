"""Which Python the deps were installed for, read from the deps themselves; and the local
interpreter of that version, as the interpreter reports itself (not a version manager's shim)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from microprune_analyzers.python.runtime import _real_interpreter
from tests.cli.helpers import basic_app, run_cli

HOST = f"{sys.version_info[0]}.{sys.version_info[1]}"


def _dist(deps: Path, name: str, tag: str) -> None:
    info = deps / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "WHEEL").write_text(f"Wheel-Version: 1.0\nGenerator: bdist_wheel\nRoot-Is-Purelib: false\nTag: {tag}\n")


def _target(app: Path, deps: Path) -> dict:
    result = run_cli("analyze", app, "--deps", deps, "--format", "json")
    assert result.code == 0, result.err
    return result.json()


def test_an_abi3_wheel_is_no_clue_to_the_version(tmp_path: Path) -> None:
    """`cp310-abi3` means 3.10 or later: protobuf and wcwidth made microprune take 3.10 for deps
    installed by 3.11, then start a python3.10 that the smoke could not run."""
    app, deps = basic_app(tmp_path)
    _dist(deps, "protobuf", "cp310-abi3-manylinux2014_x86_64")
    report = _target(app, deps)
    assert report["target"]["python_version_source"] == "host interpreter", report["target"]
    assert report["target"]["python_version"] == HOST
    assert any(w["code"] == "target-python" for w in report["warnings"])


def test_an_exact_wheel_tag_names_the_version(tmp_path: Path) -> None:
    app, deps = basic_app(tmp_path)
    _dist(deps, "protobuf", "cp310-abi3-manylinux2014_x86_64")
    _dist(deps, "markupsafe", "cp312-cp312-manylinux_2_17_x86_64")
    target = _target(app, deps)["target"]
    assert (target["python_version"], target["python_version_source"]) == ("3.12", "wheel tags")


def test_bytecode_caches_name_the_version(tmp_path: Path) -> None:
    app, deps = basic_app(tmp_path)
    _dist(deps, "protobuf", "cp310-abi3-manylinux2014_x86_64")
    cache = deps / "greet" / "__pycache__"
    cache.mkdir()
    (cache / "core.cpython-312.pyc").write_bytes(b"\0" * 16)
    target = _target(app, deps)["target"]
    assert (target["python_version"], target["python_version_source"]) == ("3.12", "bytecode caches")


def _script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return str(path)


def test_a_shim_is_resolved_to_the_interpreter_it_runs(tmp_path: Path) -> None:
    version = (sys.version_info[0], sys.version_info[1])
    shim = _script(tmp_path / f"python{HOST}", f'exec {sys.executable} "$@"')
    assert _real_interpreter(shim, version) == Path(os.path.realpath(sys.executable))


@pytest.mark.parametrize("body", [
    f'exec {sys.executable} "$@"',                              # a shim for another version
    'echo "pyenv: python3.10: command not found" >&2; exit 127',  # a version that is not installed
    "echo 3 10 /nowhere/python3.10",                             # a liar
])
def test_a_shim_for_the_wrong_or_no_interpreter_is_refused(tmp_path: Path, body: str) -> None:
    shim = _script(tmp_path / "python3.10", body)
    wanted = (3, 10) if sys.version_info[:2] != (3, 10) else (3, 9)
    assert _real_interpreter(shim, wanted) is None
