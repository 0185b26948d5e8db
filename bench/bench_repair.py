"""Benchmark static analysis, a run profile and repair on the benchmark apps (stdlib only, Python 3.11).

For every app of bench_python.py (bench/apps/python/) and bench_node.py
(bench/apps/node/), with the same dependency caches and the same smoke checks:

  lower bound   the bytes of the dependency files the app really loads at run time
                (Python: bench_python's recorder.py over the smoke run on the full
                deps, bytecode caches counted as their source; Node: the files of
                node_modules that `microprune trace --run` saw the smoke run load or
                read, plus the package.json nearest to each loaded .js/.cjs/.mjs,
                which Node reads to tell CommonJS from ESM);
  static        `microprune prune` (bench.toml's entries and keep), then
                `microprune verify OUT --smoke SMOKE`;
  + profile     `microprune trace APP --deps DEPS --run SMOKE --out PROFILE`, then
                `microprune prune ... --profile PROFILE` and verify (the union of the
                static trace and the profile);
  trusted       `microprune prune ... --profile PROFILE --trust-profile` and verify
                (what may run but no recorded run loaded is dropped);
  repaired      `microprune prune ... --smoke SMOKE --repair` on its own copy of the
                app (repair writes keep entries into the app's configuration).

SMOKE is the app's smoke check as a shell command, run in the (pruned) app's
directory: `python3 -S bench/bench_repair.py --smoke-here LANGUAGE APP`. It runs
the app's smoke.py with `python3`/`node` from PATH and the environment it was
given, so `microprune verify` isolates it (python3 is verify's -S shim with
PYTHONPATH on the pruned tree; Node gets no NODE_PATH/NODE_OPTIONS and an empty
HOME) and `trace --run` records it (its sitecustomize/--require hook). The
recorder needs `site`, so for `trace --run` a bare virtualenv's bin (no packages,
no system site-packages) comes first on PATH: the host's site-packages and its
.pth files (which may import and even append to certifi's cacert.pem in the deps)
stay out of the profile and out of the cache. The Python deps cache is
fingerprinted (path, size, mtime) before and after each app; a change is a problem.

Kept bytes are the dependency files kept, measured in the input deps (so before
`--strip debug`, and without the .pyc files prune adds): the same measure as the
lower bound. Every pruned tree is also checked with the bench's own smoke runner
(bench_python/bench_node); a disagreement with verify is listed as a problem.

The apps are copied into CACHE/repair/<app>/ (bench/apps and the dependency caches
are never written). The Node production installs are bench_node's
CACHE/node/<app>/full, made by bench_node's installer when missing or stale.

Targets (issue 5): no app needs a repair with static analysis alone, and with a
profile the kept bytes stay within 1.2x of the runtime lower bound. The union
cannot go below the static trace, so the size target is judged on `trusted`
(both are shown).

Usage:
    python3 bench/bench_repair.py [--app NAME]... [--cache DIR] [--microprune CMD]
        [--timeout S] [--reinstall] [--json] [--json-out FILE]
    python3 -S bench/bench_repair.py --smoke-here python|node APP

    --microprune  the microprune command, split like a shell would (default:
                  $MICROPRUNE, else as bench_node.py finds it)
    --timeout S   seconds each smoke run may take under verify/trace (default 300)
    --reinstall   install the Node apps again even when the cached install matches
    --smoke-here  run one app's smoke check in the current directory (the command
                  that verify, trace --run and --repair run); exit 0 if it passes

Progress goes to stderr; the table (or JSON) to stdout. Exit status 0 when every
target is met, else 1.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import stat
import sys
import traceback
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
SCRIPT = Path(__file__).resolve()
sys.path.insert(0, str(BENCH_DIR))

import bench_node  # noqa: E402
import bench_python  # noqa: E402
import smokelib  # noqa: E402

PROFILE_TARGET = 1.2
SMOKE_TIMEOUT = 300.0
LANGUAGES = ("python", "node")
VARIANTS = ("static", "profile", "trusted", "repaired")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the smoke check as a command ------------------------------------------------------


class HerePythonSession(smokelib.Session):
    """smokelib.Session that runs `python3 ARGS` from PATH with the environment it was given:
    under `microprune verify` python3 is verify's -S shim with PYTHONPATH on the pruned tree;
    under `trace --run` it is the host's python3 with the recorder's sitecustomize on PYTHONPATH."""

    def python(self, *args: str) -> list[str]:
        return [shutil.which("python3") or sys.executable, *args]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8",
                   NO_COLOR="1", TERM="dumb", COLUMNS="120")
        return env


class HereNodeSession(bench_node.NodeSession):
    """bench_node.NodeSession that keeps the environment it was given (verify's, or trace's
    NODE_OPTIONS --require recorder) instead of dropping every NODE_* variable."""

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(NO_COLOR="1", TERM="dumb", TZ="UTC", LANG="C.UTF-8")
        env.update(self.extra_env)
        return env


def smoke_here(language: str, name: str, timeout: float) -> int:
    """Run app NAME's smoke check in the current directory; print why it failed."""
    here = Path.cwd()
    if language == "python":
        spec = bench_python.load_spec(name)
        first = os.environ.get("PYTHONPATH", "").split(os.pathsep)[0]
        session = HerePythonSession(app_dir=here, deps_dir=Path(first or here), timeout=timeout)
        smoke = bench_python.load_smoke(spec)
    else:
        spec = bench_node.load_spec(name)
        session = HereNodeSession(app_dir=here, deps_dir=here / "node_modules", timeout=timeout, entry=spec.entry)
        smoke = bench_node.load_smoke(spec)
    try:
        smoke(session)
    except (smokelib.SmokeFailure, AssertionError, KeyError, IndexError, TypeError, ValueError) as exc:
        print(f"smoke: FAIL: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
    except Exception:  # noqa: BLE001 - the failure is the output
        print("smoke: FAIL\n" + traceback.format_exc(limit=5), file=sys.stderr, flush=True)
        return 1
    print(f"smoke: pass ({name}, {language}, in {here})", flush=True)
    return 0


def smoke_command(language: str, name: str, timeout: float) -> str:
    """The app's smoke check as a shell command run in the app's directory."""
    return (f"PYTHONDONTWRITEBYTECODE=1 {shlex.quote(sys.executable)} -S {shlex.quote(str(SCRIPT))} "
            f"--smoke-here {language} {name} --timeout {timeout:g}")


def bare_python(root: Path) -> Path:
    """A virtualenv of this interpreter with no packages and no system site-packages (its bin)."""
    bin_dir = root / "bin"
    if not (bin_dir / "python3").exists():
        fresh(root)
        bench_node.checked([sys.executable, "-m", "venv", "--without-pip", str(root)], root.parent, 300)
    return bin_dir


def trace_command(smoke: str, language: str, bare_bin: Path) -> str:
    """The smoke command for `trace --run`: Python apps get the bare virtualenv's python3 first on PATH."""
    if language != "python":
        return smoke
    return f'PATH={shlex.quote(str(bare_bin))}:"$PATH" {smoke}'


# --- apps ------------------------------------------------------------------------------


@dataclass(frozen=True)
class App:
    language: str
    name: str

    @property
    def label(self) -> str:
        return f"{self.language}/{self.name}"


def all_apps() -> list[App]:
    return ([App("python", n) for n in bench_python.all_app_names()]
            + [App("node", n) for n in bench_node.all_app_names()])


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    return path


def copy_tree(source: Path, target: Path) -> Path:
    shutil.copytree(source, fresh(target), symlinks=True)
    return target


def node_install(spec: bench_node.AppSpec, ws: bench_node.Workspace, reinstall: bool) -> Path:
    """bench_node's production install CACHE/node/<app>/full, installed when missing or stale."""
    work = ws.root / spec.name
    full = work / "full"
    same = all((full / name).is_file() and (full / name).read_bytes() == (spec.app_dir / name).read_bytes()
               for name in ("package.json", "package-lock.json"))
    if reinstall or not same or not (full / spec.entry).is_file() or not (full / "node_modules").is_dir():
        work.mkdir(parents=True, exist_ok=True)
        full, _ = bench_node.install_app(spec, ws, work)
    return full


# --- measuring -------------------------------------------------------------------------


def regular_size(path: Path) -> int | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def kept_files(out_deps: Path, in_deps: Path, language: str) -> dict[str, int]:
    """Relative path -> size in the input deps of every dependency file kept in out_deps
    (Python: bytecode caches left out, prune adds them)."""
    files: dict[str, int] = {}
    for dirpath, dirnames, filenames in os.walk(out_deps):
        if language == "python":
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for filename in filenames:
            path = Path(dirpath, filename)
            on_disk = regular_size(path)
            if on_disk is None:
                continue
            rel = path.relative_to(out_deps).as_posix()
            original = regular_size(in_deps / rel)
            files[rel] = on_disk if original is None else original
    return files


def disk_bytes(out_deps: Path, language: str) -> tuple[int, int]:
    """(bytes of the kept files as written, bytes of the bytecode prune added)."""
    kept = bytecode = 0
    for dirpath, _dirnames, filenames in os.walk(out_deps):
        in_cache = language == "python" and "__pycache__" in Path(dirpath).parts
        for filename in filenames:
            size = regular_size(Path(dirpath, filename)) or 0
            if in_cache:
                bytecode += size
            else:
                kept += size
    return kept, bytecode


def fingerprint(root: Path) -> dict[str, tuple[int, int]]:
    """Relative path -> (size, mtime_ns) of every entry under root (symlinks not followed)."""
    result = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            result[os.path.relpath(os.path.join(dirpath, name), root)] = (st.st_size if stat.S_ISREG(st.st_mode)
                                                                          else 0, st.st_mtime_ns)
    return result


def changes(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> list[str]:
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


def profile_deps_files(profile: dict, in_deps: Path, language: str) -> dict[str, int]:
    """Relative path -> size of the regular files under the deps that a profile lists."""
    files: dict[str, int] = {}
    for item in profile.get("files", []):
        root, _, rel = str(item).partition("/")
        if root != "deps" or not rel:
            continue
        path = in_deps / rel
        if language == "python":
            path = Path(bench_python.as_source(str(path)))
        size = regular_size(path)
        if size is not None:
            files[path.relative_to(in_deps).as_posix()] = size
    return files


def with_package_scopes(files: dict[str, int], in_deps: Path) -> dict[str, int]:
    """files plus the nearest package.json of every .js/.cjs/.mjs (Node reads it to load the file)."""
    result = dict(files)
    for rel in files:
        if not rel.endswith((".js", ".cjs", ".mjs")):
            continue
        parent = Path(rel).parent
        while True:
            candidate = (parent / "package.json").as_posix()
            size = regular_size(in_deps / candidate)
            if size is not None:
                result[candidate] = size
                break
            if parent == Path("."):
                break
            parent = parent.parent
    return result


def group_bytes(files: dict[str, int], top: int = 5) -> list[tuple[str, int]]:
    """The largest groups (first two path components) of files, by bytes."""
    groups: Counter[str] = Counter()
    for rel, size in files.items():
        parts = rel.split("/")
        depth = 3 if parts[0].startswith("@") else 2
        groups["/".join(parts[:depth]) if len(parts) > depth else rel] += size
    return groups.most_common(top)


# --- microprune ------------------------------------------------------------------------


def mp_run(mp: bench_node.Microprune, args: list[str]) -> tuple[int, dict | None, str]:
    """(exit code, parsed JSON stdout or None, stderr) of one microprune command."""
    proc = mp(*args)
    try:
        data = json.loads(proc.stdout) if proc.stdout.strip() else None
    except ValueError:
        data = None
    return proc.returncode, data, proc.stderr


def mp_failure(code: int, stderr: str, stdout_json: dict | None) -> str:
    text = stderr.strip() or (json.dumps(stdout_json)[:500] if stdout_json else "(no output)")
    return f"exit {code}: {smokelib.tail(text, 15)}"


def verify(mp: bench_node.Microprune, out: Path, smoke: str, timeout: float) -> dict:
    """`microprune verify OUT --smoke SMOKE`: {passed, missing, output_tail, error}."""
    code, data, stderr = mp_run(mp, ["verify", str(out), "--smoke", smoke, "--timeout", f"{timeout:g}",
                                     "--format", "json"])
    if code not in (0, 3) or data is None:
        return {"passed": False, "missing": [], "output_tail": "", "error": mp_failure(code, stderr, data)}
    passed = bool(data.get("passed"))
    if passed != (code == 0):
        return {"passed": passed, "missing": data.get("missing", []), "output_tail": data.get("output_tail", ""),
                "error": f"verify exit {code} disagrees with passed={passed}"}
    return {"passed": passed, "missing": data.get("missing", []),
            "output_tail": "" if passed else smokelib.tail(data.get("output_tail", ""), 20), "error": None}


# --- one app ---------------------------------------------------------------------------


@dataclass
class Context:
    mp: bench_node.Microprune
    cache: Path
    ws: bench_node.Workspace
    timeout: float
    reinstall: bool
    bare_bin: Path


def own_smoke(app: App, spec: object, app_out: Path, deps_out: Path, ctx: Context) -> str | None:
    """The bench's own isolated smoke runner on a pruned tree (None: pass)."""
    if app.language == "python":
        return bench_python.run_smoke(spec, app_out, deps_out)
    return bench_node.run_check(spec, app_out, ctx.ws.home)


def prune_args(app: App, spec: object, app_dir: Path, deps: Path, out: Path) -> list[str]:
    args = ["prune", str(app_dir), "--out", str(out), "--deps", str(deps), "--format", "json", "--force"]
    if app.language == "python":
        for entry in spec.entries:
            args += ["--entry", entry]
        for pattern in spec.keep:
            args += ["--keep", pattern]
    else:
        args += ["--entry", spec.entry]
    return args


def variant(app: App, spec: object, ctx: Context, name: str, args: list[str], in_deps: Path,
            smoke: str) -> tuple[dict, dict | None]:
    """Run one prune (plus verify unless it ran --smoke itself) and measure its tree."""
    row: dict = {"variant": name, "command": shlex.join([*ctx.mp.cmd, *args]), "error": None,
                 "kept_bytes": None, "kept_files": None, "disk_bytes": None, "bytecode_bytes": None,
                 "passed": None, "missing": [], "output_tail": "", "own_smoke": None}
    repair = "--repair" in args
    code, report, stderr = mp_run(ctx.mp, args)
    if report is None or code not in ((0, 3) if repair else (0,)):
        row["error"] = mp_failure(code, stderr, report)
        return row, None
    app_out, deps_out = Path(report["app_out"]), Path(report["deps_out"])
    kept = kept_files(deps_out, in_deps, app.language)
    row.update(kept_bytes=sum(kept.values()), kept_files=len(kept), report_deps_totals=report.get("deps_totals"),
               out=str(Path(report["app_out"]).parent if app.language == "python" else app_out))
    row["disk_bytes"], row["bytecode_bytes"] = disk_bytes(deps_out, app.language)
    if repair:
        result = report.get("verify", {})
        row.update(passed=bool(result.get("passed")), missing=result.get("missing", []),
                   output_tail="" if result.get("passed") else smokelib.tail(result.get("output_tail", ""), 20))
        rep = report.get("repair", {})
        row.update(rounds=rep.get("rounds"), added=rep.get("added", []), written_to=rep.get("written_to"))
        if (code == 0) != row["passed"]:
            row["error"] = f"prune --repair exit {code} disagrees with verify.passed={row['passed']}"
    else:
        log(f"[{app.label}] {name}: microprune verify")
        result = verify(ctx.mp, Path(row["out"]), smoke, ctx.timeout)
        row.update(passed=result["passed"], missing=result["missing"], output_tail=result["output_tail"],
                   error=result["error"])
    log(f"[{app.label}] {name}: the bench's own smoke runner on the pruned tree")
    row["own_smoke"] = own_smoke(app, spec, app_out, deps_out, ctx)
    row["_kept"] = kept
    return row, report


def measure(app: App, ctx: Context) -> dict:
    work = ctx.cache / "repair" / app.name
    work.mkdir(parents=True, exist_ok=True)
    row: dict = {"app": app.name, "language": app.language, "error": None, "variants": {}, "deps_changed": []}
    smoke = smoke_command(app.language, app.name, ctx.timeout)
    row["smoke"] = smoke
    row["trace_smoke"] = trace_command(smoke, app.language, ctx.bare_bin)
    try:
        if app.language == "python":
            spec = bench_python.load_spec(app.name)
            deps = bench_python.ensure_deps(spec, ctx.cache)
            before = fingerprint(deps)
            app_dir = copy_tree(spec.app_dir, work / "app")
            repair_dir = copy_tree(spec.app_dir, work / "app-repair")
            log(f"[{app.label}] lower bound: the smoke check on the full deps under recorder.py")
            error, lower = bench_python.record_lower_bound(spec, deps, work)
            row["lower_bound_method"] = "recorder.py (bench_python)"
            row["lower_bound_error"] = error
        else:
            spec = bench_node.load_spec(app.name)
            full = node_install(spec, ctx.ws, ctx.reinstall)
            log(f"[{app.label}] copying {full} (app and node_modules)")
            app_dir = copy_tree(full, work / "app")
            repair_dir = copy_tree(full, work / "app-repair")
            deps = app_dir / "node_modules"
            lower, row["lower_bound_error"] = None, None
            row["lower_bound_method"] = "trace --run profile + nearest package.json"
    except (bench_node.BenchError, OSError, ValueError, KeyError) as exc:
        row["error"] = f"setup failed: {exc}"
        return row
    except Exception:  # noqa: BLE001 - e.g. pip failing: report, go on with the next app
        row["error"] = "setup failed:\n" + traceback.format_exc(limit=3)
        return row

    # static
    log(f"[{app.label}] static: microprune prune")
    static, _ = variant(app, spec, ctx, "static", prune_args(app, spec, app_dir, deps, work / "static"), deps, smoke)
    row["variants"]["static"] = static

    # static + profile
    profile_path = work / "app.profile"
    log(f"[{app.label}] profile: microprune trace --run (the smoke check under the recorder)")
    code, profile, stderr = mp_run(ctx.mp, ["trace", str(app_dir), "--deps", str(deps), "--run", row["trace_smoke"],
                                            "--out", str(profile_path), "--timeout", f"{ctx.timeout:g}",
                                            "--format", "json"])
    row["trace"] = {"error": None, "runs": None, "files": None}
    if code != 0 or profile is None:
        row["trace"]["error"] = mp_failure(code, stderr, profile)
        for name in ("profile", "trusted"):
            row["variants"][name] = {"variant": name, "error": "no profile: " + row["trace"]["error"],
                                     "kept_bytes": None, "passed": None, "own_smoke": None}
    else:
        row["trace"].update(runs=profile.get("runs"), files=len(profile.get("files", [])))
        bad = [r for r in profile.get("runs", []) if r.get("exit_code") != 0]
        if bad:
            row["trace"]["error"] = f"the smoke run under trace failed: {bad}"
        recorded = profile_deps_files(profile, deps, app.language)
        row["profile_deps_bytes"], row["profile_deps_files"] = sum(recorded.values()), len(recorded)
        if app.language == "node":
            lower = with_package_scopes(recorded, deps)
            row["lower_bound_error"] = row["trace"]["error"]
        else:  # the profile should have seen what recorder.py saw: the same smoke run
            unseen = sorted(rel for rel in lower if rel not in recorded)
            row["profile_missed"] = {"files": len(unseen), "of": len(lower), "examples": unseen[:10]}
        log(f"[{app.label}] profile: microprune prune --profile")
        args = prune_args(app, spec, app_dir, deps, work / "profile") + ["--profile", str(profile_path)]
        row["variants"]["profile"], _ = variant(app, spec, ctx, "profile", args, deps, smoke)
        log(f"[{app.label}] trusted: microprune prune --profile --trust-profile")
        args = prune_args(app, spec, app_dir, deps, work / "trusted") + ["--profile", str(profile_path),
                                                                         "--trust-profile"]
        row["variants"]["trusted"], _ = variant(app, spec, ctx, "trusted", args, deps, smoke)

    # repaired
    log(f"[{app.label}] repaired: microprune prune --smoke --repair (on a copy of the app)")
    repair_deps = deps if app.language == "python" else repair_dir / "node_modules"
    args = prune_args(app, spec, repair_dir, repair_deps, work / "repaired") + [
        "--smoke", smoke, "--repair", "--timeout", f"{ctx.timeout:g}"]
    row["variants"]["repaired"], _ = variant(app, spec, ctx, "repaired", args, repair_deps, smoke)

    # the bound and the ratios
    row["lower_bound_bytes"] = None if lower is None else sum(lower.values())
    row["lower_bound_files"] = None if lower is None else len(lower)
    for v in row["variants"].values():
        v["ratio"] = None
        if v.get("kept_bytes") is not None and row["lower_bound_bytes"]:
            v["ratio"] = round(v["kept_bytes"] / row["lower_bound_bytes"], 3)
    explain(row, lower or {})
    if app.language == "python":
        row["deps_changed"] = changes(before, fingerprint(deps))
    for v in row["variants"].values():
        v.pop("_kept", None)
    return row


def explain(row: dict, lower: dict[str, int]) -> None:
    """What the profile adds to the static tree, what is kept but never loaded, what a run
    loads that a tree lacks."""
    static = row["variants"].get("static", {}).get("_kept")
    profile = row["variants"].get("profile", {}).get("_kept")
    if static is not None and profile is not None:
        added = {rel: size for rel, size in profile.items() if rel not in static}
        row["profile_adds"] = {"files": len(added), "bytes": sum(added.values()),
                               "largest": sorted(added, key=lambda r: (-added[r], r))[:10]}
    for name in ("static", "profile", "trusted"):
        kept = row["variants"].get(name, {}).get("_kept")
        if kept is None or not lower:
            continue
        unused = {rel: size for rel, size in kept.items() if rel not in lower}
        row["variants"][name]["kept_not_loaded"] = {"files": len(unused), "bytes": sum(unused.values()),
                                                    "largest_groups": group_bytes(unused)}
        row["variants"][name]["loaded_not_kept"] = sorted(rel for rel in lower if rel not in kept)[:20]


# --- reporting -------------------------------------------------------------------------


def mb(value: int | None) -> str:
    return "-" if value is None else f"{value / 1e6:.2f} MB"


def ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def state(v: dict | None) -> str:
    if not v or v.get("error") and v.get("passed") is None:
        return "error"
    return "pass" if v.get("passed") else "FAIL"


def table_rows(rows: list[dict]) -> list[list[str]]:
    body = []
    for r in rows:
        if r["error"]:
            body.append([r["app"], r["language"], "error"] + ["-"] * 12)
            continue
        s, p, t, f = (r["variants"].get(k, {}) for k in VARIANTS)
        body.append([r["app"], r["language"], mb(r["lower_bound_bytes"]),
                     mb(s.get("kept_bytes")), ratio(s.get("ratio")), state(s),
                     mb(p.get("kept_bytes")), ratio(p.get("ratio")), state(p),
                     mb(t.get("kept_bytes")), ratio(t.get("ratio")), state(t),
                     mb(f.get("kept_bytes")), state(f),
                     "-" if f.get("rounds") is None else str(f["rounds"]),
                     "-" if f.get("added") is None else str(len(f["added"]))])
    return body


HEADER = ["app", "lang", "lower bound", "static kept", "static/LB", "static smoke", "+profile kept",
          "profile/LB", "profile smoke", "trusted kept", "trusted/LB", "trusted smoke", "repaired kept", "repaired smoke", "rounds", "added"]


def format_table(rows: list[dict]) -> str:
    body = table_rows(rows)
    body = [line + ["-"] * (len(HEADER) - len(line)) for line in body]
    return bench_node.table(HEADER, body)


def evaluate_targets(rows: list[dict]) -> dict[str, dict]:
    def verdict(misses: list[str], note: str = "") -> dict:
        return {"pass": not misses, "misses": misses, "note": note}

    ok = [r for r in rows if not r["error"]]
    needs_repair = [r["app"] for r in rows if r["error"] or not r["variants"]["static"].get("passed")
                    or (r["variants"]["repaired"].get("rounds") or 0) > 0]
    static_ratios = [r["variants"]["static"]["ratio"] for r in ok if r["variants"]["static"].get("ratio")]
    profile_ratios = [r["variants"]["profile"]["ratio"] for r in ok if r["variants"]["profile"].get("ratio")]
    trusted_ratios = [r["variants"]["trusted"]["ratio"] for r in ok if r["variants"]["trusted"].get("ratio")]
    too_big = [f"{r['app']} ({ratio(r['variants'].get('trusted', {}).get('ratio'))})" for r in rows
               if r["error"] or r["variants"]["trusted"].get("ratio") is None
               or r["variants"]["trusted"]["ratio"] > PROFILE_TARGET]
    not_passing = [f"{r['app']} ({k})" for r in rows for k in ("profile", "trusted", "repaired")
                   if r["error"] or not r["variants"][k].get("passed")]

    def med(values: list[float]) -> str:
        return ratio(statistics.median(values)) if values else "-"

    return {
        "no app needs a repair with static analysis alone": verdict(
            needs_repair, f"static passes {len(rows) - len(needs_repair)}/{len(rows)}; "
                          f"median static/LB {med(static_ratios)}"),
        f"with a trusted profile kept <= {PROFILE_TARGET}x lower bound": verdict(
            too_big, f"median trusted/LB {med(trusted_ratios)}; the union (static + profile): "
                     f"median {med(profile_ratios)}"),
        "profile, trusted and repaired trees pass their smoke": verdict(not_passing),
    }


def format_details(rows: list[dict], targets: dict[str, dict]) -> str:
    lines = ["", "kept = dependency files kept, at their installed size (before --strip debug, "
             "without the .pyc prune adds); LB = runtime lower bound (Python: recorder.py; "
             "Node: the profile's files + nearest package.json)", ""]
    for r in rows:
        if r["error"]:
            continue
        parts = []
        missed = r.get("profile_missed")
        if missed and missed["files"]:
            parts.append(f"the profile lacks {missed['files']} of the {missed['of']} files the run loads")
        adds = r.get("profile_adds")
        if adds:
            largest = ", ".join(adds["largest"][:4])
            parts.append(f"profile adds {adds['files']} files, {mb(adds['bytes'])}" + (f" ({largest})" if largest else ""))
        for name in ("static", "profile", "trusted"):
            extra = r["variants"][name].get("kept_not_loaded")
            if extra:
                groups = ", ".join(f"{g} {mb(b)}" for g, b in extra["largest_groups"][:3])
                parts.append(f"{name} keeps {mb(extra['bytes'])} never loaded ({groups})")
        rep = r["variants"]["repaired"]
        if rep.get("added"):
            parts.append(f"repair added {rep['added']} in {rep['rounds']} round(s)")
        lines.append(f"{r['app']}: " + "; ".join(parts))
    lines.append("")
    for name, result in targets.items():
        status = "met" if result["pass"] else "MISSED: " + ", ".join(result["misses"])
        lines.append(f"target {name}: {status}" + (f" ({result['note']})" if result["note"] else ""))
    problems = problem_lines(rows)
    if problems:
        lines += ["", "Problems:", *problems]
    return "\n".join(lines)


def indent(text: str) -> str:
    return "    " + text.strip().replace("\n", "\n    ")


def problem_lines(rows: list[dict]) -> list[str]:
    lines = []
    for r in rows:
        if r["error"]:
            lines.append(f"- {r['app']}: {r['error']}")
            continue
        if r.get("lower_bound_error"):
            lines.append(f"- {r['app']}: the smoke check failed while measuring the lower bound:\n"
                         + indent(r["lower_bound_error"]))
        if r.get("deps_changed"):
            lines.append(f"- {r['app']}: THE DEPS CACHE CHANGED during the run: " + ", ".join(r["deps_changed"][:10]))
        if r.get("trace", {}).get("error"):
            lines.append(f"- {r['app']}: trace --run: " + r["trace"]["error"])
        missed = r.get("profile_missed")
        if missed and missed["files"]:
            lines.append(f"- {r['app']}: the profile lacks {missed['files']} of the {missed['of']} dependency files "
                         f"the same smoke run loads under recorder.py (its trace --run recorded "
                         f"{r['trace'].get('files')} files), e.g. " + ", ".join(missed["examples"][:5]))
        for name in VARIANTS:
            v = r["variants"].get(name, {})
            if v.get("error"):
                lines.append(f"- {r['app']} / {name}: microprune: " + v["error"].replace("\n", "\n    "))
            if v.get("passed") is False:
                lines.append(f"- {r['app']} / {name}: smoke failed; missing {v.get('missing')}:\n"
                             + indent(smokelib.tail(v.get("output_tail", ""), 8)))
            own = v.get("own_smoke")
            if v.get("passed") is not None and (own is None) != bool(v.get("passed")):
                lines.append(f"- {r['app']} / {name}: verify says {'pass' if v.get('passed') else 'FAIL'} but "
                             f"the bench's own smoke says {'pass' if own is None else 'FAIL'}"
                             + ("" if own is None else ":\n" + indent(smokelib.tail(own, 8))))
            missing = v.get("loaded_not_kept")
            if missing and name in ("static", "profile", "trusted"):
                lines.append(f"- {r['app']} / {name}: {len(missing)} file(s) loaded at run time are not kept: "
                             + ", ".join(missing[:10]))
    return lines


# --- main ------------------------------------------------------------------------------


def microprune_command(arg: str | None) -> bench_node.Microprune:
    return bench_node.microprune_command(arg)


def parse_args(argv: list[str]) -> argparse.Namespace:
    names = [a.name for a in all_apps()]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--app", action="append", choices=names, help="app to run (repeatable; default: all)")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "microprune-bench",
                        help="the benchmarks' cache; work trees go to CACHE/repair")
    parser.add_argument("--microprune", metavar="CMD", help="microprune command (default: $MICROPRUNE, PATH, ...)")
    parser.add_argument("--timeout", type=float, default=SMOKE_TIMEOUT, help="seconds per smoke run")
    parser.add_argument("--reinstall", action="store_true", help="install the Node apps again")
    parser.add_argument("--json", action="store_true", help="print JSON (sorted keys) instead of the table")
    parser.add_argument("--json-out", type=Path, metavar="FILE", help="also write the JSON to FILE")
    parser.add_argument("--smoke-here", nargs=2, metavar=("LANGUAGE", "APP"),
                        help="only run APP's smoke check in the current directory")
    args = parser.parse_args(argv)
    if args.smoke_here:
        language, name = args.smoke_here
        if language not in LANGUAGES or App(language, name) not in all_apps():
            parser.error(f"--smoke-here: no {language} app {name!r}")
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.smoke_here:
        return smoke_here(*args.smoke_here, timeout=args.timeout)
    for tool in ("node", "npm"):
        if not shutil.which(tool):
            log(f"bench: {tool} not found on PATH")
            return 1
    cache = args.cache.expanduser().resolve()
    ws = bench_node.Workspace(cache / "node")
    for directory in (ws.root, ws.home, ws.npm_cache, cache / "repair"):
        directory.mkdir(parents=True, exist_ok=True)
    try:
        bench_node.assert_isolated(cache / "repair", ws.home)
        bench_node.assert_isolated(ws.root, ws.home)
    except bench_node.BenchError as exc:
        log(f"bench: {exc}")
        return 1
    mp = microprune_command(args.microprune)
    ctx = Context(mp, cache, ws, args.timeout, args.reinstall, bare_python(cache / "repair" / "bare-python"))
    apps = [a for a in all_apps() if not args.app or a.name in args.app]
    rows = [measure(app, ctx) for app in apps]
    targets = evaluate_targets(rows)
    result = {"apps": {r["app"]: r for r in rows}, "targets": targets, "profile_target": PROFILE_TARGET,
              "python": sys.version.split()[0], "node": bench_node.checked(["node", "--version"], ws.root).strip(),
              "microprune": bench_node.describe(mp)}
    text = json.dumps(result, indent=2, sort_keys=True)
    if args.json_out:
        args.json_out.write_text(text + "\n")
    if args.json:
        print(text)
    else:
        print(format_table(rows))
        print(format_details(rows, targets))
        about = result["microprune"]
        print(f"\nmicroprune: {shlex.join(about['command'])} ({about['version']}) at {about['git_head']}"
              + (" (uncommitted changes in src/ or analyzers/)" if about["git_dirty"] else "")
              + f"; python {result['python']}, node {result['node']}")
    return 0 if all(t["pass"] for t in targets.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
