"""The model registry: each family builds a network for a task from its config, by one contract.

build_model(cfg, spec) -> nn.Module mapping model inputs (B, T, spec.input_size) to predictions
shaped for the task's readout (seq2seq models map token ids (B, T_in) to logits
(B, spec.output_len, vocab), and take the targets while training: `takes_targets`). The
training loop, probes and timing code call only this.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from rnnbench.config import GRUConfig, LSTMConfig, NumbaRNNConfig, RNNConfig
from rnnbench.models.recurrent import (
    RecurrentNet,
    lstm_forget_bias_,
    recurrent_param_count,
    scaled_orthogonal_w_hh_,
)
from rnnbench.tasks.base import TaskSpec


def _rnn_core(cfg: RNNConfig, input_size: int) -> nn.Module:
    core = nn.RNN(input_size, cfg.hidden_size, num_layers=cfg.num_layers,
                  nonlinearity=cfg.nonlinearity, batch_first=True,
                  bidirectional=cfg.bidirectional)
    if cfg.w_hh_scale is not None:
        scaled_orthogonal_w_hh_(core, cfg.w_hh_scale)
    return core


def _numba_core(cfg: NumbaRNNConfig, input_size: int) -> nn.Module:
    from rnnbench.models.numba_rnn import NumbaRNN  # imports numba only when used

    core = NumbaRNN(input_size, cfg.hidden_size, num_layers=cfg.num_layers,
                    nonlinearity=cfg.nonlinearity, bidirectional=cfg.bidirectional)
    if cfg.w_hh_scale is not None:
        scaled_orthogonal_w_hh_(core, cfg.w_hh_scale)
    return core


def _lstm_core(cfg: LSTMConfig, input_size: int) -> nn.Module:
    core = nn.LSTM(input_size, cfg.hidden_size, num_layers=cfg.num_layers, batch_first=True,
                   bidirectional=cfg.bidirectional)
    if cfg.forget_bias is not None:
        lstm_forget_bias_(core, cfg.forget_bias)
    return core


def _gru_core(cfg: GRUConfig, input_size: int) -> nn.Module:
    return nn.GRU(input_size, cfg.hidden_size, num_layers=cfg.num_layers, batch_first=True,
                  bidirectional=cfg.bidirectional)


# Recurrent families: family -> (task shapes it serves, core builder). The seq2seq family wraps
# its own encoder and decoder (models/seq2seq.py) and serves seq2seq tasks only.
RECURRENT_SHAPES = frozenset({"many_to_one", "many_to_many"})
FAMILIES: dict[str, tuple[frozenset[str], Callable]] = {
    "rnn": (RECURRENT_SHAPES, _rnn_core),
    "lstm": (RECURRENT_SHAPES, _lstm_core),
    "gru": (RECURRENT_SHAPES, _gru_core),
    "numba_rnn": (RECURRENT_SHAPES, _numba_core),
}
SHAPES_SERVED = {**{f: shapes for f, (shapes, _) in FAMILIES.items()},
                 "seq2seq": frozenset({"seq2seq"})}
MAX_BUDGET_WIDTH = 4096  # widest hidden size a parameter budget may choose


def why_not(cfg, spec: TaskSpec) -> str | None:
    """Why this model cannot serve this task, or None when it can."""
    if spec.shape not in SHAPES_SERVED[cfg.family]:
        return f"the {cfg.family} family does not serve {spec.shape} tasks"
    if spec.causal and cfg.bidirectional:
        return "a bidirectional model would read the answer: the task is causal"
    return None


def serves(cfg, spec: TaskSpec) -> bool:
    return why_not(cfg, spec) is None


def _count(cfg, spec: TaskSpec) -> int:
    if cfg.family == "seq2seq":
        from rnnbench.models.seq2seq import seq2seq_param_count

        return seq2seq_param_count(cfg, spec)
    dirs = 2 if cfg.bidirectional else 1
    head = dirs * cfg.hidden_size * spec.output_size + spec.output_size
    return recurrent_param_count(cfg.family, spec.input_size, cfg.hidden_size, cfg.num_layers,
                                 cfg.bidirectional) + head


def resolve_width(cfg, spec: TaskSpec):
    """The config with hidden_size chosen for cfg.param_budget on this task (closest count; the
    narrower width on a tie); unchanged when no budget is set."""
    if cfg.param_budget is None:
        return cfg
    lo, hi = 1, MAX_BUDGET_WIDTH  # the count grows with the width: bisect for the crossing
    while lo < hi:
        mid = (lo + hi) // 2
        if _count(cfg.model_copy(update={"hidden_size": mid}), spec) < cfg.param_budget:
            lo = mid + 1
        else:
            hi = mid
    best = min((h for h in (lo - 1, lo) if h >= 1), key=lambda h: abs(
        _count(cfg.model_copy(update={"hidden_size": h}), spec) - cfg.param_budget))
    return cfg.model_copy(update={"hidden_size": best})


def build_model(cfg, spec: TaskSpec) -> nn.Module:
    """A fresh, randomly initialised network; seed torch's RNG before calling for repeatability."""
    reason = why_not(cfg, spec)
    if reason is not None:
        raise ValueError(f"model family {cfg.family!r} cannot serve task {spec.name!r}: {reason}")
    cfg = resolve_width(cfg, spec)
    if cfg.family == "seq2seq":
        from rnnbench.models.seq2seq import Seq2Seq

        return Seq2Seq(cfg, spec)
    core = FAMILIES[cfg.family][1](cfg, spec.input_size)
    return RecurrentNet(core, cfg.hidden_size, cfg.bidirectional, spec.output_size, spec.readout,
                        stateful=spec.stateful)


def param_count(cfg, spec: TaskSpec) -> int:
    """Trainable parameters from the closed form (the width a parameter budget chooses)."""
    return _count(resolve_width(cfg, spec), spec)


__all__ = ["FAMILIES", "RecurrentNet", "build_model", "param_count", "resolve_width", "serves",
           "why_not"]
