"""Smoke check: uvicorn (standard extras: uvloop, httptools) serves the FastAPI app.

Checks that uvloop and httptools are in use, GET and POST with JSON bodies, pydantic validation errors (422),
a computed field, a 404 and the generated OpenAPI schema.
"""
from smokelib import Session, expect, free_port


def smoke(s: Session) -> None:
    port = free_port()
    with s.server("-m", "uvicorn", "main:app", "--host", "127.0.0.1", "--port", str(port),
                  "--no-access-log", port=port) as url:
        health = s.get(url + "/health")
        expect(health.status == 200, f"/health: {health.status} {health.text}")
        # uvicorn[standard] silently falls back to asyncio / h11 when uvloop /
        # httptools cannot be imported: insist on the fast implementations.
        expect(health.json() == {"status": "ok", "loop": "uvloop", "http": "httptools"},
               f"/health: {health.text}")

        made = s.post(url + "/items", {"name": "lamp", "price": 25.0, "tags": ["home"]})
        expect(made.status == 201, f"POST /items -> {made.status}: {made.text}")
        item = made.json()
        expect(item["id"] == 1 and item["price_with_tax"] == 30.0, f"created item: {item}")
        expect(item["created"].startswith("20"), f"datetime not serialized: {item}")

        s.post(url + "/items", {"name": "desk", "price": 120.5, "tags": ["office"]})
        got = s.get(url + "/items/2").json()
        expect(got["name"] == "desk" and got["tags"] == ["office"], f"GET /items/2: {got}")

        home = s.get(url + "/items?tag=home").json()
        expect([i["name"] for i in home] == ["lamp"], f"filter by tag: {home}")

        bad = s.post(url + "/items", {"name": "", "price": -1})
        expect(bad.status == 422, f"invalid item accepted: {bad.status} {bad.text}")
        kinds = sorted(err["type"] for err in bad.json()["detail"])
        expect(kinds == ["greater_than", "string_too_short"], f"validation errors: {kinds}")

        missing = s.get(url + "/items/99")
        expect(missing.status == 404 and "not found" in missing.text, "404 for a missing item")

        schema = s.get(url + "/openapi.json").json()
        expect("ItemIn" in schema["components"]["schemas"], "OpenAPI schema lacks ItemIn")
        expect("uvicorn" in health.headers.get("server", ""), f"not served by uvicorn: {health.headers}")
