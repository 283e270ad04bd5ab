"""``GET /__dohost/metrics``: the host's Prometheus metrics, open or behind the serve token.

``dohost dev`` serves it to anyone who can reach the (loopback) server.
``dohost serve`` guards it like its deploy API: ``Authorization: Bearer
<token>`` (401 without the right one; 403 when the server has no token),
unless ``--public-metrics`` opens it for a scraper that cannot send one.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ._prometheus import CONTENT_TYPE, PrometheusTelemetry

__all__ = ["metrics_route", "METRICS_PATH"]

METRICS_PATH = "/__dohost/metrics"


def metrics_route(metrics: PrometheusTelemetry, *, public: bool = True, token: str | None = None) -> Route:
    """The route; with ``public=False`` only a request bearing ``token`` gets the metrics."""

    async def endpoint(request: StarletteRequest) -> Response:
        if not public:
            if token is None:
                return JSONResponse(
                    {"error": "metrics are private: start `dohost serve` with --token (or --public-metrics)"},
                    status_code=403,
                )
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
                return JSONResponse(
                    {"error": "a valid token is required (Authorization: Bearer <token>)"}, status_code=401
                )
        return Response(metrics.scrape(), media_type=CONTENT_TYPE)

    return Route(METRICS_PATH, endpoint, methods=["GET"])
