"""k4u:// reference parsing, inline-file detection, the schema round trip of references, and the
signed input-file links (workers.filelinks): good, tampered, foreign and expired."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from models.refs import REF_LENGTH, Ref, is_inline_file, job_asset_ref, parse_ref, stored_size, strings, upload_ref
from models.schemas import JobCreate, SizeLimits, size_limits
from workers import filelinks, references
from workers.settings import Settings

UID = "upl_" + "0123456789abcdef01234567"


def test_parse_ref() -> None:
    assert parse_ref(f"k4u://uploads/{UID}") == Ref("uploads", UID)
    assert parse_ref(f"K4U://uploads/{UID}") == Ref("uploads", UID)
    assert upload_ref(UID) == f"k4u://uploads/{UID}" and len(upload_ref(UID)) == REF_LENGTH
    for plain in ("https://x.example/a.png", "data:image/png;base64,AAAA", "a k4u://uploads/x in a prompt", ""):
        assert parse_ref(plain) is None
    for bad, why in [
        ("k4u://uploads/upl_123", "takes an id"),
        (f"k4u://uploads/{UID}/more", "takes an id"),
        (f"k4u://uploads/{UID.upper()}", "takes an id"),
        ("k4u://jobz/job_1", "names no kind"),
        ("k4u://", "names no kind"),
    ]:
        with pytest.raises(ValueError, match=why):
            parse_ref(bad)


def test_strings_walks_every_value_with_its_path() -> None:
    doc = {"a": "x", "b": [1, "y", {"c": "z"}], "d": None}
    assert list(strings(doc)) == [(("a",), "x"), (("b", 1), "y"), (("b", 2, "c"), "z")]


def test_inline_files_over_the_cap() -> None:
    blob = base64.b64encode(os.urandom(3000)).decode()
    assert is_inline_file("data:image/png;base64," + blob, 1000)
    assert is_inline_file(blob, 1000)
    assert not is_inline_file(blob, 10_000)  # within the cap: stays inline
    assert not is_inline_file("p" * 5000, 1000)  # a long word is no file
    assert not is_inline_file("a red fox " * 500, 1000)
    assert stored_size({"image": blob, "prompt": "x"}, 1000) == {"image": "r" * REF_LENGTH, "prompt": "x"}


def test_job_input_cap_counts_an_inline_file_as_its_reference() -> None:
    blob = "data:image/png;base64," + base64.b64encode(os.urandom(600_000)).decode()
    body = {"provider": "kling", "input": {"image": blob}}
    token = size_limits.set(SizeLimits(input_bytes=256 * 1024, inline_bytes=256 * 1024))
    try:
        assert JobCreate.model_validate(body).input["image"] == blob
        with pytest.raises(ValidationError):  # an inline file counts whole when it may stay inline
            size_limits.set(SizeLimits(input_bytes=256 * 1024, inline_bytes=10**9))
            JobCreate.model_validate(body)
    finally:
        size_limits.reset(token)


def test_references_pass_a_schema_that_wants_urls_and_come_back() -> None:
    ref = f"k4u://uploads/{UID}"
    raw, refs = references.for_validation({"input_reference": ref, "images": ["https://x.example/a.png", ref]})
    assert raw["input_reference"].startswith("https://") and raw["images"][1] == raw["input_reference"]
    assert references.restore(raw, refs) == {"input_reference": ref, "images": ["https://x.example/a.png", ref]}
    with pytest.raises(references.RefProblem) as exc:
        references.for_validation({"a": [{"b": "k4u://uploads/x"}]})
    assert exc.value.loc == ("a", 0, "b")
    untouched = {"prompt": "no refs"}
    assert references.for_validation(untouched) == (untouched, {})


NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_file_links_sign_and_verify() -> None:
    settings = Settings(api_key="sk-relay-key-for-links-1234", public_url="https://jobs.example", input_url_ttl_s=3600)
    key = filelinks.link_key(settings)
    assert key is not None
    url = filelinks.file_url(settings, UID, NOW)
    assert url is not None and url.startswith("https://jobs.example/v1/files/") and "sk-relay" not in url
    token = url.rsplit("/", 1)[1]
    assert filelinks.verify(key, token, NOW) == filelinks.FileToken(UID, int(NOW.timestamp()) + 3600)
    with pytest.raises(filelinks.ExpiredToken):
        filelinks.verify(key, token, NOW + timedelta(seconds=3600))
    other = filelinks.link_key(Settings(api_key="sk-another-relay-key-5678"))
    assert other is not None and other != key
    upload, expires, mac = token.split(".")
    for bad in [
        token[:-1] + ("A" if token[-1] != "A" else "B"),  # tampered signature
        f"{upload}.{int(expires) + 1}.{mac}",  # a longer life
        f"upl_{'f' * 24}.{expires}.{mac}",  # another upload
        filelinks.sign(other, UID, int(expires)),  # another deployment's key
        "garbage",
        "",
    ]:
        with pytest.raises(filelinks.BadToken):
            filelinks.verify(key, bad, NOW)
    with pytest.raises(filelinks.BadToken):
        filelinks.verify(None, token, NOW)


def test_file_links_name_a_stored_asset_too() -> None:
    settings = Settings(api_key="sk-relay-key-for-links-1234", public_url="https://jobs.example", input_url_ttl_s=3600)
    key = filelinks.link_key(settings)
    url = filelinks.file_url(settings, "ast_42", NOW)
    assert url is not None
    token = url.rsplit("/", 1)[1]
    assert filelinks.verify(key, token, NOW) == filelinks.FileToken("ast_42", int(NOW.timestamp()) + 3600)
    _, expires, mac = token.split(".")
    for bad in (f"ast_43.{expires}.{mac}", f"ast_x.{expires}.{mac}", f"job_42.{expires}.{mac}"):  # another asset, or not an id we link
        with pytest.raises(filelinks.BadToken):
            filelinks.verify(key, bad, NOW)


def test_no_link_without_a_public_url_or_a_secret() -> None:
    assert filelinks.file_url(Settings(api_key="sk-relay-key-for-links-1234"), UID, NOW) is None
    assert filelinks.link_key(Settings()) is None
    assert filelinks.file_url(Settings(public_url="https://jobs.example"), UID, NOW) is None


def test_bare_base64_files_get_their_type_from_their_bytes() -> None:
    assert references.sniff(b"\x89PNG\r\n\x1a\n....") == "image/png"
    assert references.sniff(b"\xff\xd8\xff\xe0") == "image/jpeg"
    assert references.sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert references.sniff(b"\x00\x00\x00\x18ftypmp42") == "video/mp4"
    assert references.sniff(b"plain bytes") == "application/octet-stream"


def test_file_links_are_redacted_from_access_logs_and_open_to_the_relay() -> None:
    import asyncio

    from api.logs import redact
    from api.openmode import LoopbackOnly

    assert redact('"GET /v1/files/upl_0.123.sig HTTP/1.1" 200') == '"GET /v1/files/*** HTTP/1.1" 200'
    reached: list[str] = []

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        reached.append(str(scope["path"]))

    async def send(message: dict[str, object]) -> None:
        reached.append(f"answered {message.get('status', '')}")

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b""}

    guard = LoopbackOnly(app)  # type: ignore[arg-type]
    for path in ("/v1/files/upl_0.1.x", "/v1/uploads"):
        scope = {"type": "http", "path": path, "client": ("203.0.113.9", 4000), "headers": [(b"host", b"jobs.example")]}
        asyncio.run(guard(scope, receive, send))  # type: ignore[arg-type]
    assert reached[0] == "/v1/files/upl_0.1.x" and reached[1] == "answered 403"  # a file link is open; the rest is loopback only


def test_job_and_batch_item_asset_references() -> None:
    job = "job_0190a1b2c3d4e5f60718293a4b5c"
    ref = parse_ref(f"k4u://jobs/{job}/assets/3")
    assert ref == Ref("jobs", f"{job}/assets/3") and ref.asset() == (job, 3) and job_asset_ref(job, 3) == ref.text
    item = parse_ref("k4u://items/12/assets/0")
    assert item is not None and item.kind == "items" and item.asset() == ("12", 0)
    for bad in (
        f"k4u://jobs/{job}",
        f"k4u://jobs/{job}/assets/",
        f"k4u://jobs/{job}/assets/01",
        f"k4u://jobs/{job}/assets/-1",
        "k4u://jobs/job_XYZ/assets/0",
        "k4u://items/a/assets/0",
    ):
        with pytest.raises(ValueError, match="takes an id like"):
            parse_ref(bad)
    with pytest.raises(ValueError, match="names no asset"):
        Ref("uploads", UID).asset()
