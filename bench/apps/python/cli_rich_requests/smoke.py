"""Smoke check: the click CLI fetches JSON with requests from a local http.server
(127.0.0.1 only, started here in a thread) and renders it with a rich table.
"""
import contextlib
import functools
import json
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from smokelib import Session, expect

REPOS = [
    {"name": "microprune", "language": "Python", "stars": 1234},
    {"name": "tinyhttp", "language": "C", "stars": 87},
    {"name": "zebra-db", "language": "Rust", "stars": 45678},
    {"name": "old-thing", "language": "Perl", "stars": 3},
]


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def api_server():
    """Serve REPOS as static JSON on 127.0.0.1 (ephemeral port) for the duration."""
    with tempfile.TemporaryDirectory() as root:
        api = Path(root, "api")
        api.mkdir()
        (api / "repos.json").write_text(json.dumps(REPOS))
        (api / "info.json").write_text(json.dumps({"service": "repo-api", "version": "2.1"}))
        handler = functools.partial(QuietHandler, directory=root)
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


def smoke(s: Session) -> None:
    with api_server() as url:
        ping = s.run("cli.py", "--base-url", url, "ping").stdout
        expect("repo-api v2.1" in ping, f"ping output: {ping!r}")

        out = s.run("cli.py", "--base-url", url, "repos", "--min-stars", "50").stdout
        lines = out.splitlines()
        expect("Repositories (>= 50 stars)" in out, f"table title missing: {out!r}")
        rows = [line for line in lines if "│" in line and any(r["name"] in line for r in REPOS)]
        expect([r.split("│")[1].strip() for r in rows] == ["zebra-db", "microprune", "tinyhttp"],
               f"rows not sorted by stars or filtered: {rows}")
        expect(any("Total" in line and "46,999" in line for line in lines), f"footer total missing: {out!r}")
        expect("old-thing" not in out and lines[-1] == "3 repositories", f"filter/summary wrong: {out!r}")

        bad = s.run("cli.py", "--base-url", url, "repos", "--sort", "size", check=False)
        expect(bad.returncode == 2 and "Invalid value" in bad.stderr, f"click validation: {bad.stderr!r}")
