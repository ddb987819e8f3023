"""Suno (Suno-API "Plato" format) task model; the response bodies are in `simulator.suno_views`.

A MUSIC task makes two clips. Clip status follows the task: `submitted` /
`queued` while the task is SUBMITTED / QUEUED, `streaming` (temporary
`/_sim/media/stream/{clip}.mp3` audio) while IN_PROGRESS, then `complete`
(`/_sim/media/{clip}.mp3`, `.jpeg`, `.mp4`) or `error`. A LYRICS task's
`data` is `{id, text, title, status}` once done. See providers.md §7.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field

from simulator.codecs import mp3_duration_s
from simulator.media import MP3_BYTES
from simulator.timeline import HookCursor, Timeline, strip_directives

MUSIC, LYRICS = "MUSIC", "LYRICS"
DEFAULT_MV = "chirp-v3-0"
FAIL_REASON = "Unable to generate: content flagged by moderation"
CLIP_FAIL = "clip generation failed"
MAJOR_VERSION = {
    "chirp-v3-0": "v3",
    "chirp-v3-5": "v3.5",
    "chirp-v4": "v4",
    "chirp-auk": "v4.5",
    "chirp-auk-turbo": "v4.5",
    "chirp-bluejay": "v4.5+",
    "chirp-crow": "v5",
    "chirp-fenix": "v5.5",
}
CLIP_DURATION_S = round(mp3_duration_s(MP3_BYTES), 2)


@dataclass
class SunoClip:
    id: str
    title: str
    tags: str
    lyrics: str
    fails: bool = False  # ends `error` while its sibling completes ([sim:clipfail])


@dataclass
class SunoTask:
    """One simulated Suno task (MUSIC: 2 clips; LYRICS: one text)."""

    id: str
    action: str
    tl: Timeline
    hook: HookCursor
    public_base: str
    mv: str = DEFAULT_MV
    gpt_description_prompt: str | None = None
    negative_tags: str = ""
    title: str = ""
    lyrics: str = ""
    continue_clip_id: str | None = None
    continue_at: float | None = None
    clips: list[SunoClip] = field(default_factory=list)


class SunoStore:
    """All Suno tasks plus submit-answer counters."""

    def __init__(self) -> None:
        self.tasks: dict[str, SunoTask] = {}
        self.codes: Counter[str] = Counter()


def title_from(text: str) -> str:
    words = strip_directives(text).split()[:4]
    return " ".join(w.capitalize() for w in words) or "Untitled"


def lyrics_from(text: str) -> str:
    line = strip_directives(text) or "la la la"
    return f"[Verse]\n{line}\n{line}\n\n[Chorus]\nSing it out, {line}\n"


def new_id() -> str:
    return str(uuid.uuid4())
