"""The report's reliability section says what the reliability tests measured, and says
"fails" when a run was lost, a bad input got no clear error or a test failed, and "not
measured" when nothing was tried."""

from __future__ import annotations

import json

from rnnbench.report.reliability import reliability_lines

GOOD = {"faults_injected": 8, "runs_survived": 11, "runs_lost": 0, "bad_inputs_tried": 240,
        "bad_inputs_clear_error": 240, "tests_passed": 30, "tests_failed": 0,
        "tests_skipped": 1, "date": "2026-12-02", "commit": "0123456789abcdef",
        "command": "pytest tests/test_reliability.py"}


def text(tmp_path, data) -> str:
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(data))
    return "\n".join(reliability_lines(path))


def test_the_figures_are_cited_with_their_source(tmp_path):
    t = text(tmp_path, GOOD)
    assert "**holds**" in t and "8 faults injected" in t and "11 runs survived, 0 lost" in t
    assert "240 malformed configurations tried" in t and str(tmp_path / "summary.json") in t
    assert "30 passed, 0 failed, 1 skipped" in t and "commit 0123456789ab" in t


def test_a_lost_run_or_an_unclear_error_fails(tmp_path):
    assert "**fails**" in text(tmp_path, GOOD | {"runs_lost": 1})
    t = text(tmp_path, GOOD | {"bad_inputs_clear_error": 239})
    assert "**fails**" in t and "1 did not" in t
    t = text(tmp_path, GOOD | {"tests_failed": 1})
    assert "**fails**" in t and "1 failed" in t


def test_a_run_that_tried_nothing_is_not_measured(tmp_path):
    for empty in ({"faults_injected": 0, "runs_survived": 0},
                  {"bad_inputs_tried": 0, "bad_inputs_clear_error": 0}):
        t = text(tmp_path, GOOD | empty)
        assert "**not measured**" in t and "holds" not in t


def test_absent_or_broken_figures_say_how_to_measure(tmp_path):
    assert "Not measured" in "\n".join(reliability_lines(tmp_path / "none.json"))
    broken = text(tmp_path, {"runs_lost": "zero"})
    assert "unreadable" in broken and "holds" not in broken
    # a summary written before it recorded its tests' outcomes says so, it does not pass
    old = text(tmp_path, {k: v for k, v in GOOD.items() if not k.startswith("tests_")})
    assert "unreadable (no tests_passed, tests_failed, tests_skipped)" in old
    assert "holds" not in old
    for bad, why in (("{", "not valid JSON"), ("[1, 2]", "not a JSON object")):
        (tmp_path / "summary.json").write_text(bad)
        assert f"unreadable ({why})" in "\n".join(reliability_lines(tmp_path / "summary.json"))
    assert "unreadable" in text(tmp_path, GOOD | {"runs_lost": True})  # a bool is not a count
