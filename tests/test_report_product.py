"""The report as a reader gets it (its plot data for DVC: test_report_plots.py), built from a
small fixture of result files (tests/report_fixture.py): the Summary first, then the
Environment and every section; the claims table agrees with each claim's section and links to
it; every number of a task table is traced, through its run ids, to the result files; the HTML
page holds the same content with every figure embedded; figures render every glyph they show."""

from __future__ import annotations

import json
import re
import statistics
import warnings
from pathlib import Path
from urllib.parse import unquote

import pytest

from rnnbench.io import git_state
from rnnbench.report.html import ReportError, to_html
from rnnbench.report.summary import Entry, headings, resolve, slug
from rnnbench.report.verdict import Claim, Verdict
from tests.conftest import ROOT
from tests.report_fixture import KOREAN, build_fixture_report

SECTIONS = ["Summary", "Environment", "Claims from the lecture notes, tested",
            "Results per task", "Gradient flow through time", "Controlled experiments"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("product")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = build_fixture_report(root)
    return root, path.read_text(encoding="utf-8"), caught


def sections(text: str) -> dict[str, str]:
    """anchor -> the text from its heading to the next heading."""
    found = iter(headings(text))
    out, current = {}, None
    for line in text.splitlines():
        if re.match(r"^#{1,6} ", line):
            current = next(found)[1]
            out[current] = ""
        elif current is not None:
            out[current] += line + "\n"
    return out


def summary_rows(text: str) -> list[list[str]]:
    table = text.split("## Summary")[1].split("## Environment")[0]
    return [[c.strip() for c in line.strip("|").split(" | ")] for line in table.splitlines()
            if line.startswith("| ") and not line.startswith("| claim")]


def test_the_summary_comes_first_then_environment_then_every_section(built):
    _, text, _ = built
    h2 = [h for h, _ in headings(text) if f"## {h}" in text.splitlines()]
    assert [h for h in h2 if h in SECTIONS] == SECTIONS
    assert h2[0] == "Summary" and h2[1] == "Environment"
    summary = text.split("## Summary")[1].split("## Environment")[0]
    assert "Claims tested: **17**; holds: 2, holds only under a condition: 1, not observed: 2, " \
           "not measured in this profile: 12" in summary
    assert "`adding`: best test mse **0.003** (lstm; trivial baseline 0.1667, lower is " \
           "better); solved 2/4 runs" in summary
    assert "`sine`: every run diverged (1 run)" in summary
    assert "**1 run of the grid without a result file**" in summary
    # a rule is stated once per section, not once per task
    assert text.count("Steps and time to solve") == 1
    assert text.count("*Claim:* gradients vanish in a vanilla RNN") == 1


def test_each_claim_row_links_to_its_section_and_states_its_verdict(built):
    _, text, _ = built
    by_anchor = sections(text)
    rows = summary_rows(text)
    assert len(rows) == 17
    seen = set()
    for title, verdict, number, _section in rows:
        m = re.fullmatch(r"\[(.+)\]\(#(.+)\)", title)
        assert m, title
        body = by_anchor[m.group(2)]  # the link resolves to a heading
        assert f"**Verdict: {verdict}" in body, (m.group(1), verdict)
        for figure in re.findall(r"\d+(?:\.\d+)?(?:/\d+)?", number):  # the number's figures
            assert figure in body, (m.group(1), figure)
        seen.add(verdict)
    assert seen == {str(v) for v in Verdict}  # the fixture's verdicts cover every outcome
    memory = next(r for r in rows if r[0].startswith("[Gated cells carry"))
    assert memory[1:3] == ["holds", "longest T solved: rnn 10, lstm 50"]
    assert memory[3] == "Study `mem`"


def test_every_number_of_a_task_table_traces_to_its_result_files(built):
    root, text, _ = built
    files = {json.loads(p.read_text())["mlflow_run_id"]: json.loads(p.read_text())
             for p in (root / "train").glob("*/*/seed*/result.json")}
    rows = [line for line in text.split("## Results per task")[1].split("\n## ")[0].splitlines()
            if line.startswith("| ") and "`" in line]
    assert len(rows) == 4  # lstm, gru, rnn on adding; rnn on sine
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        ids = re.findall(r"`([0-9a-f]{8})`", cells[-1])
        runs = [next(m for rid, m in files.items() if rid.startswith(i)) for i in ids]
        assert len(runs) == len(ids) and {r["model"] for r in runs} == {cells[0]}
        assert [r["seed"] for r in runs] == sorted(r["seed"] for r in runs)
        ok = [r["test"][r["metric"]] for r in runs if r["status"] == "ok"]
        if ok:
            assert float(cells[1].split(" ± ")[0]) == pytest.approx(statistics.mean(ok),
                                                                     rel=1e-3)
        else:
            assert cells[1] == "n/a"
        assert cells[2] == f"{sum(r['solved'] for r in runs)}/{len(runs)}"
        assert cells[3] == f"{runs[0]['n_params']:,}"


def test_the_environment_states_the_commit_and_whether_the_tree_was_clean(built):
    _, text, _ = built
    env = text.split("## Environment")[1].split("\n## ")[0]
    git = git_state(ROOT)
    assert f"| git commit | `{git['commit']}`, working tree " \
           f"{'clean' if git['clean'] else '**modified**'}" in env
    assert "| profile (MLflow experiment) | `fixture` |" in env
    assert "| commits the runs were trained at | `0123456789ab` (4 runs), `fedcba987654` " \
           "(1 run) |" in env
    assert "| seeds | training 0, 1 (main, suite); 0, 1, 2 (headline); data 0 |" in env
    assert "| devices of the runs | cpu; dtype float32; torch threads 1 |" in env


def test_the_html_page_holds_the_same_content_with_figures_embedded(built):
    root, text, _ = built
    page = (root / "reports" / "benchmark.html").read_text(encoding="utf-8")
    assert page.splitlines()[0].startswith("<!DOCTYPE html><!-- generated by rnnbench")
    ids = re.findall(r'<h[1-6] id="([^"]+)"', page)
    assert ids == [a for _, a in headings(text)]
    links = [unquote(a) for a in re.findall(r'href="#([^"]+)"', page)]  # as a browser reads it
    assert len(links) == 17 and set(links) <= set(ids)
    images = re.findall(r'<img src="([^"]+)"', page)
    assert len(images) == len(re.findall(r"!\[[^\]]*\]\(figures/", text)) >= 3
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing from the network
    assert "2019년 3월 5일" in page  # the showcase's text, in UTF-8


def test_the_page_refuses_a_figure_it_cannot_embed(tmp_path):
    with pytest.raises(ReportError, match=r"figure 'figures/nope.png' cannot be read"):
        to_html("![x](figures/nope.png)", tmp_path, "t")
    with pytest.raises(ReportError, match="not a report figure"):
        to_html("![x](https://example.org/a.png)", tmp_path, "t")


def test_anchors_follow_githubs_rules():
    assert slug("Task `adding`") == "task-adding"
    assert slug("σ_max(W_hh) < 1: holds") == "σ_maxw_hh--1-holds"
    text = "# A\n```\n# not a heading\n```\n## A\n### B\n### A\n"
    assert headings(text) == [("A", "a"), ("A", "a-1"), ("B", "b"), ("A", "a-2")]
    claim = Claim("A", "", Verdict.HOLDS)
    found = headings("## S\n### A\n## T\n### A\n")
    assert resolve(Entry(claim, "A", "T"), found) == "a-1"
    assert resolve(Entry(claim, "A"), found) == "a"
    assert resolve(Entry(claim, "A", "U"), found) is None


def test_figures_render_every_glyph(built, tmp_path):
    """The dates showcase shows Korean: with the CJK font no glyph is missing; without it,
    matplotlib warns (the check can fail)."""
    from rnnbench.report.figures import cjk_font, use_fonts
    from rnnbench.report.showcase import _attention_figure

    if cjk_font() is None:
        pytest.skip("no font with Korean glyphs installed (`make setup` installs Debian's "
                    "fonts-noto-cjk when run as root)")
    _, _, caught = built
    assert not [w for w in caught if "missing from font" in str(w.message)]
    show = {"title": "t", "examples": [{"input": KOREAN, "output": list("ab"),
                                        "weights": [[0.5] * len(KOREAN)] * 2}]}
    import matplotlib.pyplot as plt

    def missing() -> list[str]:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            _attention_figure("m", "dates", show, tmp_path)
        return [str(x.message) for x in w if "missing from font" in str(x.message)]

    assert use_fonts() and missing() == []
    plt.rcParams["font.family"] = ["DejaVu Sans"]
    try:
        assert any("HANGUL" in m for m in missing())
    finally:
        use_fonts()
    assert Path(tmp_path / "attention_dates_m.png").stat().st_size > 1000


def test_a_model_has_one_colour_in_every_figure(tmp_path, monkeypatch):
    import matplotlib.colors
    from matplotlib.figure import Figure

    from rnnbench.report.build import group, load_results, probes_by_task
    from rnnbench.report.figures import PALETTE, assign_colors, learning_curves
    from rnnbench.report.probes import decay_figure
    from tests.report_fixture import write_fixture

    train, _ = write_fixture(tmp_path)
    grouped = group(load_results(train))
    seen: list[dict[str, str]] = []

    def record(fig, *args, **kwargs):  # each figure's line colours by model, as drawn
        seen.append({line.get_label().split(" ")[0]: matplotlib.colors.to_hex(line.get_color())
                     for ax in fig.axes for line in ax.get_lines()
                     if not line.get_label().startswith(("_", "baseline", "solved"))})

    monkeypatch.setattr(Figure, "savefig", record)
    assign_colors(["rnn", "lstm", "gru"])
    learning_curves(grouped, tmp_path)
    decay_figure(probes_by_task(grouped)["adding"], tmp_path / "d.png", "t")
    curves_adding, _sine, decay = seen
    assert set(curves_adding) == {"lstm", "gru", "rnn"} and set(decay) == {"gru", "rnn"}
    assert all(decay[m] == curves_adding[m] for m in decay)
    assert curves_adding["gru"] == matplotlib.colors.to_hex(PALETTE[0])  # sorted: gru first
    assert len(set(curves_adding.values())) == 3


def test_a_tree_is_clean_when_only_the_pipelines_outputs_changed(tmp_path):
    import subprocess

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@e", *args],
                       cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "dvc.lock").write_text("a\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", "-A")
    git("commit", "-qm", "c")
    (tmp_path / "dvc.lock").write_text("b\n")  # written by dvc repro
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "metrics.json").write_text("{}")
    state = git_state(tmp_path)
    assert state["clean"] is True and len(state["commit"]) == 40
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_state(tmp_path)["clean"] is False
    assert git_state(tmp_path / "nowhere")["commit"] == "unknown"
