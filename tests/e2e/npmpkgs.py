"""Install real packages from npm once per package.json, into a cache directory; serve Node apps.

Like realpkgs.installed for pip: the installed tree (package.json, package-lock.json,
node_modules) lives under MICROPRUNE_TEST_CACHE/npm-apps/<key of the package.json text>, with
npm's download cache in MICROPRUNE_TEST_CACHE/npm. Tests copy it to tmp_path before use.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import urllib.error
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.realpkgs import CACHE, fetch, free_port, serving

needs_node = pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None,
                                reason="needs node and npm on PATH (Node 20+)")


def npm_installed(package_json: dict[str, Any]) -> Path:
    """A directory holding the package.json and its `npm install` (built once, then reused)."""
    text = json.dumps(package_json, indent=2, sort_keys=True) + "\n"
    target = CACHE / "npm-apps" / hashlib.sha256(text.encode()).hexdigest()[:16]
    if (target / ".complete").is_file():
        return target
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    (target / "package.json").write_text(text)
    # --ignore-scripts: no package here needs an install script, and none should run at test time.
    command = ["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error",
               "--update-notifier=false", "--cache", str(CACHE / "npm")]
    proc = subprocess.run(command, cwd=target, capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        pytest.fail(f"npm install in {target} failed:\n{proc.stderr[-3000:]}")
    (target / ".complete").write_text(text)
    return target


def copy_installed(package_json: dict[str, Any], dest: Path) -> Path:
    source = npm_installed(package_json)
    shutil.copytree(source, dest, symlinks=True,
                    ignore=lambda folder, names: [".complete"] if Path(folder) == source else [])
    return dest


def stat_snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """Path -> (mode, size, mtime_ns) of root and everything below it (links not followed)."""
    state = {".": _stat(root)}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            state[path.relative_to(root).as_posix()] = _stat(path)
    return state


def _stat(path: Path) -> tuple[int, int, int]:
    st = path.lstat()
    return st.st_mode, st.st_size, st.st_mtime_ns


def tree_bytes(root: Path) -> int:
    return sum(size for mode, size, _ in stat_snapshot(root).values() if mode & 0o170000 == 0o100000)


def node_modules_visible(app_dir: Path) -> list[Path]:
    """The node_modules folders Node searches from app_dir upwards (HOME is a fresh dir, NODE_PATH unset)."""
    return [folder / "node_modules" for folder in (app_dir, *app_dir.parents)
            if (folder / "node_modules").is_dir()]


def serve_page(app_dir: Path, entry: str, home: Path) -> tuple[int, str]:
    """Run `node <app_dir>/<entry>` (cwd app_dir) on a free 127.0.0.1 port, GET / and stop it.

    pytest.fail (with the server's output) if it exits or does not listen within 30 s.
    """
    port = free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "PORT": str(port),
           "TZ": "UTC", "LANG": "C.UTF-8"}
    with serving(["node", str(app_dir / entry)], app_dir, env, port):
        try:
            return fetch(f"http://127.0.0.1:{port}/")
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode("utf-8", "replace")
