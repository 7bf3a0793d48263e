"""Time one training step (forward + BPTT + Adam) of NumbaRNN vs torch.nn.RNN on CPU.

    python bench/numba_step.py --shapes 32x1x50 128x16x200 --threads 2

Each shape is HxBxT (hidden, batch, steps); input size is --input-size. Both models are
batch_first, float32 by default, with identical weights and the same thread count for torch
(intra-op), Numba and the BLAS that Numba's np.dot calls (scipy's OpenBLAS). The thread counts
are fixed through environment variables *before* numpy/scipy/torch are imported: limiting an
already started OpenBLAS pool (threadpoolctl) is not enough, its idle workers spin and steal the
CPU on a loaded machine (steps then take multiples of the 4 ms scheduler tick).
Warm-up steps are excluded; the table gives the median over --repeats steps and the ratio
torch_time / numba_time (> 1: NumbaRNN is faster).
"""

import argparse
import os
import statistics
import time

DEFAULT_SHAPES = [f"{h}x{b}x{t}" for h in (32, 128, 512) for b in (1, 16, 64) for t in (50, 200)]


def make_step(rnn, head, x, y):
    import torch  # imported late: see the module docstring

    opt = torch.optim.Adam([*rnn.parameters(), *head.parameters()], lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        out, _ = rnn(x)
        loss = torch.nn.functional.mse_loss(head(out), y)
        loss.backward()
        opt.step()

    return step


def time_step(step, warmup, repeats):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_shape(H, B, T, D, layers, dtype, warmup, repeats):
    import torch
    from torch import nn

    from rnnbench.models.numba_rnn import NumbaRNN

    torch.manual_seed(0)
    ours = NumbaRNN(D, H, num_layers=layers, dtype=dtype)
    ref = nn.RNN(D, H, num_layers=layers, batch_first=True, dtype=dtype)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(B, T, D, dtype=dtype)
    y = torch.randn(B, T, 1, dtype=dtype)
    res = {}
    for name, rnn in (("torch", ref), ("numba", ours)):
        torch.manual_seed(1)
        head = nn.Linear(H, 1, dtype=dtype)
        res[name] = time_step(make_step(rnn, head, x, y), warmup, repeats)
    return res


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shapes", nargs="+", default=DEFAULT_SHAPES, help="HxBxT, e.g. 128x16x50")
    p.add_argument("--input-size", type=int, default=32)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=15)
    args = p.parse_args(argv)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import numba
    import torch

    dtype = getattr(torch, args.dtype)
    torch.set_num_threads(args.threads)
    numba.set_num_threads(args.threads)
    print(f"threads={args.threads} D={args.input_size} layers={args.layers} dtype={args.dtype} "
          f"median of {args.repeats} steps (ms)")
    print(f"{'H':>5} {'B':>4} {'T':>5} {'torch':>9} {'numba':>9} {'ratio':>6}")
    for shape in args.shapes:
        H, B, T = (int(v) for v in shape.lower().split("x"))
        r = bench_shape(H, B, T, args.input_size, args.layers, dtype, args.warmup, args.repeats)
        print(f"{H:>5} {B:>4} {T:>5} {1e3 * r['torch']:9.3f} {1e3 * r['numba']:9.3f} "
              f"{r['torch'] / r['numba']:6.2f}", flush=True)


if __name__ == "__main__":
    main()
