"""The per-process runtime: engine, relay client, fetcher, store, dispatcher, clock.

Built once per worker process (worker_process_init) or API app; tests build their own.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import assert_never

import httpx
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from models.tables import utcnow
from providers.base import CallbackAuth, CallbackInputs, Capabilities
from providers.registry import ADAPTERS
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
    # The key sets of the families whose callbacks are signed against one (callback_auth jwks), by the
    # Settings field naming its source; each set is loaded on first use.
    key_sets: dict[str, KeySet] = field(default_factory=dict)
    _download_threads: ThreadPoolExecutor | None = field(default=None, repr=False)

    def callback_inputs(self, caps: Capabilities, now: datetime) -> CallbackInputs:
        """What an adapter needs to judge a callback, as its capabilities say: the secret or the key
        set's keys from the setting they name (None when it is not configured), and the clock."""
        match caps.callback_auth:
            case CallbackAuth.URL_TOKEN:
                return CallbackInputs(secret=None, now=now)
            case CallbackAuth.STANDARD_WEBHOOKS:
                return CallbackInputs(secret=setting_text(self.settings, caps.callback_setting), now=now)
            case CallbackAuth.JWKS:
                keys = self.key_set(caps)
                return CallbackInputs(secret=None, now=now, keys=keys.keys() if keys is not None else None)
            case _:
                assert_never(caps.callback_auth)

    def key_set(self, caps: Capabilities) -> KeySet | None:
        """The key set that verifies the family's callbacks (callback_auth jwks), None when not configured."""
        return self.key_sets.get(caps.callback_setting or "") if caps.callback_auth is CallbackAuth.JWKS else None

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
        relay=Relay(
            settings.base_url,
            key,
            transport=relay_transport,
            timeout_s=settings.relay_timeout_s,
            connect_timeout_s=settings.relay_connect_timeout_s,
            observe=observe,
            max_body_bytes=settings.relay_max_body_bytes,
            route_prefixes=settings.route_prefix_map(),
        ),
        fetcher=Fetcher(
            allow_private=settings.allow_private_urls,
            timeout_s=settings.download_timeout_s,
            relay_base_url=settings.base_url,
            api_key=key,
            transport=fetch_transport,
            max_resumes=settings.download_resumes,
            route_prefixes=settings.route_prefix_map(),
        ),
        store=store or open_store(settings.storage_url, s3_endpoint_url=settings.s3_endpoint_url, s3_public_endpoint_url=settings.s3_public_endpoint_url),
        dispatcher=dispatcher,
        key_sets=key_sets(settings),
        gate=SubmitGate.from_settings(settings.submit_rate_limits, settings.max_in_flight, settings.redis_url),
    )


def setting_text(settings: Settings, name: str | None) -> str | None:
    """The value of the Settings field a capability names (a secret revealed), None when unset."""
    value = getattr(settings, name) if name else None
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return str(value) if value else None


def key_sets(settings: Settings) -> dict[str, KeySet]:
    """A key set for each configured setting that families' callbacks are verified against (jwks)."""
    sources = {
        c.callback_setting: setting_text(settings, c.callback_setting)
        for c in (a.capabilities for a in ADAPTERS.values())
        if c.callback_auth is CallbackAuth.JWKS and c.callback_setting
    }
    return {name: KeySet(source, allow_private=settings.allow_private_urls) for name, source in sources.items() if source}
