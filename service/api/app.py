"""The FastAPI application factory."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from service import __version__
from service.api import errors
from service.api import metrics as prometheus
from service.api.limits import BodyLimitMiddleware, RateLimiter
from service.api.observe import RequestMiddleware, install_database_errors
from service.api.readiness import Readiness
from service.api.routes import (
    access,
    actions,
    alerts,
    analytics,
    benchmark,
    dashboard,
    delivery,
    feedback,
    health,
    labels,
    models,
    score,
    taxonomy,
    trends,
)
from service.config import Settings
from service.runtime import Runtime


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> FastAPI:
    settings = settings or (runtime.settings if runtime else Settings())
    runtime = runtime or Runtime(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        _ = runtime.engine  # migrate before the first request, not during it
        yield
        runtime.close()

    app = FastAPI(
        title="Feedback Radar",
        version=__version__,
        lifespan=lifespan,
        description="Customer-feedback intelligence: tag, score, segment, forecast and alert.",
    )
    app.state.runtime = runtime
    app.state.limiter = RateLimiter(settings.api.rate_limit_per_minute)
    app.state.readiness = Readiness(runtime)
    metrics = None
    if settings.api.metrics:
        metrics = app.state.metrics = prometheus.Metrics(runtime)
        app.include_router(prometheus.router)
    errors.install(app)
    install_database_errors(app, metrics)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.limits.max_body_bytes)
    app.add_middleware(
        RequestMiddleware, metrics=metrics
    )  # outermost: sees every answer, 413s included
    for module in (
        health,
        score,
        feedback,
        labels,
        models,
        analytics,
        trends,
        alerts,
        benchmark,
        dashboard,
        delivery,
        access,
        taxonomy,
        actions,
    ):
        app.include_router(module.router, prefix="/v1")
    app.include_router(dashboard.router)  # the dashboard: pages that read the /v1 endpoints above
    return app
