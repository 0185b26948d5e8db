"""`microprune image` writes a valid, reproducible OCI + docker archive; what must never ship
does not, and the JSON report describes the archive exactly. No network: the apps are tiny and
hand-written (tests/image/helpers.py), the runtime is the local node / python."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.image.conftest import Built
from tests.image.helpers import (
    SECRET_TOKEN,
    SECRETS,
    build,
    copy_tree,
    layer_contents,
    rewrite_member,
    set_mtimes,
    write_python_app,
)
from tests.image.ocivalidate import OCI_LAYER_GZIP, ImageReport, problems, validate

LANGUAGES = ["node", "python"]
LAYER_NAMES = ["runtime", "deps", "app"]
SBOM_NAMES = {"usr", "usr/share", "usr/share/microprune", "usr/share/microprune/sbom.cdx.json"}
APP_USER = "65532:65532"
# Where each tiny app's files land in the image (member names, no leading '/').
EXPECTED: dict[str, dict[str, Any]] = {
    "node": {"app_dir": "app", "workdir": "/app",
             "app": ["app/server.js", "app/lib/name.js", "app/package.json", "app/data/public.txt"],
             "deps": ["app/node_modules/greet/lib/index.js", "app/node_modules/greet/package.json"],
             "dropped": ["app/node_modules/greet/lib/unused.js"]},
    "python": {"app_dir": "app/app", "workdir": "/app/app",
               "app": ["app/app/app.py", "app/app/data/public.txt"],
               "deps": ["app/site-packages/greet/__init__.py", "app/site-packages/greet/core.py"],
               "dropped": ["app/site-packages/greet/unused.py"]},
}
NO_SHELL_OR_PACKAGE_MANAGER = ["bin/sh", "usr/bin/sh", "bin/bash", "usr/bin/bash", "bin/dash", "usr/bin/dash",
                               "usr/bin/apt", "usr/bin/apt-get", "usr/bin/dpkg", "usr/bin/npm", "usr/bin/pip",
                               "usr/bin/pip3"]


@pytest.fixture(params=LANGUAGES)
def built(request: pytest.FixtureRequest) -> Built:
    image: Built = request.getfixturevalue(f"{request.param}_image")
    return image


def language_of(image: Built) -> str:
    return str(image.report["language"])


def test_archive_is_a_valid_oci_and_docker_archive(built: Built) -> None:
    report = validate(built.archive)
    assert [h.get("comment") for h in report.config["history"]] == LAYER_NAMES     # runtime, deps, app
    assert len(report.layers) == 3
    assert all(layer.media_type == OCI_LAYER_GZIP for layer in report.layers)
    assert report.docker_manifest[0]["RepoTags"] == [built.image["tag"]]
    assert report.outer_members[:2] == ["blobs", "blobs/sha256"]
    assert {"oci-layout", "index.json", "manifest.json"} <= set(report.outer_members)


def test_layers_hold_the_runtime_the_pruned_deps_and_the_app(built: Built) -> None:
    language = language_of(built)
    expected = EXPECTED[language]
    report = validate(built.archive)
    runtime, deps, app = (layer.names() for layer in report.layers)
    assert set(expected["app"]) <= app, sorted(app)
    assert set(expected["deps"]) <= deps, sorted(deps)
    assert not set(expected["dropped"]) & report.all_names(), "a file nothing uses was shipped"
    # ... and the app layer holds the app, plus the SBOM of what the image ships
    assert SBOM_NAMES <= app, sorted(app)
    assert all(name.startswith(expected["app_dir"]) for name in app - SBOM_NAMES if name != "app"), sorted(app)
    # The runtime: the interpreter (a regular file, executable), users, a writable /tmp.
    interpreter = report.layers[0].member(built.interpreter)
    assert interpreter is not None and interpreter.kind == "file" and interpreter.mode == 0o755
    assert {"etc/passwd", "etc/group", "tmp"} <= runtime
    tmp = report.layers[0].member("tmp")
    assert tmp is not None and tmp.kind == "dir" and tmp.mode == 0o1777
    passwd = layer_contents(built.archive, 0)["etc/passwd"].decode()
    assert any(line.split(":")[2:4] == ["65532", "65532"] for line in passwd.splitlines()), passwd
    # No shell, no package manager, nothing of the host's home or of the build's scratch.
    assert not set(NO_SHELL_OR_PACKAGE_MANAGER) & report.all_names()
    assert not any(".microprune-image-" in name for name in report.all_names())
    inner = report.config["config"]
    assert inner["User"] == APP_USER
    assert inner["WorkingDir"] == expected["workdir"]
    assert inner["Entrypoint"] == built.image["entrypoint"]
    assert inner["Entrypoint"][0] == built.interpreter
    assert any(item.startswith("PATH=") for item in inner["Env"])
    assert inner["Labels"]["dev.microprune.language"] == language


def _stdlib_zip_names(archive: Path) -> set[str]:
    layer = validate(archive).layers[0]
    zip_name = next(name for name in layer.names() if re.search(r"/lib/python3\d+\.zip$", name))
    return set(zipfile.ZipFile(io.BytesIO(_layer_member(archive, 0, zip_name))).namelist())


def test_python_runtime_carries_the_stdlib_submodules_the_app_imports(python_image: Built) -> None:
    """app.py does `from http.server import ...`: the image needs http/server.py, not only http/__init__.py."""
    # The pure-Python stdlib ships as lib/pythonXY.zip (on sys.path by default), as bytecode only
    names = _stdlib_zip_names(python_image.archive)
    assert "http/__init__.pyc" in names and "os.pyc" in names
    missing = [m for m in ("http/server.pyc", "http/client.pyc", "email/utils.pyc", "encodings/idna.pyc",
                           "stringprep.pyc") if m not in names]
    assert not missing, f"stdlib submodules the app reaches are not in the runtime's stdlib zip: {missing}"
    # Imported only when a function runs: by Python code (os.popen -> subprocess) and by C code
    # (datetime.strptime -> _strptime); a self-test's `import doctest` is not followed.
    assert {"_strptime.pyc", "subprocess.pyc"} <= names
    assert "doctest.pyc" not in names
    assert not [n for n in names if n.endswith(".py")], "stdlib source shipped without --stdlib-source"


def test_stdlib_source_ships_the_py_beside_the_bytecode(tmp_path: Path, python_image: Built) -> None:
    app, deps = write_python_app(tmp_path)
    archive = tmp_path / "with-source.tar"
    report = build(app, archive, "--stdlib-source", "--bytecode-positions", deps=deps)
    names = _stdlib_zip_names(archive)
    assert {"os.py", "os.pyc", "http/server.py", "http/server.pyc", "_strptime.py"} <= names
    assert report["bytecode"].get("positions", True) is True
    # Without the column tables (the default) the same stdlib bytecode deflates to less.
    default = _stdlib_zip_sizes(python_image.archive)
    full = _stdlib_zip_sizes(archive)
    shared = [name for name in default if name.endswith(".pyc") and name in full]
    assert len(shared) > 100
    assert sum(default[n] for n in shared) < 0.85 * sum(full[n] for n in shared)      # deflated sizes


def _stdlib_zip_sizes(archive: Path) -> dict[str, int]:
    layer = validate(archive).layers[0]
    zip_name = next(name for name in layer.names() if re.search(r"/lib/python3\d+\.zip$", name))
    return {i.filename: i.compress_size for i in zipfile.ZipFile(io.BytesIO(_layer_member(archive, 0, zip_name))).infolist()}


def test_json_report_describes_the_archive(built: Built) -> None:
    report = validate(built.archive)
    image = built.image
    assert built.report["command"] == "image" and built.report["schema_version"] == 1
    assert image["digest"] == report.manifest_digest == report.index["manifests"][0]["digest"]
    assert image["digest"] == "sha256:" + hashlib.sha256(
        _member_bytes(built.archive, "blobs/sha256/" + report.manifest_digest.split(":")[1])).hexdigest()
    assert image["config_digest"] == report.config_digest
    assert Path(image["path"]) == built.archive.resolve()
    assert image["tag"] == report.docker_manifest[0]["RepoTags"][0]
    assert [layer["name"] for layer in image["layers"]] == LAYER_NAMES
    assert len(image["layers"]) == len(report.layers)
    for described, actual in zip(image["layers"], report.layers, strict=True):
        assert {"digest", "size", "uncompressed_size", "diff_id"} <= set(described)
        assert described["digest"] == actual.digest
        assert described["size"] == actual.size
        assert described["uncompressed_size"] == actual.uncompressed_size
        assert described["diff_id"] == actual.diff_id
        assert described["files"] == sum(1 for m in actual.members if m.kind != "dir")
    assert image["size"] == report.size
    assert image["uncompressed_size"] == report.uncompressed_size
    assert image["user"] == APP_USER
    assert image["entrypoint"] == report.config["config"]["Entrypoint"]
    assert isinstance(image["left_out"], list)
    assert "app_out" not in built.report and "deps_out" not in built.report   # the scratch tree is gone


def _member_bytes(archive: Path, name: str) -> bytes:
    import tarfile

    with tarfile.open(archive) as tar:
        handle = tar.extractfile(name)
        assert handle is not None
        return handle.read()


# -- reproducible ----------------------------------------------------------------------------------

def _copy_with(built: Built, dest: Path, seconds: float, loosen_modes: bool) -> tuple[Path, Path | None]:
    """A copy of the app (and its deps) at another path, every mtime set to `seconds`; optionally
    group-writable modes (umask 002), which must not change the image either."""
    app = copy_tree(built.app, dest / "app")
    deps = copy_tree(built.deps, dest / "deps") if built.deps is not None else None
    for root in (app, deps):
        if root is None:
            continue
        if loosen_modes:
            for directory, dirs, files in os.walk(root):
                for name in dirs + files:
                    path = Path(directory, name)
                    if not path.is_symlink():
                        path.chmod(path.stat().st_mode | 0o020)
        set_mtimes(root, seconds)
    return app, deps


def test_two_builds_from_copies_with_other_mtimes_are_byte_identical(built: Built, tmp_path: Path) -> None:
    tag = built.image["tag"]
    digests = []
    for number, (seconds, loosen) in enumerate([(1_000_000_000, False), (1_650_000_000.5, True)]):
        app, deps = _copy_with(built, tmp_path / f"copy{number}", seconds, loosen)
        out = tmp_path / f"image{number}.tar"
        report = build(app, out, "--tag", tag, deps=deps)
        digests.append((report["image"]["digest"], hashlib.sha256(out.read_bytes()).hexdigest()))
        validate(out)
    first, second = digests
    assert first == second, "two builds of the same inputs differ"
    # ... and equal to the session's build of the original tree (another path, today's mtimes).
    assert first == (built.image["digest"], hashlib.sha256(built.archive.read_bytes()).hexdigest())


def test_source_date_epoch_and_config_options(python_image: Built, tmp_path: Path) -> None:
    epoch = 1_700_000_000
    out = tmp_path / "custom.tar"
    report = build(python_image.app, out, "--tag", "registry.example:5000/team/custom:2.1",
                   "--cmd", f"{python_image.interpreter} -c 'print(1)'", "--user", "1000:1000",
                   "--env", "GREETING=hi there", "--env", "EMPTY=", deps=python_image.deps,
                   env={"SOURCE_DATE_EPOCH": str(epoch)})
    checked = validate(out, epoch=epoch)             # every mtime is the epoch, created too
    assert checked.config["created"] == "2023-11-14T22:13:20Z"
    inner = checked.config["config"]
    assert inner["Cmd"] == [python_image.interpreter, "-c", "print(1)"]
    assert not inner.get("Entrypoint"), "--cmd replaces the entry's command"
    assert inner["User"] == "1000:1000"
    assert "GREETING=hi there" in inner["Env"] and "EMPTY=" in inner["Env"]
    assert checked.docker_manifest[0]["RepoTags"] == ["registry.example:5000/team/custom:2.1"]
    assert checked.index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "2.1"
    assert report["image"]["tag"] == "registry.example:5000/team/custom:2.1"
    assert problems(out, epoch=0), "the validator must see that the mtimes are not 0"
    assert report["image"]["digest"] != python_image.image["digest"]


# -- what must never ship ----------------------------------------------------------------------

SECRET_CASES = [pytest.param(language, path, id=f"{language}-{path}") for language in LANGUAGES
                for path in [*SECRETS, ".dockerignore"]]


def _app_dir(language: str) -> str:
    return str(EXPECTED[language]["app_dir"])


def _left_out_paths(image: dict[str, Any]) -> list[str]:
    """image.left_out items are "PATH (why)"; the paths."""
    return [item.split(" (", 1)[0] for item in image["left_out"]]


@pytest.mark.parametrize(("language", "secret"), SECRET_CASES)
def test_secret_never_ships(language: str, secret: str, request: pytest.FixtureRequest) -> None:
    built: Built = request.getfixturevalue(f"{language}_image")
    report = validate(built.archive)
    top = secret.split("/")[0] if secret.startswith((".git/", "private/")) else secret
    shipped = f"{_app_dir(language)}/{top}"
    assert not any(name == shipped or name.startswith(shipped + "/") for name in report.all_names())
    if secret in SECRETS:
        token = SECRETS[secret][0].encode()
        for number in (1, 2):                                           # the deps and app layers
            for name, data in layer_contents(built.archive, number).items():
                assert token not in data, f"the content of {secret} shipped as {name}"


@pytest.mark.parametrize(("language", "secret"), SECRET_CASES)
def test_secret_is_listed_in_left_out(language: str, secret: str, request: pytest.FixtureRequest) -> None:
    built: Built = request.getfixturevalue(f"{language}_image")
    expected = SECRETS[secret][1] if secret in SECRETS else secret
    assert expected in _left_out_paths(built.image), \
        f"{secret} is not in image.left_out: {built.image['left_out']}"


def test_no_secret_token_in_any_app_or_deps_file(built: Built) -> None:
    for number in (1, 2):
        for name, data in layer_contents(built.archive, number).items():
            assert SECRET_TOKEN not in data, name
    assert f"{_app_dir(language_of(built))}/data/public.txt" in validate(built.archive).layers[2].names()


# -- the validator is not vacuous ----------------------------------------------------------------

def _tamper_cases(report: ImageReport) -> list[tuple[str, str, Any, str]]:
    app_blob = "blobs/sha256/" + report.layers[2].digest.split(":")[1]
    config_blob = "blobs/sha256/" + report.config_digest.split(":")[1]

    def flip_last_byte(info: Any, data: bytes) -> tuple[Any, bytes]:
        return info, data[:-9] + bytes([data[-9] ^ 0xFF]) + data[-8:]

    def owner(info: Any, data: bytes) -> tuple[Any, bytes]:
        info.uid, info.uname = 1000, "builder"
        return info, data

    def mtime(info: Any, data: bytes) -> tuple[Any, bytes]:
        info.mtime = 1_234_567
        return info, data

    def swap_layers(info: Any, data: bytes) -> tuple[Any, bytes]:
        manifest = json.loads(data)
        manifest[0]["Layers"] = list(reversed(manifest[0]["Layers"]))
        return info, json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()

    def pretty(info: Any, data: bytes) -> tuple[Any, bytes]:
        return info, json.dumps(json.loads(data), indent=2).encode()

    def other_diff_id(info: Any, data: bytes) -> tuple[Any, bytes]:
        config = json.loads(data)
        config["rootfs"]["diff_ids"][2] = "sha256:" + "0" * 64
        return info, json.dumps(config, sort_keys=True, separators=(",", ":")).encode()

    return [
        ("layer-byte", app_blob, flip_last_byte, "sha256"),
        ("config-edited", config_blob, other_diff_id, "config: blob"),
        ("owner", "index.json", owner, "owned by 1000:0"),
        ("mtime", "oci-layout", mtime, "mtime 1234567"),
        ("docker-manifest-order", "manifest.json", swap_layers, "manifest.json: Layers"),
        ("not-canonical", "index.json", pretty, "not canonical JSON"),
    ]


@pytest.mark.parametrize("case", ["layer-byte", "config-edited", "owner", "mtime", "docker-manifest-order",
                                  "not-canonical"])
def test_validator_catches_tampering(case: str, python_image: Built, tmp_path: Path) -> None:
    cases = {name: rest for name, *rest in _tamper_cases(validate(python_image.archive))}
    member, change, symptom = cases[case]
    damaged = rewrite_member(python_image.archive, tmp_path / "damaged.tar", member, change)
    found = problems(damaged)
    assert any(symptom in problem for problem in found), found
    shutil.rmtree(tmp_path, ignore_errors=True)


def _layer_member(archive: Path, index: int, name: str) -> bytes:
    """One file of the index-th layer of an archive (layers are gzip tars)."""
    with tarfile.open(archive) as outer:
        manifest = json.loads(outer.extractfile("manifest.json").read())  # type: ignore[union-attr]
        blob = outer.extractfile(manifest[0]["Layers"][index]).read()  # type: ignore[union-attr]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as layer:
        return layer.extractfile(name.lstrip("/")).read()  # type: ignore[union-attr]
