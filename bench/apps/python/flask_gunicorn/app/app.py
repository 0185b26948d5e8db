"""A small Flask site served by gunicorn: template inheritance, a static file, JSON."""
from flask import Flask, jsonify, render_template, request

app = Flask(__name__)

BOOKS = [
    {"id": 1, "title": "The Pragmatic Programmer", "year": 1999},
    {"id": 2, "title": "Structure and Interpretation of Computer Programs", "year": 1985},
    {"id": 3, "title": "Designing Data-Intensive Applications", "year": 2017},
]


@app.route("/")
def index():
    newest = max(BOOKS, key=lambda b: b["year"])
    return render_template("index.html", books=BOOKS, newest=newest)


@app.route("/books/<int:book_id>")
def book(book_id):
    found = next((b for b in BOOKS if b["id"] == book_id), None)
    if found is None:
        return render_template("404.html", what=f"book {book_id}"), 404
    return render_template("book.html", book=found)


@app.route("/api/books")
def api_books():
    since = request.args.get("since", default=0, type=int)
    return jsonify([b for b in BOOKS if b["year"] >= since])
