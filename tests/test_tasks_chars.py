"""The chars task: real text, contiguous splits, chunk-major streams, baselines, sampling."""

from __future__ import annotations

import hashlib
import math
import sys
import sysconfig
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnbench.models.build import build_model
from rnnbench.models.families import GRUConfig, LSTMConfig
from rnnbench.tasks.base import data_hash
from rnnbench.tasks.chars import (
    STDLIB_FILES,
    TASK,
    UNK_GLYPH,
    CharsConfig,
    chunk_streams,
    decode,
    encode,
    split_texts,
    vocabulary,
)

SMALL = dict(max_chars=60_000, streams=8, bptt=32)


def stdlib_text(n: int) -> str:
    root = Path(sysconfig.get_paths()["stdlib"])
    return "".join((root / f).read_bytes().decode("utf-8") for f in sorted(STDLIB_FILES))[:n]


def stream_ids(split: dict, streams: int, s: int) -> np.ndarray:
    """Stream s's ids in reading order: its chunks' inputs, then the last target."""
    x, y = split["x"][s::streams], split["y"][s::streams]
    return np.concatenate([x.ravel(), y[-1, -1:]])


def test_chunk_layout_is_chunk_major_and_streams_are_contiguous():
    ids = np.arange(1000)
    d = chunk_streams(ids, streams=4, bptt=10)
    per_stream = 999 // 4  # 249 -> 24 chunks of 10 per stream
    assert d["x"].shape == d["y"].shape == (24 * 4, 10)
    for k in range(24):
        for s in range(4):
            start = s * per_stream + k * 10
            np.testing.assert_array_equal(d["x"][k * 4 + s], ids[start:start + 10])
    np.testing.assert_array_equal(d["y"], d["x"] + 1)


def test_stdlib_text_is_fixed_recorded_and_split_contiguously():
    cfg = CharsConfig(**SMALL)
    a, b, c = TASK.generate(cfg, 0), TASK.generate(cfg, 0), TASK.generate(cfg, 7)
    assert data_hash(a) == data_hash(b) == data_hash(c)  # fixed text: the seed changes nothing
    text = stdlib_text(cfg.max_chars)
    src = TASK.source(cfg)
    assert src["files"] == sorted(STDLIB_FILES) and src["characters"] == len(text) == 60_000
    assert src["sha256"] == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert src["python"] == f"{sys.version_info.major}.{sys.version_info.minor}." \
                            f"{sys.version_info.micro}"
    parts = split_texts(cfg)
    assert "".join(parts[s] for s in ("train", "val", "test")) == text  # contiguous, in order
    assert (len(parts["val"]), len(parts["test"])) == (6000, 6000)
    vocab = vocabulary(cfg)
    assert vocab == sorted(set(parts["train"]))
    spec = TASK.spec(cfg)
    assert spec.input_vocab == spec.output_size == spec.input_size == len(vocab) + 1
    assert (spec.shape, spec.readout, spec.loss, spec.causal, spec.streams, spec.metric) == \
        ("many_to_many", "all", "xent", True, 8, "bpc")
    assert not spec.higher_is_better
    for split, part in parts.items():
        d = a[split]
        assert d["x"].shape == d["y"].shape and d["x"].shape[1] == 32
        assert len(d["x"]) % cfg.streams == 0 and d["x"].max() <= len(vocab)
        np.testing.assert_array_equal(d["y"][:, :-1], d["x"][:, 1:])  # y is x shifted by one
        # consecutive chunks of one stream continue each other
        np.testing.assert_array_equal(d["x"][cfg.streams:, 0], d["y"][:-cfg.streams, -1])
        # each stream is a contiguous stretch of this split's text, streams back to back
        ids, per_stream = encode(part, vocab), (len(part) - 1) // cfg.streams
        for s in (0, 3, cfg.streams - 1):
            got = stream_ids(d, cfg.streams, s)
            np.testing.assert_array_equal(got, ids[s * per_stream:s * per_stream + len(got)])
    # the training split's text decodes back to the file text
    assert decode(stream_ids(a["train"], 8, 0), vocab) == text[:len(stream_ids(a["train"], 8, 0))]


def test_text_file_and_unknown_characters(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("abcab" * 40 + "ééé" + "abzab" * 7 + "Ω" * 5, encoding="utf-8")
    cfg = CharsConfig(text_file=str(path), max_chars=10_000, streams=2, bptt=8,
                      val_fraction=0.1, test_fraction=0.1)
    assert vocabulary(cfg) == ["a", "b", "c"]  # from the training text only
    src = TASK.source(cfg)
    assert src["files"] == [str(path)] and src["characters"] == 243
    splits = TASK.generate(cfg, 0)
    unk = 3
    test_ids = stream_ids(splits["test"], 2, 1)
    assert (test_ids == unk).any()  # z and the Omegas are unknown
    assert decode([0, unk, 2], vocabulary(cfg)) == f"a{UNK_GLYPH}c"
    # max_chars cuts the text
    cut = CharsConfig(text_file=str(path), max_chars=200, streams=2, bptt=8)
    assert TASK.source(cut)["characters"] == 200 and "é" not in "".join(split_texts(cut).values())


def test_bad_configs_fail_with_one_line_naming_the_key(tmp_path):
    def fails(match: str, **kw) -> None:
        with pytest.raises(ValueError, match=match) as e:
            TASK.spec(CharsConfig(**kw))
        assert all("\n" not in err["msg"] for err in e.value.errors()) \
            if hasattr(e.value, "errors") else "\n" not in str(e.value)

    fails(r"text_file = '.*nope\.txt': no such file", text_file=str(tmp_path / "nope.txt"))
    fails(r"files: 'no_such_module\.py' is not a file", files=("string.py", "no_such_module.py"))
    fails(r"files = \[\]", files=())
    fails(r"max_chars = 20000: the val text would have 2000 characters", max_chars=20_000)
    fails(r"max_chars = 1000: the train text would have 800 characters", max_chars=1000)
    fails(r"val_fraction \+ test_fraction = 1\.0", val_fraction=0.5, test_fraction=0.5)
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\u00e9 ".encode("latin-1") * 1000)
    with pytest.raises(ValueError, match=r"text_file '.*latin1\.txt': not UTF-8 text") as e:
        TASK.spec(CharsConfig(text_file=str(bad)))
    assert "\n" not in str(e.value)
    short = tmp_path / "short.txt"
    short.write_text("x" * 500, encoding="utf-8")
    with pytest.raises(ValueError, match="the text's length = 500: the val text would have 50"):
        TASK.generate(CharsConfig(text_file=str(short), streams=4, bptt=16), 0)


def test_baselines_match_a_direct_computation(tmp_path):
    # 100 characters: train 60, val 20, test 20; one stream of 19 targets covers the test text.
    text = "the cat sat on the mat; " * 2 + "a bat ate the rat. " * 2 + "xx" \
        + "then the cat quit, zz"
    text = text[:100]
    path = tmp_path / "tiny.txt"
    path.write_text(text, encoding="utf-8")
    cfg = CharsConfig(text_file=str(path), streams=1, bptt=19, val_fraction=0.2,
                      test_fraction=0.2)
    train, test = text[:60], text[80:]
    splits = TASK.generate(cfg, 0)
    assert splits["test"]["y"].size == 19
    b = TASK.baseline(cfg, splits)
    size = len(set(train)) + 1  # the training characters and UNK
    uni, n = Counter(train), len(train)
    loss = -sum(math.log((uni.get(c, 0) + 1) / (n + size)) for c in test[1:]) / 19
    assert b["loss"] == pytest.approx(loss, rel=1e-12)
    assert b["bpc"] == pytest.approx(loss / math.log(2), rel=1e-12)
    assert set(test) - set(train)  # the test text holds characters unseen in training

    def key(c: str) -> str:
        return c if c in uni else "<unk>"

    pairs = Counter(zip(train[:-1], train[1:], strict=True))
    firsts = Counter(train[:-1])
    big = -sum(math.log((pairs.get((key(a), key(c)), 0) + 1) / (firsts.get(key(a), 0) + size))
               for a, c in zip(test[:-1], test[1:], strict=True)) / 19
    assert b["bpc_bigram"] == pytest.approx(big / math.log(2), rel=1e-12)
    assert b["bpc_bigram"] < b["bpc"]  # the bigram model knows more


def test_metrics_in_nats_and_bits():
    cfg = CharsConfig(**SMALL)
    y = np.random.default_rng(0).integers(0, 10, size=(6, 5))
    m = TASK.metrics(cfg, np.zeros((6, 5, 10)), y)  # uniform over 10 symbols
    assert m["loss"] == pytest.approx(math.log(10)) and m["bpc"] == pytest.approx(math.log2(10))
    perfect = TASK.metrics(cfg, np.eye(10)[y] * 60.0, y)
    assert perfect["bpc"] < 1e-20 and TASK.spec(cfg).is_solved(perfect["bpc"])
    assert not TASK.spec(cfg).is_solved(math.log2(10))


@pytest.mark.parametrize("family", ["lstm", "gru"])
def test_showcase_samples_text_deterministically(family):
    cfg = CharsConfig(**SMALL, sample_chars=120)
    spec, splits = TASK.spec(cfg), TASK.generate(cfg, 0)
    mcfg = LSTMConfig(family="lstm", hidden_size=8) if family == "lstm" \
        else GRUConfig(family="gru", hidden_size=8)
    torch.manual_seed(0)
    model = build_model(mcfg, spec)
    a, b, c = (TASK.showcase(cfg, model, splits, s) for s in (3, 3, 4))
    assert a["kind"] == "text" and a["title"] and a == b and a["text"] != c["text"]
    prompt = split_texts(cfg)["test"][:40]
    assert a["text"].startswith(prompt) and len(a["text"]) == 40 + 120
    assert set(a["text"][40:]) <= set(vocabulary(cfg)) | {UNK_GLYPH}
    assert len(set(a["text"][40:])) > 5  # an untrained model samples widely
    model.double()  # follows the model's dtype
    assert len(TASK.showcase(cfg, model, splits, 3)["text"]) == 160


def test_sampling_carries_the_state_like_a_full_forward_pass():
    # Near zero temperature sampling is greedy: each sampled character must be the argmax of
    # the model run afresh over the prompt and everything sampled before it.
    cfg = CharsConfig(**SMALL, sample_chars=30, temperature=1e-4)
    spec, splits = TASK.spec(cfg), TASK.generate(cfg, 0)
    torch.manual_seed(2)
    model = build_model(LSTMConfig(family="lstm", hidden_size=16), spec).double()
    with torch.no_grad():  # larger weights: the output depends strongly on the state
        for name, p in model.named_parameters():
            p.mul_(6.0 if "ih" in name or "head" in name else 2.0)
    text = TASK.showcase(cfg, model, splits, 0)["text"]
    vocab = vocabulary(cfg)
    ids = encode(text, vocab)
    with torch.no_grad():
        x = torch.nn.functional.one_hot(torch.from_numpy(ids[:-1]), len(vocab) + 1).double()
        out, _ = model.core(x[None])
        greedy = model.head(out[0]).argmax(-1).numpy()
    np.testing.assert_array_equal(greedy[39:], ids[40:])
    assert len(set(text[40:])) > 3  # not one character over and over
