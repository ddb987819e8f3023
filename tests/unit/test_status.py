"""Every allowed and every forbidden transition of the table."""

from __future__ import annotations

import itertools

import pytest

from models.status import TERMINAL, TRANSITIONS, JobStatus, can_transition, mermaid

ALLOWED = {
    ("waiting", "queued"),  # every parent succeeded
    ("waiting", "failed"),  # dependency_failed, invalid_reference
    ("waiting", "cancelled"),
    ("queued", "submitting"),
    ("queued", "failed"),
    ("queued", "cancelled"),
    ("submitting", "submitting"),
    ("submitting", "queued"),
    ("submitting", "running"),
    ("submitting", "failed"),
    ("submitting", "cancelled"),
    ("running", "downloading"),
    ("running", "failed"),
    ("running", "cancelled"),
    ("downloading", "succeeded"),
    ("downloading", "failed"),
    ("downloading", "cancelled"),
    ("failed", "queued"),  # an explicit retry only
    ("failed", "waiting"),  # the explicit retry of a job with parents
}


@pytest.mark.parametrize(("old", "new"), list(itertools.product(JobStatus, JobStatus)))
def test_transition_table(old: JobStatus, new: JobStatus) -> None:
    assert can_transition(old, new) == ((old.value, new.value) in ALLOWED)


def test_terminal_states_have_no_exit_but_retry_and_every_state_is_listed() -> None:
    assert set(TRANSITIONS) == set(JobStatus)
    assert {(t.value, n.value) for t in TERMINAL for n in TRANSITIONS[t]} == {("failed", "queued"), ("failed", "waiting")}


def test_diagram_is_generated_from_the_table() -> None:
    text = mermaid()
    assert all(f"{a} --> {b}" in text for a, b in ALLOWED)


def test_docs_diagram_is_current() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "state-machine.md").read_text()
    assert mermaid() in doc
