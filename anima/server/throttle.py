"""The per-client request limit of an HTTP front (``anima serve`` and the cluster gateway).

One middleware for both, so the two fronts refuse alike: every ``/api/`` request but the health
check spends from the client's bucket (its address, or its token once the token is known to be
genuine), and a refusal is the contract's JSON error, 429 ``rate_limited`` with
``Retry-After``, counted in ``anima_rtc_refused_total{why="rate"}``.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request

from anima.config import WebRTCSettings
from anima.server import metrics
from anima.server.auth import TokenError, TokenSigner, check_operator
from anima.server.contract import error_response
from anima.server.limits import ServerLimits


def request_token(request: Request) -> str | None:
    """The request's token: ``Authorization: Bearer …`` or the ``token`` query parameter."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.query_params.get("token")


def token_checker(cfg: WebRTCSettings, signer: TokenSigner) -> Callable[[str], bool]:
    """Whether a token is worth a rate bucket of its own: the operator key or a genuine,
    unexpired session token (a made-up token must not buy a fresh bucket)."""

    def known(text: str) -> bool:
        if check_operator(cfg, text):
            return True
        try:
            signer.verify(text)
        except TokenError:
            return False
        return True

    return known


def install_rate_limit(
    app: FastAPI,
    limits: ServerLimits,
    per_second: float,
    known_token: Callable[[str], bool] | None,
) -> None:
    """Add the request limit to ``app`` (``known_token`` None: tokens are not required)."""

    @app.middleware("http")
    async def _rate_limit(request: Request, call_next):  # noqa: ANN001, ANN202 - Starlette
        path = request.url.path
        if path.startswith("/api/") and path != "/api/health":
            peer = request.client.host if request.client else None
            forwarded = request.headers.get("x-forwarded-for")
            client = limits.client(peer, forwarded)
            request.state.client = client
            request.state.local = limits.local(peer, forwarded)
            if not limits.allow(client, request_token(request), known_token):
                metrics.REFUSED.labels("rate").inc()
                return error_response(
                    429,
                    "rate_limited",
                    f"more than {per_second:g} requests a second; slow down",
                    {"Retry-After": str(limits.retry_after())},
                )
        return await call_next(request)
