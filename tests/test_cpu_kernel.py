"""The compiled whole-sequence CPU kernels (brf_plugins.kernels._cpu) against the torch fused Functions and the core.

float64: spikes identical, states within 1e-12, gradients (x, W, omega, b_offset, tau, initial states) within
1e-10 relative; float32: forward values bitwise the torch fused path's. Real data: the authors' ECG checkpoints
over the full ECG test set (forward; gradients on a subset) and 200 S-MNIST test images. The hand-derived ALIF
backward is also checked against finite differences (gradcheck with a smooth spike function).
"""

import itertools

import pytest
import torch
from torch.nn import functional as nnf

from brf_plugins import functional as F
from brf_plugins.kernels import _cpu
from brf_plugins.kernels._autograd import CellSequence, LISequence, RecurrentCellSequence
from brf_plugins.kernels._spec import SmoothSpike, cell_spec
from brf_plugins.kernels._torch_cells import neuron_params
from brf_plugins.surrogate import double_gaussian, multi_gaussian

from .conftest import CHECKPOINTS, DATA_ROOT, needs_data

USABLE, REASON = _cpu.status()
if not USABLE:
    print(f"compiled CPU kernels unavailable: {REASON}")
    pytest.skip(f"compiled CPU kernels unavailable: {REASON}", allow_module_level=True)

BRF_ABLATIONS = [dict(divergence_boundary=a, refractory=b, smooth_reset=c)
                 for a, b, c in itertools.product((True, False), repeat=3)]
CASES = ([("brf", "", ab) for ab in BRF_ABLATIONS] + [("rf", r, {}) for r in F.RF_RESETS]
         + [("bhrf", v, {}) for v in F.BHRF_VARIANTS])
CASE_IDS = [f"{k}-{o or 'x'}-{''.join(str(int(v)) for v in ab.values())}" for k, o, ab in CASES]

STATE_TOL = 1e-12
GRAD_TOL = 1e-10


def _rel(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def _spec(kind, option, ablation, spike_fn=None):
    return cell_spec(kind, 0.01, 1.0, 0.9, spike_fn, option=option, **ablation)


def _problem(kind, dtype, steps=40, batch=3, m=3, h=6, recurrent=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(steps, batch, m, dtype=dtype, generator=g)
    w = torch.randn(h, m + h if recurrent else m, dtype=dtype, generator=g) * 80
    high = 99.0 if kind == "brf" else 60.0
    omega = (torch.rand(h, dtype=dtype, generator=g) * (high - 2) + 2) * torch.sign(torch.randn(h, dtype=dtype,
                                                                                                generator=g))
    if kind == "brf":
        omega[0] = 150.0                     # beyond the clamp: no gradient
    b_offset = torch.randn(h, dtype=dtype, generator=g) * 0.8
    z0 = (torch.rand(batch, h, dtype=dtype, generator=g) > 0.5).to(dtype)
    u0, v0 = (torch.randn(batch, h, dtype=dtype, generator=g) for _ in range(2))
    q0 = torch.rand(batch, h, dtype=dtype, generator=g)
    leaves = [t.requires_grad_() for t in (x, w, omega, b_offset, z0, u0, v0, q0)]
    return leaves


def _weights(out):
    """Fixed pseudo-random weights for a loss over all outputs (every output gets a gradient)."""
    return [torch.linspace(-1.0, 1.0, o.numel(), dtype=o.dtype).view(o.shape) for o in out]


def _loss(out):
    return sum((o * w).sum() for o, w in zip(out, _weights(out)))


def _core_layer(kind, option, ablation, x, w, z, u, v, q, omega, b_offset, recurrent, spike_fn=None):
    """The core: cat + linear + functional.*_step per step (RecurrentLayer.step with backend='reference')."""
    spikes = []
    for x_t in x:
        current = nnf.linear(torch.cat((x_t, z), 1) if recurrent else x_t, w)
        if kind == "brf":
            z, u, v, q = F.brf_step(current, u, v, q, omega, b_offset, 0.01, 1.0, 0.9, spike_fn, **ablation)
        elif kind == "rf":
            z, u, v = F.rf_step(current, u, v, omega, b_offset, 0.01, 1.0, spike_fn, reset=option)
        else:
            z, u, v, q = F.bhrf_step(current, u, v, q, omega, b_offset, 0.01, 1.0, 0.9, spike_fn, variant=option)
        spikes.append(z)
    return (torch.stack(spikes), z, u, v) + ((q,) if kind != "rf" else ())


def _layer(fn, spec, recurrent, x, w, z, u, v, q, omega, b_offset):
    pa, pb = neuron_params(spec, omega, b_offset)
    return fn.apply(spec, recurrent, x, w, z, u, v, q if spec.has_q else None, pa, pb)


# ------------------------------------------------------------------------------------ recurrent layer


@pytest.mark.parametrize("recurrent", [True, False], ids=["rec", "ff-input"])
@pytest.mark.parametrize("kind,option,ablation", CASES, ids=CASE_IDS)
def test_recurrent_layer_float64_matches_torch_path_and_core(kind, option, ablation, recurrent):
    spec = _spec(kind, option, ablation)
    leaves = _problem(kind, torch.float64, recurrent=recurrent)
    x, w, omega, b_offset, z0, u0, v0, q0 = leaves
    if kind == "rf":
        leaves = leaves[:-1]
    wrt = leaves if recurrent else [t for t in leaves if t is not z0]
    got = _layer(_cpu.CPURecurrentCellSequence, spec, recurrent, x, w, z0, u0, v0, q0, omega, b_offset)
    fused = _layer(RecurrentCellSequence, spec, recurrent, x, w, z0, u0, v0, q0, omega, b_offset)
    core = _core_layer(kind, option, ablation, x, w, z0, u0, v0, q0, omega, b_offset, recurrent)
    assert got[0].sum() > 0 and (got[0] == 0).any()           # the test exercises spikes and silence
    for a, b in zip(got, fused):
        assert torch.equal(a, b)                               # bitwise the torch fused path
    assert torch.equal(got[0], core[0]) and torch.equal(got[1], core[1])
    for a, b in zip(got[2:], core[2:]):
        assert (a - b).abs().max() <= STATE_TOL
    g_got = torch.autograd.grad(_loss(got), wrt)
    g_fused = torch.autograd.grad(_loss(fused), wrt)
    g_core = torch.autograd.grad(_loss(core), wrt)
    for a, b, c in zip(g_got, g_fused, g_core):
        assert _rel(a, b) <= GRAD_TOL and _rel(a, c) <= GRAD_TOL


@pytest.mark.parametrize("recurrent", [True, False], ids=["rec", "ff-input"])
@pytest.mark.parametrize("kind,option,ablation", CASES, ids=CASE_IDS)
def test_recurrent_layer_float32_forward_is_bitwise_the_torch_path(kind, option, ablation, recurrent):
    spec = _spec(kind, option, ablation)
    x, w, omega, b_offset, z0, u0, v0, q0 = _problem(kind, torch.float32, steps=60, batch=5, m=3, h=7,
                                                     recurrent=recurrent, seed=1)
    got = _layer(_cpu.CPURecurrentCellSequence, spec, recurrent, x, w, z0, u0, v0, q0, omega, b_offset)
    fused = _layer(RecurrentCellSequence, spec, recurrent, x, w, z0, u0, v0, q0, omega, b_offset)
    for a, b in zip(got, fused):
        assert torch.equal(a, b)
    g_got = torch.autograd.grad(_loss(got), (w, omega))
    g_fused = torch.autograd.grad(_loss(fused), (w, omega))
    for a, b in zip(g_got, g_fused):
        assert _rel(a, b) <= 1e-4


def test_paper_sizes_float32_forward_bitwise_and_no_grad_path():
    """S-MNIST and ECG layer shapes (the BLAS call shapes the benchmarks use), with and without autograd."""
    for steps, batch, m, h in ((30, 16, 1, 256), (50, 16, 4, 36)):
        spec = _spec("brf", "", {})
        g = torch.Generator().manual_seed(2)
        x = torch.rand(steps, batch, m, generator=g)
        w = (torch.rand(h, m + h, generator=g) - 0.5) * 400
        omega = torch.rand(h, generator=g) * 35 + 15
        b_offset = torch.rand(h, generator=g)
        zero = torch.zeros(batch, h)
        w.requires_grad_()
        got = _layer(_cpu.CPURecurrentCellSequence, spec, True, x, w, zero, zero, zero, zero, omega, b_offset)
        fused = _layer(RecurrentCellSequence, spec, True, x, w, zero, zero, zero, zero, omega, b_offset)
        with torch.no_grad():
            light = _cpu.recurrent_sequence(spec, x, w, (zero, zero, zero, zero), omega, b_offset)
        assert got[0].sum() > 0
        for a, b in zip(got, fused):
            assert torch.equal(a, b)
        assert torch.equal(light[0], got[0]) and all(torch.equal(a, b) for a, b in zip(light[1], got[1:]))


# -------------------------------------------------------------------------------- feed-forward cells


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("kind,option,ablation", CASES, ids=CASE_IDS)
def test_cell_sequence_matches_torch_path(kind, option, ablation, dtype):
    spec = _spec(kind, option, ablation)
    g = torch.Generator().manual_seed(3)
    steps, batch, h = 50, 4, 5
    currents = (torch.randn(steps, batch, h, dtype=dtype, generator=g) * 150).requires_grad_()
    _, _, omega, b_offset, _, u0, v0, q0 = _problem(kind, dtype, batch=batch, h=h, seed=4)
    q = q0 if spec.has_q else None
    got = _cpu.CPUCellSequence.apply(spec, currents, u0, v0, q, *neuron_params(spec, omega, b_offset))
    fused = CellSequence.apply(spec, currents, u0, v0, q, *neuron_params(spec, omega, b_offset))
    for a, b in zip(got, fused):
        assert torch.equal(a, b)
    wrt = [currents, omega, b_offset, u0, v0] + ([q0] if spec.has_q else [])
    g_got = torch.autograd.grad(_loss(got), wrt)
    g_fused = torch.autograd.grad(_loss(fused), wrt)
    tol = GRAD_TOL if dtype == torch.float64 else 1e-4
    for a, b in zip(g_got, g_fused):
        assert _rel(a, b) <= tol


def test_multi_gaussian_surrogate_and_broadcast_parameters():
    """Multi-Gaussian surrogate; per-batch (B, h) parameters and (h,) initial states reduce their gradients."""
    spike_fn = multi_gaussian()
    spec = _spec("brf", "", {}, spike_fn)
    x, w, omega, b_offset, z0, u0, v0, q0 = _problem("brf", torch.float64, seed=5)
    pa, pb = neuron_params(spec, omega, b_offset)
    pa2 = pa.detach().expand(3, -1).clone().requires_grad_()
    u1 = u0.detach()[0].clone().requires_grad_()
    out = [fn.apply(spec, True, x, w, z0, u1, v0, q0, pa2, pb)
           for fn in (_cpu.CPURecurrentCellSequence, RecurrentCellSequence)]
    core = _core_layer("brf", "", {}, x, w, z0, u1.expand(3, -1), v0, q0, omega, b_offset, True, spike_fn)
    assert torch.equal(out[0][0], out[1][0]) and torch.equal(out[0][0], core[0])
    wrt = (x, w, pa2, pb, u1, v0, q0, z0)
    grads = [torch.autograd.grad(_loss(o), wrt) for o in out]
    for a, b in zip(*grads):
        assert a.shape == b.shape and _rel(a, b) <= GRAD_TOL


def test_input_gain_scales_the_current():
    spec = _spec("brf", "", {})
    if not hasattr(spec, "input_gain"):
        pytest.skip("this CellSpec has no input_gain")
    gained = spec.with_gain(100.0)
    x, w, omega, b_offset, z0, u0, v0, q0 = _problem("brf", torch.float64, seed=6)
    w_small = (w.detach() / 100.0).requires_grad_()
    got = _layer(_cpu.CPURecurrentCellSequence, gained, True, x, w_small, z0, u0, v0, q0, omega, b_offset)
    fused = _layer(RecurrentCellSequence, gained, True, x, w_small, z0, u0, v0, q0, omega, b_offset)
    for a, b in zip(got, fused):
        assert torch.equal(a, b)
    for a, b in zip(torch.autograd.grad(_loss(got), (w_small, omega)), torch.autograd.grad(_loss(fused),
                                                                                            (w_small, omega))):
        assert _rel(a, b) <= GRAD_TOL


@pytest.mark.parametrize("kind,option", [("brf", ""), ("rf", "hard"), ("bhrf", "code")])
def test_smooth_spike_gradcheck(kind, option):
    spec = _spec(kind, option, {}, SmoothSpike(double_gaussian()))
    x, w, omega, b_offset, z0, u0, v0, q0 = _problem(kind, torch.float64, steps=6, batch=2, m=2, h=3, seed=7)
    w = (w.detach() / 20).requires_grad_()
    q = q0 if spec.has_q else None

    def fn(x, w, omega, b_offset, u0, v0):
        return _layer(_cpu.CPURecurrentCellSequence, spec, True, x, w, z0.detach(), u0, v0, q, omega, b_offset)

    assert torch.autograd.gradcheck(fn, (x, w, omega, b_offset, u0, v0), eps=1e-6, atol=1e-6, rtol=1e-5)


def test_threads_give_the_same_bits():
    """Parallel over batch rows (at::parallel_for) changes nothing: each row's arithmetic is the same."""
    spec = _spec("brf", "", {})
    x, w, omega, b_offset, z0, u0, v0, q0 = _problem("brf", torch.float32, steps=8, batch=600, m=2, h=64, seed=8)
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            out = _layer(_cpu.CPURecurrentCellSequence, spec, True, x, w, z0, u0, v0, q0, omega, b_offset)
            grads = torch.autograd.grad(_loss(out), (omega, u0))
            results.append(list(out) + list(grads))
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*results):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)
    for a, b in zip(results[0][:5], results[1][:5]):
        assert torch.equal(a, b)


# ------------------------------------------------------------------------------------------ LI readout


def test_li_sequence_matches_torch_path_and_core():
    g = torch.Generator().manual_seed(9)
    currents = torch.randn(70, 4, 6, dtype=torch.float64, generator=g).requires_grad_()
    tau = (torch.randn(6, dtype=torch.float64, generator=g) * 5 + 20).requires_grad_()
    o0 = torch.randn(4, 6, dtype=torch.float64, generator=g).requires_grad_()
    for o in (None, o0):
        alpha = [F.li_alpha(tau) for _ in range(2)]
        got = _cpu.CPULISequence.apply(currents, o, alpha[0], 1.0 - alpha[0])
        fused = LISequence.apply(currents, o, alpha[1], 1.0 - alpha[1])
        state, core = (torch.zeros(4, 6, dtype=torch.float64) if o is None else o), []
        for c in currents:
            state = F.li_step(c, state, tau)
            core.append(state)
        core = torch.stack(core)
        assert torch.equal(got, fused) and torch.equal(got, core)
        wrt = (currents, tau) + ((o,) if o is not None else ())
        for a, b, c in zip(*(torch.autograd.grad(_loss([r]), wrt) for r in (got, fused, core))):
            assert _rel(a, b) <= GRAD_TOL and _rel(a, c) <= GRAD_TOL
    f32 = currents.detach().float()
    alpha = F.li_alpha(tau.detach().float())
    assert torch.equal(_cpu.CPULISequence.apply(f32, None, alpha, 1.0 - alpha),
                       LISequence.apply(f32, None, alpha, 1.0 - alpha))


# ------------------------------------------------------------------------------------------------ ALIF


def _alif_problem(dtype, steps=60, batch=3, m=3, h=6, recurrent=True, seed=10):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(steps, batch, m, dtype=dtype, generator=g)
    w = torch.randn(h, m + h if recurrent else m, dtype=dtype, generator=g) * 0.6
    tau_mem = torch.randn(h, dtype=dtype, generator=g) * 2 + 8
    tau_adp = torch.randn(h, dtype=dtype, generator=g) * 10 + 40
    z0 = (torch.rand(batch, h, dtype=dtype, generator=g) > 0.5).to(dtype)
    u0 = torch.randn(batch, h, dtype=dtype, generator=g) * 0.01
    a0 = torch.rand(batch, h, dtype=dtype, generator=g) * 0.01
    return [t.requires_grad_() for t in (x, w, tau_mem, tau_adp, z0, u0, a0)]


def _alif_core(x, w, z, u, a, tau_mem, tau_adp, recurrent, beta=F.ALIF_BETA, spike_fn=None):
    spikes = []
    for x_t in x:
        current = nnf.linear(torch.cat((x_t, z), 1) if recurrent else x_t, w)
        z, u, a = F.alif_step(current, z, u, a, tau_mem, tau_adp, F.ALIF_THETA, beta, spike_fn)
        spikes.append(z)
    return torch.stack(spikes), z, u, a


@pytest.mark.parametrize("recurrent", [True, False], ids=["rec", "ff-input"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_alif_layer_matches_core(dtype, recurrent):
    leaves = _alif_problem(dtype, recurrent=recurrent)
    x, w, tau_mem, tau_adp, z0, u0, a0 = leaves
    got = _cpu.alif_sequence(x, w, (z0, u0, a0), tau_mem, tau_adp, F.ALIF_THETA, F.ALIF_BETA, None, recurrent)
    got = (got[0],) + got[1]
    core = _alif_core(x, w, z0, u0, a0, tau_mem, tau_adp, recurrent)
    assert got[0].sum() > 0 and (got[0] == 0).any()
    for a, b in zip(got, core):
        assert torch.equal(a, b)                    # bitwise alif_step's values, float32 and float64
    tol = GRAD_TOL if dtype == torch.float64 else 1e-4
    for a, b in zip(torch.autograd.grad(_loss(got), leaves), torch.autograd.grad(_loss(core), leaves)):
        assert _rel(a, b) <= tol


def test_alif_backward_gradcheck():
    """The hand-derived ALIF backward against finite differences (smooth spike function, tiny sizes)."""
    spike_fn = SmoothSpike(double_gaussian())
    x, w, tau_mem, tau_adp, z0, u0, a0 = _alif_problem(torch.float64, steps=7, batch=2, m=2, h=3, seed=11)

    def fn(x, w, tau_mem, tau_adp, z0, u0, a0):
        z_all, state = _cpu.alif_sequence(x, w, (z0, u0, a0), tau_mem, tau_adp, F.ALIF_THETA, F.ALIF_BETA,
                                          spike_fn)
        return (z_all,) + state

    assert torch.autograd.gradcheck(fn, (x, w, tau_mem, tau_adp, z0, u0, a0), eps=1e-6, atol=1e-6, rtol=1e-5)
    # and the smooth forward equals the core's with the same smooth spike function
    got = fn(x, w, tau_mem, tau_adp, z0, u0, a0)
    core = _alif_core(x, w, z0, u0, a0, tau_mem, tau_adp, True, spike_fn=spike_fn)
    for a, b in zip(got, core):
        assert (a - b).abs().max() <= 1e-12


def test_unsupported_names_what_cannot_run():
    neurons = pytest.importorskip("brf_plugins.neurons")
    cfg = neurons.NeuronConfig
    x = torch.zeros(3, 2, 4)
    assert _cpu.unsupported(cfg("brf"), "recurrent", (x,)) is None
    assert _cpu.unsupported(cfg("rf", reset="hard"), "sequence", (x, None)) is None
    assert _cpu.unsupported(cfg("bhrf", variant="paper"), "recurrent", (x.double(),)) is None
    assert _cpu.unsupported(cfg("alif"), "recurrent", (x,)) is None
    assert _cpu.unsupported(cfg("brf"), "step", (x,)) is None            # CPUCellStep
    assert "no scope" in _cpu.unsupported(cfg("brf"), "layer", (x,))
    assert "ALIF only" in _cpu.unsupported(cfg("alif"), "sequence", (x,))
    assert "ALIF only" in _cpu.unsupported(cfg("alif"), "step", (x,))
    assert "spike_fn" in _cpu.unsupported(cfg("brf", spike_fn=torch.sigmoid), "recurrent", (x,))
    assert "theta" in _cpu.unsupported(cfg("brf", theta=torch.tensor(1.0)), "recurrent", (x,))
    assert "float16" in _cpu.unsupported(cfg("brf"), "recurrent", (x.half(),))
    assert "mix" in _cpu.unsupported(cfg("brf"), "recurrent", (x, x.double()))
    # the NeuronConfig form of the ALIF layer: its theta, beta and input gain
    leaves = _alif_problem(torch.float64)
    x, w, tau_mem, tau_adp, z0, u0, a0 = leaves
    got = _cpu.alif_layer(cfg("alif", beta=1.5, input_gain=2.0), x, w, (z0, u0, a0), tau_mem, tau_adp)
    core = _alif_core(x, w * 2.0, z0, u0, a0, tau_mem, tau_adp, True, beta=1.5)
    assert torch.equal(got[0], core[0]) and all((a - b).abs().max() <= STATE_TOL for a, b in zip(got[1], core[1:]))


# ------------------------------------------------------------------------------------------- real data


@pytest.fixture
def one_thread():
    """The real-data checks run single-threaded: on a busy 2-core machine, intra-op threads spin in every
    per-step parallel region (10x the CPU time); test_threads_give_the_same_bits checks the threaded path."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _compiled_net(net, x):
    """RecurrentSNN.forward on the compiled kernels: (readout, hidden spikes)."""
    layer = net.hidden
    state = layer.init_state(x.shape[1], dtype=x.dtype)
    if layer.neuron == "alif":
        z_all, _ = _cpu.alif_sequence(x, layer.linear.weight, tuple(state), layer.tau_mem, layer.tau_adp,
                                      layer.theta, layer.alif_beta, layer.spike_fn, layer.recurrent)
    else:
        option = {"rf": layer.rf_reset, "bhrf": layer.bhrf_variant}.get(layer.neuron, "")
        ablation = layer.ablation if layer.neuron == "brf" else {}
        spec = cell_spec(layer.neuron, layer.dt, layer.theta, layer.gamma, layer.spike_fn, option=option,
                         **ablation)
        z_all, _ = _cpu.recurrent_sequence(spec, x, layer.linear.weight, tuple(state), layer.omega,
                                           layer.b_offset, layer.recurrent)
    return _cpu.li_sequence(net.out.linear(z_all), None, net.out.tau_mem), z_all


def _reference_net(net, x):
    net.hidden.backend = "reference"
    out = net(x, record=True)
    return out.readout, out.hidden_spikes


def _check_checkpoint(name, x, y, grad_batch):
    from brf_plugins.checkpoints import load_authors_checkpoint
    net = load_authors_checkpoint(CHECKPOINTS / f"{name}.pt").double()
    x = x.double()
    with torch.no_grad():
        readout, spikes = _compiled_net(net, x)
        ref_readout, ref_spikes = _reference_net(net, x)
    assert spikes.sum() > 0
    assert torch.equal(spikes, ref_spikes)
    assert (readout - ref_readout).abs().max() <= STATE_TOL * max(1.0, float(ref_readout.abs().max()))
    # gradients of the task's summed NLL on a subset
    xs, ys = x[:, :grad_batch], y[:, :grad_batch]
    grads = []
    for run in (_compiled_net, _reference_net):
        net.zero_grad()
        readout = run(net, xs)[0]
        loss = nnf.nll_loss(torch.log_softmax(readout, -1).flatten(0, 1), ys.flatten(), reduction="sum")
        loss.backward()
        grads.append({n: p.grad.clone() for n, p in net.named_parameters()})
    for n, g in grads[1].items():
        assert _rel(grads[0][n], g) <= GRAD_TOL, n


@needs_data("ecg_qtdb", "QTDB_test.mat")
@pytest.mark.parametrize("name", ["ecg_brf", "ecg_rf", "ecg_alif"])
def test_ecg_checkpoints_full_test_set(name, one_thread):
    """Full ECG test set (141 x 1300 steps) forward in float64; gradients on 8 sequences."""
    from brf_plugins.data import ECGQTDB
    data = ECGQTDB(DATA_ROOT, split="test")
    xs, ys = zip(*(data[i] for i in range(len(data))))
    x, y = torch.stack(xs, 1), torch.stack(ys, 1)
    assert x.shape == (1300, 141, 4)
    _check_checkpoint(name, x, y, grad_batch=8)


@needs_data("mnist", "t10k-images-idx3-ubyte.gz")
@needs_data("reference_checkpoints", "smnist_brf.pt")
def test_smnist_checkpoint_200_images(one_thread):
    """200 S-MNIST test images forward in float64 (the label-last rule's logits); gradients on 16."""
    from brf_plugins.data import SequentialMNIST
    data = SequentialMNIST(DATA_ROOT, split="test")
    xs, ys = zip(*(data[i] for i in range(200)))
    x = torch.stack(xs, 1)
    y = torch.tensor(ys).expand(x.shape[0], -1)
    _check_checkpoint("smnist_brf", x, y, grad_batch=16)


def test_the_extension_is_compiled_from_a_content_addressed_copy_so_other_checkouts_do_not_rebuild_it():
    """ninja rebuilds when a source's path changes: the build must not depend on where this package lives (another
    checkout or installed copy of the same version would otherwise rebuild it, a minute, on every alternation)."""
    from pathlib import Path

    from torch.utils import cpp_extension
    name = _cpu._name()
    staged = _cpu._staged_source(name)
    build = Path(cpp_extension._get_build_directory(name, verbose=False))
    assert staged.parent == build and staged.read_bytes() == _cpu._SOURCE.read_bytes()
    ninja = (build / "build.ninja").read_text()
    assert str(staged) in ninja and str(_cpu._SOURCE) not in ninja
    before = staged.stat().st_mtime_ns
    assert _cpu._staged_source(name) == staged and staged.stat().st_mtime_ns == before   # not rewritten


def test_a_failed_build_warns_once_in_one_line_and_the_fused_path_runs(monkeypatch, tmp_path):
    import warnings

    from brf_plugins import RecurrentSNN
    monkeypatch.setattr(_cpu, "_module", None)
    monkeypatch.setattr(_cpu, "_reason", None)
    monkeypatch.setattr(_cpu, "_SOURCE", tmp_path / "missing" / "brf_cpu.cpp")
    with pytest.warns(RuntimeWarning, match=r"building the C\+\+ CPU kernels failed.*fused torch path") as caught:
        assert _cpu.load() is None
    assert len(caught) == 1 and "\n" not in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # no second warning
        assert _cpu.load() is None and _cpu.status()[0] is False
        net = RecurrentSNN(1, 8, 2, "brf")
        x = torch.rand(5, 2, 1)
        chosen = net.execution_plan(x)
        assert chosen.path == "fused" and "building the C++ CPU kernels failed" in chosen.reason
        net(x).readout.sum().backward()
