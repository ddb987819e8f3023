"""Access-log redaction: provider callback URLs carry a per-job token, input-file links a signed one;
neither reaches a log.
Outbound URLs neither: install() also keeps httpx's request lines out (workers.logs)."""

from __future__ import annotations

import logging
import re

from workers.logs import quiet_http_clients

_WEBHOOK = re.compile(r"(/v1/webhooks/[^/\s]+/[^/\s]+/)[^/\s?]+")
_FILE_LINK = re.compile(r"(/v1/files/)[^/\s?]+")  # a signed input-file link opens the file until it expires


def redact(text: str) -> str:
    return _FILE_LINK.sub(r"\1***", _WEBHOOK.sub(r"\1***", text))


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install() -> None:
    quiet_http_clients()
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in logger.filters):
        logger.addFilter(RedactTokens())
