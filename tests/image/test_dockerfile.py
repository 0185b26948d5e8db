"""The README's two ways into an image build, run for real in a private dockerd (test_engine's).

1. The multi-stage Dockerfile of README.md (between `<!-- dockerfile-example:start/end -->`),
   built by `docker build` with no network: its `FROM python:3.11-slim` is an image the test
   makes from the host's own Python (tests/image/pybase.py) and `docker load`s from a file,
   since no registry is reachable; the wheels its `pip install` lines need (the example's
   requirements, and a microprune wheel built from this checkout with its dependencies) are
   downloaded beforehand into that image's /wheels. The only change to the README's text:
   each `pip install` gets `--no-index --find-links /wheels`. The legacy builder is used
   (DOCKER_BUILDKIT=0) unless the buildx plugin is there. Then the built image runs with
   `--network none`: gunicorn answers the example's page, `python app.py --check` renders it,
   and its /app/site-packages is exactly the builder's pruned /out/site-packages, with files
   of /deps (jinja2/nativetypes.py, ...) absent.
2. `microprune image APP --out app.tar --tag myapp:1 --load` with DOCKER_HOST on the private
   engine's socket (the docker SDK, the `docker` extra), then `docker run myapp:1` answers;
   with no engine answering, --load fails with one line and exit 1.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.realpkgs import CACHE
from tests.image.helpers import PYTHON_ANSWER, cli, write_python_app
from tests.image.pybase import write_python_base
from tests.image.test_engine import (  # noqa: F401 - `engine` is the session's private dockerd fixture
    DOCKER,
    PY_CLIENT,
    Engine,
    _answer,
    engine,
    needs_engine,
)

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
HELLO = ROOT / "fixtures" / "examples" / "hello"
START, END = "<!-- dockerfile-example:start -->", "<!-- dockerfile-example:end -->"
WHEELS_IN_IMAGE = "/wheels"
HELLO_PAGE = "<h1>Hello, microcontainer!</h1>"
PORT = 8000                                      # the README's CMD binds 0.0.0.0:8000
BUILD_SECONDS = 600


# -- the README's Dockerfile ------------------------------------------------------------------------

def readme_dockerfile() -> str:
    """The fenced block between the markers, as written."""
    text = README.read_text(encoding="utf-8")
    assert text.count(START) == 1 and text.count(END) == 1, f"README.md needs exactly one {START} ... {END}"
    between = text[text.index(START) + len(START):text.index(END)]
    fenced = re.fullmatch(r"\s*```dockerfile\n(.*?)```\s*", between, re.DOTALL)
    assert fenced, "the markers must enclose one ```dockerfile block"
    return fenced.group(1)


def offline(dockerfile: str) -> str:
    """The one substitution: every `pip install` installs from /wheels, never from an index."""
    changed, count = re.subn(r"\bpip install ", f"pip install --no-index --find-links {WHEELS_IN_IMAGE} ", dockerfile)
    assert count == 2, f"expected the README's two `pip install` lines, found {count}"
    return changed


def base_images(dockerfile: str) -> set[str]:
    """The images the stages start FROM (a stage name is not an image)."""
    stages, images = set(), set()
    for line in dockerfile.splitlines():
        words = line.split()
        if words and words[0].upper() == "FROM":
            image = [w for w in words[1:] if not w.startswith("--")][0]
            if image not in stages:
                images.add(image)
            if len(words) >= 4 and words[-2].upper() == "AS":
                stages.add(words[-1])
    return images


def test_the_readme_dockerfile_is_the_example_the_tests_build() -> None:
    dockerfile = readme_dockerfile()
    assert base_images(dockerfile) == {"python:3.11-slim"}, "both stages start from the same python image"
    assert "microprune prune . --deps /deps --out /out" in dockerfile
    assert "COPY --from=builder /out/app " in dockerfile and "COPY --from=builder /out/site-packages " in dockerfile
    assert "\nENV PYTHONPATH=" in dockerfile and "\nCMD " in dockerfile
    assert offline(dockerfile).count("--no-index --find-links /wheels") == 2


# -- wheels and the base image ----------------------------------------------------------------------

def microprune_wheel(dest: Path) -> Path:
    """A wheel of this checkout (python -m build; the backend comes from PyPI)."""
    proc = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dest), str(ROOT)],
                          capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        pytest.fail(f"python -m build --wheel failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    wheels = list(dest.glob("microprune-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def download_wheels(dest: Path, requirements: list[str]) -> None:
    """pip download (pip's cache under MICROPRUNE_TEST_CACHE), binary wheels only."""
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                           "--no-input", "--only-binary", ":all:", "--dest", str(dest),
                           "--cache-dir", str(CACHE / "pip"), *requirements],
                          capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        pytest.fail(f"pip download {requirements} failed:\n{proc.stderr[-3000:]}")


@dataclass(frozen=True)
class ReadmeBuild:
    runtime: str                 # the tag of the README's image
    builder: str                 # the tag of its builder stage (--target builder)
    build_output: str


def docker_build(daemon: Engine, *args: str) -> subprocess.CompletedProcess[str]:
    assert DOCKER is not None
    env = dict(daemon.env)
    if subprocess.run([DOCKER, "buildx", "version"], capture_output=True, env=env, timeout=60,
                      check=False).returncode != 0:
        env["DOCKER_BUILDKIT"] = "0"          # the legacy builder: no buildx plugin here
    proc = subprocess.run([DOCKER, "build", "--network", "none", *args], capture_output=True, text=True,
                          errors="replace", env=env, timeout=BUILD_SECONDS, stdin=subprocess.DEVNULL, check=False)
    if proc.returncode != 0:
        pytest.fail(f"docker build {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-6000:]}\n"
                    f"{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def readme_build(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> ReadmeBuild:  # noqa: F811
    root = tmp_path_factory.mktemp("readme-dockerfile")
    dockerfile = readme_dockerfile()
    (image,) = base_images(dockerfile)

    wheels = root / "wheels"
    wheel = microprune_wheel(root / "dist")
    download_wheels(wheels, ["-r", str(HELLO / "requirements.txt"), str(wheel)])
    if not (wheels / wheel.name).exists():
        shutil.copy2(wheel, wheels)
    base = root / "python-base.tar"
    write_python_base(base, image, wheels, root / "base-scratch")
    shutil.rmtree(root / "base-scratch")
    loaded = engine.docker("load", "-i", str(base))
    assert f"Loaded image: {image}" in loaded.stdout, loaded.stdout
    base.unlink()

    context = root / "context"
    shutil.copytree(HELLO, context)
    (context / "Dockerfile").write_text(offline(dockerfile), encoding="utf-8")
    tag = f"mp-readme-dockerfile:{uuid.uuid4().hex[:8]}"
    built = docker_build(engine, "--tag", tag, str(context))
    builder = f"{tag}-builder"
    docker_build(engine, "--target", "builder", "--tag", builder, str(context))    # cached: the same steps
    return ReadmeBuild(tag, builder, built.stdout + built.stderr)


LIST_FILES = """\
import os, sys
root = sys.argv[1]
print('\\n'.join(sorted(os.path.relpath(os.path.join(d, n), root)
                        for d, _, files in os.walk(root) for n in files)))
"""


def files_in(daemon: Engine, image: str, directory: str) -> set[str]:
    listed = daemon.docker("run", "--rm", "--network", "none", "--user", "0", image, "python", "-c",
                           LIST_FILES, directory)
    return {line for line in listed.stdout.splitlines() if line}


@needs_engine
@pytest.mark.network
def test_the_readme_dockerfile_builds_and_runs_offline(readme_build: ReadmeBuild, engine: Engine) -> None:  # noqa: F811
    # the builder stage pruned, and its smoke check ran and passed
    assert "smoke passed: python app.py --check" in readme_build.build_output, readme_build.build_output[-4000:]
    inspected = json.loads(engine.docker("image", "inspect", readme_build.runtime).stdout)[0]["Config"]
    assert inspected["User"] == "65532:65532"
    assert "PYTHONPATH=/app/site-packages" in inspected["Env"]

    # the app renders its page with nothing but the pruned deps (a one-off command)
    check = engine.docker("run", "--rm", "--network", "none", readme_build.runtime, "python", "app.py", "--check")
    assert check.stdout.strip() == HELLO_PAGE, check.stdout + check.stderr

    # the image's CMD: gunicorn serves it; probed from inside (no network, no curl)
    container = f"mp-readme-{uuid.uuid4().hex[:8]}"
    engine.docker("run", "-d", "--name", container, "--network", "none", readme_build.runtime)
    try:
        answer = _answer(engine, container, ["python", "-c", PY_CLIENT.format(port=PORT)])
        where = engine.docker("exec", container, "python", "-c",
                              "import flask, gunicorn, os; print(flask.__file__, gunicorn.__file__, os.getuid())")
    finally:
        engine.docker("rm", "-f", container, check=False, timeout=120)
    assert answer["status"] == 200, answer
    assert str(answer["body"]).strip() == HELLO_PAGE
    flask_file, gunicorn_file, uid = where.stdout.split()
    assert flask_file.startswith("/app/site-packages/flask/") and gunicorn_file.startswith("/app/site-packages/"), \
        where.stdout
    assert uid == "65532"

    # only the pruned deps reached the runtime stage: exactly the builder's /out/site-packages
    runtime = files_in(engine, readme_build.runtime, "/app/site-packages")
    pruned = files_in(engine, readme_build.builder, "/out/site-packages")
    installed = files_in(engine, readme_build.builder, "/deps")
    assert runtime == pruned
    dropped = installed - pruned
    assert "jinja2/nativetypes.py" in installed and "jinja2/nativetypes.py" in dropped
    assert "flask/__init__.py" in runtime and "jinja2/environment.py" in runtime
    assert len([f for f in dropped if f.endswith(".py")]) >= 10, sorted(dropped)[:40]
    assert not {f for f in runtime if f.startswith("bin/")}, "pip's console scripts are not kept"
    # and microprune, pip's downloads and /deps stayed in the builder
    gone = engine.docker("run", "--rm", "--network", "none", readme_build.runtime, "python", "-c",
                         "import importlib.util, os; "
                         "print(importlib.util.find_spec('microprune'), os.path.exists('/deps'), "
                         "os.path.exists('/out'))")
    assert gone.stdout.split() == ["None", "False", "False"], gone.stdout


# -- microprune image --load --------------------------------------------------------------------------

@needs_engine
def test_image_load_into_the_engine_then_docker_run(engine: Engine, tmp_path: Path) -> None:  # noqa: F811
    """README: `microprune image . --out app.tar --tag myapp:1 --load`, then `docker run myapp:1`."""
    app, deps = write_python_app(tmp_path)
    tag = f"myapp:{uuid.uuid4().hex[:8]}"
    archive = tmp_path / "app.tar"
    result = cli("image", ".", "--deps", deps, "--out", archive, "--tag", tag, "--load", "--format", "json",
                 env={"DOCKER_HOST": f"unix://{engine.socket}", "DOCKER_CONFIG": str(engine.root / "client")},
                 cwd=app)
    assert result.code == 0, result.err[-3000:]
    assert "Traceback" not in result.err
    image = result.json()["image"]
    assert image["loaded"] == tag
    inspected = json.loads(engine.docker("image", "inspect", tag).stdout)[0]
    assert inspected["Id"] == image["config_digest"]

    container = f"mp-load-{uuid.uuid4().hex[:8]}"
    engine.docker("run", "-d", "--name", container, "--network", "none", "-e", "PORT=8080", tag)
    try:
        answer = _answer(engine, container, [image["entrypoint"][0], "-c", PY_CLIENT.format(port=8080)])
    finally:
        engine.docker("rm", "-f", container, check=False, timeout=120)
    assert answer["status"] == 200, answer
    assert answer["body"] == PYTHON_ANSWER.replace("/probe", "/")


def test_image_load_with_no_engine_is_one_line_and_exit_1(tmp_path: Path) -> None:
    pytest.importorskip("docker", reason="the docker SDK (the `docker` extra, in `test`)")
    app, deps = write_python_app(tmp_path)
    archive = tmp_path / "app.tar"
    nowhere = tmp_path / "no-engine" / "docker.sock"
    result = cli("image", app, "--deps", deps, "--out", archive, "--tag", "myapp:1", "--load",
                 env={"DOCKER_HOST": f"unix://{nowhere}", "DOCKER_CONFIG": str(tmp_path / "client")})
    assert result.code == 1, (result.code, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("microprune: error: no Docker engine answers"), lines[0]
    assert "Traceback" not in result.err
    assert archive.is_file(), "the archive is written before --load"
    assert os.path.getsize(archive) > 0
