"""Benchmark microprune on real Python apps (stdlib only, Python 3.11).

For each app under bench/apps/python/<name>/ (app code in app/, its
requirements.txt, bench.toml with the --entry/--keep arguments, smoke.py):

  1. `python3 -m pip install --target CACHE/<name>/deps -r requirements.txt`
     (skipped when CACHE/<name>/deps already matches requirements.txt);
  2. measures the full deps, and a naive strip (no tests/ test/ docs/
     __pycache__ directories, no *.pyc files);
  3. runs the smoke check on the full deps, plainly and then under
     recorder.py, to get the runtime lower bound: every file under the deps
     that the app imported, opened or mapped (bytecode caches counted as
     their .py source, since microprune's output has no bytecode caches);
  4. runs `microprune prune` --runs times (the median wall time is reported),
     measures the pruned deps on disk and runs the smoke check on them.

Every smoke run is `python3 -S ...` with PYTHONPATH=<deps> only, so the host's
site-packages are invisible. Servers bind 127.0.0.1 only.

Usage:
    python3 bench/bench_python.py [--app NAME]... [--cache DIR] [--runs N]
        [--microprune PATH] [--json] [--json-out FILE] [--sabotage]

    --microprune  the microprune command (default: $MICROPRUNE, else `microprune` on PATH)
    --json        print the results as JSON (sorted keys) instead of the table
    --json-out F  also write that JSON to file F
    --sabotage    also delete each app's bench.toml `sabotage` file from a copy
                  of its pruned deps and check that the smoke check then fails
    --smoke APP_DIR DEPS_DIR
                  only run one app's smoke check (needs exactly one --app)

Progress goes to stderr; the table (or JSON) to stdout. Exit status 0 when
every app's smoke check passes on the full and the pruned deps, else 1.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import stat
import statistics
import subprocess
import sys
import time
import tomllib
import traceback
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
APPS_DIR = BENCH_DIR / "apps" / "python"
sys.path.insert(0, str(BENCH_DIR))

import recorder  # noqa: E402
import smokelib  # noqa: E402

STRIP_DIRS = {"tests", "test", "docs", "__pycache__"}
LOWER_BOUND_TARGET = 1.3
MICROPRUNE_TIMEOUT = 600


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- apps -------------------------------------------------------------------


@dataclass(frozen=True)
class AppSpec:
    name: str
    root: Path  # bench/apps/python/<name>
    entries: tuple[str, ...]
    keep: tuple[str, ...]
    sabotage: str | None

    @property
    def app_dir(self) -> Path:
        return self.root / "app"

    @property
    def requirements(self) -> Path:
        return self.root / "requirements.txt"


def all_app_names() -> list[str]:
    return sorted(p.name for p in APPS_DIR.iterdir() if (p / "bench.toml").is_file())


def load_spec(name: str) -> AppSpec:
    root = APPS_DIR / name
    config = tomllib.loads((root / "bench.toml").read_text())
    return AppSpec(name, root, tuple(config["entries"]), tuple(config.get("keep", [])),
                   config.get("sabotage"))


def load_smoke(spec: AppSpec):
    """The smoke(session) function of the app's smoke.py."""
    module_spec = importlib.util.spec_from_file_location(f"smoke_{spec.name}", spec.root / "smoke.py")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.smoke


# --- deps -------------------------------------------------------------------


def ensure_deps(spec: AppSpec, cache: Path) -> Path:
    """pip install --target the app's requirements, unless already done for this file."""
    deps = cache / spec.name / "deps"
    stamp = cache / spec.name / "deps.sha256"
    digest = hashlib.sha256(spec.requirements.read_bytes()).hexdigest()
    if deps.is_dir() and stamp.is_file() and stamp.read_text().strip() == digest:
        return deps
    log(f"[{spec.name}] pip install --target {deps}")
    staging = deps.with_name("deps.partial")
    shutil.rmtree(staging, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "--target", str(staging), "-r", str(spec.requirements)], check=True)
    shutil.rmtree(deps, ignore_errors=True)
    staging.rename(deps)
    stamp.write_text(digest + "\n")
    return deps


# --- measuring trees ----------------------------------------------------------


def regular_files(root: Path, stripped: bool = False, only_bytecode: bool | None = None):
    """Yield (relative path, size) of regular files under root.

    stripped=True skips what a naive strip deletes: directories named
    tests/test/docs/__pycache__ and *.pyc files. only_bytecode=True yields only
    files under __pycache__, False everything else (None: all files).
    """
    for dirpath, dirnames, filenames in os.walk(root):
        if stripped:
            dirnames[:] = [d for d in dirnames if d not in STRIP_DIRS]
        in_cache = "__pycache__" in Path(dirpath).parts
        if only_bytecode is not None and in_cache != only_bytecode:
            continue
        for filename in filenames:
            if stripped and filename.endswith(".pyc"):
                continue
            path = os.path.join(dirpath, filename)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                yield os.path.relpath(path, root), st.st_size


def tree_size(root: Path, stripped: bool = False, only_bytecode: bool | None = None) -> tuple[int, int]:
    """(bytes, files) of the regular files under root."""
    sizes = [size for _, size in regular_files(root, stripped, only_bytecode)]
    return sum(sizes), len(sizes)


def as_source(path: str) -> str:
    """A bytecode cache counts as its .py source when that source exists."""
    if path.endswith(".pyc") and "__pycache__" in path:
        try:
            source = importlib.util.source_from_cache(path)
        except ValueError:
            return path
        if os.path.isfile(source):
            return source
    return path


def lower_bound_files(recorded: set[str], deps: Path) -> dict[str, int]:
    """Relative path -> size of the recorded regular files under deps."""
    root = os.path.realpath(deps)
    files = {}
    for path in map(as_source, recorded):
        if path.startswith(root + os.sep) and os.path.isfile(path):
            files[os.path.relpath(path, root)] = os.path.getsize(path)
    return files


# --- smoke checks -------------------------------------------------------------


def run_smoke(spec: AppSpec, app_dir: Path, deps: Path, record_to: Path | None = None) -> str | None:
    """Run the app's smoke check; None when it passes, else why it failed."""
    session = smokelib.Session(app_dir=app_dir, deps_dir=deps, record_to=record_to)
    try:
        load_smoke(spec)(session)
    except (smokelib.SmokeFailure, AssertionError, KeyError, TypeError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}".strip()
    except Exception:  # noqa: BLE001 - report, never crash the whole benchmark
        return traceback.format_exc(limit=5)
    return None


def record_lower_bound(spec: AppSpec, deps: Path, workdir: Path) -> tuple[str | None, dict[str, int]]:
    """Smoke-run the app under recorder.py on the full deps; the files it loaded."""
    outfile = workdir / "recorded.txt"
    outfile.unlink(missing_ok=True)
    error = run_smoke(spec, spec.app_dir, deps, record_to=outfile)
    return error, lower_bound_files(recorder.load(str(outfile)), deps)


# --- microprune ---------------------------------------------------------------


def prune_command(microprune: list[str], spec: AppSpec, deps: Path, out: Path) -> list[str]:
    cmd = [*microprune, "prune", str(spec.app_dir), "--out", str(out), "--deps", str(deps)]
    for entry in spec.entries:
        cmd += ["--entry", entry]
    for pattern in spec.keep:
        cmd += ["--keep", pattern]
    return cmd + ["--format", "json", "--force"]


def run_microprune(cmd: list[str], runs: int) -> tuple[dict | None, list[float], str | None]:
    """Run the prune command `runs` times: (last JSON report, wall times, error)."""
    times, report = [], None
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=MICROPRUNE_TIMEOUT)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            return None, times, f"exit {proc.returncode}\n{smokelib.tail(proc.stderr or proc.stdout)}"
        report = json.loads(proc.stdout)
    return report, times, None


# --- one app ------------------------------------------------------------------


def sabotage(spec: AppSpec, pruned_app: Path, pruned_deps: Path, workdir: Path) -> dict:
    """Delete a needed file from a copy of the pruned deps: the smoke check must fail."""
    result = {"deleted": spec.sabotage, "smoke_failed": None, "error": None}
    copy = workdir / "sabotaged-deps"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(pruned_deps, copy, symlinks=True)
    victim = copy / spec.sabotage
    if not victim.is_file():
        result["error"] = "file not in the pruned deps"
        return result
    victim.unlink()
    error = run_smoke(spec, pruned_app, copy)
    result.update(smoke_failed=error is not None, error=error)
    shutil.rmtree(copy, ignore_errors=True)
    return result


def measure_app(spec: AppSpec, cache: Path, microprune: list[str], runs: int, do_sabotage: bool) -> dict:
    work = cache / spec.name
    deps = ensure_deps(spec, cache)
    row: dict = {"app": spec.name, "entries": list(spec.entries), "keep": list(spec.keep)}
    row["full_bytes"], row["full_files"] = tree_size(deps)
    row["strip_only_bytes"], row["strip_only_files"] = tree_size(deps, stripped=True)

    log(f"[{spec.name}] smoke check on the full deps")
    row["smoke_full_error"] = run_smoke(spec, spec.app_dir, deps)
    log(f"[{spec.name}] smoke check on the full deps, recording the files it loads")
    row["smoke_recorded_error"], lower = record_lower_bound(spec, deps, work)
    row["lower_bound_bytes"], row["lower_bound_files"] = sum(lower.values()), len(lower)

    out = work / "pruned"
    cmd = prune_command(microprune, spec, deps, out)
    row["microprune_command"] = " ".join(cmd)
    log(f"[{spec.name}] microprune prune x{runs}")
    report, times, row["microprune_error"] = run_microprune(cmd, runs)
    row["prune_seconds"] = [round(t, 3) for t in times]
    row["prune_seconds_median"] = round(statistics.median(times), 3)
    row.update(pruned_bytes=None, pruned_files=None, ratio_to_lower_bound=None,
               smoke_pruned_error="not run: microprune failed", missing_from_pruned=[])
    if report is None:
        return row
    pruned_app, pruned_deps = Path(report["app_out"]), Path(report["deps_out"])
    # Source against source: the lower bound counts a .pyc that was read as its .py, so
    # the bytecode microprune compiles for the kept modules is reported on its own.
    row["pruned_bytes"], row["pruned_files"] = tree_size(pruned_deps, only_bytecode=False)
    row["bytecode_bytes"], _ = tree_size(pruned_deps, only_bytecode=True)
    row["report_deps_totals"] = report["deps_totals"]
    row["report_unresolved_warnings"] = sum(w.get("code") == "unresolved" for w in report["warnings"])
    row["ratio_to_lower_bound"] = round(row["pruned_bytes"] / max(row["lower_bound_bytes"], 1), 3)
    row["missing_from_pruned"] = sorted(p for p in lower if not (pruned_deps / p).is_file())
    log(f"[{spec.name}] smoke check on the pruned deps")
    row["smoke_pruned_error"] = run_smoke(spec, pruned_app, pruned_deps)
    if do_sabotage and spec.sabotage:
        log(f"[{spec.name}] sabotage: delete {spec.sabotage} from a copy of the pruned deps")
        row["sabotage"] = sabotage(spec, pruned_app, pruned_deps, work)
    return row


# --- reporting ----------------------------------------------------------------


COLUMNS = [
    ("app", "app"),
    ("full bytes", "full_bytes"),
    ("full files", "full_files"),
    ("strip-only bytes", "strip_only_bytes"),
    ("pruned bytes", "pruned_bytes"),
    ("pruned files", "pruned_files"),
    ("+ bytecode", "bytecode_bytes"),
    ("lower bound bytes", "lower_bound_bytes"),
    ("pruned/LB", "ratio_to_lower_bound"),
    ("smoke full", "smoke_full_error"),
    ("smoke pruned", "smoke_pruned_error"),
    ("trace+prune s", "prune_seconds_median"),
]


def cell(key: str, value: object) -> str:
    if key.startswith("smoke_"):
        return "pass" if value is None else "FAIL"
    if value is None:
        return "-"
    if key == "ratio_to_lower_bound":
        return f"{value:.2f}x"
    if key == "prune_seconds_median":
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def format_table(rows: list[dict]) -> str:
    grid = [[title for title, _ in COLUMNS]]
    grid += [[cell(key, row.get(key)) for _, key in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in grid) for i in range(len(COLUMNS))]
    lines = []
    for n, line in enumerate(grid):
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True))]
        lines.append(" | ".join(cells))
        if n == 0:
            lines.append("-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def evaluate_targets(rows: list[dict]) -> dict[str, dict]:
    """The three targets, each with pass/fail and the apps that miss it."""
    def verdict(misses: list[str]) -> dict:
        return {"pass": not misses, "misses": misses}

    failing = [r["app"] for r in rows if r["smoke_full_error"] or r["smoke_pruned_error"]]
    too_big = [f"{r['app']} ({cell('ratio_to_lower_bound', r['ratio_to_lower_bound'])})" for r in rows
               if r["ratio_to_lower_bound"] is None or r["ratio_to_lower_bound"] > LOWER_BOUND_TARGET]
    not_smaller = [r["app"] for r in rows
                   if r["pruned_bytes"] is None or r["pruned_bytes"] >= r["strip_only_bytes"]]
    return {
        "every app passes": verdict(failing),
        f"pruned <= {LOWER_BOUND_TARGET}x lower bound": verdict(too_big),
        "pruned < strip-only": verdict(not_smaller),
    }


def format_details(rows: list[dict], targets: dict[str, dict]) -> str:
    lines = [""]
    for r in rows:
        ratio = cell("ratio_to_lower_bound", r["ratio_to_lower_bound"])
        lines.append(f"{r['app']}: median trace+prune {r['prune_seconds_median']:.2f} s "
                     f"(runs: {', '.join(f'{t:.2f}' for t in r['prune_seconds'])}), pruned/lower-bound {ratio}")
    lines.append("")
    for name, result in targets.items():
        status = "PASS" if result["pass"] else "FAIL: " + ", ".join(result["misses"])
        lines.append(f"target {name}: {status}")
    problems = problem_lines(rows)
    if problems:
        lines += ["", "Problems:"] + problems
    return "\n".join(lines)


def key_error_line(text: str) -> str:
    """The most telling line of an error: an import error if there is one, else the first."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    for line in lines:
        if "ImportError" in line or "ModuleNotFoundError" in line or "No module named" in line:
            return line
    return lines[0] if lines else ""


def problem_lines(rows: list[dict]) -> list[str]:
    lines = []
    for r in rows:
        for key, label in [("smoke_full_error", "smoke on full deps"),
                           ("smoke_recorded_error", "smoke under the recorder"),
                           ("microprune_error", "microprune prune"),
                           ("smoke_pruned_error", "smoke on pruned deps")]:
            if r.get(key) and not (key == "smoke_pruned_error" and r.get("microprune_error")):
                lines.append(f"- {r['app']}: {label} failed:\n    " + r[key].replace("\n", "\n    "))
        if r["missing_from_pruned"]:
            lines.append(f"- {r['app']}: {len(r['missing_from_pruned'])} file(s) loaded at run time "
                         f"(on the full deps) are not in the pruned deps: "
                         + ", ".join(r["missing_from_pruned"][:20]))
        if "sabotage" in r:
            s = r["sabotage"]
            outcome = "smoke failed as it should" if s["smoke_failed"] else "SMOKE DID NOT FAIL"
            lines.append(f"- {r['app']}: sabotage (deleted {s['deleted']}): {outcome}: "
                         + key_error_line(s["error"] or ""))
    return lines


# --- main ---------------------------------------------------------------------


def microprune_command(arg: str | None) -> list[str]:
    command = arg or os.environ.get("MICROPRUNE") or shutil.which("microprune")
    if not command:
        sys.exit("bench: microprune not found: pass --microprune PATH or set $MICROPRUNE")
    return [command]


def describe_microprune(microprune: list[str]) -> dict:
    """Which microprune was measured: its --version, and the git state of this checkout."""
    def output(cmd: list[str]) -> str | None:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    repo = ["git", "-C", str(BENCH_DIR.parent)]
    status = output([*repo, "status", "--porcelain", "--", "src", "analyzers"])
    return {"version": output([*microprune, "--version"]), "git_head": output([*repo, "rev-parse", "HEAD"]),
            "git_dirty": None if status is None else bool(status)}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--app", action="append", choices=all_app_names(),
                        help="app to run (repeatable; default: all)")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "microprune-bench")
    parser.add_argument("--runs", type=int, default=3, help="microprune runs per app (median reported)")
    parser.add_argument("--microprune", help="microprune command (default: $MICROPRUNE or PATH)")
    parser.add_argument("--json", action="store_true", help="print JSON (sorted keys) instead of the table")
    parser.add_argument("--json-out", type=Path, metavar="FILE",
                        help="also write the JSON to FILE (the table still goes to stdout)")
    parser.add_argument("--sabotage", action="store_true",
                        help="prove the smoke checks fail when a needed file is missing")
    parser.add_argument("--smoke", nargs=2, metavar=("APP_DIR", "DEPS_DIR"),
                        help="only run the smoke check of the one --app on these directories")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.smoke and len(args.app or []) != 1:
        parser.error("--smoke needs exactly one --app")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.smoke:
        error = run_smoke(load_spec(args.app[0]), Path(args.smoke[0]).resolve(), Path(args.smoke[1]).resolve())
        print("smoke: pass" if error is None else f"smoke: FAIL\n{error}")
        return 0 if error is None else 1
    microprune = microprune_command(args.microprune)
    log(smokelib.compile_microprune(microprune))           # as an installed copy has it
    args.cache.mkdir(parents=True, exist_ok=True)
    rows = [measure_app(load_spec(name), args.cache.resolve(), microprune, args.runs, args.sabotage)
            for name in (args.app or all_app_names())]
    targets = evaluate_targets(rows)
    result = {"apps": {r["app"]: r for r in rows}, "targets": targets, "runs": args.runs,
              "python": sys.version.split()[0], "lower_bound_target": LOWER_BOUND_TARGET,
              "microprune": describe_microprune(microprune)}
    text = json.dumps(result, indent=2, sort_keys=True)
    if args.json_out:
        args.json_out.write_text(text + "\n")
    if args.json:
        print(text)
    else:
        print(format_table(rows))
        print(format_details(rows, targets))
        about = result["microprune"]
        print(f"\nmicroprune: {about['version']} at {about['git_head']}"
              + (" (uncommitted changes in src/ or analyzers/)" if about["git_dirty"] else ""))
    return 0 if targets["every app passes"]["pass"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
