"""The Node.js analyzer: modules, assets and native addons an app reaches in node_modules.

Detection is cheap; the session (tree-sitter and the rest) loads only when a
Node app is opened.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from microprune.analyzer import Request
from microprune.errors import MicropruneError

if TYPE_CHECKING:
    from .session import NodeSession


class NodeAnalyzer:
    language: ClassVar[str] = "node"

    def detect(self, app_dir: Path) -> bool:
        if not (app_dir / "package.json").is_file():
            return False
        python_markers = ("pyproject.toml", "setup.py", "requirements.txt", "Pipfile")
        return (app_dir / "node_modules").is_dir() or not any((app_dir / m).is_file() for m in python_markers)

    failure_patterns: ClassVar[tuple[str, ...]] = (
        r"Cannot find module '([^']+)'",
        r"Cannot find package '([^']+)'",
        r"ENOENT: no such file or directory, \w+ '([^']+)'",
        # libraries that resolve a package named in configuration and say so in their own words
        r'unable to determine transport target for "([^"]+)"',          # pino transports
        r"Please install ([@\w][\w./@-]*) package manually",              # sequelize dialect drivers
    )

    ancestor_search_dirs: ClassVar[tuple[str, ...]] = ("node_modules",)

    def profile_environment(self, app_dir: Path, deps_dir: Path | None, log: Path,
                            target: dict[str, Any]) -> tuple[dict[str, str], tuple[str, ...]]:
        """A --require recorder of CommonJS loads and fs reads that registers an ESM resolve hook."""
        hook = Path(__file__).with_name("profile_hook") / "record.cjs"
        env = {"NODE_OPTIONS": f"--require {hook}", "MICROPRUNE_PROFILE_LOG": str(log)}
        if deps_dir is not None and deps_dir != app_dir / "node_modules":
            env["NODE_PATH"] = str(deps_dir)
        return env, ()

    def smoke_environment(self, app_out: Path, deps_out: Path, target: dict[str, Any],
                          scratch: Path) -> tuple[dict[str, str], tuple[str, ...]]:
        """No NODE_PATH, no preloads, an empty HOME (no ~/.node_modules): only OUT's node_modules."""
        home = scratch / "home"
        home.mkdir()
        return {"HOME": str(home)}, ("NODE_PATH", "NODE_OPTIONS")

    def open(self, request: Request) -> NodeSession:
        try:
            from .session import NodeSession
        except ImportError as err:
            if (err.name or "").startswith("tree_sitter"):
                raise MicropruneError("the Node analyzer needs its parser, which is an extra: "
                                      "pip install 'microprune[node]'") from err
            raise
        return NodeSession(request)
