"""The task/model contract's newer parts: carried state (truncated BPTT), encoder-decoders
taking targets, causal tasks, parameter budgets, and grid blocks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnbench.config import ConfigError
from rnnbench.models.build import build_model
from rnnbench.models.families import (
    GRUConfig,
    LSTMConfig,
    RNNConfig,
    param_count,
    resolve_width,
    why_not,
)
from rnnbench.tasks.base import PAD, TaskSpec, xent_np
from rnnbench.training.encode import loss_fn
from rnnbench.training.fit import fit, planned_steps, predict
from rnnbench.training.schema import TrainConfig

S, T, K, V = 3, 4, 5, 6  # streams, chunk length, chunks per stream, vocabulary


def lm_spec(**kw) -> TaskSpec:
    base = dict(name="lm", shape="many_to_many", input_size=V, output_size=V, loss="xent",
                readout="all", metric="accuracy", higher_is_better=True, solved_threshold=1.0,
                definition="test", input_vocab=V, causal=True, streams=S)
    return TaskSpec(**(base | kw))


def chunk_major(streams: np.ndarray) -> np.ndarray:
    """(S, K*T) streams -> rows (K*S, T): row k*S + s is chunk k of stream s."""
    return streams.reshape(S, K, T).transpose(1, 0, 2).reshape(K * S, T)


def test_stateful_prediction_equals_one_pass_over_each_stream():
    torch.manual_seed(0)
    model = build_model(GRUConfig(family="gru", hidden_size=5), lm_spec()).double()
    x = torch.randn(S, K * T, V, dtype=torch.float64)
    whole = model.head(model.core(x)[0]).detach().numpy()  # (S, K*T, V) in one pass
    rows = x.reshape(S, K, T, V).transpose(0, 1).reshape(K * S, T, V)
    model.state = "training state"  # predict must give it back
    chunked = predict(model, rows, S)  # (K*S, T, V)
    np.testing.assert_allclose(chunked.reshape(K, S, T, V).transpose(1, 0, 2, 3)
                               .reshape(S, K * T, V), whole, rtol=1e-12, atol=1e-12)
    assert model.state == "training state"


def test_carried_state_is_detached_between_chunks():
    torch.manual_seed(0)
    model = build_model(LSTMConfig(family="lstm", hidden_size=5), lm_spec())
    first = torch.randn(S, T, V, requires_grad=True)
    model(first)
    assert isinstance(model.state, tuple) and not any(h.requires_grad for h in model.state)
    model(torch.randn(S, T, V)).sum().backward()
    assert first.grad is None  # no gradient crosses the chunk boundary
    model.reset_state()
    assert model.state is None


def test_fit_takes_chunks_in_order_and_resets_each_epoch():
    """A stream whose every target is its first token: only carried state can know it after
    chunk 0. Record the batches fit takes and when it resets."""
    rng = np.random.default_rng(0)
    streams = rng.integers(0, V, size=(S, K * T))
    y = np.repeat(streams[:, :1], K * T, axis=1)
    data = {s: {"x": chunk_major(streams), "y": chunk_major(y)} for s in ("train", "val", "test")}
    spec = lm_spec()
    torch.manual_seed(0)
    model = build_model(RNNConfig(family="rnn", hidden_size=4), spec)
    seen, resets = [], []
    forward, reset = model.forward, model.reset_state
    model.forward = lambda x: (seen.append(x.argmax(-1)[:, 0].tolist()) or forward(x))
    model.reset_state = lambda: (resets.append(len(seen)) or reset())
    cfg = TrainConfig(max_epochs=2, batch_size=999, device="cpu")  # validates each epoch
    assert planned_steps(K * S, cfg, spec) == 2 * K
    result = fit(model, spec, lambda p, yy: {"loss": 0.0, "accuracy": 0.0}, data, cfg, seed=0)
    assert result.steps == 2 * K
    train_calls = seen[:K] + seen[K + K:2 * K + K]  # validation pass after epoch 1 in between
    expected = [chunk_major(streams)[k * S:(k + 1) * S, 0].tolist() for k in range(K)]
    assert train_calls[:K] == expected and train_calls[K:] == expected
    assert resets[:2] == [0, K + K]  # before each epoch's first chunk (after 1 validation pass)


class EchoSeq2Seq(torch.nn.Module):
    """Records whether it got targets: fit must pass them while training, never in evaluation."""

    takes_targets = True
    stateful = False

    def precompile(self) -> float:
        return 0.0

    def reset_state(self) -> None:
        pass

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(4))
        self.calls: list[bool] = []

    def forward(self, x, y=None):
        self.calls.append(y is not None)
        return self.w.expand(len(x), 3, 4)


def test_fit_feeds_targets_to_encoder_decoders_in_training_only():
    spec = TaskSpec(name="s2s", shape="seq2seq", input_size=5, output_size=4, loss="xent",
                    readout="all", metric="exact_match", higher_is_better=True,
                    solved_threshold=1.0, definition="test", input_vocab=5, output_len=3)
    x = np.array([[3, 4, PAD], [4, 3, 3]] * 4)
    y = np.array([[3, 2, PAD], [3, 3, 2]] * 4)
    data = {s: {"x": x, "y": y} for s in ("train", "val", "test")}
    model = EchoSeq2Seq()
    cfg = TrainConfig(max_epochs=1, batch_size=4, device="cpu")
    fit(model, spec, lambda p, yy: {"loss": 0.0, "exact_match": 0.0}, data, cfg, seed=0)
    assert model.calls == [True, True, False, False]  # 2 steps, then validation and test


def test_pad_targets_count_in_no_loss():
    spec = TaskSpec(name="s2s", shape="seq2seq", input_size=5, output_size=4, loss="xent",
                    readout="all", metric="exact_match", higher_is_better=True,
                    solved_threshold=1.0, definition="test", input_vocab=5, output_len=3)
    logits = torch.randn(2, 3, 4)
    y = torch.tensor([[3, 2, PAD], [1, 3, 2]])
    keep = y != PAD
    expected = torch.nn.functional.cross_entropy(logits[keep], y[keep])
    assert float(loss_fn(spec, logits, y)) == pytest.approx(float(expected))
    assert xent_np(logits.numpy(), y.numpy(), ignore_index=PAD) == pytest.approx(float(expected))


def test_bidirectional_models_cannot_serve_causal_tasks():
    spec = lm_spec()
    assert why_not(GRUConfig(family="gru", bidirectional=True), spec) is not None
    assert why_not(GRUConfig(family="gru"), spec) is None
    assert why_not(GRUConfig(family="gru", bidirectional=True), lm_spec(causal=False)) is None
    with pytest.raises(ValueError, match="causal"):
        build_model(GRUConfig(family="gru", bidirectional=True), spec)


@pytest.mark.parametrize("family,cls", [("rnn", RNNConfig), ("lstm", LSTMConfig),
                                        ("gru", GRUConfig)])
def test_parameter_budget_picks_the_closest_width(family, cls):
    spec = lm_spec()
    cfg = cls(family=family, param_budget=20_000)
    chosen = resolve_width(cfg, spec)
    count = param_count(cfg, spec)

    def at(h):
        return param_count(cls(family=family, hidden_size=h), spec)

    assert count == at(chosen.hidden_size)
    assert abs(count - 20_000) <= min(abs(at(chosen.hidden_size + 1) - 20_000),
                                      abs(at(chosen.hidden_size - 1) - 20_000))
    assert sum(p.numel() for p in build_model(cfg, spec).parameters()) == count


def test_equal_budget_gives_gated_models_narrower_layers():
    spec = lm_spec()
    widths = {f: resolve_width(c(family=f, param_budget=30_000), spec).hidden_size
              for f, c in (("rnn", RNNConfig), ("gru", GRUConfig), ("lstm", LSTMConfig))}
    assert widths["rnn"] > widths["gru"] > widths["lstm"]


def test_grid_block_pairing_a_model_with_a_task_it_cannot_serve_fails(params_path):
    from rnnbench.params import load_params

    with pytest.raises(ConfigError, match=r"grid.blocks.bad: model 's2s' \(seq2seq\) cannot serve "
                                          r"task 'adding' \(many_to_one\): the seq2seq family") \
            as err:
        load_params(params_path, ["models.s2s={family: seq2seq}",
                                  "grid.blocks.bad={models: [s2s], tasks: [adding]}"])
    assert "\n" not in str(err.value)
