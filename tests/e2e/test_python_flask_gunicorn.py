"""A real Flask + gunicorn app with templates: install from PyPI, prune, serve from OUT."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.cli.helpers import run_cli
from tests.e2e.realpkgs import fetch, free_port, installed, isolated_env, serving

pytestmark = pytest.mark.network

APP = {
    "Procfile": "web: gunicorn app:app --worker-class gthread --threads 2\n",
    "app.py": (
        "from flask import Flask, render_template\n\n"
        "app = Flask(__name__)\n\n\n"
        "@app.route('/')\n"
        "def index():\n"
        "    return render_template('index.html', items=['alpha', 'beta'])\n"
    ),
    "templates/base.html": "<html><body>{% block body %}{% endblock %}</body></html>\n",
    "templates/index.html": (
        "{% extends 'base.html' %}{% block body %}<ul>{% for i in items %}<li>{{ i|upper }}</li>"
        "{% endfor %}</ul>{% endblock %}\n"
    ),
}


def write_app(root: Path) -> Path:
    for name, text in APP.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_flask_gunicorn_app_runs_from_the_pruned_tree(tmp_path: Path) -> None:
    deps = installed(["flask==3.1.*", "gunicorn==23.*"])
    app = write_app(tmp_path / "app")
    out = tmp_path / "out"
    result = run_cli("prune", app, "--deps", deps, "--out", out, "--format", "json", timeout=300)
    assert result.code == 0, result.err
    report = result.json()
    assert {e["spec"] for e in report["entries"]} == {"gunicorn", "app:app"}
    rows = {r["name"].lower(): r for r in report["distributions"]}
    assert rows["gunicorn"]["used"] and rows["flask"]["used"] and rows["jinja2"]["used"]
    assert report["deps_totals"]["dropped_bytes"] > 0
    assert not (Path(report["deps_out"]) / "gunicorn" / "workers" / "ggevent.py").exists() or \
        rows["gunicorn"]["kept_files"] > 0
    port = free_port()
    command = [sys.executable, "-S", "-m", "gunicorn", "app:app", "--bind", f"127.0.0.1:{port}",
               "--worker-class", "gthread", "--threads", "2", "--workers", "1"]
    with serving(command, Path(report["app_out"]), isolated_env(report["deps_out"]), port):
        status, body = fetch(f"http://127.0.0.1:{port}/")
    assert status == 200
    assert "<li>ALPHA</li><li>BETA</li>" in body


def test_pruned_tree_really_is_isolated(tmp_path: Path) -> None:
    """The smoke check above would be worthless if the host's packages leaked in: prove they don't."""
    deps = installed(["flask==3.1.*", "gunicorn==23.*"])
    app = write_app(tmp_path / "app")
    out = tmp_path / "out"
    assert run_cli("prune", app, "--deps", deps, "--out", out, timeout=300).code == 0
    shutil.rmtree(out / "site-packages" / "jinja2")
    port = free_port()
    # --preload imports the app before binding, so a missing module fails the start.
    command = [sys.executable, "-S", "-m", "gunicorn", "app:app", "--preload", "--bind", f"127.0.0.1:{port}"]
    with pytest.raises(pytest.fail.Exception, match="jinja2"):
        with serving(command, out / "app", isolated_env(str(out / "site-packages")), port):
            pass
