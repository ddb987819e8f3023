"""The CLI on the local database (no --api): the same calls as ApiClient, made on the services.

Jobs come back as the API's JSON (JobPublic), each stored asset with its `path` in the store.
Follow-up work goes to the broker when K4U_REDIS_URL is set; otherwise the running stack's beat
picks it up from the database (every change carries a `next_at`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlmodel import col, select

from cli.api_client import CliError
from models.errors import IdempotencyConflict, JobNotFound, JobStateConflict, K4UError, RequestInvalid
from models.schemas import JobCreate, JobPublic, UploadPublic
from models.tables import Asset, Job
from workers.context import Runtime, build_runtime
from workers.db import migrate, session_scope
from workers.dispatch import CeleryDispatcher, Dispatcher, RecordingDispatcher
from workers.services.intake import IntakeInvalid
from workers.settings import Settings

M = TypeVar("M", bound=BaseModel)


class LocalClient:
    """Service calls on K4U_DATABASE_URL; errors of our tree become CliError."""

    def __init__(self, settings: Settings) -> None:
        dispatcher: Dispatcher = RecordingDispatcher()  # no broker: the running stack's tick does the work
        if settings.redis_url:
            from workers.celery_app import app as celery_app, configure

            dispatcher = CeleryDispatcher(configure(celery_app, settings))
        migrate(settings.database_url)
        self.rt: Runtime = build_runtime(settings, dispatcher)
        self.base_url = settings.public_url or ""

    def close(self) -> None:
        self.rt.close()

    def public(self, job: Job) -> dict[str, Any]:
        return self.publics([job])[0]

    def publics(self, rows: list[Job]) -> list[dict[str, Any]]:
        """The jobs as JobPublic JSON, each stored asset with its `path` in the store."""
        with session_scope(self.rt.engine) as session:
            assets = list(session.exec(select(Asset).where(col(Asset.job_id).in_([j.id for j in rows])))) if rows else []
        by_job: dict[str, list[Asset]] = {}
        for a in assets:
            by_job.setdefault(a.job_id, []).append(a)
        out = []
        for job in rows:
            mine = by_job.get(job.id, [])
            public = JobPublic.from_rows(job, mine, self.base_url).model_dump(mode="json")
            keys = {(a.attempt, a.index): a.storage_key for a in mine}
            for a in public["assets"]:
                key = keys.get((a["attempt"], a["index"]))
                a["path"] = self.rt.store.describe(key) if key and a["url"] else None
            out.append(public)
        return out

    def _run(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(self.rt, *args)
        except JobNotFound as exc:
            raise CliError(f"unknown job: {exc.message}") from None
        except (JobStateConflict, IdempotencyConflict) as exc:
            raise CliError(f"conflict: {exc.message}", status=409) from None
        except IntakeInvalid as exc:  # names its location (jobs.3.input.prompt) and reason apart, as a 422 does
            raise CliError(f"invalid request: {exc.message}", fields=[(exc.field, exc.reason)]) from None
        except RequestInvalid as exc:
            raise CliError(f"invalid request: {exc.message}", fields=[(exc.field, exc.message)]) from None
        except K4UError as exc:
            raise CliError(f"{exc.code}: {exc.message}") from None

    def create_job(self, body: dict[str, Any]) -> dict[str, Any]:
        from workers.services.create import create_job

        job, _ = self._run(create_job, _validated(JobCreate, body))
        return self.public(job)

    def get_job(self, job_id: str) -> dict[str, Any]:
        from workers.services.longpoll import load_job

        return self.public(self._run(load_job, job_id))

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        from workers.services.create import cancel_job

        return self.public(self._run(cancel_job, job_id))

    def retry_job(self, job_id: str) -> dict[str, Any]:
        from workers.services.retry import retry_job

        return self.public(self._run(retry_job, job_id))

    def wait_job(self, job_id: str, timeout_s: float) -> dict[str, Any]:
        """The job once terminal, or as it is after timeout_s (reads the row every K4U_LONGPOLL_INTERVAL_S)."""
        from workers.services.longpoll import wait_for_job

        return self.public(self._run(wait_for_job, job_id, timeout_s))

    def fetch_asset(self, job: dict[str, Any], asset: dict[str, Any], dest: Path) -> None:
        with session_scope(self.rt.engine) as session:
            row = session.exec(select(Asset).where(Asset.job_id == job["id"], Asset.attempt == asset.get("attempt", 1), Asset.index == asset["index"])).first()
        if row is None or row.storage_key is None:
            raise CliError(f"asset {asset['index']} of {job['id']} is not stored")
        try:
            with dest.open("wb") as f:
                for chunk in self.rt.store.open(row.storage_key):
                    f.write(chunk)
        except K4UError as exc:
            raise CliError(f"cannot read asset {asset['index']} of {job['id']}: {exc.message}") from None

    # uploads (workers/uploads.py)
    def upload(self, path: Path, content_type: str) -> dict[str, Any]:
        from workers.uploads import store_upload

        def chunks() -> Any:
            with path.open("rb") as f:
                while chunk := f.read(1024 * 1024):
                    yield chunk

        if path.stat().st_size > self.rt.settings.max_upload_bytes:
            raise CliError(f"{path} is larger than K4U_MAX_UPLOAD_BYTES ({self.rt.settings.max_upload_bytes} bytes)")
        row = self._run(lambda rt: store_upload(rt, chunks(), filename=path.name, content_type=content_type))
        return UploadPublic.from_row(row).model_dump(mode="json")

    def find_uploads(self, sha256: str) -> list[dict[str, Any]]:
        from workers.uploads import find_uploads

        return [UploadPublic.from_row(r).model_dump(mode="json") for r in find_uploads(self.rt, sha256)]

    # batches (workers/services/batches.py)
    def create_batch(self, body: dict[str, Any]) -> dict[str, Any]:
        from models.schemas import BatchCreate
        from workers.services.batches import create_batch

        batch, jobs, _ = self._run(create_batch, _validated(BatchCreate, body))
        return {"id": batch.id, "job_ids": [j.id for j in jobs]}

    def batch_jobs(self, batch_id: str) -> list[dict[str, Any]]:
        with session_scope(self.rt.engine) as session:
            rows = list(session.exec(select(Job).where(Job.batch_id == batch_id)).all())
        return self.publics(rows)


def _validated(model: type[M], body: dict[str, Any]) -> M:
    """The request body as the API would read it; a CliError naming every bad field otherwise."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        fields = [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]
        raise CliError("invalid request: " + "; ".join(f"{f}: {m}" for f, m in fields), fields=fields) from None
