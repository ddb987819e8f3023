"""No outbound URL reaches a log whole. httpx logs each request's URL at INFO, query string included:
a callback_url's token, a result CDN's signature. Each process's logging setup (Celery's worker
and beat processes, the API, the CLI) keeps httpx and httpcore at WARNING; a real download of a
signed URL and a real notification then leave neither in the captured log."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from celery import signals

from api.main import create_app
from cli.main import _logging
from tests.conftest import Sim
from tests.integration.test_download_messages import _succeeded_at
from tests.integration.test_notify_bounds import run_job_with_callback
from tests.servers import result_server, webhook_receiver
from workers import celery_app  # noqa: F401 - connects its logging hook, as in a worker process
from workers.dispatch import RecordingDispatcher
from workers.services import download
from workers.settings import Settings

SECRET = "s3cr3t-Tok3n-4f9a"
CLIENT_LOGGERS = ("httpx", "httpcore")


def process_logging(kind: str, settings: Settings) -> None:
    """The logging setup of a process of this kind."""
    if kind == "celery":  # what Celery's worker and beat send once they have set up logging
        signals.after_setup_logger.send(sender=None, logger=logging.getLogger(), loglevel=logging.INFO, logfile=None, format="", colorize=False)
    elif kind == "api":
        create_app(settings, dispatcher=RecordingDispatcher())
    else:
        _logging()  # `k4u api` and the other commands


@pytest.fixture
def fresh_loggers() -> Iterator[None]:
    """httpx's and httpcore's loggers as a new process has them (NOTSET: the root's level decides)."""
    before = {name: logging.getLogger(name).level for name in CLIENT_LOGGERS}
    for name in CLIENT_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)
    yield
    for name, level in before.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.parametrize("kind", ["celery", "api", "cli"])
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_download_and_a_notification_log_no_query_and_no_token(kind: str, fresh_loggers, engine_factory, sim: Sim, caplog) -> None:  # type: ignore[no-untyped-def]
    d = engine_factory(notify_backoff_s=1.0)
    process_logging(kind, d.rt.settings)
    caplog.set_level(logging.INFO)
    with webhook_receiver() as hook, result_server() as cdn:
        run_job_with_callback(d, f"{hook.url}?token={SECRET}")  # the simulator's result, then the notification
        d.run_for(3)
        assert hook.wait(1)[0].path == f"/hook?token={SECRET}"
        items = _succeeded_at(d, [f"{cdn['url']}/v/a.mp4?X-Amz-Expires=600&X-Amz-Signature={SECRET}"])
        assert download.store_many(d.rt, items) == ["succeeded"]
    assert "stored " in caplog.text  # INFO lines of ours are captured...
    assert SECRET not in caplog.text and "?token=" not in caplog.text and "X-Amz-" not in caplog.text, caplog.text  # ...no URL's query
