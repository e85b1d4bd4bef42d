"""snnTorch's tutorial code with ``snn.Leaky`` / ``snn.RLeaky`` swapped for this package's neurons: the drop-in
issue, item by item (output convention, snntorch.backprop, names, zeros state, lazy size, per-channel conv maps,
NIR, and shrunk tutorial swaps that must learn above chance)."""

import warnings

import pytest
import torch
import torch.nn as nn

snn = pytest.importorskip("snntorch")
import snntorch.functional as SF  # noqa: E402
from snntorch import spikegen, utils  # noqa: E402

import snntorch_ext as snnx  # noqa: E402
from snntorch_ext import utils as snnx_utils  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from snntorch import backprop  # noqa: E402


# ---- 2. output convention and snntorch.backprop ----------------------------------------------------------------

def test_output_true_returns_spk_and_mem_like_leaky():
    net = nn.Sequential(nn.Linear(4, 6), snnx.BRF(init_hidden=True), nn.Linear(6, 3),
                        snnx.BRF(init_hidden=True, output=True))
    spk, mem = net(torch.rand(2, 4))
    last = net[3]
    assert spk.shape == mem.shape == (2, 3) and mem is last.mem is last.u
    assert [s.shape for s in last.states] == [(2, 3)] * 3
    rbrf = snnx.RBRF(5, init_hidden=True, output=True)
    spk, mem = rbrf(torch.rand(2, 5))
    assert mem is rbrf.mem and rbrf.spk is spk


def _classification_loader(n=64, batch=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 12, generator=g)
    y = (x[:, :6].sum(1) > x[:, 6:].sum(1)).long()
    return [(x[i:i + batch], y[i:i + batch]) for i in range(0, n, batch)]


@pytest.mark.parametrize("method,kw", [("BPTT", {}), ("TBPTT", {"K": 4}), ("RTRL", {})])
@pytest.mark.parametrize("last", ["brf", "rbrf"])
def test_snntorch_backprop_trains_with_brf_layers_including_the_last(method, kw, last):
    torch.manual_seed(0)
    out = snnx.BRF(init_hidden=True, output=True) if last == "brf" else snnx.RBRF(init_hidden=True, output=True)
    net = nn.Sequential(nn.Linear(12, 24), snnx.BRF(init_hidden=True), nn.Linear(24, 2), out)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)   # built before the first call: the lazy sizes still train
    loader = _classification_loader()
    losses = [float(getattr(backprop, method)(net, loader, optimizer=opt, criterion=SF.mse_count_loss(),
                                              num_steps=8, time_var=False, **kw)) for _ in range(4)]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]


def test_tbptt_detaches_the_whole_state_of_every_brf_layer():
    net = nn.Sequential(nn.Linear(3, 4), snnx.BRF(init_hidden=True), nn.Linear(4, 2),
                        snnx.BRF(init_hidden=True, output=True))
    utils.reset(net)
    net(torch.rand(2, 3))
    assert all(s.grad_fn is not None for s in net[1].states)
    snn.Leaky.detach_hidden()             # what backprop.TBPTT calls between truncations
    assert all(s.grad_fn is None for m in (net[1], net[3]) for s in m.states)


def test_backprop_final_layer_errors_say_what_to_change():
    with pytest.raises(TypeError, match="init_hidden=True and output=True"):
        utils._final_layer_check(nn.Sequential(nn.Linear(2, 2), snnx.BRF(init_hidden=True)))
    with pytest.raises(TypeError, match="readout returning the membrane"):
        utils._final_layer_check(nn.Sequential(nn.Linear(2, 2), snnx.LI(2, init_hidden=True)))
    assert utils._final_layer_check(nn.Sequential(nn.Linear(2, 2), snn.Leaky(0.9))) == 2  # snnTorch's own


# ---- 4. names ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [snnx.BRF, snnx.RF, snnx.BHRF, snnx.RBRF, snnx.ALIF, snnx.LI])
@pytest.mark.parametrize("name,value,says", [
    ("beta", 0.9, "instead of beta"), ("learn_beta", True, "learn_"), ("inhibition", True, "inhibition"),
    ("state_quant", True, "state_quant"), ("reset_delay", False, "reset_delay")])
def test_snntorch_only_arguments_name_the_public_class_and_the_replacement(cls, name, value, says):
    with pytest.raises(TypeError) as info:
        cls(**{name: value})
    message = str(info.value)
    assert message.startswith(f"{cls.__name__}() does not take `{name}`") and says in message
    assert "_Resonator" not in message and "_Refractory" not in message


def test_beta_attribute_and_positional_beta_explain_b_offset():
    brf = snnx.BRF(3)
    with pytest.raises(AttributeError, match="BRF has no attribute `beta`.*b_offset"):
        brf.beta
    assert not hasattr(brf, "beta")
    with pytest.raises(TypeError, match="snn.Leaky's beta.*b_offset"):
        snnx.BRF(0.95)
    with pytest.raises(AttributeError, match="tau_mem"):
        snnx.ALIF(3).beta
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        snnx.BRF(3, bogus=1)
    assert snnx.BRF(3, threshold=0.5).threshold == 0.5         # snnTorch's name where it means the same


def test_mem_attribute_reads_and_sets_the_membrane():
    brf = snnx.BRF(3)
    brf(torch.rand(2, 3))
    assert brf.mem is brf.u
    brf.mem = torch.full((2, 3), 0.25)
    assert torch.equal(brf.u, torch.full((2, 3), 0.25))


# ---- 6. zeros state from user code ------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [snnx.BRF, snnx.BHRF, snnx.RBRF])
def test_user_zeros_state_is_a_fresh_start_equal_to_reset_mem(cls):
    torch.manual_seed(0)
    neuron = cls(6)
    x = torch.rand(40, 3, 6) * 3
    recurrent = cls is snnx.RBRF

    def run(start):
        spk0, mem = start()
        total = 0
        for t in range(40):
            if recurrent:
                spk0, mem = neuron(x[t], spk0, mem)
            else:
                spk0, mem = neuron(x[t], mem)
            total += float(spk0.sum())
        return total

    def fresh():
        mem = neuron.init_leaky()
        return mem if recurrent else (None, mem)

    def zeros():
        return torch.zeros(3, 6), torch.zeros(3, 6)

    expected = run(fresh)
    assert expected > 0
    assert run(zeros) == expected          # v, q (and the recurrent spikes) of the last sample do not carry over
    assert run(zeros) == expected


def test_passing_back_the_returned_mem_continues_the_state():
    brf = snnx.BRF(4, omega=10.0, b_offset=0.5)
    x = torch.rand(2, 4) * 3
    mem = brf.init_leaky()
    for _ in range(5):
        spk, mem = brf(x, mem)
    v = brf.v.clone()
    _, mem2 = brf(x, mem)
    assert not torch.equal(brf.v, torch.zeros_like(v))
    mem_detached = mem2.detach()           # TBPTT-style user code: same values, another tensor: keeps v, q
    brf(x, mem_detached)
    assert brf.q.abs().sum() > 0 or brf.v.abs().sum() > 0


# ---- 1. lazy size, per-channel conv maps --------------------------------------------------------------------------

def test_omitted_size_is_inferred_with_the_draws_of_a_sized_module():
    lazy = snnx.BRF(generator=torch.Generator().manual_seed(3))
    sized = snnx.BRF(7, generator=torch.Generator().manual_seed(3))
    assert lazy.is_lazy and "inferred" in repr(lazy)
    x = torch.rand(2, 7) * 3
    assert torch.equal(lazy(x)[0], sized(x)[0])
    assert torch.equal(lazy.omega, sized.omega) and lazy.num_neurons == 7 and isinstance(lazy.omega, nn.Parameter)
    with pytest.raises(ValueError, match="num_neurons = 7"):
        lazy(torch.rand(2, 5))
    fresh = snnx.BRF()
    fresh.load_state_dict(sized.state_dict())             # a lazy module loads a saved one (PyTorch's convention)
    assert torch.equal(fresh.b_offset, sized.b_offset)
    r = snnx.RBRF(linear_features=5)                       # snn.RLeaky's way of giving the size
    assert r.num_neurons == 5 and r.recurrent.weight.shape == (5, 5)


def test_per_channel_parameters_broadcast_over_space_and_match_the_flattened_core():
    torch.manual_seed(0)
    conv = snnx.BRF(per_channel=True, omega=(5.0, 30.0), b_offset=(0.0, 2.0)).double()
    flat = snnx.BRF(4).double()
    x = torch.rand(6, 2, 4, 3, 5, dtype=torch.float64) * 2
    conv(x[0])
    flat.load_state_dict(conv.state_dict())
    assert conv.omega.shape == (4,)
    mem_c, mem_f = conv.init_leaky(), flat.init_leaky()
    for t in range(6):
        spk_c, mem_c = conv(x[t], mem_c)
        spk_f, mem_f = flat(x[t].permute(0, 2, 3, 1), mem_f)    # the same neurons with channels last
        assert torch.equal(spk_c, spk_f.permute(0, 3, 1, 2))
    assert spk_c.shape == x[0].shape and conv.mem.shape == x[0].shape
    seq = snnx.BRF(per_channel=True).double()
    seq.load_state_dict(conv.state_dict())
    spikes, *_ = seq.forward_sequence(x)                          # the whole-sequence path, (T, B, C, H, W)
    conv.reset_mem()
    steps = torch.stack([conv(x[t])[0] for t in range(6)])
    assert torch.equal(spikes, steps)


# ---- 5. NIR ------------------------------------------------------------------------------------------------------

def test_nir_export_raises_a_clear_error_for_resonators_and_exports_li():
    nir = pytest.importorskip("nir")
    from snntorch.export_nir import export_to_nir
    for neuron in (snnx.BRF(8, init_hidden=True), snnx.RBRF(8, init_hidden=True), snnx.ALIF(8, init_hidden=True)):
        with pytest.raises(snnx.NIRExportError, match="NIR 1.0 has no"):
            export_to_nir(nn.Sequential(nn.Linear(4, 8), neuron), torch.rand(1, 4), ignore_dims=[0])
    li = snnx.LI(3, tau_mem=20.0, init_hidden=True)
    graph = export_to_nir(nn.Sequential(nn.Linear(4, 3), li), torch.rand(1, 4), ignore_dims=[0])
    node = graph.nodes["1"]
    assert isinstance(node, nir.LI) and ("1", "output") in graph.edges
    # NIR's LI stepped with dt is the readout: 1 - dt/tau = exp(-1/tau_mem), r = 1
    alpha = torch.exp(torch.tensor(-1 / 20.0, dtype=torch.float64))
    assert abs(1 - snnx_utils.NIR_DT / float(node.tau[0]) - float(alpha)) < 1e-6 and float(node.r[0]) == 1.0


# ---- the tutorials' swaps, shrunk to seconds: each learns above chance -----------------------------------------

from tests.conftest import DATA_ROOT, needs_data  # noqa: E402

needs_mnist = needs_data("mnist", "t10k-images-idx3-ubyte.gz")


def _mnist(n_train, n_test):
    from brf_plugins.data import SequentialMNIST
    data = SequentialMNIST(DATA_ROOT, split="test", verify=False)
    x = data.images.float().div(255.0).reshape(-1, 1, 28, 28)
    return (x[:n_train], data.labels[:n_train]), (x[-n_test:], data.labels[-n_test:])


@needs_mnist
def test_tutorial5_fcn_swap_learns_with_rate_coded_mnist():
    """Tutorial 5's network and loop (init_leaky, CrossEntropy on the membrane of every step, Adam 5e-4) with
    BRF() for snn.Leaky(beta=0.95), spikegen.rate input, 800 images."""
    torch.manual_seed(0)
    (xtr, ytr), (xte, yte) = _mnist(800, 400)
    fc1, lif1, fc2, lif2 = nn.Linear(784, 100), snnx.BRF(), nn.Linear(100, 10), snnx.BRF()
    params = list(fc1.parameters()) + list(fc2.parameters()) + list(lif1.parameters()) + list(lif2.parameters())
    opt = torch.optim.Adam(params, lr=5e-4, betas=(0.9, 0.999))      # before the first call: lazy sizes train
    loss_fn = nn.CrossEntropyLoss()

    def forward(x, steps=8):
        mem1, mem2 = lif1.init_leaky(), lif2.init_leaky()
        mem_rec = []
        for spikes in spikegen.rate(x.flatten(1), num_steps=steps):
            spk1, mem1 = lif1(fc1(spikes), mem1)
            spk2, mem2 = lif2(fc2(spk1), mem2)
            mem_rec.append(mem2)
        return torch.stack(mem_rec)

    for epoch in range(2):
        for i in range(0, 800, 50):
            mem = forward(xtr[i:i + 50])
            loss = sum(loss_fn(m, ytr[i:i + 50]) for m in mem)
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        acc = float((forward(xte).sum(0).argmax(1) == yte).float().mean())
    assert lif1.omega.grad is not None and lif1.num_neurons == 100
    assert acc > 0.3, acc                                             # chance: 0.1


@needs_mnist
def test_tutorial6_cnn_swap_learns_with_per_channel_brf():
    """Tutorial 6's init_hidden CNN (utils.reset, mse_count_loss, accuracy_rate, Adam 1e-2) with per-channel BRF
    layers for snn.Leaky."""
    torch.manual_seed(0)
    (xtr, ytr), (xte, yte) = _mnist(3072, 300)
    net = nn.Sequential(nn.Conv2d(1, 12, 5), nn.MaxPool2d(2), snnx.BRF(per_channel=True, init_hidden=True),
                        nn.Conv2d(12, 32, 5), nn.MaxPool2d(2), snnx.BRF(per_channel=True, init_hidden=True),
                        nn.Flatten(), nn.Linear(32 * 4 * 4, 10), snnx.BRF(init_hidden=True, output=True))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2, betas=(0.9, 0.999))
    loss_fn = SF.mse_count_loss(correct_rate=0.8, incorrect_rate=0.2)

    def forward(x, steps=8):
        utils.reset(net)
        return torch.stack([net(x)[0] for _ in range(steps)])

    for i in range(0, 3072, 128):
        loss = loss_fn(forward(xtr[i:i + 128]), ytr[i:i + 128])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        acc = SF.accuracy_rate(forward(xte), yte)
    assert net[2].omega.shape == (12,) and net[5].omega.shape == (32,)
    assert acc > 0.2, acc             # chance: 0.1 (at lr 1e-2 this budget is early in training; see the benchmark)


def test_regression_swap_rbrf_learns_a_delayed_trace():
    """Regression tutorial 2's pattern: a recurrent layer (RBRF for snn.RLeaky) and a non-spiking snn.Leaky
    readout, mse on the readout membrane, Adam 1e-3; R^2 well above 0 (predicting the mean)."""
    torch.manual_seed(0)

    def data(n, seed, steps=30):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(steps, n, 1, generator=g)
        y, acc = torch.zeros_like(x), torch.zeros(n, 1)
        for t in range(steps):
            acc = 0.9 * acc + 0.1 * (x[t - 3] if t >= 3 else 0.0)
            y[t] = 3 * acc
        return x, y

    fc_in, rec, fc_out = nn.Linear(1, 24), snnx.RBRF(), nn.Linear(24, 1)
    readout = snn.Leaky(beta=0.9, reset_mechanism="none")
    mods = nn.ModuleList([fc_in, rec, fc_out, readout])

    def forward(x):
        spk, mem = rec.init_rleaky()
        mem_out = readout.init_leaky()
        out = []
        for t in range(x.shape[0]):
            spk, mem = rec(fc_in(x[t]), spk, mem)
            _, mem_out = readout(fc_out(spk), mem_out)
            out.append(mem_out)
        return torch.stack(out)

    forward(torch.zeros(1, 1, 1))
    opt = torch.optim.Adam(mods.parameters(), lr=1e-3)
    for it in range(60):
        x, y = data(32, it)
        loss = torch.nn.functional.mse_loss(forward(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, y = data(128, 10_000)
    with torch.no_grad():
        r2 = 1 - float(((forward(x) - y) ** 2).sum() / ((y - y.mean()) ** 2).sum())
    assert r2 > 0.1, r2                                               # 0: the mean


def test_torch_compile_and_lazy_size_together():
    net = nn.Sequential(nn.Linear(6, 8), snnx.BRF(init_hidden=True), nn.Linear(8, 3),
                        snnx.BRF(init_hidden=True, output=True))
    x = torch.rand(4, 6) * 2
    utils.reset(net)
    eager = [net(x)[0] for _ in range(3)]
    compiled = torch.compile(net, backend="eager")
    utils.reset(net)
    again = [compiled(x)[0] for _ in range(3)]
    assert all(torch.equal(a, b) for a, b in zip(eager, again))
