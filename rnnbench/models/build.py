"""Building networks: build_model(cfg, spec) calls the builder its family's registry entry
names (rnnbench/models/families.py).

recurrent_net maps model inputs (B, T, spec.input_size) to predictions shaped for the task's
readout; seq2seq maps token ids (B, T_in) to logits (B, spec.output_len, V). Which core a
recurrent family gets follows its entry's facts (cell and implementation), never its name.
"""

from __future__ import annotations

from torch import nn

from rnnbench.models.cost import STATE_FREE
from rnnbench.models.families import Family, family, resolve_width, why_not
from rnnbench.models.recurrent import RecurrentNet, lstm_forget_bias_, scaled_orthogonal_w_hh_
from rnnbench.tasks.base import TaskSpec

TORCH_CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def recurrent_core(cfg, input_size: int, fam: Family) -> nn.Module:
    """The family's recurrent core, batch-first, initialised from torch's RNG; Elman configs
    may set sigma_max(W_hh) (w_hh_scale), LSTM configs the forget-gate bias; state-free cells
    (minGRU, minLSTM) get rnnbench.models.minimal's core in the config's mode."""
    cell = fam.cell(cfg)
    kw = {"num_layers": cfg.num_layers, "bidirectional": cfg.bidirectional}
    if cell in STATE_FREE:
        from rnnbench.models.minimal import MinRNN

        return MinRNN(cell, input_size, cfg.hidden_size, mode=cfg.mode, **kw)
    if cell == "rnn":
        kw["nonlinearity"] = cfg.nonlinearity
    if fam.implementation == "numba":
        from rnnbench.models.numba_rnn import NumbaRNN  # imports numba only when used

        core = NumbaRNN(input_size, cfg.hidden_size, **kw)
    else:
        core = TORCH_CELLS[cell](input_size, cfg.hidden_size, batch_first=True, **kw)
    if getattr(cfg, "w_hh_scale", None) is not None:
        scaled_orthogonal_w_hh_(core, cfg.w_hh_scale)
    if getattr(cfg, "forget_bias", None) is not None:
        lstm_forget_bias_(core, cfg.forget_bias)
    return core


def recurrent_net(cfg, spec: TaskSpec, fam: Family) -> RecurrentNet:
    core = recurrent_core(cfg, spec.input_size, fam)
    return RecurrentNet(core, cfg.hidden_size, cfg.bidirectional, spec.output_size, spec.readout,
                        stateful=spec.stateful)


def seq2seq(cfg, spec: TaskSpec, fam: Family) -> nn.Module:
    from rnnbench.models.seq2seq import Seq2Seq

    return Seq2Seq(cfg, spec)


BUILDERS = {"recurrent_net": recurrent_net, "seq2seq": seq2seq}


def build_model(cfg, spec: TaskSpec) -> nn.Module:
    """A fresh, randomly initialised network (rnnbench.models.contract.SequenceModel); seed
    torch's RNG before calling for repeatability."""
    reason = why_not(cfg, spec)
    if reason is not None:
        raise ValueError(f"model family {cfg.family!r} cannot serve task {spec.name!r}: {reason}")
    cfg = resolve_width(cfg, spec)
    fam = family(cfg)
    return BUILDERS[fam.builder](cfg, spec, fam)
