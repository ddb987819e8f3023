"""`k4u doctor`: what an answer to a probe says (classify), which probes the adapters name
(AdapterDefaults.probes), and how a run sends them (run_probes: reads only, each distinct route
once, route prefixes applied, bounded in time)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

import httpx
import pytest

from cli.doctor import (
    NOTE_MAX,
    Finding,
    RouteCheck,
    Verdict,
    classify,
    exit_code,
    family_verdicts,
    public_url,
    report_json,
    report_table,
    run_probes,
)
from providers.base import (
    PROBE_METHODS,
    PROBE_TASK_ID,
    AdapterDefaults,
    Capabilities,
    Flow,
    HttpRequest,
    HttpResponse,
    Operation,
    PollTarget,
    ProviderStatus,
)
from providers.registry import ADAPTERS
from providers.video import SORA, VEO
from workers.relay import Relay

JSON = {"content-type": "application/json"}
HTML = {"content-type": "text/html; charset=utf-8"}


def answer(status: int, body: Any = None, headers: Mapping[str, str] | None = None) -> HttpResponse:
    if isinstance(body, (dict, list)):
        return HttpResponse(status, headers or JSON, json.dumps(body).encode())
    return HttpResponse(status, headers or {}, (body or "").encode() if isinstance(body, str) else body or b"")


@pytest.mark.parametrize(
    ("resp", "verdict"),
    [
        # the route exists: the relay (or its upstream) says the task does not
        (answer(400, {"code": "task_not_exist", "message": "task_not_exist", "data": None}), Verdict.OK),  # new-api generic tasks (§2.4)
        (answer(400, {"description": "task_no_found", "type": "upstream_error", "code": 4}), Verdict.OK),  # midjourney-proxy through new-api
        (answer(404, {"code": 1201, "message": "task not found", "request_id": "r"}), Verdict.OK),  # Kling native
        (answer(404, {"error": {"message": "task not found", "type": "invalid_request_error"}}), Verdict.OK),  # OpenAI video object
        (answer(404, {"title": "Not found", "detail": "Not found.", "status": 404}), Verdict.OK),  # Replicate
        (answer(404, {"detail": "Request not found"}), Verdict.OK),  # fal
        (answer(400, {"code": 1, "msg": "任务不存在"}), Verdict.OK),
        (answer(200, {"code": "success", "data": None}), Verdict.OK),
        (answer(200, []), Verdict.OK),
        # the route is missing
        (
            answer(404, {"error": {"message": "Invalid URL (GET /v1/video/query)", "type": "invalid_request_error", "param": "", "code": ""}}),
            Verdict.ROUTE_MISSING,
        ),
        (answer(404, "<html><head><title>404 Not Found</title></head><body>nginx</body></html>", HTML), Verdict.ROUTE_MISSING),
        (answer(404, "  <!doctype html><p>gone"), Verdict.ROUTE_MISSING),  # HTML without a content type
        (answer(404, ""), Verdict.ROUTE_MISSING),
        (answer(404, "404 page not found", {"content-type": "text/plain"}), Verdict.ROUTE_MISSING),  # gin's default
        (answer(404, "Not Found", {"content-type": "text/plain"}), Verdict.ROUTE_MISSING),  # Starlette's default
        (answer(404, {"detail": "Not Found"}), Verdict.ROUTE_MISSING),  # FastAPI's default
        (answer(404, {"message": "Cannot GET /suno/fetch/x"}), Verdict.ROUTE_MISSING),  # Express's default
        (answer(405, {"error": "method not allowed"}), Verdict.ROUTE_MISSING),
        (answer(501, {"error": {"message": "API not implemented", "code": "api_not_implemented"}}), Verdict.ROUTE_MISSING),
        (answer(200, "<!doctype html><html><div id=root></div></html>", HTML), Verdict.ROUTE_MISSING),  # new-api's console page
        # the key is refused
        (answer(401, {"error": {"message": "无效的令牌", "type": "new_api_error"}}), Verdict.KEY_REFUSED),
        (answer(403, {"error": {"message": "token has no access to this group"}}), Verdict.KEY_REFUSED),
        (answer(401, ""), Verdict.KEY_REFUSED),
        # the relay is unavailable: nothing is guessed
        (answer(429, {"error": {"message": "rate limit"}}), Verdict.UNAVAILABLE),
        (answer(500, {"code": "fail_to_fetch_task", "message": "task not found upstream"}), Verdict.UNAVAILABLE),
        (answer(502, "<html>Bad Gateway</html>", HTML), Verdict.UNAVAILABLE),
        (answer(503, {"error": {"message": "no available channel"}}), Verdict.UNAVAILABLE),
        (answer(504, ""), Verdict.UNAVAILABLE),
        # anything else: unknown, with the status
        (answer(400, {"error": {"message": "invalid id format"}}), Verdict.UNKNOWN),
        (answer(404, {"error": {"message": "model flux is not available"}}), Verdict.UNKNOWN),
        (answer(400, "Bad Request", {"content-type": "text/plain"}), Verdict.UNKNOWN),
        (answer(422, {"detail": [{"loc": ["path", "id"], "msg": "not a uuid"}]}), Verdict.UNKNOWN),
        (answer(402, {"error": {"message": "insufficient quota"}}), Verdict.UNKNOWN),
        (answer(301, "", {"location": "https://relay.example/v1/videos/x"}), Verdict.UNKNOWN),
    ],
)
def test_an_answer_says_what_it_says(resp: HttpResponse, verdict: Verdict) -> None:
    found = classify(resp)
    assert found.verdict is verdict, found
    assert found.status == resp.status and found.note.startswith(f"HTTP {resp.status}")


def test_the_note_carries_the_relays_words_and_a_redirect_names_the_setting() -> None:
    assert classify(answer(404, {"error": {"message": "Invalid URL (GET /x)"}})).note == "HTTP 404: Invalid URL (GET /x)"
    assert classify(answer(400, {"code": "task_not_exist", "message": "task_not_exist"})).note == "HTTP 400: task_not_exist"
    assert classify(answer(404, "")).note == "HTTP 404: an empty body"
    assert "HTML page" in classify(answer(404, "<html>x</html>", HTML)).note
    moved = classify(answer(302, "", {"location": "https://other.example:8443/login?next=/v1"}))
    assert "other.example:8443" in moved.note and "K4U_BASE_URL" in moved.note and "next" not in moved.note


def test_the_relays_text_is_one_short_printable_line() -> None:
    evil = "\x1b[2J\x1b]0;owned\x07line one\r\nline two " + "x" * 5000
    note = classify(answer(400, {"error": {"message": evil}})).note
    assert "\x1b" not in note and "\x07" not in note and "\n" not in note and "\r" not in note
    assert len(note) <= len("HTTP 400: ") + NOTE_MAX and "line one line two" in note
    assert len(classify(answer(404, "y" * 10_000, {"content-type": "text/plain"})).note) <= len("HTTP 404: ") + NOTE_MAX


# -- the probes the adapters name ------------------------------------------------------------------


@pytest.mark.parametrize("provider", sorted(ADAPTERS))
def test_every_family_names_free_reads_of_a_made_up_task(provider: str) -> None:
    probes = ADAPTERS[provider].probes()
    assert probes, f"{provider} has no probe: `k4u doctor` could not tell whether the relay carries it"
    keys = [(p.request.method, p.request.path, tuple(sorted(p.request.query.items()))) for p in probes]
    assert len(keys) == len(set(keys)), "one probe per distinct request"
    for p in probes:
        req = p.request
        assert req.method in PROBE_METHODS and req.json is None and req.form is None and not req.files and req.content is None
        assert req.path.startswith("/") and not req.path.startswith("//")
        one_shot = ADAPTERS[provider].capabilities.oneshot  # no free read of its route: the model list
        assert (req.path == "/v1/models") if one_shot else PROBE_TASK_ID in req.path + "".join(map(str, req.query.values()))
        assert set(p.operations) <= set(ADAPTERS[provider].operations)


def test_the_probes_cover_every_operation_of_the_families_on_this_branch() -> None:
    for name in ("kling", "midjourney", "suno", "sora", "veo", "grok", "replicate", "fal"):
        covered = [op for p in ADAPTERS[name].probes() for op in p.operations]
        unpolled = {"identify_face"} if name == "kling" else set()  # answered at once: no route to read
        assert sorted(covered) == sorted(set(ADAPTERS[name].operations) - unpolled), name


def test_operations_that_poll_the_same_route_share_one_probe() -> None:
    routes = {(p.request.path, tuple(p.request.query.items())): p.operations for p in SORA.probes()}
    assert routes == {(f"/v1/videos/{PROBE_TASK_ID}", ()): ("video", "remix"), ("/v1/video/query", (("id", PROBE_TASK_ID),)): ("video_unified",)}
    assert [p.request.path for p in ADAPTERS["midjourney"].probes()] == [f"/mj/task/{PROBE_TASK_ID}/fetch"]  # the single read, never the batch POST
    assert [p.request.path for p in ADAPTERS["fal"].probes()] == [f"/fal-ai/flux/requests/{PROBE_TASK_ID}/status"]  # its example model


class _Fake(AdapterDefaults):
    """Three operations: one polled by a read, one whose flow needs a real task's handle, one that polls by POST."""

    name = "fake"
    capabilities = Capabilities()
    operations: Mapping[str, Operation] = {op: Operation(op, Any, op) for op in ("read", "needs_handle", "posts")}  # type: ignore[arg-type]

    def poll(self, targets: Sequence[PollTarget], *, batch: bool = True) -> Flow[list[ProviderStatus]]:
        t = targets[0]
        if t.operation == "needs_handle":
            path = t.handle["status"]  # KeyError for a made-up task
            yield HttpRequest("GET", path)
        if t.operation == "posts":
            yield HttpRequest("POST", "/fake/query", json={"ids": [t.task_id]})
        yield HttpRequest("GET", f"/fake/{t.task_id}")
        return []


def test_an_operation_without_a_free_read_has_no_probe() -> None:
    probes = _Fake().probes()
    assert [(p.request.method, p.request.path, p.operations) for p in probes] == [("GET", f"/fake/{PROBE_TASK_ID}", ("read",))]


# -- a run ------------------------------------------------------------------------------------------


class _Recorder:
    def __init__(self, respond: Any) -> None:
        self.seen: list[tuple[str, str, str]] = []
        self.respond = respond
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.seen.append((request.method, request.url.raw_path.decode(), request.headers.get("authorization", "")))
        return self.respond(request)  # type: ignore[no-any-return]


def _not_found(request: httpx.Request) -> httpx.Response:
    return httpx.Response(400, json={"code": "task_not_exist", "message": "task_not_exist"})


def test_a_run_sends_each_distinct_read_once_with_the_key() -> None:
    rec = _Recorder(_not_found)
    relay = Relay("http://relay.test", "sk-doctor-secret", transport=httpx.MockTransport(rec))
    checks = run_probes(relay, {"sora": SORA, "veo": VEO}, {}, limit_s=10)
    assert sorted(rec.seen) == sorted(
        [("GET", f"/v1/videos/{PROBE_TASK_ID}", "Bearer sk-doctor-secret"), ("GET", f"/v1/video/query?id={PROBE_TASK_ID}", "Bearer sk-doctor-secret")]
    )
    assert [(c.family, c.route, c.finding.verdict) for c in checks] == [
        ("sora", "/v1/videos/{id}", Verdict.OK),
        ("sora", "/v1/video/query?id={id}", Verdict.OK),
        ("veo", "/v1/video/query?id={id}", Verdict.OK),
        ("veo", "/v1/videos/{id}", Verdict.OK),
    ]


@pytest.fixture
def prefixed_replicate(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    adapter = ADAPTERS["replicate"]
    monkeypatch.setattr(adapter, "capabilities", replace(adapter.capabilities, route_prefix="/replicate/v1"))
    yield


@pytest.mark.usefixtures("prefixed_replicate")
def test_a_run_asks_under_the_configured_route_prefix_and_shows_it() -> None:
    from workers.settings import Settings

    prefixes = Settings(route_prefixes="replicate=/rep/v2").route_prefix_map()
    rec = _Recorder(_not_found)
    relay = Relay("http://relay.test/base", "k", transport=httpx.MockTransport(rec), route_prefixes=prefixes)
    [check] = run_probes(relay, {"replicate": ADAPTERS["replicate"]}, prefixes, limit_s=10)
    assert rec.seen == [("GET", f"/base/rep/v2/predictions/{PROBE_TASK_ID}", "Bearer k")]
    assert check.route == "/rep/v2/predictions/{id}" and check.operations == ("prediction",)


def test_a_relay_that_cannot_be_reached_or_does_not_answer_in_time_is_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    relay = Relay("http://relay.test", "k", transport=httpx.MockTransport(refuse))
    [check] = run_probes(relay, {"suno": ADAPTERS["suno"]}, {}, limit_s=10)
    assert check.finding == Finding(Verdict.UNAVAILABLE, None, "relay not reachable (ConnectError)")

    release = threading.Event()

    def hang(request: httpx.Request) -> httpx.Response:
        release.wait(10)
        return _not_found(request)

    relay = Relay("http://relay.test", "k", transport=httpx.MockTransport(hang))
    try:
        [check] = run_probes(relay, {"suno": ADAPTERS["suno"]}, {}, limit_s=0.2)
    finally:
        release.set()
    assert check.finding == Finding(Verdict.UNAVAILABLE, None, "no answer within 0.2 s")


def test_a_family_verdict_is_its_worst_route_and_the_exit_code_the_largest() -> None:
    def check(family: str, verdict: Verdict) -> RouteCheck:
        return RouteCheck(family, "GET", "/x/{id}", ("op",), Finding(verdict, 404, "HTTP 404"))

    checks = [check("a", Verdict.OK), check("a", Verdict.ROUTE_MISSING), check("b", Verdict.OK), check("c", Verdict.UNAVAILABLE)]
    verdicts = family_verdicts(["a", "b", "c", "d"], checks)
    assert verdicts == {"a": Verdict.ROUTE_MISSING, "b": Verdict.OK, "c": Verdict.UNAVAILABLE, "d": None}
    assert exit_code(verdicts) == 3
    assert exit_code({"a": Verdict.OK, "d": None}) == 0  # a family with no probe is not counted
    assert exit_code({"a": Verdict.UNKNOWN}) == 1
    assert exit_code({"a": Verdict.KEY_REFUSED, "c": Verdict.UNAVAILABLE, "x": Verdict.ROUTE_MISSING}) == 4
    table = report_table("http://relay.test", True, verdicts, checks)
    assert "2 of 3 families have a problem: a (route missing), c (relay unavailable)" in table
    assert "not probed: the family has no free read" in table
    doc = json.loads(report_json("http://relay.test", True, verdicts, checks))
    assert doc["exit_code"] == 3 and not doc["ok"]
    assert [f["verdict"] for f in doc["families"]] == ["route_missing", "ok", "unavailable", "not_probed"]


def test_the_report_names_the_relay_without_credentials() -> None:
    assert public_url("https://user:pa55@relay.example:8443/base?token=x") == "https://relay.example:8443/base"
    assert public_url("http://[::1]:9100") == "http://[::1]:9100"
    assert public_url("https://api.key4u.shop") == "https://api.key4u.shop"


def test_a_relay_that_echoes_the_key_does_not_get_it_printed() -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": {"message": f"invalid token {request.headers['authorization'][7:]}"}})

    relay = Relay("http://relay.test", "sk-doctor-secret-77", transport=httpx.MockTransport(echo))
    checks = run_probes(relay, {"suno": ADAPTERS["suno"]}, {}, limit_s=10, secret="sk-doctor-secret-77")
    assert checks[0].finding == Finding(Verdict.KEY_REFUSED, 401, "HTTP 401: invalid token [K4U_API_KEY]")
    verdicts = family_verdicts(["suno"], checks)
    assert "sk-doctor-secret-77" not in report_table("http://relay.test", True, verdicts, checks) + report_json("http://relay.test", True, verdicts, checks)
