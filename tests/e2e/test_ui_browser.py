"""The /ui gallery in a real browser: Debian's Chromium driven by Playwright against `k4u dev`
and the simulator, with an API token set. Login, filters, a video that plays, image bytes that
hash to the stored sha256, live status changes without a reload, text from the API shown as
text, the batch summary with its cost, and the detail dialog's cancel / retry / replay.

Screenshots go to the test's tmp dir (paths printed); K4U_TEST_UI_SCREENSHOT_TO=docs/ui.png copies
the gallery's to that path (how docs/ui.png is made)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from simulator.media import MEDIA_SHA256
from tests.e2e.conftest import TOKEN, Stack
from tests.servers import webhook_receiver

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("e2e_db", ["sqlite"], indirect=True)]

ROOT = Path(__file__).resolve().parents[2]
XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


def chromium_path() -> str | None:
    for candidate in (
        os.environ.get("K4U_TEST_CHROMIUM"),
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
        shutil.which("google-chrome"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture
def browser() -> Iterator[Browser]:
    path = chromium_path()
    if path is None:
        pytest.skip(
            "no Chromium found (/usr/bin/chromium, chromium on PATH or K4U_TEST_CHROMIUM): "
            "install Debian's `chromium` package (.ci/run does) to run the browser tests"
        )
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, headless=True, args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        yield b
        b.close()


def post(stack: Stack, body: dict[str, Any]) -> str:
    with stack.client() as c:
        r = c.post("/v1/jobs", json=body)
        assert r.status_code == 202, r.text
        return str(r.json()["id"])


def shot(page: Page, tmp: Path, name: str) -> Path:
    path = tmp / f"ui-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def login(page: Page, stack: Stack) -> None:
    page.goto(f"{stack.api}/ui/")
    token = page.get_by_label("API token")
    expect(token).to_be_visible()
    token.fill("not-the-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#login-error")).to_contain_text("refused")
    token.fill(TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#app")).to_be_visible()


def card(page: Page, job_id: str) -> Any:
    return page.locator(f'li.job[data-job-id="{job_id}"]')


def listed(page: Page) -> list[str]:
    return page.locator("li.job").evaluate_all("els => els.map(e => e.dataset.jobId)")  # type: ignore[no-any-return]


def wait_listed(page: Page, check: Callable[[list[str]], bool], timeout_s: float = 15) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while True:
        ids = listed(page)
        if check(ids):
            return ids
        assert time.monotonic() < deadline, ids
        page.wait_for_timeout(100)


def wait_polls(page: Page, n: int) -> None:
    """Until the page has refreshed the list n more times (its "updated" stamp changes)."""
    for _ in range(n):
        before = page.locator("#updated").text_content()
        page.wait_for_function("t => document.getElementById('updated').textContent !== t", arg=before, timeout=10000)


SHA_OF_BLOB = """async (el) => {
  const buf = await (await fetch(el.src)).arrayBuffer();
  const d = await crypto.subtle.digest('SHA-256', buf);
  return Array.from(new Uint8Array(d), b => b.toString(16).padStart(2, '0')).join('');
}"""


def test_gallery_filters_media_and_live_updates(stack_factory, browser: Browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    stack = stack_factory(dev=True)
    video = post(stack, {"provider": "kling", "operation": "text2video", "input": {"prompt": "a fox in the snow"}})
    image = post(stack, {"provider": "kling", "operation": "image", "input": {"prompt": XSS, "n": 2}, "metadata": {"note": XSS}})
    failed = post(stack, {"provider": "kling", "operation": "text2video", "input": {"prompt": "[sim:fail] a storm"}})
    music = post(stack, {"provider": "suno", "operation": "music", "input": {"gpt_description_prompt": "lofi beat for rain", "make_instrumental": True}})
    with stack.client() as c:
        r = c.post(
            "/v1/batches",
            json={
                "jobs": [
                    {"provider": "replicate", "operation": "prediction", "input": {"model": "black-forest-labs/flux-schnell", "input": {"prompt": f"kite {i}"}}}
                    for i in range(2)
                ]
            },
        )
        assert r.status_code == 202, r.text
        batch_id, batch_jobs = r.json()["id"], r.json()["job_ids"]
    everything = {video, image, failed, music, *batch_jobs}
    jobs = {j: stack.wait_job(j, timeout_s=90) for j in everything}
    assert jobs[failed]["status"] == "failed" and all(jobs[j]["status"] == "succeeded" for j in everything - {failed})

    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    login(page, stack)
    assert all("401" in e for e in errors), errors  # the open-API probe and the wrong token
    errors.clear()
    ids = wait_listed(page, lambda ids: set(ids) == everything)
    assert ids == sorted(everything, reverse=True), "newest first"

    # Filters: each one narrows the list to exactly the matching jobs, and lands in the page's URL.
    page.select_option("#f-provider", "suno")
    assert wait_listed(page, lambda ids: ids == [music]) == [music]
    assert "provider=suno" in page.url
    page.select_option("#f-provider", "")
    page.select_option("#f-status", "failed")
    wait_listed(page, lambda ids: ids == [failed])
    expect(card(page, failed).locator(".chip")).to_have_text("failed")
    expect(card(page, failed).locator(".err")).to_contain_text("provider_failed")
    page.select_option("#f-status", "succeeded")
    page.select_option("#f-provider", "kling")
    wait_listed(page, lambda ids: set(ids) == {video, image})
    page.get_by_role("button", name="Clear").click()
    wait_listed(page, lambda ids: set(ids) == everything)

    # A video plays: its bytes came through the API as a blob and currentTime moves.
    player = card(page, video).locator("video")
    player.scroll_into_view_if_needed()
    expect(card(page, video).locator("figure.asset")).to_have_attribute("data-verified", "yes", timeout=15000)
    assert player.evaluate("v => v.src").startswith("blob:")
    player.evaluate("v => { v.muted = true; return v.play(); }")
    playing = player.element_handle()
    page.wait_for_function("v => v.currentTime > 0.5 && !v.paused", arg=playing, timeout=15000)
    wait_polls(page, 2)
    assert playing.evaluate("v => v.isConnected && !v.paused && v.currentTime > 0"), "polling kept the playing video as it was"

    # Image thumbnails: decoded, and their bytes (hashed here, apart from the page's own check) are the stored ones.
    figures = card(page, image).locator("figure.asset-image")
    assert figures.count() == 2
    for i in range(2):
        expect(figures.nth(i)).to_have_attribute("data-verified", "yes", timeout=15000)
        img = figures.nth(i).locator("img")
        assert img.evaluate("i => i.complete && i.naturalWidth") == 64
        got = img.evaluate(SHA_OF_BLOB)
        assert got == jobs[image]["assets"][i]["sha256"] == MEDIA_SHA256["png"]
    # Audio gets an inline player; the suno card's bytes check out too.
    audio = card(page, music).locator("figure.asset-audio").first
    audio.scroll_into_view_if_needed()
    expect(audio).to_have_attribute("data-verified", "yes", timeout=15000)
    assert audio.locator("audio").evaluate(SHA_OF_BLOB) == MEDIA_SHA256["mp3"]

    # Text from the API is text: the prompt shows literally and nothing in it ran.
    expect(card(page, image).locator(".prompt")).to_contain_text('<img src=x onerror="window.__xss=1">')
    assert page.evaluate("window.__xss") is None

    # Batch summary: counts and the relay-reported cost of the whole batch.
    card(page, batch_jobs[0]).get_by_role("button", name=batch_id).click()
    wait_listed(page, lambda ids: set(ids) == set(batch_jobs))
    summary = page.locator("#batch")
    expect(summary).to_contain_text("2 job(s)")
    expect(summary.locator('li[data-status="succeeded"]')).to_have_attribute("data-count", "2")
    expect(summary.locator(".cost")).to_contain_text("predict_time_s")
    expect(summary.locator(".cost")).to_contain_text("from 2 job(s)")
    assert f"batch_id={batch_id}" in page.url
    shot(page, tmp_path, "batch")
    page.get_by_role("button", name="Clear").click()
    wait_listed(page, lambda ids: set(ids) == everything)

    # Live: a job submitted while the page is open appears and goes to succeeded without a reload.
    page.evaluate("window.__marker = 42")
    stack.sim_admin("/_sim/config", {"queue_s": 1.0, "run_s": 4.0})
    live = post(stack, {"provider": "kling", "operation": "image", "input": {"prompt": "a live one"}})
    seen: list[str] = []
    deadline = time.monotonic() + 60
    while not seen or seen[-1] != "succeeded":
        assert time.monotonic() < deadline, seen
        status = card(page, live).get_attribute("data-status", timeout=10000)
        if status and (not seen or seen[-1] != status):
            seen.append(status)
        page.wait_for_timeout(100)
    assert seen[0] != "succeeded" and len(seen) >= 2, f"the chip changed live: {seen}"
    expect(card(page, live).locator(".chip")).to_have_text("succeeded")
    expect(card(page, live).locator("figure.asset")).to_have_attribute("data-verified", "yes", timeout=15000)
    assert page.evaluate("window.__marker") == 42, "no reload happened"
    assert listed(page)[0] == live

    path = shot(page, tmp_path, "gallery")
    if target := os.environ.get("K4U_TEST_UI_SCREENSHOT_TO"):
        shutil.copyfile(path, ROOT / target)
        print(f"copied to {ROOT / target}")
    assert not errors, errors


def test_detail_events_notifications_and_actions(stack_factory, browser: Browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    stack = stack_factory(dev=True)
    with webhook_receiver() as hook:
        bad = post(stack, {"provider": "kling", "operation": "text2video", "input": {"prompt": "[sim:fail] x"}, "callback_url": hook.url})
        slow = post(
            stack,
            {
                "provider": "replicate",
                "operation": "prediction",
                "input": {"model": "black-forest-labs/flux-schnell", "input": {"prompt": "slow [sim:run=120]"}},
            },
        )
        assert stack.wait_job(bad, timeout_s=60)["status"] == "failed"
        stack.wait_job(slow, timeout_s=30, until=lambda j: j["status"] == "running")
        hook.wait(1)

        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.on("dialog", lambda d: d.accept())  # the confirm() before cancel and retry
        login(page, stack)
        wait_listed(page, lambda ids: set(ids) == {bad, slow})

        # Detail of the failed job: its events and its delivered notification; replay sends it again.
        card(page, bad).get_by_role("button", name=f"Details of job {bad}").click()
        dialog = page.locator("dialog#detail")
        expect(dialog).to_be_visible()
        expect(dialog).to_have_attribute("data-status", "failed")
        expect(dialog.locator("section", has_text="Events")).to_contain_text("failed")
        notes = dialog.locator("section", has_text="Notifications (1)")
        expect(notes).to_contain_text("job.failed")
        expect(notes.locator("tbody td").nth(2)).to_have_text("200")
        expect(page.locator("#d-cancel")).to_be_disabled()
        page.get_by_role("button", name="Replay notifications").click()
        expect(page.locator("#d-msg")).to_have_text("Replayed 1 notification(s).")
        assert len(hook.wait(2)) == 2
        shot(page, tmp_path, "detail")

        # Retry: a new attempt of the failed job, shown in the dialog and on the card.
        page.get_by_role("button", name="Retry").click()
        expect(page.locator("#d-msg")).to_contain_text("attempt 2")
        expect(dialog.locator("dl.kv")).to_contain_text("2")
        page.get_by_role("button", name="Close").click()
        expect(card(page, bad).locator(".kind")).to_contain_text("attempt 2")

        # Cancel a running job from its detail: the chip turns to cancelled.
        card(page, slow).get_by_role("button", name=f"Details of job {slow}").click()
        expect(dialog).to_have_attribute("data-status", "running")
        page.get_by_role("button", name="Cancel").click()
        expect(page.locator("#d-msg")).to_contain_text("the job is cancelled")
        expect(page.locator("#d-cancel")).to_be_disabled()
        page.get_by_role("button", name="Close").click()
        expect(card(page, slow).locator(".chip")).to_have_text("cancelled")

        # Logging out forgets the token; the data calls need it again.
        page.get_by_role("button", name="Log out").click()
        expect(page.get_by_label("API token")).to_be_visible()
        assert page.evaluate("sessionStorage.getItem('k4u.token')") is None


def test_detail_links_a_jobs_parents_and_shows_its_inputs(e2e_db: str, browser: Browser, tmp_path: Path) -> None:
    """A job JSON with `depends_on` and `inputs[]` (the pipeline contract of issue 25): the detail
    shows each parent as a link that opens the parent's detail, and each input's upload or parent
    asset with its sha256 shortened; text from the API stays text. The gallery is served by our
    app; the data calls are answered by the page's network routes (no pipeline engine needed)."""
    import json

    from api.main import create_app
    from tests.conftest import make_settings
    from tests.servers import serve
    from workers.dispatch import RecordingDispatcher

    parent, child, upload = "job_" + "a" * 26, "job_" + "c" * 26, "upl_" + "0" * 24
    evil_parent = XSS
    sha_a, sha_u = "ab" * 32, "cd" * 32

    def job(job_id: str, **extra: Any) -> dict[str, Any]:
        base = {
            "id": job_id,
            "status": "succeeded",
            "provider": "kling",
            "operation": "image2video",
            "attempt": 1,
            "progress": 100,
            "input": {"prompt": "it runs"},
            "metadata": {},
            "assets": [],
            "created_at": "2026-12-07T22:00:00Z",
            "updated_at": "2026-12-07T22:00:00Z",
        }
        return base | extra

    jobs = {
        parent: job(parent, provider="midjourney", operation="imagine"),
        child: job(
            child,
            status="waiting",
            depends_on=[parent, evil_parent],
            input={"prompt": "it runs", "image": f"k4u://jobs/{parent}/assets/0", "image_tail": f"k4u://uploads/{upload}"},
            inputs=[
                {"field": "image", "ref": f"k4u://jobs/{parent}/assets/0", "job_id": parent, "index": 0, "sha256": sha_a},
                {"field": "image_tail", "ref": f"k4u://uploads/{upload}", "upload_id": upload, "sha256": sha_u},
            ],
        ),
    }

    def answer(route: Any) -> None:
        path = route.request.url.split("://", 1)[1].split("/", 1)[1].split("?")[0]
        parts = path.split("/")  # v1, jobs, <id>, <sub>
        body: Any
        if path == "v1/providers":
            body = {"providers": []}
        elif path == "v1/jobs" and "depends_on=" in route.request.url:  # a job's children
            kids = [jobs[child]] if f"depends_on={parent}" in route.request.url else []
            body = {"items": kids, "next_cursor": None}
        elif path == "v1/jobs":
            body = {"items": [jobs[child], jobs[parent]], "next_cursor": None}
        elif len(parts) == 3 and parts[1] == "jobs" and parts[2] in jobs:
            body = jobs[parts[2]]
        elif len(parts) == 4 and parts[1] == "jobs" and parts[3] in ("events", "notifications"):
            body = []
        else:
            route.fulfill(status=404, content_type="application/json", body=json.dumps({"detail": "not found"}))
            return
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    settings = make_settings(e2e_db, "http://127.0.0.1:9", tmp_path, api_tokens=TOKEN)
    with serve(create_app(settings, dispatcher=RecordingDispatcher())) as base:
        page = browser.new_page(viewport={"width": 1200, "height": 1000})
        page.route("**/v1/**", answer)
        page.goto(f"{base}/ui/")
        expect(page.locator("#app")).to_be_visible()
        page.get_by_role("button", name=f"Details of job {child}").click()
        dialog = page.locator("dialog#detail")
        section = dialog.locator("section", has_text="Pipeline")
        expect(section).to_be_visible()
        parents = section.locator("p.parents button.link")
        expect(parents).to_have_count(2)
        expect(parents.nth(1)).to_have_text(evil_parent)  # shown as text, never run
        rows = section.locator("table.inputs tbody tr")
        expect(rows).to_have_count(2)
        expect(rows.nth(0)).to_contain_text("image")
        expect(rows.nth(0)).to_contain_text(f"asset 0 of {parent}")
        expect(rows.nth(0).locator("td").nth(2)).to_have_text(sha_a[:12] + "…")
        expect(rows.nth(0).locator("td code").nth(1)).to_have_attribute("title", sha_a)
        expect(rows.nth(1)).to_contain_text(f"upload {upload}")
        expect(rows.nth(1).locator("td").nth(2)).to_have_text(sha_u[:12] + "…")
        shot(page, tmp_path, "pipeline")
        assert page.evaluate("window.__xss") is None

        expect(section.locator("p.children")).to_have_count(0)  # the child has no children

        parents.first.click()  # the parent's own detail, in the same dialog, with its child
        expect(page.locator("#d-title")).to_have_text(parent)
        expect(dialog.locator("dl.kv")).to_contain_text("midjourney · imagine")
        children = dialog.locator("section", has_text="Pipeline").locator("p.children button.link")
        expect(children).to_have_count(1)
        expect(children.first).to_have_text(child)
        children.first.click()
        expect(page.locator("#d-title")).to_have_text(child)
