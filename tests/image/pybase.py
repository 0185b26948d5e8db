"""A stand-in for a registry's python image, made from a file: the host's own Python installation
at its own absolute paths, so that `FROM python:3.11-slim` can be built where no registry answers.

Layer 1 ("python"): the interpreter's stdlib directory (without its tests, IDLE, tkinter, the
static library, ensurepip, lib2to3 and every installed package) and the executable, with the
shared libraries they need read from ELF headers (microprune's own HostFiles), /bin/sh with its
libraries (RUN lines and prune's --smoke shims need a shell), pip (copied from the environment
running the tests) in the interpreter's site-packages with `pip`/`pip3` scripts, `python`/`python3`
names, /etc/passwd and /etc/group with root, and a writable /tmp. Layer 2 ("wheels"): /wheels,
the wheels a build may install with `pip install --no-index --find-links /wheels`.

Files keep their host mtimes (so the stdlib's timestamp-checked .pyc stay valid) and the
layers are uncompressed tars: `docker load` reads both, and nothing is spent on gzip.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import BinaryIO

from microprune.image.hostfs import HostFiles
from microprune.image.layer import Layer, LayerDigest
from microprune.image.oci import OCI_LAYER_TAR, Blob, image_config, write_archive

# Not needed to install wheels or run an app; large (test/ alone is 120 MB here).
STDLIB_LEFT_OUT = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "site-packages",
                   "dist-packages"}
PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:65532:65532:app:/nonexistent:/sbin/nologin\n"
GROUP = "root:x:0:\napp:x:65532:\n"
PIP_SCRIPT = """#!{python}
import re
import sys
from pip._internal.cli.main import main
if __name__ == '__main__':
    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])
    sys.exit(main())
"""


def host_python() -> tuple[str, dict[str, str]]:
    """The base interpreter (not a venv's link to it) and its own sysconfig paths."""
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    python = os.path.join(sys.base_prefix, "bin", f"python{version}")
    if not os.access(python, os.X_OK):
        python = os.path.realpath(sys.executable)
    proc = subprocess.run([python, "-I", "-c", "import json, sysconfig; print(json.dumps(sysconfig.get_paths()))"],
                          capture_output=True, text=True, timeout=60, check=True)
    paths: dict[str, str] = json.loads(proc.stdout)
    return python, paths


def python_layer(scratch: Path) -> tuple[Layer, list[str]]:
    """The runtime layer; also the PATH the image's Env names."""
    python, paths = host_python()
    layer = Layer("python")
    host = HostFiles(layer, scratch, strip=False)
    stdlib = Path(paths["stdlib"])
    roots = [stdlib] + ([Path(paths["platstdlib"])] if paths["platstdlib"] != paths["stdlib"] else [])
    elf = [python, "/bin/sh"]
    for root in roots:
        for directory, dirs, files in os.walk(root):
            if Path(directory) == root:
                dirs[:] = [d for d in dirs if d not in STDLIB_LEFT_OUT and not d.startswith("config-")]
            dirs[:] = [d for d in dirs if d not in ("test", "tests", "idle_test")]
            for name in files:
                host_path = os.path.join(directory, name)
                # optimised bytecode is never used here; a distribution's PEP 668 marker would make
                # pip refuse to install (a python image has none)
                if name.startswith("_tkinter") or ".opt-" in name or name == "EXTERNALLY-MANAGED":
                    continue
                if name.endswith(".so"):
                    elf.append(host_path)
                else:
                    host.add(host_path)
    host.add_with_libraries(elf)        # a library the host lacks stays missing, as on the host

    # pip, from the environment running the tests, into the interpreter's own site-packages.
    import pip

    pip_dir = Path(pip.__file__).parent
    purelib, scripts = paths["purelib"], paths["scripts"]
    for source in [pip_dir, *pip_dir.parent.glob("pip-*.dist-info")]:
        for directory, _, files in os.walk(source):
            for name in files:
                if ".opt-" in name:
                    continue
                file = Path(directory, name)
                layer.add_file(f"{purelib}/{file.relative_to(pip_dir.parent)}", file)
    for name in ("pip", "pip3", f"pip{sys.version_info[0]}.{sys.version_info[1]}"):
        layer.add_file(f"{scripts}/{name}", data=PIP_SCRIPT.format(python=python).encode(), executable=True)
    bindir = os.path.dirname(python)
    for name in ("python", "python3"):          # the names a python image has
        if os.path.exists(os.path.join(bindir, name)):
            host.add(os.path.join(bindir, name))
        else:
            layer.add_symlink(f"{scripts}/{name}", python)
    layer.add_file("/etc/passwd", data=PASSWD.encode())
    layer.add_file("/etc/group", data=GROUP.encode())
    layer.add_dir("/tmp", 0o1777)
    # Every directory on the way to the prefix is 0755 (so /root when the host's Python is pyenv's):
    # the README's runtime stage runs as 65532, which must reach the interpreter.
    search = [scripts, bindir, "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    return layer, list(dict.fromkeys(search))


def wheels_layer(wheels: Path) -> Layer:
    layer = Layer("wheels")
    layer.add_dir("/wheels")
    for wheel in sorted(wheels.glob("*.whl")):
        layer.add_file(f"/wheels/{wheel.name}", wheel)
    return layer


def write_python_base(dest: Path, tag: str, wheels: Path, scratch: Path) -> dict[str, object]:
    """The two-layer image as an OCI + docker archive tagged ``tag``; its digests."""
    scratch.mkdir(parents=True, exist_ok=True)
    runtime, path = python_layer(scratch)
    blobs = []
    for layer in (runtime, wheels_layer(wheels)):
        blob = scratch / f"{layer.name}.tar"
        blobs.append(Blob(blob, write_plain(layer, blob), OCI_LAYER_TAR, layer.name))
    config = image_config(blobs, {"Env": [f"PATH={':'.join(path)}", "LANG=C.UTF-8"],
                                  "Cmd": [os.path.basename(host_python()[0])]})
    digests: dict[str, object] = write_archive(dest, blobs, config, tag)
    return digests


def write_plain(layer: Layer, dest: Path) -> LayerDigest:
    """An uncompressed tar of the layer's entries; files keep their host mtime."""
    with open(dest, "wb") as handle:
        out = _Hashing(handle)
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for path in sorted(layer.entries):
                entry = layer.entries[path]
                info = tarfile.TarInfo(path.lstrip("/") + ("/" if entry.kind == "dir" else ""))
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mode = entry.mode
                if entry.kind == "dir":
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                elif entry.kind == "symlink":
                    info.type, info.linkname = tarfile.SYMTYPE, entry.target
                    tar.addfile(info)
                elif entry.kind == "hardlink":
                    info.type, info.linkname = tarfile.LNKTYPE, entry.target.lstrip("/")
                    tar.addfile(info)
                elif entry.data is not None:
                    info.size = len(entry.data)
                    tar.addfile(info, io.BytesIO(entry.data))
                else:
                    assert entry.source is not None
                    with open(entry.source, "rb") as source:
                        st = os.fstat(source.fileno())
                        info.size, info.mtime = st.st_size, int(st.st_mtime)
                        tar.addfile(info, source)
    files = sum(1 for e in layer.entries.values() if e.kind != "dir")
    digest = "sha256:" + out.sha.hexdigest()
    return LayerDigest(digest, out.size, digest, out.size, files)


class _Hashing(io.RawIOBase):
    def __init__(self, handle: BinaryIO) -> None:
        self.handle, self.sha, self.size = handle, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.handle.write(data)
        self.sha.update(data)
        self.size += len(data)
        return len(data)
