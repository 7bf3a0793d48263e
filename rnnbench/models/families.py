"""The model registry: one entry per family, carrying its schema and its facts.

A family's entry says which config it takes, which task shapes it serves, its recurrent cell,
whether it is gated, whether it runs on the CPU only, which implementation computes it, its
closed-form parameter count, and which builder of rnnbench.models.build makes it. Everything
outside this module asks the registry (`FAMILIES[cfg.family]`) instead of testing a family's
name. No torch here: params validation, the report and `rnnbench list` read the facts without
loading a network library.

The built model honours one contract (rnnbench.models.contract.SequenceModel).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field

from rnnbench.config import PositiveFloat, PositiveInt, StrictModel
from rnnbench.models.cost import CELL_GATES, STATE_FREE, Core, core_params
from rnnbench.tasks.base import TaskSpec


# ---------------------------------------------------------------- schemas
class _RecurrentBase(StrictModel):
    hidden_size: PositiveInt = 64
    num_layers: PositiveInt = 1
    bidirectional: bool = False
    # Compare at equal size: when set, each task's hidden_size is chosen so that the model's
    # parameter count (for that task's input and output sizes) comes closest to this budget.
    param_budget: PositiveInt | None = None


class _ElmanBase(_RecurrentBase):
    nonlinearity: Literal["tanh", "relu"] = "tanh"
    # Recurrent matrices W_hh at initialisation: torch's uniform init (null), or a random
    # orthogonal matrix times this scale, so that every singular value equals it (the
    # vanishing/exploding experiments set sigma_max(W_hh) this way).
    w_hh_scale: PositiveFloat | None = None


class RNNConfig(_ElmanBase):
    family: Literal["rnn"]


class NumbaRNNConfig(_ElmanBase):
    family: Literal["numba_rnn"]


class LSTMConfig(_RecurrentBase):
    family: Literal["lstm"]
    # Sum b_ih + b_hh of the forget gate at initialisation; None keeps torch's uniform init.
    # 1.0 follows Jozefowicz, Zaremba & Sutskever (2015), "An Empirical Exploration of RNNs".
    forget_bias: float | None = 1.0


class GRUConfig(_RecurrentBase):
    family: Literal["gru"]


class _MinBase(_RecurrentBase):
    # How the linear recurrence h_t = a_t h_{t-1} + b_t is computed (rnnbench.models.minimal):
    # a plain loop over t, the log-space scan (cumsum + logcumsumexp), or the loop as one
    # compiled Numba kernel (CPU only). The same function.
    mode: Literal["sequential", "parallel", "numba"] = "parallel"


class MinGRUConfig(_MinBase):
    """minGRU, Feng et al. 2024: the GRU with gates and candidate reading x_t only."""

    family: Literal["mingru"]


class MinLSTMConfig(_MinBase):
    """minLSTM, Feng et al. 2024: the LSTM with state-free, normalised forget/input gates."""

    family: Literal["minlstm"]


class Seq2SeqConfig(_RecurrentBase):
    """Encoder-decoder: `bidirectional` applies to the encoder, `num_layers` to both."""

    family: Literal["seq2seq"]
    cell: Literal["gru", "lstm"] = "gru"
    attention: bool = False  # additive attention, Bahdanau, Cho & Bengio (2015)
    embed_size: PositiveInt = 32  # token embedding width, encoder and decoder
    # Fraction of decoder steps fed the true previous token while training (the rest get the
    # model's own greedy prediction); evaluation always decodes greedily.
    teacher_forcing: Annotated[float, Field(ge=0, le=1)] = 1.0


ModelConfig = Annotated[
    RNNConfig | NumbaRNNConfig | LSTMConfig | GRUConfig | MinGRUConfig | MinLSTMConfig
    | Seq2SeqConfig,
    Field(discriminator="family"),
]


# ---------------------------------------------------------------- parameter counts
def _recurrent_count(cfg, spec: TaskSpec, cell: str) -> int:
    """Core + linear head: dirs*H*O + O."""
    core = Core(cell, spec.input_size, cfg.hidden_size, cfg.num_layers, cfg.bidirectional)
    return core_params(core) + core.dirs * cfg.hidden_size * spec.output_size + spec.output_size


def _seq2seq_count(cfg: Seq2SeqConfig, spec: TaskSpec) -> int:
    """Embeddings, encoder, decoder (its input widened by the context with attention), the
    bidirectional encoder's bridges, the attention's three maps and the output layer."""
    e, h = cfg.embed_size, cfg.hidden_size
    dirs = 2 if cfg.bidirectional else 1
    ctx = dirs * h if cfg.attention else 0
    total = (spec.input_vocab + spec.output_size) * e
    total += core_params(Core(cfg.cell, e, h, cfg.num_layers, cfg.bidirectional))
    total += core_params(Core(cfg.cell, e + ctx, h, cfg.num_layers, False))
    if cfg.bidirectional:
        total += (2 if cfg.cell == "lstm" else 1) * (2 * h * h + h)
    if cfg.attention:
        total += dirs * h * h + (h * h + h) + h
    return total + (h + ctx) * spec.output_size + spec.output_size


# ---------------------------------------------------------------- the registry
RECURRENT_SHAPES = frozenset({"many_to_one", "many_to_many", "one_to_many"})


@dataclass(frozen=True)
class Family:
    name: str
    config: type[StrictModel]
    shapes: frozenset[str]  # task shapes (TaskSpec.shape) it serves
    implementation: Literal["torch", "numba"]  # what computes the recurrence
    cpu_only: bool
    builder: str  # the function of rnnbench.models.build that builds it: (cfg, spec, entry)
    counter: Callable[[Any, TaskSpec], int]  # closed-form trainable parameters at cfg's width
    fixed_cell: str | None = None  # the recurrent cell; None: the config's `cell` chooses

    def cell(self, cfg) -> str:
        return self.fixed_cell or cfg.cell

    def gated(self, cfg) -> bool:
        return CELL_GATES[self.cell(cfg)] > 1

    def state_free(self, cfg) -> bool:
        """Gates that never read h_{t-1}: the recurrence is a linear scan."""
        return self.cell(cfg) in STATE_FREE

    def facts(self, cfg) -> dict:
        """What a result file records about the family, so readers need not know names.
        classic: for a state-free cell, the cell whose gates read h_{t-1} it simplifies."""
        return {"cell": self.cell(cfg), "gates": CELL_GATES[self.cell(cfg)],
                "gated": self.gated(cfg), "state_free": self.state_free(cfg),
                "classic": STATE_FREE.get(self.cell(cfg)),
                "implementation": self.implementation,
                "cpu_only": self.cpu_only, "encoder_decoder": self.shapes == {"seq2seq"}}


def _recurrent(name: str, config, cell: str, implementation="torch", cpu_only=False) -> Family:
    return Family(name, config, RECURRENT_SHAPES, implementation, cpu_only, "recurrent_net",
                  lambda cfg, spec: _recurrent_count(cfg, spec, cell), fixed_cell=cell)


FAMILIES: dict[str, Family] = {f.name: f for f in (
    _recurrent("rnn", RNNConfig, "rnn"),
    _recurrent("lstm", LSTMConfig, "lstm"),
    _recurrent("gru", GRUConfig, "gru"),
    _recurrent("numba_rnn", NumbaRNNConfig, "rnn", implementation="numba", cpu_only=True),
    _recurrent("mingru", MinGRUConfig, "mingru"),
    _recurrent("minlstm", MinLSTMConfig, "minlstm"),
    Family("seq2seq", Seq2SeqConfig, frozenset({"seq2seq"}), "torch", False, "seq2seq",
           _seq2seq_count),
)}
MAX_BUDGET_WIDTH = 4096  # widest hidden size a parameter budget may choose


def family(cfg) -> Family:
    return FAMILIES[cfg.family]


def why_not(cfg, spec: TaskSpec) -> str | None:
    """Why this model cannot serve this task, or None when it can."""
    if spec.shape not in family(cfg).shapes:
        return f"the {cfg.family} family does not serve {spec.shape} tasks"
    if spec.causal and cfg.bidirectional:
        return "a bidirectional model would read the answer: the task is causal"
    return None


def serves(cfg, spec: TaskSpec) -> bool:
    return why_not(cfg, spec) is None


def resolve_width(cfg, spec: TaskSpec):
    """The config with hidden_size chosen for cfg.param_budget on this task (closest count; the
    narrower width on a tie); unchanged when no budget is set."""
    if cfg.param_budget is None:
        return cfg
    count = family(cfg).counter

    def at(h: int) -> int:
        return count(cfg.model_copy(update={"hidden_size": h}), spec)

    lo, hi = 1, MAX_BUDGET_WIDTH  # the count grows with the width: bisect for the crossing
    while lo < hi:
        mid = (lo + hi) // 2
        if at(mid) < cfg.param_budget:
            lo = mid + 1
        else:
            hi = mid
    best = min((h for h in (lo - 1, lo) if h >= 1), key=lambda h: abs(at(h) - cfg.param_budget))
    return cfg.model_copy(update={"hidden_size": best})


def param_count(cfg, spec: TaskSpec) -> int:
    """Trainable parameters from the closed form (the width a parameter budget chooses)."""
    cfg = resolve_width(cfg, spec)
    return family(cfg).counter(cfg, spec)
