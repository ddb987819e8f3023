"""Operation input schemas: defaults, coercions, and errors that name the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from providers.registry import UnknownProvider, resolve_operation, validate_input


def test_text2video_defaults_and_alias() -> None:
    got = validate_input("kling", "text2video", {"prompt": "fox", "duration": 10, "model": "kling-v2-6"})
    assert got == {"prompt": "fox", "duration": "10", "model_name": "kling-v2-6"}
    assert validate_input("kling", "text2video", {"prompt": "x"})["model_name"] == "kling-v1"


@pytest.mark.parametrize(
    ("operation", "raw", "field"),
    [
        ("text2video", {}, "prompt"),
        ("text2video", {"prompt": "x", "duration": "7"}, "duration"),
        ("text2video", {"prompt": "x", "cfg_scale": 2}, "cfg_scale"),
        ("text2video", {"prompt": "x", "bogus": 1}, "bogus"),
        ("image", {"prompt": "x", "n": 10}, "n"),
    ],
)
def test_bad_input_names_the_field(operation: str, raw: dict, field: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValidationError) as exc:
        validate_input("kling", operation, raw)
    assert field in str(exc.value.errors()[0]["loc"])


def test_image2video_needs_an_image() -> None:
    with pytest.raises(ValidationError, match="image or image_tail"):
        validate_input("kling", "image2video", {"prompt": "x"})


def test_unknown_provider_and_operation() -> None:
    with pytest.raises(UnknownProvider) as exc:
        resolve_operation("nope", None)
    assert exc.value.field == "provider"
    with pytest.raises(UnknownProvider) as exc:
        resolve_operation("kling", "lipsync2")
    assert exc.value.field == "operation"
    assert resolve_operation("kling", None) == "text2video"
