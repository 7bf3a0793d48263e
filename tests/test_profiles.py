"""The full profiles (profiles/*.yaml) validate against the code as the README says to apply
them: full-studies replaces the studies section, full-suite the grid and merges task budgets."""

from __future__ import annotations

import copy

import yaml

from rnnbench.config import validate
from rnnbench.params import Params
from rnnbench.study.run import validate_study
from tests.conftest import ROOT


def base() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))


def profile(name: str) -> dict:
    return yaml.safe_load((ROOT / "profiles" / name).read_text(encoding="utf-8"))


def test_every_full_study_validates_with_every_variant(tmp_path):
    raw = base()
    raw["studies"] = profile("full-studies.yaml")["studies"]
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    for name in raw["studies"]:
        study, variants = validate_study(path, name)
        assert len(variants) == len(study.variants)


def test_the_full_suite_validates_when_merged():
    raw, full = base(), profile("full-suite.yaml")
    raw["grid"] = full["grid"]
    for task, over in full["tasks"].items():
        cfg = copy.deepcopy(raw["tasks"][task])
        cfg.update({k: v for k, v in over.items() if k != "train"})
        cfg["train"] = {**(cfg.get("train") or {}), **(over.get("train") or {})}
        raw["tasks"][task] = cfg
    params = validate(Params, raw, "full-suite")
    assert "draw_digits" in params.grid.blocks["one_to_many"].tasks


def test_the_full_speed_profile_validates_and_times_t_from_50_to_4096():
    raw = base()
    raw["speed"] = profile("full-speed.yaml")["speed"]
    params = validate(Params, raw, "full-speed")
    grid = params.speed.length_grid
    assert min(grid.seq_len) == 50 and max(grid.seq_len) == 4096
    assert {"gru", "lstm", "mingru", "minlstm"} <= set(grid.models)
    assert set(grid.sizes) == {"width", "params"}
