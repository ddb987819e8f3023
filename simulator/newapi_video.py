"""Generic new-api video tasks: any model stock new-api routes (Wan, Hailuo, Jimeng, Seedance, Kling,
Vidu...), their status words and answer bodies. Routes: `simulator.newapi_routes`
(`/v1/video/generations`), and `simulator.video_routes`, which hands `POST /v1/videos` of a model
that is not Sora, Veo or Grok here.

Tasks are `GenericTask`s in the video store (`SimState.video`, API `openai`), so the OpenAI routes
serve them as well: `GET /v1/videos/{id}` (answered by `query_body`), `/v1/videos/{id}/content` and
`/_sim/media/video/{key}.mp4` (the bytes, with every quirk of `simulator.video`). Both routes answer
for a task whichever route made it, as new-api's one task table does. Creates are paid (ledger
family `video`, kind `newapi/<route>`).

Prompt directives, besides the video ones (`fail`, `reject`, `queue=S`, `run=S`, `expire=S`,
`blocked`, `content_502=N`, `content_redirect`, `size=N`, `cut_at=K`, `no_range`):
- `vocab=dto|object|flat`: the answer's shape on both routes. Default: the task DTO in new-api's
  `{code, message, data}` envelope on `/v1/video/generations/{id}` (`NOT_START`, `SUBMITTED`,
  `QUEUED`, `IN_PROGRESS`, `SUCCESS`, `FAILURE`; `progress:"45%"`, `fail_reason`, a numeric row
  `id` beside `task_id`, the vendor's answer in `data`), the OpenAI video object on `/v1/videos/{id}`
  (`queued`, `in_progress`, `completed`, `failed`; `error{message}`); `flat` is new-api docs'
  `{task_id, status: queued|processing|succeeded|failed, url, format, metadata, error}`.
- `url=result_url|metadata|video_url|url|data|proxy|none`: where a finished task's URL is. Default:
  `result_url` (dto), `metadata` (`metadata.url`, object), `url` (flat). `data` puts it only in the
  vendor's answer (`data.output.video_url`; with `vocab=object` or `flat` that answer is added as
  `data`); `proxy` is new-api's own content route as an absolute URL (`{base}/v1/videos/{id}/content`,
  which wants the key) in `result_url` / `metadata.url`; `none` gives no URL anywhere.
- `word=WORD`: the running phase shows WORD instead (a status nobody documents).
- `no_channel`: the create answers 503 "no available channel for model … under group default":
  nothing is made or paid. `SimConfig.unrouted_models` (comma-separated model names, `*` for every
  model served here) does the same for whole models and can be changed at runtime.
The vendor's answer (`data`) always echoes an input image (`input.img_url`) and, once done, a cover
image (`output.cover_image_url`): a client must not take either for the video.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from simulator.timeline import directives
from simulator.video import DONE, FAIL_REASON, FAILED, OPENAI, QUEUED, RUNNING, VideoTask, plan_of
from simulator.video_views import media_url

if TYPE_CHECKING:
    from simulator.config import SimConfig
    from simulator.state import SimState

GENERATIONS, VIDEOS = "generations", "videos"
FAMILY = "newapi"
VOCABS = ("dto", "object", "flat")
PLACES = ("result_url", "metadata", "video_url", "url", "data", "proxy", "none")
DEFAULT_PLACE = {"dto": "result_url", "object": "metadata", "flat": "url"}
DTO_WORDS = {RUNNING: "IN_PROGRESS", DONE: "SUCCESS", FAILED: "FAILURE"}
OBJECT_WORDS = {QUEUED: "queued", RUNNING: "in_progress", DONE: "completed", FAILED: "failed"}
FLAT_WORDS = {QUEUED: "queued", RUNNING: "processing", DONE: "succeeded", FAILED: "failed"}
NATIVE_WORDS = {QUEUED: "PENDING", RUNNING: "RUNNING", DONE: "SUCCEEDED", FAILED: "FAILED"}
IMAGE_KEYS = ("image", "input_reference", "first_frame_image")


@dataclass
class GenericTask(VideoTask):
    """A video task of any model new-api routes; `vocab` / `place` None: the route's default."""

    route: str = GENERATIONS
    vocab: str | None = None
    place: str | None = None
    word: str | None = None
    row: int = 0  # the relay's database row number (the DTO's numeric `id`)
    image: str | None = None  # an input image, echoed in the vendor's answer


def no_channel(model: str) -> str:
    return f"no available channel for model {model} under group default"


def unrouted(config: SimConfig, model: str, prompt: str) -> bool:
    """The relay has no channel for this model now (`[sim:no_channel]`, `unrouted_models`)."""
    names = {n.strip() for n in config.unrouted_models.split(",") if n.strip()}
    return "no_channel" in directives(prompt) or "*" in names or model in names


def input_image(fields: dict[str, Any]) -> str | None:
    meta = fields.get("metadata")
    images = fields.get("images")
    found = [fields.get(k) for k in IMAGE_KEYS] + (images[:1] if isinstance(images, list) else [])
    if isinstance(meta, dict):
        found += [meta.get("img_url"), meta.get("first_frame_url"), meta.get("image_url")]
    return next((v for v in found if isinstance(v, str) and v), None)


def new_task(state: SimState, config: SimConfig, base: str, route: str, model: str, prompt: str, params: dict[str, Any]) -> GenericTask:
    """Make (and bill) a task created through `route`."""
    plan, store, now = plan_of(prompt, OPENAI), state.video, state.now()
    found = directives(prompt)
    task = GenericTask(
        id=store.new_openai_id(),
        api=OPENAI,
        family=FAMILY,
        model=model,
        prompt=prompt,
        created=now,
        queue_s=config.queue_s if plan.queue_s is None else plan.queue_s,
        run_s=config.run_s if plan.run_s is None else plan.run_s,
        plan=plan,
        public_base=base,
        params=params,
        route=route,
        vocab=found.get("vocab") if found.get("vocab") in VOCABS else None,
        place=found.get("url") if found.get("url") in PLACES else None,
        word=found.get("word") or None,
        row=4000 + len(store.tasks),
        image=input_image(params),
    )
    store.add(task)
    state.count_create("video", task.id, f"newapi/{route}", prompt, now)
    return task


def submit_body(task: GenericTask, state: SimState) -> dict[str, Any]:
    """What both creates answer: new-api's video object with the public task id."""
    return {
        "id": task.id,
        "task_id": task.id,
        "object": "video",
        "model": task.model,
        "status": "queued",
        "progress": 0,
        "created_at": state.wall_s(task.created),
    }


def _word(task: GenericTask, vocab: str, now: float) -> str:
    phase = task.phase_at(now)
    if phase == RUNNING and task.word:
        return task.word
    if vocab == "dto":
        if phase == QUEUED:  # NOT_START, then SUBMITTED, then QUEUED, each a third of the queue time
            third = int(3 * (now - task.created) / task.queue_s) if task.queue_s else 2
            return ("NOT_START", "SUBMITTED", "QUEUED")[max(0, min(2, third))]
        return DTO_WORDS[phase]
    return (OBJECT_WORDS if vocab == "object" else FLAT_WORDS)[phase]


def _native(task: GenericTask, state: SimState, now: float, url: str | None, base: str) -> dict[str, Any]:
    """The vendor's own answer as new-api keeps it in the task's `data` (Wan-like)."""
    phase = task.phase_at(now)
    output: dict[str, Any] = {"task_id": "up-" + task.id[5:21], "task_status": NATIVE_WORDS[phase]}
    if phase == DONE:
        output["cover_image_url"] = f"{base}/_sim/media/cover-{task.media_key}_0.png"
        if url:
            output["video_url"] = url
    if phase == FAILED:
        output["message"] = FAIL_REASON
    body: dict[str, Any] = {"request_id": "req-" + task.id[5:17], "output": output, "usage": {"video_count": 1, "duration": task.params.get("duration") or 5}}
    if task.image:
        body["input"] = {"img_url": task.image, "prompt": task.prompt}
    return body


def query_body(task: GenericTask, state: SimState, now: float, base: str, route: str) -> dict[str, Any]:
    """The answer to `GET /v1/video/generations/{id}` (route generations) or `GET /v1/videos/{id}`."""
    vocab = task.vocab or ("dto" if route == GENERATIONS else "object")
    place = task.place or DEFAULT_PLACE[vocab]
    phase, word = task.phase_at(now), _word(task, vocab, now)
    done = phase == DONE
    url = f"{base}/v1/videos/{task.id}/content" if place == "proxy" else media_url(task, base)
    native = _native(task, state, now, url if done and place == "data" else None, base)
    body: dict[str, Any]
    if vocab == "dto":
        body = {
            "id": task.row,
            "task_id": task.id,
            "platform": "17",
            "action": "generate",
            "status": word,
            "fail_reason": FAIL_REASON if phase == FAILED else "",
            "submit_time": state.wall_s(task.created),
            "start_time": state.wall_s(task.started) if phase != QUEUED else 0,
            "finish_time": state.wall_s(task.finished) if phase in (DONE, FAILED) else 0,
            "progress": f"{task.progress_at(now)}%",
            "properties": {"origin_model_name": task.model},
            "data": native,
        }
    elif vocab == "object":
        body = {
            "id": task.id,
            "task_id": task.id,
            "object": "video",
            "model": task.model,
            "status": word,
            "progress": task.progress_at(now),
            "created_at": state.wall_s(task.created),
            "completed_at": state.wall_s(task.finished) if done else None,
            "seconds": str(task.params.get("seconds") or task.params.get("duration") or "5"),
            "size": str(task.params.get("size") or "1280*720"),
            "error": {"code": "generation_failed", "message": FAIL_REASON} if phase == FAILED else None,
            "metadata": {},
        }
    else:
        body = {"task_id": task.id, "status": word, "format": "mp4", "metadata": {}, "error": FAIL_REASON if phase == FAILED else None, "url": None}
    if vocab != "dto" and place == "data":
        body["data"] = native
    if done and place in ("result_url", "video_url", "url"):
        body[place] = url
    elif done and place in ("metadata", "proxy"):
        if vocab == "dto" and place == "proxy":
            body["result_url"] = url
        else:
            body["metadata"] = {"url": url}
    return {"code": "success", "message": "", "data": body} if vocab == "dto" else body
