"""MiniMax through the relay (providers-next.md §4.6): Hailuo video and asynchronous TTS.

- Submit `POST /minimax/v1/video_generation` or `/minimax/v1/t2a_async_v2` (the documented prefix,
  `route_prefix`; K4U_ROUTE_PREFIXES names another). Errors come as HTTP 200 with a non-zero
  `base_resp.status_code`: 1002 is "later" (the job waits in queued, nothing was charged), every
  other code fails the job with MiniMax's `status_msg` (1004/2049 key, 1008 balance, 1026
  sensitive input, 2013 parameters...).
- Poll, a flow of up to two reads: the status query (`/query/video_generation?task_id=`,
  `/query/t2a_async_query_v2?task_id=`), then on `Success` its `file_id` is resolved by
  `GET /files/retrieve?file_id=` to `file.download_url` (a signed URL that lives about 9 h: asked
  again for a fresh one when it has gone). A relay answering with new-api's task DTO, the file
  already inside (`data.data.file`), needs no second read.
- TTS: `usage_characters` of the submit answer is the job's `result.cost`; `Expired` fails the job
  `result_expired`; the file is audio (an archive of audio and subtitles is stored as a file).
- No client id and no lookup: a lost submit answer fails the job `submit_outcome_unknown`.
  `callback_url` is passed on; a callback (or MiniMax's challenge, which is not answered) is only a
  hint to poll now, since whether the relay forwards them is unproven.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from models.errors import ProviderProtocolError
from providers.base import (
    AdapterDefaults,
    Capabilities,
    Flow,
    HttpRequest,
    HttpResponse,
    LostSubmit,
    Operation,
    PollTarget,
    ProviderStatus,
    Rejected,
    State,
    SubmitContext,
    Submitted,
)
from providers.minimax.inputs import TtsInput, VideoInput
from providers.minimax.parse import (
    LATER,
    base_resp,
    body_of,
    check_query,
    download_url,
    envelope_failure,
    expiry_of,
    failed,
    file_id_of,
    file_of,
    normalize_status,
    output_of,
    relay_code,
    result_fields,
    split_envelope,
)
from providers.rejections import submit_rejection
from providers.wire import error_message, is_not_found, json_or_none, parse_progress, query_failure, str_or_none

PREFIX = "/minimax/v1"
SUBMIT = {"video": f"{PREFIX}/video_generation", "tts_async": f"{PREFIX}/t2a_async_v2"}
QUERY = {"video": f"{PREFIX}/query/video_generation", "tts_async": f"{PREFIX}/query/t2a_async_query_v2"}
RETRIEVE = f"{PREFIX}/files/retrieve"
KIND = {"video": "video", "tts_async": "audio"}
RESULT_TTL_S = 9 * 3600  # MiniMax's download URLs live about 9 hours


class MinimaxAdapter(AdapterDefaults):
    name = "minimax"
    operations: Mapping[str, Operation] = {
        "video": Operation("video", VideoInput, "Hailuo text / image / subject to video (/minimax/v1/video_generation; x-models lists each model's limits)"),
        "tts_async": Operation("tts_async", TtsInput, "Long text to speech, asynchronously (/minimax/v1/t2a_async_v2); usage_characters in result.cost"),
    }
    # A 6 s Hailuo clip takes 1-4 minutes; TTS of long texts a minute or two.
    capabilities = Capabilities(
        max_batch=1,
        callback_trust="hint",
        lost_submit=LostSubmit.NONE,
        result_ttl_s=RESULT_TTL_S,
        expected_s=120.0,
        deadline_s=3600.0,
        route_prefix=PREFIX,
    )

    # -- submit -------------------------------------------------------------------------------
    def build_submit(self, operation: str, input: Mapping[str, Any], ctx: SubmitContext) -> HttpRequest:
        body = dict(input)
        if operation == "video" and ctx.callback_url:
            body["callback_url"] = ctx.callback_url
        return HttpRequest("POST", SUBMIT[operation], json=body)

    def parse_submit(self, resp: HttpResponse) -> Submitted | Rejected:
        data = json_or_none(resp)
        if resp.status >= 300:
            return submit_rejection(resp, error_message(data) or (base_resp(data)[1] if isinstance(data, Mapping) else ""))
        if not isinstance(data, Mapping):
            raise ProviderProtocolError("submit answer is not a JSON object")
        native, dto = split_envelope(data)
        answer = native if native else (dto or data)
        code, message = base_resp(answer)
        task_id = str_or_none(answer.get("task_id")) or (str_or_none(dto.get("task_id")) if dto else None)
        if code != 0:
            if task_id:  # an error beside a task id: was it made (and charged)? Unknown, never resent.
                raise ProviderProtocolError(f"submit answer names task {task_id[:80]} and error {code}: {message[:200]}")
            return Rejected(relay_code(code), message or f"MiniMax error {code}", code == LATER)
        if task_id is None:
            failure = envelope_failure(data)
            if failure:
                return Rejected(str(data.get("code"))[:60], failure, False)
            raise ProviderProtocolError("submit answer carries no task id")
        return Submitted(task_id, _submit_status(task_id, answer))

    # -- poll ---------------------------------------------------------------------------------
    def poll(self, targets: Sequence[PollTarget], *, batch: bool = True) -> Flow[list[ProviderStatus]]:
        t = targets[0]
        resp = yield HttpRequest("GET", QUERY[t.operation], query={"task_id": t.task_id})
        st, result = self._read_query(resp, t)
        if st is not None:
            return [st]
        resp = yield HttpRequest("GET", RETRIEVE, query={"file_id": result["file_id"]})
        return [self._read_file(resp, t, result)]

    def _read_query(self, resp: HttpResponse, t: PollTarget) -> tuple[ProviderStatus | None, dict[str, Any]]:
        """The status, or (None, what the query said) when the task succeeded and its file_id must be resolved."""
        data = json_or_none(resp)
        if (failure := query_failure(resp, data, t.task_id, error_message(data), "the status query")) is not None:
            return failure, {}
        data = body_of(resp, "status query")
        native, dto = split_envelope(data)
        code, message = base_resp(native)
        raw = native.get("status") if "status" in native else (dto or {}).get("status")
        if dto is None and "status" not in native:
            if envelope_failure(data) and is_not_found(data):
                return ProviderStatus(t.task_id, State.UNKNOWN, error_message=error_message(data)), {}
            check_query(code, message, "status query")
            raise ProviderProtocolError("the status query answer carries no status")
        state = normalize_status(raw)
        if dto is not None and state is not State.FAILED and normalize_status(dto.get("status")) is State.FAILED:
            state, raw = State.FAILED, dto.get("status")  # the relay gave up on the task: its word is final
        if state is State.FAILED:
            return failed(t.task_id, raw, code, message, dto), {}
        check_query(code, message, "status query")  # beside any other status, the error is the query's
        result = result_fields(native)
        if state is not State.SUCCEEDED:
            progress = parse_progress(dto.get("progress")) if dto and state is State.RUNNING else None
            return ProviderStatus(t.task_id, state, progress=progress), {}
        file = file_of(native)
        url = download_url(file) or (_str_url(dto.get("result_url")) if dto else None)
        if url:  # the relay resolved the file already (new-api DTO)
            return self._succeeded(t, file, url, result), {}
        file_id = result.get("file_id") or file_id_of(file)
        if not file_id:
            return ProviderStatus(t.task_id, State.FAILED, error_code="provider_failed", error_message="MiniMax reported Success without a file_id"), {}
        return None, result | {"file_id": file_id}

    def _read_file(self, resp: HttpResponse, t: PollTarget, result: dict[str, Any]) -> ProviderStatus:
        file_id = result["file_id"]
        data = json_or_none(resp)
        if resp.status in (400, 404) and is_not_found(data):
            return ProviderStatus(t.task_id, State.UNKNOWN, error_message=f"file {file_id}: {error_message(data)[:200]}")
        if resp.status >= 300:
            raise ProviderProtocolError(f"HTTP {resp.status} on files/retrieve: {error_message(data)[:200]}")
        data = body_of(resp, "files/retrieve")
        native, _ = split_envelope(data)
        if "file" not in native and isinstance(data.get("data"), Mapping):
            native = data["data"]
        check_query(*base_resp(native), "files/retrieve")
        file = file_of(native)
        url = download_url(file)
        if url is None:
            raise ProviderProtocolError(f"files/retrieve gave no download_url for file {file_id}")
        return self._succeeded(t, file, url, result)

    def _succeeded(self, t: PollTarget, file: Mapping[str, Any], url: str, result: dict[str, Any]) -> ProviderStatus:
        return ProviderStatus(
            t.task_id,
            State.SUCCEEDED,
            progress=100,
            outputs=[output_of(file, url, KIND[t.operation])],
            result_data=result,
            expires_at=expiry_of(file, url),
        )

    # -- callbacks ----------------------------------------------------------------------------
    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> ProviderStatus:
        """A status notice (or MiniMax's `{challenge}`): only ever a hint to poll now (callback_trust)."""
        data = json_or_none(HttpResponse(200, headers, body))
        if not isinstance(data, Mapping):
            raise ProviderProtocolError("callback body is not a JSON object")
        native, dto = split_envelope(data)
        raw = native.get("status") if "status" in native else (dto or {}).get("status")
        task_id = str_or_none(native.get("task_id")) or (str_or_none(dto.get("task_id")) if dto else None)
        return ProviderStatus(task_id, normalize_status(raw) if raw is not None else State.UNKNOWN)


def _submit_status(task_id: str, answer: Mapping[str, Any]) -> ProviderStatus | None:
    """What the submit answer tells beyond the id: TTS's `usage_characters` (the job's cost)."""
    chars = answer.get("usage_characters")
    if isinstance(chars, bool) or not isinstance(chars, int) or chars < 0:
        return None
    return ProviderStatus(task_id, State.QUEUED, result_data={"cost": {"usage_characters": chars}})


def _str_url(v: object) -> str | None:
    return v.strip() if isinstance(v, str) and v.strip().lower().startswith(("http://", "https://")) else None
