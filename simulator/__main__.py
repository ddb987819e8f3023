"""Command line: `python -m simulator --port 9100 [--envelope newapi] ...` (uvicorn)."""

from __future__ import annotations

import argparse
import logging

import uvicorn

from simulator.app import create_app
from simulator.config import ENVELOPES, SimConfig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m simulator",
        description="Fake Key4U relay (Kling, Midjourney, Suno, Sora/Veo/Grok video, Replicate and fal endpoints).",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9100)
    p.add_argument("--envelope", choices=ENVELOPES, default="native")
    p.add_argument("--queue-s", type=float, default=0.5)
    p.add_argument("--run-s", type=float, default=2.0)
    p.add_argument("--api-key", default=None, help="accept only this bearer key (default: any non-empty key)")
    p.add_argument("--legacy-result-in-fail-reason", action="store_true")
    p.add_argument("--no-callbacks", action="store_true")
    p.add_argument("--callback-duplicates", type=int, default=0)
    p.add_argument("--callback-reorder", action="store_true")
    p.add_argument("--slow-media-s", type=float, default=0.0)
    p.add_argument("--public-base", default=None, help="base URL put into result links")
    p.add_argument("--no-mj-list", action="store_true", help="POST /mj/task/list-by-condition answers 404")
    p.add_argument("--no-mj-dedupe", action="store_true", help="never answer code 21 for a repeated imagine")
    p.add_argument("--mj-newapi-codes", action="store_true", help="rewrite MJ submit codes 22/21 to 1 like new-api")
    p.add_argument("--no-suno-batch", action="store_true", help="POST /suno/fetch answers 404")
    p.add_argument("--suno-notify", action="store_true", help="POST Suno task objects to notify_hook")
    p.add_argument("--log-level", default="info")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for name in ("httpx", "httpcore"):  # their INFO lines are whole callback URLs, tokens included
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
    config = SimConfig(
        envelope=args.envelope,
        queue_s=args.queue_s,
        run_s=args.run_s,
        api_key=args.api_key,
        legacy_result_in_fail_reason=args.legacy_result_in_fail_reason,
        callbacks_enabled=not args.no_callbacks,
        callback_duplicates=args.callback_duplicates,
        callback_reorder=args.callback_reorder,
        slow_media_s=args.slow_media_s,
        public_base=args.public_base,
        mj_list_enabled=not args.no_mj_list,
        mj_dedupe_code21=not args.no_mj_dedupe,
        mj_newapi_codes=args.mj_newapi_codes,
        suno_batch_enabled=not args.no_suno_batch,
        suno_notify_enabled=args.suno_notify,
    )
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level=args.log_level.lower())


if __name__ == "__main__":
    main()
