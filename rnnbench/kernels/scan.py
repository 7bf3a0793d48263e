"""The linear recurrence h_t = a_t * h_{t-1} + b_t (elementwise), forward and backward, in Numba.

Layout (B, T, H), C-contiguous, one float dtype (float32 or float64; compiled per dtype). The
forward pass visits t = 0..T-1 with h_{-1} = h0 (B, H). Backward, with g_t = dL/dout_t:
    gh_t = g_t + a_{t+1} * gh_{t+1}   (gh_{T-1} = g_{T-1} + dL/dh_n)
    dL/db_t = gh_t,   dL/da_t = gh_t * h_{t-1},   dL/dh0 = a_0 * gh_0.
One pass over the arrays each way, the inner loop over H contiguous (LLVM vectorises it). No
fastmath: NaN/inf must propagate.
"""

from numba import njit


@njit(cache=True, error_model="numpy")
def scan_forward(a, b, h0, out):
    """out[i, t] = a[i, t] * out[i, t-1] + b[i, t], out[i, -1] = h0[i]."""
    n, steps, width = b.shape
    for i in range(n):
        prev = h0[i]
        for t in range(steps):
            cur = out[i, t]
            at, bt = a[i, t], b[i, t]
            for j in range(width):
                cur[j] = at[j] * prev[j] + bt[j]
            prev = cur


@njit(cache=True, error_model="numpy")
def scan_backward(a, h0, out, grad_out, grad_hn, grad_a, grad_b, grad_h0):
    """The gradients above into grad_a, grad_b (B, T, H) and grad_h0 (B, H)."""
    n, steps, width = out.shape
    for i in range(n):
        carry = grad_hn[i].copy()  # dL/dh_t through later steps, then the total at t
        for t in range(steps - 1, -1, -1):
            prev = out[i, t - 1] if t > 0 else h0[i]
            g, at = grad_out[i, t], a[i, t]
            ga, gb = grad_a[i, t], grad_b[i, t]
            for j in range(width):
                total = carry[j] + g[j]
                gb[j] = total
                ga[j] = total * prev[j]
                carry[j] = at[j] * total
        grad_h0[i] = carry
