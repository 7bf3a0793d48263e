"""The model registry: each family builds a network for a task from its config, by one contract.

build_model(cfg, spec) -> nn.Module mapping model inputs (B, T, spec.input_size) to predictions
shaped for the task's readout. The training loop, probes and timing code call only this.
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


# family -> (task shapes it serves, core builder)
FAMILIES: dict[str, tuple[frozenset[str], Callable]] = {
    "rnn": (frozenset({"many_to_one", "many_to_many"}), _rnn_core),
    "lstm": (frozenset({"many_to_one", "many_to_many"}), _lstm_core),
    "gru": (frozenset({"many_to_one", "many_to_many"}), _gru_core),
    "numba_rnn": (frozenset({"many_to_one", "many_to_many"}), _numba_core),
}


def serves(cfg, spec: TaskSpec) -> bool:
    return spec.shape in FAMILIES[cfg.family][0]


def build_model(cfg, spec: TaskSpec) -> nn.Module:
    """A fresh, randomly initialised network; seed torch's RNG before calling for repeatability."""
    shapes, core_builder = FAMILIES[cfg.family]
    if spec.shape not in shapes:
        raise ValueError(f"model family {cfg.family!r} does not serve {spec.shape} tasks "
                         f"such as {spec.name!r}")
    core = core_builder(cfg, spec.input_size)
    return RecurrentNet(core, cfg.hidden_size, cfg.bidirectional, spec.output_size, spec.readout)


def param_count(cfg, spec: TaskSpec) -> int:
    """Trainable parameters from the closed form: recurrent core plus the linear head."""
    dirs = 2 if cfg.bidirectional else 1
    head = dirs * cfg.hidden_size * spec.output_size + spec.output_size
    return recurrent_param_count(cfg.family, spec.input_size, cfg.hidden_size, cfg.num_layers,
                                 cfg.bidirectional) + head


__all__ = ["FAMILIES", "RecurrentNet", "build_model", "param_count", "serves"]
