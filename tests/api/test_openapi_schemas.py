"""Every /v1 operation documents its success body as a named component schema (a pydantic
response model), so the OpenAPI document says what each answer holds, not just "object"."""

from __future__ import annotations

from typing import Any

import pytest

from service.api.app import create_app

SUCCESS = ("200", "201", "202")

# Operations whose success answer is not a JSON body, with why; each must document its media type.
NOT_JSON = {
    ("delete", "/v1/subscriptions/{subscription_id}"): (None, "204: deleted, no body"),
    ("get", "/v1/unsubscribe"): ("text/html", "the signed link's confirmation page"),
    ("post", "/v1/unsubscribe"): ("text/html", "the page saying the address is unsubscribed"),
}


def _ref(schema: dict[str, Any]) -> str | None:
    if schema.get("type") == "array":
        schema = schema.get("items", {})
    ref = schema.get("$ref", "")
    return ref.removeprefix("#/components/schemas/") if ref.startswith("#/") else None


def untyped(spec: dict[str, Any]) -> list[str]:
    """The /v1 operations whose success body is not a $ref to an existing component."""
    components = spec.get("components", {}).get("schemas", {})
    problems = []
    for path, ops in spec["paths"].items():
        if not path.startswith("/v1"):
            continue
        for method, op in ops.items():
            where = f"{method.upper()} {path}"
            success = {c: r for c, r in op["responses"].items() if c in SUCCESS or c == "204"}
            if (method, path) in NOT_JSON:
                media, _ = NOT_JSON[(method, path)]
                code, resp = next(iter(success.items()), (None, {}))
                content = resp.get("content", {})
                if media is None:
                    if code != "204" or content:
                        problems.append(f"{where}: documented as 204 without a body, got {code}")
                elif media not in content or "application/json" in content:
                    problems.append(f"{where}: documented as {media}, got {sorted(content)}")
                continue
            if not success or any(c == "204" for c in success):
                problems.append(f"{where}: no 200/201/202 response")
                continue
            for code, resp in success.items():
                schema = resp.get("content", {}).get("application/json", {}).get("schema")
                name = _ref(schema or {})
                if name is None:
                    problems.append(f"{where} {code}: not a named component: {schema}")
                elif name not in components:
                    problems.append(f"{where} {code}: component {name} is missing")
    return problems


@pytest.fixture
def app(sqlite_url, make_runtime, fake_scorer):
    return create_app(runtime=make_runtime(sqlite_url, fake_scorer))


def test_every_v1_success_body_is_a_named_component(app):
    spec = app.openapi()
    assert not untyped(spec), "\n".join(untyped(spec))
    ops = {(m, p) for p, o in spec["paths"].items() if p.startswith("/v1") for m in o}
    assert set(NOT_JSON) <= ops, "an exception names an operation that does not exist"
    assert len(ops) > 50  # the check saw the whole API


def test_the_exceptions_document_their_media_type(app):
    spec = app.openapi()
    for (method, path), (media, _) in NOT_JSON.items():
        responses = spec["paths"][path][method]["responses"]
        if media is None:
            assert "204" in responses and not responses["204"].get("content")
        else:
            assert list(responses["200"]["content"]) == [media]


def test_a_route_without_a_model_is_caught(app):
    from fastapi import APIRouter

    extra = APIRouter()

    @extra.get("/v1/untyped-example")
    def untyped_example() -> dict[str, Any]:
        return {}

    @extra.get("/v1/list-example")
    def list_example() -> list[dict[str, Any]]:
        return []

    app.include_router(extra)
    app.openapi_schema = None
    found = untyped(app.openapi())
    assert any("/v1/untyped-example" in p for p in found), found
    assert any("/v1/list-example" in p for p in found), found
    assert len(found) == 2, found
