"""Settings: the only module that reads the environment (prefix K4U_, optional .env).

`get_settings()` builds them once per process; tests construct `Settings(...)` directly.
A bad value fails at start with a message naming the variable (`describe_errors`).
"""

from __future__ import annotations

import functools
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DB = "sqlite:///./data/k4u.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="K4U_", env_file=".env", extra="ignore")

    base_url: str = Field("https://api.key4u.shop", description="Relay base URL")
    api_key: SecretStr | None = Field(None, description="Relay key, sent as Authorization: Bearer")
    database_url: str = Field(DEFAULT_DB, description="SQLAlchemy URL: sqlite:///... or postgresql+psycopg://...")
    redis_url: str | None = Field(None, description="Broker URL; unset = bundled Redis under `k4u dev`")
    storage_url: str = Field("file://./data/objects", description="file://dir, s3://bucket/prefix")
    s3_endpoint_url: str | None = Field(None, description="S3-compatible endpoint (MinIO, R2...)")
    s3_public_endpoint_url: str | None = Field(None, description="Where clients outside our network reach that endpoint: "
                                               "presigned asset URLs are signed for it (unset = K4U_S3_ENDPOINT_URL's, or AWS's)")
    public_url: str | None = Field(None, description="External base URL of our API: provider callbacks, and the base of the links "
                                   "we hand out (unset: a loopback Host the request named, else the address it reached)")
    api_tokens: SecretStr | None = Field(None, description="Comma-separated bearer tokens for our API; unset = open (dev): "
                                         "only loopback clients under a loopback Host name are served")
    metrics_token: SecretStr | None = Field(None, description="Bearer token that /metrics then requires (401 without it; "
                                            "Prometheus: the scrape config's authorization credentials); unset = /metrics is open")
    webhook_secret: SecretStr | None = Field(None, description="whsec_... key that signs our notifications")
    allow_private_urls: bool = Field(False, description="Allow downloads and callbacks to private/loopback addresses")
    replicate_webhook_secret: SecretStr | None = Field(None, description="whsec_... secret of the Replicate account behind "
                                                       "the relay: webhooks must then carry its signature (401 otherwise); unset = a webhook is only a hint to poll")
    fal_jwks: str | None = Field(None, description="fal's webhook key set (JWKS), a file path or an https URL (http:// only to a "
                                 "loopback host with K4U_ALLOW_PRIVATE_URLS): deliveries must then carry a valid Ed25519 signature "
                                 "(401 otherwise); unset = a webhook is only a hint to poll")
    relay_max_body_bytes: int = Field(64 * 1024**2, ge=1024, description="Largest relay answer read (a result JSON with inline "
                                      "data: files included); beyond it the answer is unreadable")

    data_dir: str = Field("./data", description="Where dev state lives (bundled Redis, beat schedule)")
    relay_timeout_s: float = Field(30.0, gt=0)
    relay_connect_timeout_s: float = Field(5.0, gt=0)
    download_timeout_s: float = Field(600.0, gt=0)
    download_max_bytes: int = Field(2 * 1024**3, gt=0)
    storage_leftover_grace_s: float = Field(6 * 3600.0, gt=0, description="Temp files and unfinished S3 multipart uploads "
                                            "that a worker killed mid-write left in the store are removed this long after their "
                                            "last write (checked by the beat every quarter of it); longer than K4U_DOWNLOAD_TIMEOUT_S")
    download_resumes: int = Field(5, ge=0, description="Reconnects per result file after a dropped connection (resumed "
                                  "with Range where the source allows, else started over); past them the download step retries")
    download_max_attempts: int = Field(200, ge=1, description="Safety bound on download attempts; the window below is the real bound")
    download_window_s: float = Field(6 * 3600.0, gt=0, description="How long a job may stay downloading, retrying source and storage errors (shorter when the provider's result URLs expire sooner)")
    submit_max_attempts: int = Field(5, ge=1)
    provider_cancel_max_attempts: int = Field(5, ge=1, description="Tries of the relay-side cancel of a cancelled job's "
                                              "task (relay 429/5xx or unreadable answers, retried with backoff) before it is given up")
    submit_callback_grace_s: float = Field(60.0, ge=0, description="How long a submission whose answer was lost waits for "
                                           "the provider's callback to reveal its task (Midjourney notifyHook) before it fails")
    poll_min_interval_s: float | None = Field(None, gt=0, description="Override the providers' dense poll interval")
    poll_max_interval_s: float = Field(60.0, gt=0)
    poll_expected_s: float | None = Field(None, gt=0, description="Override the providers' expected duration")
    poll_batch_limit: int = Field(1000, ge=1, description="Jobs claimed per provider per beat tick")
    queue_backlog_max: int = Field(1000, ge=1, description="The tick sends no more claimed work to a queue that already holds "
                                   "this many messages (a submit message counts as the 8 jobs it may carry): a backlog waits in the database, where no lease runs out on it")
    batch_polling: bool = Field(True, description="Use a family's batch status query (Midjourney, Suno) where it has one")
    poll_batch_size: int = Field(100, ge=1, description="Task ids per batch status query (chunk size)")
    job_deadline_s: float | None = Field(None, gt=0, description="Override the providers' job deadline")
    lease_s: float = Field(120.0, gt=0, description="How long a claimed step may run before the sweep re-drives it")
    beat_interval_s: float = Field(1.0, gt=0)
    vacuum_interval_s: float = Field(30.0, gt=0, description="How often the beat checks whether a PostgreSQL table needs "
                                     "VACUUM (ANALYZE) or ANALYZE (for where autovacuum is off or lags behind)")
    vacuum_dead_rows: int = Field(5000, ge=1, description="Dead rows (and a tenth of the live ones) past which the beat "
                                  "vacuums a table; as many changed rows since its last ANALYZE, and it analyzes it")
    celery_sent_events: bool = Field(False, description="Publish a Celery task-sent event for every message (Flower then "
                                     "lists queued tasks as SENT); off, Flower shows a task from its task-received event on. "
                                     "Costs about as much CPU per message as the send itself")
    notify_max_attempts: int = Field(10, ge=1)
    notify_timeout_s: float = Field(15.0, gt=0)
    notify_backoff_s: float = Field(5.0, gt=0, description="First retry delay of a notification; doubles per attempt")
    presign_expires_s: int = Field(3600, ge=1, le=604800)
    worker_concurrency: int = Field(4, ge=1)
    download_concurrency: int = Field(16, ge=1, description="Threads of the download worker (its own pool and queue)")
    notify_concurrency: int = Field(32, ge=1, description="Threads of the notification worker (its own pool and queue)")
    allow_open_api: bool = Field(False, description="Let `k4u api` listen on a non-loopback address without K4U_API_TOKENS, and "
                                 "the open API serve any client and Host name (behind a gateway that authenticates)")
    flower_basic_auth: SecretStr | None = Field(None, validation_alias="FLOWER_BASIC_AUTH", description="Flower's own variable: "
                                                "its logins, user:password[,user2:password2]; `k4u flower` refuses a non-loopback --address without it")
    submit_rate_limits: str | None = Field(None, description='Submits per provider, shared by all workers: "kling=5/second,*=20/second"')
    max_in_flight: str | None = Field(None, description='Jobs submitting or running per provider: "kling=50,*=500"')
    api_url: str | None = Field(None, description="CLI commands on jobs (`k4u retry`...) talk to this running API; unset = the local database")
    api_token: SecretStr | None = Field(None, description="Bearer token the CLI sends to K4U_API_URL")
    max_body_bytes: int = Field(1024 * 1024, ge=1, description="Largest request body the API reads (413 beyond)")
    max_input_bytes: int = Field(256 * 1024, ge=1, description="Largest serialized `input` of a job (422 beyond)")
    max_metadata_bytes: int = Field(16 * 1024, ge=1, description="Largest serialized `metadata` of a job (422 beyond)")
    max_batch_body_bytes: int = Field(32 * 1024**2, ge=1, description="Largest request body on /v1/batches (413 beyond)")
    max_batch_jobs: int = Field(10_000, ge=1, description="Most jobs in one POST /v1/batches (422 naming `jobs` beyond)")
    longpoll_interval_s: float = Field(0.5, gt=0, le=10, description="How often GET /v1/jobs/{id}?wait= looks at the job")

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
        return self

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


# Values found in templates and docs (the Standard Webhooks example key among them): a deployment
# that kept one has a secret the whole world knows.
_PLACEHOLDERS = frozenset({
    "changeme", "changethis", "changethistoken", "changethispassword", "changethissecret", "example", "placeholder",
    "secret", "password", "token", "apitoken", "yourtoken", "yoursecret", "xxx", "todo", "test", "replaceme",
    "mfkq9r8gkyqrtwjupd8ilpzio2lalasw",
})


def is_placeholder(value: str) -> bool:
    """True for template values such as `changeme`, `change-this-token`, `whsec_changeme`."""
    core = value.strip().lower().removeprefix("whsec_")
    return "".join(c for c in core if c.isalnum()) in _PLACEHOLDERS


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
