"""One JSON error shape for every 4xx/5xx: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging
from typing import TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "unavailable",
}


T = TypeVar("T")


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        details: list[dict] | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        self.status = status
        self.message = message
        self.details = details or []
        self.code = code or _CODES.get(status, "error")
        self.headers = headers


def found(value: T | None, what: str) -> T:
    """``value``, or a 404 ``no <what>`` where the lookup found nothing (None)."""
    if value is None:
        raise ApiError(404, f"no {what}")
    return value


def error_body(
    status: int, message: str, details: list[dict] | None = None, code: str | None = None
) -> dict:
    return {
        "error": {
            "code": code or _CODES.get(status, "error"),
            "message": message,
            "details": details or [],
        }
    }


def _field(loc) -> str:
    return ".".join(str(p) for p in loc)


ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                    },
                },
            },
        }
    },
}
_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _document_errors(app: FastAPI) -> None:
    """Every 4xx (bad JSON 400, no key 401, role 403, missing 404, too large 413, invalid 422,
    rate limited 429) answers the one error shape: say so in the OpenAPI schema, in place of
    FastAPI's default 422 body (``{"detail": [...]}``), which this API never sends."""
    build = app.openapi

    def openapi() -> dict:
        spec = build()
        spec.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        answer = {
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        }
        for ops in spec.get("paths", {}).values():
            for method, op in ops.items():
                if method in _METHODS:
                    responses = op.setdefault("responses", {})
                    if "422" in responses:
                        responses["422"] = {"description": "Invalid request", **answer}
                    responses.setdefault(
                        "4XX", {"description": "Client error (see error.code)", **answer}
                    )
        return spec

    app.openapi = openapi


def install(app: FastAPI) -> None:
    _document_errors(app)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError):
        return JSONResponse(
            error_body(exc.status, exc.message, exc.details, exc.code),
            status_code=exc.status,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError):
        details = [
            {"field": _field(e["loc"]), "message": e["msg"], "type": e["type"]}
            for e in exc.errors()
        ]
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
        return JSONResponse(
            error_body(422, f"invalid request: {summary}", details), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException):
        return JSONResponse(
            error_body(exc.status_code, str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body(500, "internal error", code="internal"), status_code=500)
