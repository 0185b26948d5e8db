"""Images of the two tiny apps (no network), built once per session and shared by the tests."""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.image.helpers import build, write_node_app, write_python_app


@dataclass(frozen=True)
class Built:
    app: Path                 # the app directory the image was built from
    deps: Path | None         # --deps (None: node_modules inside the app)
    archive: Path
    report: dict[str, Any]    # the JSON of `microprune image --format json`

    @property
    def image(self) -> dict[str, Any]:
        return dict(self.report["image"])

    @property
    def interpreter(self) -> str:
        """The runtime's binary, the first word of the entrypoint (node or python3.X)."""
        return str(self.image["entrypoint"][0])


needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="needs node on PATH (the image's runtime)")


@pytest.fixture(scope="session")
def node_image(tmp_path_factory: pytest.TempPathFactory) -> Built:
    if shutil.which("node") is None:
        pytest.skip("needs node on PATH (the image's runtime)")
    root = tmp_path_factory.mktemp("node-image")
    app = write_node_app(root / "app")
    archive = root / "node.tar"
    return Built(app, None, archive, build(app, archive, "--tag", "mp-tiny-node:1.0"))


@pytest.fixture(scope="session")
def python_image(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("python-image")
    app, deps = write_python_app(root)
    archive = root / "python.tar"
    return Built(app, deps, archive, build(app, archive, "--tag", "mp-tiny-python:1.0", deps=deps))
