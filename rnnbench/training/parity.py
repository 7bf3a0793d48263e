"""How far two training runs of the same vanilla RNN drift apart, step by step.

torch's nn.RNN and the hand-written Numba RNN start from identical weights (one seed) and see
the same batches through the one training loop (fit); in float64 their losses agree to ~1e-15
at first. On a long sequence the trajectory is chaotic: any last-bit difference grows about
tenfold a step once it shows. The yardstick is torch against itself with ONE recurrent weight
moved by one ulp (numpy.nextafter): if rnn vs numba_rnn parts no sooner than that, the kernels
differ from torch by rounding, not by a bug. The report plots both gaps (report/parity.py).
"""

from __future__ import annotations

import numpy as np
import torch

from rnnbench.models.build import build_model
from rnnbench.models.families import NumbaRNNConfig, RNNConfig
from rnnbench.tasks.adding import Adding, AddingConfig
from rnnbench.training.fit import fit
from rnnbench.training.schema import TrainConfig


def nudge_one_ulp(model: torch.nn.Module) -> float:
    """Move W_hh[0, 0] of the first layer up by one ulp of its dtype; returns the change."""
    w = model.core.weight_hh_l0
    with torch.no_grad():
        old = w[0, 0].item()
        dtype = np.float64 if w.dtype == torch.float64 else np.float32
        w[0, 0] = float(np.nextafter(dtype(old), dtype(np.inf)))
        return w[0, 0].item() - old


def _losses(family: str, hidden: int, task_cfg: AddingConfig, data, train_cfg: TrainConfig,
            seed: int, nudge: bool = False) -> list[float]:
    task = Adding()
    spec = task.spec(task_cfg)
    config = (RNNConfig if family == "rnn" else NumbaRNNConfig)(family=family,
                                                                  hidden_size=hidden)
    torch.manual_seed(seed)
    model = build_model(config, spec).double()  # fit keeps float64: the nudge is kept exact
    if nudge:
        nudge_one_ulp(model)
    losses: list[float] = []
    fit(model, spec, lambda p, y: task.metrics(task_cfg, p, y), data, train_cfg, seed,
        on_epoch=lambda row, series: losses.extend(series["train_loss"]))
    return losses


def loss_divergence(hidden: int = 64, seq_len: int = 100, steps: int = 60, batch: int = 32,
                    lr: float = 0.01, seed: int = 0) -> dict:
    """Per-step training losses of rnn, numba_rnn and rnn with one weight moved by one ulp, on
    the adding task, float64, Adam with clipping, all from one seed; and the gaps
    |loss_numba - loss_rnn| and |loss_rnn+1ulp - loss_rnn| per step (step 1 first)."""
    task_cfg = AddingConfig(seq_len=seq_len, n_train=steps * batch, n_val=batch, n_test=batch)
    data = Adding().generate(task_cfg, seed)
    train_cfg = TrainConfig(lr=lr, batch_size=batch, max_steps=steps, max_epochs=1,
                            early_stop=False, keep_best=False, dtype="float64", device="cpu")
    args = (hidden, task_cfg, data, train_cfg, seed)
    rnn, numba = _losses("rnn", *args), _losses("numba_rnn", *args)
    nudged = _losses("rnn", *args, nudge=True)
    gap = {"numba_vs_rnn": np.abs(np.subtract(numba, rnn)).tolist(),
           "ulp_vs_rnn": np.abs(np.subtract(nudged, rnn)).tolist()}
    return {"task": "adding", "hidden": hidden, "seq_len": seq_len, "batch": batch, "lr": lr,
            "steps": steps, "seed": seed, "dtype": "float64", "optimizer": "adam",
            "loss": {"rnn": rnn, "numba_rnn": numba, "rnn_1ulp": nudged}, "gap": gap}

