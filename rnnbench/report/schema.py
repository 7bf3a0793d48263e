"""The `report:` section of params.yaml."""

from __future__ import annotations

from pydantic import Field

from rnnbench.config import StrictModel


class ReportConfig(StrictModel):
    title: str = Field("rnnbench report", min_length=1, max_length=200)
