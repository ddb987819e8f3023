"""The per-process runtime: engine, relay client, fetcher, store, dispatcher, clock.

Built once per worker process (worker_process_init) or API app; tests build their own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy.engine import Engine

from models.tables import utcnow
from providers.base import CallbackInputs
from workers.db import get_engine
from workers.dispatch import Dispatcher
from workers.keysets import KeySet
from workers.limits import SubmitGate
from workers.relay import Fetcher, Observer, Relay
from workers.settings import Settings
from workers.storage import ObjectStore, open_store


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    relay: Relay
    fetcher: Fetcher
    store: ObjectStore
    dispatcher: Dispatcher
    clock: Callable[[], datetime] = field(default=utcnow)
    gate: SubmitGate | None = None
    notify_transport: httpx.BaseTransport | None = None
    # provider -> monotonic time until which its batch status route is treated as unavailable
    batch_off_until: dict[str, float] = field(default_factory=dict)
    fal_keys: KeySet | None = None  # K4U_FAL_JWKS, loaded on first use
    _download_threads: ThreadPoolExecutor | None = field(default=None, repr=False)

    def callback_inputs(self, provider: str, now: datetime, task_id: str | None, handle: Mapping[str, Any]) -> CallbackInputs:
        """What an adapter needs to judge a provider's callback: its secret or key set, and the clock."""
        secret = self.settings.replicate_webhook_secret if provider == "replicate" else None
        keys = self.fal_keys.keys() if provider == "fal" and self.fal_keys is not None else None
        return CallbackInputs(secret=secret.get_secret_value() if secret else None, now=now, task_id=task_id, handle=handle, keys=keys)

    def download_threads(self) -> ThreadPoolExecutor:
        """K4U_DOWNLOAD_CONCURRENCY threads for the jobs of one download message (store_many), made on first use."""
        if self._download_threads is None:
            self._download_threads = ThreadPoolExecutor(self.settings.download_concurrency, thread_name_prefix="k4u-download")
        return self._download_threads

    def close(self) -> None:
        if self._download_threads is not None:
            self._download_threads.shutdown(wait=False)
        self.relay.close()
        self.fetcher.close()


def build_runtime(
    settings: Settings,
    dispatcher: Dispatcher,
    *,
    relay_transport: httpx.BaseTransport | None = None,
    fetch_transport: httpx.BaseTransport | None = None,
    observe: Observer | None = None,
    store: ObjectStore | None = None,
) -> Runtime:
    key = settings.api_key.get_secret_value() if settings.api_key else None
    return Runtime(
        settings=settings,
        engine=get_engine(settings.database_url),
        relay=Relay(settings.base_url, key, transport=relay_transport, timeout_s=settings.relay_timeout_s,
                    connect_timeout_s=settings.relay_connect_timeout_s, observe=observe, max_body_bytes=settings.relay_max_body_bytes),
        fetcher=Fetcher(allow_private=settings.allow_private_urls, timeout_s=settings.download_timeout_s,
                        relay_base_url=settings.base_url, api_key=key, transport=fetch_transport,
                        max_resumes=settings.download_resumes),
        store=store or open_store(settings.storage_url, s3_endpoint_url=settings.s3_endpoint_url,
                                  s3_public_endpoint_url=settings.s3_public_endpoint_url),
        dispatcher=dispatcher,
        fal_keys=KeySet(settings.fal_jwks, allow_private=settings.allow_private_urls) if settings.fal_jwks else None,
        gate=SubmitGate.from_settings(settings.submit_rate_limits, settings.max_in_flight, settings.redis_url),
    )
