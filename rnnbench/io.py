"""Atomic file output and the on-disk format of task data.

Every output is written to a temporary sibling and renamed into place, so a failure never
leaves a half-written file or folder, and the previous results stay intact until the new ones
are complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from rnnbench.tasks.base import SPLITS


def write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


@contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a fresh temporary folder; on success it replaces `path` whole, on error it is gone."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
        old = path.with_name(f".{path.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if path.exists():
            path.rename(old)
        tmp.rename(path)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def save_splits(folder: Path, splits: dict[str, dict[str, np.ndarray]], meta: dict) -> None:
    """folder/splits.npz (arrays '<split>_<key>') and folder/meta.json, written by the caller's
    atomic_dir."""
    arrays = {f"{s}_{k}": a for s in SPLITS for k, a in splits[s].items()}
    np.savez(folder / "splits.npz", **arrays)
    (folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def load_splits(folder: Path) -> tuple[dict[str, dict[str, np.ndarray]], dict]:
    folder = Path(folder)
    meta_path, npz_path = folder / "meta.json", folder / "splits.npz"
    for p in (meta_path, npz_path):
        if not p.exists():
            raise FileNotFoundError(f"{p}: missing; run the data stage first (dvc repro)")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    splits: dict[str, dict[str, np.ndarray]] = {s: {} for s in SPLITS}
    with np.load(npz_path) as z:
        for name in z.files:
            split, key = name.split("_", 1)
            splits[split][key] = z[name]
    return splits, meta
