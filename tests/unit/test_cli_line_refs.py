"""`k4u batch` line references: `k4u://lines/<line>/assets/<index>` checked with the file (an earlier
line that is a job, in JSONL and CSV numbering) and translated when a chunk is sent (a line of the
same POST /v1/batches -> `k4u://items/<i>/...`, a line of an earlier chunk -> `k4u://jobs/<id>/...`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cli import batch_command
from cli.api_client import CliError
from cli.batch_command import Run
from cli.batch_file import BatchFileError, Line, read_batch
from cli.line_refs import translate

MJ = {"provider": "midjourney", "operation": "imagine", "input": {"prompt": "a red fox"}}


def i2v(image: str, prompt: str = "it runs") -> dict[str, Any]:
    return {"provider": "kling", "operation": "image2video", "input": {"prompt": prompt, "image": image}}


def jsonl(tmp_path: Path, *rows: dict[str, Any] | str) -> Path:
    path = tmp_path / "jobs.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def errors(path: Path) -> list[str]:
    with pytest.raises(BatchFileError) as exc:
        read_batch(path)
    return [str(e) for e in exc.value.errors]


def test_jsonl_line_references_pass_the_check_and_are_kept_until_sent(tmp_path: Path) -> None:
    path = jsonl(tmp_path, MJ, "", i2v("k4u://lines/1/assets/0"), i2v("k4u://lines/3/assets/2"))
    _, lines = read_batch(path)
    assert [ln.number for ln in lines] == [1, 3, 4]  # the blank line 2 keeps the numbering
    assert lines[1].body["input"]["image"] == "k4u://lines/1/assets/0"
    bodies = translate([(ln.number, ln.body) for ln in lines], {})
    assert [b["input"].get("image") for b in bodies] == [None, "k4u://items/0/assets/0", "k4u://items/1/assets/2"]
    assert bodies[1]["idempotency_key"] == lines[1].body["idempotency_key"]  # only the reference changes
    assert lines[1].body["input"]["image"] == "k4u://lines/1/assets/0"  # the line itself is untouched


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("k4u://lines/3/assets/0", "line 3: input.image: k4u://lines/3/assets/0 names this line: a line can only use the output of an earlier line"),
        ("k4u://lines/4/assets/0", "line 3: input.image: k4u://lines/4/assets/0 names line 4, a later line: a line can only use the output of an earlier line"),
        ("k4u://lines/2/assets/0", "line 3: input.image: k4u://lines/2/assets/0 names line 2, which is not a job"),
        ("k4u://lines/99/assets/0", "line 3: input.image: k4u://lines/99/assets/0 names line 99, which is not a job"),
        ("k4u://lines/1/asset/0", "line 3: input.image: is not a valid line reference: write k4u://lines/<line number>/assets/<index>"),
        ("k4u://lines/0/assets/0", "line 3: input.image: is not a valid line reference"),
    ],
)
def test_a_reference_to_this_a_later_or_no_job_line_is_refused_naming_line_and_field(tmp_path: Path, ref: str, message: str) -> None:
    path = jsonl(tmp_path, MJ, "", i2v(ref), MJ)
    (error,) = errors(path)
    assert error.startswith(message), error


def test_csv_lines_are_numbered_with_the_header_as_line_1(tmp_path: Path) -> None:
    path = tmp_path / "jobs.csv"
    path.write_text(
        "provider,operation,input.prompt,input.image\n"
        "midjourney,imagine,a red fox,\n"
        "kling,image2video,it runs,k4u://lines/2/assets/0\n"
        "kling,image2video,it jumps,k4u://lines/1/assets/0\n"
    )
    (error,) = errors(path)
    assert error.startswith("line 4: input.image: k4u://lines/1/assets/0 names line 1, which is not a job"), error
    path.write_text(path.read_text().rsplit("\n", 2)[0] + "\n")  # without the bad last line
    _, lines = read_batch(path)
    body = Run(lines, tmp_path / "out.jsonl", None).batch_body(lines)
    assert body["jobs"][1]["input"] == {"prompt": "it runs", "image": "k4u://items/0/assets/0"}


def test_a_nested_reference_is_translated_too(tmp_path: Path) -> None:
    nested = {"provider": "kling", "operation": "multi_image2video", "input": {"prompt": "both", "image_list": [{"image": "k4u://lines/1/assets/1"}]}}
    lines = [Line(1, MJ), Line(2, nested)]
    (_, body) = translate([(ln.number, ln.body) for ln in lines], {})
    assert body["input"]["image_list"] == [{"image": "k4u://items/0/assets/1"}]


class FakeApi:
    """Records each POST /v1/batches body and answers with job ids job_<line>."""

    def __init__(self) -> None:
        self.batches: list[dict[str, Any]] = []

    def create_batch(self, body: dict[str, Any]) -> dict[str, Any]:
        self.batches.append(body)
        n = len(self.batches)
        return {"id": f"bat_{n}", "job_ids": [f"job_{n}_{i}" for i in range(len(body["jobs"]))]}


def test_a_line_of_an_earlier_chunk_becomes_a_job_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_command, "CHUNK", 2)
    lines = [Line(1, MJ), Line(2, MJ), Line(3, i2v("k4u://lines/2/assets/0")), Line(4, i2v("k4u://lines/3/assets/1"))]
    api = FakeApi()
    Run(lines, tmp_path / "out.jsonl", None).create(api)
    first, second = api.batches
    assert first == {"jobs": [MJ, MJ]}
    assert [j["input"]["image"] for j in second["jobs"]] == ["k4u://jobs/job_1_1/assets/0", "k4u://items/0/assets/1"]


def test_an_unsent_earlier_line_is_a_cli_error_not_a_request(tmp_path: Path) -> None:
    run = Run([Line(5, i2v("k4u://lines/2/assets/0"))], tmp_path / "out.jsonl", None)
    with pytest.raises(CliError, match="line 5: k4u://lines/2/assets/0 names line 2, which has no job yet"):
        run.batch_body(run.lines)


class SplitApi:
    """Every job exists already, split over batches by an earlier run: the batch is refused (409) and
    each line is replayed with POST /v1/jobs, which answers with its job."""

    def __init__(self) -> None:
        self.jobs: list[dict[str, Any]] = []

    def create_batch(self, body: dict[str, Any]) -> dict[str, Any]:
        raise CliError("those jobs are not one batch", status=409)

    def create_job(self, body: dict[str, Any]) -> dict[str, Any]:
        self.jobs.append(body)
        return {"id": f"job_{len(self.jobs)}", "status": "queued", "batch_id": None}


def test_a_replay_line_by_line_sends_parents_first_and_job_references(tmp_path: Path) -> None:
    lines = [Line(1, MJ), Line(2, i2v("k4u://lines/1/assets/0")), Line(3, i2v("k4u://lines/2/assets/1"))]
    api = SplitApi()
    run = Run(lines, tmp_path / "out.jsonl", None)
    run.create(api)
    assert [j["input"].get("image") for j in api.jobs] == [None, "k4u://jobs/job_1/assets/0", "k4u://jobs/job_2/assets/1"]
    assert run.ids == {1: "job_1", 2: "job_2", 3: "job_3"}
