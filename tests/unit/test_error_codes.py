"""The vocabulary of a job's errors: every ErrorCode means something, and docs/error-codes.md lists them all."""

from __future__ import annotations

from pathlib import Path

from models.errors import ERROR_CODES, DownloadFailed, ErrorCode, JobError, RelayCode, code_of, error_table


def test_every_code_says_what_it_means() -> None:
    assert set(ERROR_CODES) == set(ErrorCode)
    assert all(meaning.strip() for meaning in ERROR_CODES.values())


def test_docs_error_table_is_current() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "error-codes.md").read_text()
    assert error_table() in doc
    assert all(f"| `{code.value}` |" in doc for code in ErrorCode)


def test_our_codes_are_enum_members_and_the_relays_stay_as_given() -> None:
    assert code_of("result_expired") is ErrorCode.RESULT_EXPIRED
    assert code_of("kling_1301") == RelayCode("kling_1301") and not isinstance(code_of("kling_1301"), ErrorCode)
    error = JobError.of(DownloadFailed("gone", code=ErrorCode.RESULT_EXPIRED, retryable=False))
    assert error == JobError(ErrorCode.RESULT_EXPIRED, "gone", False)
    assert JobError(ErrorCode.TIMEOUT, "x" * 3000, True).columns(message_max=2000) == {
        "error_code": "timeout",
        "error_message": "x" * 2000,
        "error_retryable": True,
    }
