"""Key4U relay simulator: a standalone fake of the relay's Kling (style A),
Midjourney (midjourney-proxy), Suno (Suno-API) and Sora / Veo / Grok video endpoints
(unified `/v1/video/*` and OpenAI `/v1/videos*` formats), plus the Replicate
(`/replicate/v1/...`, Standard-Webhooks-signed webhooks) and fal queue (`/fal-ai/...`,
Ed25519-signed webhooks, JWKS at `/_sim/fal/jwks.json`) passthrough routes.

Independent oracle for tests and demos; imports nothing from the rest of the
project. Entry points: `create_app(config)` and `python -m simulator --port 9100`.
"""

from __future__ import annotations

from simulator.app import create_app
from simulator.config import Faults, SimConfig

__all__ = ["Faults", "SimConfig", "create_app"]
