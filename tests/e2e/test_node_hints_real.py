"""The Node hints and special calls, proven with the real packages from npm.

Each case is a small app written here that uses one package the way its users do, in a way a
plain import trace misses:

- pino runs its transports in worker threads and loads them by name (`pino({ transport })`,
  `pino.transport({ targets })`; also the options built in a variable and chosen by `?:`;
  Fastify's `logger.transport`, from a table indexed by the environment);
- sharp loads `@img/sharp-<platform>/sharp.node` (0.35: a literal per platform; 0.34: a computed
  name, which only the hint knows), which needs `@img/sharp-libvips-<platform>`;
- bcrypt 6 finds its addon with node-gyp-build under `prebuilds/<platform>`;
- swagger-ui-dist's folder is served as static files (`absolutePath()`), read by no code;
- moment loads `./locale/<name>` by the name given to `moment.locale()` or as the third argument
  of `moment(text, format, locale)` (a [[narrow]] entry keeps only that one);
- `require('dayjs/locale/' + lang)` names files of a package by a computed suffix; yargs'
  `commandDir('cmds')` requires the app's command modules, whose own requires must be kept;
- express requires the view engine named by `app.set('view engine', ...)`, which reads
  includes/partials/layouts at render time.

For each: `microprune prune APP --out OUT` (static analysis and hints only: no --keep, no
profile), then `microprune verify OUT --smoke CMD` must pass; the unpruned app must pass the
same smoke (else npm changed, not the pruner); and a copy of OUT without the hinted file must
fail the same verify (the smoke really depends on it). Servers bind 127.0.0.1 on port 0 and make
one request with a timeout; every command is bounded.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.cli.helpers import run_cli
from tests.e2e.npmpkgs import copy_installed, needs_node, node_modules_visible, stat_snapshot

pytestmark = [pytest.mark.network, needs_node]

SMOKE_TIMEOUT = "60"             # verify's bound on the smoke command, in seconds

# One install for most cases (current versions); sharp 0.34 (computed platform name) on its own.
DEPS = {"pino": "^10.0.0", "pino-pretty": "^13.0.0", "fastify": "^5.0.0", "sharp": "^0.35.0", "bcrypt": "^6.0.0",
        "swagger-ui-dist": "^5.17.0", "moment": "^2.30.1", "express": "^5.1.0", "ejs": "^3.1.10 || ^7.0.0",
        "pug": "^3.0.3", "dayjs": "^1.11.10", "yargs": "^17.7.2", "ms": "^2.1.3"}
SHARP_034 = {"sharp": "~0.34.0"}


def package_json(deps: dict[str, str]) -> dict[str, Any]:
    return {"name": "hints-real", "version": "1.0.0", "private": True, "dependencies": deps}


@dataclass(frozen=True)
class Case:
    name: str
    files: dict[str, str]
    smoke: str
    damage: str                          # a path under OUT/node_modules the smoke needs (hint-kept)
    deps: dict[str, str] = field(default_factory=lambda: DEPS)
    entry: str = "main.js"
    check: Callable[[Path, dict[str, Any]], None] | None = None    # (OUT/node_modules, report)


# --- pino ---------------------------------------------------------------------------------------

PINO_CHECK = """'use strict';
const fs = require('fs');
const path = require('path');
const read = (name) => fs.readFileSync(path.join(__dirname, 'logs', name), 'utf8');
const json = JSON.parse(read('file.log').trim());
if (json.msg !== 'hello multi' || json.n !== 42) throw new Error('file.log: ' + JSON.stringify(json));
if (!/INFO.*hello pretty/.test(read('pretty.log'))) throw new Error('pretty.log: ' + read('pretty.log'));
if (!/INFO.*hello multi/.test(read('multi.log'))) throw new Error('multi.log: ' + read('multi.log'));
console.log('pino ok');
"""

PINO = Case(
    name="pino-transports",
    files={"main.js": """'use strict';
// pino runs each transport in a worker thread and loads its target by name; check.js reads the logs.
const path = require('path');
const pino = require('pino');
const logs = path.join(__dirname, 'logs');
const pretty = pino({ transport: { target: 'pino-pretty',
  options: { destination: path.join(logs, 'pretty.log'), colorize: false, mkdir: true } } });
const multi = pino(pino.transport({ targets: [
  { target: 'pino/file', level: 'info', options: { destination: path.join(logs, 'file.log'), mkdir: true } },
  { target: 'pino-pretty', level: 'info',
    options: { destination: path.join(logs, 'multi.log'), colorize: false, mkdir: true } },
] }));
pretty.info('hello pretty');
multi.info({ n: 42 }, 'hello multi');
// pino flushes its transports and waits for their workers when the process exits
""", "check.js": PINO_CHECK},
    smoke="node main.js && node check.js",
    damage="pino-pretty",
)

PINO_ESM_CONFIG = Case(
    name="pino-esm-config-in-variables",
    files={"main.mjs": """import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';

// the usual shape: options in variables, the transport chosen by the environment
const logs = path.join(path.dirname(fileURLToPath(import.meta.url)), 'logs');
const dev = process.env.NODE_ENV !== 'production';
const options = {
  level: 'info',
  transport: dev
    ? { target: 'pino-pretty', options: { destination: path.join(logs, 'pretty.log'), colorize: false, mkdir: true } }
    : undefined,
};
const pretty = pino(options);
const targets = [
  { target: 'pino/file', level: 'info', options: { destination: path.join(logs, 'file.log'), mkdir: true } },
  { target: 'pino-pretty', level: 'info',
    options: { destination: path.join(logs, 'multi.log'), colorize: false, mkdir: true } },
];
const multi = pino(pino.transport({ targets }));
pretty.info('hello pretty');
multi.info({ n: 42 }, 'hello multi');
""", "check.js": PINO_CHECK},
    smoke="node main.mjs && node check.js",
    damage="pino-pretty",
    entry="main.mjs",
)

FASTIFY = Case(
    name="fastify-logger-transport",
    files={"main.js": """'use strict';
// Fastify hands logger.transport to pino, which loads the target by name in a worker thread; the
// logger options come from a table indexed by the environment (Fastify's documented pattern).
const path = require('path');
const Fastify = require('fastify');
const envToLogger = {
  development: { transport: { target: 'pino-pretty',
    options: { destination: path.join(__dirname, 'logs', 'fastify.log'), colorize: false, mkdir: true } } },
  production: true,
  test: false,
};
const app = Fastify({ logger: envToLogger[process.env.NODE_ENV || 'development'] ?? true });
app.get('/', async () => ({ hello: 'world' }));
app.inject({ method: 'GET', url: '/' }).then((res) => {     // no socket: fastify's own injection
  if (res.statusCode !== 200 || res.json().hello !== 'world') throw new Error(res.body);
  app.log.info('fastify says hi');
  return app.close();
});
""", "check.js": """'use strict';
const text = require('fs').readFileSync(require('path').join(__dirname, 'logs', 'fastify.log'), 'utf8');
if (!/INFO.*fastify says hi/.test(text) || !/incoming request/.test(text)) throw new Error('fastify.log: ' + text);
console.log('fastify ok');
"""},
    smoke="node main.js && node check.js",
    damage="pino-pretty",
)

# --- sharp --------------------------------------------------------------------------------------

SHARP_MAIN = """'use strict';
// Resize a 4x4 red PNG made here to 2x2 and read the pixels back.
const sharp = require('sharp');
const width = 4, height = 4;
const pixels = Buffer.alloc(width * height * 3, 0);
for (let i = 0; i < width * height; i++) pixels[i * 3] = 255;
sharp(pixels, { raw: { width, height, channels: 3 } }).png().toBuffer()
  .then((png) => sharp(png).resize(2, 2).raw().toBuffer({ resolveWithObject: true }))
  .then(({ data, info }) => {
    if (info.width !== 2 || info.height !== 2 || data[0] !== 255 || data[1] !== 0) {
      throw new Error('bad resize: ' + JSON.stringify(info) + ' ' + data.toString('hex'));
    }
    console.log('sharp ok', sharp.versions.vips);
  })
  .catch((err) => { console.error(err); process.exitCode = 1; });
"""


def check_sharp(deps_out: Path, _report: dict[str, Any]) -> None:
    kept = sorted(p.name for p in (deps_out / "@img").iterdir())
    assert kept == [n for n in kept if n == "colour" or n.endswith(f"-{platform()}")], kept
    assert f"sharp-libvips-{platform()}" in kept and f"sharp-{platform()}" in kept, kept


SHARP = Case(name="sharp", files={"main.js": SHARP_MAIN}, smoke="node main.js",
             damage="@img/sharp-{platform}", check=check_sharp)
SHARP_ESM = Case(
    name="sharp-esm",
    files={"main.mjs": "import sharp from 'sharp';\n"
                       "const png = await sharp({ create: { width: 3, height: 2, channels: 4,\n"
                       "  background: { r: 0, g: 0, b: 255, alpha: 1 } } }).png().toBuffer();\n"
                       "const meta = await sharp(png).metadata();\n"
                       "if (meta.format !== 'png' || meta.width !== 3 || meta.height !== 2) "
                       "throw new Error(JSON.stringify(meta));\n"
                       "console.log('sharp esm ok');\n"},
    smoke="node main.mjs", damage="@img/sharp-libvips-{platform}", entry="main.mjs", check=check_sharp)
SHARP_OLD = Case(name="sharp-0.34-computed-name", files={"main.js": SHARP_MAIN}, smoke="node main.js",
                 damage="@img/sharp-{platform}", deps=SHARP_034, check=check_sharp)

# --- bcrypt -------------------------------------------------------------------------------------


def check_bcrypt(deps_out: Path, _report: dict[str, Any]) -> None:
    assert sorted(p.name for p in (deps_out / "bcrypt" / "prebuilds").iterdir()) == [platform()]


BCRYPT = Case(
    name="bcrypt",
    files={"main.js": """'use strict';
const bcrypt = require('bcrypt');
const hash = bcrypt.hashSync('s3cret', 4);
if (!bcrypt.compareSync('s3cret', hash) || bcrypt.compareSync('wrong', hash)) throw new Error('sync: ' + hash);
bcrypt.hash('s3cret', 4).then((h) => bcrypt.compare('s3cret', h)).then((ok) => {
  if (!ok) throw new Error('async compare failed');
  console.log('bcrypt ok');
});
"""},
    smoke="node main.js",
    damage="bcrypt/prebuilds/{platform}",
    check=check_bcrypt,
)

# --- swagger-ui-dist ----------------------------------------------------------------------------


def check_swagger(deps_out: Path, report: dict[str, Any]) -> None:
    reasons = {f["path"]: f["reasons"] for f in report["files"] if f["keep"]}
    assert reasons.get("swagger-ui-dist/swagger-ui.css") == ["hint"], reasons.get("swagger-ui-dist/swagger-ui.css")
    assert "hint" in reasons.get("swagger-ui-dist/index.html", []), "index.html is not hint-kept"
    assert (deps_out / "swagger-ui-dist" / "swagger-ui-bundle.js").stat().st_size > 100_000


SWAGGER = Case(
    name="swagger-ui-dist",
    files={"main.js": """'use strict';
// Serve swagger-ui-dist's folder as static files and fetch three assets over HTTP.
const express = require('express');
const swaggerUi = require('swagger-ui-dist');
const app = express();
app.use('/docs', express.static(swaggerUi.absolutePath()));
const server = app.listen(0, '127.0.0.1', async () => {
  const base = `http://127.0.0.1:${server.address().port}/docs/`;
  try {
    for (const [name, needle] of [['swagger-ui-bundle.js', 'SwaggerUIBundle'], ['swagger-ui.css', '.swagger-ui'],
                                  ['index.html', '<div id="swagger-ui">']]) {
      const res = await fetch(base + name, { signal: AbortSignal.timeout(10000) });
      const text = await res.text();
      if (res.status !== 200 || !text.includes(needle)) throw new Error(`${name}: ${res.status} ${text.slice(0, 200)}`);
    }
    console.log('swagger ok');
  } catch (err) { console.error(err); process.exitCode = 1; } finally { server.close(); }
});
"""},
    smoke="node main.js",
    damage="swagger-ui-dist/swagger-ui.css",
    check=check_swagger,
)

# --- moment -------------------------------------------------------------------------------------


def check_moment(deps_out: Path, _report: dict[str, Any]) -> None:
    # moment ships ~130 locales (each also under dist/locale); only the one named is kept
    assert sorted(p.name for p in (deps_out / "moment" / "locale").iterdir()) == ["de.js"]
    assert not (deps_out / "moment" / "dist").exists()


MOMENT = Case(
    name="moment-locale",
    files={"main.js": """'use strict';
const moment = require('moment');
moment.locale('de');            // moment requires ./locale/de itself; without it: English, no error
const text = moment.utc('2024-12-25').format('dddd, D. MMMM YYYY');
if (text !== 'Mittwoch, 25. Dezember 2024') throw new Error('moment: ' + text);
console.log('moment ok', text);
"""},
    smoke="node main.js",
    damage="moment/locale/de.js",
    check=check_moment,
)

MOMENT_PARSE = Case(
    name="moment-parse-locale-argument",
    files={"main.js": """'use strict';
const moment = require('moment');
// the locale as moment's third argument: moment requires ./locale/fr itself; without it, English
const parsed = moment('12 janvier 2024', 'D MMMM YYYY', 'fr');
const text = `${parsed.locale()} ${parsed.format('YYYY-MM-DD dddd')}`;
if (text !== 'fr 2024-01-12 vendredi') throw new Error('moment: ' + text);
console.log('moment ok', text);
"""},
    smoke="node main.js",
    damage="moment/locale/fr.js",
)

# --- computed requires of a package's files; yargs' command directory -------------------------------

DAYJS = Case(
    name="dayjs-computed-locale",
    files={"main.js": """'use strict';
const dayjs = require('dayjs');
const lang = process.env.APP_LANG || 'de';
require('dayjs/locale/' + lang);             // a computed name inside the package
const text = dayjs('2024-03-15').locale(lang).format('dddd D MMMM');
if (text !== 'Freitag 15 März') throw new Error('dayjs: ' + text);
console.log('dayjs ok', text);
"""},
    smoke="node main.js",
    damage="dayjs/locale/de.js",
)

YARGS = Case(
    name="yargs-command-dir",
    files={"main.js": "'use strict';\nrequire('yargs').commandDir('cmds').demandCommand(1).strict().parse();\n",
           "cmds/wait.js": """'use strict';
const ms = require('ms');         // reached only through the command directory
exports.command = 'wait <d>';
exports.describe = 'print a duration in ms';
exports.handler = (argv) => {
  if (ms(argv.d) !== 7200000) throw new Error('ms: ' + ms(argv.d));
  console.log('yargs ok', ms(argv.d));
};
"""},
    smoke="node main.js wait 2h",
    damage="ms/index.js",
)

# --- express view engines -----------------------------------------------------------------------

VIEW_SERVER = """'use strict';
// express requires the view engine by the name set here; the view includes a partial.
const path = require('path');
const express = require('express');
const app = express();
app.set('views', path.join(__dirname, 'views'));
app.set('view engine', '%(engine)s');
app.get('/', (req, res) => res.render('index', { name: 'Ada & Bob' }));
const EXPECTED = %(expected)s;
const server = app.listen(0, '127.0.0.1', async () => {
  try {
    const res = await fetch(`http://127.0.0.1:${server.address().port}/`, { signal: AbortSignal.timeout(10000) });
    const text = await res.text();
    if (res.status !== 200 || text !== EXPECTED) throw new Error(`${res.status} ${JSON.stringify(text)}`);
    console.log('page ok');
  } catch (err) { console.error(err); process.exitCode = 1; } finally { server.close(); }
});
"""

EJS = Case(
    name="express-ejs-include",
    files={"main.js": VIEW_SERVER % {"engine": "ejs",
                                     "expected": json.dumps("<h1>Hello, Ada &amp; Bob</h1>\n<footer>partial</footer>\n")},
           "views/index.ejs": '<h1>Hello, <%= name %></h1>\n<%- include("partials/footer") -%>\n',
           "views/partials/footer.ejs": "<footer>partial</footer>\n"},
    smoke="node main.js",
    damage="ejs",
)
PUG = Case(
    name="express-pug-extends-include",
    files={"main.js": VIEW_SERVER % {"engine": "pug", "expected": json.dumps(
               "<!DOCTYPE html><html><body><h1>Hello, Ada &amp; Bob</h1><footer>partial</footer></body></html>")},
           "views/layout.pug": "doctype html\nhtml\n  body\n    block content\n    include footer.pug\n",
           "views/index.pug": "extends layout.pug\n\nblock content\n  h1 Hello, #{name}\n",
           "views/footer.pug": "footer partial\n"},
    smoke="node main.js",
    damage="pug",
)

CASES = [PINO, PINO_ESM_CONFIG, FASTIFY, SHARP, SHARP_ESM, SHARP_OLD, BCRYPT, SWAGGER, MOMENT, MOMENT_PARSE, DAYJS,
         YARGS, EJS, PUG]


# --- helpers ------------------------------------------------------------------------------------

_PLATFORM: list[str] = []


def platform() -> str:
    """The runtime's <platform>-<arch> (linux-x64), as prebuilds and @img packages name it."""
    if not _PLATFORM:
        proc = subprocess.run(["node", "-p", "process.platform + '-' + process.arch"], capture_output=True,
                              text=True, timeout=30, check=True)
        _PLATFORM.append(proc.stdout.strip())
    return _PLATFORM[0]


def write_app(case: Case, root: Path) -> Path:
    copy_installed(package_json(case.deps), root)
    for name, text in case.files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    # the entry, as users name it (the install's package.json is the same otherwise)
    package = json.loads((root / "package.json").read_text())
    (root / "package.json").write_text(json.dumps({**package, "main": case.entry}, indent=2) + "\n")
    return root


def run_smoke(app: Path, smoke: str, home: Path) -> subprocess.CompletedProcess[str]:
    home.mkdir(exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8", "TZ": "UTC"}
    return subprocess.run(["sh", "-c", smoke], cwd=app, env=env, capture_output=True, text=True, timeout=90,
                          check=False, start_new_session=True)


def verify(out: Path, smoke: str) -> tuple[int, dict[str, Any]]:
    result = run_cli("verify", out, "--smoke", smoke, "--timeout", SMOKE_TIMEOUT, "--format", "json", timeout=180)
    assert result.code in (0, 3), f"exit {result.code}: {result.err}"
    report: dict[str, Any] = result.json()
    assert report["command"] == "verify" and report["passed"] is (result.code == 0), report
    return result.code, report


# --- the test -----------------------------------------------------------------------------------

@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_pruned_app_passes_its_smoke_and_fails_without_the_hinted_file(case: Case, tmp_path: Path) -> None:
    app = write_app(case, tmp_path / "app")
    assert node_modules_visible(app) == [app / "node_modules"]
    out = tmp_path / "out"
    before = stat_snapshot(app)
    pruned = run_cli("prune", app, "--out", out, "--format", "json", timeout=600)
    assert pruned.code == 0, pruned.err
    assert stat_snapshot(app) == before, "prune changed its input"
    report: dict[str, Any] = pruned.json()
    assert [run["entry"] for run in report["run"]] == [case.entry], report["run"]
    assert report["totals"]["dropped_bytes"] > 0

    # the baseline: the unpruned app passes the same smoke (run after the prune: it writes logs/)
    baseline = run_smoke(app, case.smoke, tmp_path / "home")
    assert baseline.returncode == 0, f"the unpruned app fails (npm changed?):\n{baseline.stdout}{baseline.stderr}"

    code, result = verify(out, case.smoke)
    assert code == 0 and result["passed"], result["output_tail"]
    damage = out / "node_modules" / case.damage.format(platform=platform())
    assert damage.exists(), f"{case.damage} was not kept"
    if case.check is not None:
        case.check(out / "node_modules", report)

    # the negative control: the same verify on a copy of OUT without the hinted file fails
    broken = tmp_path / "broken"
    shutil.copytree(out, broken, symlinks=True)
    shutil.rmtree(broken / "logs", ignore_errors=True)            # pino's smoke wrote them in OUT
    target = broken / damage.relative_to(out)
    if target.is_dir():
        shutil.rmtree(target)
    else:
        target.unlink()
    code, result = verify(broken, case.smoke)
    assert code == 3 and not result["passed"] and not result["timed_out"], result
