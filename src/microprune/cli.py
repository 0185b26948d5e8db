"""The command line: thin. Parse, call the library, render, choose the exit code.

Exit codes: 0 ok, 1 error (bad input, cannot write), 2 usage, 3 verification
failed (a smoke command did not pass). Errors are one
line on stderr, never a traceback (set MICROPRUNE_DEBUG=1 to see one).
"""
from __future__ import annotations

import functools
import math
import os
import re
import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from . import __version__
from .analyzer import Request
from .config import add_keep_patterns, load_config
from .errors import MicropruneError, OutputError
from .paths import display, is_within, normalise, output_file_problem
from .pipeline import analyze as run_analyze
from .pipeline import prune as run_prune
from .pipeline import trace_report as run_trace
from .report import render_json, render_text, render_warnings
from .verify import DEFAULT_TIMEOUT, tree_dirs, verify_tree
from .watch import watch_limit
from .why import render_why_text, why_report

F = TypeVar("F", bound=Callable[..., Any])
MAX_TIMEOUT = 7 * 24 * 3600.0       # a week; larger values overflow the clocks the waits use
MAX_REPAIR_ROUNDS = 5

EPILOG_ANALYZE = """\b
Examples:
  microprune analyze ./myapp                       # deps from ./myapp/.venv
  microprune analyze ./myapp --deps ./target --entry app.py
  microprune analyze ./myapp --entry myapp.wsgi:app --entry gunicorn --format json
"""

EPILOG_PRUNE = """\b
Examples:
  pip install --target ./deps -r requirements.txt
  microprune prune . --deps ./deps --entry app.py --out ./pruned
  PYTHONPATH=./pruned/site-packages python ./pruned/app/app.py

  npm ci --omit=dev
  microprune prune . --out ./pruned            # a Node app: node_modules found in the app
  node ./pruned/server.js
"""

EPILOG_WHY = """\b
Examples:
  microprune why ./myapp jinja2               # a distribution
  microprune why ./myapp jinja2.ext           # a module
  microprune why ./myapp certifi/cacert.pem   # a file (relative to the deps or the app)
"""


def app_options(func: F) -> F:
    options = [
        click.argument("app", type=click.Path(file_okay=False, path_type=Path)),
        click.option("--deps", type=click.Path(path_type=Path),
                     help="Installed dependencies. Python: a `pip install --target` directory, a site-packages "
                          "directory or a virtualenv (default: APP/.venv or APP/venv). Node: a node_modules "
                          "directory (default: APP/node_modules)."),
        click.option("--entry", "entries", multiple=True, metavar="E",
                     help="Entry point. Python: a script (app.py), a module (pkg.mod or pkg.mod:attr, as given to "
                          "gunicorn/uvicorn) or a console script of the deps (gunicorn); default: [project.scripts], "
                          "Procfile, __main__.py, main.py/app.py/wsgi.py/asgi.py/manage.py. Node: a script "
                          "(server.js, dist/index.js); default: package.json scripts.start, main, bin, then "
                          "server.js/index.js/app.js/main.js. Repeatable."),
        click.option("--keep", "keep", multiple=True, metavar="PATTERN",
                     help="Always keep: a distribution (pyyaml), a module or package (babel.localedata), an npm "
                          "package (sharp), or a glob relative to the deps (babel/locale-data/**). Repeatable."),
        click.option("--python-version", metavar="X.Y",
                     help="Target Python version. Default: read from the deps (pyvenv.cfg, extension names, wheel tags)."),
        click.option("--node-version", metavar="X.Y[.Z]",
                     help="Target Node.js version (decides the module-sync condition). "
                          "Default: the node on PATH, else package.json engines."),
        click.option("--condition", "conditions", multiple=True, metavar="NAME",
                     help="Extra package.json exports/imports condition to match (Node), as node "
                          "--conditions does. Repeatable."),
        click.option("--alias", "aliases", multiple=True, metavar="NAME=PATH",
                     help="Module alias (Node): require('NAME/x') loads PATH/x, as module-alias's "
                          "_moduleAliases in package.json (read too) does. Repeatable."),
        click.option("--profile", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                     help="A profile from `microprune trace APP --run CMD --out PROFILE`: its files are kept "
                          "too (reason `profile`), and traced from."),
        click.option("--trust-profile", is_flag=True,
                     help="With --profile: drop what only code that may run reaches (a lazy or guarded import, "
                          "a module named in a string, a hint, a plugin) unless a recorded run loaded it. "
                          "Smaller, and only as safe as the runs recorded: record every path the app takes "
                          "in production, and prove it with --smoke."),
        click.option("--language", type=str, default=None,
                     help="Analyzer to use (node or python). Default: detected from APP."),
        click.option("--entries-only", is_flag=True,
                     help="Keep only what the entries reach. By default the app's other code files (outside "
                          "tests and docs), which ship with it, are traced too, since frameworks run some by "
                          "path or by a name in configuration (command folders, handlers, workers)."),
    ]
    @functools.wraps(func)
    def gather(**kwargs: Any) -> Any:
        kwargs["target"] = TargetFlags(kwargs.pop("python_version"), kwargs.pop("node_version"),
                                       kwargs.pop("conditions"), kwargs.pop("aliases"), kwargs.pop("profile"),
                                       kwargs.pop("entries_only"), kwargs.pop("trust_profile"))
        return func(**kwargs)

    command: Any = gather
    for option in reversed(options):
        command = option(command)
    return cast(F, command)


@dataclass(frozen=True)
class TargetFlags:
    """The flags that say what the app runs on and how its names resolve."""

    python_version: str | None = None
    node_version: str | None = None
    conditions: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    profile: Path | None = None
    entries_only: bool = False
    trust_profile: bool = False

    def version(self) -> str | None:
        if self.python_version and self.node_version:
            raise click.UsageError("give --python-version or --node-version, not both")
        return self.python_version or self.node_version

    def options(self) -> dict[str, Any]:
        if self.trust_profile and self.profile is None:
            raise click.UsageError("--trust-profile needs --profile PROFILE (record one with "
                                   "`microprune trace APP --run CMD --out PROFILE`)")
        return {"trust_profile": self.trust_profile, "conditions": self.conditions, "aliases": self.aliases, "entries_only": self.entries_only,
                **({"profile": str(normalise(self.profile))} if self.profile else {})}


def _seconds(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """A time limit is a positive, finite number of seconds: nan or inf would never stop a hung
    command, 0 or -1 would stop every one at once."""
    if value is not None and not (math.isfinite(value) and 0 < value <= MAX_TIMEOUT):
        raise click.BadParameter(f"{value:g}: give a number of seconds above 0 and at most {MAX_TIMEOUT:g}")
    return value


def artifact_options(func: F) -> F:
    func = click.option("--sbom", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
                        help="Write a CycloneDX 1.5 SBOM (JSON) of what is kept: only the packages that ship, "
                             "with versions and licences from their metadata.")(func)
    return click.option("--html", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
                        help="Write a self-contained HTML report (no network): a treemap of bytes kept and "
                             "dropped, totals, top packages, and why each file is kept.")(func)


def _check_artifacts(html: Path | None, sbom: Path | None) -> None:
    """Before any work: a report file must go into a directory that exists."""
    _check_output_files(("--html", html), ("--sbom", sbom))


def _check_output_files(*outputs: tuple[str, Path | None]) -> None:
    """Before any work: each file microprune will write goes into a directory that exists, and
    where it goes is a file (or nothing) that may be replaced, never a device or a directory."""
    for flag, path in outputs:
        if path is None:
            continue
        problem = output_file_problem(normalise(path)) if str(path) else "is empty"
        if problem is not None:
            raise click.BadParameter(f"{display(normalise(path)) if str(path) else repr(str(path))} {problem}",
                                     param_hint=flag)


# docker's reference grammar, simplified: [host[:port]/]path-components[:tag]
_IMAGE_REFERENCE = re.compile(r"(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
                              r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?")
_IMAGE_USER = re.compile(r"(?:[a-z_][a-z0-9_-]{0,31}|(?:0|[1-9][0-9]{0,9}))(?::(?:[a-z_][a-z0-9_-]{0,31}|(?:0|[1-9][0-9]{0,9})))?")


def _check_outside_inputs(request: Request, **outputs: Path | None) -> None:
    """A file microprune writes (a report, an image, a profile) never lands in APP or the deps:
    it would change the input (compared by real path, so a link into them counts)."""
    roots = [("APP", request.app_dir)] + ([("--deps", request.deps)] if request.deps is not None else [])
    for flag, path in outputs.items():
        if path is None:
            continue
        real = Path(os.path.realpath(normalise(path)))
        for name, root in roots:
            if is_within(real, Path(os.path.realpath(root))):
                raise click.BadParameter(f"{display(normalise(path))} is inside {name} ({display(root)}): "
                                         "microprune never writes into its input; write it elsewhere",
                                         param_hint="--" + flag.replace("_", "-"))


def _write_artifacts(analysis: Any, report: dict[str, Any], html: Path | None, sbom: Path | None) -> None:
    from .htmlreport import page_data, write_html
    from .sbom import build_sbom, write_sbom

    try:
        if html is not None:
            write_html(normalise(html), page_data(analysis.session, analysis.trace, analysis.plan, report))
            report["html"] = display(normalise(html))
        if sbom is not None:
            session = analysis.session
            write_sbom(normalise(sbom), build_sbom(analysis.plan, list(session.packages()), session.app_root.name,
                                                   session.language))
            report["sbom"] = display(normalise(sbom))
    except OSError as err:
        target = html if html is not None and "html" not in report else sbom
        raise OutputError(f"cannot write {display(normalise(target or Path('.')))}: "
                          f"{err.strerror or err.__class__.__name__}") from err


def format_option(func: F) -> F:
    func = click.option("-q", "--quiet", is_flag=True, expose_value=False, callback=_quiet_after_command,
                        help="No progress bars and no warnings summary (also accepted before the command).")(func)
    return click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
                        help="Output format; json is sorted and stable, with a schema_version.")(func)


def _quiet_after_command(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """`microprune prune ... -q` means what `microprune -q prune ...` does."""
    if value:
        from . import progress

        root = ctx.find_root()
        root.obj = {**(root.obj or {}), "quiet": True}
        progress.install(None)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="microprune")
@click.option("-q", "--quiet", is_flag=True,
              help="No progress bars and no warnings summary on stderr (errors are still shown).")
@click.pass_context
def cli(ctx: click.Context, quiet: bool) -> None:
    """Prune what an app does not use from its installed dependencies.

    microprune traces an app's imports from its entry points through its
    site-packages (Python) or node_modules (Node), and keeps only what is
    reached, with a reason for every file kept. It never changes its input: `prune` writes a new tree.

    \b
    Start with:
      microprune analyze APP     what would be kept and dropped
      microprune prune APP --out OUT
      microprune why APP NAME    why a distribution, module or file is kept

    \b
    Exit codes: 0 ok, 1 error (bad input, cannot write), 2 usage,
    3 verification failed (a --smoke command did not pass).
    """
    from . import progress

    ctx.obj = {"quiet": quiet}
    live = not quiet and sys.stderr.isatty() and not os.environ.get("CI")
    progress.install(progress.RichReporter() if live else None)


def _request(app: Path, deps: Path | None, entries: tuple[str, ...], keep: tuple[str, ...],
             target: TargetFlags, language: str | None) -> tuple[Request, str | None]:
    app = normalise(app)
    if not app.exists():
        raise click.BadParameter(f"{display(app)} does not exist", param_hint="APP")
    config = load_config(app)
    request = Request(
        app_dir=app,
        deps=normalise(deps) if deps else config.deps,
        entries=entries or config.entry,
        keep=tuple(dict.fromkeys(config.keep + keep)),
        target_version=target.version() or config.python_version,
        options={"entry_origin": "--entry" if entries else config.source, **target.options()},
    )
    return request, language or config.language


def _check_deps_exist(request: Request) -> None:
    if request.deps is not None and not request.deps.exists():
        raise click.BadParameter(f"{display(request.deps)} does not exist", param_hint="--deps")


def _emit(report: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        click.echo(render_json(report), nl=False)
        return
    click.echo(render_text(report, color=sys.stdout.isatty()), nl=False)
    warnings = render_warnings(report)
    if warnings and not _quiet():
        click.echo(warnings, err=True, nl=False)


def _quiet() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.find_root().obj and ctx.find_root().obj.get("quiet"))


@cli.command(epilog=EPILOG_ANALYZE)
@app_options
@artifact_options
@format_option
def analyze(app: Path, deps: Path | None, entries: tuple[str, ...], keep: tuple[str, ...],
            target: TargetFlags, language: str | None, html: Path | None, sbom: Path | None, fmt: str) -> None:
    """Show what would be kept and dropped, per distribution. Changes nothing (but --html/--sbom files)."""
    _emit(_analyze_with_artifacts("analyze", app, deps, entries, keep, target, language, html, sbom), fmt)


def _analyze_with_artifacts(command: str, app: Path, deps: Path | None, entries: tuple[str, ...],
                            keep: tuple[str, ...], target: TargetFlags, language: str | None,
                            html: Path | None, sbom: Path | None) -> dict[str, Any]:
    """analyze and report: the plan's report, after writing the --html/--sbom files asked for."""
    request, language = _request(app, deps, entries, keep, target, language)
    _check_artifacts(html, sbom)
    _check_outside_inputs(request, html=html, sbom=sbom)
    _check_deps_exist(request)
    analysis = run_analyze(request, language)
    result = analysis.report(command)
    _write_artifacts(analysis, result, html, sbom)
    return result


EPILOG_REPORT = """\b
Examples:
  microprune report ./myapp --html report.html          # open it in any browser, offline
  microprune report . --deps ./deps --sbom sbom.cdx.json --html report.html
"""


@cli.command(epilog=EPILOG_REPORT)
@app_options
@artifact_options
@format_option
def report(app: Path, deps: Path | None, entries: tuple[str, ...], keep: tuple[str, ...],
           target: TargetFlags, language: str | None, html: Path | None, sbom: Path | None, fmt: str) -> None:
    """Write reports of what would be kept: --html (a treemap page with the reason for every file)
    and/or --sbom (CycloneDX). Prints the summary too. Changes nothing else."""
    if html is None and sbom is None:
        raise click.UsageError("give --html FILE and/or --sbom FILE (the reports to write)")
    result = _analyze_with_artifacts("report", app, deps, entries, keep, target, language, html, sbom)
    _emit(result, fmt)
    if fmt == "text":
        for kind in ("html", "sbom"):
            if kind in result:
                click.echo(f"wrote {kind}: {result[kind]}")


@cli.command(epilog=EPILOG_PRUNE)
@app_options
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="New directory for the app and its pruned deps (Python: OUT/app and OUT/site-packages; "
                   "Node: the app in OUT and its deps in OUT/node_modules).")
@click.option("--force", is_flag=True, help="Replace OUT if it is not empty.")
@click.option("--bytecode", type=click.Choice(["compile", "none"]), default="compile", show_default=True,
              help="compile: write .pyc (unchecked-hash) for the kept .py files, so a read-only image does not "
                   "recompile at every start (needs the host Python to be the target's); none: no bytecode.")
@click.option("--strip", "strip", type=click.Choice(["debug", "none"]), default="debug", show_default=True,
              help="debug: remove debug sections from shared objects (binutils strip; never in *.libs/, and each "
                   "result is checked to still load, else the original is kept); none: copy them as they are.")
@click.option("--smoke", default=None, metavar="CMD",
              help="After pruning, run this shell command in the pruned app with only OUT visible "
                   "(see `microprune verify`); exit 3 if it fails.")
@click.option("--repair", is_flag=True,
              help="With --smoke: restore what the failure names from the original deps, re-verify (at most "
                   f"{MAX_REPAIR_ROUNDS} rounds), and write what was added as keep entries of the app's "
                   "configuration so the next run needs no repair.")
@click.option("--timeout", type=float, callback=_seconds, metavar="SECONDS", default=DEFAULT_TIMEOUT, show_default=True,
              help="Seconds the smoke command may take.")
@artifact_options
@format_option
def prune(app: Path, deps: Path | None, entries: tuple[str, ...], keep: tuple[str, ...],
          target: TargetFlags, language: str | None, out: Path, force: bool, bytecode: str, strip: str,
          smoke: str | None, repair: bool, timeout: float, html: Path | None, sbom: Path | None, fmt: str) -> None:
    """Write the app and its pruned deps to a new directory OUT.

    APP and --deps are never modified. OUT is written atomically: an
    interrupted run leaves no half-written OUT behind. OUT/microprune.json
    holds the same report as --format json.
    """
    request, language = _request(app, deps, entries, keep, target, language)
    _check_artifacts(html, sbom)
    _check_outside_inputs(request, html=html, sbom=sbom)
    _check_deps_exist(request)
    request = replace(request, options={**request.options, "bytecode": bytecode, "strip": strip})
    if repair and not smoke:
        raise click.UsageError("--repair needs --smoke CMD (the command that proves the app works)")
    analysis, _, report = run_prune(request, out, force, language)
    passed = True
    if smoke:
        passed, analysis = _smoke_and_repair(request, analysis, report, out, smoke, repair, timeout, language)
    _write_artifacts(analysis, report, html, sbom)
    _emit(report, fmt)
    if not passed:
        sys.exit(3)


def _smoke_and_repair(request: Request, analysis: Any, report: dict[str, Any], out: Path, smoke: str,
                      repair: bool, timeout: float, language: str | None) -> tuple[bool, Any]:
    """Verify OUT; with --repair, keep what the failure names and prune again, a bounded number of
    times; then write what was added to the app's configuration."""
    result = verify_tree(out, smoke, timeout)
    added: list[str] = []
    rounds = 0
    stopped = ""
    while repair and not result.passed:
        if rounds == MAX_REPAIR_ROUNDS:
            stopped = f"still failing after {MAX_REPAIR_ROUNDS} rounds"
            break
        app_out, deps_out = tree_dirs(normalise(out), report)
        found = [p for name in result.missing for p in analysis.session.repair_patterns(name, app_out, deps_out)]
        new = [p for p in dict.fromkeys(found) if p not in request.keep]
        if not new:
            stopped = _why_repair_stops(result.missing, found)
            break
        rounds += 1
        added.extend(new)
        request = replace(request, keep=(*request.keep, *new))
        analysis, _, fresh = run_prune(request, out, True, language)
        report.clear()
        report.update(fresh)
        result = verify_tree(out, smoke, timeout)
    report["verify"] = {"smoke": smoke, **result.as_dict()}
    if repair:
        report["repair"] = {"rounds": rounds, "added": added, **({"stopped": stopped} if stopped else {})}
        if added and result.passed:
            report["repair"]["written_to"] = display(add_keep_patterns(normalise(request.app_dir), added))
    return result.passed, analysis


def _why_repair_stops(missing: list[str], found: list[str]) -> str:
    if not missing:
        return "the failure names nothing missing that microprune can read (see its output)"
    if not found:
        return f"nothing the failure names ({', '.join(missing[:5])}) is in the original deps"
    return "what the failure names is kept already: something else is wrong"


EPILOG_VERIFY = """\b
Examples:
  microprune verify ./pruned --smoke "python3 -c 'import app'"
  microprune verify ./pruned --smoke "node -e 'require(\\"./server.js\\")'" --timeout 30
"""


@cli.command(epilog=EPILOG_VERIFY)
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--smoke", required=True, metavar="CMD", help="The shell command that proves the app works.")
@click.option("--timeout", type=float, callback=_seconds, metavar="SECONDS", default=DEFAULT_TIMEOUT, show_default=True,
              help="Seconds the smoke command may take.")
@format_option
def verify(out: Path, smoke: str, timeout: float, fmt: str) -> None:
    """Run a smoke command against a pruned tree OUT with only that tree visible for its language
    (Python: python/python3 run with -S and PYTHONPATH on OUT; Node: no NODE_PATH, an empty HOME),
    in the pruned app's directory. Exit 0 if it passes, 3 if it fails, with what was missing."""
    result = verify_tree(normalise(out), smoke, timeout)
    report = {"schema_version": 1, "command": "verify", "out": display(normalise(out)), "smoke": smoke,
              **result.as_dict()}
    if fmt == "json":
        click.echo(render_json(report), nl=False)
    else:
        state = "passed" if result.passed else ("timed out" if result.timed_out else f"failed (exit {result.exit_code})")
        click.echo(f"smoke {state}: {smoke}")
        if result.missing:
            click.echo("missing: " + ", ".join(result.missing))
        if result.escaped:
            click.echo(f"microprune: warning: killed {result.escaped} process(es) the command left running outside its "
                       "process group (a daemon): what they did after the command ended was not checked", err=True)
        if not result.passed:
            click.echo(result.output_tail[-1500:], err=True)
    if not result.passed:
        sys.exit(3)


@cli.command(epilog=EPILOG_WHY)
@app_options
@click.argument("name")
@format_option
def why(app: Path, name: str, deps: Path | None, entries: tuple[str, ...], keep: tuple[str, ...],
        target: TargetFlags, language: str | None, fmt: str) -> None:
    """Show the chain of imports (file:line) that keeps NAME, or say that nothing does.

    NAME is a distribution, a module, or a file path (relative to the deps or the app).
    """
    request, language = _request(app, deps, entries, keep, target, language)
    _check_deps_exist(request)
    analysis = run_analyze(request, language)
    candidates = list(analysis.session.lookup(name))
    report = why_report(analysis.session, analysis.trace, analysis.plan, name, candidates)
    if fmt == "json":
        click.echo(render_json(report), nl=False)
    else:
        click.echo(render_why_text(report), nl=False)
    if not candidates:
        sys.exit(1)


EPILOG_TRACE = """\b
Examples:
  microprune trace app.py --deps ./deps                 # the files app.py reaches
  microprune trace main.py --deps ./deps:./vendor --format json
  microprune trace server.js --base . --format json     # a Node app: node_modules found from the entry
  microprune trace ./myapp --run "python3 smoke.py" --out app.profile   # record a real run
  microprune prune ./myapp --out ./pruned --profile app.profile
"""


@cli.command(epilog=EPILOG_TRACE)
@click.argument("entries", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--deps", "deps_paths", multiple=True, metavar="DIR[:DIR...]",
              help="Directories to search after the entries' own directory, in order. Repeatable.")
@click.option("--base", type=click.Path(file_okay=False, path_type=Path),
              help="The app's root (import root of the entries). Default: the first entry's directory.")
@click.option("--run", "runs", multiple=True, metavar="CMD",
              help="Dynamic mode: ENTRIES is the APP directory; run each shell command once in it with a "
                   "recorder and write what it loaded and read to --out PROFILE (for prune --profile). "
                   "Exit 3 if a command fails, times out, records nothing or overflows the kernel watch (the profile is written, but "
                   "may lack what a passing run loads); a server stopped by SIGTERM/SIGINT counts as passing.")
@click.option("--out", "profile_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --run: the profile file to write.")
@click.option("--timeout", type=float, callback=_seconds, metavar="SECONDS", default=DEFAULT_TIMEOUT, show_default=True,
              help="With --run: seconds each command may take.")
@click.option("--cwd", type=click.Path(file_okay=False, path_type=Path),
              help="The directory the app runs in (process.cwd() for Node). Default: --base.")
@click.option("--depth", type=click.IntRange(min=0), default=None,
              help="Read files at most this many import steps from the entries (0: the entries are listed, "
                   "not read). Default: no limit.")
@click.option("--python-version", metavar="X.Y", help="Target Python version.")
@click.option("--node-version", metavar="X.Y[.Z]", help="Target Node.js version.")
@click.option("--condition", "conditions", multiple=True, metavar="NAME",
              help="Extra exports/imports condition to match (Node). Repeatable.")
@click.option("--alias", "aliases", multiple=True, metavar="NAME=PATH", help="Module alias (Node). Repeatable.")
@click.option("--language", type=str, default=None,
              help="Analyzer to use (node or python). Default: from the entries' file names.")
@format_option
def trace(entries: tuple[Path, ...], deps_paths: tuple[str, ...], runs: tuple[str, ...], profile_out: Path | None,
          timeout: float, base: Path | None, cwd: Path | None,
          depth: int | None, python_version: str | None, node_version: str | None, conditions: tuple[str, ...],
          aliases: tuple[str, ...], language: str | None, fmt: str) -> None:
    """Print every file ENTRIES reach (and the imports that are missing). Changes nothing."""
    target = TargetFlags(python_version, node_version, conditions, aliases)
    if runs:
        _record_profile(entries, deps_paths, runs, profile_out, timeout, target, language, fmt)
        return
    if any(e.is_dir() for e in entries):
        raise click.BadParameter("an entry is a directory (did you mean --run CMD to record a profile?)",
                                 param_hint="ENTRIES")
    base = normalise(base or entries[0].parent)
    paths = [normalise(Path(p)) for d in deps_paths for p in str(d).split(os.pathsep) if p]
    for path in paths:
        if not path.is_dir():
            raise click.BadParameter(f"{display(path)} is not a directory", param_hint="--deps")
    specs = tuple(os.path.relpath(normalise(e), base) for e in entries)
    request = Request(app_dir=base, deps=paths[0] if paths else None, entries=specs,
                      target_version=target.version(),
                      options={"extra_paths": paths[1:], "deps_optional": True, **target.options(),
                               "cwd": normalise(cwd) if cwd else None, "max_depth": depth})
    report = run_trace(request, language or _language_of(entries))
    if fmt == "json":
        click.echo(render_json(report), nl=False)
    else:
        click.echo("".join(f"{f}\n" for f in report["files"]), nl=False)
        warnings = render_warnings(report)
        if warnings and not _quiet():
            click.echo(warnings, err=True, nl=False)


EPILOG_IMAGE = """\b
Examples:
  microprune image ./myapp --out app.tar --tag myapp:1.0
  microprune image . --out app.tar --env LOG_LEVEL=info --load   # and load it into Docker
  microprune run app.tar                                          # prove it starts, no engine
"""


@cli.command(epilog=EPILOG_IMAGE)
@app_options
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The image archive to write (an OCI archive that docker load also reads).")
@click.option("--base", default="auto", show_default=True, metavar="auto|PATH",
              help="auto: a runtime layer built from the local interpreter, its shared libraries (from ELF "
                   "headers), the stdlib modules the trace reaches, CA certificates and a non-root user.")
@click.option("--tag", default="microprune-app:latest", show_default=True, metavar="NAME:TAG")
@click.option("--cmd", "cmd", default=None, metavar="COMMAND",
              help="The image's command (shell-style words, run without a shell). Default: the app's entry.")
@click.option("--user", default=None, metavar="UID[:GID]", help="Default: 65532:65532 (the image's `app` user).")
@click.option("--env", "env", multiple=True, metavar="K=V", help="Environment of the image. Repeatable.")
@click.option("--load", is_flag=True, help="Load the image into the Docker engine (DOCKER_HOST or the default "
                                           "socket) through the docker SDK (pip install 'microprune[docker]').")
@click.option("--smoke", default=None, metavar="CMD",
              help="Run this command inside the built image (no engine; argv, no shell: the image has none) "
                   "before reporting success; exit 3 if it fails.")
@click.option("--timeout", type=float, callback=_seconds, metavar="SECONDS", default=DEFAULT_TIMEOUT, show_default=True,
              help="Seconds the smoke command may take.")
@click.option("--stdlib-source", is_flag=True,
              help="Python: ship the stdlib's .py files beside its bytecode, so tracebacks show the source "
                   "lines of stdlib frames too (about +1.7 MB compressed). Default: bytecode only, as "
                   "Python's embeddable distribution; file, line and function are still shown.")
@click.option("--bytecode-positions", is_flag=True,
              help="Python: keep the column tables (PEP 657) in the bytecode of the deps, the app and the "
                   "stdlib: the ^^^^ under the failing expression in tracebacks (about +1.1 MB compressed for "
                   "a Flask app). Default: compiled with -X no_debug_ranges; file, line and function stay.")
@artifact_options
@format_option
def image(app: Path, deps: Path | None, entries: tuple[str, ...], keep: tuple[str, ...], target: TargetFlags,
          language: str | None, out: Path, base: str, tag: str, cmd: str | None, user: str | None,
          env: tuple[str, ...], load: bool, smoke: str | None, timeout: float, stdlib_source: bool,
          bytecode_positions: bool, html: Path | None, sbom: Path | None, fmt: str) -> None:
    """Prune APP and write a minimal, reproducible OCI image of it to OUT, with no engine.

    Layers: the runtime, then the pruned dependencies, then the app (what must never ship,
    .git, .env*, .npmrc, private keys, and what APP/.dockerignore names, is left out and
    listed). The same inputs give a byte-identical archive (SOURCE_DATE_EPOCH, or 0).
    """
    import shlex

    from .image.build import ImageOptions, build_image

    request, language = _request(app, deps, entries, keep, target, language)
    _check_artifacts(html, sbom)
    _check_output_files(("--out", out))
    _check_outside_inputs(request, out=out, html=html, sbom=sbom)
    _check_deps_exist(request)
    for item in env:
        if "=" not in item:
            raise click.BadParameter(f"{item!r} is not K=V", param_hint="--env")
    if not _IMAGE_REFERENCE.fullmatch(tag):
        raise click.BadParameter(f"{tag!r} is not an image name (lowercase name[/path][:tag], as docker tag takes)",
                                 param_hint="--tag")
    if user is not None and (not _IMAGE_USER.fullmatch(user)
                             or any(part.isdigit() and int(part) >= 2**32 - 1 for part in user.split(":"))):
        raise click.BadParameter(f"{user!r} is not a user: a name or UID, optionally :GROUP or :GID "
                                 f"(numbers below 2^32)", param_hint="--user")
    try:
        words = tuple(shlex.split(cmd)) if cmd else ()
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--cmd") from err
    request = replace(request, options={**request.options, "bytecode": "compile", "strip": "debug",
                                        "stdlib_source": stdlib_source, "positions": bytecode_positions})
    analysis, report = build_image(request, ImageOptions(out, base, tag, words, user, env, language))
    _write_artifacts(analysis, report, html, sbom)
    passed = True
    if smoke:
        from .image.runner import smoke_image

        try:
            argv = shlex.split(smoke)
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint="--smoke") from err
        passed, code, tail = smoke_image(normalise(out), argv, timeout)
        report["image"]["smoke"] = {"command": argv, "passed": passed, "exit_code": code, "timed_out": code is None,
                                    "output_tail": tail}
    if load and passed:
        report["image"]["loaded"] = _load_into_docker(out)
    _show_image(report, fmt)
    if not passed:
        sys.exit(3)


def _show_image(report: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        click.echo(render_json(report), nl=False)
        return
    info = report["image"]
    click.echo(f"wrote {info['path']} ({info['tag']}, {info['digest']})")
    for layer in info["layers"]:
        click.echo(f"  {layer['name']:<8} {layer['digest'][:19]}  {layer['size']:>12,} bytes gzip  "
                   f"{layer['uncompressed_size']:>12,} bytes  {layer['files']} files")
    click.echo(f"  total    {info['size']:,} bytes gzip, {info['uncompressed_size']:,} bytes")
    click.echo(f"  entrypoint {info['entrypoint'] or info['cmd']}, user {info['user']}, workdir {info['workdir']}")
    if info["left_out"]:
        click.echo(f"  left out of the app layer: {', '.join(info['left_out'])}")
    smoke = info.get("smoke")
    if smoke:
        state = "passed" if smoke["passed"] else ("timed out" if smoke["timed_out"] else f"FAILED (exit {smoke['exit_code']})")
        click.echo(f"  smoke in the image {state}: {' '.join(smoke['command'])}")
        if not smoke["passed"]:
            click.echo(smoke["output_tail"][-1500:], err=True)


def _load_into_docker(archive: Path) -> str:
    try:
        import docker  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError as err:
        raise MicropruneError("--load needs the docker SDK: pip install 'microprune[docker]'") from err
    try:
        client = docker.from_env()
        client.ping()
        with open(archive, "rb") as handle:
            images = client.images.load(handle.read())
    except Exception as err:  # noqa: BLE001 - the SDK raises many kinds; the user needs one line
        raise MicropruneError(f"no Docker engine answers (DOCKER_HOST or the default socket): {err}") from err
    return ", ".join(sorted(t for img in images for t in img.tags)) or "loaded"


EPILOG_RUN = """\b
Examples:
  microprune run app.tar                         # the image's entrypoint
  microprune run app.tar -- /usr/bin/node -e 'console.log(1)'
"""


@cli.command(epilog=EPILOG_RUN)
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("command", nargs=-1)
@click.option("--timeout", type=float, callback=_seconds, metavar="SECONDS", default=None, help="Stop the command after this many seconds.")
@click.option("--env", "env", multiple=True, metavar="K=V", help="Add to the image's environment. Repeatable.")
@click.option("--user", "user", default=None, metavar="UID[:GID]",
              help="Run as this user instead of the image's (numeric). Root is refused: it could leave "
                   "the unpacked root.")
def run(archive: Path, command: tuple[str, ...], timeout: float | None, env: tuple[str, ...],
        user: str | None) -> None:
    """Run an image archive without an engine: unpack it into a scratch root and run its
    entrypoint (or COMMAND) there, in new mount and PID namespaces, with only the image's
    environment and user (never root). Exits with the command's status."""
    from .image.runner import run_image

    for item in env:
        if "=" not in item:
            raise click.BadParameter(f"{item!r} is not K=V", param_hint="--env")
    if user is not None and not all(part.isdigit() for part in user.split(":", 1)):
        raise click.BadParameter(f"{user!r} is not UID or UID:GID (numbers)", param_hint="--user")
    sys.exit(run_image(archive, list(command), timeout, env, user))


def _record_profile(entries: tuple[Path, ...], deps_paths: tuple[str, ...], runs: tuple[str, ...],
                    profile_out: Path | None, timeout: float, target: TargetFlags, language: str | None,
                    fmt: str) -> None:
    from .profile import record_profile

    if len(entries) != 1 or not entries[0].is_dir():
        raise click.BadParameter("with --run, give the APP directory (one)", param_hint="ENTRIES")
    if profile_out is None:
        raise click.UsageError("--run needs --out PROFILE (the file to write)")
    _check_output_files(("--out", profile_out))
    deps = normalise(Path(deps_paths[0])) if deps_paths else None
    request, language = _request(entries[0], deps, (), (), target, language)
    _check_outside_inputs(request, out=profile_out)
    profile = record_profile(request, runs, normalise(profile_out), timeout, language)
    failed = [run for run in profile["runs"] if run["timed_out"] or run["exit_code"] not in STOPPED_NORMALLY]
    if fmt == "json":
        click.echo(render_json(profile), nl=False)
    else:
        for run in profile["runs"]:
            state = "timed out" if run["timed_out"] else f"exit {run['exit_code']}"
            click.echo(f"ran ({state}): {run['command']}")
        click.echo(f"wrote {display(normalise(profile_out))}: {len(profile['files'])} files seen")
    for run in failed:
        state = f"timed out after {timeout:g} s" if run["timed_out"] else f"exited {run['exit_code']}"
        click.echo(f"microprune: warning: {run['command']!r} {state}: the profile may lack what a passing run "
                   "loads; do not prune with --trust-profile on it", err=True)
    blind = [run for run in profile["runs"] if run not in failed and not run["files"]]
    for run in blind:
        click.echo(f"microprune: warning: {run['command']!r} passed but recorded no file of the app or its deps: "
                   "did it run python3/node from PATH, or close every file descriptor (a daemon)? "
                   "Do not prune with --trust-profile on it", err=True)
    escaped = [run for run in profile["runs"] if run.get("escaped")]
    for run in escaped:
        click.echo(f"microprune: warning: {run['command']!r} left {run['escaped']} process(es) running outside its "
                   "process group (a daemon); they were killed, and what they would have loaded later is not "
                   "recorded: run the server in the foreground (no daemonize option) while recording", err=True)
    partial = [run for run in profile["runs"] if run.get("kernel_watch") == "partial"]
    for run in partial:
        unwatched = run.get("unwatched_dirs", 0)
        why = (f"{unwatched} directories of APP and the deps could not be watched: raise the limit, e.g. "
               f"`sysctl fs.inotify.max_user_watches={watch_limit() + unwatched + 1024}` (as root)"
               if unwatched else "the kernel's event queue overflowed (raise fs.inotify.max_queued_events)")
        click.echo(f"microprune: warning: {run['command']!r}: the kernel's record of opened files is incomplete: "
                   f"{why}; files only native code read may be missing, so do not prune with --trust-profile "
                   "on this profile", err=True)
    if any(run.get("kernel_watch") == "unavailable" for run in profile["runs"]):
        click.echo("microprune: warning: inotify is not available here: files only native code reads (a CA bundle "
                   "read by OpenSSL) are not recorded; check a --trust-profile prune with --smoke", err=True)
    if failed or blind or partial or escaped:
        sys.exit(3)


# A recorded command passed: exit 0, or a server stopped the usual way (SIGHUP, SIGINT, SIGTERM),
# as the shell reports it (128 + n) or as the process's own death (-n).
STOPPED_NORMALLY = frozenset({0, 129, 130, 143, -1, -2, -15})


def _language_of(entries: tuple[Path, ...]) -> str | None:
    suffixes = {e.suffix for e in entries}
    if suffixes <= {".py"}:
        return "python"
    if suffixes <= {".js", ".mjs", ".cjs", ".jsx", ".ts", ".mts", ".cts", ".tsx"}:
        return "node"
    return None


def _raise_on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (only `__main__` exits)."""
    previous = signal.signal(signal.SIGTERM, _raise_on_sigterm)
    try:
        cli.main(args=argv, prog_name="microprune", standalone_mode=False)
        return 0
    except click.exceptions.Exit as done:
        return int(done.exit_code or 0)
    except click.ClickException as err:
        err.show()
        return err.exit_code
    except click.exceptions.Abort:
        _ignore_signals()
        click.echo("microprune: interrupted; nothing was left half-written", err=True)
        return 130
    except MicropruneError as err:
        click.echo(f"microprune: error: {err}", err=True)
        return err.exit_code
    except KeyboardInterrupt:
        _ignore_signals()                # we are leaving: more Ctrl-C must not print a traceback
        click.echo("microprune: interrupted; nothing was left half-written", err=True)
        return 130
    except SystemExit as done:
        return int(done.code or 0) if not isinstance(done.code, str) else 1
    except Exception as err:  # noqa: BLE001 - the last line of defence: no tracebacks for users
        if os.environ.get("MICROPRUNE_DEBUG"):
            traceback.print_exc()
        click.echo(f"microprune: internal error: {type(err).__name__}: {err} "
                   "(set MICROPRUNE_DEBUG=1 for a traceback, and please report it)", err=True)
        return 1
    finally:
        from . import progress

        progress.install(None)
        if signal.getsignal(signal.SIGTERM) is _raise_on_sigterm:
            signal.signal(signal.SIGTERM, previous)


def _ignore_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
