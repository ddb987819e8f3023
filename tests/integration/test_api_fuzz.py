"""Property-based fuzz of the published OpenAPI (schemathesis): values that fit the schema and
values that do not, NUL bytes included, for every operation, against the app in-process on SQLite
and PostgreSQL. No answer may be a 5xx. A fixed seed and a bounded number of examples keep it
reproducible and quick (schemathesis's lazy pytest loader does not run on pytest 9, so each
operation's strategy is driven by hypothesis directly)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings, strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode

from api.main import create_app
from models.schemas import JobCreate
from tests.conftest import make_settings
from workers.dispatch import RecordingDispatcher
from workers.services.create import create_job
from workers.settings import Settings

SEED = 20261201
MAX_EXAMPLES = 30


def _cases() -> list[tuple[str, str, GenerationMode]]:
    """Every operation with valid values; and with invalid ones where the schema constrains something
    (a body, or a parameter that is not any string), since otherwise no value can be invalid."""
    app = create_app(Settings(database_url="sqlite:///:memory:", storage_url="memory://"), dispatcher=RecordingDispatcher())
    cases = []
    for path, methods in app.openapi()["paths"].items():
        for method, op in methods.items():
            cases.append((method.upper(), path, GenerationMode.POSITIVE))
            constrained = [p for p in op.get("parameters", []) if set(p["schema"]) - {"type", "title"} or p["schema"].get("type") != "string"]
            if "requestBody" in op or constrained:
                cases.append((method.upper(), path, GenerationMode.NEGATIVE))
    return cases


CASES = _cases()


@pytest.fixture
def api_schema(db_url: str, redis_url: str, tmp_path: Path) -> Any:
    # Open API (no K4U_API_TOKENS) so generated requests reach validation rather than stop at 401;
    # private URLs allowed so a generated callback_url is never resolved through DNS; a real Redis
    # so /readyz is ready (it answers 503 by design when the broker is down). K4U_ALLOW_OPEN_API: the
    # in-process client is neither a loopback address nor under a loopback Host (api.openmode).
    settings = make_settings(db_url, "http://127.0.0.1:9", tmp_path, redis_url=redis_url, allow_open_api=True)
    app = create_app(settings, dispatcher=RecordingDispatcher())
    for i in range(3):  # a few jobs, so listing and paging run real queries
        create_job(app.state.runtime, JobCreate(provider="kling", operation="text2video", input={"prompt": f"fox {i}"}, metadata={"row": i}, batch_id="b1"))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    schema.config.generation.update(allow_x00=True)
    return schema


@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=[f"{m} {p} {'valid' if g == GenerationMode.POSITIVE else 'invalid'}" for m, p, g in CASES])
def test_no_request_gets_a_server_error(api_schema: Any, method: str, path: str, mode: GenerationMode) -> None:
    operation = api_schema[path][method]

    @seed(SEED)
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        case.call_and_validate(checks=[not_a_server_error])

    run()


def _string_params() -> list[tuple[str, str, str, str]]:
    app = create_app(Settings(database_url="sqlite:///:memory:", storage_url="memory://"), dispatcher=RecordingDispatcher())
    return [
        (method.upper(), path, p["in"], p["name"])
        for path, methods in app.openapi()["paths"].items()
        for method, op in methods.items()
        for p in op.get("parameters", [])
        if p["in"] in ("path", "query") and "string" in str(p["schema"])
    ]


STRING_PARAMS = _string_params()


@pytest.mark.parametrize(("method", "path", "where", "name"), STRING_PARAMS, ids=[f"{m} {p} {n}" for m, p, _, n in STRING_PARAMS])
def test_nul_in_any_string_parameter_is_a_4xx(api_schema: Any, method: str, path: str, where: str, name: str) -> None:
    """Random generation rarely draws a NUL byte, and PostgreSQL refuses them in text: put one in."""
    operation = api_schema[path][method]
    with_nul = st.tuples(st.text(max_size=12), st.text(max_size=12)).map(lambda ab: f"{ab[0]}\x00{ab[1]}")

    @seed(SEED)
    @settings(max_examples=10, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE), value=with_nul)
    def run(case: Any, value: str) -> None:
        if where == "path":
            case.path_parameters = {**(case.path_parameters or {}), name: value}
        else:
            case.query = {**(case.query or {}), name: value}
        response = case.call()
        assert 400 <= response.status_code < 500, (case.method, case.formatted_path, value, response.status_code)

    run()
