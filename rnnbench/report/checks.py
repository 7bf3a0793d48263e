"""The report's method checks gathered for its Summary: the checks that the measurements
themselves are sound (our timer against torch's, Pascanu's bound on the measured gradient
ratios, rnn against numba_rnn training losses, the reliability tests). Each is decided where its
section is drawn; here they are only counted, so a failed one is never passed over."""

from __future__ import annotations

from pathlib import Path

from rnnbench.report import reliability
from rnnbench.report.parity import parts_like_rounding
from rnnbench.report.probes import bound_checks


def method_checks(probes: dict[str, dict[str, list[dict]]], speed: dict | None,
                  reliability_json: Path | None) -> list[tuple[str, int, int]]:
    """(check, passed, tried) for every method check these results carry."""
    out = []
    bounds = [r["bound"]["holds"] for by_model in probes.values()
              for _, _, r in bound_checks(by_model)]
    if bounds:
        out.append(("Pascanu bound on the measured gradient ratios", sum(bounds), len(bounds)))
    timer = (speed or {}).get("timer_check") or []
    if timer:
        out.append(("our timer against torch.utils.benchmark.Timer",
                    sum(bool(t["ok"]) for t in timer), len(timer)))
    if (speed or {}).get("parity"):
        out.append(("rnn vs numba_rnn losses part like rounding",
                    int(parts_like_rounding(speed["parity"])[0]), 1))
    data, _ = reliability.read_summary(reliability_json)
    if data is not None and reliability.verdict(data) != "not measured":
        out.append(("reliability tests (no run lost, every bad input one line)",
                    int(reliability.verdict(data) == "holds"), 1))
    return out


def checks_line(checks: list[tuple[str, int, int]]) -> str | None:
    """The Summary's line: every check passed, or which failed, first and in bold."""
    if not checks:
        return None
    failed = [f"{name} ({tried - passed} of {tried})" for name, passed, tried in checks
              if passed < tried]
    ok = [f"{name} ({tried}/{tried})" for name, passed, tried in checks if passed == tried]
    if failed:
        return ("**Method checks FAILED: " + "; ".join(failed) + "**: the figures they vouch "
                "for are suspect" + (f". Passed: {'; '.join(ok)}." if ok else "."))
    return "Method checks passed: " + "; ".join(ok) + "."
