"""Smoke check: gunicorn (gthread workers, gunicorn.conf.py) serves the Flask app.

Checks template inheritance (a block using super()), filters, url_for,
a static file, a 404 page and a JSON endpoint.
"""
from smokelib import Session, expect, free_port


def smoke(s: Session) -> None:
    port = free_port()
    with s.server("-m", "gunicorn", "-c", "gunicorn.conf.py",
                  "--bind", f"127.0.0.1:{port}", "app:app", port=port) as url:
        home = s.get(url + "/")
        expect(home.status == 200, f"GET / -> {home.status}: {home.text[:500]}")
        expect("<title>All books - Bookshelf</title>" in home.text, "base.html title block/super() missing")
        expect("Newest: DESIGNING DATA-INTENSIVE APPLICATIONS" in home.text, "index.html content missing")
        expect(home.text.count('<li class="book">') == 3, "expected 3 books in the list")
        expect('href="/books/2"' in home.text, "url_for link missing")
        expect("3 shown" in home.text, "base.html footer missing")

        css = s.get(url + "/static/style.css")
        expect(css.status == 200 and "bookshelf-stylesheet" in css.text, f"static file: {css.status}")

        book = s.get(url + "/books/2")
        expect(book.status == 200 and "<h2>Structure and Interpretation" in book.text, "book page")

        missing = s.get(url + "/books/99")
        expect(missing.status == 404 and "No such book 99." in missing.text, "404 page")

        api = s.get(url + "/api/books?since=1990")
        expect(api.status == 200, f"GET /api/books -> {api.status}")
        expect([b["id"] for b in api.json()] == [1, 3], f"api result: {api.text}")
        expect("gunicorn" in api.headers.get("Server", ""), f"not served by gunicorn: {api.headers}")
