"""`rnnbench report` (the DVC report stage): render the report from result files."""

from __future__ import annotations

from pathlib import Path

from rnnbench.commands import add_out, add_params, check_out

NAME, HELP = "report", "render the report from result files"


def arguments(p) -> None:
    add_params(p)
    p.add_argument("--results", default="results/train")
    p.add_argument("--speed", help="speed.json to include (default: none)")
    p.add_argument("--studies", help="folder of study outputs (NAME/summary.json)")
    p.add_argument("--reliability", help="the reliability summary the tests write, cited when "
                                         "present (results/reliability/summary.json)")
    add_out(p, "reports", "output folder")


def run(args) -> int:
    from rnnbench.params import load_params
    from rnnbench.report.build import build_report, check_report_out

    params = load_params(args.params, args.set)
    out = Path(args.out)
    check_out(args, out)
    check_report_out(out)
    path = build_report(Path(args.results), out, title=params.report.title,
                        expected=params.grid.runs(),
                        speed_json=Path(args.speed) if args.speed else None,
                        studies_dir=Path(args.studies) if args.studies else None,
                        context={"profile": params.experiment,
                                 "seeds": {name: b.seeds or params.grid.seeds
                                           for name, b in params.grid.blocks.items()},
                                 "data_seed": params.data.seed},
                        reliability_json=Path(args.reliability) if args.reliability else None)
    print(f"report: {path}\n        {path.with_suffix('.html')}")
    return 0
