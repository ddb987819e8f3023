"""The notifier calls `callback_url` exactly as it was given, query string included: n8n's signed
resume URLs (`/webhook-waiting/{id}?signature=...`) stop working if a byte of it changes
(re-encoding, reordering, dropping an empty or repeated parameter)."""

from __future__ import annotations

import pytest

from tests.conftest import Sim
from tests.integration.test_notify_bounds import attempts, run_job_with_callback
from tests.servers import webhook_receiver


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_callback_url_is_called_byte_for_byte(engine_factory, sim: Sim) -> None:  # type: ignore[no-untyped-def]
    tail = "/webhook-waiting/42/node-1?signature=a%2Fb%3D%3D&x=1&x=2&empty=&plus=a+b&enc=%7e%2B&approved=true"
    with webhook_receiver() as hook:
        d = engine_factory(notify_backoff_s=1.0)
        job_id = run_job_with_callback(d, hook.url + tail)
        d.run_for(3)
        (got,) = hook.wait(1)
        delivery, _ = attempts(d, job_id)
    assert got.path == "/hook" + tail
    assert delivery.url == hook.url + tail and delivery.status == "delivered"
