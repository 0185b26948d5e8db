"""--base PATH: an image from a file (OCI archive, OCI layout directory, docker-archive) is reused
as it is, its config merged; a hostile base is refused before anything is read into a layer."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.image.conftest import Built, needs_node
from tests.image.helpers import archive_with_layer, build, layer_tar, member
from tests.image.ocivalidate import validate


@needs_node
@pytest.mark.parametrize("form", ["oci-archive", "layout-dir"])
def test_a_base_from_a_file_is_reused_as_is(node_image: Built, tmp_path: Path, form: str) -> None:
    base: Path = node_image.archive
    if form == "layout-dir":
        base = tmp_path / "layout"
        base.mkdir()
        with tarfile.open(node_image.archive) as tar:
            tar.extractall(base, filter="data")
    out = tmp_path / "on-base.tar"
    report = build(node_image.app, out, "--base", str(base), "--env", "EXTRA=1")
    image = report["image"]
    base_layers = validate(node_image.archive).layers
    layers = validate(out).layers
    # the base's layers, byte for byte, then deps and app
    assert [layer.digest for layer in layers[: len(base_layers)]] == [layer.digest for layer in base_layers]
    assert [layer["name"] for layer in image["layers"]][len(base_layers):] == ["deps", "app"]
    config = json.loads(_member(out, "manifest.json"))[0]["Config"]
    container = json.loads(_member(out, config))["config"]
    assert container["Entrypoint"][0] == "node"            # found on the base's PATH
    assert any(e.startswith("PATH=") for e in container["Env"]) and "EXTRA=1" in container["Env"]
    assert container["User"] == "65532:65532"
    # it still runs
    proc = subprocess.run([sys.executable, "-m", "microprune", "run", str(out), "--", "node", "-e",
                           "console.log(require('fs').existsSync('/app/server.js'))"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "true", proc.stderr


@pytest.mark.parametrize("member", ["../escape", "/etc/evil", "link"])
def test_a_hostile_base_is_refused(node_image: Built, tmp_path: Path, member: str) -> None:
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        info = tarfile.TarInfo(member if member != "link" else "index.json")
        if member == "link":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
        else:
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    proc = subprocess.run([sys.executable, "-m", "microprune", "image", str(node_image.app), "--out",
                           str(tmp_path / "x.tar"), "--base", str(evil)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "refused" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.tar").exists() and not (tmp_path / "escape").exists()


def _member(archive: Path, name: str) -> bytes:
    with tarfile.open(archive) as tar:
        handle = tar.extractfile(name)
        assert handle is not None
        return handle.read()


def test_a_base_layer_with_a_link_climbing_out_is_refused(node_image: Built, tmp_path: Path) -> None:
    """A relative link whose target climbs above the image's root (and a file written through it)
    is refused before anything is extracted; absolute links resolve inside the root and stay."""
    layer = layer_tar([member("x", "symlink", target="../../../../../../tmp"), member("x/through-the-link", data=b"x")])
    evil = archive_with_layer(tmp_path / "base.tar", layer)
    proc = subprocess.run([sys.executable, "-m", "microprune", "image", str(node_image.app), "--out",
                           str(tmp_path / "x.tar"), "--base", str(evil)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "climbs out" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "x.tar").exists()
