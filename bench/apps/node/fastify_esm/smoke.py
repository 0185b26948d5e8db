"""Checks for fastify_esm: an ESM app whose zod schemas validate requests and document them in Swagger UI.

A valid and an invalid POST (zod's issue codes, through fastify's validator
compiler), a coerced path parameter, the OpenAPI document as JSON and as YAML
(the yaml package), and Swagger UI's page and static assets (files that
@fastify/swagger-ui serves from its static/ directory).
"""
from smokelib import expect, free_port


def smoke(s) -> None:
    port = free_port()
    with s.serve(port) as url:
        health = s.get(url + "/health")
        expect(health.status == 200 and health.json() == {"status": "ok", "zod": "function"},
               f"/health: {health.status} {health.text}")

        ada = {"name": "Ada Lovelace", "email": "ada@example.com", "age": 36, "tags": ["math"]}
        made = s.post(url + "/users", ada)
        expect(made.status == 201 and made.json() == {"id": 1, **ada}, f"valid POST /users: {made.status} {made.text}")

        bad = s.post(url + "/users", {"name": "", "email": "not-an-email", "age": 1.5})
        expect(bad.status == 400, f"invalid POST /users: {bad.status} {bad.text}")
        expect(bad.json() == {"error": "invalid request", "part": "body", "issues": [
            {"path": "name", "code": "too_small"},
            {"path": "email", "code": "invalid_format"},
            {"path": "age", "code": "invalid_type"},
        ]}, f"zod issues: {bad.text}")

        got = s.get(url + "/users/1")
        expect(got.status == 200 and got.json() == {"id": 1, **ada}, f"/users/1: {got.text}")
        expect(s.get(url + "/users/7").status == 404, "/users/7 is not a 404")
        not_id = s.get(url + "/users/abc")
        expect(not_id.status == 400 and not_id.json()["issues"] == [{"path": "id", "code": "invalid_type"}],
               f"/users/abc: {not_id.text}")

        spec = s.get(url + "/docs/json").json()
        expect(spec["openapi"] == "3.0.3" and spec["info"]["title"] == "bench fastify_esm", f"/docs/json: {spec}")
        body = spec["paths"]["/users"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        expect(body["properties"]["email"]["format"] == "email" and body["required"] == ["name", "email"],
               f"the zod schema in the OpenAPI document: {body}")
        yaml = s.get(url + "/docs/yaml")
        expect(yaml.status == 200 and "title: bench fastify_esm" in yaml.text and "/users/{id}:" in yaml.text,
               f"/docs/yaml: {yaml.status} {yaml.text[:300]}")

        page = s.get(url + "/docs")
        expect(page.status == 200 and page.headers.get("content-type", "").startswith("text/html"),
               f"/docs: {page.status} {page.headers}")
        expect("<title>Swagger UI</title>" in page.text and "/docs/static/swagger-ui-bundle.js" in page.text,
               f"/docs is not the Swagger UI page: {page.text[:300]}")
        bundle = s.get(url + "/docs/static/swagger-ui-bundle.js")
        expect(bundle.status == 200 and b"SwaggerUIBundle" in bundle.body and len(bundle.body) > 500_000,
               f"swagger-ui-bundle.js: {bundle.status}, {len(bundle.body)} bytes")
        css = s.get(url + "/docs/static/swagger-ui.css")
        expect(css.status == 200 and css.text.startswith(".swagger-ui{"), f"swagger-ui.css: {css.status}")
        icon = s.get(url + "/docs/static/favicon-32x32.png")
        expect(icon.status == 200 and icon.body.startswith(b"\x89PNG\r\n\x1a\n"), f"favicon: {icon.status}")
        init = s.get(url + "/docs/static/swagger-initializer.js")
        expect(init.status == 200 and "SwaggerUIBundle" in init.text, f"swagger-initializer.js: {init.status}")
