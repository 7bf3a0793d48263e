"""The Summary counts every method check the results carry and leads with any that failed:
a failed timer check, bound, parity or reliability run is never passed over."""

from __future__ import annotations

import json

from rnnbench.report.checks import checks_line, method_checks
from rnnbench.report.summary import summary_section


def probe(step: int, holds: bool | None) -> dict:
    bound = {"applicable": False} if holds is None else {"applicable": True, "holds": holds}
    return {"step": step, "checkpoint": 0.0 if step == 0 else 1.0, "bound": bound}


PROBES = {"adding": {"rnn": [probe(0, True), probe(50, True)], "gru": [probe(0, None)]}}
TIMER = [{"ok": True}, {"ok": True}, {"ok": True}]
QUIET = [1e-15] * 30
PARITY = {"steps": 30, "gap": {"numba_vs_rnn": QUIET, "ulp_vs_rnn": QUIET[:20] + [1e-3] * 10}}


def reliability(tmp_path, **change):
    data = {"faults_injected": 9, "runs_survived": 9, "runs_lost": 0, "bad_inputs_tried": 243,
            "bad_inputs_clear_error": 243, "tests_passed": 16, "tests_failed": 0,
            "tests_skipped": 1} | change
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(data))
    return path


def test_every_check_counted_and_all_passed(tmp_path):
    checks = method_checks(PROBES, {"timer_check": TIMER, "parity": PARITY},
                           reliability(tmp_path))
    assert [(p, t) for _, p, t in checks] == [(2, 2), (3, 3), (1, 1), (1, 1)]
    line = checks_line(checks)
    assert line.startswith("Method checks passed: Pascanu bound") and "FAILED" not in line


def test_each_failed_check_is_named_first_in_the_summary(tmp_path):
    probes = {"adding": {"rnn": [probe(0, True), probe(50, False)]}}
    early = {"steps": 30, "gap": {"numba_vs_rnn": [1e-3] * 30, "ulp_vs_rnn": QUIET}}
    checks = method_checks(probes, {"timer_check": [{"ok": True}, {"ok": False}],
                                    "parity": early}, reliability(tmp_path, tests_failed=1))
    line = checks_line(checks)
    assert line.startswith("**Method checks FAILED: Pascanu bound on the measured gradient "
                           "ratios (1 of 2); our timer against torch.utils.benchmark.Timer "
                           "(1 of 2); rnn vs numba_rnn losses part like rounding (1 of 1); "
                           "reliability tests")
    lines = summary_section({}, [], [], checks=line)
    assert lines[2] == f"- {line}" and lines[3].startswith("- Claims tested")


def test_checks_not_made_are_not_counted(tmp_path):
    assert method_checks({}, None, None) == [] and checks_line([]) is None
    tried_nothing = reliability(tmp_path, faults_injected=0, runs_survived=0)
    assert method_checks({"adding": {"gru": [probe(0, None)]}}, {"timer_check": []},
                         tried_nothing) == []
    passed = summary_section({}, [], [], checks=checks_line([("x", 1, 1)]))
    assert passed[2].startswith("- Claims tested")
    assert passed[3] == "- Method checks passed: x (1/1)."
