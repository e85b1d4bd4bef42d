"""snntorch_ext: BRF, RF, BHRF (and ALIF, LI) as native snnTorch neurons.

Every check compares against brf_plugins (the single implementation of the math) or snnTorch's own behaviour:
the same spikes and states as the core step functions, the paper network equal to the core's RecurrentSNN in
float64, the authors' ECG checkpoint scoring what the core scores, snnTorch's reset / losses / spikeplot working
with our neurons, and errors that name the argument.
"""

import doctest
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

snn = pytest.importorskip("snntorch")
import snntorch.functional as SF  # noqa: E402
from snntorch import utils  # noqa: E402

import snntorch_ext as snnx  # noqa: E402
from brf_plugins import functional as F  # noqa: E402
from brf_plugins.network import RecurrentLayer, RecurrentSNN  # noqa: E402
from brf_plugins.surrogate import double_gaussian_derivative  # noqa: E402

from .conftest import CHECKPOINTS, DATA_ROOT, REPO_ROOT, needs_data  # noqa: E402

B, H = 3, 5
DT = F.DEFAULT_DT


def _currents(T=60, scale=150.0, dtype=torch.float64):
    return torch.randn(T, B, H, dtype=dtype) * scale + scale / 3


def _core_run(kind, neuron, currents):
    """The core step functions over ``currents`` with ``neuron``'s parameters: spikes and final states."""
    p = dict(omega=neuron.omega, b_offset=neuron.b_offset)
    state = [torch.zeros_like(currents[0]) for _ in neuron.state_names]
    spikes = []
    for current in currents:
        current = current * neuron.input_gain
        if kind == "brf":
            z, *state = F.brf_step(current, *state, p["omega"], p["b_offset"], DT, 1.0, 0.9)
        elif kind == "rf":
            z, *state = F.rf_step(current, *state, p["omega"], p["b_offset"], DT, 1.0,
                                  reset=snnx.RF_RESET_MECHANISMS[neuron.reset_mechanism])
        else:
            z, *state = F.bhrf_step(current, *state, p["omega"], p["b_offset"], DT, 1.0, 0.9, variant=neuron.variant)
        spikes.append(z)
    return torch.stack(spikes), state


NEURON_CASES = [
    ("brf", lambda **kw: snnx.BRF(H, omega=(3.0, 60.0), b_offset=(0.1, 1.0), **kw)),
    ("rf", lambda **kw: snnx.RF(H, omega=(3.0, 60.0), b_offset=(0.1, 1.0), **kw)),
    ("rf", lambda **kw: snnx.RF(H, omega=(3.0, 60.0), b_offset=(0.1, 1.0), reset_mechanism="subtract", **kw)),
    ("rf", lambda **kw: snnx.RF(H, omega=(3.0, 60.0), b_offset=(0.1, 1.0), reset_mechanism="zero", **kw)),
    ("bhrf", lambda **kw: snnx.BHRF(H, omega=(3.0, 30.0), b_offset=(0.1, 1.0), **kw)),
    ("bhrf", lambda **kw: snnx.BHRF(H, omega=(3.0, 30.0), b_offset=(0.1, 1.0), variant="paper", **kw)),
]
CASE_IDS = ["brf", "rf-none", "rf-subtract", "rf-zero", "bhrf-code", "bhrf-paper"]


@pytest.mark.parametrize("gain", [1.0, None], ids=["spec-gain", "default-gain"])
@pytest.mark.parametrize("kind,make", NEURON_CASES, ids=CASE_IDS)
def test_neuron_steps_equal_core_functions(kind, make, gain):
    """Stepping the neuron, its forward_sequence and the three calling styles all equal the core in float64."""
    neuron = make(input_gain=gain).double()
    assert neuron.input_gain == (1.0 if gain else 1.0 / DT)
    currents = _currents(scale=150.0 if gain else 1.5)
    z_ref, state_ref = _core_run(kind, neuron, currents)
    assert z_ref.sum() > 0, "the test input should make the neurons spike"

    # all states explicit (snn.Synaptic style)
    states = neuron.reset_mem()
    spikes = []
    for current in currents:
        spk, *states = neuron(current, *states)
        spikes.append(spk)
    assert torch.equal(torch.stack(spikes), z_ref)
    for got, ref in zip(states, state_ref):
        torch.testing.assert_close(got, ref, rtol=0, atol=1e-6)

    # packed state: spk, state = neuron(cur, state)
    state = neuron.reset_mem()
    for current in currents:
        spk, state = neuron(current, state)
    assert type(state) is neuron.State
    assert all(torch.equal(a, b) for a, b in zip(state, states))

    # membrane only (snn.Leaky style): the rest of the state stays inside the module
    mem = neuron.init_leaky()
    for current in currents:
        spk, mem = neuron(current, mem)
    assert torch.equal(mem, states[0]) and torch.equal(neuron.u, states[0])

    # a whole sequence through brf_plugins.sequence
    neuron.reset_mem()
    spk_rec, *seq_states = neuron.forward_sequence(currents)
    assert torch.equal(spk_rec, z_ref)
    assert all(torch.equal(a, b) for a, b in zip(seq_states, states))


def test_alif_and_li_equal_core_functions():
    alif, li = snnx.ALIF(H).double(), snnx.LI(H, tau_mem=(20.0, 5.0)).double()
    currents = _currents(scale=0.05)
    z = u = a = o = torch.zeros(B, H, dtype=torch.float64)
    spk, su, sa = alif.reset_mem()
    mem = li.init_li().mem
    for current in currents:
        z, u, a = F.alif_step(current, z, u, a, alif.tau_mem, alif.tau_adp)
        o = F.li_step(current, o, li.tau_mem)
        spk, su, sa = alif(current, spk, su, sa)
        mem = li(current, mem)
        assert torch.equal(spk, z)
    assert z.sum() > 0
    assert torch.equal(su, u) and torch.equal(sa, a) and torch.equal(mem, o)


def test_graded_spikes_factor_scales_output_only():
    plain = snnx.BRF(H, omega=10.0, b_offset=0.5).double()
    graded = snnx.BRF(H, omega=10.0, b_offset=0.5, graded_spikes_factor=2.5).double()
    currents = _currents(scale=1.5)
    a = plain.forward_sequence(currents)
    b = graded.forward_sequence(currents)
    assert torch.equal(b[0], 2.5 * a[0]) and all(torch.equal(x, y) for x, y in zip(a[1:], b[1:]))


# ---- snnTorch integration --------------------------------------------------------------------------------------

def _sequential():
    torch.manual_seed(1)
    paper = dict(omega=(5.0, 10.0), b_offset=(0.0, 1.0))
    return nn.Sequential(nn.Linear(4, 8), snnx.BRF(8, init_hidden=True, **paper), nn.Linear(8, 3),
                         snnx.BRF(3, init_hidden=True, **paper), nn.Linear(3, 3),
                         snn.Leaky(0.9, init_hidden=True, output=True))  # snnTorch's own neurons mix in


def _run(net, x, steps=30):
    """The Leaky membrane of every step and the last BRF layer's final state."""
    mem = torch.stack([net(x)[1] for _ in range(steps)])
    return mem, net[3].states


def test_sequential_init_hidden_and_utils_reset():
    """Two samples with snntorch.utils.reset in between: the second starts from zero state."""
    x1, x2 = torch.rand(2, 4) * 3, torch.rand(2, 4) * 3
    net = _sequential()
    utils.reset(net)
    _run(net, x1)
    assert net[1].u.shape == (2, 8) and net[5].mem.abs().sum() > 0
    utils.reset(net)
    assert net[1].u.numel() == 0 and net[3].q.numel() == 0 and net[5].mem.abs().sum() == 0
    mem, states = _run(net, x2)
    fresh = _sequential()
    utils.reset(fresh)
    mem_fresh, states_fresh = _run(fresh, x2)
    assert torch.equal(mem, mem_fresh) and all(torch.equal(a, b) for a, b in zip(states, states_fresh))
    assert states[2].sum() > 0  # the BRF layer spiked (q > 0)
    # without the reset the state carries over and the result differs
    carried = _sequential()
    utils.reset(carried)
    _run(carried, x1)
    assert not torch.equal(_run(carried, x2)[0], mem)


def test_init_hidden_returns_spikes_and_rejects_explicit_states():
    brf = snnx.BRF(H, init_hidden=True)
    out = brf(torch.rand(B, H))
    assert isinstance(out, torch.Tensor) and out.shape == (B, H)
    with pytest.raises(TypeError, match="init_hidden=True"):
        brf(torch.rand(B, H), torch.zeros(B, H))
    brf = snnx.BRF(H, init_hidden=True, output=True)
    spk, mem = brf(torch.rand(B, H))         # snnTorch's convention: (spk, mem), the rest as attributes
    assert mem is brf.u is brf.mem and brf.v.shape == brf.q.shape == (B, H)


def test_gradients_reach_omega_b_offset_and_weights():
    fc, brf = nn.Linear(4, H), snnx.BRF(H)
    mem = brf.init_leaky()
    spikes = []
    for _ in range(30):
        spk, mem = brf(fc(torch.rand(B, 4) * 2), mem)
        spikes.append(spk)
    assert torch.stack(spikes).sum() > 0
    torch.stack(spikes).sum().backward()
    for p in (brf.omega, brf.b_offset, fc.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0


@pytest.fixture
def float64_default():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # parameters are created in the default dtype
    yield
    torch.set_default_dtype(previous)


@pytest.mark.parametrize("cls", [snnx.BRF, snnx.RF, snnx.BHRF])
def test_gradient_matches_finite_differences(cls, float64_default):
    """Below threshold (no spikes) the dynamics are smooth: autograd equals central differences in float64.

    ``surrogate_disable=True`` (plain Heaviside, as in snnTorch) removes the surrogate's path through the
    refractory variable, which a finite difference cannot see."""
    currents = torch.rand(40, 2, 3, dtype=torch.float64) * 0.5

    def loss(omega, b_offset):
        neuron = cls(3, omega=omega, b_offset=b_offset, input_gain=1.0, surrogate_disable=True).double()
        spk_rec, u, *rest = neuron.forward_sequence(currents)
        assert spk_rec.sum() == 0
        return (u * torch.arange(1.0, 4.0, dtype=torch.float64)).sum() + rest[0].square().sum()

    omega0, b0 = torch.tensor([4.0, 9.0, 20.0], dtype=torch.float64), torch.tensor([0.3, 0.6, 0.9],
                                                                                   dtype=torch.float64)
    neuron = cls(3, omega=omega0, b_offset=b0, input_gain=1.0, surrogate_disable=True).double()
    spk_rec, u, *rest = neuron.forward_sequence(currents)
    ((u * torch.arange(1.0, 4.0, dtype=torch.float64)).sum() + rest[0].square().sum()).backward()
    eps = 1e-6
    for i in range(3):
        e = torch.zeros(3, dtype=torch.float64)
        e[i] = eps
        d_omega = (loss(omega0 + e, b0) - loss(omega0 - e, b0)) / (2 * eps)
        d_b = (loss(omega0, b0 + e) - loss(omega0, b0 - e)) / (2 * eps)
        assert float(neuron.omega.grad[i]) == pytest.approx(float(d_omega.detach()), rel=1e-5, abs=1e-9)
        assert float(neuron.b_offset.grad[i]) == pytest.approx(float(d_b.detach()), rel=1e-5, abs=1e-9)


def test_snntorch_functional_losses_and_accuracy():
    fc, brf = nn.Linear(6, 4), snnx.BRF(4)
    x, targets = torch.rand(10, 8, 6) * 2, torch.randint(0, 4, (8,))
    spk_rec, u, v, q = brf.forward_sequence(fc(x))
    assert spk_rec.sum() > 0
    for loss_fn in (SF.ce_rate_loss(), SF.ce_count_loss(), SF.mse_count_loss()):
        loss = loss_fn(spk_rec, targets)
        assert torch.isfinite(loss)
        brf.omega.grad = None
        loss.backward(retain_graph=True)
        assert brf.omega.grad.abs().sum() > 0
    acc = SF.accuracy_rate(spk_rec, targets)
    assert acc == pytest.approx(float((spk_rec.sum(0).argmax(1) == targets).float().mean()))


def test_spikeplot_raster_of_brf_spikes(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import snntorch.spikeplot as splt

    brf = snnx.BRF(20, omega=(5.0, 40.0))
    t = torch.arange(200) * DT
    drive = torch.sin(2 * torch.pi * 2.0 * t)[:, None, None].expand(200, 1, 20) * 3
    spk_rec = brf.forward_sequence(drive)[0]
    fig, ax = plt.subplots(figsize=(6, 3))
    points = splt.raster(spk_rec[:, 0].detach(), ax, s=4, c="black")
    assert len(points.get_offsets()) == int(spk_rec.sum()) > 0
    path = tmp_path / "brf_raster.png"
    fig.savefig(path)
    plt.close(fig)
    assert path.stat().st_size > 1000


def test_double_gaussian_in_snntorch_neurons():
    """snntorch_ext.surrogate works as spike_grad of snnTorch's own Leaky: gradient = the double Gaussian."""
    lif = snn.Leaky(beta=0.5, spike_grad=snnx.surrogate.double_gaussian(), reset_mechanism="none")
    cur = torch.tensor([[0.2, 1.0, 1.7]], requires_grad=True)
    spk, mem = lif(cur)
    spk.sum().backward()
    torch.testing.assert_close(cur.grad, double_gaussian_derivative(cur.detach() - 1.0))
    assert torch.equal(spk, (cur > 1.0).float())
    brf = snnx.BRF(3, spike_grad=snn.surrogate.atan())  # and snnTorch's surrogates drive ours
    assert brf(torch.rand(2, 3) * 5, *brf.reset_mem())[0].shape == (2, 3)


def test_state_dict_round_trip():
    a = snnx.RF(H, reset_mechanism="zero", learn_b_offset=False)
    b = snnx.RF(H)
    assert set(a.state_dict()) == {"omega", "b_offset", "threshold", "graded_spikes_factor", "reset_mechanism_val"}
    b.load_state_dict(a.state_dict())
    assert b.reset_mechanism == "zero"
    x = torch.rand(30, B, H) * 3
    assert all(torch.equal(p, q) for p, q in zip(a.forward_sequence(x), b.forward_sequence(x)))
    assert "u" not in a.state_dict()  # hidden states are not saved, as in snnTorch


def test_surrogate_disable_keeps_dtype():
    brf = snnx.BRF(H, surrogate_disable=True).double()
    spk, *_ = brf(torch.rand(B, H, dtype=torch.float64) * 300)
    assert spk.dtype == torch.float64


# ---- recurrent neurons -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("neuron,cls", [("brf", snnx.RBRF), ("rf", snnx.RRF), ("bhrf", snnx.RBHRF)])
def test_paper_layer_from_linear_and_recurrent_neuron(neuron, cls):
    """nn.Linear(m, h, bias=False) + R*(h, recurrent_bias=False) is the core's RecurrentLayer (float64)."""
    m, h = 4, 6
    core = RecurrentLayer(m, h, neuron, omega_init=(3.0, 30.0)).double()
    fc = nn.Linear(m, h, bias=False).double()
    rnn = cls(h, omega=core.omega.detach(), b_offset=core.b_offset.detach(), recurrent_bias=False,
              input_gain=1.0).double()
    with torch.no_grad():
        fc.weight.copy_(core.linear.weight[:, :m])
        rnn.recurrent.weight.copy_(core.linear.weight[:, m:])
    x = torch.rand(80, B, m, dtype=torch.float64) * 40
    state = core.init_state(B, dtype=torch.float64)
    spk, mem = rnn.init_rleaky()
    n = 0
    for x_t in x:
        state = core(x_t, state)
        spk, mem = rnn(fc(x_t), spk, mem)  # snn.RLeaky style
        assert torch.equal(spk, state[0])
        n += int(spk.sum())
    assert n > 0
    for got, ref in zip(rnn.states, state):
        torch.testing.assert_close(got, ref, rtol=0, atol=1e-6)


def test_recurrent_one_to_one_and_learnable_weights():
    rbrf = snnx.RBRF(H, all_to_all=False, V=0.5)
    assert isinstance(rbrf.V, nn.Parameter) and not hasattr(rbrf, "recurrent")
    spk, u, v, q = rbrf.forward_sequence(torch.rand(30, B, H) * 3)[1:]
    assert spk.shape == (B, H)
    frozen = snnx.RBRF(H, learn_recurrent=False)
    assert not any(p.requires_grad for p in frozen.recurrent.parameters())
    dense = snnx.RBRF(H, linear_features=H)
    assert dense.recurrent.weight.shape == (H, H)


# ---- the paper network and the authors' checkpoints --------------------------------------------------------------

@pytest.mark.parametrize("neuron", ["brf", "rf", "bhrf", "alif"])
def test_build_paper_network_equals_core(neuron):
    """Same seed, same parameters as RecurrentSNN.from_task; spikes equal and states within 1e-6 in float64."""
    ours = snnx.build_paper_network("ecg", neuron=neuron, generator=torch.Generator().manual_seed(3)).double()
    core = RecurrentSNN.from_task("ecg", neuron, generator=torch.Generator().manual_seed(3)).double()
    core_state = core.state_dict()
    for key, value in ours.authors_state_dict().items():
        assert torch.equal(value, core_state[key]), key
    x = (torch.rand(150, 2, 4, dtype=torch.float64) < 0.3).double() * 60
    a, b = core(x, record=True), ours(x, record=True)
    assert a.hidden_spikes.sum() > 0
    assert torch.equal(a.hidden_spikes, b.hidden_spikes)
    torch.testing.assert_close(b.readout, a.readout, rtol=0, atol=1e-6)
    for got, ref in zip(b.state[0], a.state[0]):
        torch.testing.assert_close(got, ref, rtol=0, atol=1e-6)
    assert torch.equal(a.spike_count, b.spike_count)
    # the spike-deletion hook of the core's forward behaves the same
    def hook(t, z):
        return z * (torch.arange(z.numel(), dtype=z.dtype).reshape(z.shape) % 3 != t % 3)
    a, b = core(x, record=True, spike_hook=hook), ours(x, record=True, spike_hook=hook)
    assert torch.equal(a.hidden_spikes, b.hidden_spikes)
    torch.testing.assert_close(b.readout, a.readout, rtol=0, atol=1e-6)
    b = ours(x, record=True)
    # continuing from a returned state equals one long run
    first, second = ours(x[:70]), ours(x[70:], state=ours(x[:70]).state)
    torch.testing.assert_close(torch.cat((first.readout, second.readout)), b.readout, rtol=0, atol=1e-12)


@needs_data("reference_checkpoints", "ecg_brf.pt")
@pytest.mark.parametrize("name", ["ecg_brf", "ecg_rf", "ecg_alif"])
def test_authors_checkpoint_equals_core_float64(name):
    from brf_plugins.checkpoints import load_authors_checkpoint
    ours = snnx.from_authors_checkpoint(CHECKPOINTS / f"{name}.pt").double()
    core = load_authors_checkpoint(CHECKPOINTS / f"{name}.pt").double()
    x = (torch.rand(200, 2, 4, dtype=torch.float64) < 0.3).double()
    a, b = core(x, record=True), ours(x, record=True)
    assert a.hidden_spikes.sum() > 0 and torch.equal(a.hidden_spikes, b.hidden_spikes)
    for got, ref in zip(b.state[0], a.state[0]):
        torch.testing.assert_close(got, ref, rtol=0, atol=1e-6)
    # and back: our parameters under the authors' keys load into the core strictly
    RecurrentSNN(4, 36, 6, core.neuron).double().load_state_dict(ours.authors_state_dict(), strict=True)


def _ecg_scores(n_samples, steps):
    from torch.utils.data import DataLoader, Subset

    from brf_plugins.checkpoints import load_authors_checkpoint
    from brf_plugins.data import ECGQTDB
    from brf_plugins.metrics import evaluate
    from brf_plugins.train.reproduce import REFERENCES

    ref = {r.name: r for r in REFERENCES}["ecg_brf"]
    test = ECGQTDB(DATA_ROOT, split="test")
    samples = [(x[:steps], y[:steps]) for x, y in Subset(test, range(n_samples))]
    scores = []
    for model in (snnx.from_authors_checkpoint(CHECKPOINTS / "ecg_brf.pt"),
                  load_authors_checkpoint(CHECKPOINTS / "ecg_brf.pt")):
        scores.append(evaluate(model, DataLoader(samples, batch_size=len(samples)), ref.loss_rule,
                               ref.accuracy_rule, ref.start))
    return ref, scores


@needs_data("ecg_qtdb", "QTDB_test.mat")
def test_ecg_checkpoint_scores_like_the_core_on_a_subset():
    ref, (ours, core) = _ecg_scores(n_samples=12, steps=400)
    assert ours == core and ours.scored == 12 * 400
    assert ours.accuracy > 0.5


@pytest.mark.slow
@needs_data("ecg_qtdb", "QTDB_test.mat")
def test_ecg_checkpoint_reproduces_published_accuracy():
    from brf_plugins.train.reproduce import distance_to_range
    ref, (ours, core) = _ecg_scores(n_samples=141, steps=1300)
    assert ours == core
    assert distance_to_range(ours.percent, ref.expected) <= ref.tolerance, ours.percent


def test_build_paper_network_arguments():
    net = snnx.build_paper_network((3, 7, 2), neuron="rf", reset_mechanism="zero")
    assert (net.input_size, net.hidden_size, net.output_size) == (3, 7, 2) and net.hidden.reset_mechanism == "zero"
    with pytest.raises(ValueError, match="unknown task"):
        snnx.build_paper_network("mnist")
    with pytest.raises(ValueError, match="task_or_sizes"):
        snnx.build_paper_network((3, 7))
    with pytest.raises(ValueError, match="neuron"):
        snnx.build_paper_network((3, 7, 2), neuron="lif")
    with pytest.raises(ValueError, match=r"`x` has last dimension 5 .* input_size = 3"):
        net(torch.rand(10, 2, 5))
    with pytest.raises(ValueError, match="`x` must have 3 dimensions"):
        net(torch.rand(2, 3))
    with pytest.raises(ValueError, match="another batch size"):
        net(torch.rand(10, 2, 3), state=net.init_state(4))


def test_from_authors_checkpoint_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="reference_checkpoints"):
        snnx.from_authors_checkpoint(tmp_path / "nope.pt")


# ---- errors ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(num_neurons=-3), ValueError, "`num_neurons` must be a positive int"),
    (dict(num_neurons=2.5), TypeError, "`num_neurons` must be a positive int"),
    (dict(omega=100.0), ValueError, r"`omega` reaches \|omega\| = 100, at or above 1/dt = 100"),
    (dict(omega=(5.0, 150.0)), ValueError, "smaller dt"),
    (dict(omega=60.0, dt=0.02), ValueError, "1/dt = 50"),
    (dict(omega=(9.0, 3.0)), ValueError, "low <= high"),
    (dict(b_offset=float("nan")), ValueError, "`b_offset` must be finite"),
    (dict(dt=0.0), ValueError, "`dt` must be > 0"),
    (dict(threshold=torch.ones(4)), ValueError, "`threshold` must be a number or a tensor of shape"),
    (dict(input_gain=-1.0), ValueError, "`input_gain` must be > 0"),
    (dict(reset_mechanism="subtract"), ValueError, "reset is built in"),
    (dict(init_hidden="yes"), TypeError, "`init_hidden` must be True or False"),
    (dict(learn_omega=1), TypeError, "`learn_omega` must be True or False"),
    (dict(spike_grad="atan"), TypeError, "`spike_grad` must be a callable"),
])
def test_constructor_errors(kwargs, exc, match):
    kwargs = dict(kwargs)
    n = kwargs.pop("num_neurons", 3)
    with pytest.raises(exc, match=match):
        snnx.BRF(n, **kwargs)


def test_forward_errors():
    brf = snnx.BRF(4)
    with pytest.raises(ValueError, match=r"`input_` has last dimension 3 .* num_neurons = 4"):
        brf(torch.rand(2, 3))
    with pytest.raises(TypeError, match="real floating-point tensor.*float()"):
        brf(torch.ones(2, 4, dtype=torch.long))
    spk, u, v, q = brf(torch.rand(2, 4))
    with pytest.raises(ValueError, match="state `u` has shape \\(2, 4\\) but the input needs \\(5, 4\\)"):
        brf(torch.rand(5, 4), u, v, q)
    with pytest.raises(TypeError, match="state `q` has dtype"):
        brf(torch.rand(2, 4), u, v, q.double())
    with pytest.raises(ValueError, match="packed state of BRF must hold 3 tensors"):
        brf(torch.rand(2, 4), (u, v))
    with pytest.raises(ValueError, match="`input_` must have 3 dimensions"):
        brf.forward_sequence(torch.rand(2, 4))
    with pytest.raises(ValueError, match="reset_mechanism` of RF must be one of"):
        snnx.RF(4).reset_mechanism = "soft"
    with pytest.raises(ValueError, match="linear_features"):
        snnx.RBRF(4, linear_features=5)


# ---- docs, examples, devices ----------------------------------------------------------------------------------

def test_docstring_examples_run():
    import snntorch_ext._base
    import snntorch_ext.network
    import snntorch_ext.neurons
    import snntorch_ext.recurrent
    import snntorch_ext.surrogate
    import snntorch_ext.utils
    failed = 0
    for module in (snnx, snntorch_ext._base, snntorch_ext.neurons, snntorch_ext.recurrent, snntorch_ext.network,
                   snntorch_ext.surrogate, snntorch_ext.utils):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        failed += result.failed
    assert failed == 0


def test_leaky_swapped_for_brf_learns():
    """snnTorch's tutorial-5 network and loop (loss on the output membrane, Adam 5e-4) with BRF instead of Leaky."""
    torch.manual_seed(0)
    n_in, n_hidden, n_out, steps = 16, 32, 3, 10
    prototypes = torch.rand(n_out, n_in)

    def batch(n):
        y = torch.randint(0, n_out, (n,))
        return (prototypes[y] + 0.2 * torch.randn(n, n_in)).clamp(0, 1), y

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.lif1 = nn.Linear(n_in, n_hidden), snnx.BRF(n_hidden)
            self.fc2, self.lif2 = nn.Linear(n_hidden, n_out), snnx.BRF(n_out)

        def forward(self, x):
            mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
            spk2_rec, mem2_rec = [], []
            for _ in range(steps):
                spk1, mem1 = self.lif1(self.fc1(x), mem1)
                spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
                spk2_rec.append(spk2)
                mem2_rec.append(mem2)
            return torch.stack(spk2_rec), torch.stack(mem2_rec)

    net, loss = Net(), nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(net.parameters(), lr=5e-3)
    x_test, y_test = batch(256)

    def accuracy():
        with torch.no_grad():
            return float((net(x_test)[1].sum(0).argmax(1) == y_test).float().mean())

    before = accuracy()
    for _ in range(40):
        x, y = batch(32)
        _, mem_rec = net(x)
        loss_val = sum(loss(mem_rec[t], y) for t in range(steps))
        optimizer.zero_grad()
        loss_val.backward()
        optimizer.step()
    assert accuracy() > max(0.9, before + 0.3)


@pytest.mark.slow
def test_tutorial_swap_script_runs():
    out = subprocess.run([sys.executable, str(REPO_ROOT / "examples" / "snntorch_tutorial_swap.py"),
                          "--iterations", "60"], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert out.returncode == 0, out.stderr
    final = float(out.stdout.strip().splitlines()[-1].split(":")[-1].strip().rstrip("%"))
    # 54.7 % with the drop-in defaults omega (10, 50), b' (1, 6) (chosen for conv and recurrent nets), above 90 %
    # with the paper's (5, 10) / (0, 1), which the README recommends for fully connected nets: a trade-off, measured
    # in benchmarks/results/dropin_defaults.md; chance is about 25 % on this task.
    assert final > 50.0


def test_quickstart_notebook_runs(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    path = REPO_ROOT / "examples" / "snntorch_quickstart.ipynb"
    nb = nbformat.read(path, as_version=4)
    os.environ["BRF_QUICK"] = "1"
    try:
        client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                         resources={"metadata": {"path": str(tmp_path)}})
        client.execute(env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "MPLBACKEND": "Agg"})
    finally:
        os.environ.pop("BRF_QUICK", None)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert text.count("resonates") == 6 and text.count("the others fire 0 spikes") == 6, text


@pytest.mark.slow
def test_torch_compile_of_a_time_loop():
    brf = snnx.BRF(H, omega=(5.0, 20.0))

    def loop(x):
        state = brf.reset_mem()
        spikes = []
        for x_t in x:
            spk, state = brf(x_t, state)
            spikes.append(spk)
        return torch.stack(spikes)

    x = torch.rand(20, B, H) * 3
    eager = loop(x)
    compiled = torch.compile(loop)(x)
    assert torch.equal(compiled, eager)


@pytest.mark.gpu
def test_cuda_equals_cpu():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    net = snnx.build_paper_network("ecg", neuron="brf").double()
    x = (torch.rand(100, 2, 4, dtype=torch.float64) < 0.3).double()
    a = net(x, record=True)
    b = net.cuda()(x.cuda(), record=True)
    assert torch.equal(a.hidden_spikes, b.hidden_spikes.cpu())
    torch.testing.assert_close(b.readout.cpu(), a.readout, rtol=0, atol=1e-9)
