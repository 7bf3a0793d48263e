"""A small fixture of result files, written by hand, and the report built from it: training runs
on two tasks (each with an MLflow run id), gradient probes, an attention showcase in Korean, a
diverged run, a missing run and a memory study. Its verdicts cover every outcome: holds (GRU
has fewer parameters; the memory study), holds only under a condition (gated cells: one of two
gated models solves), not observed (the sine example diverged) and not measured (no depth
study)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from rnnbench.report.build import build_report
from tests.conftest import complete_summary
from tests.test_report import result, write
from tests.test_study import run as study_run

CONTEXT = {"profile": "fixture", "seeds": {"main": [0, 1], "headline": [0, 1, 2],
                                                 "suite": [0, 1]}, "data_seed": 0}
EXPECTED = [("rnn", "copy", 0)]  # in the grid, never run: the report lists it as missing
KOREAN = list("2019년 3월 5일")


def run_id(*key) -> str:
    return hashlib.sha256("/".join(map(str, key)).encode()).hexdigest()[:32]


PROBE = {"step": 0, "checkpoint": 0.0, "cell": "rnn_tanh", "seq_len": 3, "batch": 2,
         "thresholds": [1e-3], "bound": {"applicable": False},
         "figures": {"final.l0_fwd.decay_factor": 0.5, "final.l0_fwd.horizon@0.001": 2},
         "gradients": {"final": {"curves": {"l0_fwd": {"ratio": [1.0, 0.5, 0.25]}}}}}


def training_runs() -> list[dict]:
    runs = [result("lstm", "lstm", "adding", 0.002), result("lstm", "lstm", "adding", 0.004, 1),
            result("gru", "gru", "adding", 0.15), result("rnn", "rnn", "adding", 0.17),
            result("rnn", "rnn", "sine", 0.5, status="diverged")]
    for r in runs:
        r["mlflow_run_id"] = run_id(r["model"], r["task"], r["seed"])
        r["git_commit"] = "0123456789abcdef" if r["task"] == "adding" else "fedcba9876543210"
    return runs


def write_fixture(root: Path) -> tuple[Path, Path]:
    """root/train (result files per model/task/seed) and root/study (NAME/summary.json)."""
    train = root / "train"
    for r in training_runs():
        write(train, r, "epoch,step,val_loss,val_mse\n1,10,0.2,0.2\n2,20,0.1,0.1\n")
        d = train / r["model"] / r["task"] / f"seed{r['seed']}"
        if r["task"] == "adding" and r["model"] in ("rnn", "gru") and r["seed"] == 0:
            cell = "rnn_tanh" if r["model"] == "rnn" else "gru"
            (d / "probes.json").write_text(json.dumps([dict(PROBE, cell=cell)]))
        if r["model"] == "lstm" and r["seed"] == 0:
            show = {"kind": "attention", "title": "attention over the input",
                    "examples": [{"input": KOREAN, "output": list("2019-03-05"),
                                  "weights": [[1 / len(KOREAN)] * len(KOREAN)] * 10}]}
            (d / "showcase.json").write_text(json.dumps(show, ensure_ascii=False))
    runs = [study_run(x, model=m, seed=s, solved=(m == "lstm" or x < 50),
                      mlflow_run_id=run_id("mem", m, x, s))
            for m in ("rnn", "lstm") for x in (10, 50) for s in (0, 1)]
    summary = {"study": "mem", "kind": "memory", "task": "adding", "x": "tasks.adding.seq_len",
               "models": ["rnn", "lstm"], "seeds": [0, 1], "runs": runs,
               "variants": [{"label": f"T={x}", "overrides": [f"tasks.adding.seq_len={x}"]}
                            for x in (10, 50)]}
    (root / "study" / "mem").mkdir(parents=True)
    (root / "study" / "mem" / "summary.json").write_text(json.dumps(complete_summary(summary)))
    return train, root / "study"


def build_fixture_report(root: Path) -> Path:
    train, study = write_fixture(root)
    return build_report(train, root / "reports", title="rnnbench: fixture", expected=EXPECTED,
                        studies_dir=study, context=CONTEXT)
