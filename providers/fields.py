"""Input checks several families share: a 422 that names the field from a model-level check, and
an input image given as an http(s) URL or a base64 `data:image/...` URI of bounded size."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from models.datauri import parse_data_uri


def field_error(loc: str | Sequence[str | int], message: str, value: object = None) -> ValidationError:
    """A ValueError (pydantic's ValidationError is one) naming `loc` (`"image_list"`, `("face_choose", 0)`):
    raised in a model validator, the 422 names `input.<loc>` instead of `input`."""
    path = tuple(loc.split(".")) if isinstance(loc, str) else tuple(loc)
    err = PydanticCustomError("value_error", "{message}", {"message": message})
    return ValidationError.from_exception_data("input", [InitErrorDetails(type=err, loc=path, input=value)])


def check_image(value: str, max_bytes: int) -> str:
    """An image as an http(s) URL or a base64 `data:image/...` URI of at most `max_bytes` (stripped)."""
    value = value.strip()
    if value.lower().startswith(("http://", "https://")):
        return value
    uri = parse_data_uri(value)
    if uri is None or not uri.is_base64 or not uri.media_type.startswith("image/"):
        raise ValueError("each image must be an http(s) URL or a base64 data:image/... URI")
    size = len(uri.decode(strict=True))
    if size > max_bytes:
        raise ValueError(f"an image is {size} bytes, over {max_bytes}")
    return value
