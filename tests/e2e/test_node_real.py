"""Real Node apps from npm: prune, then serve from OUT and check the exact page.

The pages depend on what a tracer easily misses: a view engine express loads by name, views
found from the cwd or through `import.meta.url`, moment's French locale loaded through an aliased
`require('./locale/' + name)` (missing it gives English dates, no error), `exports` conditions
(date-fns picks `import` vs `require` files; express 5 reaches get-intrinsic's `module-sync`).
"""
from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.cli.helpers import run_cli
from tests.e2e.npmpkgs import (
    copy_installed,
    needs_node,
    node_modules_visible,
    serve_page,
    stat_snapshot,
    tree_bytes,
)

pytestmark = [pytest.mark.network, needs_node]


@dataclass(frozen=True)
class App:
    name: str
    package: dict[str, Any]
    files: dict[str, str]
    page: str                       # the exact body of GET /
    entry: str = "server.js"


EXPRESS_EJS = App(
    name="express-ejs-moment",
    package={"name": "express-ejs-moment", "version": "1.0.0", "private": True, "main": "server.js",
             "scripts": {"start": "node server.js"},
             "dependencies": {"express": "^4.21.2", "ejs": "^3.1.10", "moment": "^2.30.1",
                              "dayjs": "^1.11.13"}},
    files={
        "server.js": """'use strict';
const express = require('express');
const moment = require('moment');
const dayjs = require('dayjs');
require('dayjs/locale/fr');

const app = express();
app.set('view engine', 'ejs');          // views: express's default, <cwd>/views
app.get('/', (req, res) => {
  res.render('index', {
    name: 'Ada & Bob',
    // moment requires ./locale/fr itself, through an alias of `require`
    moment: moment.utc('2024-12-25').locale('fr').format('dddd D MMMM YYYY'),
    dayjs: dayjs('2024-07-14').locale('fr').format('dddd D MMMM YYYY'),
  });
});
app.listen(Number(process.env.PORT), '127.0.0.1');
""",
        "views/index.ejs": """<html lang="fr"><body>
<h1>Bonjour, <%= name %></h1>
<p id="moment"><%= moment %></p>
<p id="dayjs"><%= dayjs %></p>
<%- include('partials/footer') -%>
</body></html>
""",
        "views/partials/footer.ejs": "<footer>v1</footer>\n",
    },
    page="""<html lang="fr"><body>
<h1>Bonjour, Ada &amp; Bob</h1>
<p id="moment">mercredi 25 décembre 2024</p>
<p id="dayjs">dimanche 14 juillet 2024</p>
<footer>v1</footer>
</body></html>
""",
)

ESM_PUG = App(
    name="esm-express-pug-datefns",
    package={"name": "esm-express-pug-datefns", "version": "1.0.0", "private": True, "type": "module",
             "main": "server.js", "scripts": {"start": "node server.js"},
             "dependencies": {"express": "^5.1.0", "pug": "^3.0.3", "date-fns": "^4.1.0"}},
    files={
        "server.js": """import { fileURLToPath } from 'node:url';
import express from 'express';
import { format } from 'date-fns';
import { fr } from 'date-fns/locale/fr';

const app = express();
app.set('views', fileURLToPath(new URL('./views', import.meta.url)));
app.set('view engine', 'pug');
app.get('/', (req, res) => {
  const date = format(new Date(2024, 11, 25), 'EEEE d MMMM yyyy', { locale: fr });
  res.render('index', { name: 'Ada & Bob', date });
});
app.listen(Number(process.env.PORT), '127.0.0.1');
""",
        "views/layout.pug": "doctype html\nhtml(lang='fr')\n  body\n    block content\n",
        "views/index.pug": "extends layout.pug\n\nblock content\n  h1 Bonjour, #{name}\n  p#date= date\n",
    },
    page='<!DOCTYPE html><html lang="fr"><body><h1>Bonjour, Ada &amp; Bob</h1>'
         '<p id="date">mercredi 25 décembre 2024</p></body></html>',
)

APPS = [pytest.param(EXPRESS_EJS, id=EXPRESS_EJS.name), pytest.param(ESM_PUG, id=ESM_PUG.name)]


def write_app(app: App, root: Path) -> Path:
    copy_installed(app.package, root)
    for name, text in app.files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def prune(app_dir: Path, out: Path) -> dict[str, Any]:
    """`microprune prune` with the basic checks of its report; the app must be left as it was."""
    before = stat_snapshot(app_dir)
    result = run_cli("prune", app_dir, "--out", out, "--format", "json", timeout=600)
    assert result.code == 0, result.err
    assert stat_snapshot(app_dir) == before, "prune changed its input"
    report: dict[str, Any] = result.json()
    assert report["schema_version"] == 1 and report["language"] == "node"
    assert Path(report["deps_out"]) == out.resolve() / "node_modules"
    assert report["totals"]["dropped_bytes"] > 0
    assert report["totals"]["kept_bytes"] < tree_bytes(app_dir)
    assert tree_bytes(out / "node_modules") < tree_bytes(app_dir / "node_modules")
    return report


def entry_of(report: dict[str, Any], app: App) -> str:
    """The app's entry, as the report's `run` list names it."""
    assert app.entry in [run["entry"] for run in report["run"]], report["run"]
    return app.entry


@pytest.mark.parametrize("app", APPS)
def test_unpruned_app_serves_the_page(app: App, tmp_path: Path) -> None:
    """The baseline: if this fails, the packages from npm changed, not the pruner."""
    app_dir = write_app(app, tmp_path / "app")
    assert node_modules_visible(app_dir) == [app_dir / "node_modules"]
    assert serve_page(app_dir, app.entry, tmp_path / "home") == (200, app.page)


@pytest.mark.parametrize("app", APPS)
def test_pruned_app_serves_the_same_page(app: App, tmp_path: Path) -> None:
    app_dir = write_app(app, tmp_path / "app")
    out = tmp_path / "out"
    report = prune(app_dir, out)
    app_out = Path(report["app_out"])
    assert node_modules_visible(app_out) == [Path(report["deps_out"])]    # nothing else to fall back on
    assert serve_page(app_out, entry_of(report, app), tmp_path / "home") == (200, app.page)


@pytest.mark.parametrize(("app", "damage", "symptom"), [   # symptom: a regex over "<status> <body>"
    pytest.param(EXPRESS_EJS, "moment/locale/fr.js",
                 '^200 .*<p id="moment">Wednesday 25 December 2024</p>', id="moment-locale-english-date"),
    pytest.param(EXPRESS_EJS, "ejs/lib/ejs.js",
                 "^500 .*Cannot find module .*ejs/lib/ejs.js", id="ejs-main-500"),
    pytest.param(ESM_PUG, "date-fns/locale/fr.js",
                 "^server exited .*Cannot find module .*date-fns/locale/fr.js", id="datefns-locale-no-start"),
])
def test_the_page_check_fails_without_a_needed_file(app: App, damage: str, symptom: str,
                                                     tmp_path: Path) -> None:
    """Negative control: delete one needed file from a copy of OUT, and the served page changes."""
    app_dir = write_app(app, tmp_path / "app")
    out = tmp_path / "out"
    report = prune(app_dir, out)
    broken = tmp_path / "broken"
    shutil.copytree(out, broken, symlinks=True)
    (broken / "node_modules" / damage).unlink()
    app_out = broken / Path(report["app_out"]).relative_to(out.resolve())
    try:
        status, body = serve_page(app_out, entry_of(report, app), tmp_path / "home")
        outcome = f"{status} {body}"
    except pytest.fail.Exception as failed:      # the server exited before it listened
        outcome = str(failed)
    assert re.search(symptom, outcome, re.DOTALL), outcome
