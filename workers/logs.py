"""Outbound URLs stay out of the logs. httpx logs every request's full URL at INFO, query string
included (a callback_url's token, a result CDN's signature), so every process keeps httpx's and
httpcore's loggers at WARNING: the API (api.logs.install), the CLI (cli.main) and Celery's worker
and beat processes (after_setup_logger, connected in workers.celery_app). Our own log lines name a
job, a task or a storage key, never a URL."""

from __future__ import annotations

import logging

HTTP_CLIENT_LOGGERS = ("httpx", "httpcore")


def quiet_http_clients() -> None:
    for name in HTTP_CLIENT_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
