"""The SSRF guard for result downloads and callback URLs."""

from __future__ import annotations

import pytest

from models.errors import UnsafeURL
from workers.netguard import check_url


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/x", "http://localhost:8080/", "http://10.0.0.5/a.mp4", "http://169.254.169.254/latest/meta-data",
    "http://[::1]/", "http://[::ffff:127.0.0.1]/", "http://100.64.1.1/", "http://192.168.1.1/", "file:///etc/passwd",
    "gopher://x", "http://8.8.8.8:6379/", "http://printer.local/",
])
def test_private_and_odd_urls_are_refused(url: str) -> None:
    with pytest.raises(UnsafeURL):
        check_url(url, allow_private=False)


def test_public_ip_is_allowed_and_private_allowed_in_dev() -> None:
    check_url("https://8.8.8.8/video.mp4", allow_private=False)
    check_url("http://127.0.0.1:9100/_sim/media/x.mp4", allow_private=True)
    with pytest.raises(UnsafeURL):
        check_url("ftp://127.0.0.1/", allow_private=True)
