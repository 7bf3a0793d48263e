"""Build the benchmark report from result files; nothing here trains or recomputes a result."""

from rnnbench.report.build import build_report, load_results

__all__ = ["build_report", "load_results"]
