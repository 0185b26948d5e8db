"""OpenWatch: the kernel's record of files opened under some directories, by any process."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from microprune.watch import OpenWatch


def test_opens_by_a_child_process_are_seen_and_nothing_else(tmp_path: Path) -> None:
    watched, other = tmp_path / "deps", tmp_path / "elsewhere"
    (watched / "pkg").mkdir(parents=True)
    other.mkdir()
    for path in (watched / "pkg" / "read.dat", watched / "pkg" / "stat-only.dat", watched / "untouched.dat",
                 other / "outside.dat"):
        path.write_text("x")
    script = ("import os, sys\n"
              "for p in sys.argv[1:3]: open(p).close()\n"
              "os.stat(sys.argv[3]); os.listdir(sys.argv[4])\n")
    with OpenWatch([watched, watched / "pkg"]) as watch:
        subprocess.run([sys.executable, "-c", script, str(watched / "pkg" / "read.dat"), str(other / "outside.dat"),
                        str(watched / "pkg" / "stat-only.dat"), str(watched / "pkg")], check=True)
    assert watch.available and not watch.unwatched and not watch.overflowed
    assert watch.opened == {watched / "pkg" / "read.dat"}


def test_a_directory_that_cannot_be_watched_is_counted(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "link")
    with OpenWatch([real, tmp_path / "link", tmp_path / "missing"]) as watch:
        (real / "f").write_text("x")
    assert watch.unwatched == 2                 # a link is never watched through; a missing one cannot be
    assert watch.opened == {real / "f"}
