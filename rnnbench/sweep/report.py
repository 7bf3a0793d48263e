"""A sweep's report: its runs' result files fetched from the tracking store by the sweep tag
(so runs from every machine count), then the ordinary report over them."""

from __future__ import annotations

import tempfile
from pathlib import Path

from rnnbench.config import UserError


def sweep_report(name: str, params_path: Path, out: Path) -> tuple[Path, int]:
    from rnnbench.params import load_params
    from rnnbench.report.build import build_report, check_report_out
    from rnnbench.store import tracking_uri
    from rnnbench.tracking import download_results

    experiment = load_params(params_path).experiment
    check_report_out(out)
    with tempfile.TemporaryDirectory(prefix="rnnbench-sweep-") as tmp:
        n = download_results(experiment, name, Path(tmp))
        if n == 0:
            raise UserError(f"sweep {name!r}: no finished runs in experiment {experiment!r} "
                            f"of {tracking_uri()}")
        return build_report(Path(tmp), out, title=f"rnnbench sweep {name}"), n
