"""The package's shape, checked from its source: no import cycles, no import from a layer above,
package __init__ files that import nothing, dvc.yaml's deps covering every file each stage's
script can import, a DVC stage per grid block, and the data and report stages running without
torch or MLflow."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, TINY
from tests.import_graph import (
    closure,
    cycles,
    files_of,
    graph,
    modules,
    runtime_imports,
    script_imports,
)

# Lowest first. A module may import from its own layer or any below, never from one above.
LAYERS = [
    ["rnnbench", "rnnbench.*.__init__", "rnnbench.config"],
    # declarations: every schema, the task and model registries and their facts (no torch)
    ["rnnbench.training.schema", "rnnbench.probes.schema", "rnnbench.speed.schema",
     "rnnbench.study.schema", "rnnbench.report.schema", "rnnbench.tasks.base",
     "rnnbench.tasks.registry", "rnnbench.tasks.*", "rnnbench.models.cost",
     "rnnbench.models.families", "rnnbench.models.contract"],
    ["rnnbench.params", "rnnbench.io", "rnnbench.store", "rnnbench.warm.client",
     "rnnbench.commands", "rnnbench.tasks.data"],
    # networks and kernels
    ["rnnbench.kernels.*", "rnnbench.models.*", "rnnbench.training.encode"],
    ["rnnbench.training.step", "rnnbench.training.fit", "rnnbench.probes.*",
     "rnnbench.tracking"],
    ["rnnbench.training.evaluate", "rnnbench.training.run", "rnnbench.training.parity",
     "rnnbench.training.pool", "rnnbench.training.block",
     "rnnbench.speed.*"],
    ["rnnbench.study.*"],
    ["rnnbench.report.*"],
    ["rnnbench.sweep.*"],
    ["rnnbench.*.command", "rnnbench.training.grid_command", "rnnbench.compare_runs",
     "rnnbench.cli", "rnnbench.warm.server"],
]


def layer(module: str) -> int:
    """The layer of the most specific pattern naming the module (the most literal characters);
    package __init__ modules are layer 0."""
    if (ROOT / Path(*module.split(".")) / "__init__.py").is_file():
        return 0
    hits = [(len(p.replace("*", "")), i) for i, pats in enumerate(LAYERS) for p in pats
            if fnmatch.fnmatch(module, p)]
    assert hits, f"{module}: in no layer of tests/test_layout.py"
    return max(hits)[1]


def test_no_import_cycles():
    assert cycles() == []


def test_no_module_imports_from_a_layer_above():
    g = graph()
    wrong = [f"{a} (layer {layer(a)}) imports {b} (layer {layer(b)})"
             for a, deps in g.items() for b in deps if layer(b) > layer(a)]
    assert wrong == []


def test_package_inits_import_nothing():
    """So that importing a schema never drags its package's heavy modules along."""
    for name, path in modules().items():
        if path.name == "__init__.py" and name != "rnnbench":
            assert graph()[name] == set(), f"{path} imports {graph()[name]}"


def test_the_layering_test_catches_an_upward_import():
    assert layer("rnnbench.config") < layer("rnnbench.params") < layer("rnnbench.training.run")
    assert layer("rnnbench.models.families") < layer("rnnbench.models.build")
    assert layer("rnnbench.report.claims") > layer("rnnbench.study.run")


# ---------------------------------------------------------------- dvc.yaml
def stage_defs() -> dict[str, dict]:
    """dvc.yaml's stages before templating: name -> {cmd, deps}; foreach bodies and YAML
    merges resolved."""
    raw = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {name: s.get("do", s) for name, s in raw.items()}


def covered(path: str, deps: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


def missing_deps(stage: dict) -> tuple[str, list[str]]:
    script = re.search(r"python (pipelines/\w+\.py)", stage["cmd"]).group(1)
    reach = files_of(closure(script_imports(ROOT / script)))
    return script, sorted(f for f in reach | {script} if not covered(f, stage["deps"]))


@pytest.mark.parametrize("name", sorted(stage_defs()))
def test_stage_deps_cover_every_file_its_script_can_import(name):
    script, missing = missing_deps(stage_defs()[name])
    assert missing == [], f"dvc.yaml stage {name} ({script}) runs code it does not list: {missing}"
    for dep in stage_defs()[name]["deps"]:  # and every dep names something real
        if dep.startswith("rnnbench") or dep.startswith("pipelines"):
            assert (ROOT / dep).exists(), f"dvc.yaml stage {name}: {dep} does not exist"


def test_the_deps_test_catches_a_missing_dep():
    stage = dict(stage_defs()["train"])
    stage["deps"] = [d for d in stage["deps"] if d != "rnnbench/kernels"]
    assert missing_deps(stage)[1] == ["rnnbench/kernels/__init__.py", "rnnbench/kernels/rnn.py",
                                      "rnnbench/kernels/scan.py"]


def test_every_grid_block_is_a_train_stage():
    import yaml

    from rnnbench.params import load_params

    assert load_params(ROOT / "params.yaml").grid.blocks
    assert [n for n in stage_defs() if n.startswith("train")] == ["train"]
    train = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["train"]
    assert train["foreach"] == "${grid.blocks}"
    assert "grid.blocks.${key}" in train["do"]["params"]
    assert {"tasks", "models", "grid.seeds", "grid.processes"} <= set(train["do"]["params"])


# ---------------------------------------------------------------- what stages load
def _no_heavy(mods: list[str]) -> None:
    assert "torch" not in mods and "mlflow" not in mods and "numba" not in mods


def test_the_data_stage_runs_without_torch_or_mlflow(tmp_path):
    args = ["--task", "adding", "--out", str(tmp_path / "data"), "--out-outside",
            "--params", str(ROOT / "params.yaml"), *(f"--set={o}" for o in TINY)]
    status, mods = runtime_imports("pipelines/data.py", args)
    assert status == 0 and (tmp_path / "data" / "meta.json").exists()
    _no_heavy(mods)


def test_the_report_stage_runs_without_torch_or_mlflow(tmp_path):
    from tests.test_report import result, write

    for r in (result("lstm", "lstm", "adding", 0.002), result("rnn", "rnn", "adding", 0.17)):
        write(tmp_path / "results", r)
    args = ["--results", str(tmp_path / "results"), "--out", str(tmp_path / "reports"),
            "--out-outside", "--params", str(ROOT / "params.yaml")]
    status, mods = runtime_imports("pipelines/report.py", args)
    assert status == 0 and (tmp_path / "reports" / "benchmark.md").exists()
    _no_heavy(mods)
