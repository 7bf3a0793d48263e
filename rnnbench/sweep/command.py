"""`rnnbench sweep SWEEP.yaml`: a grid of training runs on Ray, resumable, ending with its report
built from the tracking store."""

from __future__ import annotations

from pathlib import Path

from rnnbench.commands import add_out, check_out

NAME, HELP = "sweep", "run a sweep of training runs on Ray (see rnnbench/sweep/run.py)"


def arguments(p) -> None:
    p.add_argument("sweep", help="the sweep file (SWEEP.yaml)")
    p.add_argument("--address", help="join this Ray cluster (default: start a local one)")
    p.add_argument("--cpus", type=int, help="CPUs of the local cluster (default: all)")
    p.add_argument("--report-only", action="store_true",
                   help="build the sweep's report from the tracking store; train nothing")
    add_out(p, None, "output folder (default results/sweep/NAME; the report in its report/)")


def run(args) -> int:
    from rnnbench.sweep.plan import load_sweep
    from rnnbench.sweep.report import sweep_report
    from rnnbench.sweep.run import run_sweep

    cfg, _ = load_sweep(Path(args.sweep))
    out = Path(args.out or f"results/sweep/{cfg.name}")
    check_out(args, out)
    failed = 0
    if not args.report_only:
        summary = run_sweep(Path(args.sweep), out, address=args.address, cpus=args.cpus)
        c = summary["counts"]
        failed = c["failed"]
        print(f"sweep {cfg.name}: {c['done']} done, {c['failed']} failed, {c['skipped']} "
              f"skipped in {summary['wall_time_s']:.0f} s -> {out / 'summary.json'}")
    path, held = sweep_report(Path(args.sweep), out / "report")
    elsewhere = sum(not h["this_sweep"] for h in held)
    print(f"report: {path} ({len(held)} runs of sweep {cfg.name}, {elsewhere} of them found "
          "finished under another tag)")
    return 1 if failed else 0
