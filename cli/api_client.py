"""The CLI's HTTP side: a running Key4U Jobs API (`--api`/K4U_API_URL), errors turned into CliError.

Every call has a bounded timeout; answers are the API's JSON (JobPublic, BatchPublic). The token is
sent as a header and never appears in a message.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
MAX_WAIT_S = 60.0  # the API's cap on GET /v1/jobs/{id}?wait=


class CliError(Exception):
    """A problem the CLI reports in one line (no traceback) before exiting non-zero."""

    def __init__(self, message: str, *, fields: list[tuple[str, str]] | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status  # the API's HTTP status, when there was one
        self.fields = fields or []  # (dotted location, message) from a 422


def describe_422(detail: Any) -> list[tuple[str, str]]:
    """FastAPI's `detail[]` as (location without "body", message) pairs."""
    if not isinstance(detail, list):
        return [("", str(detail))]
    out = []
    for d in detail:
        loc = [str(p) for p in d.get("loc", [])]
        out.append((".".join(loc[1:] if loc[:1] == ["body"] else loc), str(d.get("msg", ""))))
    return out


class ApiClient:
    """One httpx.Client to the API; methods answer JSON or raise CliError naming the problem."""

    def __init__(self, base_url: str, token: str | None, *, timeout_s: float = 30.0, transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.base_url, headers=headers, transport=transport, timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)))

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, *, what: str = "", timeout_s: float | None = None, **kw: Any) -> dict[str, Any]:
        try:
            r = self._http.request(method, path, timeout=timeout_s if timeout_s is not None else httpx.USE_CLIENT_DEFAULT, **kw)
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach {self.base_url}{path}: {type(exc).__name__}") from None
        if r.status_code < 400:
            answer: dict[str, Any] = r.json()  # every route the CLI calls answers a JSON object
            return answer
        try:
            detail = r.json().get("detail")
        except (ValueError, AttributeError):
            detail = r.text[:200]
        if r.status_code in (401, 403):
            raise CliError(f"the API refused the request (HTTP {r.status_code}): check --token / K4U_API_TOKEN")
        if r.status_code == 404:
            raise CliError(f"unknown {what or 'resource'}: {detail}" if what else f"not found: {detail}")
        if r.status_code == 409:
            raise CliError(f"conflict (HTTP 409): {detail}", status=409)
        if r.status_code == 422:
            fields = describe_422(detail)
            raise CliError("invalid request (HTTP 422): " + "; ".join(f"{loc}: {msg}" if loc else msg for loc, msg in fields), fields=fields, status=422)
        raise CliError(f"HTTP {r.status_code} from {self.base_url}{path}: {detail}", status=r.status_code)

    # jobs
    def create_job(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/v1/jobs", json=body)

    def get_job(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/jobs/{job_id}", what=f"job {job_id}")

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/jobs/{job_id}/cancel", what=f"job {job_id}")

    def retry_job(self, job_id: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/jobs/{job_id}/retry", what=f"job {job_id}")

    def wait_job(self, job_id: str, timeout_s: float) -> dict[str, Any]:
        """Long-poll `?wait=` (at most 60 s a request) until the job is terminal or timeout_s passes.
        An API that answers at once (no long-poll) is polled every second."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            wait = max(0, min(MAX_WAIT_S, int(left)))
            started = time.monotonic()
            job = self._call("GET", f"/v1/jobs/{job_id}", what=f"job {job_id}", params={"wait": wait}, timeout_s=wait + 30.0)
            if job["status"] in TERMINAL or time.monotonic() >= deadline:
                return job
            if time.monotonic() - started < 0.9:
                time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))

    def fetch_asset(self, job: dict[str, Any], asset: dict[str, Any], dest: Path) -> None:
        """Stream one stored asset (GET /v1/jobs/{id}/assets/{index}, following an S3 redirect) into dest."""
        path = f"/v1/jobs/{job['id']}/assets/{asset['index']}"
        try:
            with self._http.stream("GET", path, params={"attempt": asset.get("attempt", 1)}, follow_redirects=True) as r:
                if r.status_code >= 400:
                    raise CliError(f"HTTP {r.status_code} fetching asset {asset['index']} of {job['id']}")
                with dest.open("wb") as f:
                    for chunk in r.iter_bytes():
                        f.write(chunk)
        except httpx.HTTPError as exc:
            raise CliError(f"cannot fetch {self.base_url}{path}: {type(exc).__name__}") from None

    # uploads
    def upload(self, path: Path, content_type: str) -> dict[str, Any]:
        """POST /v1/uploads with the file's bytes streamed raw (Content-Length from its size)."""
        with path.open("rb") as f:
            return self._call(
                "POST", "/v1/uploads", content=f, params={"filename": path.name}, headers={"content-type": content_type}, timeout_s=600.0, what="upload"
            )

    def find_uploads(self, sha256: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self._call("GET", "/v1/uploads", params={"sha256": sha256})["items"]
        return items

    # batches
    def create_batch(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/v1/batches", json=body, timeout_s=120.0)

    def get_batch(self, batch_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/batches/{batch_id}", what=f"batch {batch_id}")

    def batch_jobs(self, batch_id: str) -> list[dict[str, Any]]:
        """Every job of a batch, all pages."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 500} | ({"cursor": cursor} if cursor else {})
            page = self._call("GET", f"/v1/batches/{batch_id}/jobs", what=f"batch {batch_id}", params=params)
            items.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return items
