"""Encoder-decoders and the seq2seq tasks: masks, decoding, parameter counts, the date formats,
metrics and baselines on hand-made cases, and a model that learns."""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import pytest
import torch

from rnnbench.models.build import build_model
from rnnbench.models.families import Seq2SeqConfig, param_count
from rnnbench.models.seq2seq import Seq2Seq
from rnnbench.tasks.base import EOS, PAD
from rnnbench.tasks.dates import FORMATS, IN_VOCAB, OUT_VOCAB, Dates, DatesConfig
from rnnbench.tasks.reverse import Reverse, ReverseConfig, vocab
from rnnbench.tasks.seq2seq_common import exact_match, seq2seq_metrics
from rnnbench.training.fit import fit
from rnnbench.training.schema import TrainConfig

REV = ReverseConfig(min_len=2, max_len=6, symbols=5, n_train=512, n_val=64, n_test=64)


def s2s(**kw) -> Seq2SeqConfig:
    return Seq2SeqConfig(family="seq2seq", hidden_size=8, embed_size=6, **kw)


@pytest.mark.parametrize("cell,attention,bi,layers",
                         list(itertools.product(["gru", "lstm"], [False, True], [False, True],
                                                [1, 2])))
def test_param_count_closed_form(cell, attention, bi, layers):
    cfg = s2s(cell=cell, attention=attention, bidirectional=bi, num_layers=layers)
    spec = Reverse().spec(REV)
    model = build_model(cfg, spec)
    assert sum(p.numel() for p in model.parameters()) == param_count(cfg, spec)


@pytest.mark.parametrize("cell,bi", [("gru", True), ("lstm", False)])
def test_padding_changes_nothing(cell, bi):
    torch.manual_seed(0)
    spec = Reverse().spec(REV)
    model = Seq2Seq(s2s(cell=cell, attention=True, bidirectional=bi), spec).double().eval()
    x = torch.tensor([[3, 4, 5, PAD, PAD, PAD], [4, 4, 3, 5, 6, 7]])
    short = model(x[:1, :3])  # the same sequence without its padding
    np.testing.assert_allclose(model(x)[:1].detach(), short.detach(), atol=1e-12)
    weights = model.attention_weights(x)
    assert torch.all(weights[0, :, 3:] == 0)  # no attention on pads
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-12)


def test_teacher_forcing_feeds_the_targets():
    torch.manual_seed(0)
    spec = Reverse().spec(REV)
    forced = Seq2Seq(s2s(teacher_forcing=1.0), spec).double()
    free = Seq2Seq(s2s(teacher_forcing=0.0), spec).double()
    free.load_state_dict(forced.state_dict())
    x = torch.tensor([[3, 4, 5, 6, PAD, PAD]])
    greedy = forced(x)
    y = greedy.argmax(-1)  # targets equal to the greedy choices: forcing changes nothing
    np.testing.assert_allclose(forced(x, y).detach(), greedy.detach())
    other = (y + 1) % spec.output_size  # other targets: forcing changes the outputs
    assert not torch.allclose(forced(x, other), greedy)
    np.testing.assert_allclose(free(x, other).detach(), greedy.detach())  # ratio 0: ignored


def test_metrics_stop_at_eos_and_skip_pads():
    y = np.array([[5, 4, EOS, PAD], [3, EOS, PAD, PAD]])
    pred_ids = np.array([[5, 4, EOS, 7], [3, 4, PAD, PAD]])  # after EOS nothing counts
    logits = np.eye(8)[pred_ids] * 10
    m = seq2seq_metrics(logits, y)
    assert m["exact_match"] == 0.5 and m["char_accuracy"] == pytest.approx(4 / 5)
    assert list(exact_match(pred_ids, y)) == [True, False]


def test_reverse_data_and_chance_baseline():
    task = Reverse()
    d = task.generate(REV, 0)
    voc = vocab(REV)
    for x, y, n in zip(d["train"]["x"][:50], d["train"]["y"][:50], d["train"]["length"][:50],
                       strict=True):
        src = voc.decode(x)
        assert len(src) == n and voc.decode(y) == src[::-1] + ["<eos>"]
    rng = np.random.default_rng(1)  # simulate the guesser that knows the length
    y = task.generate(REV.model_copy(update={"n_test": 20_000}), 2)["test"]["y"]
    guess = np.where(y > EOS, rng.integers(3, 3 + REV.symbols, size=y.shape), y)
    base = task.baseline(REV, {})
    assert exact_match(guess, y).mean() == pytest.approx(base["exact_match"], abs=0.01)
    assert (guess == y)[y != PAD].mean() == pytest.approx(base["char_accuracy"], abs=0.01)


def test_date_formats_round_trip_and_targets():
    d = Dates().generate(DatesConfig(n_train=400, n_val=10, n_test=10), 0)["train"]
    parsers = {"22 November 2026": "%d %B %Y", "Nov 22, 2026": "%b %d, %Y",
               "22/11/26": "%d/%m/%y", "22.11.2026": "%d.%m.%Y", "2026/11/22": "%Y/%m/%d",
               "Sunday, 22 November 2026": "%A, %d %B %Y"}
    names = list(FORMATS)
    seen = set()
    for x, y, f in zip(d["x"], d["y"], d["format"], strict=True):
        text, iso = "".join(IN_VOCAB.decode(x)), "".join(OUT_VOCAB.decode(y)[:-1])
        date = dt.date.fromisoformat(iso)
        assert dt.date(1950, 1, 1) <= date <= dt.date(2049, 12, 31)
        assert FORMATS[names[f]](date) == text
        if names[f] in parsers:
            parsed = dt.datetime.strptime(text, parsers[names[f]]).date()
            if names[f] == "22/11/26":  # our century pivot is 50 (strptime's is 69)
                yy = parsed.year % 100
                parsed = parsed.replace(year=(2000 if yy < 50 else 1900) + yy)
            assert parsed == date
        seen.add(names[f])
    assert seen == set(FORMATS)
    assert FORMATS["2026년 11월 22일"](dt.date(2026, 11, 22)) == "2026년 11월 22일"
    assert FORMATS["the 22nd of November, 2026"](dt.date(2026, 11, 22)) == \
        "the 22nd of November, 2026"


def test_dates_constant_baseline_by_direct_computation():
    cfg = DatesConfig(n_train=500, n_val=10, n_test=300)
    splits = Dates().generate(cfg, 0)
    base = Dates().baseline(cfg, splits)
    const = OUT_VOCAB.encode([base["constant"]], 11, eos=True)[0]
    test = splits["test"]["y"]
    assert base["char_accuracy"] == pytest.approx((test == const).mean())
    assert base["exact_match"] == pytest.approx((test == const).all(1).mean())


def test_attention_model_learns_to_reverse():
    task, spec = Reverse(), Reverse().spec(REV)
    data = task.generate(REV, 0)
    torch.manual_seed(0)
    model = build_model(Seq2SeqConfig(family="seq2seq", hidden_size=32, embed_size=16,
                                      attention=True), spec)
    cfg = TrainConfig(lr=0.01, batch_size=32, max_steps=400, eval_every=100, device="cpu",
                      early_stop=False)
    result = fit(model, spec, lambda p, y: task.metrics(REV, p, y), data, cfg, seed=0)
    assert result.test["exact_match"] > 0.8, result.test
    show = task.showcase(REV, model, data, 0)
    assert show["kind"] == "attention" and len(show["examples"]) == 3
    ex = show["examples"][0]
    assert len(ex["weights"]) == len(ex["output"]) and len(ex["weights"][0]) == len(ex["input"])
