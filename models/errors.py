"""The one error tree of Key4U Jobs.

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
"""

from __future__ import annotations


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
    code = "submit_outcome_unknown"


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
    code = "download_failed"
    retryable = True


class UnsafeURL(DownloadFailed):
    code = "unsafe_url"
    retryable = False


class TooLarge(DownloadFailed):
    code = "too_large"
    retryable = False


class StorageError(K4UError):
    code = "storage_error"
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
