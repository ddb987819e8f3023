"""The OpenAPI 3.0.3 document of /v1/tools, written by hand for tool platforms and the models in them.

Coze imports OpenAPI 3.0.x (its parser is kin-openapi), wants object request bodies, scalar query and
header parameters, and shows only declared response fields; Dify turns each operationId into a
tool whose description a model reads to choose it. So: three operations, every field declared
(nullable where it can be null, 3.0 style), and descriptions that say when to call which. The
providers and operations named come from the registry (the shipped examples are regenerated when
a family is added).
"""

from __future__ import annotations

from typing import Any

from providers.registry import ADAPTERS

WAIT_MAX_S = 50.0

_ERROR = {
    "type": "object",
    "nullable": True,
    "description": "Why the call did not succeed; null when ok is true.",
    "properties": {
        "code": {"type": "string", "description": "invalid_request, unauthorized, not_found, idempotency_conflict or unavailable"},
        "message": {"type": "string", "description": "What went wrong, for a person."},
        "field": {"type": "string", "nullable": True, "description": "The request field at fault, if any (e.g. input.prompt)."},
        "retryable": {"type": "boolean", "description": "True when the same call may succeed a little later."},
    },
    "required": ["code", "message", "field", "retryable"],
}

_JOB = {
    "type": "object",
    "nullable": True,
    "description": "The job; null when ok is false.",
    "properties": {
        "job_id": {"type": "string", "description": "Pass this to get_job_status or wait_for_job."},
        "provider": {"type": "string"},
        "operation": {"type": "string"},
        "status": {"type": "string", "description": "queued, submitting, running, downloading, succeeded, failed or cancelled."},
        "done": {"type": "boolean", "description": "True once the job is succeeded, failed or cancelled: stop polling."},
        "progress": {"type": "integer", "description": "0-100."},
        "result_url": {"type": "string", "nullable": True, "description": "The first stored result file (needs the same API token), null until succeeded."},
        "result_urls": {"type": "array", "items": {"type": "string"}, "description": "Every stored result file, in order."},
        "result_kinds": {"type": "array", "items": {"type": "string"}, "description": "video, image, audio or file, for each result URL."},
        "result_sha256": {"type": "array", "items": {"type": "string"}, "description": "The sha256 of each stored file."},
        "error_code": {"type": "string", "nullable": True, "description": "Why the job failed (e.g. provider_failed, timeout), null otherwise."},
        "error_message": {"type": "string", "nullable": True},
        "status_url": {"type": "string", "description": "The job in the full API."},
        "created_at": {"type": "string", "format": "date-time"},
        "finished_at": {"type": "string", "format": "date-time", "nullable": True},
    },
    "required": [
        "job_id",
        "provider",
        "operation",
        "status",
        "done",
        "progress",
        "result_url",
        "result_urls",
        "result_kinds",
        "result_sha256",
        "error_code",
        "error_message",
        "status_url",
        "created_at",
        "finished_at",
    ],
}

_RESULT = {
    "description": "Always HTTP 200: read ok, then job or error.",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"ok": {"type": "boolean", "description": "True when the call did what was asked."}, "job": _JOB, "error": _ERROR},
                "required": ["ok", "job", "error"],
            }
        }
    },
}

_JOB_ID = {"name": "job_id", "in": "query", "required": True, "schema": {"type": "string"}, "description": "The job_id that submit_generation_job returned."}


def _providers() -> str:
    """The registry's provider names, for a person: "a, b or c"."""
    names = list(ADAPTERS)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def _first_operations() -> str:
    """Each provider's default (first) operation, once each, in registry order."""
    return ", ".join(dict.fromkeys(next(iter(a.operations)) for a in ADAPTERS.values()))


def tools_document(server_url: str) -> dict[str, Any]:
    example = next(iter(ADAPTERS.values()))
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Key4U Jobs tools",
            "version": "1.0.0",
            "description": "Start AI generation jobs (video, image, music) on the Key4U relay and get their stored results. "
            "A generation takes from seconds to many minutes: submit once, then wait or check status with the job_id.",
        },
        "servers": [{"url": server_url}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "The Key4U Jobs API token (K4U_API_TOKENS)."}}},
        "security": [{"bearer": []}],
        "paths": {
            "/v1/tools/submit": {
                "post": {
                    "operationId": "submit_generation_job",
                    "summary": "Start a generation job",
                    "description": f"Start one AI generation (e.g. provider {example.name}, operation {next(iter(example.operations))}, "
                    'input {"prompt": "..."}). '
                    "Returns at once with a job_id; the result is not ready yet. Call wait_for_job next. "
                    "Call this once per wanted result: every call starts a new paid job unless idempotency_key repeats.",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "provider": {"type": "string", "description": f"{_providers()}."},
                                        "operation": {"type": "string", "description": f"e.g. {_first_operations()}; omit for the provider's first."},
                                        "input": {
                                            "type": "string",
                                            "description": "The generation's parameters as a JSON object in a string, "
                                            'e.g. {"prompt": "a red fox in snow"}. An object is accepted too.',
                                        },
                                        "idempotency_key": {"type": "string", "description": "Optional: the same key never starts a second job."},
                                        "callback_url": {"type": "string", "description": "Optional: where to POST the finished job."},
                                    },
                                    "required": ["provider", "input"],
                                }
                            }
                        },
                    },
                    "responses": {"200": _RESULT},
                }
            },
            "/v1/tools/status": {
                "get": {
                    "operationId": "get_job_status",
                    "summary": "Look at a job now",
                    "description": "The job's current status and, once done, its result URLs. Answers at once.",
                    "parameters": [_JOB_ID],
                    "responses": {"200": _RESULT},
                }
            },
            "/v1/tools/wait": {
                "get": {
                    "operationId": "wait_for_job",
                    "summary": "Wait for a job to finish (up to 50 s)",
                    "description": "Holds the call until the job is done or `seconds` pass (at most 50), then returns the job. "
                    "If job.done is false, call wait_for_job again with the same job_id.",
                    "parameters": [
                        _JOB_ID,
                        {
                            "name": "seconds",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 0, "maximum": int(WAIT_MAX_S), "default": int(WAIT_MAX_S)},
                            "description": "Longest wait in seconds, 0-50.",
                        },
                    ],
                    "responses": {"200": _RESULT},
                }
            },
        },
    }


if __name__ == "__main__":  # python -m api.tools_openapi: regenerate the shipped examples (after a family is added)
    import json
    from pathlib import Path

    for example in sorted(Path(__file__).resolve().parents[1].glob("examples/*/key4u-jobs-tools.openapi.json")):
        example.write_text(json.dumps(tools_document("https://jobs.example.com"), indent=2, ensure_ascii=False) + "\n")
