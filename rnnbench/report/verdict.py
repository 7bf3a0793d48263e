"""The one claim type and its one renderer: every claim of the report, from the lecture notes
or the studies, is decided by a rule (a function of result files returning a Claim) and drawn
here. Rules never format markdown sections; the renderer never decides."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Verdict(StrEnum):
    HOLDS = "holds"
    CONDITION = "holds only under a condition"
    NOT_OBSERVED = "not observed"
    NOT_MEASURED = "not measured in this profile"


@dataclass
class Claim:
    title: str  # the claim, as the lecture notes (or the literature) state it
    measurement: str  # what was measured and the rule that decides
    verdict: Verdict
    detail: str = ""  # the condition it holds under, or why it was not measured
    evidence: list[str] = field(default_factory=list)  # markdown lines: the numbers
    number: str = ""  # the one figure behind the verdict, for the summary table

    @property
    def verdict_text(self) -> str:
        return str(self.verdict) + (f": {self.detail}" if self.detail else "")


def render_claim(c: Claim, rule: bool = True) -> list[str]:
    """A claim's section; rule=False where the section states the rule once for all its claims."""
    said = [f"*Measurement and rule:* {c.measurement}", ""] if rule else []
    return [f"### {c.title}", "", *said, *c.evidence, "", f"**Verdict: {c.verdict_text}**", ""]


def tally(outcomes: list[bool], none: str, partly: str) -> tuple[Verdict, str]:
    """The common rule shape: holds if every case does, under a condition if some do (with
    `partly` as the condition), not observed if none do; not measured, with `none` as the
    detail, when there is no case at all."""
    if not outcomes:
        return Verdict.NOT_MEASURED, none
    if all(outcomes):
        return Verdict.HOLDS, ""
    if any(outcomes):
        return Verdict.CONDITION, partly
    return Verdict.NOT_OBSERVED, ""
