"""Benchmark microprune against peer tools on real Node apps (stdlib only, Python 3.11).

For each app under bench/apps/node/<name>/ (the app in app/ with its
package.json and package-lock.json, bench.toml with its entry and build,
smoke.py with its HTTP checks), every run:

  1. builds it if bench.toml says so (`npm ci` with dev dependencies, then the
     build command, e.g. `npx --no-install tsc`), and installs the deployed app
     (bench.toml `deploy`, default all of app/) with `npm ci --omit=dev` into
     CACHE/node/<name>/full, using CACHE/node/npm as npm's cache;
  2. measures that production install (app + node_modules), then, each on its
     own copy or output tree:
       node-prune     (npm package node-prune, its prune.sh run in the copy)
       clean-modules  (npm package clean-modules, `clean-modules --yes`)
       nft            (@vercel/nft traces the entry with the module-sync
                       condition on; the traced files are copied to a new tree)
       microprune     (`microprune prune APP --out OUT --format json`);
  3. runs the app's checks on every tree: `node ENTRY` in the tree, NODE_PATH
     and every other NODE_* variable unset, HOME an empty directory, and no
     node_modules directory above the tree (checked before anything runs);
  4. times @vercel/nft's trace and `microprune trace ENTRY --base APP` side by
     side, --runs times each (alternating), and reports the medians.

The tools (@vercel/nft, node-prune, clean-modules) are installed at pinned
versions into CACHE/node/tools. Servers bind 127.0.0.1 only; every process
started here runs in its own process group, which is killed when it is done.

Usage:
    python3 bench/bench_node.py [--app NAME]... [--cache DIR] [--runs N]
        [--microprune CMD] [--json] [--json-out FILE]

    --microprune  the microprune command, split like a shell would (default:
                  $MICROPRUNE, else `microprune` on PATH, else .venv/bin/microprune
                  of this checkout, else this checkout run as `python3 -m
                  microprune` with src/ and analyzers/ on PYTHONPATH, which
                  needs the tree-sitter packages of pyproject.toml installed)
    --json        print the results as JSON (sorted keys) instead of the tables
    --json-out F  also write that JSON to file F
    --check TREE  only run one app's checks in TREE (needs exactly one --app)

Progress goes to stderr; the tables (or JSON) to stdout. A microprune that
fails (e.g. before the Node analyzer exists) is reported as "error" with the
first line it wrote to stderr, and the benchmark goes on. Exit status 0 when
every app's checks pass on its full production install, else 1.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shlex
import shutil
import signal
import stat
import statistics
import subprocess
import sys
import time
import tomllib
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
APPS_DIR = BENCH_DIR / "apps" / "node"
sys.path.insert(0, str(BENCH_DIR))

import smokelib  # noqa: E402

# Pinned so that a table from one day compares with the next.
TOOLS = {"@vercel/nft": "1.11.16", "node-prune": "1.0.2", "clean-modules": "4.0.0"}
# Node >= 20.19 matches "module-sync" in exports maps; nft turns it on by
# itself only on Node >= 22, so it is asked for explicitly.
NFT_OPTIONS = {"conditions": ["node", "module-sync"]}
VARIANTS = ("full", "node-prune", "clean-modules", "nft", "microprune")
NPM_TIMEOUT = 900
TOOL_TIMEOUT = 600
NODE_ENV_DROP = ("NODE_", "NPM_", "npm_")  # for the apps' checks
TOOL_ENV_DROP = ("NODE_PATH", "NODE_OPTIONS")  # for npm and the tools, which keep HOME's .npmrc

# Written into CACHE/node/tools and run there, so `@vercel/nft` resolves from
# the tools' own node_modules. Times nodeFileTrace in process, too.
NFT_SCRIPT = r"""
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nodeFileTrace } from '@vercel/nft';

const [base, entry, out, optionsJson] = process.argv.slice(2);
const start = performance.now();
const result = await nodeFileTrace([join(base, entry)], { base, processCwd: base, ...JSON.parse(optionsJson) });
const seconds = (performance.now() - start) / 1000;
writeFileSync(out, JSON.stringify({
  seconds,
  files: [...result.fileList].sort(),
  warnings: [...result.warnings].map((w) => String(w.message || w)).sort(),
}));
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class BenchError(Exception):
    """A step of the benchmark failed (an install, a build, a tool)."""


# --- processes ------------------------------------------------------------------


def run(cmd: list[str], cwd: Path, timeout: float,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run cmd in its own process group to completion; the group is killed whatever happens."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, text=True, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        stdout, stderr = proc.communicate()  # the group is dead: its pipes close
        stderr = f"timed out after {timeout:.0f}s: {shlex.join(cmd)}\n{stderr}"
    finally:
        kill_group(proc)
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def kill_group(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the process group of proc (its own: started with start_new_session) and reap proc."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def checked(cmd: list[str], cwd: Path, timeout: float = NPM_TIMEOUT, env: dict[str, str] | None = None) -> str:
    """run() that raises BenchError with the tail of stderr on a non-zero exit."""
    proc = run(cmd, cwd, timeout, env)
    if proc.returncode != 0:
        raise BenchError(f"exit {proc.returncode}: {shlex.join(cmd)} (in {cwd})\n"
                         + smokelib.tail(proc.stderr or proc.stdout, 15))
    return proc.stdout


def printable(text: str) -> str:
    """text with control characters (nft quotes bytes of ELF files it failed to parse) as '?'."""
    return "".join(c if c.isprintable() else "?" for c in text)


def first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "(no output)"


def key_error_line(text: str) -> str:
    """The most telling line of a Node failure: a missing module or the thrown error, else the first."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    for needle in ("Cannot find module", "ERR_MODULE_NOT_FOUND", "Could not load", "ENOENT", "Error:", "ERR_"):
        for line in lines:
            if needle in line:
                return line
    return lines[0] if lines else ""


# --- apps -----------------------------------------------------------------------


@dataclass(frozen=True)
class AppSpec:
    name: str
    root: Path  # bench/apps/node/<name>
    entry: str  # relative to the deployed app
    build: tuple[str, ...]  # command run after `npm ci` with dev deps; () for none
    deploy: tuple[str, ...]  # what of the (built) app is deployed; () for all of app/

    @property
    def app_dir(self) -> Path:
        return self.root / "app"


def all_app_names() -> list[str]:
    if not APPS_DIR.is_dir():
        return []
    return sorted(p.name for p in APPS_DIR.iterdir() if (p / "bench.toml").is_file())


def load_spec(name: str) -> AppSpec:
    root = APPS_DIR / name
    config = tomllib.loads((root / "bench.toml").read_text())
    return AppSpec(name, root, config["entry"], tuple(config.get("build", ())), tuple(config.get("deploy", ())))


def load_smoke(spec: AppSpec) -> Callable[[NodeSession], None]:
    """The smoke(session) function of the app's smoke.py."""
    module_spec = importlib.util.spec_from_file_location(f"node_smoke_{spec.name}", spec.root / "smoke.py")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.smoke


# --- checks -----------------------------------------------------------------------


def node_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of every node process: no NODE_PATH/NODE_OPTIONS, an empty HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(NODE_ENV_DROP)}
    env.update(HOME=str(home), NO_COLOR="1", TERM="dumb", TZ="UTC", LANG="C.UTF-8")
    env.update(extra or {})
    return env


@dataclass
class NodeSession(smokelib.Session):
    """smokelib.Session for a Node app: its servers are `node ENTRY` run in the tree.

    smokelib builds command lines with python() and environments with env();
    here they give `node ARGS` and node_env() plus the env of the current serve().
    """

    entry: str = "server.js"
    home: Path = Path("/nonexistent")
    extra_env: dict[str, str] = field(default_factory=dict)

    def python(self, *args: str) -> list[str]:
        return [shutil.which("node") or "node", *args]

    def env(self) -> dict[str, str]:
        return node_env(self.home, self.extra_env)

    @contextlib.contextmanager
    def serve(self, port: int, env: dict[str, str] | None = None) -> Iterator[str]:
        """Start `node ENTRY` with PORT=port (and env) in the tree; yield its base URL."""
        self.extra_env = {"PORT": str(port), **(env or {})}
        with self.server(self.entry, port=port) as url:
            yield url

    def wait_for(self, predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        """Poll predicate every 0.1 s, at most `timeout` seconds."""
        for _ in range(int(timeout / 0.1)):
            with contextlib.suppress(OSError, ValueError):
                if predicate():
                    return
            time.sleep(0.1)
        raise smokelib.SmokeFailure(f"timed out after {timeout}s waiting for {what}")


def run_check(spec: AppSpec, tree: Path, home: Path) -> str | None:
    """Run the app's checks in tree; None when they pass, else why they failed."""
    session = NodeSession(app_dir=tree, deps_dir=tree / "node_modules", entry=spec.entry, home=home)
    try:
        load_smoke(spec)(session)
    except (smokelib.SmokeFailure, AssertionError, KeyError, IndexError, TypeError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}".strip()
    except Exception:  # noqa: BLE001 - report, never crash the whole benchmark
        return traceback.format_exc(limit=5)
    return None


def assert_isolated(root: Path, home: Path) -> None:
    """No node_modules above root, and nothing Node searches lies outside the tree."""
    for ancestor in [root, *root.parents]:
        if (ancestor / "node_modules").exists():
            raise BenchError(f"{ancestor / 'node_modules'} exists: the trees under {root} would see it; "
                             "use a --cache with no node_modules above it")
    probe = root / "isolation-probe"
    probe.mkdir(exist_ok=True)
    script = ("const m = require('node:module');"
              "console.log(JSON.stringify([...m._nodeModulePaths(process.cwd()), ...m.globalPaths]))")
    out = checked(["node", "-e", script], probe, 60, node_env(home))
    visible = [p for p in json.loads(out) if os.path.exists(p)]
    probe.rmdir()
    if visible:
        raise BenchError(f"Node would search outside the trees: {visible}")


# --- trees ------------------------------------------------------------------------


def tree_size(root: Path, skip_top: frozenset[str] = frozenset()) -> tuple[int, int]:
    """(bytes, files) of the regular files under root, symlinks not followed."""
    total = count = 0
    for dirpath, _dirnames, filenames in os.walk(root):
        for filename in filenames:
            if dirpath == str(root) and filename in skip_top:
                continue
            st = os.lstat(os.path.join(dirpath, filename))
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
                count += 1
    return total, count


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    return path


def copy_paths(src: Path, dst: Path, names: tuple[str, ...]) -> None:
    """Copy src/NAME for each name (or all of src) into dst, symlinks kept as symlinks."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in names or tuple(sorted(os.listdir(src))):
        if name == "node_modules":
            continue
        source, target = src / name, dst / name
        if source.is_dir() and not source.is_symlink():
            shutil.copytree(source, target, symlinks=True)
        else:
            shutil.copy2(source, target, follow_symlinks=False)


def copy_file_list(src: Path, dst: Path, files: list[str]) -> None:
    """Copy the listed files (relative to src) into dst, symlinks kept as symlinks."""
    for rel in files:
        source, target = src / rel, dst / rel
        if not os.path.lexists(source) or source.is_dir() and not source.is_symlink():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            os.symlink(os.readlink(source), target)
        else:
            shutil.copy2(source, target)


# --- installs ---------------------------------------------------------------------


@dataclass(frozen=True)
class Workspace:
    root: Path  # CACHE/node: no node_modules at or above it

    @property
    def npm_cache(self) -> Path:
        return self.root / "npm"

    @property
    def tools(self) -> Path:
        return self.root / "tools"

    @property
    def home(self) -> Path:
        return self.root / "home"

    def npm(self, *args: str) -> list[str]:
        return ["npm", *args, "--cache", str(self.npm_cache), "--no-audit", "--no-fund", "--loglevel=error"]

    def env(self) -> dict[str, str]:
        """For npm and the tools: the caller's environment (npm config, CA certificates) less
        NODE_PATH and NODE_OPTIONS."""
        return {k: v for k, v in os.environ.items() if k not in TOOL_ENV_DROP}


def ensure_tools(ws: Workspace) -> dict[str, str]:
    """Install the pinned peer tools into ws.tools (once); their installed versions."""
    manifest = {"name": "microprune-bench-tools", "private": True, "dependencies": TOOLS}
    package_json = ws.tools / "package.json"
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    installed = all((ws.tools / "node_modules" / name / "package.json").is_file() for name in TOOLS)
    if not installed or not package_json.is_file() or package_json.read_text() != text:
        log(f"installing {', '.join(f'{k}@{v}' for k, v in TOOLS.items())} into {ws.tools}")
        fresh(ws.tools).mkdir(parents=True)
        package_json.write_text(text)
        checked(ws.npm("install"), ws.tools, env=ws.env())
    (ws.tools / "nft-trace.mjs").write_text(NFT_SCRIPT.lstrip())
    return {name: json.loads((ws.tools / "node_modules" / name / "package.json").read_text())["version"]
            for name in TOOLS}


def install_app(spec: AppSpec, ws: Workspace, work: Path) -> tuple[Path, float]:
    """Build the app if it needs it, then `npm ci --omit=dev` the deployed app into work/full."""
    start = time.perf_counter()
    source = spec.app_dir
    if spec.build:
        build = fresh(work / "build")
        copy_paths(spec.app_dir, build, ())
        log(f"[{spec.name}] npm ci (with dev dependencies) and {shlex.join(spec.build)}")
        checked(ws.npm("ci"), build, env=ws.env())
        checked(list(spec.build), build, env=ws.env())
        source = build
    full = fresh(work / "full")
    copy_paths(source, full, spec.deploy)
    log(f"[{spec.name}] npm ci --omit=dev in {full}")
    checked(ws.npm("ci", "--omit=dev"), full, env=ws.env())
    if not (full / spec.entry).is_file():
        raise BenchError(f"the entry {spec.entry} is not in the installed app {full}")
    return full, time.perf_counter() - start


# --- the variants -------------------------------------------------------------------


def node_prune(ws: Workspace, full: Path, out: Path) -> Path:
    shutil.copytree(full, fresh(out), symlinks=True)
    checked(["bash", str(ws.tools / "node_modules" / "node-prune" / "prune.sh")], out, TOOL_TIMEOUT, ws.env())
    return out


def clean_modules(ws: Workspace, full: Path, out: Path) -> Path:
    shutil.copytree(full, fresh(out), symlinks=True)
    cli = ws.tools / "node_modules" / "clean-modules" / "bin" / "cli.js"
    checked(["node", str(cli), "--yes", "--silent", "--directory", str(out / "node_modules")],
            out, TOOL_TIMEOUT, ws.env())
    return out


def nft_trace(ws: Workspace, spec: AppSpec, full: Path, out_json: Path) -> tuple[float, dict]:
    """One nft trace of the entry: (wall seconds of the node process, its JSON result)."""
    cmd = ["node", str(ws.tools / "nft-trace.mjs"), str(full), spec.entry, str(out_json), json.dumps(NFT_OPTIONS)]
    start = time.perf_counter()
    checked(cmd, ws.tools, TOOL_TIMEOUT, ws.env())
    seconds = time.perf_counter() - start
    return seconds, json.loads(out_json.read_text())


@dataclass(frozen=True)
class Microprune:
    cmd: tuple[str, ...]
    env: dict[str, str] | None  # None: inherit

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        try:
            return run([*self.cmd, *args], REPO_DIR, TOOL_TIMEOUT, self.env)
        except OSError as exc:  # e.g. a --microprune that does not exist
            return subprocess.CompletedProcess(self.cmd, 127, "", f"cannot run {shlex.join(self.cmd)}: {exc}")


def mp_error(proc: subprocess.CompletedProcess[str]) -> str:
    return f"error (exit {proc.returncode}): {first_line(proc.stderr or proc.stdout)}"


def microprune_trace(mp: Microprune, spec: AppSpec, full: Path) -> tuple[float, list[str] | None, str | None]:
    """One `microprune trace`: (wall seconds, files or None, error or None)."""
    start = time.perf_counter()
    proc = mp("trace", str(full / spec.entry), "--base", str(full), "--format", "json")
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        return seconds, None, mp_error(proc)
    try:
        return seconds, list(json.loads(proc.stdout)["files"]), None
    except (ValueError, KeyError, TypeError) as exc:
        return seconds, None, f"error: unreadable trace JSON ({exc}): {first_line(proc.stdout)}"


def microprune_prune(mp: Microprune, spec: AppSpec, full: Path,
                     out: Path) -> tuple[float, dict | None, str | None]:
    """`microprune prune`: (wall seconds, JSON report or None, error or None)."""
    fresh(out)
    start = time.perf_counter()
    proc = mp("prune", str(full), "--out", str(out), "--entry", spec.entry, "--format", "json")
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        return seconds, None, mp_error(proc)
    try:
        report = json.loads(proc.stdout)
        Path(report["app_out"])
    except (ValueError, KeyError, TypeError) as exc:
        return seconds, None, f"error: unreadable prune JSON ({exc}): {first_line(proc.stdout)}"
    return seconds, report, None


# --- one app --------------------------------------------------------------------------


def variant_row(name: str, tree: Path | None, full_bytes: int | None,
                skip_top: frozenset[str] = frozenset()) -> dict:
    row: dict = {"variant": name, "tree": str(tree) if tree else None, "bytes": None, "files": None,
                 "percent_of_full": None, "check": None, "error": None}
    if tree is not None:
        row["bytes"], row["files"] = tree_size(tree, skip_top)
        if full_bytes:
            row["percent_of_full"] = round(100 * row["bytes"] / full_bytes, 1)
    return row


def check_variant(spec: AppSpec, row: dict, ws: Workspace) -> None:
    log(f"[{spec.name}] checks on {row['variant']}")
    row["check"] = run_check(spec, Path(row["tree"]), ws.home)


def timed_traces(spec: AppSpec, ws: Workspace, mp: Microprune, full: Path, work: Path, runs: int) -> dict:
    """nft and microprune traces, alternating, `runs` times each."""
    t: dict = {"nft_wall_seconds": [], "nft_trace_seconds": [], "microprune_seconds": [],
               "nft_result": None, "nft_error": None, "microprune_files": None, "microprune_error": None}
    for n in range(runs):
        log(f"[{spec.name}] trace {n + 1}/{runs}: @vercel/nft, then microprune trace")
        if t["nft_error"] is None:
            try:
                wall, result = nft_trace(ws, spec, full, work / "nft-trace.json")
            except (BenchError, ValueError, KeyError) as exc:
                t["nft_error"] = f"error: {exc}"
            else:
                t["nft_wall_seconds"].append(round(wall, 3))
                t["nft_trace_seconds"].append(round(result["seconds"], 3))
                t["nft_result"] = t["nft_result"] or result
        seconds, files, error = microprune_trace(mp, spec, full)
        t["microprune_seconds"].append(round(seconds, 3))
        t["microprune_files"], t["microprune_error"] = files, error
    return t


def nft_summary(traces: dict) -> dict:
    result = traces["nft_result"] or {"files": None, "warnings": []}
    walls, inside = traces["nft_wall_seconds"], traces["nft_trace_seconds"]
    return {"options": NFT_OPTIONS, "error": traces["nft_error"],
            "files_listed": None if result["files"] is None else len(result["files"]),
            # One line each: nft's messages carry the resolver's multi-line text.
            "warnings": [printable(" ".join(w.split())) for w in result["warnings"]],
            "wall_seconds": walls, "trace_seconds": inside,
            "wall_seconds_median": statistics.median(walls) if walls else None,
            "trace_seconds_median": statistics.median(inside) if inside else None}


def trace_side_by_side(spec: AppSpec, ws: Workspace, mp: Microprune, full: Path, work: Path, runs: int,
                       row: dict) -> None:
    """Time both tracers; copy nft's file list into work/nft (row["variants"]["nft"])."""
    traces = timed_traces(spec, ws, mp, full, work, runs)
    full_bytes = row["variants"]["full"]["bytes"]
    row["nft"] = nft_summary(traces)
    if traces["nft_error"]:
        row["variants"]["nft"] = variant_row("nft", None, full_bytes) | {"error": traces["nft_error"]}
    else:
        nft_tree = fresh(work / "nft")
        copy_file_list(full, nft_tree, traces["nft_result"]["files"])
        row["variants"]["nft"] = variant_row("nft", nft_tree, full_bytes)
    mp_seconds = traces["microprune_seconds"]
    row["microprune_trace"] = {"seconds": mp_seconds, "seconds_median": statistics.median(mp_seconds),
                               "error": traces["microprune_error"],
                               "files_listed": None if traces["microprune_files"] is None
                               else len(traces["microprune_files"])}
    row["ratio_nft_to_microprune"] = None
    if traces["microprune_error"] is None and traces["nft_error"] is None:
        row["ratio_nft_to_microprune"] = round(row["nft"]["wall_seconds_median"]
                                               / max(row["microprune_trace"]["seconds_median"], 1e-9), 2)


def prune_with_microprune(spec: AppSpec, mp: Microprune, full: Path, work: Path, row: dict) -> None:
    """`microprune prune` into work/microprune (row["variants"]["microprune"], row["microprune_prune"])."""
    log(f"[{spec.name}] microprune prune")
    full_bytes = row["variants"]["full"]["bytes"]
    seconds, report, error = microprune_prune(mp, spec, full, work / "microprune")
    row["microprune_prune"] = {"seconds": round(seconds, 3), "error": error}
    if report is None:
        row["variants"]["microprune"] = variant_row("microprune", None, full_bytes) | {"error": error}
        return
    # The report microprune writes beside the app is not part of the app.
    skip = frozenset() if (full / "microprune.json").exists() else frozenset({"microprune.json"})
    row["variants"]["microprune"] = variant_row("microprune", Path(report["app_out"]), full_bytes, skip)
    row["microprune_prune"].update(
        app_out=report["app_out"], deps_out=report.get("deps_out"), run=report.get("run"),
        totals=report.get("totals"),
        unresolved_warnings=sum(w.get("code") == "unresolved" for w in report.get("warnings", [])))


def measure_app(spec: AppSpec, ws: Workspace, mp: Microprune, runs: int) -> dict:
    work = ws.root / spec.name
    work.mkdir(parents=True, exist_ok=True)
    row: dict = {"app": spec.name, "entry": spec.entry, "error": None, "variants": {}}
    try:
        full, row["install_seconds"] = install_app(spec, ws, work)
    except BenchError as exc:
        row["error"] = str(exc)
        return row
    variants = row["variants"]
    variants["full"] = variant_row("full", full, None)
    full_bytes = variants["full"]["bytes"]
    variants["full"]["percent_of_full"] = 100.0
    for name, make in (("node-prune", node_prune), ("clean-modules", clean_modules)):
        log(f"[{spec.name}] {name}")
        try:
            variants[name] = variant_row(name, make(ws, full, work / name), full_bytes)
        except BenchError as exc:
            variants[name] = variant_row(name, None, full_bytes) | {"error": f"error: {exc}"}
    trace_side_by_side(spec, ws, mp, full, work, runs, row)
    prune_with_microprune(spec, mp, full, work, row)
    for variant in variants.values():
        if variant["tree"] is not None:
            check_variant(spec, variant, ws)
    return row


# --- reporting ----------------------------------------------------------------------------


def fmt_int(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def fmt_seconds(values: float | None) -> str:
    return "-" if values is None else f"{values:.2f}"


def check_cell(variant: dict) -> str:
    if variant["error"]:
        return "error"
    return "pass" if variant["check"] is None else "FAIL"


def table(header: list[str], rows: list[list[str]]) -> str:
    grid = [header, *rows]
    widths = [max(len(line[i]) for line in grid) for i in range(len(header))]
    lines = []
    for n, line in enumerate(grid):
        cells = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True))]
        lines.append(" | ".join(cells).rstrip())
        if n == 0:
            lines.append("-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def size_table(rows: list[dict]) -> str:
    body = []
    for r in rows:
        if r["error"]:
            body.append([r["app"], "full", "-", "-", "-", "error"])
            continue
        for name in VARIANTS:
            v = r["variants"].get(name)
            if v is None:
                continue
            percent = "-" if v["percent_of_full"] is None else f"{v['percent_of_full']:.1f}%"
            body.append([r["app"], name, fmt_int(v["bytes"]), fmt_int(v["files"]), percent, check_cell(v)])
    return table(["app", "variant", "bytes", "files", "% of full", "check"], body)


def timing_table(rows: list[dict]) -> str:
    body = []
    for r in rows:
        if r["error"]:
            continue
        nft, mp = r["nft"], r["microprune_trace"]
        ratio = "-" if r["ratio_nft_to_microprune"] is None else f"{r['ratio_nft_to_microprune']:.2f}x"
        body.append([r["app"], r["entry"], "error" if nft["error"] else fmt_seconds(nft["wall_seconds_median"]),
                     fmt_seconds(nft["trace_seconds_median"]), fmt_int(nft["files_listed"]),
                     "error" if mp["error"] else fmt_seconds(mp["seconds_median"]),
                     fmt_int(mp["files_listed"]), ratio])
    return table(["app", "entry", "nft s", "nft in-process s", "nft files", "microprune s",
                  "microprune files", "nft/microprune"], body)


def problem_lines(rows: list[dict]) -> list[str]:
    lines = []
    for r in rows:
        if r["error"]:
            lines.append(f"- {r['app']}: install failed:\n    " + r["error"].replace("\n", "\n    "))
            continue
        if r["microprune_trace"]["error"]:
            lines.append(f"- {r['app']}: microprune trace: {r['microprune_trace']['error']}")
        for v in r["variants"].values():
            if v["error"]:
                lines.append(f"- {r['app']} / {v['variant']}: {v['error']}")
            elif v["check"]:
                key = key_error_line(v["check"])
                lines.append(f"- {r['app']} / {v['variant']}: check failed: {key}")
                detail = [line for line in v["check"].strip().splitlines()[1:] if line.strip()]
                if detail and key != first_line(v["check"]):
                    lines.append("    " + smokelib.tail("\n".join(detail), 8).replace("\n", "\n    "))
        warnings = r["nft"]["warnings"]
        if warnings:
            more = f"\n    ... and {len(warnings) - 3} more" if len(warnings) > 3 else ""
            shown = "\n    ".join(warnings[:3]) + more
            lines.append(f"- {r['app']}: @vercel/nft warnings ({len(warnings)}):\n    {shown}")
    return lines


def format_report(result: dict) -> str:
    rows = list(result["apps"].values())
    out = [size_table(rows), "",
           (f"trace seconds, median of {result['runs']} run(s) (nft s and microprune s: wall time of "
            "the whole process; nft in-process: nodeFileTrace alone)"),
           timing_table(rows)]
    problems = problem_lines(rows)
    if problems:
        out += ["", "Problems:", *problems]
    tools = ", ".join(f"{k} {v}" for k, v in sorted(result["tools"].items()))
    about = result["microprune"]
    out += ["", f"node {result['node']}, npm {result['npm']}; {tools}; nft options {json.dumps(NFT_OPTIONS)}",
            f"microprune: {shlex.join(about['command'])} ({about['version']}) at {about['git_head']}"
            + (" (uncommitted changes in src/ or analyzers/)" if about["git_dirty"] else "")]
    return "\n".join(out)


# --- main --------------------------------------------------------------------------------


def microprune_command(arg: str | None) -> Microprune:
    if arg or os.environ.get("MICROPRUNE"):
        return Microprune(tuple(shlex.split(arg or os.environ["MICROPRUNE"])), None)
    if shutil.which("microprune"):
        return Microprune(("microprune",), None)
    if (REPO_DIR / ".venv" / "bin" / "microprune").is_file():  # the README's install
        return Microprune((str(REPO_DIR / ".venv" / "bin" / "microprune"),), None)
    # This checkout, uninstalled: the core in src/, the analyzers in analyzers/.
    path = os.pathsep.join([str(REPO_DIR / "src"), str(REPO_DIR / "analyzers"), os.environ.get("PYTHONPATH", "")])
    return Microprune((sys.executable, "-m", "microprune"), {**os.environ, "PYTHONPATH": path.rstrip(os.pathsep)})


def describe(mp: Microprune) -> dict:
    """Which microprune was measured: its --version, and the git state of this checkout."""
    def output(cmd: list[str], env: dict[str, str] | None = None) -> str | None:
        try:
            proc = run(cmd, REPO_DIR, 60, env)
        except OSError:
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    repo = ["git", "-C", str(REPO_DIR)]
    status = output([*repo, "status", "--porcelain", "--", "src", "analyzers"])
    return {"command": list(mp.cmd), "version": output([*mp.cmd, "--version"], mp.env),
            "git_head": output([*repo, "rev-parse", "HEAD"]), "git_dirty": None if status is None else bool(status)}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--app", action="append", choices=all_app_names(),
                        help="app to run (repeatable; default: all)")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "microprune-bench",
                        help="work directory; the Node trees go to CACHE/node")
    parser.add_argument("--runs", type=int, default=3, help="trace runs per tool and app (median reported)")
    parser.add_argument("--microprune", metavar="CMD", help="microprune command (default: $MICROPRUNE, PATH, "
                        "else this checkout via python3 -m microprune)")
    parser.add_argument("--json", action="store_true", help="print JSON (sorted keys) instead of the tables")
    parser.add_argument("--json-out", type=Path, metavar="FILE",
                        help="also write the JSON to FILE (the tables still go to stdout)")
    parser.add_argument("--check", type=Path, metavar="TREE",
                        help="only run the checks of the one --app in TREE")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.check and len(args.app or []) != 1:
        parser.error("--check needs exactly one --app")
    for tool in ("node", "npm", "bash"):
        if not shutil.which(tool):
            parser.error(f"{tool} not found on PATH")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    ws = Workspace(args.cache.expanduser().resolve() / "node")
    for directory in (ws.root, ws.home, ws.npm_cache):
        directory.mkdir(parents=True, exist_ok=True)
    try:
        assert_isolated(ws.root, ws.home)
    except BenchError as exc:
        log(f"bench: {exc}")
        return 1
    if args.check:
        error = run_check(load_spec(args.app[0]), args.check.resolve(), ws.home)
        print("check: pass" if error is None else f"check: FAIL\n{error}")
        return 0 if error is None else 1

    mp = microprune_command(args.microprune)
    log(smokelib.compile_microprune(mp.cmd, mp.env))       # as an installed copy has it
    try:
        tools = ensure_tools(ws)
    except BenchError as exc:
        log(f"bench: installing the peer tools failed: {exc}")
        return 1
    rows = [measure_app(load_spec(name), ws, mp, args.runs) for name in (args.app or all_app_names())]
    result = {"apps": {r["app"]: r for r in rows}, "runs": args.runs, "tools": tools, "nft_options": NFT_OPTIONS,
              "node": checked(["node", "--version"], ws.root).strip(),
              "npm": checked(["npm", "--version"], ws.root, env=ws.env()).strip(),
              "microprune": describe(mp)}
    full_passes = all(not r["error"] and r["variants"]["full"]["check"] is None for r in rows)
    result["full_install_passes"] = full_passes
    text = json.dumps(result, indent=2, sort_keys=True)
    if args.json_out:
        args.json_out.write_text(text + "\n")
    print(text if args.json else format_report(result))
    return 0 if full_passes else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
