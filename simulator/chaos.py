"""Probabilistic faults for chaos runs, and the ledger of paid tasks.

`Dice` draws from one seeded RNG (`SimConfig.fault_seed`), so the same seed and the same request
order give the same faults. `PaidLedger` records every task the relay created (each one is
billed, whatever the answer to its create said), with enough of the request to attribute it to a
client job: family, task id, kind, prompt, external id / state. `CutResponse` announces the full
Content-Length, sends part of the body and returns, so the server closes the connection
mid-stream.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

RATE_FIELDS = ("error_5xx_rate", "rate_limit_rate", "accept_502_rate", "media_cut_rate", "long_task_id_rate")
LONG_TASK_ID = 300  # characters of a task id under `long_task_id_rate`: more than a client may store
STATUSES_5XX = (500, 502, 503, 504)


def lengthen(task_id: str) -> str:
    """`task_id` padded with zeros to LONG_TASK_ID characters (as unique as the id it extends)."""
    return task_id + "0" * (LONG_TASK_ID - len(task_id))


class Dice:
    """Seeded coin flips: rate 0 never fires, rate 1 always fires (neither draws from the RNG)."""

    def __init__(self, seed: int = 0) -> None:
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        self.seed = seed
        self._rng = random.Random(seed)

    def roll(self, rate: float) -> bool:
        if rate <= 0:
            return False
        if rate >= 1:
            return True
        return self._rng.random() < rate

    def choice(self, options: tuple[int, ...]) -> int:
        return options[self._rng.randrange(len(options))]

    def fraction(self, low: float, high: float) -> float:
        return low + (high - low) * self._rng.random()


class PaidLedger:
    """Every created (paid) task, in creation order, plus counters of the faults that fired."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.fired: Counter[str] = Counter()

    def record(
        self, family: str, task_id: str, kind: str, prompt: str, created_at: int, external_id: str | None = None, state: str | None = None
    ) -> dict[str, Any]:
        row = {
            "seq": len(self.rows) + 1,
            "family": family,
            "task_id": task_id,
            "kind": kind,
            "prompt": prompt,
            "external_id": external_id or None,
            "state": state,
            "created_at": created_at,
            "answered": 200,
        }
        self.rows.append(row)
        return row

    def mark_last(self, answered: int | str) -> None:
        """What the create that made the newest task was answered (a status code or "timeout")."""
        if self.rows:
            self.rows[-1]["answered"] = answered


class CutResponse(Response):
    """Headers with the full Content-Length, then only `keep` bytes; the connection is then dropped."""

    def __init__(self, data: bytes, keep: int, media_type: str) -> None:
        super().__init__(media_type=media_type, headers={"Content-Length": str(len(data))})
        self.partial = data[: max(0, min(keep, len(data) - 1))]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.partial, "more_body": True})
        # Returning without the final body message makes the ASGI server close the connection.
