"""Request bodies for the Midjourney and Suno routes: a JSON object, or None when it is not one."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request


async def json_object(request: Request) -> dict[str, Any] | None:
    try:
        payload = json.loads(await request.body() or b"{}")
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None
