"""A synthetic Python app whose deps hold many files: what the HTML report must stay usable with.

bigpkg (a real dist-info with a RECORD) has N modules in 100 subpackages; the app imports
a chain app.py -> bigpkg.sub7.m12 -> bigpkg.sub7.m13, so the page has a why chain to show,
and one unused distribution (junk) is dropped whole.
"""
from __future__ import annotations

import base64
import hashlib
from pathlib import Path

SUBPACKAGES = 100


def _record_line(site: Path, path: Path) -> str:
    data = path.read_bytes()
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path.relative_to(site).as_posix()},sha256={digest},{len(data)}"


def _dist(site: Path, name: str, version: str, files: list[Path], license_line: str) -> None:
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.4\nName: {name}\nVersion: {version}\n{license_line}\n")
    (info / "top_level.txt").write_text(name + "\n")
    lines = [_record_line(site, f) for f in files + [info / "METADATA", info / "top_level.txt"]]
    (info / "RECORD").write_text("\n".join(lines + [f"{info.name}/RECORD,,"]) + "\n")


def make_app(root: Path, files: int = 20_000) -> tuple[Path, Path]:
    app, site = root / "app", root / "deps"
    app.mkdir(parents=True)
    site.mkdir()
    (app / "app.py").write_text("import bigpkg.sub7.m12\nprint(bigpkg.sub7.m12.VALUE)\n")
    written: list[Path] = []
    top = site / "bigpkg"
    top.mkdir()
    (top / "__init__.py").write_text("")
    written.append(top / "__init__.py")
    per = max(1, (files - SUBPACKAGES - 1) // SUBPACKAGES)
    for s in range(SUBPACKAGES):
        sub = top / f"sub{s}"
        sub.mkdir()
        (sub / "__init__.py").write_text("")
        written.append(sub / "__init__.py")
        for m in range(per):
            body = f"VALUE = {m}\n" + "# padding\n" * (m % 40)
            if (s, m) == (7, 12):
                body = "from . import m13\nVALUE = m13.VALUE + 1\n"
            path = sub / f"m{m}.py"
            path.write_text(body)
            written.append(path)
    _dist(site, "bigpkg", "1.0", written, "License-Expression: MIT OR Apache-2.0")
    junk = site / "junk"
    junk.mkdir()
    (junk / "__init__.py").write_text("X = 1\n" * 500)
    _dist(site, "junk", "0.1", [junk / "__init__.py"], "License: BSD")
    return app, site
