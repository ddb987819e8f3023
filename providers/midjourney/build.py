"""Midjourney requests: submit bodies, the batch/single status query, the seed query, and the
button matching that turns "U1" / "zoom_out_2x" into a parent task's `customId`.

Paths follow new-api's router (providers.md §2.1): `/mj/submit/<op>`, optionally prefixed by a
speed tier `/mj-{mode}` (§3.1). Buttons are the parent's `buttons[{customId, label, emoji}]`
(§3.3); emoji-only buttons (🔄, ⬅️ ...) are matched by the verb inside their customId
`MJ::JOB::<verb>::<index>::<hash>` (§3.1, row /mj/submit/action). Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from providers.base import HttpRequest, ParentRef, ParentSpec, PollTarget, SubmitContext

SUBMIT_ENDPOINTS = {
    "imagine": "imagine",
    "action": "action",
    "blend": "blend",
    "describe": "describe",
    "modal": "modal",
    "video": "video",
    "upload": "upload-discord-images",
}
LIST_PATH = "/mj/task/list-by-condition"
MAX_BATCH = 100

_OURS = frozenset({"mode", "job_id", "button"})  # our fields, never sent to the proxy
# Verbs users may name for buttons that carry only an emoji (§3.1: new-api parses these verbs).
_ALIAS_VERBS = frozenset({"reroll", "pan_left", "pan_right", "pan_up", "pan_down"})


def submit_path(operation: str, mode: str | None) -> str:
    """`/mj/submit/<endpoint>`, behind `/mj-{mode}` when a speed tier is asked for (§2.1, §3.1)."""
    prefix = f"/mj-{mode}" if mode else ""
    return f"{prefix}/mj/submit/{SUBMIT_ENDPOINTS[operation]}"


def normalize(label: str) -> str:
    """A label as a key: "Zoom Out 2x" -> "zoom_out_2x", "Vary (Region)" -> "vary_region", "🔄" -> ""."""
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


def _verb(custom_id: str) -> str:
    """`MJ::JOB::reroll::0::h::SOLO` -> "reroll"; `MJ::BOOKMARK::h` -> "bookmark"."""
    parts = custom_id.split("::")
    if len(parts) > 2 and parts[0] == "MJ" and parts[1] == "JOB":
        return parts[2].lower()
    return parts[1].lower() if len(parts) > 1 and parts[0] == "MJ" else ""


def _label(button: Mapping[str, Any]) -> str:
    return str(button.get("label") or "")


def _custom_id(button: Mapping[str, Any]) -> str:
    return str(button.get("customId") or "")


def buttons_of(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    raw = result.get("buttons")
    return [b for b in raw if isinstance(b, Mapping) and _custom_id(b)] if isinstance(raw, list) else []


def find_button(buttons: Sequence[Mapping[str, Any]], wanted: str) -> Mapping[str, Any] | None:
    """The button a user means: label (case-insensitive), then normalized label, then the verb of
    an emoji-only button (reroll, pan_left, bookmark ...), then an exact customId."""
    text, norm = wanted.strip().lower(), normalize(wanted)
    passes: tuple[Callable[[Mapping[str, Any]], bool], ...] = (
        lambda b: bool(_label(b)) and _label(b).strip().lower() == text,
        lambda b: bool(norm) and normalize(_label(b)) == norm,
        lambda b: norm in _ALIAS_VERBS and f"::{norm}::" in _custom_id(b),
        lambda b: bool(norm) and not normalize(_label(b)) and _verb(_custom_id(b)) == norm,
        lambda b: _custom_id(b) == wanted.strip(),
    )
    for matches in passes:
        for b in buttons:
            if matches(b):
                return b
    return None


def button_names(buttons: Sequence[Mapping[str, Any]]) -> list[str]:
    """How each button can be named: its label, else its verb, else its emoji."""
    return [_label(b) or _verb(_custom_id(b)) or str(b.get("emoji") or "?") for b in buttons]


def parent_of(operation: str, input: Mapping[str, Any]) -> ParentSpec | None:
    job_id = input.get("job_id")
    if not job_id:
        return None  # the raw taskId form names the proxy's task, not one of our jobs
    if operation == "action":
        return ParentSpec("job_id", str(job_id), frozenset({"succeeded"}))
    if operation == "modal":
        return ParentSpec("job_id", str(job_id), frozenset({"running"}))  # the task parked in MODAL
    if operation == "video" and input.get("action") == "extend":
        return ParentSpec("job_id", str(job_id), frozenset({"succeeded"}))
    return None


def check_parent(operation: str, input: Mapping[str, Any], parent: ParentRef) -> None:
    """ValueError with a caller-facing message when the parent cannot serve this input."""
    if not parent.task_id:
        raise ValueError(f"job {parent.job_id} has no Midjourney task id")
    if operation == "action":
        _resolve_button(input, parent)
    elif operation == "modal" and parent.result.get("awaiting_input") is not True:
        raise ValueError(f"job {parent.job_id} is not awaiting input (its task is not parked in MODAL)")
    elif operation == "video" and parent.operation != "video":
        raise ValueError(f"job {parent.job_id} is a {parent.operation} job; extend needs a video job")


def _resolve_button(input: Mapping[str, Any], parent: ParentRef) -> str:
    buttons = buttons_of(parent.result)
    wanted = str(input.get("button") or "")
    found = find_button(buttons, wanted)
    if found is None:
        available = ", ".join(button_names(buttons)) or "none"
        raise ValueError(f"no button {wanted!r} on job {parent.job_id}; available: {available}")
    return _custom_id(found)


def _parent(ctx: SubmitContext, input: Mapping[str, Any]) -> ParentRef:
    parent = ctx.parent
    if parent is None or parent.job_id != input.get("job_id") or not parent.task_id:
        raise ValueError(f"parent job {input.get('job_id')} is not available or has no task id")
    return parent


def build_submit(operation: str, input: Mapping[str, Any], ctx: SubmitContext) -> HttpRequest:
    """The proxy's body for the operation; `state` defaults to our job id (correlation echo,
    §12: MJ has no idempotency key) and `notifyHook` is our per-job callback URL (§3.6)."""
    body: dict[str, Any] = {k: v for k, v in input.items() if k not in _OURS}
    if input.get("job_id"):
        parent = _parent(ctx, input)
        if operation == "action":
            body["customId"] = _resolve_button(input, parent)
        body["taskId"] = parent.task_id
    if operation != "upload":  # an upload is not a task: no hook, no echo
        body.setdefault("state", ctx.external_id)
        if ctx.callback_url:
            body["notifyHook"] = ctx.callback_url
    return HttpRequest("POST", submit_path(operation, input.get("mode")), json=body)


def build_poll(targets: Sequence[PollTarget], *, batch: bool = True) -> HttpRequest:
    """`POST /mj/task/list-by-condition {ids}` for a batch, `GET /mj/task/{id}/fetch` for one (§3.3)."""
    if not targets:
        raise ValueError("nothing to poll")
    if batch:
        ids = list(dict.fromkeys(t.task_id for t in targets))  # a modal job shares its parent's task
        if len(ids) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} ids per list-by-condition query")
        return HttpRequest("POST", LIST_PATH, json={"ids": ids})
    if len(targets) != 1:
        raise ValueError("the single-task query takes exactly one target")
    return HttpRequest("GET", f"/mj/task/{quote(targets[0].task_id, safe='')}/fetch")


def build_seed(task_id: str) -> HttpRequest:
    """`GET /mj/task/{id}/image-seed` (plus proxies only, §3.3)."""
    return HttpRequest("GET", f"/mj/task/{quote(task_id, safe='')}/image-seed")
