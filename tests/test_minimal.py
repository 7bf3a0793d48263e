"""minGRU and minLSTM (rnnbench.models.minimal): both modes against a float64 reference written
from the paper's equations, gradients against autograd's gradcheck and finite differences, and
the registry's closed forms."""

from __future__ import annotations

import pytest
import torch

from rnnbench.models import cost
from rnnbench.models.build import build_model
from rnnbench.models.cost import Core
from rnnbench.models.families import FAMILIES, param_count
from rnnbench.models.minimal import MinRNN, g, log_g, log_scan, numba_scan, sequential_scan
from tests.test_models import MANY_TO_MANY, MANY_TO_ONE

CELLS = ("mingru", "minlstm")


def reference(core: MinRNN, x: torch.Tensor) -> torch.Tensor:
    """The equations of Feng et al. (2024), one scalar step at a time in float64, from the
    core's own weights: out (B, T, dirs*H)."""
    x, H, dirs = x.double(), core.hidden_size, core.directions
    for layer in range(core.num_layers):
        outs = []
        for d in range(dirs):
            lin = core.proj[layer * dirs + d]
            w, b = lin.weight.detach().double(), lin.bias.detach().double()
            h = torch.zeros(x.shape[0], H, dtype=torch.float64)
            steps = range(x.shape[1] - 1, -1, -1) if d else range(x.shape[1])
            out = [None] * x.shape[1]
            for t in steps:
                pre = x[:, t] @ w.T + b
                cand = torch.where(pre[:, -H:] >= 0, pre[:, -H:] + 0.5, torch.sigmoid(pre[:, -H:]))
                if core.cell == "mingru":
                    z = torch.sigmoid(pre[:, :H])
                    h = (1 - z) * h + z * cand
                else:
                    f, i = torch.sigmoid(pre[:, :H]), torch.sigmoid(pre[:, H:2 * H])
                    h = f / (f + i) * h + i / (f + i) * cand
                out[t] = h
            outs.append(torch.stack(out, dim=1))
        x = torch.cat(outs, dim=-1)
    return x


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers,bi", [(1, False), (2, False), (3, True)])
def test_sequential_equals_parallel_equals_float64_reference(cell, layers, bi):
    torch.manual_seed(0)
    seq = MinRNN(cell, 3, 6, layers, bi, mode="sequential")
    par = MinRNN(cell, 3, 6, layers, bi, mode="parallel")
    nb = MinRNN(cell, 3, 6, layers, bi, mode="numba")
    par.load_state_dict(seq.state_dict())
    nb.load_state_dict(seq.state_dict())
    x = 2 * torch.randn(4, 40, 3)
    ref = reference(seq, x)
    (out_s, h_s), (out_p, h_p), (out_n, h_n) = seq(x), par(x), nb(x)
    torch.testing.assert_close(out_s.double(), ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out_p.double(), ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out_n, out_s, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(h_n, h_s, rtol=1e-6, atol=1e-7)
    # float64 agrees to rounding: the log-space scan is exact arithmetic, not an approximation
    torch.testing.assert_close(par.double()(x.double())[0], ref, rtol=1e-10, atol=1e-12)
    # h_n: each layer and direction's final state, the backward one after reading back to t = 0
    dirs = 2 if bi else 1
    torch.testing.assert_close(h_s[-dirs], out_s[:, -1, :6])
    if bi:
        torch.testing.assert_close(h_s[-1], out_s[:, 0, 6:])
    torch.testing.assert_close(h_p, h_s, rtol=1e-4, atol=1e-5)


def test_a_carried_state_enters_both_modes_alike():
    torch.manual_seed(1)
    seq = MinRNN("minlstm", 2, 5, 2, mode="sequential").double()
    x = torch.randn(3, 12, 2, dtype=torch.float64)
    whole = seq(x)[0]
    for mode in ("sequential", "parallel", "numba"):
        m = MinRNN("minlstm", 2, 5, 2, mode=mode).double()
        m.load_state_dict(seq.state_dict())
        _, h = m(x[:, :5])  # two chunks with the state carried equal one pass
        second, _ = m(x[:, 5:], h)
        torch.testing.assert_close(second, whole[:, 5:], rtol=1e-10, atol=1e-12)


def test_g_is_positive_continuous_and_log_g_is_its_log():
    x = torch.linspace(-30, 30, 2001, dtype=torch.float64)
    assert (g(x) > 0).all()
    torch.testing.assert_close(log_g(x), torch.log(g(x)))
    torch.testing.assert_close(g(torch.tensor([-1e-12, 0.0], dtype=torch.float64)),
                               torch.tensor([0.5, 0.5], dtype=torch.float64))


def test_scans_agree_on_any_positive_coefficients():
    gen = torch.Generator().manual_seed(2)
    a = torch.rand(2, 30, 4, generator=gen, dtype=torch.float64)
    b = torch.rand(2, 30, 4, generator=gen, dtype=torch.float64) + 1e-3
    h0 = torch.rand(2, 4, generator=gen, dtype=torch.float64) + 1e-3
    for start in (None, h0):
        loop = sequential_scan(a, b, start)
        torch.testing.assert_close(log_scan(a.log(), b.log(), start), loop, rtol=1e-10,
                                   atol=1e-12)
        torch.testing.assert_close(numba_scan(a, b, start), loop, rtol=1e-12, atol=1e-14)


def test_numba_scan_gradients_pass_gradcheck_with_a_carried_state():
    gen = torch.Generator().manual_seed(5)
    a, b, h0 = (torch.rand(*shape, generator=gen, dtype=torch.float64, requires_grad=True)
                for shape in ((2, 7, 3), (2, 7, 3), (2, 3)))
    assert torch.autograd.gradcheck(numba_scan, (a, b, h0), eps=1e-6, atol=1e-8)
    # a real gradient: dL/dh0 = prod a_t for L = h_{T-1}.sum()
    numba_scan(a, b, h0)[:, -1].sum().backward()
    torch.testing.assert_close(h0.grad, a.detach().prod(dim=1))


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("mode", ["sequential", "parallel", "numba"])
def test_gradients_pass_gradcheck(cell, mode):
    torch.manual_seed(3)
    core = MinRNN(cell, 2, 3, 2, True, mode=mode).double()
    x = torch.randn(2, 6, 2, dtype=torch.float64, requires_grad=True)
    names = [n for n, _ in core.named_parameters()]

    def f(x, *ps):  # the core's output as a function of its input and every weight
        return torch.func.functional_call(core, dict(zip(names, ps, strict=True)), (x,))[0]

    inputs = (x, *(p.detach().clone().requires_grad_(True) for p in core.parameters()))
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("cell", CELLS)
def test_parallel_gradient_matches_central_differences_and_the_loop(cell):
    torch.manual_seed(4)
    par = MinRNN(cell, 3, 4, mode="parallel").double()
    seq = MinRNN(cell, 3, 4, mode="sequential").double()
    seq.load_state_dict(par.state_dict())
    x = torch.randn(2, 25, 3, dtype=torch.float64)
    w = torch.randn(2, 25, 4, dtype=torch.float64)

    def loss(m):
        return (m(x)[0] * w).sum()

    loss(par).backward()
    loss(seq).backward()
    weight = par.proj[0].weight
    torch.testing.assert_close(weight.grad, seq.proj[0].weight.grad, rtol=1e-9, atol=1e-11)
    eps = 1e-6
    for idx in [(0, 0), (3, 2), (weight.shape[0] - 1, 1)]:
        with torch.no_grad():
            weight[idx] += eps
            up = loss(par).item()
            weight[idx] -= 2 * eps
            down = loss(par).item()
            weight[idx] += eps
        assert abs((up - down) / (2 * eps) - weight.grad[idx].item()) < 1e-6


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers,bi", [(1, False), (2, True), (3, False)])
@pytest.mark.parametrize("spec", [MANY_TO_ONE, MANY_TO_MANY], ids=["m2o", "m2m"])
def test_registry_count_matches_the_module(cell, layers, bi, spec):
    cfg = FAMILIES[cell].config(family=cell, hidden_size=7, num_layers=layers, bidirectional=bi)
    model = build_model(cfg, spec)
    assert isinstance(model.core, MinRNN) and model.core.mode == "parallel"
    assert sum(p.numel() for p in model.parameters()) == param_count(cfg, spec)
    x = torch.randn(2, 5, spec.input_size)
    shape = (2, spec.output_size) if spec.readout == "last" else (2, 5, spec.output_size)
    assert model(x).shape == shape


def test_closed_forms_by_hand():
    # one nn.Linear(D_in, G*H) per layer and direction: G*(H*D_in + H), no W_hh
    assert cost.core_params(Core("mingru", 1, 64)) == 2 * (64 + 64)
    assert cost.core_params(Core("minlstm", 3, 8, 2, True)) == 2 * 3 * (8 * 3 + 8) \
        + 2 * 3 * (8 * 16 + 8)
    # B=2, T=3, D=4, H=5: the input projection only, 2*B*D*G*H per step, + 9 or 13 elementwise
    assert cost.forward_gemm_flops(Core("mingru", 4, 5), 2, 3) == 3 * 2 * 2 * 4 * 2 * 5
    assert cost.core_forward_flops(Core("minlstm", 4, 5), 2, 3) == \
        3 * (2 * 2 * 4 * 3 * 5 + 13 * 2 * 5)
    # the GRU at the same width has 3 blocks and a recurrent projection on top
    gru, mingru = Core("gru", 4, 5), Core("mingru", 4, 5)
    assert cost.forward_gemm_flops(gru, 2, 3) - 1.5 * cost.forward_gemm_flops(mingru, 2, 3) \
        == 3 * 2 * 2 * 5 * 3 * 5


def test_facts_mark_the_state_free_cells_and_their_classic_counterpart():
    for name, classic in (("mingru", "gru"), ("minlstm", "lstm"), ("gru", None)):
        fam = FAMILIES[name]
        facts = fam.facts(fam.config(family=name))
        assert facts["state_free"] == (classic is not None) and facts["classic"] == classic
        assert facts["gated"]


def test_numba_mode_precompiles_and_the_others_have_nothing_to_compile():
    assert MinRNN("mingru", 2, 3, mode="numba").precompile() > 0
    assert MinRNN("mingru", 2, 3, mode="parallel").precompile() == 0.0


def test_bad_mode_is_refused():
    with pytest.raises(ValueError, match="mode 'scan': not one of sequential, parallel, numba"):
        MinRNN("mingru", 2, 3, mode="scan")
    from pydantic import ValidationError
    with pytest.raises(ValidationError):
        FAMILIES["mingru"].config(family="mingru", mode="scan")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("cell", CELLS)
def test_the_cuda_path_agrees_with_the_cpu_in_both_modes_and_trains(cell):
    """On a GPU the scan runs through torch's CUDA kernels: both modes give the CPU's outputs
    and gradients (float64, to rounding) and a step of training lowers the loss."""
    torch.manual_seed(0)
    cpu = MinRNN(cell, 3, 16, 2, True, mode="parallel").double()
    x = torch.randn(8, 300, 3, dtype=torch.float64)
    for mode in ("sequential", "parallel"):
        gpu = MinRNN(cell, 3, 16, 2, True, mode=mode).double().cuda()
        gpu.load_state_dict(cpu.state_dict())
        out_c, out_g = cpu(x)[0], gpu(x.cuda())[0]
        torch.testing.assert_close(out_g.cpu(), out_c, rtol=1e-9, atol=1e-11)
        out_c.square().mean().backward()
        out_g.square().mean().backward()
        for pc, pg in zip(cpu.parameters(), gpu.parameters(), strict=True):
            torch.testing.assert_close(pg.grad.cpu(), pc.grad, rtol=1e-8, atol=1e-10)
            pc.grad = None
    opt = torch.optim.Adam(gpu.parameters(), lr=1e-2)
    first = None
    for _ in range(20):
        opt.zero_grad()
        loss = gpu(x.cuda())[0].square().mean()
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert loss.item() < first
