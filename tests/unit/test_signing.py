"""Standard Webhooks signatures, checked against the spec's published example."""

from __future__ import annotations

from workers import signing

# From the Standard Webhooks reference libraries' test vectors.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TS = 1614265330
BODY = b'{"test": 2432232314}'
EXPECTED = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signature_matches_the_spec_example() -> None:
    assert signing.sign(SECRET, MSG_ID, TS, BODY) == EXPECTED


def test_verify_accepts_rotated_lists_and_rejects_tampering_and_stale() -> None:
    assert signing.verify(SECRET, MSG_ID, TS, BODY, f"v1,bogus= {EXPECTED}", now=TS + 10)
    assert not signing.verify(SECRET, MSG_ID, TS, BODY + b" ", EXPECTED, now=TS)
    assert not signing.verify(SECRET, "msg_other", TS, BODY, EXPECTED, now=TS)
    assert not signing.verify(SECRET, MSG_ID, TS, BODY, EXPECTED, now=TS + 301)


def test_headers_without_secret_are_unsigned() -> None:
    h = signing.headers(None, MSG_ID, TS, BODY)
    assert h["webhook-id"] == MSG_ID and "webhook-signature" not in h
    assert signing.headers(SECRET, MSG_ID, TS, BODY)["webhook-signature"] == EXPECTED
