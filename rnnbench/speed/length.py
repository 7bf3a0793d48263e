"""Time against sequence length: the classic cells, whose gates read h_{t-1}, beside the
state-free ones (minGRU, minLSTM) computed by a plain loop and by the log-space scan.

For each size basis (equal width, or equal parameter count with the reference model) and each
T of the LengthGrid, every case is built by rnnbench.speed.bench (the training step fit takes)
and the training steps are timed interleaved; the records go to speed.json's "length" list.
The report fits them (rnnbench.report.speed_length).
"""

from __future__ import annotations

from rnnbench.models.cost import STATE_FREE
from rnnbench.models.families import FAMILIES, param_count, resolve_width
from rnnbench.speed.bench import SCAN_MODES, Case, applicable, kernel_of, make_bench
from rnnbench.speed.schema import LengthGrid
from rnnbench.speed.timing import interleave, ms


def widths(grid: LengthGrid, size: str) -> dict[str, int]:
    """family -> H: `hidden` for "width"; for "params" the width whose parameter count (model
    and head on the benchmark's task) comes closest to the reference model's at `hidden`."""
    if size == "width":
        return {f: grid.hidden for f in grid.models}
    spec = Case(grid.reference, grid.hidden, grid.batch, 1, grid.input_size).spec()
    ref = FAMILIES[grid.reference]
    budget = param_count(ref.config(family=grid.reference, hidden_size=grid.hidden), spec)
    return {f: resolve_width(FAMILIES[f].config(family=f, param_budget=budget), spec).hidden_size
            for f in grid.models}


def length_cases(grid: LengthGrid, size: str, seq_len: int, device: str, dtype: str,
                 optimizer: str) -> list[Case]:
    """Each model as shipped at this T, and each state-free one also in its other modes that
    apply on the device (a plain loop; the Numba kernel on the CPU)."""
    h = widths(grid, size)
    cases = [Case(f, h[f], grid.batch, seq_len, grid.input_size, device=device, dtype=dtype,
                  impl=impl, optimizer=optimizer)
             for f in grid.models for impl in ("default", *SCAN_MODES)]
    return [c for c in cases if applicable(c) is None]


def time_lengths(grid: LengthGrid, device: str, dtype: str, optimizer: str, warmup: int,
                 repeats: int, min_sample_s: float, seed: int) -> list[dict]:
    """One record per (size, T, case): the training step's time, parameters and kernel."""
    out = []
    for size in grid.sizes:
        for t in grid.seq_len:
            cases = length_cases(grid, size, t, device, dtype, optimizer)
            benches = {c.key(): make_bench(c, seed) for c in cases}
            sync = next(iter(benches.values())).sync
            times = interleave({k: b.train_step for k, b in benches.items()}, warmup,
                               grid.repeats or repeats, min_sample_s, sync)
            for c in cases:
                b = benches[c.key()]
                out.append({"size": size, "key": c.key(), "family": c.family, "cell": c.cell,
                            "state_free": c.cell in STATE_FREE, "impl": c.impl,
                            "device": device, "hidden": c.hidden, "batch": c.batch,
                            "seq_len": t, "input_size": c.input_size, "params": b.params,
                            "kernel": kernel_of(b, c), "train_step_ms": ms(times[c.key()])})
            del benches
    return out
