"""The Python hint table against real packages from PyPI (issue 5, "Hints").

Each app below is small but real: it is written into tmp_path, its dependencies come from one
shared `pip install --target` tree (cached, see realpkgs.py), and it is pruned with static
analysis and the hint table alone (no --keep, no profile). `microprune verify OUT --smoke CMD`
must then pass with only the pruned tree visible. Then the same smoke must fail on a copy of OUT
with one file deleted that only a hint (or a string, entry point, convention) keeps: proof that
the smoke really exercises what the hint is for, and that the pass is not luck.

- gunicorn: gunicorn.conf.py names the worker class (`gthread`, and
  `uvicorn.workers.UvicornWorker`); served on 127.0.0.1, one request.
- uvicorn: an ASGI app served by `python -m uvicorn` (loops, protocols, lifespan by name).
- sqlalchemy: an ORM round trip on sqlite (dialect imported by name from the URL).
- pygments: lexers, formatters and styles by name.
- opentelemetry: providers chosen by OTEL_PYTHON_*_PROVIDER (entry-point group from an f-string),
  propagators and the runtime context by entry-point group.
- tzdata: zoneinfo with PYTHONTZPATH=/nonexistent (no system time-zone database).
- certifi: an SSL context from certifi.where().
- celery: tasks named in `include`, a solo-pool worker on the in-memory broker; the worker command.
- django: apps, middleware, template backend and database engine named in settings strings;
  `manage.py check`, `migrate` on sqlite and test-client requests; and the same project served
  by gunicorn, whose gunicorn.conf.py names the WSGI app and the worker class.

Servers bind 127.0.0.1 only; every wait is bounded (the smoke helpers, verify's --timeout,
run_cli's timeout).
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.cli.helpers import run_cli
from tests.e2e.realpkgs import installed

pytestmark = pytest.mark.network

# One shared tree for every app: one pip run, and each prune must still pick only what its
# app uses out of a crowded site-packages.
REQUIREMENTS = ["gunicorn==27.*", "uvicorn==0.*", "sqlalchemy==2.*", "pygments==2.*", "opentelemetry-api==1.*",
                "opentelemetry-sdk==1.*", "tzdata", "certifi", "celery==5.*", "django==5.*",
                "djangorestframework==3.*", "docutils==0.*"]
SMOKE_TIMEOUT = "120"

# --- smoke helpers, written into every app (stdlib only) -------------------------------------

SMOKE_HTTP = '''\
"""Start a server ({port} in the command is replaced by a free port, also in $PORT), GET each
path and check the body, then stop the server's process group.

usage: python3 smoke_http.py PATH=EXPECTED [PATH=EXPECTED...] -- COMMAND...
Bounded: 40 s to listen, 10 s per request, 15 s to stop.
"""
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

split = sys.argv.index("--")
checks = [arg.split("=", 1) for arg in sys.argv[1:split]]
with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
# `python3` in the command: this interpreter, with -S (the host's site-packages stay hidden)
command = [sys.executable if w == "python3" else w.replace("{port}", str(port)) for w in sys.argv[split + 1:]]
server = subprocess.Popen(command, env=dict(os.environ, PORT=str(port)), start_new_session=True)
try:
    deadline = time.monotonic() + 40
    while True:
        if server.poll() is not None:
            sys.exit(f"server exited with {server.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if time.monotonic() > deadline:
                sys.exit("server did not listen within 40 s")
            time.sleep(0.2)
    for path, expected in checks:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            body = response.read().decode()
        print(path, response.status, body[:100])
        if response.status != 200 or expected not in body:
            sys.exit(f"GET {path}: unexpected answer {response.status}: {body[:500]!r}")
finally:
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=15)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=15)
'''

SMOKE_READY = '''\
"""Run a long-lived command until its output shows TEXT, then stop its process group.

usage: python3 smoke_ready.py TEXT -- COMMAND...
Bounded: 60 s for TEXT to appear, 15 s to stop.
"""
import os
import selectors
import signal
import subprocess
import sys
import time

split = sys.argv.index("--")
text = sys.argv[1]
command = [sys.executable if w == "python3" else w for w in sys.argv[split + 1:]]
proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
seen = b""
try:
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + 60
    while text.encode() not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            sys.exit(f"no {text!r} within 60 s:\\n{seen.decode(errors='replace')[-3000:]}")
        if selector.select(timeout=min(left, 1.0)):
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                proc.wait(timeout=15)
                sys.exit(f"exited with {proc.returncode} before {text!r}:\\n{seen.decode(errors='replace')[-3000:]}")
            seen += chunk
    print(seen.decode(errors="replace")[-2000:])
finally:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)
'''

HELPERS = {"smoke_http.py": SMOKE_HTTP, "smoke_ready.py": SMOKE_READY}

# --- the apps ---------------------------------------------------------------------------------

WSGI_APP = '''\
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello from " + environ["wsgi.version"].__class__.__name__.encode() + b" wsgi"]
'''

ASGI_APP = '''\
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"hello from asgi"})
'''

GUNICORN_GTHREAD = {
    "Procfile": "web: gunicorn wsgi:app\n",
    # gunicorn reads ./gunicorn.conf.py by default: the worker class is named only here
    "gunicorn.conf.py": (
        "import os\n\n"
        "bind = '127.0.0.1:' + os.environ.get('PORT', '8000')\n"
        "worker_class = 'gthread'\n"
        "threads = 2\n"
        "workers = 1\n"
        "timeout = 30\n"
    ),
    "wsgi.py": WSGI_APP,
}

GUNICORN_UVICORN_WORKER = {
    "Procfile": "web: gunicorn asgi:app\n",
    "gunicorn.conf.py": (
        "import os\n\n"
        "bind = '127.0.0.1:' + os.environ.get('PORT', '8000')\n"
        "worker_class = 'uvicorn.workers.UvicornWorker'\n"
        "workers = 1\n"
        "timeout = 30\n"
    ),
    "asgi.py": ASGI_APP,
}

UVICORN = {
    "Procfile": "web: uvicorn asgi:app --host 127.0.0.1\n",
    "asgi.py": ASGI_APP,
}

SQLALCHEMY = {
    "main.py": '''\
"""An ORM round trip; the dialect module is imported by name from the URL."""
import sys
import tempfile
from pathlib import Path

from sqlalchemy import String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(String(50))


with tempfile.TemporaryDirectory() as folder:
    engine = create_engine(f"sqlite:///{Path(folder) / 'notes.db'}")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all([Note(text="alpha"), Note(text="beta")])
        session.commit()
        texts = session.scalars(select(Note.text).order_by(Note.id)).all()
    engine.dispose()
assert texts == ["alpha", "beta"], texts
print("sqlalchemy ok", texts, file=sys.stdout)
''',
}

PYGMENTS = {
    "main.py": '''\
"""Lexers, formatters and styles chosen by name, as a docs tool or a web app would."""
from pygments import highlight
from pygments.formatters import get_formatter_by_name
from pygments.lexers import get_lexer_by_name, get_lexer_for_filename
from pygments.styles import get_style_by_name

html = highlight("def f(x):\\n    return x + 1\\n", get_lexer_by_name("python"),
                 get_formatter_by_name("html", style="monokai"))
assert '<span class="k">def</span>' in html, html
rust = highlight("fn main() { let x = 1; }", get_lexer_for_filename("main.rs"), get_formatter_by_name("terminal256"))
assert "\\x1b[" in rust, rust
assert get_style_by_name("solarized-dark").background_color
print("pygments ok")
''',
}

OPENTELEMETRY = {
    "main.py": '''\
"""The SDK providers are chosen by environment variables (entry points of the groups
opentelemetry_tracer_provider / _meter_provider); propagators and the runtime context are
entry points too. The app imports only the API."""
import os

os.environ.setdefault("OTEL_PYTHON_TRACER_PROVIDER", "sdk_tracer_provider")
os.environ.setdefault("OTEL_PYTHON_METER_PROVIDER", "sdk_meter_provider")

from opentelemetry import baggage, metrics, propagate, trace  # noqa: E402

# (no dotted names in strings here: the SDK must be found through its entry points)
provider = trace.get_tracer_provider()
assert ".sdk." in type(provider).__module__ and type(provider).__name__ == "TracerProvider", type(provider)
assert ".sdk." in type(metrics.get_meter_provider()).__module__, metrics.get_meter_provider()
tracer = trace.get_tracer("smoke")
with tracer.start_as_current_span("work") as span:
    assert span.get_span_context().is_valid
    carrier = {}
    propagate.inject(carrier, context=baggage.set_baggage("user", "alice"))
assert "traceparent" in carrier and carrier.get("baggage") == "user=alice", carrier
metrics.get_meter("smoke").create_counter("requests").add(1)
print("opentelemetry ok", sorted(carrier))
''',
}

TZDATA = {
    "main.py": '''\
"""Time zones from the tzdata package (run with PYTHONTZPATH=/nonexistent: no system database)."""
from datetime import datetime
from zoneinfo import ZoneInfo, available_timezones

paris = datetime(2024, 7, 1, 12, tzinfo=ZoneInfo("Europe/Paris"))
assert paris.utcoffset().total_seconds() == 7200, paris.utcoffset()
assert datetime(2024, 1, 1, tzinfo=ZoneInfo("America/New_York")).utcoffset().total_seconds() == -18000
assert "Asia/Tokyo" in available_timezones()
print("tzdata ok", paris.isoformat())
''',
}

CERTIFI = {
    "main.py": '''\
"""An SSL context that trusts certifi's bundle, as requests and httpx build it."""
import ssl

import certifi

context = ssl.create_default_context(cafile=certifi.where())
assert context.cert_store_stats()["x509_ca"] > 50, context.cert_store_stats()
print("certifi ok", context.cert_store_stats()["x509_ca"])
''',
}

CELERY = {
    "Procfile": "worker: celery -A proj worker --pool solo --loglevel INFO\ncheck: python selfcheck.py\n",
    "proj/__init__.py": "from .celery import app as celery_app\n\n__all__ = ('celery_app',)\n",
    # the tasks module is named only in `include`, as celery's docs write it
    "proj/celery.py": '''\
from celery import Celery

app = Celery("proj", broker="memory://", backend="cache+memory://", include=["proj.tasks"])
app.conf.update(worker_hijack_root_logger=False, broker_connection_retry_on_startup=True)
# reports.tasks is found by convention: autodiscover imports the `tasks` module of each package
app.autodiscover_tasks(["reports"])
''',
    "reports/__init__.py": "",
    # certifi is used by this module only, which nothing imports and no string names
    "reports/tasks.py": '''\
from pathlib import Path

import certifi
from celery import shared_task


@shared_task
def bundle_size():
    return Path(certifi.where()).stat().st_size
''',
    "proj/tasks.py": '''\
import sqlparse

from .celery import app


@app.task
def add(x, y):
    return x + y


@app.task
def pretty_sql(text):
    return sqlparse.format(text, keyword_case="upper")
''',
    "selfcheck.py": '''\
"""Run the tasks through a real worker (solo pool, in-memory broker) and eagerly."""
from celery.contrib.testing.worker import start_worker

from proj import celery_app as app

with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10, loglevel="WARNING"):
    assert app.send_task("proj.tasks.add", (2, 3)).get(timeout=20) == 5
    assert app.send_task("proj.tasks.pretty_sql", ("select 1",)).get(timeout=20) == "SELECT 1"
    assert app.send_task("reports.tasks.bundle_size").get(timeout=20) > 1000
app.conf.task_always_eager = True
assert app.tasks["proj.tasks.add"].delay(20, 22).get(timeout=10) == 42
print("celery ok")
''',
}

DJANGO = {
    "manage.py": '''\
#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
''',
    "mysite/__init__.py": "",
    "mysite/settings.py": '''\
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "not-a-secret-only-a-test"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1"]
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "polls",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "mysite.urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
WSGI_APPLICATION = "mysite.wsgi.application"
DATABASES = {"default": {
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": os.environ.get("DJANGO_DB", str(BASE_DIR / "db.sqlite3")),
}}
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
''',
    "mysite/urls.py": '''\
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("polls/", include("polls.urls")),
]
''',
    "mysite/wsgi.py": '''\
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
application = get_wsgi_application()
''',
    "polls/__init__.py": "",
    "polls/apps.py": '''\
from django.apps import AppConfig


class PollsConfig(AppConfig):
    name = "polls"
''',
    "polls/models.py": '''\
from django.db import models


class Question(models.Model):
    text = models.CharField(max_length=200)
    published = models.DateTimeField()

    def __str__(self):
        return self.text
''',
    "polls/admin.py": '''\
from django.contrib import admin

from .models import Question

admin.site.register(Question)
''',
    "polls/views.py": '''\
from django.shortcuts import render

from .models import Question


def index(request):
    return render(request, "polls/index.html", {"questions": Question.objects.order_by("id")})
''',
    "polls/urls.py": '''\
from django.urls import path

from . import views

urlpatterns = [path("", views.index, name="index")]
''',
    "polls/migrations/__init__.py": "",
    "polls/migrations/0001_initial.py": '''\
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Question",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("text", models.CharField(max_length=200)),
                ("published", models.DateTimeField()),
            ],
        ),
    ]
''',
    "polls/templates/polls/index.html": (
        "{% load humanize %}<ul>{% for q in questions %}<li>{{ q.text|title }}</li>{% empty %}"
        "<li>no polls</li>{% endfor %}</ul>\n"
    ),
    "smoke_django.py": '''\
"""Requests through the test client: the project's URLs, templates, admin and sessions."""
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
import django  # noqa: E402

django.setup()
from django.contrib.auth.models import User  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from polls.models import Question  # noqa: E402

Question.objects.create(text="what is pruned?", published=timezone.now())
User.objects.create_superuser("admin", "admin@example.com", "pw-for-the-test")
client = Client()
page = client.get("/polls/")
assert page.status_code == 200 and b"<li>What Is Pruned?</li>" in page.content, page.content[:500]
login = client.get("/admin/login/")
assert login.status_code == 200 and b"csrfmiddlewaretoken" in login.content, login.status_code
assert client.login(username="admin", password="pw-for-the-test")
admin_page = client.get("/admin/polls/question/")
assert admin_page.status_code == 200 and b"what is pruned?" in admin_page.content, admin_page.status_code
print("django ok")
''',
}
# humanize is used by the template above only: it is in INSTALLED_APPS only through the string
DJANGO["mysite/settings.py"] = DJANGO["mysite/settings.py"].replace(
    '    "polls",\n', '    "django.contrib.humanize",\n    "polls",\n')

# The same project deployed the Heroku way: gunicorn finds the WSGI app and its worker class in
# gunicorn.conf.py (strings only), the release step migrates.
DJANGO_GUNICORN = {
    **DJANGO,
    "Procfile": "web: gunicorn\nrelease: python manage.py migrate --noinput\n",
    "gunicorn.conf.py": (
        "import os\n\n"
        "wsgi_app = 'mysite.wsgi:application'\n"
        "bind = '127.0.0.1:' + os.environ.get('PORT', '8000')\n"
        "worker_class = 'gthread'\n"
        "threads = 2\n"
        "timeout = 30\n"
    ),
}


# A REST API with Django REST framework, named in INSTALLED_APPS by its bare name only (its
# templatetags render the browsable API), in French: Django's own formats and translations
# for fr are imported and read by a computed name (django.conf.locale.fr.formats).
DJANGO_DRF = {
    **DJANGO,
    "mysite/urls.py": '''\
from django.urls import path

from polls.api import QuestionList

urlpatterns = [path("api/questions/", QuestionList.as_view())]
''',
    "polls/api.py": '''\
from rest_framework.response import Response
from rest_framework.views import APIView

from .models import Question


class QuestionList(APIView):
    def get(self, request):
        return Response([q.text for q in Question.objects.order_by("id")])
''',
    "smoke_django.py": '''\
"""The browsable API (DRF's templates and template tags) and French formats and messages."""
import datetime
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
import django  # noqa: E402

django.setup()
from django import forms  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import formats, timezone, translation  # noqa: E402

from polls.models import Question  # noqa: E402

Question.objects.create(text="what is pruned?", published=timezone.now())
api = Client().get("/api/questions/", HTTP_ACCEPT="text/html")
assert api.status_code == 200 and b"what is pruned?" in api.content and b"rest_framework" in api.content, \\
    api.content[:300]
with translation.override("fr"):
    shown = formats.date_format(datetime.date(2024, 3, 5), "DATE_FORMAT")
    assert shown == "5 mars 2024", f"french date format lost: {shown!r}"
    error = forms.IntegerField().error_messages["invalid"]
    assert error == "Saisissez un nombre entier.", f"french messages lost: {error!r}"
print("drf ok")
''',
}
DJANGO_DRF["mysite/settings.py"] = DJANGO["mysite/settings.py"].replace(
    '    "polls",\n', '    "rest_framework",\n    "polls",\n').replace("USE_TZ = True", "USE_TZ = True\nUSE_I18N = True")

DOCUTILS = {
    "main.py": '''\
from docutils.core import publish_parts

TEXT = "Titre\\n=====\\n\\n.. contents::\\n\\nSection\\n-------\\n\\nBonjour *monde*.\\n"
parts = publish_parts(TEXT, writer_name="html5", settings_overrides={"language_code": "fr", "report_level": 5})
assert "<em>monde</em>" in parts["body"] and "Sommaire" in parts["body"], parts["body"][:400]
print("docutils ok")
''',
}


@dataclass(frozen=True)
class Sabotage:
    """A file deleted from a copy of OUT (relative to OUT/site-packages): the smoke must then
    fail, naming `missing` (a module, a message fragment) in verify's `missing` or its output."""
    path: str
    missing: str
    reasons: frozenset[str]        # what keeps the file in the report (at least one of these)


@dataclass(frozen=True)
class Case:
    files: dict[str, str]
    smoke: str
    sabotages: tuple[Sabotage, ...]
    used: tuple[str, ...] = ()     # distributions the prune must keep
    unused: tuple[str, ...] = ()   # ... and some it must drop


HINT, STRING, PLUGIN, DATA = frozenset({"hint"}), frozenset({"string"}), frozenset({"plugin"}), frozenset({"data"})
SYSTEM_FALLBACK = frozenset({"system-fallback"})      # a hint whose data stands in for the system's

CASES = {
    "gunicorn-gthread": Case(
        GUNICORN_GTHREAD, "python3 smoke_http.py /=wsgi -- python3 -S -m gunicorn wsgi:app",
        (Sabotage("gunicorn/workers/gthread.py", "gunicorn.workers.gthread", HINT),),
        ("gunicorn",), ("uvicorn", "django")),
    "gunicorn-uvicorn-worker": Case(
        GUNICORN_UVICORN_WORKER, "python3 smoke_http.py '/=hello from asgi' -- python3 -S -m gunicorn asgi:app",
        # named only in gunicorn.conf.py, which only the gunicorn.config hint traces
        (Sabotage("uvicorn/workers.py", "uvicorn.workers", STRING),
         Sabotage("uvicorn/protocols/http/h11_impl.py", "h11_impl", HINT)),
        ("gunicorn", "uvicorn", "h11"), ("django",)),
    "uvicorn": Case(
        UVICORN, "python3 smoke_http.py '/=hello from asgi' -- python3 -S -m uvicorn asgi:app --host 127.0.0.1 "
                 "--port {port} --lifespan on",
        (Sabotage("uvicorn/protocols/http/h11_impl.py", "h11_impl", HINT),
         Sabotage("uvicorn/lifespan/on.py", "uvicorn.lifespan.on", HINT)),
        ("uvicorn", "h11"), ("gunicorn",)),
    "sqlalchemy": Case(
        SQLALCHEMY, "python3 main.py",
        (Sabotage("sqlalchemy/dialects/sqlite/pysqlite.py", "Can't load plugin: sqlalchemy.dialects:sqlite", HINT),),
        ("sqlalchemy",), ("django",)),
    "pygments": Case(
        PYGMENTS, "python3 main.py",
        (Sabotage("pygments/lexers/rust.py", "pygments.lexers.rust", HINT),
         Sabotage("pygments/styles/solarized.py", "pygments.styles.solarized", HINT)),
        ("pygments",), ("sqlalchemy",)),
    "opentelemetry": Case(
        OPENTELEMETRY, "python3 main.py",
        # the SDK: reached only through groups named by f"opentelemetry_{provider}"
        (Sabotage("opentelemetry/sdk/trace/__init__.py", "opentelemetry.sdk.trace", PLUGIN),
         Sabotage("opentelemetry/context/contextvars_context.py", "contextvars_context", PLUGIN)),
        ("opentelemetry-api", "opentelemetry-sdk"), ("celery",)),
    "tzdata": Case(
        TZDATA, "PYTHONTZPATH=/nonexistent python3 main.py",
        (Sabotage("tzdata/zoneinfo/Europe/Paris", "Europe/Paris", SYSTEM_FALLBACK),),
        ("tzdata",), ("django",)),
    "certifi": Case(
        CERTIFI, "python3 main.py",
        (Sabotage("certifi/cacert.pem", "FileNotFoundError", HINT | DATA),),
        ("certifi",), ("django",)),
    "celery": Case(
        CELERY, "python3 selfcheck.py && python3 smoke_ready.py 'ready.' -- python3 -S -m celery -A proj worker "
                "--pool solo --loglevel INFO --without-mingle --without-gossip",
        (Sabotage("celery/concurrency/solo.py", "celery.concurrency.solo", STRING | HINT),
         # used only by reports/tasks.py, found by the autodiscover_tasks convention
         Sabotage("certifi/core.py", "certifi.core", HINT | frozenset({"import"}))),
        ("celery", "kombu", "sqlparse", "certifi"), ("gunicorn", "uvicorn")),
    "django": Case(
        DJANGO, "rm -f db.sqlite3 && python3 manage.py check && python3 manage.py migrate --noinput && "
                "python3 smoke_django.py",
        (Sabotage("django/db/backends/sqlite3/base.py", "django.db.backends.sqlite3", STRING | HINT),
         Sabotage("django/contrib/humanize/templatetags/humanize.py", "humanize", HINT)),
        ("django", "asgiref", "sqlparse"), ("celery",)),
    "django-drf-fr": Case(
        DJANGO_DRF, "rm -f db.sqlite3 && python3 manage.py check && python3 manage.py migrate --noinput && "
                    "python3 smoke_django.py",
        (Sabotage("rest_framework/templatetags/rest_framework.py", "rest_framework", HINT),
         Sabotage("django/conf/locale/fr/formats.py", "french date format lost", HINT)),
        ("django", "djangorestframework"), ("celery", "gunicorn")),
    "docutils": Case(
        DOCUTILS, "python3 main.py",
        (Sabotage("docutils/languages/fr.py", "Sommaire", HINT),),
        ("docutils",), ("django",)),
    "django-gunicorn": Case(
        DJANGO_GUNICORN, "rm -f db.sqlite3 && python3 manage.py migrate --noinput && "
                         "python3 smoke_http.py '/polls/=no polls' -- python3 -S -m gunicorn",
        (Sabotage("django/db/backends/sqlite3/base.py", "django.db.backends.sqlite3", STRING | HINT),
         Sabotage("gunicorn/workers/gthread.py", "gunicorn.workers.gthread", HINT)),
        ("django", "gunicorn"), ("celery", "uvicorn")),
}


# --- helpers ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def deps() -> Path:
    return installed(REQUIREMENTS)


def write_files(root: Path, files: dict[str, str]) -> Path:
    for name, text in {**files, **HELPERS}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def verify(out: Path, smoke: str) -> tuple[int, dict[str, Any]]:
    result = run_cli("verify", out, "--smoke", smoke, "--timeout", SMOKE_TIMEOUT, "--format", "json", timeout=300)
    assert "Traceback" not in result.err, result.err
    assert result.code in (0, 3), f"exit {result.code}: {result.err}"
    return result.code, result.json()


def sabotaged_copy(out: Path, rel: str, dest: Path) -> Path:
    shutil.copytree(out, dest, symlinks=True)
    target = dest / "site-packages" / rel
    assert target.exists(), f"{rel} is not in the pruned tree"
    if target.is_dir():
        shutil.rmtree(target)
    else:
        target.unlink()
        for pyc in (target.parent / "__pycache__").glob(target.stem + ".*.pyc"):
            pyc.unlink()
    return dest


# --- the test ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(CASES))
def test_real_app_runs_pruned_with_static_analysis_and_hints(name: str, deps: Path, tmp_path: Path) -> None:
    case = CASES[name]
    app = write_files(tmp_path / "app", case.files)
    out = tmp_path / "out"
    result = run_cli("prune", app, "--deps", deps, "--out", out, "--format", "json", timeout=300)
    assert result.code == 0, result.err
    report = result.json()
    rows = {r["name"].lower(): r for r in report["distributions"]}
    for dist in case.used:
        assert rows[dist]["used"], f"{dist} is not kept"
    for dist in case.unused:
        assert not rows[dist]["used"], f"{dist} is kept although {name} does not use it"
    files = {f["path"]: f for f in report["files"] if f["root"] == "deps"}
    for sabotage in case.sabotages:
        kept = files.get(sabotage.path)
        assert kept and kept["keep"], f"{sabotage.path} is not kept"
        assert sabotage.reasons & set(kept["reasons"]), kept

    code, verified = verify(out, case.smoke)
    assert code == 0 and verified["passed"], json.dumps(verified, indent=1)

    # The smoke really needs each file: without it the same command fails, naming it.
    for number, sabotage in enumerate(case.sabotages):
        broken = sabotaged_copy(out, sabotage.path, tmp_path / f"sabotaged{number}")
        code, failed = verify(broken, case.smoke)
        assert code == 3 and not failed["passed"], (sabotage, failed)
        assert any(sabotage.missing in m for m in failed["missing"]) or sabotage.missing in failed["output_tail"], \
            (sabotage, failed)
