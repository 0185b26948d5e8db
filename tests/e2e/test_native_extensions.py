"""A real C extension built here (gcc, with debug info) that needs a library in <pkg>.libs/."""
from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from microprune.image.layer import Layer
from tests.cli.helpers import run_cli

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("strip") is None,
                                reason="needs gcc and binutils")

EXTENSION = r"""
#include <Python.h>
int helper_answer(void);
static PyObject *answer(PyObject *self, PyObject *args) { return PyLong_FromLong(helper_answer()); }
static PyMethodDef methods[] = {{"answer", answer, METH_NOARGS, ""}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fast", NULL, -1, methods};
PyMODINIT_FUNC PyInit__fast(void) {
    PyObject *m = PyModule_Create(&module);
    /* imports a sibling by name, as Cython modules do */
    if (m && !PyImport_ImportModule("fastpkg.support")) return NULL;
    return m;
}
"""


def build(deps: Path) -> None:
    package, libs = deps / "fastpkg", deps / "fastpkg.libs"
    package.mkdir(parents=True)
    libs.mkdir()
    (package / "__init__.py").write_text("from ._fast import answer\n")
    (package / "support.py").write_text("READY = True\n")
    (package / "unused_tool.py").write_text("import does_not_exist\n")
    (deps / "helper.c").write_text("int helper_answer(void) { return 42; }\n")
    (deps / "fast.c").write_text(EXTENSION)
    subprocess.run(["gcc", "-g", "-shared", "-fPIC", "-o", str(libs / "libhelper-1a2b.so"), str(deps / "helper.c")],
                   check=True)
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    subprocess.run(["gcc", "-g", "-shared", "-fPIC", f"-I{sysconfig.get_paths()['include']}", str(deps / "fast.c"),
                    "-o", str(package / f"_fast{suffix}"), f"-L{libs}", "-lhelper-1a2b",
                    "-Wl,-rpath,$ORIGIN/../fastpkg.libs"], check=True)
    for scratch in ("helper.c", "fast.c"):
        (deps / scratch).unlink()
    info = deps / "fastpkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fastpkg\nVersion: 1.0\n")
    (info / "RECORD").write_text("".join(f"{p.relative_to(deps).as_posix()},,\n" for p in sorted(deps.rglob("*"))
                                         if p.is_file()))


def test_extension_libs_and_debug_info(tmp_path: Path) -> None:
    deps, app = tmp_path / "deps", tmp_path / "app"
    build(deps)
    app.mkdir()
    (app / "app.py").write_text("import fastpkg\nprint(fastpkg.answer())\n")
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    original_ext = (deps / "fastpkg" / f"_fast{suffix}").read_bytes()
    original_lib = (deps / "fastpkg.libs" / "libhelper-1a2b.so").read_bytes()
    out = tmp_path / "out"
    result = run_cli("prune", app, "--deps", deps, "--out", out, "--format", "json")
    assert result.code == 0, result.err
    report = result.json()
    pruned = out / "site-packages"
    kept = {f["path"]: f["reasons"] for f in report["files"] if f["keep"] and f["root"] == "deps"}
    assert "native" in kept["fastpkg.libs/libhelper-1a2b.so"]
    assert "fastpkg/support.py" in kept                       # named by the compiled module
    assert report["strip"]["stripped"] == 1
    assert len((pruned / "fastpkg" / f"_fast{suffix}").read_bytes()) < len(original_ext)
    assert (pruned / "fastpkg.libs" / "libhelper-1a2b.so").read_bytes() == original_lib   # never touched
    run = subprocess.run([sys.executable, "-S", str(out / "app" / "app.py")], capture_output=True, text=True,
                         env={"PYTHONPATH": str(pruned)}, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "42"
    none = run_cli("prune", app, "--deps", deps, "--out", tmp_path / "out2", "--strip", "none", "--format", "json")
    assert none.json()["strip"]["policy"] == "none"
    assert (tmp_path / "out2" / "site-packages" / "fastpkg" / f"_fast{suffix}").read_bytes() == original_ext


def test_the_runtime_layer_takes_only_shared_objects_from_elf_headers(tmp_path: Path) -> None:
    """A header that names `shadow` with RUNPATH pointing at a folder of text files (as /etc)
    must not carry that file into an image: only an ELF shared object is a library."""
    from microprune.image.hostfs import HostFiles

    host = tmp_path / "host-etc"
    host.mkdir()
    (host / "shadow").write_text("root:secret-hash:19000:0:99999:7:::\n")
    fake = tmp_path / "fake"
    fake.mkdir()
    (tmp_path / "x.c").write_text("int f(void) { return 1; }\n")
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(fake / "shadow"), str(tmp_path / "x.c")], check=True)
    ext = tmp_path / "ext.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(ext), str(tmp_path / "x.c"), "-Wl,--no-as-needed",
                    f"-L{fake}", "-l:shadow", f"-Wl,-rpath,{host}"], check=True)
    with open(tmp_path / "layer.tar", "wb") as handle:
        fs = HostFiles(Layer(handle), tmp_path / "scratch")
        needed = fs.needed(str(ext), [])
    assert str(host / "shadow") not in needed and "shadow" in fs.missing, needed
