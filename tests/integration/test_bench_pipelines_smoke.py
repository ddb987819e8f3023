"""bench/pipelines.py in its small form, on the database of the run, so the script cannot rot: 50
three-step pipelines accepted in one batch (every item reference bound to its job), every timed
parent's child queued by the parent's own transaction, and the children a crash left waiting queued by
the tick's sweep."""

from __future__ import annotations

import pytest

from bench import pipelines as bench


def test_bench_pipelines_small_form(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = bench.parse_args(["--pipelines", "50", "--finish", "20", "--crash", "10"])
    figures = bench.run(db_url, args)
    assert figures["finished"] == 20 and figures["tick_settled"] == 10
    assert figures["accept_s"] < 5 and figures["queue_p99_s"] < 2
