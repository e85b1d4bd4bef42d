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
