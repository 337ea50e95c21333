"""The error half of the HTTP contract of ``anima serve``: one JSON error body for every answer.

Every error the server gives — a handler's refusal, a body that fails validation, an unknown
path, a method the path does not take, the rate limiter, a refused CORS preflight, a bug — is
``{"error": code, "message": one line}`` (:class:`ErrorBody`), and each route lists in its
OpenAPI ``responses`` the statuses it can answer with (:func:`errors`). A 405 names the
methods the path does take in ``Allow`` (RFC 9110), all of them, not only those of the first
route that matched the path.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Scope

from anima.server import metrics

log = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    """Every error answer of the server: a short machine-readable code and one line for people."""

    error: str = Field(
        description="What went wrong, e.g. bad_request, bad_sdp, unauthorized, unknown_session, "
        "conflict, unavailable, rate_limited, busy, not_found, method_not_allowed, internal.",
        examples=["unknown_session"],
    )
    message: str = Field(description="One line saying why.", examples=["no open session 'x'"])


class ApiError(Exception):
    """An HTTP error answered with :class:`ErrorBody` ``{"error": code, "message": message}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


_WHY = {
    400: "The request is malformed: a body or parameter the server cannot use.",
    401: "A session token (or the operator key) is needed and was missing or wrong.",
    403: "The server is not set up for this (no operator key configured).",
    404: "No such session (or avatar).",
    409: "The session cannot do this now (closing, or a drive session), or is already open.",
    429: "Over the request rate (see Retry-After) or this client's share of sessions.",
    500: "A bug in the server: opening the session failed unexpectedly.",
    503: "Every session slot is taken, or the server is shutting down.",
}

RETRY_AFTER = {
    "Retry-After": {
        "description": "Whole seconds to wait before the next request.",
        "schema": {"type": "integer", "minimum": 1},
    }
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of a route that may answer with these error ``statuses``."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in sorted(set(statuses)):
        entry: dict[str, Any] = {"model": ErrorBody, "description": _WHY[status]}
        if status == 429:
            entry["headers"] = RETRY_AFTER
        out[status] = entry
    return out


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """An :class:`ErrorBody` answer."""
    body = ErrorBody(error=code, message=message).model_dump()
    return JSONResponse(body, status_code=status, headers=headers)


def allowed_methods(app: Any, scope: Scope) -> list[str]:
    """Every method some route of ``app`` takes at the request's path (for ``Allow``)."""
    methods: set[str] = set()
    for route in getattr(app, "routes", ()):
        route_methods = getattr(route, "methods", None)
        if not route_methods:
            continue
        match, _ = route.matches({**scope, "type": "http"})
        if match != Match.NONE:
            methods |= set(route_methods)
    return sorted(methods)


def install_error_handlers(app: FastAPI, field_codes: dict[str, str] | None = None) -> None:
    """Answer every error of ``app`` with :class:`ErrorBody`.

    ``field_codes`` names the error code of a body field whose validation failed (e.g.
    ``{"sdp": "bad_sdp"}``); any other invalid request is ``400 bad_request``.
    """
    codes = field_codes or {}
    use_error_body_for_validation(app)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        where = ".".join(loc)
        message = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
        if first.get("type") == "json_invalid":
            message = "the request body is not valid JSON"
        elif where:
            message = f"{where}: {message}"
        code = codes.get(loc[-1], "bad_request") if loc else "bad_request"
        metrics.REFUSED.labels("bad_request").inc()
        return error_response(400, code, message)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the first matching route's methods; the path may have more.
            methods = allowed_methods(request.app, request.scope) or ["GET", "HEAD"]
            headers["Allow"] = ", ".join(methods)
        return error_response(exc.status_code, code, str(exc.detail), headers)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return error_response(500, "internal", f"the server failed: {type(exc).__name__}")


def use_error_body_for_validation(app: FastAPI) -> None:
    """Make ``app``'s OpenAPI say what it answers to an invalid request: 400 :class:`ErrorBody`.

    FastAPI documents its default, ``422 HTTPValidationError``, on every route that validates
    anything; :func:`install_error_handlers` answers 400 with the one error body instead.
    """
    make = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = make()
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                responses = operation.get("responses", {})
                if responses.pop("422", None) is not None and "400" not in responses:
                    responses["400"] = {
                        "description": _WHY[400],
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/ErrorBody"}
                            }
                        },
                    }
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        components.setdefault("ErrorBody", ErrorBody.model_json_schema())
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


class JsonCORSMiddleware(CORSMiddleware):
    """Starlette's CORS middleware whose refused preflight is an :class:`ErrorBody` too."""

    def preflight_response(self, request_headers: Any) -> Any:
        """The preflight answer; a refusal (400 text) becomes ``400 cors_refused`` JSON."""
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        headers = {k: v for k, v in response.headers.items() if k.lower().startswith("access-")}
        why = bytes(response.body).decode("utf-8", "replace").strip() or "CORS refused"
        return error_response(response.status_code, "cors_refused", why, headers)
