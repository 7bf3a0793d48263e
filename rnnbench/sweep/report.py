"""A sweep's report: the final run of each of its trials, found in the tracking store by its
configuration hash (so runs from every machine count, and a trial found finished under another
sweep, study or pipeline counts too), then the ordinary report over their result files."""

from __future__ import annotations

import tempfile
from pathlib import Path

from rnnbench.config import UserError


def sweep_report(path: Path, out: Path) -> tuple[Path, list[dict]]:
    """The report of the sweep at `path` in `out`; its path, and the trials it holds, each
    {"trial", "mlflow_run_id", "found_in" (the run's group: `sweep NAME`, `pipeline COMMIT`,
    ...), "this_sweep" (whether the run is tagged with this sweep)}."""
    from rnnbench.report.build import build_report, check_report_out
    from rnnbench.store import tracking_uri
    from rnnbench.sweep.plan import plan
    from rnnbench.tracking import download_results, final_runs

    p = plan(path)
    check_report_out(out)
    final = final_runs(p.experiment, p.cfg.name)
    held = [(t, final[t.config_hash]) for t in p.trials if t.config_hash in final]
    if not held:
        raise UserError(f"sweep {p.cfg.name!r}: no trial has a finished run in experiment "
                        f"{p.experiment!r} of {tracking_uri()}")
    with tempfile.TemporaryDirectory(prefix="rnnbench-sweep-") as tmp:
        download_results([(run["run_id"], Path(tmp) / f"{t.model}-{t.config_hash[:8]}" / t.task
                           / f"seed{t.seed}", t.variant) for t, run in held])
        expected = [(t.variant, t.task, t.seed) for t in p.trials if t.error is None]
        report = build_report(Path(tmp), out, title=f"rnnbench sweep {p.cfg.name}",
                              expected=expected)
    return report, [{"trial": t.name, "mlflow_run_id": run["run_id"], "found_in":
                     run["run_group"], "this_sweep": run["sweep"] == p.cfg.name}
                    for t, run in held]
