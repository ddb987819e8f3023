"""create_app: the FastAPI application (OpenAPI at /docs)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis as redis_lib
from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi_offline import FastAPIOffline
from prometheus_client import CollectorRegistry

from api import errors, logs
from api.limits import BodyLimits, body_caps
from api.openmode import LoopbackOnly
from api.routes import batches, files, health, jobs, providers, tools, ui, uploads, webhooks
from models.schemas import SizeLimits
from workers.context import Runtime, build_runtime
from workers.db import session_scope
from workers.dispatch import CeleryDispatcher, Dispatcher, GatheringDispatcher
from workers.jobs import count_by_provider_status
from workers.metrics import JobsCollector, RelayMetrics
from workers.services.create import mark_due
from workers.settings import Settings, get_settings

log = logging.getLogger("k4u.api")


def gathering(rt: Runtime) -> GatheringDispatcher:
    """The runtime's dispatcher with the POSTs' submits gathered (several to a message under load),
    those the broker refuses made due at once."""
    return GatheringDispatcher(rt.dispatcher, workers=rt.settings.worker_concurrency, on_failed=lambda items: mark_due(rt, [job_id for job_id, _ in items]))


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None, dispatcher: Dispatcher | None = None) -> FastAPI:
    settings = settings or (runtime.settings if runtime else get_settings())
    if runtime is None and dispatcher is not None:
        runtime = build_runtime(settings, dispatcher)
    elif runtime is None:  # the process's own: Celery, with the POSTs' submits gathered
        from workers.celery_app import app as celery_app, configure

        runtime = build_runtime(settings, CeleryDispatcher(configure(celery_app, settings)))
        runtime.dispatcher = gathering(runtime)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        close = getattr(app.state.runtime.dispatcher, "close", None)
        if close is not None:  # the submits still gathered go out before the process ends
            await run_in_threadpool(close)

    # /docs and /redoc with Swagger UI and ReDoc from the package (under /static-offline-docs), not a
    # CDN: a script from elsewhere on this origin could read the token the gallery keeps here.
    app = FastAPIOffline(
        title="Key4U Jobs", version="0.1.0", lifespan=lifespan, description="Durable jobs for the Key4U relay: POST a job, get an id and a status_url at once."
    )
    app.state.runtime = runtime
    app.state.redis = redis_lib.Redis.from_url(settings.redis_url, socket_timeout=2) if settings.redis_url else None
    registry = CollectorRegistry()

    def counts() -> list[tuple[str, str, int]]:
        with session_scope(runtime.engine) as session:
            return count_by_provider_status(session)

    registry.register(JobsCollector(counts, RelayMetrics(app.state.redis) if app.state.redis else None))
    app.state.registry = registry
    errors.install(app)
    app.add_middleware(
        BodyLimits,
        default_cap=settings.max_body_bytes,
        caps=body_caps(settings),
        sizes=SizeLimits(settings.max_input_bytes, settings.max_metadata_bytes, settings.inline_input_max_bytes),
        upload_cap=settings.max_upload_bytes,
    )
    if not settings.tokens and not settings.allow_open_api:
        app.add_middleware(LoopbackOnly)  # outermost: a request from elsewhere is refused before its body is read
    logs.install()
    for r in (jobs.router, batches.router, uploads.router, files.router, providers.router, webhooks.router, tools.router, health.router):
        app.include_router(r)
    ui.install(app)
    if not settings.tokens:
        log.warning(
            "K4U_API_TOKENS is not set: the API accepts requests without a token%s",
            "" if settings.allow_open_api else " (from loopback clients under a loopback Host name only)",
        )
    return app
