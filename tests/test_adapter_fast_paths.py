"""The adapters' paper networks take a whole-sequence kernel path by default (the core's one execution plan); it
must equal the core's plain reference loop (spikes equal, states and gradients to float64 rounding) and fall back,
saying why, where it does not apply."""

import pytest
import torch

from brf_plugins.network import RecurrentSNN

snntorch_ext = pytest.importorskip("snntorch_ext")
norse_ext = pytest.importorskip("norse_ext")

ADAPTERS = {"snntorch": snntorch_ext, "norse": norse_ext}


def _pair(framework, neuron, core_kw):
    adapter_kw = ADAPTERS[framework].core_options(core_kw)   # the package's option names in the framework's
    adapter = ADAPTERS[framework].build_paper_network("ecg", neuron=neuron, generator=torch.Generator().manual_seed(4),
                                                      **adapter_kw).double()
    core = RecurrentSNN.from_task("ecg", neuron=neuron, generator=torch.Generator().manual_seed(4),
                                  backend="reference", **core_kw).double()
    return adapter, core


@pytest.mark.parametrize("framework", ["snntorch", "norse"])
@pytest.mark.parametrize("neuron,kw", [("brf", {}), ("brf", {"refractory": False}), ("rf", {}),
                                       ("rf", {"rf_reset": "soft"}), ("bhrf", {}), ("brf", {"input_gain": 2.0})])
def test_fused_paper_network_equals_the_core_reference_loop(framework, neuron, kw):
    adapter, core = _pair(framework, neuron, kw)
    x = torch.rand(200, 3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 60
    assert adapter.execution_plan(x).path in ("fused", "compiled")  # the fast path is really taken
    x_fast, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    fast, ref = adapter(x_fast, record=True), core(x_ref, record=True)
    assert ref.hidden_spikes.sum() > 0
    assert torch.equal(fast.hidden_spikes, ref.hidden_spikes)
    torch.testing.assert_close(fast.readout, ref.readout, rtol=1e-10, atol=1e-9)
    for a, b in zip(fast.state[0], ref.state[0]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-9)
    fast.readout.square().sum().backward()
    ref.readout.square().sum().backward()
    torch.testing.assert_close(x_fast.grad, x_ref.grad, rtol=1e-8, atol=1e-10)
    for name in ("hidden.omega", "hidden.b_offset"):
        torch.testing.assert_close(dict(adapter.named_parameters())[name].grad,
                                   dict(core.named_parameters())[name].grad, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("framework", ["snntorch", "norse"])
def test_fused_paper_network_falls_back_for_other_surrogates(framework):
    import snntorch.surrogate
    x = torch.rand(20, 2, 4)
    other = (dict(spike_grad=snntorch.surrogate.atan()) if framework == "snntorch" else dict(method="super"))
    net = ADAPTERS[framework].build_paper_network("ecg", neuron="brf", **other)
    chosen = net.execution_plan(x)
    assert chosen.path == "reference" and "spike_fn" in chosen.reason
    assert net(x).readout.shape == (20, 2, 6)
