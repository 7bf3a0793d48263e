"""Date normalisation as translation: dates written the ways people write them, in to ISO 8601
out ('22 November 2026', 'Nov 22, 2026', '22/11/26', '2026년 11월 22일' -> '2026-11-22').

Dates are uniform over 1950-01-01 .. 2049-12-31 and each is written in one of the formats below,
drawn uniformly. Numeric dates put the day first ('22/11/26', '22.11.2026'); a two-digit year
yy means 20yy below 50 and 19yy from 50, which is exact over this range. Input is read
character by character (Hangul included), output is 10 characters and EOS.

The trivial baseline writes one constant string: the most common character of the training
targets at each position.
"""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Annotated

import numpy as np
from pydantic import Field

from rnnbench.tasks.base import SPLITS, Task, TaskConfig, TaskSpec
from rnnbench.tasks.seq2seq_common import (
    Vocab,
    attention_showcase,
    by_group,
    exact_match,
    seq2seq_metrics,
)

FIRST, LAST = dt.date(1950, 1, 1), dt.date(2049, 12, 31)
MONTHS = list(calendar.month_name)[1:]  # English names, independent of the locale
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


FORMATS = {  # name -> writer
    "22 November 2026": lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year}",
    "Nov 22, 2026": lambda d: f"{MONTHS[d.month - 1][:3]} {d.day}, {d.year}",
    "22/11/26": lambda d: f"{d.day:02d}/{d.month:02d}/{d.year % 100:02d}",
    "2026년 11월 22일": lambda d: f"{d.year}년 {d.month}월 {d.day}일",
    "Sunday, 22 November 2026": lambda d: f"{WEEKDAYS[d.weekday()]}, {d.day} "
                                          f"{MONTHS[d.month - 1]} {d.year}",
    "november 22, 2026": lambda d: f"{MONTHS[d.month - 1].lower()} {d.day}, {d.year}",
    "22 NOV 2026": lambda d: f"{d.day} {MONTHS[d.month - 1][:3].upper()} {d.year}",
    "22.11.2026": lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",
    "2026/11/22": lambda d: f"{d.year}/{d.month:02d}/{d.day:02d}",
    "the 22nd of November, 2026": lambda d: f"the {_ordinal(d.day)} of "
                                            f"{MONTHS[d.month - 1]}, {d.year}",
}
MAX_INPUT = 36  # longest rendering: 'Wednesday, 30 September 2026' is 28; room to spare


def _alphabet() -> str:
    names = "".join(MONTHS + WEEKDAYS)
    return "".join(sorted(set(names + names.lower() + names.upper() + "0123456789 ,./년월일"
                              + "stndrdth of")))


IN_VOCAB, OUT_VOCAB = Vocab(_alphabet()), Vocab("0123456789-")


class DatesConfig(TaskConfig):
    n_train: Annotated[int, Field(gt=0)] = 10_000
    n_val: Annotated[int, Field(gt=0)] = 1_000
    n_test: Annotated[int, Field(gt=0)] = 1_000
    solved_exact_match: Annotated[float, Field(gt=0, le=1)] = 0.95


class Dates(Task):
    name = "dates"
    Config = DatesConfig

    def spec(self, cfg: DatesConfig) -> TaskSpec:
        return TaskSpec(
            name=self.name, shape="seq2seq", input_size=len(IN_VOCAB),
            output_size=len(OUT_VOCAB), loss="xent", readout="all", metric="exact_match",
            higher_is_better=True, solved_threshold=cfg.solved_exact_match,
            claims=("attention_long_inputs",),
            definition=f"{len(FORMATS)} human date formats, 1950-2049 -> YYYY-MM-DD",
            input_vocab=len(IN_VOCAB), output_len=11)

    def generate(self, cfg: DatesConfig, seed: int) -> dict:
        rng = np.random.default_rng(seed)
        writers = list(FORMATS.values())
        span = (LAST - FIRST).days + 1
        sizes = {"train": cfg.n_train, "val": cfg.n_val, "test": cfg.n_test}
        out = {}
        for split in SPLITS:
            days = rng.integers(0, span, size=sizes[split])
            fmts = rng.integers(0, len(writers), size=sizes[split])
            dates = [FIRST + dt.timedelta(days=int(n)) for n in days]
            texts = [writers[f](d) for f, d in zip(fmts, dates, strict=True)]
            out[split] = {"x": IN_VOCAB.encode(texts, MAX_INPUT, eos=False),
                          "y": OUT_VOCAB.encode([d.isoformat() for d in dates], 11, eos=True),
                          "length": np.array([len(t) for t in texts], dtype=np.int64),
                          "format": fmts.astype(np.int64)}
        return out

    def baseline(self, cfg: DatesConfig, splits: dict) -> dict:
        train, test = splits["train"]["y"], splits["test"]["y"]
        const = np.array([np.bincount(col).argmax() for col in train.T])  # per position
        pred = np.broadcast_to(const, test.shape)
        return {"name": "one constant date string (most common character per position)",
                "constant": "".join(OUT_VOCAB.decode(const)[:-1]),
                "exact_match": float(exact_match(pred, test).mean()),
                "char_accuracy": float((pred == test).mean())}

    def metrics(self, cfg: DatesConfig, pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
        return seq2seq_metrics(pred, y)

    def breakdowns(self, cfg: DatesConfig, pred: np.ndarray, split: dict) -> dict:
        hits = exact_match(pred.argmax(-1), split["y"]).astype(np.float64)
        bins = np.minimum(split["length"] // 5 * 5, 25)  # 5-character bins, 25+ together
        labels = {b: f"{b}-{b + 4}" if b < 25 else "25+" for b in range(0, 30, 5)}
        return {"exact match by input length": by_group(hits, bins, labels),
                "exact match by format": by_group(hits, split["format"],
                                                  dict(enumerate(FORMATS)))}

    def showcase(self, cfg: DatesConfig, model, splits: dict, seed: int) -> dict | None:
        return attention_showcase(model, splits["test"], IN_VOCAB, OUT_VOCAB,
                                  "attention while normalising dates")


TASK = Dates()
