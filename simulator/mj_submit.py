"""Midjourney submit handlers (providers.md §3.1-§3.2), one function per `/mj/submit/...` route.

Each handler takes a `Ctx` and the JSON body and returns the response.
Relay-side request errors (missing prompt/taskId, unknown or unfinished
parent) are HTTP 400 `{description, type:"upstream_error", code:4}`; proxy
business answers are HTTP 200 `{code, description, result, properties}` with
code 1 / 21 / 22 (accepted) or 4 / 23 / 24 (refused).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse

from simulator import mj_views as v
from simulator.mj import (
    BANNED_WORD,
    BOT_TYPES,
    DESCRIBE,
    GRID,
    VIDEO,
    MjTask,
    buttons_for,
    describe_suggestions,
    parse_custom_id,
)
from simulator.timeline import MODAL, NOT_START, SUBMITTED, SUCCESS, HookCursor, Timeline, directive_seconds as seconds, directives as find_directives

if TYPE_CHECKING:
    from simulator.core import Simulator

DIMENSIONS = ("PORTRAIT", "SQUARE", "LANDSCAPE")
QUEUE_AHEAD = 3  # numberOfQueues reported with code 22
_LETTER = {"UPSCALE": "U", "VARIATION": "V", "LOW_VARIATION": "V", "HIGH_VARIATION": "V", "REROLL": "R"}


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    return value if isinstance(value, str) and value.strip() else None


@dataclass
class Ctx:
    """One submit request: simulator, base URL for links, speed mode, clock reading."""

    sim: Simulator
    base: str
    mode: str
    now: float

    def answer(self, body: dict[str, Any], modal: bool = False) -> JSONResponse:
        if self.sim.config.mj_newapi_codes and (body["code"] == 22 or (body["code"] == 21 and not modal)):
            body = {**body, "code": 1}  # new-api rewrites 22 -> 1 and 21 -> 1 (§3.2)
        self.sim.state.mj.codes[str(body["code"])] += 1
        return JSONResponse(body)

    def fail(self, code: int, description: str, properties: dict[str, Any] | None = None) -> JSONResponse:
        self.sim.state.mj.codes[str(code)] += 1
        return v.upstream_fail(code, description, properties)

    def relay(self, description: str) -> JSONResponse:
        self.sim.state.mj.codes["relay_error"] += 1
        return v.relay_error(description)

    def queue_full(self, found: dict[str, str]) -> bool:
        faults = self.sim.state.faults
        if "queuefull" in found:
            return True
        if faults.mj_queue_full_next > 0:
            faults.mj_queue_full_next -= 1
            return True
        return False

    def new_task(
        self,
        action: str,
        result: str,
        prompt: str,
        description: str,
        body: dict[str, Any],
        found: dict[str, str],
        *,
        modal: bool = False,
        modal_now: bool = False,
        queued: bool = False,
        parent: MjTask | None = None,
        custom_id: str = "",
    ) -> MjTask:
        """Create and register a task.

        modal: park in MODAL once queued; modal_now: park at once (inpaint,
        custom zoom); queued: NOT_START then SUBMITTED (code 22).
        """
        config, state = self.sim.config, self.sim.state
        queue_s, run_s = seconds(found, "queue"), seconds(found, "run")
        queue_s = config.queue_s if queue_s is None else queue_s
        modal_at = self.now if modal_now else (self.now + queue_s if modal else None)
        bot_type = body.get("botType") if body.get("botType") in BOT_TYPES else BOT_TYPES[0]
        task = MjTask(
            id=state.task_ids(state.mj.new_id(state.wall_ms(self.now)))[0],
            action=action,
            result=result,
            prompt=prompt,
            bot_type=parent.bot_type if parent else str(bot_type),
            description=description,
            tl=Timeline(
                created=self.now,
                queue_s=queue_s,
                run_s=config.run_s if run_s is None else run_s,
                will_fail="fail" in found,
                queue_phases=(NOT_START, SUBMITTED) if queued else (SUBMITTED,),
                modal_at=modal_at,
            ),
            hook=HookCursor(_text(body, "notifyHook")),
            public_base=self.base,
            state=body.get("state") if isinstance(body.get("state"), str) else None,
            custom_id=custom_id,
            parent_id=parent.id if parent else None,
            mode=self.mode,
        )
        state.count_create("mj", task.id, action, prompt, self.now, state=task.state)
        return state.mj.add(task)


def banned_word(prompt: str, found: dict[str, str]) -> str | None:
    if found.get("banned"):
        return found["banned"]
    return BANNED_WORD if BANNED_WORD in prompt.lower() else None


def imagine(ctx: Ctx, body: dict[str, Any]) -> JSONResponse:
    prompt = _text(body, "prompt")
    if prompt is None:
        return ctx.relay("prompt_is_required")
    found = find_directives(prompt)
    word = banned_word(prompt, found)
    if word:
        return ctx.fail(24, "banned prompt", {"promptEn": prompt, "bannedWord": word})
    old = ctx.sim.state.mj.finished_imagine(prompt, ctx.now) if ctx.sim.config.mj_dedupe_code21 else None
    if old is not None:
        props = {"status": SUCCESS, "imageUrl": v.grid_url(old, v.media_base(old, ctx.sim.config))}
        return ctx.answer(v.submit_body(21, "Task already exists", old.id, props))
    if ctx.queue_full(found):
        return ctx.fail(23, "Queue is full, please try again later")
    queued = "queued" in found
    modal_wanted = "modal" in found
    task = ctx.new_task("IMAGINE", GRID, prompt, f"/imagine {prompt}", body, found, modal=modal_wanted, queued=queued)
    return ctx.answer(v.accepted(task.id, QUEUE_AHEAD if queued else 0))


def action(ctx: Ctx, body: dict[str, Any]) -> JSONResponse:
    task_id, custom_id = _text(body, "taskId"), _text(body, "customId")
    if task_id is None:
        return ctx.relay("task_id_is_required")
    if custom_id is None:
        return ctx.relay("custom_id_is_required")
    store = ctx.sim.state.mj
    parent = store.tasks.get(task_id)
    if parent is None:
        return ctx.relay("task_no_found")
    if parent.tl.at(ctx.now).status != SUCCESS:
        return ctx.relay("task_status_not_success")
    spec = parse_custom_id(custom_id)
    if spec is None or custom_id not in [b["customId"] for b in buttons_for(parent)]:
        return ctx.fail(4, "invalid customId")
    inherited = {k: val for k, val in find_directives(parent.prompt).items() if k in ("run", "queue")}
    description = f"/up {parent.id} {_LETTER.get(spec.action, spec.action)}{spec.index}"
    if spec.modal:
        task = ctx.new_task(spec.action, spec.result, parent.prompt, description, body, inherited, modal_now=True, parent=parent)
        task.custom_id = custom_id
        waiting = {"finalPrompt": parent.prompt, "remix": True}
        return ctx.answer(v.submit_body(21, "Waiting for window confirm", task.id, waiting), modal=True)
    existing_id = store.by_button.get((parent.id, custom_id)) if ctx.sim.config.mj_dedupe_code21 else None
    if existing_id is not None:
        existing = store.tasks[existing_id]
        props: dict[str, Any] = {"status": existing.tl.at(ctx.now).status}
        if props["status"] == SUCCESS:
            props["imageUrl"] = v.grid_url(existing, v.media_base(existing, ctx.sim.config))
        return ctx.answer(v.submit_body(21, "Task already exists", existing.id, props))
    if ctx.queue_full({}):
        return ctx.fail(23, "Queue is full, please try again later")
    task = ctx.new_task(spec.action, spec.result, parent.prompt, description, body, inherited, parent=parent, custom_id=custom_id)
    store.by_button[(parent.id, custom_id)] = task.id
    return ctx.answer(v.accepted(task.id))


def blend(ctx: Ctx, body: dict[str, Any]) -> JSONResponse:
    images = body.get("base64Array")
    if not isinstance(images, list) or not 2 <= len(images) <= 5 or not all(isinstance(i, str) and i for i in images):
        return ctx.fail(4, "base64Array must hold 2 to 5 images")
    dimensions = body.get("dimensions", "SQUARE")
    if dimensions not in DIMENSIONS:
        return ctx.fail(4, f"dimensions must be one of {', '.join(DIMENSIONS)}")
    received: dict[str, str] = {}
    for i, image in enumerate(images):  # what the relay decoded of each image (tests compare it with what we stored)
        head, sep, data = image.partition(";base64,")
        with contextlib.suppress(ValueError, binascii.Error):  # not base64: taken as the proxy takes it, unchecked
            received[f"base64Array.{i}"] = hashlib.sha256(base64.b64decode(data if sep else head, validate=True)).hexdigest()
    if ctx.queue_full({}):
        return ctx.fail(23, "Queue is full, please try again later")
    task = ctx.new_task("BLEND", GRID, "", f"/blend {len(images)} images --{dimensions.lower()}", body, {})
    task.inputs_sha256 = received
    return ctx.answer(v.accepted(task.id))


def describe(ctx: Ctx, body: dict[str, Any]) -> JSONResponse:
    if _text(body, "base64") is None:
        return ctx.fail(4, "base64 is required")
    if ctx.queue_full({}):
        return ctx.fail(23, "Queue is full, please try again later")
    task = ctx.new_task("DESCRIBE", DESCRIBE, "", "/describe", body, {})
    task.suggestions = describe_suggestions(task.id)
    return ctx.answer(v.accepted(task.id))


def video(ctx: Ctx, body: dict[str, Any]) -> JSONResponse:
    motion = body.get("motion", "low")
    if motion not in ("low", "high"):
        return ctx.fail(4, "motion must be low or high")
    prompt = body.get("prompt") or ""
    if not isinstance(prompt, str):
        return ctx.fail(4, "prompt must be a string")
    parent: MjTask | None = None
    if body.get("action") == "extend":
        parent = ctx.sim.state.mj.tasks.get(str(body.get("taskId") or ""))
        if parent is None:
            return ctx.relay("task_no_found")
        if parent.result != VIDEO or parent.tl.at(ctx.now).status != SUCCESS:
            return ctx.relay("task_status_not_success")
        index = body.get("index", 0)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= 3:
            return ctx.fail(4, "index must be 0-3")
    elif body.get("action") is not None:
        return ctx.fail(4, "unsupported video action")
    elif _text(body, "image") is None:
        return ctx.fail(4, "image is required")
    found = find_directives(prompt)
    word = banned_word(prompt, found)
    if word:
        return ctx.fail(24, "banned prompt", {"promptEn": prompt, "bannedWord": word})
    if ctx.queue_full(found):
        return ctx.fail(23, "Queue is full, please try again later")
    kind = "extend" if parent else "video"
    task = ctx.new_task("VIDEO", VIDEO, prompt, f"/{kind} --motion {motion}", body, found, parent=parent)
    return ctx.answer(v.accepted(task.id))


def modal(ctx: Ctx, body: dict[str, Any]) -> JSONResponse:
    task_id = _text(body, "taskId")
    if task_id is None:
        return ctx.relay("task_id_is_required")
    task = ctx.sim.state.mj.tasks.get(task_id)
    if task is None:
        return ctx.relay("task_no_found")
    if task.tl.at(ctx.now).status != MODAL:
        return ctx.fail(4, "task status is not MODAL")
    prompt = _text(body, "prompt")
    if prompt is not None:
        task.prompt = prompt
        found = find_directives(prompt)
        task.tl.will_fail = task.tl.will_fail or "fail" in found
        run_s = seconds(found, "run")
        task.tl.run_s = task.tl.run_s if run_s is None else run_s
    if isinstance(body.get("maskBase64"), str):
        task.mask_base64 = body["maskBase64"]
    task.tl.resume_at = ctx.now
    return ctx.answer(v.submit_body(1, "Submit success", task.id, dict(v.INSTANCE)))


def upload(ctx: Ctx, body: dict[str, Any]) -> JSONResponse:
    images = body.get("base64Array")
    if not isinstance(images, list) or not images or not all(isinstance(i, str) and i for i in images):
        return ctx.fail(4, "base64Array is required")
    ctx.sim.state.mj.uploads += 1
    tag = uuid.uuid4().hex[:12]
    urls = [f"{ctx.base}/_sim/media/upload-{tag}_{i}.png" for i in range(len(images))]
    return ctx.answer(v.submit_body(1, "success", urls))


SUBMITS: dict[str, Callable[[Ctx, dict[str, Any]], JSONResponse]] = {
    "imagine": imagine,
    "action": action,
    "blend": blend,
    "describe": describe,
    "video": video,
    "modal": modal,
    "upload-discord-images": upload,
}
