"""Numba readout, losses, optimisers, clipping and the whole training step vs torch."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from numba.typed import List

from rnnbench.kernels.optim import (
    ADAGRAD,
    ADAM,
    RMSPROP,
    SGD,
    adagrad_update,
    adam_update,
    clip_grad_norm,
    clip_grad_norm_,
    clip_grad_norm_flat_,
    clip_grad_value,
    clip_grad_value_flat_,
    init_state,
    make_hparams,
    optimizer_update,
    rmsprop_update,
    sgd_update,
)
from rnnbench.kernels.readout import (
    mse_loss_grad,
    readout_backward,
    readout_forward,
    xent_loss_grad,
)
from rnnbench.kernels.step import NumbaTrainer, param_offsets

TOL = 1e-10
OPT_TOL = 1e-12


def rand(rng, *shape, scale=1.0):
    return scale * rng.standard_normal(shape)


# ---- readout and losses -------------------------------------------------------------------------


@pytest.mark.parametrize("N,H,K", [(1, 1, 1), (5, 4, 3), (17, 9, 6)])
def test_readout_forward_backward_matches_torch(N, H, K):
    rng = np.random.default_rng(N * 100 + H)
    h, w, b, dy = rand(rng, N, H), rand(rng, K, H), rand(rng, K), rand(rng, N, K)
    th, tw, tb = (torch.tensor(a, requires_grad=True) for a in (h, w, b))
    ty = F.linear(th, tw, tb)
    ty.backward(torch.tensor(dy))
    y = readout_forward(h, w, b)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=TOL, atol=TOL)
    for name, g, tg in zip(["dh", "dw", "db"], readout_backward(h, w, dy), (th, tw, tb),
                           strict=True):
        np.testing.assert_allclose(g, tg.grad.numpy(), rtol=TOL, atol=TOL, err_msg=name)
    y32 = readout_forward(*(a.astype(np.float32) for a in (h, w, b)))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y, rtol=1e-5, atol=1e-5)


def _torch_readout_loss(out, w, b, y, loss, per_step, order):
    """Reference: out (T, B, H) time-major; per-step predictions flattened in ``order``."""
    tout, tw, tb = (torch.tensor(a, requires_grad=True) for a in (out, w, b))
    ty = torch.tensor(y)
    if per_step:
        if order == "batch_first":  # (B, T, H) -> (B*T, K), targets (B, T, ...) -> (B*T, ...)
            pred = F.linear(tout.transpose(0, 1), tw, tb).reshape(-1, w.shape[0])
            ty = ty.transpose(0, 1)
        else:  # time-major rows t*B + b
            pred = F.linear(tout, tw, tb).reshape(-1, w.shape[0])
        ty = ty.reshape(pred.shape) if loss == "mse" else ty.reshape(-1)
    else:
        pred = F.linear(tout[-1], tw, tb)
    lt = F.mse_loss(pred, ty) if loss == "mse" else F.cross_entropy(pred, ty)
    lt.backward()
    return lt.item(), tout.grad.numpy(), tw.grad.numpy(), tb.grad.numpy()


@pytest.mark.parametrize("loss", ["mse", "xent"])
@pytest.mark.parametrize("per_step,order", [(False, None), (True, "time_major"),
                                            (True, "batch_first")])
def test_losses_match_torch(loss, per_step, order):
    """Our per-step layout is time-major (row t*B + b); torch's batch-first flattening (b*T + t)
    gives the same mean loss and, mapped back to (T, B, H), the same gradients."""
    T, B, H, K = 6, 4, 5, 3
    rng = np.random.default_rng(3 + per_step)
    out, w, b = rand(rng, T, B, H), rand(rng, K, H), rand(rng, K)
    lead = (T, B) if per_step else (B,)
    y = rand(rng, *lead, K) if loss == "mse" else rng.integers(0, K, lead)
    hr = out.reshape(T * B, H) if per_step else out[-1]
    pred = readout_forward(hr, w, b)
    val, dpred = (mse_loss_grad if loss == "mse" else xent_loss_grad)(pred, y.reshape(-1) if
                                                                      loss == "xent" else y)
    dhr, dw, db = readout_backward(hr, w, dpred)
    dout = np.zeros_like(out)
    if per_step:
        dout[:] = dhr.reshape(T, B, H)
    else:
        dout[-1] = dhr
    r_val, r_dout, r_dw, r_db = _torch_readout_loss(out, w, b, y, loss, per_step, order)
    assert abs(val - r_val) <= TOL * abs(r_val)
    np.testing.assert_allclose(dout, r_dout, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(dw, r_dw, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(db, r_db, rtol=TOL, atol=TOL)


def test_xent_large_logits_and_errors():
    rng = np.random.default_rng(0)
    logits = rand(rng, 4, 5, scale=1000.0)  # exp would overflow without the max shift
    tgt = rng.integers(0, 5, 4)
    val, d = xent_loss_grad(logits, tgt)
    tl = torch.tensor(logits, requires_grad=True)
    r = F.cross_entropy(tl, torch.tensor(tgt))
    r.backward()
    assert np.isfinite(val) and abs(val - r.item()) <= TOL * abs(r.item())
    np.testing.assert_allclose(d, tl.grad.numpy(), rtol=TOL, atol=TOL)
    with pytest.raises(IndexError):
        xent_loss_grad(logits, np.array([0, 1, 5, 0]))
    with pytest.raises(ValueError):
        xent_loss_grad(logits, np.array([0, 1]))


def test_xent_finite_differences():
    rng = np.random.default_rng(1)
    logits, tgt = rand(rng, 3, 4), np.array([2, 0, 3])
    _, d = xent_loss_grad(logits, tgt)
    eps, fd = 1e-6, np.zeros_like(logits)
    for i in np.ndindex(logits.shape):
        lp, lm = logits.copy(), logits.copy()
        lp[i] += eps
        lm[i] -= eps
        fd[i] = (xent_loss_grad(lp, tgt)[0] - xent_loss_grad(lm, tgt)[0]) / (2 * eps)
    # central differences: truncation O(eps^2) ~ 1e-12, rounding ~ 1e-16 / eps = 1e-10
    np.testing.assert_allclose(d, fd, rtol=1e-7, atol=1e-8)


def test_losses_float32_and_nan():
    rng = np.random.default_rng(2)
    pred, y = rand(rng, 5, 3), rand(rng, 5, 3)
    l64, d64 = mse_loss_grad(pred, y)
    l32, d32 = mse_loss_grad(pred.astype(np.float32), y.astype(np.float32))
    assert d32.dtype == np.float32 and abs(l32 - l64) < 1e-5
    pred[1, 2] = np.nan
    assert np.isnan(mse_loss_grad(pred, y)[0])
    tgt = np.array([0, 1, 2, 0, 1])
    assert np.isnan(xent_loss_grad(pred, tgt)[0])
    assert np.isnan(xent_loss_grad(pred, tgt)[1][1]).all()


# ---- optimisers ---------------------------------------------------------------------------------

TORCH_OPT = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop,
             "adagrad": torch.optim.Adagrad}
OPT_CASES = [
    ("sgd", {"lr": 0.1}), ("sgd", {"lr": 0.1, "momentum": 0.9}),
    ("sgd", {"lr": 0.05, "momentum": 0.5, "dampening": 0.3}),
    ("adam", {}), ("adam", {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6}),
    ("rmsprop", {}), ("rmsprop", {"lr": 0.003, "alpha": 0.9, "momentum": 0.9}),
    ("adagrad", {}), ("adagrad", {"lr": 0.1, "lr_decay": 0.05}),
]


def _run_kernel(kind, p, g, state, step, hp, per_kernel):
    if not per_kernel:
        optimizer_update(kind, p, g, state, step, hp)
    elif kind == SGD:
        sgd_update(p, g, state[0], step, hp[0], hp[1], hp[2])
    elif kind == ADAM:
        adam_update(p, g, state[0], state[1], step, hp[0], hp[1], hp[2], hp[3])
    elif kind == RMSPROP:
        rmsprop_update(p, g, state[0], state[1], step, hp[0], hp[1], hp[2], hp[3])
    else:
        assert kind == ADAGRAD
        adagrad_update(p, g, state[0], step, hp[0], hp[1], hp[2])


@pytest.mark.parametrize("name,kw", OPT_CASES)
def test_optimizers_match_torch(name, kw):
    """20 updates with random gradients: per-tensor kernels and one flat-vector call agree with
    torch.optim to 1e-12 (float64)."""
    rng = np.random.default_rng(len(name) + len(kw))
    shapes = [(3, 4), (5,), (2, 3)]
    tparams = [torch.tensor(rand(rng, *s), requires_grad=True) for s in shapes]
    topt = TORCH_OPT[name](tparams, **kw)
    kind, hp = make_hparams(name, **kw)
    mine = [t.detach().numpy().copy() for t in tparams]  # one state per tensor (per_kernel)
    states = [init_state(a.size, a.dtype, kind) for a in mine]
    flat = np.concatenate([a.ravel() for a in mine])  # all tensors in one vector
    fstate, fstep = init_state(flat.size, flat.dtype, kind)
    for _ in range(20):
        grads = [rand(rng, *s) for s in shapes]
        for t, g in zip(tparams, grads, strict=True):
            t.grad = torch.tensor(g)
        topt.step()
        for a, g, (st, sp) in zip(mine, grads, states, strict=True):
            _run_kernel(kind, a, g, st, sp, hp, per_kernel=True)
        optimizer_update(kind, flat, np.concatenate([g.ravel() for g in grads]), fstate, fstep, hp)
    ref = [t.detach().numpy() for t in tparams]
    for a, r in zip(mine, ref, strict=True):
        np.testing.assert_allclose(a, r, rtol=OPT_TOL, atol=OPT_TOL)
    np.testing.assert_allclose(flat, np.concatenate([r.ravel() for r in ref]), rtol=OPT_TOL,
                               atol=OPT_TOL)
    assert fstep[0] == 20 and all(sp[0] == 20 for _, sp in states)
    if name == "adam":  # the buffers themselves, too
        st = topt.state[tparams[0]]
        np.testing.assert_allclose(states[0][0][0], st["exp_avg"].numpy().ravel(), rtol=OPT_TOL,
                                   atol=OPT_TOL)
        np.testing.assert_allclose(states[0][0][1], st["exp_avg_sq"].numpy().ravel(),
                                   rtol=OPT_TOL, atol=OPT_TOL)


@pytest.mark.parametrize("name,kw", [OPT_CASES[1], OPT_CASES[3], OPT_CASES[6], OPT_CASES[7]])
def test_optimizers_float32(name, kw):
    rng = np.random.default_rng(9)
    p = rand(rng, 50).astype(np.float32)
    tp = torch.tensor(p.copy(), requires_grad=True)
    topt = TORCH_OPT[name]([tp], **kw)
    kind, hp = make_hparams(name, **kw)
    state, step = init_state(p.size, p.dtype, kind)
    for _ in range(10):
        g = rand(rng, 50).astype(np.float32)
        tp.grad = torch.tensor(g)
        topt.step()
        optimizer_update(kind, p, g, state, step, hp)
    assert p.dtype == np.float32
    # torch rounds the scalars to float32 first; we compute in float64 and round once
    np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_make_hparams_defaults_and_errors():
    assert make_hparams("Adam")[1].tolist() == [1e-3, 0.9, 0.999, 1e-8]
    assert make_hparams("rmsprop", momentum=0.5)[1].tolist() == [1e-2, 0.99, 1e-8, 0.5]
    assert make_hparams("adagrad")[1].tolist() == [1e-2, 0.0, 1e-10, 0.0]
    with pytest.raises(ValueError):
        make_hparams("lbfgs")
    with pytest.raises(ValueError):
        make_hparams("adam", amsgrad=True)


# ---- clipping ----------------------------------------------------------------------------------


def _grads(seed, scale):
    rng = np.random.default_rng(seed)
    return [rand(rng, 3, 4, scale=scale), rand(rng, 5, scale=scale), rand(rng, 2, 2, 2,
                                                                           scale=scale)]


@pytest.mark.parametrize("max_norm,scale", [(1.0, 1.0), (100.0, 1.0), (0.5, 1e-3), (2.0, 1e3)])
def test_clip_grad_norm_matches_torch(max_norm, scale):
    grads = _grads(1, scale)
    tparams = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for t, g in zip(tparams, grads, strict=True):
        t.grad = torch.tensor(g)
    r_norm = torch.nn.utils.clip_grad_norm_(tparams, max_norm).item()
    ref = [t.grad.numpy() for t in tparams]
    # tuple front end
    mine = [g.copy() for g in grads]
    norm = clip_grad_norm(mine, max_norm)
    assert abs(norm - r_norm) <= TOL * r_norm
    for a, r in zip(mine, ref, strict=True):
        np.testing.assert_allclose(a, r, rtol=OPT_TOL, atol=0)
    # typed List, and the flat vector with offsets
    tl = List([g.ravel().copy() for g in grads])
    assert abs(clip_grad_norm_(tl, max_norm) - r_norm) <= TOL * r_norm
    flat = np.concatenate([g.ravel() for g in grads])
    offsets = np.cumsum([0] + [g.size for g in grads]).astype(np.int64)
    assert abs(clip_grad_norm_flat_(flat, offsets, max_norm) - r_norm) <= TOL * r_norm
    np.testing.assert_allclose(flat, np.concatenate([r.ravel() for r in ref]), rtol=OPT_TOL,
                               atol=0)
    np.testing.assert_allclose(np.concatenate(list(tl)), flat, rtol=OPT_TOL, atol=0)


def test_clip_grad_norm_nan_like_torch():
    grads = _grads(2, 1.0)
    grads[1][3] = np.nan
    tparams = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for t, g in zip(tparams, grads, strict=True):
        t.grad = torch.tensor(g)
    r_norm = torch.nn.utils.clip_grad_norm_(tparams, 1.0)
    norm = clip_grad_norm(grads, 1.0)
    assert np.isnan(norm) and torch.isnan(r_norm)
    for a, t in zip(grads, tparams, strict=True):  # torch multiplies everything by NaN
        assert np.isnan(a).all() and torch.isnan(t.grad).all()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_clip_grad_value_matches_torch(dtype):
    grads = [g.astype(dtype) for g in _grads(3, 2.0)]
    grads[0][0, 0] = np.nan
    tparams = [torch.zeros(g.shape, dtype=getattr(torch, np.dtype(dtype).name),
                           requires_grad=True) for g in grads]
    for t, g in zip(tparams, grads, strict=True):
        t.grad = torch.tensor(g)
    torch.nn.utils.clip_grad_value_(tparams, 0.7)
    flat = np.concatenate([g.ravel() for g in grads])
    clip_grad_value(grads, 0.7)
    clip_grad_value_flat_(flat, 0.7)
    for a, t in zip(grads, tparams, strict=True):
        np.testing.assert_array_equal(a, t.grad.numpy())  # NaN in the same places, too
    np.testing.assert_array_equal(flat, np.concatenate([g.ravel() for g in grads]))


def test_clip_views_write_through_and_reject_copies():
    g = np.ones((4, 4)) * 10
    assert clip_grad_norm([g], 1.0) == pytest.approx(40.0)
    assert np.linalg.norm(g) == pytest.approx(1.0, rel=1e-6)
    with pytest.raises(ValueError):
        clip_grad_norm([np.ones((4, 4)).T[:, :2]], 1.0)
    assert clip_grad_norm([], 1.0) == 0.0


# ---- the whole training step --------------------------------------------------------------------

STEP_OPTS = {"sgd": {"lr": 0.05, "momentum": 0.9}, "adam": {"lr": 0.01},
             "rmsprop": {"lr": 0.003, "momentum": 0.5}, "adagrad": {"lr": 0.05}}


class TorchStep:
    """The torch reference: nn.RNN + nn.Linear + loss + clipping + optimiser."""

    def __init__(self, rnn, head, name, opt_kw, loss, readout, clip, clip_value):
        self.rnn, self.head = rnn, head
        self.params = list(rnn.parameters()) + list(head.parameters())
        self.opt = TORCH_OPT[name](self.params, **opt_kw)
        self.loss, self.readout, self.clip, self.clip_value = loss, readout, clip, clip_value

    def grads(self, x, y):
        self.opt.zero_grad()
        out, _ = self.rnn(x)  # (T, B, H), or (B, T, H) batch-first
        if self.readout == "every":
            pred = self.head(out)
        else:
            pred = self.head(out[:, -1] if self.rnn.batch_first else out[-1])
        K = pred.shape[-1]
        if self.loss == "mse":
            val = F.mse_loss(pred, y)
        else:
            val = F.cross_entropy(pred.reshape(-1, K), y.reshape(-1))
        val.backward()
        norm = None
        if self.clip == "norm":
            norm = torch.nn.utils.clip_grad_norm_(self.params, self.clip_value).item()
        elif self.clip == "value":
            torch.nn.utils.clip_grad_value_(self.params, self.clip_value)
        return val.item(), norm

    def step(self, x, y):
        val, norm = self.grads(x, y)
        self.opt.step()
        return val, norm


def _make_pair(name, loss, readout, clip="norm", clip_value=0.5, batch_first=False, seed=0,
               D=3, H=6, K=4, nonlinearity="tanh"):
    torch.manual_seed(seed)
    rnn = torch.nn.RNN(D, H, nonlinearity=nonlinearity, batch_first=batch_first).double()
    head = torch.nn.Linear(H, K).double()
    kw = STEP_OPTS[name]
    trainer = NumbaTrainer.from_torch(rnn, head, name, loss=loss, readout=readout, clip=clip,
                                      clip_value=clip_value, **kw)
    return trainer, TorchStep(rnn, head, name, kw, loss, readout, clip, clip_value)


def _batch(rng, T, B, D, K, loss, readout, batch_first=False):
    lead = (B, T) if batch_first else (T, B)
    x = rand(rng, *lead, D)
    ylead = lead if readout == "every" else (B,)
    y = rand(rng, *ylead, K) if loss == "mse" else rng.integers(0, K, ylead)
    return x, y


@pytest.mark.parametrize("loss", ["mse", "xent"])
@pytest.mark.parametrize("readout", ["last", "every"])
@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop", "adagrad"])
def test_train_step_matches_torch(name, readout, loss):
    """30 steps on fresh random batches, clip by norm (max_norm 0.5 clips most steps): the losses
    agree step for step to a relative 1e-9 and so do the final parameters. Worst seen here:
    ~1e-15 for every case; RMSprop and Adagrad normalise each element's step and can amplify
    last-bit gradient differences (a fixed-batch run at lr 0.05 reached ~1e-11), but no case
    needed a looser bound; test_gradients_agree_on_identical_weights bounds the per-step
    gradient difference at 1e-14."""
    T, B = 7, 3
    trainer, ref = _make_pair(name, loss, readout)
    rng = np.random.default_rng(11)
    for i in range(30):
        x, y = _batch(rng, T, B, trainer.D, trainer.O, loss, readout)
        r_val, r_norm = ref.step(torch.tensor(x), torch.tensor(y))
        val = trainer.step(x, y)
        assert abs(val - r_val) <= 1e-9 * abs(r_val), (i, val, r_val)
        assert abs(trainer.last_grad_norm - r_norm) <= 1e-9 * r_norm
    for mine, t in zip(trainer.params().values(), ref.params, strict=True):
        np.testing.assert_allclose(mine, t.detach().numpy(), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("readout", ["last", "every"])
@pytest.mark.parametrize("clip", [None, "norm", "value"])
def test_gradients_agree_on_identical_weights(readout, clip):
    """One step from the same weights: the applied (clipped) gradients agree to ~1e-14."""
    trainer, ref = _make_pair("adam", "mse", readout, clip=clip, clip_value=0.05)
    x, y = _batch(np.random.default_rng(5), 9, 4, trainer.D, trainer.O, "mse", readout)
    r_val, _ = ref.grads(torch.tensor(x), torch.tensor(y))
    val = trainer.step(x, y)
    assert abs(val - r_val) <= 1e-14 * abs(r_val)
    for (pname, g), t in zip(trainer.grads().items(), ref.params, strict=True):
        scale = np.abs(t.grad.numpy()).max()
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=0, atol=1e-14 * scale, err_msg=pname)


@pytest.mark.parametrize("readout", ["last", "every"])
def test_train_step_batch_first_relu_value_clip(readout):
    trainer, ref = _make_pair("sgd", "mse", readout, clip="value", clip_value=0.1,
                              batch_first=True, nonlinearity="relu", seed=1)
    assert trainer.batch_first and trainer.relu
    rng = np.random.default_rng(4)
    for _ in range(10):
        x, y = _batch(rng, 5, 2, trainer.D, trainer.O, "mse", readout, batch_first=True)
        r_val, _ = ref.step(torch.tensor(x), torch.tensor(y))
        assert abs(trainer.step(x, y) - r_val) <= 1e-9 * abs(r_val)


def test_train_step_float32_and_copy_back():
    torch.manual_seed(2)
    rnn, head = torch.nn.RNN(3, 8), torch.nn.Linear(8, 2)
    trainer = NumbaTrainer.from_torch(rnn, head, "adam", lr=0.01, clip="norm", clip_value=1.0)
    assert trainer.theta.dtype == np.float32
    ref = TorchStep(rnn, head, "adam", {"lr": 0.01}, "mse", "last", "norm", 1.0)
    rng = np.random.default_rng(0)
    for _ in range(5):
        x, y = (a.astype(np.float32) for a in _batch(rng, 10, 4, 3, 2, "mse", "last"))
        r_val, _ = ref.step(torch.tensor(x), torch.tensor(y))
        assert abs(trainer.step(x, y) - r_val) <= 1e-4 * abs(r_val)
    rnn2, head2 = torch.nn.RNN(3, 8), torch.nn.Linear(8, 2)
    trainer.copy_to_torch(rnn2, head2)
    np.testing.assert_array_equal(rnn2.weight_hh_l0.detach().numpy(), trainer.w_hh)
    np.testing.assert_array_equal(head2.bias.detach().numpy(), trainer.b_out)


def test_nan_input_gives_nan_loss():
    trainer, _ = _make_pair("adam", "mse", "last")
    x, y = _batch(np.random.default_rng(0), 4, 2, trainer.D, trainer.O, "mse", "last")
    x[1, 0, 2] = np.nan
    assert np.isnan(trainer.step(x, y))
    assert np.isnan(trainer.last_grad_norm)
    trainer, _ = _make_pair("sgd", "xent", "every")
    x, y = _batch(np.random.default_rng(0), 4, 2, trainer.D, trainer.O, "xent", "every")
    x[0, 1, 0] = np.nan
    assert np.isnan(trainer.step(x, y))


def test_trainer_validation():
    torch.manual_seed(0)
    with pytest.raises(ValueError):
        NumbaTrainer.from_torch(torch.nn.RNN(2, 3, num_layers=2), torch.nn.Linear(3, 1), "sgd")
    with pytest.raises(ValueError):
        NumbaTrainer.from_torch(torch.nn.RNN(2, 3, bidirectional=True), torch.nn.Linear(6, 1),
                                "sgd")
    trainer = NumbaTrainer(2, 3, 1, optimizer="sgd", loss="xent")
    with pytest.raises(ValueError):
        trainer.step(np.zeros((4, 2, 2)), np.zeros(2))  # float targets for cross-entropy
    with pytest.raises(ValueError):
        trainer.step(np.zeros((4, 2, 2)), np.zeros((4, 2), dtype=np.int64))  # per-step shape
    assert param_offsets(2, 3, 1).tolist() == [0, 6, 15, 18, 21, 24, 25]
