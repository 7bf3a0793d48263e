"""The report's reliability section says what the reliability tests measured, and says
"fails" when a run was lost or a bad input got no clear error."""

from __future__ import annotations

import json

from rnnbench.report.reliability import reliability_lines

GOOD = {"faults_injected": 8, "runs_survived": 11, "runs_lost": 0, "bad_inputs_tried": 240,
        "bad_inputs_clear_error": 240, "date": "2026-12-02",
        "command": "pytest tests/test_reliability.py"}


def text(tmp_path, data) -> str:
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(data))
    return "\n".join(reliability_lines(path))


def test_the_figures_are_cited_with_their_source(tmp_path):
    t = text(tmp_path, GOOD)
    assert "**holds**" in t and "8 faults injected" in t and "11 runs survived, 0 lost" in t
    assert "240 malformed configurations tried" in t and str(tmp_path / "summary.json") in t


def test_a_lost_run_or_an_unclear_error_fails(tmp_path):
    assert "**fails**" in text(tmp_path, GOOD | {"runs_lost": 1})
    t = text(tmp_path, GOOD | {"bad_inputs_clear_error": 239})
    assert "**fails**" in t and "1 did not" in t


def test_absent_or_broken_figures_say_how_to_measure(tmp_path):
    assert "Not measured" in "\n".join(reliability_lines(tmp_path / "none.json"))
    broken = text(tmp_path, {"runs_lost": "zero"})
    assert "unreadable" in broken and "holds" not in broken
