"""The API's status for each error is chosen by the error's class (api.errors.HTTP_STATUS), never its text."""

from __future__ import annotations

import pytest

from api.errors import http_status
from models.errors import (
    CallbackInvalid,
    CallbackRefused,
    CallbackUnknown,
    DownloadFailed,
    IdempotencyConflict,
    JobNotFound,
    JobStateConflict,
    K4UError,
    ProviderUnavailable,
    StorageError,
)


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (JobNotFound("no job job_1"), 404),
        (IdempotencyConflict("used with a different body"), 409),
        (JobStateConflict("job is already failed"), 409),
        (CallbackUnknown("unknown callback URL"), 404),
        (CallbackRefused("bad signature"), 401),
        (CallbackInvalid("unknown provider"), 400),
        (ProviderUnavailable("429"), 500),
        (DownloadFailed("gone"), 500),
        (StorageError("disk"), 503),
        (K4UError("anything"), 500),
    ],
)
def test_status_by_class(exc: K4UError, status: int) -> None:
    assert http_status(exc) == status


def test_message_and_code_do_not_decide() -> None:
    assert http_status(CallbackInvalid("unknown callback URL")) == 400
    assert http_status(CallbackInvalid("refused", code="callback_refused")) == 400
    assert http_status(CallbackRefused("unknown callback URL")) == 401


def test_a_subclass_takes_its_nearest_listed_ancestor() -> None:
    class Gone(JobNotFound):
        pass

    class Odd(CallbackUnknown):
        pass

    assert http_status(Gone("x")) == 404 and http_status(Odd("x")) == 404
