"""Midjourney (midjourney-proxy format) task model: tasks, buttons, customIds.

`MjTask` holds what a submit asked for plus a `Timeline`; `MjStore` is the
registry kept in `SimState.mj`. Button customIds follow Discord's
`MJ::JOB::<verb>::<index>::<hash>[::SOLO]`, `MJ::Outpaint::...`,
`MJ::CustomZoom::<hash>`, `MJ::Inpaint::...` (providers.md §3.1).
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from simulator.timeline import SUCCESS, HookCursor, Timeline

# Result shapes.
GRID, SINGLE, DESCRIBE, VIDEO = "grid", "single", "describe", "video"
MODES = ("mj-fast", "mj-relax", "mj-turbo", "fast", "relax", "turbo")
BOT_TYPES = ("MID_JOURNEY", "NIJI_JOURNEY")
FAIL_REASON = "Request cancelled due to output filters"
BANNED_WORD = "bannedword"
_NS = uuid.UUID("6f1c2d1e-8a31-4c55-9d0e-5b3c0a7e2f10")


@dataclass
class MjTask:
    """One simulated Midjourney job (times on the monotonic clock)."""

    id: str
    action: str  # IMAGINE, UPSCALE, VARIATION, ...
    result: str  # GRID / SINGLE / DESCRIBE / VIDEO
    prompt: str
    bot_type: str
    description: str
    tl: Timeline
    hook: HookCursor
    public_base: str
    state: str | None = None
    custom_id: str = ""
    parent_id: str | None = None
    mode: str = ""
    mask_base64: str = ""
    suggestions: list[str] = field(default_factory=list)  # DESCRIBE results
    inputs_sha256: dict[str, str] = field(default_factory=dict)  # "base64Array.0" -> sha256 of the decoded image (blend)

    @property
    def message_hash(self) -> str:
        return str(uuid.uuid5(_NS, self.id))

    @property
    def seed(self) -> int:
        return int(hashlib.sha256(self.id.encode()).hexdigest()[:8], 16)


def _button(custom_id: str, label: str = "", emoji: str = "", style: int = 2) -> dict[str, Any]:
    return {"customId": custom_id, "emoji": emoji, "label": label, "type": 2, "style": style}


def grid_buttons(h: str) -> list[dict[str, Any]]:
    """U1..U4, 🔄, V1..V4 as on a finished 2x2 grid."""
    ups = [_button(f"MJ::JOB::upsample::{i}::{h}", f"U{i}") for i in range(1, 5)]
    reroll = [_button(f"MJ::JOB::reroll::0::{h}::SOLO", "", "🔄")]
    variations = [_button(f"MJ::JOB::variation::{i}::{h}", f"V{i}") for i in range(1, 5)]
    return ups + reroll + variations


def upscale_buttons(h: str) -> list[dict[str, Any]]:
    """Buttons under an upscaled image (v6 style)."""
    return [
        _button(f"MJ::JOB::upsample_v6_2x_subtle::1::{h}::SOLO", "Upscale (Subtle)", "⬆️"),
        _button(f"MJ::JOB::upsample_v6_2x_creative::1::{h}::SOLO", "Upscale (Creative)", "⬆️"),
        _button(f"MJ::JOB::low_variation::1::{h}::SOLO", "Vary (Subtle)", "🪄"),
        _button(f"MJ::JOB::high_variation::1::{h}::SOLO", "Vary (Strong)", "🪄"),
        _button(f"MJ::Inpaint::1::{h}::SOLO", "Vary (Region)", "🖌️"),
        _button(f"MJ::Outpaint::50::1::{h}::SOLO", "Zoom Out 2x", "🔍"),
        _button(f"MJ::Outpaint::75::1::{h}::SOLO", "Zoom Out 1.5x", "🔍"),
        _button(f"MJ::CustomZoom::{h}", "Custom Zoom", "🔍"),
        _button(f"MJ::JOB::pan_left::1::{h}::SOLO", "", "⬅️"),
        _button(f"MJ::JOB::pan_right::1::{h}::SOLO", "", "➡️"),
        _button(f"MJ::JOB::pan_up::1::{h}::SOLO", "", "⬆️"),
        _button(f"MJ::JOB::pan_down::1::{h}::SOLO", "", "⬇️"),
    ]


def buttons_for(task: MjTask) -> list[dict[str, Any]]:
    """Buttons of a finished task (empty for describe and video results)."""
    if task.result == GRID:
        return grid_buttons(task.message_hash)
    if task.result == SINGLE:
        return upscale_buttons(task.message_hash)
    return []


@dataclass(frozen=True)
class ActionSpec:
    """What pressing a button creates."""

    action: str
    result: str
    index: int
    modal: bool = False  # parks in MODAL, answered with code 21


def parse_custom_id(custom_id: str) -> ActionSpec | None:
    """Decode a button customId (None: not an action this simulator knows)."""
    parts = custom_id.split("::")
    if len(parts) < 3 or parts[0] != "MJ":
        return None
    kind = parts[1]
    if kind == "Inpaint":
        return ActionSpec("INPAINT", GRID, 1, modal=True)
    if kind == "CustomZoom":
        return ActionSpec("CUSTOM_ZOOM", GRID, 1, modal=True)
    if kind == "Outpaint":
        return ActionSpec("ZOOM", GRID, 1)
    if kind != "JOB" or len(parts) < 5:
        return None
    verb = parts[2]
    try:
        index = int(parts[3])
    except ValueError:
        return None
    if verb.startswith("upsample") and verb != "upsample":
        return ActionSpec("UPSCALE", SINGLE, index)  # upscale of an upscale (subtle/creative)
    table = {
        "upsample": ("UPSCALE", SINGLE),
        "variation": ("VARIATION", GRID),
        "low_variation": ("LOW_VARIATION", GRID),
        "high_variation": ("HIGH_VARIATION", GRID),
        "reroll": ("REROLL", GRID),
    }
    if verb in table:
        action, result = table[verb]
        return ActionSpec(action, result, index)
    if verb.startswith("pan_"):
        return ActionSpec("PAN", GRID, index)
    return None


def describe_suggestions(task_id: str) -> list[str]:
    """Four deterministic describe suggestions, numbered like Midjourney's (1️⃣ ... 4️⃣)."""
    rng = random.Random(task_id)
    subjects = ["a gradient square", "an abstract color field", "a minimalist poster", "a soft blurred backdrop"]
    styles = ["in the style of color field painting", "pastel tones", "digital art", "studio lighting"]
    marks = ["1️⃣", "2️⃣", "3️⃣", "4️⃣"]
    return [f"{mark} {subjects[i]}, {rng.choice(styles)}, {rng.choice(styles)} --ar 1:1" for i, mark in enumerate(marks)]


class MjStore:
    """All Midjourney tasks plus submit-code counters."""

    def __init__(self) -> None:
        self.tasks: dict[str, MjTask] = {}
        self.by_button: dict[tuple[str, str], str] = {}  # (parent id, customId) -> child id
        self.codes: Counter[str] = Counter()  # submit answers by code
        self.uploads = 0

    def new_id(self, wall_ms: int) -> str:
        """midjourney-proxy style id: epoch milliseconds + 3 random digits."""
        while True:
            candidate = f"{wall_ms}{random.randint(0, 999):03d}"
            if candidate not in self.tasks:
                return candidate

    def add(self, task: MjTask) -> MjTask:
        self.tasks[task.id] = task
        return task

    def finished_imagine(self, prompt: str, now: float) -> MjTask | None:
        """An IMAGINE task with exactly this prompt that is SUCCESS at `now`."""
        for task in self.tasks.values():
            if task.action == "IMAGINE" and task.prompt == prompt and task.tl.at(now).status == SUCCESS:
                return task
        return None
