"""What a trained gated cell does while it must remember: its keep gate over a memory span.

The lecture notes (001): "with forget gate f = 1 and input gate i = 0 an LSTM cell keeps its
content indefinitely". The LSTM cell state is c_t = f_t c_{t-1} + i_t g_t, so of what a cell
held at step s, the fraction f_{s+1} f_{s+2} ... f_e still reaches step e: its retention over
the span. The GRU's analogue is its update gate z (h_t = z_t h_{t-1} + (1 - z_t) n_t), whose
write gate is 1 - z. A task's memory spans (Task.memory_spans) say, per example, from which
step s the answer's information has been read to the step e where the answer is given.

keep_gate_stats runs the core cell by cell (rnnbench.probes.unrolled) on a batch and returns,
for each layer's forward direction, over the cells (hidden units) of that layer:

  near_one_fraction   cells whose keep gate stays >= NEAR_ONE at every step s+1..e, in at least
                      half of the examples (the notes' "f = 1", per step)
  keeping_fraction    cells whose retention prod_{t=s+1..e} keep_t is >= KEEPS in at least half
                      of the examples: what they held at s is still mostly there at e
  keeping_write       mean write gate (LSTM i, GRU 1 - z) over the span in the keeping cells
                      (the notes' "i = 0"; None when no cell keeps)
  retention_median    median over cells of the median retention over examples
  keep_mean           mean keep gate over all cells, examples and span steps
  span_mean           mean span length e - s, steps
"""

from __future__ import annotations

import statistics

import torch

from rnnbench.probes.unrolled import can_unroll, cell_kind, direction_name, unrolled_forward

# The keep gate's block in unrolled_forward's trace 'gates' (LSTM: i, f, o; GRU: r, z), and the
# write gate's block (None: 1 - the keep gate).
KEEP_GATE = {"lstm": ("f", 1, 0), "gru": ("z", 1, None)}
NEAR_ONE = 0.95  # a keep gate this close to 1 at a step counts as "f = 1" there
KEEPS = 0.5  # retention over the span at which a cell counts as keeping its content


def _per_cell_majority(flags: torch.Tensor) -> torch.Tensor:
    """flags (B, H) bool -> (H,) bool: true for at least half of the examples."""
    return flags.double().mean(dim=0) >= 0.5


@torch.no_grad()
def keep_gate_stats(core: torch.nn.Module, x: torch.Tensor, spans) -> dict | None:
    """The statistics above for x (B, T, D) and spans (B, 2) of (s, e) steps; None for cells
    without a keep gate (Elman RNNs), cores the probes cannot unroll, or a span shorter than
    one step in every example."""
    if not can_unroll(core):
        return None
    kind = cell_kind(core)
    if kind not in KEEP_GATE:
        return None
    gate, keep_block, write_block = KEEP_GATE[kind]
    spans = torch.as_tensor(spans, dtype=torch.long, device=x.device)
    s, e = spans[:, 0], spans[:, 1]
    T, H = x.shape[1], core.hidden_size
    steps = torch.arange(T, device=x.device)[None, :]  # (1, T)
    inside = (steps > s[:, None]) & (steps <= e[:, None])  # (B, T): steps s+1..e
    if not bool(inside.any()):
        return None
    trace: dict = {}
    unrolled_forward(core, x, trace=trace)
    out = {"cell": kind, "gate": gate, "near_one": NEAR_ONE, "keeps": KEEPS,
           "span_mean": float((e - s).double().mean()), "examples": int(len(x)), "layers": {}}
    mask = inside[:, :, None].to(x.dtype)  # (B, T, 1)
    n_steps = inside.sum(dim=1).clamp(min=1)[:, None].to(x.dtype)  # (B, 1)
    for (layer, direction), tr in trace.items():
        if direction:  # a backward direction reads the span the other way round
            continue
        g = torch.stack(tr["gates"], dim=1)  # (B, T, k*H)
        keep = g[..., keep_block * H:(keep_block + 1) * H]  # (B, T, H)
        write = 1 - keep if write_block is None else g[..., write_block * H:(write_block + 1) * H]
        # retention: the product of the keep gates over the span, summed in logs for precision
        log_keep = torch.log(keep.double().clamp(min=1e-300)) * mask.double()
        retention = log_keep.sum(dim=1).exp()  # (B, H)
        low = torch.where(inside[:, :, None], keep, torch.ones_like(keep)).amin(dim=1)  # (B, H)
        near = _per_cell_majority(low >= NEAR_ONE)  # (H,)
        keeping = _per_cell_majority(retention >= KEEPS)
        write_mean = ((write * mask).sum(dim=1) / n_steps).mean(dim=0)  # (H,)
        med = retention.median(dim=0).values  # (H,) median over examples
        out["layers"][direction_name(layer, direction)] = {
            "near_one_fraction": float(near.double().mean()),
            "keeping_fraction": float(keeping.double().mean()),
            "keeping_cells": int(keeping.sum()),
            "keeping_write": float(write_mean[keeping].mean()) if bool(keeping.any()) else None,
            "retention_median": float(statistics.median(med.tolist())),
            "keep_mean": float((keep * mask).sum() / (mask.sum() * H)),
        }
    return out
