"""The Python analyzer: imports, data, metadata and native libraries an app reaches.

Detection is cheap; the session (and everything it imports) loads only when a
Python app is opened.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from microprune.analyzer import Request

if TYPE_CHECKING:
    from .session import PythonSession


# A CA bundle the host names for OpenSSL or requests: with it set, httpx and requests read the
# host's file instead of certifi's, so a run here neither records certifi's cacert.pem nor
# fails without it, while an image without the variable needs it.
HOST_CA_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")

class PythonAnalyzer:
    language: ClassVar[str] = "python"

    def detect(self, app_dir: Path) -> bool:
        markers = ("pyproject.toml", "setup.py", "setup.cfg", "requirements.txt", "Pipfile", "__main__.py")
        if any((app_dir / m).is_file() for m in markers):
            return True
        return any(app_dir.glob("*.py")) or any(app_dir.glob("*/*.py"))

    ancestor_search_dirs: ClassVar[tuple[str, ...]] = ()   # sys.path is explicit
    failure_patterns: ClassVar[tuple[str, ...]] = (
        r"ModuleNotFoundError: No module named '([^']+)'",
        r"ImportError: cannot import name '[^']+' from '([^']+)'",
        r"PackageNotFoundError: (?:No package metadata was found for )?([A-Za-z0-9_.\-]+)",
        r"FileNotFoundError: \[Errno 2\] No such file or directory: '([^']+)'",
        # native code's own words for a file it could not read: requests' CA bundle check, libxml2/libxslt
        r"TLS CA certificate bundle, invalid path: (/\S+)",
        r"Error reading file '(/[^']+)'",
    )

    def profile_environment(self, app_dir: Path, deps_dir: Path | None, log: Path,
                            target: dict[str, Any]) -> tuple[dict[str, str], tuple[str, ...]]:
        """An audit-hook recorder loaded by `site` (sitecustomize) ahead of the deps and the app.

        `python`/`python3` on PATH are the target interpreter seen through an empty virtual
        environment (a pyvenv.cfg without system site-packages, beside the log): `site` runs,
        so the recorder loads, but the host's site-packages and their .pth files do not (a
        host package must not stand in for a missing dep, nor a .pth touch the deps)."""
        hook = Path(__file__).with_name("profile_hook")
        from .env import site_packages_of

        real = _target_interpreter(target)
        venv = log.parent / "venv"
        (venv / "bin").mkdir(parents=True)
        (venv / "pyvenv.cfg").write_text(f"home = {real.parent}\ninclude-system-site-packages = false\n",
                                         encoding="utf-8")
        for name in ("python", "python3", f"python{real.name.removeprefix('python')}"):
            (venv / "bin" / name).symlink_to(real)
        deps = site_packages_of(deps_dir) if deps_dir is not None else None
        parts = [str(hook), *([str(deps)] if deps else []), str(app_dir), str(app_dir / "src")]
        # no bytecode writes: recording a run must not add __pycache__ to the user's deps
        return ({"PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
                 "PYTHONPATH": os.pathsep.join(parts), "MICROPRUNE_PROFILE_LOG": str(log),
                 "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1"},
                ("PYTHONHOME", "VIRTUAL_ENV", "PYTHONUSERBASE", *HOST_CA_VARIABLES))

    def smoke_environment(self, app_out: Path, deps_out: Path, target: dict[str, Any],
                          scratch: Path) -> tuple[dict[str, str], tuple[str, ...]]:
        """`python`/`python3` run the target interpreter with -S (no site-packages of the host),
        with the pruned deps and the app on PYTHONPATH."""
        real = _target_interpreter(target)
        shims = scratch / "bin"
        shims.mkdir()
        for name in ("python", "python3", f"python{real.name.removeprefix('python')}"):
            shim = shims / name
            shim.write_text(f"#!/bin/sh\nexec '{real}' -S \"$@\"\n", encoding="utf-8")
            shim.chmod(0o755)
        path = os.pathsep.join([str(deps_out), str(app_out), str(app_out / "src")])
        return ({"PATH": f"{shims}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}", "PYTHONPATH": path,
                 "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1"},
                ("PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONUSERBASE", *HOST_CA_VARIABLES))

    def open(self, request: Request) -> PythonSession:
        from .session import PythonSession

        return PythonSession(request)


def _target_interpreter(target: dict[str, Any]) -> Path:
    """The local interpreter of the target's Python version (else this one's)."""
    import sys

    from .runtime import find_interpreter

    major, _, minor = str(target.get("python_version", "")).partition(".")
    version = (int(major), int(minor)) if major.isdigit() and minor.isdigit() else None
    return find_interpreter(version or (sys.version_info[0], sys.version_info[1]))
