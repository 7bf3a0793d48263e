"""Sequence reversal, the seq2seq task of Sutskever, Vinyals & Le (2014)'s observation that
reversing helps a fixed-size encoding: read a sequence of symbols, write it backwards.

A sequence has a length drawn uniformly from min_len..max_len and symbols uniform over an
alphabet of `symbols` letters; the target is the reversed sequence and EOS. Accuracy by input
length shows how an encoder-decoder without attention loses long inputs, one fixed-size vector
holding the whole sequence, and how attention recovers them.

Chance levels (the trivial baseline), for a guesser that knows the length but not the symbols:
exact match E[symbols^-L], accuracy over all target positions (E[L] / symbols + 1) / (E[L] + 1),
the EOS position being always right.
"""

from __future__ import annotations

import string
from typing import Annotated

import numpy as np
from pydantic import Field, model_validator

from rnnbench.tasks.base import SPLITS, Task, TaskConfig, TaskSpec
from rnnbench.tasks.seq2seq_common import (
    Vocab,
    attention_showcase,
    by_group,
    exact_match,
    seq2seq_metrics,
)


class ReverseConfig(TaskConfig):
    min_len: Annotated[int, Field(ge=1)] = 4
    max_len: Annotated[int, Field(ge=1)] = 20
    symbols: Annotated[int, Field(ge=2, le=26)] = 10  # alphabet size
    n_train: Annotated[int, Field(gt=0)] = 10_000
    n_val: Annotated[int, Field(gt=0)] = 1_000
    n_test: Annotated[int, Field(gt=0)] = 1_000
    solved_exact_match: Annotated[float, Field(gt=0, le=1)] = 0.9

    @model_validator(mode="after")
    def _lengths(self) -> ReverseConfig:
        if self.max_len < self.min_len:
            raise ValueError(f"max_len = {self.max_len}: shorter than min_len = {self.min_len}")
        return self


def vocab(cfg: ReverseConfig) -> Vocab:
    return Vocab(string.ascii_lowercase[:cfg.symbols])


class Reverse(Task):
    name = "reverse"
    Config = ReverseConfig
    length_key = "max_len"

    def longer(self, cfg: ReverseConfig, factor: int) -> dict:
        """Every input exactly `factor` times the longest training input: lengths never seen."""
        return {"min_len": cfg.max_len * factor, "max_len": cfg.max_len * factor}

    def spec(self, cfg: ReverseConfig) -> TaskSpec:
        v = len(vocab(cfg))
        return TaskSpec(
            name=self.name, shape="seq2seq", input_size=v, output_size=v, loss="xent",
            readout="all", metric="exact_match", higher_is_better=True,
            solved_threshold=cfg.solved_exact_match,
            claims=("attention_long_inputs", "any_length"),
            definition=f"reverse {cfg.min_len}-{cfg.max_len} symbols from {cfg.symbols}",
            input_vocab=v, output_len=cfg.max_len + 1)

    def generate(self, cfg: ReverseConfig, seed: int) -> dict:
        rng, voc = np.random.default_rng(seed), vocab(cfg)
        letters = voc.symbols[3:]
        sizes = {"train": cfg.n_train, "val": cfg.n_val, "test": cfg.n_test}
        out = {}
        for split in SPLITS:
            lengths = rng.integers(cfg.min_len, cfg.max_len + 1, size=sizes[split])
            seqs = [[letters[i] for i in rng.integers(0, cfg.symbols, size=n)] for n in lengths]
            out[split] = {"x": voc.encode(seqs, cfg.max_len, eos=False),
                          "y": voc.encode([s[::-1] for s in seqs], cfg.max_len + 1, eos=True),
                          "length": lengths.astype(np.int64)}
        return out

    def baseline(self, cfg: ReverseConfig, splits: dict) -> dict:
        lengths = np.arange(cfg.min_len, cfg.max_len + 1, dtype=np.float64)
        return {"name": "chance, knowing the length",
                "exact_match": float(np.mean(float(cfg.symbols) ** -lengths)),
                "char_accuracy": float((lengths.mean() / cfg.symbols + 1) / (lengths.mean() + 1))}

    def metrics(self, cfg: ReverseConfig, pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
        return seq2seq_metrics(pred, y)

    def breakdowns(self, cfg: ReverseConfig, pred: np.ndarray, split: dict) -> dict:
        hits = exact_match(pred.argmax(-1), split["y"]).astype(np.float64)
        return {"exact match by input length": by_group(hits, split["length"])}

    def showcase(self, cfg: ReverseConfig, model, splits: dict, seed: int) -> dict | None:
        voc = vocab(cfg)
        return attention_showcase(model, splits["test"], voc, voc, "attention while reversing")


TASK = Reverse()
