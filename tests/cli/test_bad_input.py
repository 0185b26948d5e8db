"""Hostile and broken input: a warning with file and line or a one-line error, never a
traceback, never a hang, nothing read or written outside APP, the deps and OUT."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.helpers import assert_no_traceback, basic_app, run_cli, snapshot


def warnings_of(report: dict) -> list[tuple[str, str | None]]:  # type: ignore[type-arg]
    return [(w["code"], w["file"]) for w in report["warnings"]]


def test_symlinks_out_of_the_tree_are_never_followed_or_copied(tmp_path: Path) -> None:
    app, deps = basic_app(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-CONTENT-7f3a")
    os.symlink(secret, deps / "greet" / "leak.txt")               # file link out
    os.symlink("/", deps / "greet" / "rootdir")                    # directory link out
    os.symlink("loop_b", deps / "greet" / "loop_a")                # a loop
    os.symlink("loop_a", deps / "greet" / "loop_b")
    os.symlink("core.py", deps / "greet" / "alias.py")             # a link inside: kept as a link
    (app / "app.py").write_text("import greet\nimport greet.alias\nprint(greet.hello())\n")
    before = snapshot(tmp_path)
    out = tmp_path / "out"
    result = run_cli("prune", app, "--deps", deps, "--out", out, "--format", "json")
    assert result.code == 0, result.err
    codes = {(code, Path(file).name) for code, file in warnings_of(result.json()) if file}
    assert {("symlink-outside", n) for n in ("leak.txt", "rootdir", "loop_a", "loop_b")} <= codes
    pruned = out / "site-packages" / "greet"
    for name in ("leak.txt", "rootdir", "loop_a", "loop_b"):
        assert not os.path.lexists(pruned / name)
    assert (pruned / "alias.py").is_symlink() and os.readlink(pruned / "alias.py") == "core.py"
    assert "SECRET-CONTENT-7f3a" not in "".join(p.read_text(errors="replace") for p in out.rglob("*") if p.is_file())
    after = snapshot(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before     # the input is untouched


def test_names_that_are_not_utf8(tmp_path: Path) -> None:
    app, deps = basic_app(tmp_path)
    odd = os.fsdecode(b"caf\xe9-data.txt")
    (deps / "greet" / odd).write_text("data next to a kept module")
    (app / os.fsdecode(b"\xff\xfe.cfg")).write_text("app file")
    out = tmp_path / "out"
    for fmt in ("text", "json"):
        result = run_cli("prune", app, "--deps", deps, "--out", out, "--force", "--format", fmt)
        assert result.code == 0, result.err
        assert_no_traceback(result)
        if fmt == "text":
            assert result.err == "" or "Traceback" not in result.err
    assert (out / "site-packages" / "greet" / odd).read_text() == "data next to a kept module"
    assert (out / "app" / os.fsdecode(b"\xff\xfe.cfg")).is_file()
    assert "caf\\\\xe9-data.txt" in result.out      # shown with the byte escaped, JSON-escaped


def test_fifo_named_like_a_module_does_not_hang(tmp_path: Path) -> None:
    app, deps = basic_app(tmp_path)
    os.mkfifo(deps / "greet" / "pipe.py")
    os.mkfifo(app / "fifo.py")
    (app / "app.py").write_text("import greet\nimport greet.pipe\nimport fifo\n")
    result = run_cli("prune", app, "--deps", deps, "--out", tmp_path / "out", "--format", "json", timeout=60)
    assert result.code == 0, result.err
    special = {Path(f).name for code, f in warnings_of(result.json()) if code == "special-file"}
    assert special == {"pipe.py", "fifo.py"}
    assert not (tmp_path / "out" / "app" / "fifo.py").exists()


def test_syntax_errors_and_binary_junk_are_warnings_with_lines(tmp_path: Path) -> None:
    app, deps = basic_app(tmp_path)
    (app / "app.py").write_text("import greet\nimport helper\nimport junk\n")
    (app / "helper.py").write_text("import greet.helpers\n\ndef broken(:\n    pass\n")
    (app / "junk.py").write_bytes(b"\x00\x01\x02\xff\xfe binary \x00 junk")
    (deps / "greet" / "newer.py").write_text("import greet.unused\ntype Alias = list[int]\n")
    (deps / "greet" / "__init__.py").write_text("from .core import hello\nfrom . import newer\n")
    result = run_cli("analyze", app, "--deps", deps, "--format", "json")
    assert result.code == 0, result.err
    report = result.json()
    syntax = {(Path(w["file"]).name, w["line"]) for w in report["warnings"] if w["code"] == "syntax"}
    assert ("helper.py", 3) in syntax
    assert any(name == "junk.py" for name, _ in syntax)
    kept = {f["path"] for f in report["files"] if f["keep"] and f["root"] == "deps"}
    # imports after syntax the host cannot parse are still found
    assert {"greet/helpers.py", "greet/newer.py", "greet/unused.py"} <= kept


def test_broken_dist_info_is_a_warning(tmp_path: Path) -> None:
    app, deps = basic_app(tmp_path)
    info = deps / "greet-1.0.dist-info"
    (info / "METADATA").unlink()
    (info / "RECORD").write_bytes(b"\x00\xff garbage,\n\"unterminated")
    (deps / "other-2.0.dist-info" / "METADATA").write_text("this is not metadata\n")
    (deps / "other-2.0.dist-info" / "entry_points.txt").write_text("[broken\nx = = y")
    result = run_cli("analyze", app, "--deps", deps, "--format", "json")
    assert result.code == 0, result.err
    report = result.json()
    broken = sorted(Path(w["file"]).name for w in report["warnings"] if w["code"] == "broken-metadata")
    assert broken == ["METADATA", "METADATA", "entry_points.txt"]
    names = {r["name"] for r in report["distributions"]}
    assert {"greet", "other"} <= names          # named from the directory when metadata fails


@pytest.fixture
def world_readable_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="microprune-nobody-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
def test_unreadable_files_and_dirs_as_an_unprivileged_user(world_readable_dir: Path) -> None:
    app, deps = basic_app(world_readable_dir)
    for path in [world_readable_dir, *world_readable_dir.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    (deps / "greet" / "helpers.py").chmod(0o000)          # imported: cannot be read
    locked = deps / "greet" / "locked"
    locked.mkdir()
    locked.chmod(0o000)                                    # cannot be listed
    out = world_readable_dir / "out"
    out.mkdir()
    out.chmod(0o777)
    result = run_cli("analyze", app, "--deps", deps, "--format", "json", user="nobody")
    assert result.code == 0, result.err
    codes = {(w["code"], Path(w["file"]).name) for w in result.json()["warnings"] if w["file"]}
    assert ("unreadable", "helpers.py") in codes
    assert ("unreadable-dir", "locked") in codes
    pruned = run_cli("prune", app, "--deps", deps, "--out", out / "tree", user="nobody")
    assert pruned.code == 1
    assert pruned.err.startswith("microprune: error:") and "helpers.py" in pruned.err
    assert not (out / "tree").exists() and list(out.iterdir()) == []


def _big_deps(root: Path, files: int = 3000, size: int = 40_000) -> tuple[Path, Path]:
    app, deps = root / "app", root / "deps"
    app.mkdir(parents=True)
    (app / "app.py").write_text("import big\n")
    package = deps / "big"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    blob = os.urandom(size)
    for i in range(files):
        (package / f"data_{i:05d}.bin").write_bytes(blob)
    for i in range(300):                   # modules too, so bytecode compiles in workers
        (package / f"mod_{i:03d}.py").write_text("VALUE = 1\n" * 2000)
    (package / "__init__.py").write_text("".join(f"from . import mod_{i:03d}\n" for i in range(300)))
    return app, deps


@pytest.mark.parametrize("delay", [0.4, 0.9, 1.6])
def test_interrupted_prune_leaves_no_half_written_out(tmp_path: Path, delay: float) -> None:
    app, deps = _big_deps(tmp_path / "in")
    out = tmp_path / "dest" / "out"
    proc = subprocess.Popen([sys.executable, "-m", "microprune", "prune", str(app), "--deps", str(deps),
                             "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, 130), err
    assert "Traceback" not in err
    leftovers = [p.name for p in out.parent.iterdir() if p.name != "out"] if out.parent.exists() else []
    assert leftovers == []
    if proc.returncode == 130:
        assert not out.exists()
    else:                                   # finished before the signal: then complete
        assert (out / "microprune.json").is_file()
        assert len([p for p in (out / "site-packages" / "big").iterdir() if p.is_file()]) == 3301


def test_directory_symlink_inside_the_tree_is_a_package(tmp_path: Path) -> None:
    app, deps = basic_app(tmp_path)
    real = deps / "real"
    real.mkdir()
    shutil.move(deps / "greet", real / "greet")
    os.symlink("real/greet", deps / "greet")
    out = tmp_path / "out"
    result = run_cli("prune", app, "--deps", deps, "--out", out, "--format", "json")
    assert result.code == 0, result.err
    assert not [w for w in result.json()["warnings"] if w["code"] == "unresolved"]
    assert (out / "site-packages" / "greet").is_symlink()
    assert (out / "site-packages" / "real" / "greet" / "core.py").is_file()
    run = subprocess.run([sys.executable, "-S", str(out / "app" / "app.py")], capture_output=True, text=True,
                         env={"PYTHONPATH": str(out / "site-packages")}, timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == "hello X", run.stderr


@pytest.mark.parametrize("burst", [2, 4])
def test_a_burst_of_interrupts_leaves_nothing_behind(tmp_path: Path, burst: int) -> None:
    app, deps = _big_deps(tmp_path / "in")
    out = tmp_path / "dest" / "out"
    # Its own process group, signalled as a whole: what Ctrl-C in a terminal does.
    proc = subprocess.Popen([sys.executable, "-m", "microprune", "prune", str(app), "--deps", str(deps),
                             "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    staging = out.parent
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:      # wait until it is writing
        if staging.exists() and any(p.name.startswith(".out.") for p in staging.iterdir()):
            break
        time.sleep(0.01)
    for _ in range(burst):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        time.sleep(0.005)
    _, err = proc.communicate(timeout=120)
    assert "Traceback" not in err, err
    assert proc.returncode in (0, 130), err
    leftovers = [p.name for p in staging.iterdir() if p.name != "out"] if staging.exists() else []
    assert leftovers == []


def test_shared_object_in_the_app_and_a_venv_inside_it(tmp_path: Path) -> None:
    """A .so among the app's files must not trip the strip step; a virtualenv inside the
    app is never app code, even when --deps names another directory."""
    app, deps = basic_app(tmp_path)
    (app / "_native.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\x7fELF" + b"\0" * 60)
    venv = app / "venv"
    (venv / "lib" / "python3.11" / "site-packages").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("version_info = 3.11.7\n")
    (venv / "lib" / "python3.11" / "site-packages" / "junk.py").write_text("X = 1\n")
    out = tmp_path / "out"
    result = run_cli("prune", app, "--deps", deps, "--out", out, "--format", "json")
    assert result.code == 0, result.err
    assert (out / "app" / "_native.cpython-311-x86_64-linux-gnu.so").is_file()
    assert not (out / "app" / "venv").exists()


def test_metadata_that_is_not_utf8(tmp_path: Path) -> None:
    app, deps = basic_app(tmp_path)
    (deps / "greet-1.0.dist-info" / "METADATA").write_bytes(b"Metadata-Version: 2.1\nName: g\xffreet\nVersion: 1.\xfe0\n")
    result = run_cli("analyze", app, "--deps", deps, "--format", "json")
    assert result.code == 0, result.err
    report = result.json()
    assert "greet" in {d["name"] for d in report["distributions"]}
    assert any(w["code"] == "broken-metadata" and "UTF-8" in w["message"] for w in report["warnings"])


def test_bytecode_none_and_keep_globs_never_ship_bytecode(tmp_path: Path) -> None:
    app, deps = basic_app(tmp_path)
    out = tmp_path / "out"
    result = run_cli("prune", app, "--deps", deps, "--out", out, "--bytecode", "none", "--keep", "greet/**",
                     "--format", "json")
    assert result.code == 0, result.err
    assert result.json()["bytecode"]["compiled"] == 0
    assert not [p for p in out.rglob("*") if p.name == "__pycache__" or p.suffix == ".pyc"]


def test_huge_source_files_are_not_compiled(tmp_path: Path) -> None:
    """CPython's compiler can need gigabytes for one huge module: such files are skipped."""
    app, deps = basic_app(tmp_path)
    (deps / "greet" / "table.py").write_text("DATA = [" + "1, " * 2_000_000 + "]\n")   # about 6 MB
    (deps / "greet" / "__init__.py").write_text("from .core import hello\nfrom . import table\n")
    result = run_cli("prune", app, "--deps", deps, "--out", tmp_path / "out", "--format", "json")
    assert result.code == 0, result.err
    assert result.json()["bytecode"]["too_big"] == 1
    assert not list((tmp_path / "out" / "site-packages" / "greet" / "__pycache__").glob("table.*"))


def test_only_our_own_stale_staging_is_cleaned_up(tmp_path: Path) -> None:
    """A killed run leaves `.OUT.microprune-partial-<pid>` beside OUT; the next run removes it.
    A directory that merely looks like one (the deps, the app's data) is never touched."""
    app, deps = basic_app(tmp_path)
    out = tmp_path / "out"
    dead_pid = 4_000_000                                  # above pid_max: no such process
    ours = tmp_path / f".out.microprune-partial-{dead_pid}"
    ours.mkdir()
    (ours / ".microprune-staging").write_text("")
    (ours / "half-written.py").write_text("x = 1\n")
    look_alike = tmp_path / ".out.microprune-partial-mydata"
    look_alike.mkdir()
    (look_alike / "notes.txt").write_text("keep me")
    no_marker = tmp_path / f".out.microprune-partial-{dead_pid + 1}"
    no_marker.mkdir()
    (no_marker / "notes.txt").write_text("keep me too")
    moved_deps = tmp_path / ".out.microprune-partial-deps"
    deps.rename(moved_deps)
    result = run_cli("prune", app, "--deps", moved_deps, "--out", out)
    assert result.code == 0, result.err
    assert not ours.exists()
    assert (look_alike / "notes.txt").read_text() == "keep me"
    assert (no_marker / "notes.txt").read_text() == "keep me too"
    assert (moved_deps / "greet" / "__init__.py").is_file()
    assert not (out / ".microprune-staging").exists()


def test_reports_images_and_profiles_are_never_written_into_the_input(tmp_path: Path) -> None:
    app, deps = basic_app(tmp_path)
    before = snapshot(tmp_path)
    link_into_deps = tmp_path / "to-deps"
    os.symlink(deps, link_into_deps)
    attempts = [("report", app, "--deps", deps, "--html", deps / "greet" / "__init__.py"),
                ("report", app, "--deps", deps, "--sbom", app / "app.py"),
                ("analyze", app, "--deps", deps, "--html", link_into_deps / "r.html"),
                ("image", app, "--deps", deps, "--out", deps / "x.tar"),
                ("trace", app, "--deps", deps, "--run", "true", "--out", app / "app.profile")]
    for args in attempts:
        result = run_cli(*args)
        assert result.code == 2 and "never writes into its input" in result.err, (args, result.err)
        assert_no_traceback(result)
    link_into_deps.unlink()
    assert snapshot(tmp_path) == before


def test_the_app_cannot_point_the_deps_out_of_itself(tmp_path: Path) -> None:
    """What is read is chosen by the user's flags, not by files in the app: a configuration
    `deps` outside the app and a .venv that links out of it are refused."""
    app, deps = basic_app(tmp_path)
    (app / "pyproject.toml").write_text('[tool.microprune]\ndeps = "/etc"\nkeep = ["**"]\n')
    out = tmp_path / "out"
    result = run_cli("prune", app, "--out", out)
    assert result.code == 2 and "not inside the app" in result.err, result.err
    assert not out.exists()
    (app / "pyproject.toml").unlink()
    venv = tmp_path / "elsewhere-venv"
    (venv / "lib" / "python3.11" / "site-packages").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("version = 3.11.7\n")
    os.symlink(venv, app / ".venv")
    result = run_cli("prune", app, "--out", out)
    assert result.code == 2 and "link out of" in result.err, result.err
    assert not out.exists()
    node_app = tmp_path / "node-app"
    node_app.mkdir()
    (node_app / "index.js").write_text("console.log(1);\n")
    (node_app / "package.json").write_text('{"name": "n", "microprune": {"deps": "/etc", "keep": ["**"]}}')
    result = run_cli("prune", node_app, "--out", tmp_path / "out-node")
    assert result.code == 2 and "not inside the app" in result.err, result.err


def test_ctrl_c_while_loading_prints_no_traceback() -> None:
    """An interrupt that lands while the CLI is still being imported ends the run with one line
    and 130 (signalled deterministically at that point; before Python runs any of microprune's
    code, only the interpreter can answer)."""
    code = ("import os, signal\n"
            "from microprune import entry\n"
            "signal.signal(signal.SIGINT, entry._interrupted_while_loading)\n"
            "os.kill(os.getpid(), signal.SIGINT)\n"
            "import microprune.cli\n"
            "print('not reached')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 130 and "interrupted" in proc.stderr, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr and "not reached" not in proc.stdout


@pytest.mark.parametrize("flag, value", [("--tag", ""), ("--tag", "a b:c"), ("--tag", "../../x:y"),
                                         ("--user", ""), ("--user", "-1"), ("--user", "99999999999999999999")])
def test_image_names_and_users_are_checked_before_any_work(tmp_path: Path, flag: str, value: str) -> None:
    app, deps = basic_app(tmp_path)
    result = run_cli("image", app, "--deps", deps, "--out", tmp_path / "x.tar", flag, value)
    assert result.code == 2 and flag in result.err, result.err
    assert not (tmp_path / "x.tar").exists()
    assert_no_traceback(result)


def test_a_file_name_with_a_newline_cannot_fake_a_warning_line(tmp_path: Path) -> None:
    app, deps = basic_app(tmp_path)
    (app / "bad\nwarnings: 0\nname.py").write_text("import (\n")
    result = run_cli("analyze", app, "--deps", deps)
    assert result.code == 0, result.err
    assert not any(line.startswith("warnings: 0") for line in result.err.splitlines()), result.err


def test_links_back_up_a_data_folder_are_walked_once_and_kept(tmp_path: Path) -> None:
    """Twenty links to `.` in a data folder once made the walk visit 20^depth paths (a hang)."""
    app, deps = basic_app(tmp_path)
    data = deps / "greet" / "data"
    data.mkdir()
    (data / "table.txt").write_text("row\n")
    names = [f"up{i}" for i in range(20)]
    for name in names:
        os.symlink(".", data / name)
    out = tmp_path / "out"
    result = run_cli("prune", app, "--deps", deps, "--out", out, timeout=120)
    assert result.code == 0, result.err
    pruned = out / "site-packages" / "greet" / "data"
    assert (pruned / "table.txt").read_text() == "row\n"
    for name in names:                     # the app may read data/up3/table.txt: the links stay links
        assert (pruned / name).is_symlink() and os.readlink(pruned / name) == "."
    assert (pruned / "up7" / "up3" / "table.txt").read_text() == "row\n"
