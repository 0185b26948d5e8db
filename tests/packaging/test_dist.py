"""The wheel and sdist build with `python -m build`, hold what they must (both import packages,
the analyzers' data files, no top-level `analyzers`), ask only for what every user needs (Node's
parser and the docker SDK are extras), and the wheel installs and runs with pipx.
Network: the build backend and the dependencies come from PyPI."""
from __future__ import annotations

import email.parser
import re
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.cases import FIXTURES, copy_case

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(out), str(ROOT)],
                          capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def only(directory: Path, pattern: str) -> Path:
    found = sorted(directory.glob(pattern))
    assert len(found) == 1, found
    return found[0]


def test_the_wheel_holds_both_packages_and_their_data(dist: Path) -> None:
    names = set(zipfile.ZipFile(only(dist, "*.whl")).namelist())
    for required in ("microprune/cli.py", "microprune/htmlreport.py", "microprune_analyzers/python/hints.toml",
                     "microprune_analyzers/node/hints.toml", "microprune_analyzers/node/builtins.txt",
                     "microprune_analyzers/python/profile_hook/sitecustomize.py",
                     "microprune_analyzers/node/profile_hook/record.cjs"):
        assert required in names, required
    assert not any(n.startswith(("analyzers/", "tests/", "fixtures/", "bench/")) for n in names)


def test_requirements_are_per_language(dist: Path) -> None:
    with zipfile.ZipFile(only(dist, "*.whl")) as wheel:
        meta_name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.parser.HeaderParser().parsestr(wheel.read(meta_name).decode())
    requires = meta.get_all("Requires-Dist") or []
    always = [r for r in requires if "extra ==" not in r]
    assert not [r for r in always if r.startswith(("tree-sitter", "docker"))], always
    # what every user needs, and nothing else: the CLI, its text output, TOML before 3.11
    assert {re.split(r"[<>=;! \[]", r, maxsplit=1)[0] for r in always} == {"click", "rich", "tomli"}, always
    assert any(r.startswith("tree-sitter") and "extra == 'node'" in r.replace('"', "'") for r in requires), requires
    assert any(r.startswith("docker") and "extra == 'docker'" in r.replace('"', "'") for r in requires), requires


def test_the_sdist_has_the_tests_and_fixtures(dist: Path) -> None:
    with tarfile.open(only(dist, "*.tar.gz")) as sdist:
        names = sdist.getnames()
    top = names[0].split("/")[0]
    for required in ("pyproject.toml", "README.md", "src/microprune/cli.py", "analyzers/microprune_analyzers/__init__.py",
                     "tests/conftest.py", "fixtures/python/basic/case.toml", "schema/microprune-output.schema.json"):
        assert f"{top}/{required}" in names, required


def test_pipx_installs_the_wheel_and_it_runs(dist: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PIPX_HOME": str(tmp_path / "pipx"), "PIPX_BIN_DIR": str(tmp_path / "bin"),
           "PIPX_MAN_DIR": str(tmp_path / "man")}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([sys.executable, "-m", "pipx", "install", str(only(dist, "*.whl"))], env=env,
                          capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    tool = tmp_path / "bin" / "microprune"
    version = subprocess.run([str(tool), "--version"], capture_output=True, text=True, timeout=60, check=False)
    assert version.returncode == 0 and "microprune, version" in version.stdout
    case = copy_case(FIXTURES / "python" / "basic", tmp_path)
    pruned = subprocess.run([str(tool), "prune", str(case / "app"), "--deps", str(case / "deps"),
                             "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=300, check=False)
    assert pruned.returncode == 0, pruned.stderr
    assert (tmp_path / "out" / "site-packages" / "greet" / "__init__.py").is_file()
    # no Node parser in a plain install: a Node app gets one clear line, not a traceback
    node = copy_case(FIXTURES / "node" / "basic", tmp_path / "node")
    refused = subprocess.run([str(tool), "analyze", str(node / "app"), "--deps", str(node / "deps")],
                             capture_output=True, text=True, timeout=300, check=False)
    assert refused.returncode == 1
    assert "pip install 'microprune[node]'" in refused.stderr and "Traceback" not in refused.stderr
