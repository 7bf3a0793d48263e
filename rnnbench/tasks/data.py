"""A task's data on disk: generated from params, written atomically, read back and checked.

data/<task>/ holds splits.npz (arrays '<split>_<key>') and meta.json (task, data seed, the
config that determines the data, sizes, sha256 of the arrays, source, spec and baseline). The
train stage refuses data whose recorded config, source or hash differs from what params and this
machine would produce.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from rnnbench.config import UserError
from rnnbench.io import atomic_dir
from rnnbench.tasks.base import SPLITS, Split, data_hash
from rnnbench.tasks.registry import get_task


class DataMismatch(UserError):
    """Stored data that does not match params, its own record, or its source."""


def data_config(task_cfg) -> dict:
    """The part of a task's config that determines its data (training knobs excluded)."""
    return task_cfg.model_dump(mode="json", exclude={"train"})


def make_data(params, task_name: str) -> tuple[dict[str, Split], dict]:
    """Generate a task's splits from params; return (splits, meta)."""
    task, cfg = get_task(task_name), params.task(task_name)
    splits = task.generate(cfg, params.data.seed)
    meta = {"task": task_name, "seed": params.data.seed, "config": data_config(cfg),
            "sizes": {s: int(len(d["y"])) for s, d in splits.items()},
            "sha256": data_hash(splits), "source": task.source(cfg),
            "spec": task.spec(cfg).to_dict(), "baseline": task.baseline(cfg, splits)}
    return splits, meta


def save_splits(folder: Path, splits: dict[str, Split], meta: dict) -> None:
    arrays = {f"{s}_{k}": a for s in SPLITS for k, a in splits[s].items()}
    np.savez(folder / "splits.npz", **arrays)
    (folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def write_data(params, task_name: str, out: Path) -> dict:
    splits, meta = make_data(params, task_name)
    with atomic_dir(out, kind="data") as tmp:
        save_splits(tmp, splits, meta)
    return meta


# The keys of meta.json that are read before its hash is checked, and their JSON types.
RECORD_KEYS = {"sha256": str, "config": dict}
JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
              int: "a number", float: "a number", type(None): "null"}


def check_record(meta, meta_path: Path) -> None:
    """A DataMismatch naming the file and key where meta.json is not an object holding
    RECORD_KEYS of their types."""
    if not isinstance(meta, dict):
        raise DataMismatch(f"{meta_path}: not a data record ({JSON_TYPES[type(meta)]}, "
                           "not an object); regenerate it (dvc repro)")
    for key, kind in RECORD_KEYS.items():
        if not isinstance(meta.get(key), kind):
            got = f"is {JSON_TYPES[type(meta[key])]}" if key in meta else "is missing"
            raise DataMismatch(f"{meta_path}: key {key!r} {got}, expected {JSON_TYPES[kind]}; "
                               "regenerate it (dvc repro)")


def load_splits(folder: Path) -> tuple[dict[str, Split], dict]:
    """(splits, meta) as stored; a missing, truncated or malformed file is one DataMismatch."""
    folder = Path(folder)
    meta_path, npz_path = folder / "meta.json", folder / "splits.npz"
    for p in (meta_path, npz_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: missing; run the data stage first (dvc repro)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # ValueError: bad JSON
        why = "nested too deep" if isinstance(exc, RecursionError) else exc
        raise DataMismatch(f"{meta_path}: not valid JSON ({why}); regenerate it (dvc repro)") \
            from None
    check_record(meta, meta_path)
    splits: dict[str, Split] = {s: {} for s in SPLITS}
    try:
        with np.load(npz_path, allow_pickle=False) as z:
            for name in z.files:
                split, _, key = name.partition("_")
                if split not in splits or not key:
                    raise DataMismatch(f"{npz_path}: unexpected array {name!r}; regenerate it")
                splits[split][key] = z[name]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataMismatch(f"{npz_path}: unreadable ({type(exc).__name__}); regenerate it "
                           "(dvc repro)") from None
    for split, arrays in splits.items():
        if "x" not in arrays or "y" not in arrays or len(arrays["y"]) == 0:
            raise DataMismatch(f"{npz_path}: split {split!r} is missing or empty; regenerate it "
                               "(dvc repro)")
    return splits, meta


def read_data(params, task_name: str, folder: Path) -> tuple[dict[str, Split], dict]:
    """Stored data, checked against params (config, data seed), this machine's source and
    the recorded hash, which also covers the recorded baseline's inputs."""
    splits, meta = load_splits(folder)
    expected = data_config(params.task(task_name))
    if meta.get("task") != task_name or meta.get("config") != expected \
            or meta.get("seed") != params.data.seed:
        diff = [k for k in expected if meta["config"].get(k) != expected[k]]
        what = f"tasks.{task_name}.{diff[0]}" if diff else "task or data.seed"
        raise DataMismatch(f"{folder / 'meta.json'}: data was generated with another {what}; "
                           "regenerate it (dvc repro)")
    task = get_task(task_name)
    if meta.get("source") != json.loads(json.dumps(task.source(params.task(task_name)))):
        raise DataMismatch(f"{folder / 'meta.json'}: data came from another source "
                           f"({meta.get('source')}); regenerate it (dvc repro)")
    if data_hash(splits) != meta["sha256"]:
        raise DataMismatch(f"{folder / 'splits.npz'}: contents do not match the recorded sha256")
    baseline = task.baseline(params.task(task_name), splits)
    if json.loads(json.dumps(baseline)) != meta.get("baseline"):
        raise DataMismatch(f"{folder / 'meta.json'}: the recorded baseline differs from the one "
                           "its data gives; regenerate it (dvc repro)")
    return splits, meta
