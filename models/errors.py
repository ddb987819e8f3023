"""The one error tree of Key4U Jobs, and the vocabulary of a job's errors.

    K4UError(code, retryable)
    ├── ProviderError
    │   ├── ProviderRejected        the relay said no (4xx, or HTTP 200 with an error code)
    │   ├── ProviderUnavailable     429, 5xx, connect errors: the request was not accepted
    │   ├── SubmitOutcomeUnknown    a paid POST may have reached the relay; never resend blindly
    │   ├── ProviderProtocolError   a payload we cannot read
    │   └── BatchUnsupported        the relay does not route a family's batch query (poll one by one)
    ├── CallbackInvalid         a delivery we cannot read (or from an unknown provider)
    │   ├── CallbackUnknown     its URL names no job of ours (or not with that token)
    │   └── CallbackRefused     its signature, timestamp or webhook-id is refused
    ├── DownloadFailed
    │   ├── UnsafeURL               private / loopback / link-local target
    │   └── TooLarge
    ├── StorageError
    ├── ConfigError
    └── (API requests) RequestInvalid(field), IdempotencyConflict, JobNotFound, JobStateConflict

`code` is a stable string that reaches job JSON and logs. Messages never carry secrets. The API
picks an HTTP status by class (`api.errors.HTTP_STATUS`), never by message or code.
A lost compare-and-swap is a return value, not an exception.

A job's error (job.error_code, error_message, error_retryable) is a JobError: its code an ErrorCode
when the failure is ours (ERROR_CODES says what each means; docs/error-codes.md is generated from
it), or a RelayCode, the relay's own code as the adapter read it (kling_1301, rate_limited, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NewType


class ErrorCode(StrEnum):
    """Every code the engine itself writes into job.error_code (the relay's own codes are RelayCodes)."""

    TIMEOUT = "timeout"
    PROVIDER_FAILED = "provider_failed"
    NOT_SENT = "not_sent"
    INVALID_INPUT = "invalid_input"
    SUBMIT_OUTCOME_UNKNOWN = "submit_outcome_unknown"
    SUBMIT_FAILED = "submit_failed"
    INVALID_RELAY_ANSWER = "invalid_relay_answer"
    DOWNLOAD_FAILED = "download_failed"
    RESULT_NOT_READY = "result_not_ready"
    RESULT_EXPIRED = "result_expired"
    RESULT_REFRESH_FAILED = "result_refresh_failed"
    RESULT_BLOCKED = "result_blocked"
    INVALID_RESULT_URL = "invalid_result_url"
    UNSAFE_URL = "unsafe_url"
    TOO_LARGE = "too_large"
    STORAGE_ERROR = "storage_error"
    DOWNLOAD_ERROR = "download_error"
    DOWNLOAD_ATTEMPTS_EXHAUSTED = "download_attempts_exhausted"
    DOWNLOAD_TIMEOUT = "download_timeout"
    DEPENDENCY_FAILED = "dependency_failed"
    INVALID_REFERENCE = "invalid_reference"


ERROR_CODES: dict[ErrorCode, str] = {
    ErrorCode.TIMEOUT: "the job did not finish before its deadline (`deadline_at`: the family's, or `K4U_JOB_DEADLINE_S`); retryable",
    ErrorCode.PROVIDER_FAILED: "the provider reported the task failed and gave no code of its own",
    ErrorCode.NOT_SENT: "the relay did not take the submit (a connect error, the relay busy or unavailable): the job "
    "waits in `queued` and is sent again; recorded on the queued job, never a failure by itself",
    ErrorCode.INVALID_INPUT: "the adapter cannot build the request from the input (e.g. its parent job is gone)",
    ErrorCode.SUBMIT_OUTCOME_UNKNOWN: "the relay may have accepted (and charged) the job but its answer was lost, and the "
    "family has no way to find the task: not resent; `POST /v1/jobs/{id}/retry` if a "
    "second charge is acceptable",
    ErrorCode.SUBMIT_FAILED: "the relay did not take the job: `K4U_SUBMIT_MAX_ATTEMPTS` resends after unknown outcomes, each "
    "lookup proved no task (nothing was charged); retryable",
    ErrorCode.INVALID_RELAY_ANSWER: "the relay accepted (and charged) the job but named its task with an id longer than "
    "this service stores (`TASK_ID_MAX`): the task cannot be followed",
    ErrorCode.DOWNLOAD_FAILED: "the result could not be fetched (source 5xx, cut mid-stream, too slow): retried within the download window",
    ErrorCode.RESULT_NOT_READY: "the relay's content route said the result is not ready yet: retried",
    ErrorCode.RESULT_EXPIRED: "the result URL answered 403/404/410 again after asking the relay for fresh URLs, or none "
    "was given: the provider no longer has the result",
    ErrorCode.RESULT_REFRESH_FAILED: "a result URL was gone and the relay could not be asked for fresh ones: retried",
    ErrorCode.RESULT_BLOCKED: "the relay's own filter blocks the result (its content route answered 403)",
    ErrorCode.INVALID_RESULT_URL: "the result URL is malformed (no host, a bad port, a data: URI that does not decode)",
    ErrorCode.UNSAFE_URL: "the result URL points at a private, loopback or link-local address, or is not http(s)",
    ErrorCode.TOO_LARGE: "the result is over `K4U_DOWNLOAD_MAX_BYTES`",
    ErrorCode.STORAGE_ERROR: "our storage failed (disk, S3): retried within the download window; the paid result is still at its source",
    ErrorCode.DOWNLOAD_ERROR: "an unexpected error while storing the result (the message names it)",
    ErrorCode.DOWNLOAD_ATTEMPTS_EXHAUSTED: "gave up after `K4U_DOWNLOAD_MAX_ATTEMPTS` download attempts, naming the last error",
    ErrorCode.DOWNLOAD_TIMEOUT: "the result was not stored before the download window closed (`K4U_DOWNLOAD_WINDOW_S`), naming the last error",
    ErrorCode.DEPENDENCY_FAILED: "a job whose output this job's input names (`k4u://jobs/<id>/assets/<n>`) failed or was "
    "cancelled, named in the message: nothing was sent to the relay; `POST /v1/jobs/{id}/retry` re-checks the parents",
    ErrorCode.INVALID_REFERENCE: "the input names an asset its parent job did not produce (`k4u://jobs/<id>/assets/<n>` "
    "past the parent's stored assets), known once the parent succeeded: nothing was sent to the relay",
}

# The relay's own error code as the adapter read it (kling_1301, suno_..., mj_banned_prompt, rate_limited):
# stored as given, cut to the column (providers.base.ERROR_CODE_MAX).
RelayCode = NewType("RelayCode", str)


def code_of(code: str) -> ErrorCode | RelayCode:
    """`code` as a job's error code: the ErrorCode when it is one of ours (an adapter's provider_failed),
    else the relay's code as given."""
    try:
        return ErrorCode(code)
    except ValueError:
        return RelayCode(code)


@dataclass(frozen=True, slots=True)
class JobError:
    """Why a job failed, or why its last step did not go through: the job's error columns."""

    code: ErrorCode | RelayCode
    message: str
    retryable: bool = False

    @classmethod
    def of(cls, exc: K4UError, *, retryable: bool | None = None) -> JobError:
        """The error an exception of ours stands for (its own retryable unless given)."""
        return cls(code_of(exc.code), exc.message, exc.retryable if retryable is None else retryable)

    def columns(self, message_max: int | None = None) -> dict[str, Any]:
        """The values of job.error_code, error_message (cut to `message_max` when given) and error_retryable."""
        return {"error_code": self.code, "error_message": self.message[:message_max], "error_retryable": self.retryable}


def error_table() -> str:
    """The table of ErrorCodes and what each means (docs/error-codes.md)."""
    return "\n".join(["| code | meaning |", "|---|---|", *(f"| `{c.value}` | {ERROR_CODES[c]} |" for c in ErrorCode)])


class K4UError(Exception):
    code: str = "error"
    retryable: bool = False

    def __init__(self, message: str = "", *, code: str | None = None, retryable: bool | None = None) -> None:
        super().__init__(message or self.__class__.__name__)
        self.message = message or self.__class__.__name__
        if code is not None:
            self.code = code
        if retryable is not None:
            self.retryable = retryable


class ProviderError(K4UError):
    code = "provider_error"


class ProviderRejected(ProviderError):
    code = "provider_rejected"


class ProviderUnavailable(ProviderError):
    code = "provider_unavailable"
    retryable = True

    def __init__(self, message: str = "", *, retry_after_s: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after_s = retry_after_s


class SubmitOutcomeUnknown(ProviderError):
    code = ErrorCode.SUBMIT_OUTCOME_UNKNOWN


class ProviderProtocolError(ProviderError):
    code = "provider_protocol_error"


class BatchUnsupported(ProviderError):
    code = "batch_unsupported"
    retryable = True


class CallbackInvalid(K4UError):
    code = "callback_invalid"


class CallbackUnknown(CallbackInvalid):
    """The callback URL names no job of ours, or not with that provider and token."""


class CallbackRefused(CallbackInvalid):
    """A delivery whose signature, timestamp or webhook-id (a replay) we refuse."""

    code = "callback_refused"


class DownloadFailed(K4UError):
    code = ErrorCode.DOWNLOAD_FAILED
    retryable = True


class UnsafeURL(DownloadFailed):
    code = ErrorCode.UNSAFE_URL
    retryable = False


class TooLarge(DownloadFailed):
    code = ErrorCode.TOO_LARGE
    retryable = False


class StorageError(K4UError):
    code = ErrorCode.STORAGE_ERROR
    retryable = True


class ConfigError(K4UError):
    code = "config_error"


class RequestInvalid(K4UError):
    """A request to our API that we refuse; `field` names the offending input (HTTP 422)."""

    code = "invalid_request"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class IdempotencyConflict(K4UError):
    code = "idempotency_conflict"


class JobNotFound(K4UError):
    code = "not_found"


class JobStateConflict(K4UError):
    code = "job_state_conflict"
