"""The `Simulator` object every route module is handed: config, state and callback dispatcher,
with the guard (auth, injected faults, chaos) each relay route runs first. It imports no route
module; `simulator.app` builds one and registers the families' routes on it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from simulator import views
from simulator.callbacks import CallbackDispatcher
from simulator.chaos import STATUSES_5XX
from simulator.config import SimConfig
from simulator.state import SimState

ErrorFn = Callable[[str, str, int | None], Response]


class Simulator:
    """Bundle of config + state + callback dispatcher shared by all routes."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.state = SimState(config)
        self.callbacks = CallbackDispatcher(self.state)

    def base_url(self, request: Request) -> str:
        return (self.config.public_base or str(request.base_url)).rstrip("/")

    def error(self, name: str, message: str, status: int | None = None) -> JSONResponse:
        http, body = views.error(name, message, self.config.envelope, status)
        headers = {"Retry-After": "1"} if http == 429 else None
        return JSONResponse(body, status_code=http, headers=headers)

    async def guard(self, request: Request, route_key: str, is_create: bool = False, fail: ErrorFn | None = None) -> Response | None:
        """Count the request, check auth, apply pending faults (may sleep).

        `fail(name, message, status)` builds the error response (default: Kling shapes).
        """
        state, faults = self.state, self.state.faults
        fail = fail or self.error
        state.requests[route_key] += 1
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            state.auth_failures += 1
            return fail("auth", "Authorization missing", None)
        state.auth_seen = True
        if self.config.api_key is not None and key != self.config.api_key:
            state.auth_failures += 1
            return fail("auth", "Authorization invalid", None)
        if faults.rate_limit_next > 0:
            faults.rate_limit_next -= 1
            return self._rate_limited(fail)
        if faults.error_5xx_next > 0 and not (is_create and faults.error_5xx_after_accept):
            faults.error_5xx_next -= 1
            return fail("server", "internal server error", faults.error_5xx_status)
        if faults.slow_next > 0:
            faults.slow_next -= 1
            await asyncio.sleep(faults.slow_delay_s)
        if state.dice.roll(self.config.rate_limit_rate):
            state.paid.fired["rate_limit"] += 1
            return self._rate_limited(fail)
        if state.dice.roll(self.config.error_5xx_rate):
            state.paid.fired["error_5xx"] += 1
            return fail("server", "internal server error", state.dice.choice(STATUSES_5XX))
        return None

    def _rate_limited(self, fail: ErrorFn) -> Response:
        """An injected 429 in the family's shape, its Retry-After as configured (`retry_after`)."""
        response = fail("rate_limit", "rate limit", None)
        response.headers["Retry-After"] = self.config.retry_after
        return response

    async def after_accept(self, fail: ErrorFn) -> Response | None:
        """Faults that hit a create after the task exists (it will run and is paid): a one-shot
        5xx (after_accept), an `accept_502_rate` 502, or a hang. The paid ledger notes the answer."""
        state, faults = self.state, self.state.faults
        if faults.error_5xx_next > 0 and faults.error_5xx_after_accept:
            faults.error_5xx_next -= 1
            state.paid.mark_last(faults.error_5xx_status)
            return fail("server", "internal server error", faults.error_5xx_status)
        if state.dice.roll(self.config.accept_502_rate):
            state.paid.fired["accept_502"] += 1
            state.paid.mark_last(502)
            return fail("server", "bad gateway", 502)
        if faults.timeout_after_accept_next > 0:
            faults.timeout_after_accept_next -= 1
            state.paid.mark_last("timeout")
            await asyncio.sleep(faults.timeout_delay_s)
        return None
