"""Every command's --out refuses, in one line and before any work, a path holding what rnnbench
did not write: the project itself, one of its files or source folders, a user's folder, and
anywhere outside the project unless --out-outside says so. The report adds its own files to a
folder and refuses to replace any file of that name it did not write. Run in a throwaway
project, so a regression costs a temporary folder, not the checkout."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.test_reliability import run_cli

PARAMS = str(ROOT / "params.yaml")
COMMANDS = {
    "data": ["data", "--task", "sine"],
    "train": ["train", "--task", "sine", "--model", "rnn"],
    "grid": ["grid", "--block", "main", "--metrics", "metrics-out"],
    "speed": ["speed"],
    "study": ["study", "--name", "sigma"],
}


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    proj = tmp_path / "proj"
    (proj / "src").mkdir(parents=True)
    (proj / "dvc.yaml").write_text("stages: {}\n")
    (proj / "README.md").write_text("# mine\n")
    (proj / "src" / "model.py").write_text("x = 1\n")
    (proj / "notes").mkdir()
    (proj / "notes" / "todo.txt").write_text("mine\n")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "thesis.tex").write_text("mine\n")
    monkeypatch.chdir(proj)
    return proj


TARGETS = {  # --out, extra flags, what the one line says
    "the project": (".", [], "refusing to replace it"),
    "a file of the project": ("README.md", [], "exists and is not a folder"),
    "a source folder": ("src", [], "files rnnbench did not write"),
    "a user's folder": ("notes", [], "files rnnbench did not write"),
    "outside the project": ("../elsewhere", [], "outside the project"),
    "a user's folder outside": ("../elsewhere", ["--out-outside"],
                                "files rnnbench did not write"),
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("target", TARGETS)
def test_out_never_replaces_what_rnnbench_did_not_write(command, target, project):
    out, flags, said = TARGETS[target]
    before = snapshot(project.parent)
    status, err = run_cli([*COMMANDS[command], "--params", PARAMS, "--out", out, *flags])
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and said in lines[0], err
    assert out.lstrip("./") in lines[0] or out == "."
    assert snapshot(project.parent) == before  # nothing written, nothing replaced


@pytest.mark.parametrize("target,out,said", [
    ("a file of the project", "README.md", "exists and is not a folder"),
    ("outside the project", "../elsewhere", "outside the project"),
    ("a page of the user's", "notes", "was not written by rnnbench"),
    ("a figures folder of the user's", "notes", "files rnnbench did not write"),
])
def test_the_report_never_replaces_a_file_it_did_not_write(target, out, said, project):
    if target == "a page of the user's":
        (project / "notes" / "benchmark.md").write_text("my own benchmark notes\n")
    if target == "a figures folder of the user's":
        (project / "notes" / "figures").mkdir()
        (project / "notes" / "figures" / "plot.png").write_bytes(b"mine")
    before = snapshot(project.parent)
    status, err = run_cli(["report", "--results", "no-results", "--params", PARAMS, "--out", out])
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and said in lines[0], err
    assert snapshot(project.parent) == before
