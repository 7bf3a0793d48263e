"""The report's plot data as DVC reads it: reports/plots/ holds each figure's data, dvc.yaml
declares a plot per kind with the project's templates, and DVC itself renders them."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ROOT
from tests.report_fixture import build_fixture_report


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("plots")
    return root, build_fixture_report(root).read_text(encoding="utf-8"), []


def test_the_plot_data_dvc_draws_is_the_figures_data(built):
    import csv

    from rnnbench.report.plots import KINDS

    root, _, _ = built
    plots = root / "reports" / "plots"
    assert sorted(p.name for p in plots.iterdir() if p.is_dir()) == sorted(KINDS)

    def rows(path):
        return list(csv.DictReader(path.open()))

    curves = rows(plots / "curves" / "adding.csv")
    assert {r["series"] for r in curves} == {"lstm seed0", "lstm seed1", "gru seed0", "rnn seed0"}
    assert [(r["step"], r["val_loss"]) for r in curves[:2]] == [("10", "0.2"), ("20", "0.1")]
    decay = rows(plots / "decay" / "adding.csv")
    assert [(r["lag"], r["ratio"]) for r in decay if r["series"] == "rnn init"] == \
        [("0", "1.0"), ("1", "0.5"), ("2", "0.25")]
    memory = {(r["series"], r["T"]): float(r["test_metric"])
              for r in rows(plots / "memory" / "mem.csv")}
    assert memory == {("lstm", "10"): 0.001, ("lstm", "50"): 0.001, ("rnn", "10"): 0.001,
                      ("rnn", "50"): 0.16}
    assert list((plots / "speed").iterdir()) == []  # no speed run in the fixture


def test_dvc_yaml_declares_a_plot_per_kind_and_only_scalar_metrics():
    import yaml

    from rnnbench.report.plots import KINDS

    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    top = {k: v for d in spec["plots"] for k, v in d.items()}
    assert sorted(top) == sorted(f"reports/plots/{k}" for k in KINDS)
    for props in top.values():
        template = ROOT / ".dvc" / "plots" / f"{props['template']}.json"
        body = template.read_text()
        assert "<DVC_METRIC_DATA>" in body and '"series"' in body and '"rev"' in body
    metrics = [next(iter(m)) for s in spec["stages"].values()
               for m in s.get("do", s).get("metrics", [])]
    # the speed stage's metrics.json and each grid block's folder of slim metrics files
    assert sorted(metrics) == ["results/metrics/${key}", "results/speed/metrics.json"]
    report_outs = [next(iter(o)) if isinstance(o, dict) else o
                   for o in spec["stages"]["report"]["outs"]]
    assert {"reports/benchmark.html", "reports/plots"} <= set(report_outs)


def test_dvc_renders_the_plots_with_the_templates(built, tmp_path):
    """The templates and definitions as DVC itself reads them: every file a plot, no error."""
    import shutil
    import subprocess

    import yaml

    root, _, _ = built
    repo = tmp_path / "repo"
    shutil.copytree(root / "reports" / "plots", repo / "reports" / "plots")
    shutil.copytree(ROOT / ".dvc" / "plots", repo / ".dvc" / "plots")
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"plots": spec["plots"]}))
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["dvc", "init", "-q", "--force"], cwd=repo, check=True)
    shutil.copytree(ROOT / ".dvc" / "plots", repo / ".dvc" / "plots", dirs_exist_ok=True)
    out = subprocess.run(["dvc", "plots", "show", "--json"], cwd=repo, capture_output=True,
                         text=True, timeout=120)
    shown = json.loads(out.stdout)
    assert not shown.get("errors"), shown.get("errors")
    assert sorted(shown["data"]) == ["reports/plots/curves/adding.csv",
                                     "reports/plots/curves/sine.csv",
                                     "reports/plots/decay/adding.csv",
                                     "reports/plots/memory/mem.csv"]
    decay = shown["data"]["reports/plots/decay/adding.csv"][0]["content"]
    assert decay["encoding"]["y"]["scale"] == {"type": "log"}
    assert decay["encoding"]["color"]["field"] == "series"
    assert decay["encoding"]["x"]["title"] == "lag (steps back from the last)"


def test_study_and_probe_numbers_trace_to_their_runs(built):
    root, text, _ = built
    summary = json.loads((root / "study" / "mem" / "summary.json").read_text())
    study = text.split("## Study `mem`")[1]
    for model in ("rnn", "lstm"):
        table = study.split(f"**{model}**")[1].split("\n\n", 2)[1]
        for row in table.splitlines()[2:]:
            cells = [c.strip() for c in row.strip("|").split(" | ")]
            runs = [r for r in summary["runs"] if r["model"] == model
                    and str(r["x_value"]) == cells[0]]
            assert cells[-1] == " ".join(f"`{r['mlflow_run_id'][:8]}`" for r in runs)
            assert cells[1] == f"{sum(r['solved'] for r in runs)}/{len(runs)}"
    files = {p.parents[2].name: json.loads(p.read_text())["mlflow_run_id"]
             for p in (root / "train").glob("*/adding/seed0/result.json")}
    assert f"Probed runs (each model's lowest seed): adding: gru `{files['gru'][:8]}`, " \
           f"rnn `{files['rnn'][:8]}`." in text

