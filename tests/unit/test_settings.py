"""Settings: defaults, normalisation, and errors that name the variable."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from workers.settings import Settings, describe_errors


def test_defaults_run_on_the_embedded_stack() -> None:
    s = Settings()
    assert s.base_url == "https://api.key4u.shop"
    assert s.database_url.startswith("sqlite:///") and s.storage_url == "file://./data/objects"
    assert s.redis_url is None and s.public_url is None and s.tokens == frozenset()


def test_env_is_read_with_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K4U_API_TOKENS", "a, b ,,c")
    monkeypatch.setenv("K4U_DATABASE_URL", "postgresql://u@h/db")
    monkeypatch.setenv("K4U_PUBLIC_URL", "https://jobs.example.com/")
    s = Settings()
    assert s.tokens == {"a", "b", "c"}
    assert s.database_url == "postgresql+psycopg://u@h/db" and s.public_url == "https://jobs.example.com"


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("K4U_DATABASE_URL", "mysql://x"),
        ("K4U_REDIS_URL", "http://x"),
        ("K4U_STORAGE_URL", "ftp://x"),
        ("K4U_STORAGE_URL", "s3://"),
        ("K4U_BASE_URL", "api.key4u.shop"),
        ("K4U_WEBHOOK_SECRET", "plain"),
        ("K4U_ALLOW_PRIVATE_URLS", "perhaps"),
        ("K4U_LEASE_S", "-1"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ValidationError) as exc:
        Settings()
    assert var in describe_errors(exc.value)


def test_key_is_secret_in_reprs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K4U_API_KEY", "sk-live-very-secret")
    s = Settings()
    assert "sk-live-very-secret" not in repr(s) and "sk-live-very-secret" not in str(s.model_dump())


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("K4U_API_TOKENS", "changeme"),
        ("K4U_API_TOKENS", "change-this-token"),
        ("K4U_API_TOKENS", "real-token-1, Secret"),
        ("K4U_API_TOKENS", "PLACEHOLDER"),
        ("K4U_WEBHOOK_SECRET", "whsec_changeme"),
        ("K4U_WEBHOOK_SECRET", "whsec_example"),
        ("K4U_WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),  # the Standard Webhooks documentation key
    ],
)
def test_placeholder_secrets_are_refused_and_named(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ValidationError) as exc:
        Settings()
    message = describe_errors(exc.value)
    assert var in message and "placeholder" in message
    assert value not in message  # the refused value itself is not echoed


def test_random_secrets_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K4U_API_TOKENS", "k4u_3q8Zr1xVb0,secretary-of-state")
    monkeypatch.setenv("K4U_WEBHOOK_SECRET", "whsec_ZfUyTg5gSBswdDJt94lKEl5sQYBWuo7n")
    s = Settings()
    assert s.tokens == {"k4u_3q8Zr1xVb0", "secretary-of-state"} and s.webhook_secret is not None
    assert s.allow_open_api is False
