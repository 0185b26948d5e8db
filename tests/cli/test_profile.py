"""Dynamic mode: `trace APP --run CMD --out PROFILE` records what a real run loads; `prune
--profile` keeps it (reason `profile`) where static analysis cannot see it (a module named in a
data file). Hand-made packages: no network."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.helpers import run_cli


def _python_app(root: Path) -> tuple[Path, Path]:
    app, deps = root / "app", root / "deps"
    (app).mkdir(parents=True)
    (deps / "plug").mkdir(parents=True)
    (app / "main.py").write_text("import importlib, json, pathlib\n"
                                 "name = json.loads((pathlib.Path(__file__).parent / 'conf.json').read_text())['use']\n"
                                 "print(importlib.import_module(name).VALUE)\n")
    (app / "conf.json").write_text(json.dumps({"use": "plug.hidden"}))
    (deps / "plug" / "__init__.py").write_text("")
    (deps / "plug" / "hidden.py").write_text("VALUE = 'from the hidden module'\n")
    (deps / "plug" / "unused.py").write_text("VALUE = 0\n")
    return app, deps


def _node_app(root: Path) -> Path:
    app = root / "app"
    pkg = app / "node_modules" / "plug"
    pkg.mkdir(parents=True)
    (app / "package.json").write_text(json.dumps({"name": "app", "main": "main.js"}))
    (app / "main.js").write_text("const name = require('./conf.json').use;\nconsole.log(require(name).VALUE);\n")
    (app / "conf.json").write_text(json.dumps({"use": "plug/hidden"}))
    (pkg / "package.json").write_text(json.dumps({"name": "plug", "version": "1.0.0"}))
    (pkg / "index.js").write_text("module.exports = {};\n")
    (pkg / "hidden.js").write_text("exports.VALUE = 'from the hidden module';\n")
    (pkg / "unused.js").write_text("exports.VALUE = 0;\n")
    return app


def _check(app: Path, deps: list[str], smoke: str, tmp_path: Path, hidden: str, unused: str) -> None:
    profile = tmp_path / "app.profile"
    rec = run_cli("trace", app, *deps, "--run", smoke, "--out", profile, "--format", "json")
    assert rec.code == 0, rec.err
    data = json.loads(profile.read_text())
    assert data["command"] == "profile" and data["runs"][0]["exit_code"] == 0
    assert any(f.endswith(hidden) for f in data["files"]) and not any(f.endswith(unused) for f in data["files"])
    static = run_cli("prune", app, *deps, "--out", tmp_path / "static", "--smoke", smoke)
    assert static.code == 3, static.out + static.err          # the static trace alone misses it
    dynamic = run_cli("prune", app, *deps, "--out", tmp_path / "dynamic", "--profile", profile,
                      "--smoke", smoke, "--format", "json")
    assert dynamic.code == 0, dynamic.out + dynamic.err
    report = json.loads(dynamic.out)
    rows = {row["path"]: row for row in report["files"]}
    assert rows[hidden]["keep"] and rows[hidden]["reasons"] == ["profile"]
    assert not rows[unused]["keep"]
    why = run_cli("why", app, *deps, hidden, "--profile", profile)
    assert why.code == 0 and "[profile]" in why.out, why.out


def test_python_profile_keeps_what_a_run_loads(tmp_path: Path) -> None:
    app, deps = _python_app(tmp_path)
    _check(app, ["--deps", str(deps)], "python3 main.py", tmp_path, "plug/hidden.py", "plug/unused.py")


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_node_profile_keeps_what_a_run_loads(tmp_path: Path) -> None:
    app = _node_app(tmp_path)
    _check(app, [], "node main.js", tmp_path, "plug/hidden.js", "plug/unused.js")


def test_a_run_that_ends_on_sigterm_is_recorded_and_the_deps_stay_untouched(tmp_path: Path) -> None:
    """A server stopped by SIGTERM never runs atexit: the recorder writes its log from the signal
    handler and dies of the same signal (exit 143 seen), and the run writes no __pycache__ into
    the user's deps."""
    app, deps = _python_app(tmp_path)
    before = sorted(p.relative_to(deps).as_posix() for p in deps.rglob("*"))
    profile = tmp_path / "term.profile"
    run = "python3 -c \"import os, signal, plug.hidden; os.kill(os.getpid(), signal.SIGTERM)\""
    rec = run_cli("trace", app, "--deps", deps, "--run", run, "--out", profile, "--format", "json")
    assert rec.code == 0, rec.err
    data = json.loads(profile.read_text())
    assert data["runs"][0]["exit_code"] == 143
    assert any(f.endswith("plug/hidden.py") for f in data["files"]), data["files"]
    assert sorted(p.relative_to(deps).as_posix() for p in deps.rglob("*")) == before


def test_recording_sees_the_deps_not_the_host_site_packages(tmp_path: Path) -> None:
    """The recorder needs `site`, but the run must not see the host's site-packages (where pip
    always is): a host package would stand in for a dependency the app lacks, and host .pth
    files would run against the user's deps."""
    app, deps = _python_app(tmp_path)
    profile = tmp_path / "host.profile"
    run = ("python3 -c \"import importlib.util as u, plug.hidden; "
           "raise SystemExit(0 if u.find_spec('pip') is None else 7)\"")
    rec = run_cli("trace", app, "--deps", deps, "--run", run, "--out", profile, "--format", "json")
    assert rec.code == 0, rec.err
    data = json.loads(profile.read_text())
    assert data["runs"][0]["exit_code"] == 0, "pip from the host's site-packages was importable"
    assert any(f.endswith("plug/hidden.py") for f in data["files"])        # the recorder still ran


def test_smoke_after_prune_with_a_relative_out_sees_the_pruned_deps(tmp_path: Path) -> None:
    """`prune --out ./pruned --smoke CMD`: the smoke runs in the pruned app's directory, so the
    deps' path it is given must not be relative to the caller's directory."""
    app, deps = _python_app(tmp_path)
    (app / "main.py").write_text("import plug.hidden\nprint(plug.hidden.VALUE)\n")
    result = run_cli("prune", "app", "--deps", "deps", "--out", "pruned", "--smoke", "python3 main.py",
                     "--format", "json", cwd=tmp_path)
    assert result.code == 0, result.out + result.err
    report = json.loads(result.out)
    assert report["verify"]["passed"] and "from the hidden module" in report["verify"]["output_tail"]


def test_verify_finds_what_is_missing_above_a_long_stack(tmp_path: Path) -> None:
    """node prints `Cannot find module` first and its require stack after: the cause may lie far
    above the tail that is shown, and must still be found."""
    app, deps = _python_app(tmp_path)
    out = tmp_path / "out"
    assert run_cli("prune", app, "--deps", deps, "--out", out).code == 0
    smoke = ("python3 main.py; i=0; while [ $i -lt 2000 ]; do echo '    at a frame of a long stack'; "
             "i=$((i+1)); done; exit 1")
    result = run_cli("verify", out, "--smoke", smoke, "--format", "json")
    assert result.code == 3, result.out + result.err
    report = json.loads(result.out)
    assert report["missing"] == ["plug"], report["missing"]
    assert "No module named" not in report["output_tail"] and len(report["output_tail"]) <= 4000


def test_a_module_whose_import_failed_is_recorded_from_its_cached_bytecode(tmp_path: Path) -> None:
    """pip leaves __pycache__ in the deps, so a module loads from its .pyc and its source is never
    opened; one whose import then fails (caught by its importer) has no sys.modules entry
    either. Its source must still be in the profile: without it the importer's except path
    would see a different error."""
    app, deps = _python_app(tmp_path)
    (deps / "plug" / "needs_socks.py").write_text("import socks_not_installed\n")
    (app / "main.py").write_text("try:\n    import plug.needs_socks\nexcept ImportError as e:\n"
                                 "    print('no socks:', e.name)\n")
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(deps)], check=True)
    assert (deps / "plug" / "__pycache__").is_dir()
    profile = tmp_path / "failed.profile"
    rec = run_cli("trace", app, "--deps", deps, "--run", "python3 main.py", "--out", profile)
    assert rec.code == 0, rec.err
    files = json.loads(profile.read_text())["files"]
    assert "deps/plug/needs_socks.py" in files, files


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_node_recording_sees_worker_threads_promises_and_esm_named_imports(tmp_path: Path) -> None:
    """A worker thread is ended by the main thread's process.exit() before its own exit event, so
    it must record as it goes; fs.promises reads and `import { readFileSync } from 'node:fs'`
    in an ES module must be seen too."""
    app = tmp_path / "app"
    pkg = app / "node_modules" / "plug"
    pkg.mkdir(parents=True)
    (app / "package.json").write_text(json.dumps({"name": "app", "main": "main.mjs"}))
    (app / "main.mjs").write_text(
        "import { readFileSync } from 'node:fs';\n"
        "import { createRequire } from 'node:module';\n"
        "import { Worker } from 'node:worker_threads';\n"
        "const require = createRequire(import.meta.url);\n"
        "const where = require.resolve('plug/worker.js');\n"
        "const esmRead = readFileSync(new URL('./node_modules/plug/esm-read.txt', import.meta.url), 'utf8').trim();\n"
        "const w = new Worker(where);\n"
        "w.on('message', (m) => { console.log(esmRead, m); process.exit(0); });\n")
    (pkg / "package.json").write_text(json.dumps({"name": "plug", "version": "1.0.0"}))
    (pkg / "worker.js").write_text(
        "const { parentPort } = require('worker_threads');\n"
        "const dep = require('./dep');\n"
        "require('fs').promises.readFile(__dirname + '/promised.txt', 'utf8')\n"
        "  .then((text) => parentPort.postMessage(dep + ' ' + text.trim()));\n"
        "setInterval(() => {}, 1000);\n")
    (pkg / "dep.js").write_text("module.exports = 'dep';\n")
    (pkg / "promised.txt").write_text("promised\n")
    (pkg / "esm-read.txt").write_text("esm-read\n")
    profile = tmp_path / "node.profile"
    rec = run_cli("trace", app, "--run", "node main.mjs", "--out", profile)
    assert rec.code == 0, rec.err
    files = set(json.loads(profile.read_text())["files"])
    for name in ("worker.js", "dep.js", "promised.txt", "esm-read.txt"):
        assert f"deps/plug/{name}" in files, (name, sorted(files))
    result = run_cli("prune", app, "--out", tmp_path / "out", "--profile", profile, "--trust-profile",
                     "--smoke", "node main.mjs", "--format", "json")
    assert result.code == 0, result.out + result.err
    assert "esm-read dep promised" in json.loads(result.out)["verify"]["output_tail"]


def test_a_child_killed_with_sigkill_has_recorded_what_it_loaded(tmp_path: Path) -> None:
    """jedi kills its inference subprocess with SIGKILL: no atexit, no signal handler. What the
    child loaded must be in the profile all the same (written as it is seen)."""
    app, deps = _python_app(tmp_path)
    (app / "child.py").write_text("import os, signal\nimport plug.hidden\n"
                                  "print(plug.hidden.VALUE, flush=True)\nos.kill(os.getpid(), signal.SIGKILL)\n")
    (app / "main.py").write_text("import subprocess, sys\n"
                                 "done = subprocess.run([sys.executable, 'child.py'])\n"
                                 "assert done.returncode == -9, done.returncode\n")
    profile = tmp_path / "killed.profile"
    rec = run_cli("trace", app, "--deps", deps, "--run", "python3 main.py", "--out", profile)
    assert rec.code == 0, rec.err
    data = json.loads(profile.read_text())
    assert data["runs"][0]["exit_code"] == 0
    assert "deps/plug/hidden.py" in data["files"], data["files"]


def test_a_failing_or_timed_out_run_is_exit_3_with_the_profile_written(tmp_path: Path) -> None:
    """A profile of a run that failed lacks what a passing run loads: said, and exit 3, so a
    script does not go on to trust it."""
    app, deps = _python_app(tmp_path)
    profile = tmp_path / "failed.profile"
    rec = run_cli("trace", app, "--deps", deps, "--run", "python3 main.py", "--run", "python3 main.py; exit 4",
                  "--out", profile)
    assert rec.code == 3, rec.out + rec.err
    assert "'python3 main.py; exit 4' exited 4" in rec.err and "--trust-profile" in rec.err
    assert "ran (exit 0): python3 main.py" in rec.out
    data = json.loads(profile.read_text())
    assert [r["exit_code"] for r in data["runs"]] == [0, 4]
    assert "deps/plug/hidden.py" in data["files"]
    slow = run_cli("trace", app, "--deps", deps, "--run", "sleep 30", "--timeout", "1", "--out", profile,
                   "--format", "json")
    assert slow.code == 3 and "timed out after 1 s" in slow.err, slow.err
    assert json.loads(slow.out)["runs"][0]["timed_out"] is True


def test_a_daemon_that_closes_every_descriptor_is_still_recorded(tmp_path: Path) -> None:
    """python-daemon closes every descriptor, and the next file the app opens may get the old
    number of the recorder's log: the recorder must neither go blind nor write into it."""
    app, deps = _python_app(tmp_path)
    (app / "daemonish.py").write_text(
        "import os\nos.closerange(3, 65536)\n"
        "fd = os.open('own.txt', os.O_WRONLY | os.O_CREAT | os.O_TRUNC)\n"
        "import plug.hidden\nos.write(fd, b'only mine\\n')\nos.close(fd)\n")
    profile = tmp_path / "daemon.profile"
    rec = run_cli("trace", app, "--deps", deps, "--run", "python3 daemonish.py", "--out", profile)
    assert rec.code == 0, rec.err
    assert "deps/plug/hidden.py" in json.loads(profile.read_text())["files"]
    assert (app / "own.txt").read_text() == "only mine\n"


def test_a_run_that_records_nothing_is_said(tmp_path: Path) -> None:
    app, deps = _python_app(tmp_path)
    profile = tmp_path / "blind.profile"
    rec = run_cli("trace", app, "--deps", deps, "--run", "true", "--out", profile, "--format", "json")
    assert rec.code == 3, rec.out + rec.err
    assert "'true' passed but recorded no file" in rec.err
    assert json.loads(rec.out)["runs"] == [{"command": "true", "exit_code": 0, "timed_out": False, "files": 0,
                                            "kernel_watch": "complete", "escaped": 0}]


@pytest.mark.parametrize("shape", ["link to /dev/zero", "fifo", "directory"])
def test_a_run_that_swaps_its_log_is_an_error_not_a_hang(shape: str, tmp_path: Path) -> None:
    app, deps = _python_app(tmp_path)
    swap = {"link to /dev/zero": "os.symlink('/dev/zero', p)", "fifo": "os.mkfifo(p)", "directory": "os.mkdir(p)"}
    (app / "swap.py").write_text("import os\np = os.environ['MICROPRUNE_PROFILE_LOG']\n"
                                 f"import plug.hidden\nos.unlink(p)\n{swap[shape]}\n")
    rec = run_cli("trace", app, "--deps", deps, "--run", "python3 swap.py", "--out", tmp_path / "p.json",
                  timeout=60)
    assert rec.code == 1, rec.out + rec.err
    assert "was replaced by something that is not a regular file" in rec.err and "Traceback" not in rec.err
    assert not (tmp_path / "p.json").exists()


@pytest.mark.parametrize("shape", ["fifo", "link to /dev/zero", "deeply nested", "device"])
def test_a_hostile_profile_is_a_usage_error(shape: str, tmp_path: Path) -> None:
    app, deps = _python_app(tmp_path)
    profile = tmp_path / "p.profile"
    if shape == "fifo":
        os.mkfifo(profile)
    elif shape == "link to /dev/zero":
        profile.symlink_to("/dev/zero")
    elif shape == "device":
        profile = Path("/dev/null")
    else:
        profile.write_text("[" * 100_000 + "]" * 100_000)
    for command in (["prune", app, "--deps", deps, "--out", tmp_path / "out"], ["why", app, "--deps", deps, "plug"]):
        result = run_cli(*command, "--profile", profile, "--trust-profile", timeout=60)
        assert result.code == 2, (shape, result.out + result.err)
        assert "--profile" in result.err and "Traceback" not in result.err, result.err


@pytest.mark.parametrize("target", ["device", "fifo", "missing directory", "directory"])
def test_an_output_that_is_no_file_is_refused_before_any_run(target: str, tmp_path: Path) -> None:
    """`--out /dev/null` once replaced the device with a plain file."""
    app, deps = _python_app(tmp_path)
    out = {"device": tmp_path / "null", "fifo": tmp_path / "fifo", "missing directory": tmp_path / "no" / "p.json",
           "directory": tmp_path}[target]
    if target == "device":
        os.mknod(out, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    elif target == "fifo":
        os.mkfifo(out)
    marker = tmp_path / "ran"
    rec = run_cli("trace", app, "--deps", deps, "--run", f"touch {marker}", "--out", out)
    assert rec.code == 2, rec.out + rec.err
    assert not marker.exists(), "the command ran before the output was checked"
    if target == "device":
        assert stat.S_ISCHR(os.lstat(out).st_mode)
    html = run_cli("report", app, "--deps", deps, "--html", out)
    assert html.code == 2, html.out + html.err


def test_node_recording_sees_relative_and_buffer_paths_and_survives_a_hard_exit(tmp_path: Path) -> None:
    """Reads relative to the working directory, paths given as Buffers (names that are not
    UTF-8), and an app that leaves with process.reallyExit() after dropping every exit
    listener: all recorded, because each path is written the moment it is seen."""
    app = _node_app(tmp_path)
    pkg = app / "node_modules" / "plug"
    (pkg / "table.txt").write_text("relative\n")
    odd = os.fsdecode(b"caf\xe9.dat")
    (pkg / odd).write_bytes(b"latin-1 name\n")
    (app / "hard.js").write_text(
        "const fs = require('fs');\n"
        "process.chdir('node_modules/plug');\n"
        "fs.readFileSync('table.txt');\n"
        "fs.readFileSync(Buffer.concat([Buffer.from(process.cwd() + '/caf'), Buffer.from([0xe9]),"
        " Buffer.from('.dat')]));\n"
        "process.removeAllListeners('exit');\n"
        "process.reallyExit(0);\n")
    profile = tmp_path / "hard.profile"
    rec = run_cli("trace", app, "--run", "node hard.js", "--out", profile, "--format", "json")
    assert rec.code == 0, rec.out + rec.err
    files = json.loads(profile.read_text(encoding="utf-8", errors="surrogateescape"))["files"]
    assert "app/node_modules/plug/table.txt" in files or "deps/plug/table.txt" in files, files
    assert any(f.endswith("plug/" + odd) for f in files), files


def test_node_recorder_never_writes_through_a_link_put_in_place_of_its_log(tmp_path: Path) -> None:
    app = _node_app(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched\n")
    (app / "swap.js").write_text(
        "const fs = require('fs'); const p = process.env.MICROPRUNE_PROFILE_LOG;\n"
        f"fs.unlinkSync(p); fs.symlinkSync({str(victim)!r}, p);\n"
        "require('plug/hidden');\n")
    rec = run_cli("trace", app, "--run", "node swap.js", "--out", tmp_path / "p.json", timeout=60)
    assert rec.code == 1, rec.out + rec.err
    assert "was replaced by something that is not a regular file" in rec.err
    assert victim.read_text() == "untouched\n"


DAEMON = """\
import os, sys, time
if os.fork() == 0:
    os.setsid()                         # out of the process group the run is killed with
    if os.fork() == 0:
        with open(sys.argv[1], "w") as pid:
            pid.write(str(os.getpid()))
        time.sleep(600)
    os._exit(0)
"""


def _alive(pid_file: Path) -> bool:
    for _ in range(100):                # the daemon writes its pid a moment after the launcher exits
        if pid_file.exists() and pid_file.read_text():
            break
        time.sleep(0.05)
    try:                                # a zombie waiting for init to reap it is dead too
        state = Path(f"/proc/{int(pid_file.read_text())}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def test_a_daemon_that_leaves_the_process_group_is_killed_and_said(tmp_path: Path) -> None:
    app, deps = _python_app(tmp_path)
    (app / "daemon.py").write_text(DAEMON)
    pid_file = tmp_path / "daemon.pid"
    rec = run_cli("trace", app, "--deps", deps, "--run", f"python3 daemon.py {pid_file}", "--out",
                  tmp_path / "p.json", "--format", "json")
    assert rec.code == 3, rec.out + rec.err
    assert "left 1 process(es) running outside its process group" in rec.err
    assert json.loads(rec.out)["runs"][0]["escaped"] == 1
    assert not _alive(pid_file)
    out = tmp_path / "out"
    assert run_cli("prune", app, "--deps", deps, "--out", out).code == 0
    pid_file.unlink()
    check = run_cli("verify", out, "--smoke", f"python3 daemon.py {pid_file}", "--format", "json")
    assert check.code == 0 and json.loads(check.out)["escaped"] == 1, check.out + check.err
    assert not _alive(pid_file)
