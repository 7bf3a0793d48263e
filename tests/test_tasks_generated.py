"""Generated language tasks: sentiment with negation (order matters) and tagging whether a
symbol occurs again later (the future matters)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from pydantic import ValidationError

from rnnbench.tasks.base import PAD, data_hash
from rnnbench.tasks.sentiment import (
    INTENSIFIERS,
    NEGATIVE,
    NEGATORS,
    NOUNS,
    POSITIVE,
    VERBS,
    WORDS,
    SentimentConfig,
    decode,
    encode,
    label_of,
    max_length,
)
from rnnbench.tasks.sentiment import TASK as SENTIMENT
from rnnbench.tasks.tagging import TASK as TAGGING
from rnnbench.tasks.tagging import (
    TaggingConfig,
    best_causal_accuracy,
    best_causal_xent,
    causal_p,
    occurs_later,
)

SMALL_SENTIMENT = SentimentConfig(n_train=600, n_val=200, n_test=200)
SMALL_TAGGING = TaggingConfig(n_train=300, n_val=100, n_test=100)
CLAUSE = re.compile(rf"^the ({'|'.join(NOUNS)}) ({'|'.join(VERBS)})( ({'|'.join(NEGATORS)}))?"
                    rf"( ({'|'.join(INTENSIFIERS)}))? ({'|'.join(POSITIVE + NEGATIVE)})$")


def fails(cfg_cls, match: str, **kw) -> None:
    with pytest.raises(ValidationError, match=match) as e:
        cfg_cls(**kw)
    assert all("\n" not in err["msg"] for err in e.value.errors())


@pytest.mark.parametrize(("task", "cfg"), [(SENTIMENT, SMALL_SENTIMENT),
                                           (TAGGING, SMALL_TAGGING)])
def test_generation_is_deterministic_and_shaped(task, cfg):
    spec = task.spec(cfg)
    a, b, c = task.generate(cfg, 0), task.generate(cfg, 0), task.generate(cfg, 1)
    assert data_hash(a) == data_hash(b) != data_hash(c)
    for split, n in (("train", cfg.n_train), ("val", cfg.n_val), ("test", cfg.n_test)):
        x, y = a[split]["x"], a[split]["y"]
        assert x.dtype == y.dtype == np.int64 and x.ndim == 2 and len(x) == len(y) == n
        assert 0 <= x.min() and x.max() < spec.input_vocab == spec.input_size
        assert 0 <= y.min() and y.max() < spec.output_size == 2
        if spec.readout == "all":
            assert y.shape == x.shape
        else:
            assert y.shape == (n,)
    assert spec.metric == "accuracy" and spec.higher_is_better and spec.loss == "xent"
    assert not spec.causal  # reading backwards is allowed, and is the point of tagging


# ---------------------------------------------------------------- sentiment
def parse(tokens: np.ndarray) -> tuple[list[int], list[str], bool]:
    """Independent reading of a sentence: each clause's polarity, the conjunctions, negation."""
    words = decode(tokens).split()
    clauses, conjunctions, current = [], [], []
    for w in words + ["<end>"]:
        if w in ("and", "but", "<end>"):
            text = " ".join(current)
            assert CLAUSE.match(text), text
            adjective_positive = current[-1] in POSITIVE
            negated = len(set(current) & set(NEGATORS)) > 0
            clauses.append(int(adjective_positive ^ negated))
            conjunctions += [w] if w != "<end>" else []
            current = []
        else:
            current.append(w)
    return clauses, conjunctions, any(w in NEGATORS for w in words)


@pytest.mark.parametrize(("sentence", "label"), [
    ("the plot was not very good", 0),
    ("the acting is hardly bad", 1),
    ("the plot was good but the acting was not great", 0),
    ("the plot was not good but the acting was great", 1),
    ("the music felt awful and the ending was never fun", 0),
    ("the cast was dull but the script was hardly weak and the score was very fine", 1),
    ("the film seemed so brilliant and the story is truly lovely", 1),
])
def test_sentiment_rule_on_hand_made_sentences(sentence, label):
    tokens = encode(sentence, max_length(3))
    assert decode(tokens) == sentence and tokens[-1] != PAD
    assert label_of(tokens) == label
    clauses, _, _ = parse(tokens)
    assert clauses[-1] == label


def test_sentiment_labels_follow_the_rule_and_padding_is_on_the_left():
    splits = SENTIMENT.generate(SMALL_SENTIMENT, 3)
    for split in splits.values():
        x = split["x"]
        assert x.shape[1] == max_length(SMALL_SENTIMENT.max_clauses) == 20
        real = x != PAD
        # left-padded: once the sentence starts, no pad word follows; its end is the last step
        assert (np.diff(real.astype(int), axis=1) >= 0).all() and real[:, -1].all()
        for tokens, y, negated in zip(x, split["y"], split["negated"], strict=True):
            clauses, conjunctions, has_negator = parse(tokens)
            assert SMALL_SENTIMENT.min_clauses <= len(clauses) <= SMALL_SENTIMENT.max_clauses
            assert y == clauses[-1] == label_of(tokens)
            assert negated == has_negator
            for before, after, conj in zip(clauses[:-1], clauses[1:], conjunctions,
                                               strict=True):
                assert conj == ("and" if before == after else "but")


def test_sentiment_classes_are_balanced_and_sentences_never_repeat():
    splits = SENTIMENT.generate(SentimentConfig(), 0)
    assert abs(splits["train"]["y"].mean() - 0.5) < 0.03  # 5,000 sentences: sd 0.007
    big = SENTIMENT.sample(np.random.default_rng(7), 20_000, SentimentConfig(max_clauses=5))
    assert abs(big["y"].mean() - 0.5) < 0.015
    assert 0.2 < big["negated"].mean() < 1  # both breakdown groups are populated
    rows = np.concatenate([s["x"] for s in splits.values()])
    assert len({r.tobytes() for r in rows}) == len(rows)  # within and across splits


def test_a_bag_of_words_cannot_solve_sentiment():
    a = encode("the plot was good but the acting was not great", 20)
    b = encode("the plot was not good but the acting was great", 20)
    counts = SENTIMENT.word_counts(np.stack([a, b]))
    assert (counts[0] == counts[1]).all() and label_of(a) != label_of(b)

    cfg = SentimentConfig()
    splits = SENTIMENT.generate(cfg, 0)
    base = SENTIMENT.baseline(cfg, splits)
    assert base["accuracy_bag_of_words"] < cfg.solved_accuracy - 0.2
    # the fit itself works where a bag of words suffices: "does the sentence have a 'but'?"
    x, has_but = splits["train"]["x"], (splits["train"]["x"] == WORDS.index("but")).any(1)
    w = SENTIMENT.bag_of_words_fit(x, has_but.astype(np.int64))
    assert (SENTIMENT.bag_of_words_predict(w, splits["test"]["x"])
            == (splits["test"]["x"] == WORDS.index("but")).any(1)).mean() > 0.99

    # The best ANY bag-of-words classifier can do: given the counts of negators, positive and
    # negative adjectives, "and" and "but", the other words (nouns, verbs, which negator or
    # adjective) are drawn independently of the label, so the majority label of each group of
    # these counts is the Bayes-optimal bag-of-words prediction.
    big = SENTIMENT.sample(np.random.default_rng(11), 40_000, cfg)
    c = SENTIMENT.word_counts(big["x"])
    ids = {w: i for i, w in enumerate(WORDS)}
    stats = np.stack([c[:, [ids[w] for w in group]].sum(1)
                      for group in (NEGATORS, POSITIVE, NEGATIVE, ("and",), ("but",))], 1)
    _, group = np.unique(stats, axis=0, return_inverse=True)
    group = group.ravel()
    pos, total = np.bincount(group, weights=big["y"]), np.bincount(group)
    bound = np.maximum(pos, total - pos).sum() / total.sum()
    assert base["accuracy_bag_of_words"] < bound + 0.02 and bound < cfg.solved_accuracy - 0.15


def test_sentiment_majority_baseline():
    splits = SENTIMENT.generate(SMALL_SENTIMENT, 0)
    base = SENTIMENT.baseline(SMALL_SENTIMENT, splits)
    majority = int(splits["train"]["y"].mean() > 0.5)
    assert base["majority_class"] == majority
    assert base["accuracy"] == pytest.approx((splits["test"]["y"] == majority).mean())
    assert abs(base["accuracy"] - 0.5) < 0.1
    y = splits["test"]["y"]
    assert SENTIMENT.metrics(SMALL_SENTIMENT, np.zeros((len(y), 2)), y)["loss"] == \
        pytest.approx(base["loss"])  # ln 2: the 50/50 guess


def test_sentiment_breakdown_by_negation():
    y = np.array([1, 0, 1, 0, 1])
    negated = np.array([True, True, False, False, False])
    logits = np.eye(2)[[1, 1, 1, 0, 0]] * 3.0  # right, wrong, right, right, wrong
    split = {"x": np.zeros((5, 20), dtype=np.int64), "y": y, "negated": negated}
    out = SENTIMENT.breakdowns(SMALL_SENTIMENT, logits, split)
    assert out == {"accuracy by negation": {"with negation": 0.5, "without negation": 2 / 3}}
    split["negated"] = np.ones(5, dtype=bool)
    assert SENTIMENT.breakdowns(SMALL_SENTIMENT, logits, split) == \
        {"accuracy by negation": {"with negation": 0.6}}
    assert SENTIMENT.metrics(SMALL_SENTIMENT, logits, y)["accuracy"] == 0.6


def test_sentiment_config_errors_are_one_line():
    fails(SentimentConfig, "min_clauses = 0: a sentence needs at least 1 clause", min_clauses=0)
    fails(SentimentConfig, "max_clauses = 1: must be at least 2", max_clauses=1, min_clauses=1)
    fails(SentimentConfig, r"max_clauses = 2: must be at least 2 and at least min_clauses \(3\)",
          min_clauses=3, max_clauses=2)
    fails(SentimentConfig, "max_clauses = 11: at most 10", max_clauses=11)
    fails(SentimentConfig, "n_train \\+ n_val \\+ n_test = 1000002000: too many",
          min_clauses=1, max_clauses=2, n_train=10**9)
    fails(SentimentConfig, "negation_prob", negation_prob=1.5)
    fails(SentimentConfig, "unknown|extra", vocabulary=3)


# ---------------------------------------------------------------- tagging
def test_tagging_labels_on_hand_made_and_random_sequences():
    x = np.array([[3, 0, 5, 3, 6, 0, 1, 7], [1, 1, 1, 1, 2, 2, 0, 1]])
    np.testing.assert_array_equal(occurs_later(x), [[1, 1, 0, 0, 0, 0, 0, 0],
                                                    [1, 1, 1, 1, 1, 0, 0, 0]])
    splits = TAGGING.generate(SMALL_TAGGING, 5)
    for split in splits.values():
        for row, labels in zip(split["x"], split["y"], strict=True):
            expected = [int(row[t] in row[t + 1:].tolist()) for t in range(len(row))]
            assert labels.tolist() == expected
        assert (split["y"][:, -1] == 0).all()


def test_tagging_best_causal_predictor_matches_simulation():
    cfg = TaggingConfig()
    rng = np.random.default_rng(0)
    sim = TAGGING.sample(rng, 40_000, cfg)
    x, y = sim["x"], sim["y"]
    p = causal_p(cfg.n_symbols, cfg.seq_len)
    np.testing.assert_allclose(y.mean(0), p, atol=0.012)  # sd <= 0.0025 per step
    # The past does not help: whether x_t was seen before leaves P(label) at p_t.
    seen = (x[:, :, None] == x[:, None, :]) & np.tril(np.ones((16, 16), dtype=bool), k=-1)
    seen = seen.any(2)
    for t in range(4, cfg.seq_len):
        for mask in (seen[:, t], ~seen[:, t]):
            assert abs(y[mask, t].mean() - p[t]) < 0.03
    # The bound and its cross-entropy, from predicting p_t at each step on the simulated labels.
    guess = (p > 0.5).astype(int)
    assert abs((y == guess).mean() - best_causal_accuracy(cfg.n_symbols, cfg.seq_len)) < 0.005
    logits = np.log(np.stack([1 - p, np.maximum(p, 1e-12)], -1))
    assert TAGGING.metrics(cfg, np.broadcast_to(logits, y.shape + (2,)), y)["loss"] == \
        pytest.approx(best_causal_xent(cfg.n_symbols, cfg.seq_len), abs=0.005)
    assert best_causal_accuracy(8, 16) < cfg.solved_accuracy - 0.15


def test_tagging_baseline():
    cfg = TaggingConfig(n_train=2000, n_val=100, n_test=2000)
    splits = TAGGING.generate(cfg, 0)
    base = TAGGING.baseline(cfg, splits)
    rate = splits["train"]["y"].mean()
    test_y = splits["test"]["y"]
    assert base["majority_label"] == int(rate > 0.5)
    assert base["accuracy"] == pytest.approx((test_y == int(rate > 0.5)).mean())
    assert base["accuracy"] < base["accuracy_best_causal"] < cfg.solved_accuracy
    expected = -np.mean(np.where(test_y == 1, np.log(rate), np.log(1 - rate)))
    assert base["loss"] == pytest.approx(expected)
    assert base["loss_best_unidirectional"] < base["loss"]
    perfect = np.eye(2)[test_y] * 40.0
    m = TAGGING.metrics(cfg, perfect, test_y)
    assert m["accuracy"] == 1.0 and m["loss"] < 1e-10


def test_tagging_config_errors_are_one_line():
    fails(TaggingConfig, "n_symbols = 1: the alphabet needs at least 2", n_symbols=1)
    fails(TaggingConfig, "seq_len = 1: a sequence needs at least 2 steps", seq_len=1)
    fails(TaggingConfig, r"solved_accuracy = 0.7: a unidirectional model already reaches 0.735",
          solved_accuracy=0.7)
    fails(TaggingConfig, r"solved_accuracy = 0.95: .* reaches 0.975 at n_symbols = 2",
          n_symbols=2, seq_len=40)
