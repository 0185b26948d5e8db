"""Hardlinks inside the tree stay hardlinks: in OUT (one inode, as in the input) and in the
image (one file plus LNKTYPE members that follow it), and the image still runs."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.cli.helpers import run_cli
from tests.image.helpers import build, run_env, write_python_app
from tests.image.ocivalidate import validate

ALIASES = ("core_alias.py", "more/core_copy.py")


def hardlinked_app(root: Path) -> tuple[Path, Path]:
    """The tiny Python app whose deps hold greet/core.py twice more, as hardlinks (as some
    installers and deduplicating tools leave them), each imported."""
    app, deps = write_python_app(root)
    package = deps / "greet"
    (package / "more").mkdir()
    (package / "more" / "__init__.py").write_text("")
    for alias in ALIASES:
        os.link(package / "core.py", package / alias)
    (package / "__init__.py").write_text("from .core import hello\nfrom . import core_alias\n"
                                         "from .more import core_copy\n")
    return app, deps


def test_prune_keeps_hardlinks_as_one_inode(tmp_path: Path) -> None:
    app, deps = hardlinked_app(tmp_path / "src")
    out = tmp_path / "out"
    result = run_cli("prune", app, "--deps", deps, "--out", out, "--bytecode", "none")
    assert result.code == 0, result.err
    copies = [out / "site-packages" / "greet" / name for name in ("core.py", *ALIASES)]
    inodes = {p.stat().st_ino for p in copies}
    assert len(inodes) == 1 and copies[0].stat().st_nlink == 3
    # ... and OUT's inode is its own: the input is never linked into the output
    assert copies[0].stat().st_ino != (deps / "greet" / "core.py").stat().st_ino
    assert (deps / "greet" / "core.py").stat().st_nlink == 3


def test_the_image_holds_one_file_and_hardlinks_to_it_and_runs(tmp_path: Path) -> None:
    app, deps = hardlinked_app(tmp_path / "src")
    archive = tmp_path / "app.tar"
    report = build(app, archive, deps=deps)
    image = validate(archive)
    deps_layer = image.layers[1]
    site = "app/site-packages/greet"            # the Python layout inside the image
    names = [f"{site}/core.py", *(f"{site}/{alias}" for alias in ALIASES)]
    members = [deps_layer.member(n) for n in names]
    assert all(m is not None for m in members), sorted(deps_layer.names())
    first = min(names)                           # the link target comes first in the layer
    kinds = {m.name: (m.kind, m.linkname) for m in members if m is not None}
    assert kinds[first] == ("file", "")
    assert all(kinds[n] == ("hardlink", first) for n in names if n != first), kinds
    python = (report["image"]["entrypoint"] or report["image"]["cmd"])[0]
    proc = subprocess.run([sys.executable, "-m", "microprune", "run", str(archive), "--timeout", "120", "--",
                           python, "-c", "import greet, greet.core_alias as a, greet.more.core_copy as b; "
                           "print(a.hello() == b.hello() == greet.hello())"],
                          capture_output=True, text=True, timeout=300, env=run_env(tmp_path / "scratch"),
                          check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("True"), proc.stdout
