"""Midjourney through the relay, midjourney-proxy conventions (providers.md §3, §10.10, §12).

Operations: imagine, action (a button of a finished parent), blend, describe, modal (finishes a
task parked in MODAL), video (image -> 4 videos, or extend), upload (reference images; done at
once). Requests live in `build`, answers in `parse`, inputs in `schemas`; this module only
assembles the adapter. Quirks the adapter relies on:
- MJ ids are not rewritten by new-api (§2.2), so a notifyHook's `id` is the id we hold (§3.6);
- there is no idempotency key, only the `state` echo (§12): a submit with an unknown outcome
  cannot be looked up, hence `lost_submit=LostSubmit.CALLBACK_ECHO` (a notifyHook echoing it reveals the task);
- new-api force-fails tasks older than 1 h (§2.3, §3.7): the deadline is 1 h;
- list-by-condition has no enforced limit in new-api (§3.3, §12); we cap a batch at 100 ids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from providers.base import (
    AdapterDefaults,
    Capabilities,
    HttpRequest,
    HttpResponse,
    LostSubmit,
    Operation,
    ParentRef,
    ParentSpec,
    PollTarget,
    ProviderStatus,
    Rejected,
    SubmitContext,
    Submitted,
)
from providers.midjourney import build, parse
from providers.midjourney.build import build_seed, find_button, normalize
from providers.midjourney.parse import describe_prompts, parse_seed, parse_task
from providers.midjourney.schemas import (
    ActionInput,
    BlendInput,
    DescribeInput,
    ImagineInput,
    ModalInput,
    UploadInput,
    VideoInput,
)

__all__ = [
    "ActionInput",
    "BlendInput",
    "DescribeInput",
    "ImagineInput",
    "MidjourneyAdapter",
    "ModalInput",
    "UploadInput",
    "VideoInput",
    "build_seed",
    "describe_prompts",
    "find_button",
    "normalize",
    "parse_seed",
    "parse_task",
]


_SEEDED = frozenset({"imagine", "action", "blend", "modal"})


class MidjourneyAdapter(AdapterDefaults):
    name = "midjourney"
    operations: Mapping[str, Operation] = {
        "imagine": Operation("imagine", ImagineInput, "Text (+ reference images) to a 2x2 grid (/mj/submit/imagine)"),
        "action": Operation("action", ActionInput, "Press a button of a finished task: U1, V3, reroll, zoom_out_2x ... (/mj/submit/action)"),
        "blend": Operation("blend", BlendInput, "Blend 2-5 images (/mj/submit/blend)"),
        "describe": Operation("describe", DescribeInput, "Image to 4 prompt suggestions (/mj/submit/describe)"),
        "modal": Operation("modal", ModalInput, "Finish a task parked awaiting input (/mj/submit/modal)"),
        "video": Operation("video", VideoInput, "Image to 4 videos, or extend one (/mj/submit/video)"),
        "upload": Operation("upload", UploadInput, "Upload reference images, get URLs (/mj/submit/upload-discord-images)"),
    }
    # Discord CDN links expire in about a day (§3.5); a FAST imagine takes 25-30 s (§3.7).
    capabilities = Capabilities(
        max_batch=build.MAX_BATCH,
        callback_trust="token",
        result_ttl_s=86400,
        expected_s=40.0,
        deadline_s=3600.0,
        lost_submit=LostSubmit.CALLBACK_ECHO,
        inline_fields=frozenset({"base64Array", "base64"}),  # blend, describe, the imagine's references: data URIs only
    )

    def parent_of(self, operation: str, input: Mapping[str, Any]) -> ParentSpec | None:
        return build.parent_of(operation, input)

    def check_parent(self, operation: str, input: Mapping[str, Any], parent: ParentRef) -> None:
        build.check_parent(operation, input, parent)

    def build_submit(self, operation: str, input: Mapping[str, Any], ctx: SubmitContext) -> HttpRequest:
        return build.build_submit(operation, input, ctx)

    def parse_submit(self, resp: HttpResponse) -> Submitted | Rejected:
        return parse.parse_submit(resp)

    def build_poll(self, targets: Sequence[PollTarget], *, batch: bool = True) -> HttpRequest:
        return build.build_poll(targets, batch=batch)

    def parse_poll(self, resp: HttpResponse) -> list[ProviderStatus]:
        return parse.parse_poll(resp)

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> ProviderStatus:
        return parse.parse_callback(body)

    def build_result_extra(self, operation: str, task_id: str) -> HttpRequest | None:
        """The seed of an image task needs its own call, `GET /mj/task/{id}/image-seed` (§3.3)."""
        if operation not in _SEEDED or task_id.startswith("upload-"):
            return None
        return build_seed(task_id)

    def parse_result_extra(self, resp: HttpResponse) -> Mapping[str, Any]:
        seed = parse_seed(resp)
        return {"seed": seed} if seed else {}

    # Also usable directly:
    build_seed = staticmethod(build_seed)
    parse_seed = staticmethod(parse_seed)
