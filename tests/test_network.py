"""The paper network: structure, equivalence with the step functions, validation."""

import pytest
import torch

from brf_plugins import functional as F
from brf_plugins import RecurrentSNN, RecurrentLayer
from brf_plugins.tasks import TASKS


@pytest.mark.parametrize("task, params", [("smnist", 68874), ("ecg", 1734), ("shd", 108820)])
@pytest.mark.parametrize("neuron", ["brf", "rf", "alif"])
def test_parameter_counts_match_the_paper(task, params, neuron):
    net = RecurrentSNN.from_task(task, neuron=neuron)
    assert sum(p.numel() for p in net.parameters()) == params


def test_initialisation_follows_the_recipe():
    g = torch.Generator().manual_seed(0)
    net = RecurrentSNN.from_task("smnist", generator=g)
    bound = (6 / 513) ** 0.5
    w = net.hidden.linear.weight
    assert w.shape == (256, 257) and w.abs().max() <= bound and w.abs().max() > 0.95 * bound
    assert 15 <= net.hidden.omega.min() and net.hidden.omega.max() <= 50
    assert 0.1 <= net.hidden.b_offset.min() and net.hidden.b_offset.max() <= 1
    assert abs(net.out.tau_mem.mean() - 20) < 2
    assert net.hidden.linear.bias is None and net.out.linear.bias is None
    alif = RecurrentSNN.from_task("ecg", neuron="alif")
    assert abs(alif.hidden.tau_adp.mean() - 7) < 0.3


@pytest.mark.parametrize("neuron", ["brf", "rf", "bhrf", "alif"])
def test_forward_equals_manual_loop_over_core_steps(neuron):
    torch.manual_seed(0)
    net = RecurrentSNN(3, 8, 4, neuron=neuron, omega_init=(5.0, 40.0)).double()
    with torch.no_grad():
        net.hidden.linear.weight.mul_(200 if neuron != "alif" else 1)
    x = (torch.rand(60, 2, 3, dtype=torch.float64) < 0.3).double()
    out = net(x, record=True)

    hl, ro = net.hidden, net.out
    n = len(hl.state_names)
    state = [torch.zeros(2, 8, dtype=torch.float64) for _ in range(n)]
    o = torch.zeros(2, 4, dtype=torch.float64)
    readouts, spikes = [], []
    for x_t in x:
        current = torch.cat((x_t, state[0]), 1) @ hl.linear.weight.T
        if neuron == "brf":
            state = list(F.brf_step(current, *state[1:], hl.omega, hl.b_offset))
        elif neuron == "rf":
            state = list(F.rf_step(current, *state[1:], hl.omega, hl.b_offset))
        elif neuron == "bhrf":
            state = list(F.bhrf_step(current, *state[1:], hl.omega, hl.b_offset))
        else:
            state = list(F.alif_step(current, *state, hl.tau_mem, hl.tau_adp))
        o = F.li_step(state[0] @ ro.linear.weight.T, o, ro.tau_mem)
        readouts.append(o)
        spikes.append(state[0])
    spikes = torch.stack(spikes)
    assert spikes.sum() > 0
    assert torch.equal(out.hidden_spikes, spikes)
    torch.testing.assert_close(out.readout, torch.stack(readouts), rtol=0, atol=1e-10)
    assert float(out.spike_count.detach()) == float(spikes.detach().sum())


def test_state_continues_a_sequence():
    torch.manual_seed(1)
    net = RecurrentSNN(2, 6, 3, omega_init=(5.0, 30.0)).double()
    with torch.no_grad():
        net.hidden.linear.weight.mul_(300)
    x = torch.rand(80, 2, 2, dtype=torch.float64)
    whole = net(x)
    first = net(x[:30])
    second = net(x[30:], state=first.state)
    torch.testing.assert_close(torch.cat([first.readout, second.readout]), whole.readout, rtol=0, atol=0)


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    net = RecurrentSNN.from_task("ecg")
    with torch.no_grad():
        net.hidden.linear.weight.mul_(100)  # trained models have |W| ~ 100 (the input is scaled by dt)
    out = net(torch.rand(200, 4, 4))
    assert out.spike_count > 0
    out.readout.sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_validation_errors_name_the_argument():
    with pytest.raises(ValueError, match="omega_init"):
        RecurrentSNN(1, 4, 2, omega_init=(10.0, 100.0))
    with pytest.raises(ValueError, match="omega_init"):
        RecurrentLayer(1, 4, omega_init=-150.0)
    with pytest.raises(ValueError, match="hidden_size"):
        RecurrentSNN(1, -3, 2)
    with pytest.raises(TypeError, match="input_size"):
        RecurrentSNN(1.5, 3, 2)
    with pytest.raises(ValueError, match="dt"):
        RecurrentSNN(1, 3, 2, dt=0.0)
    with pytest.raises(ValueError, match="neuron"):
        RecurrentSNN(1, 3, 2, neuron="lif")
    net = RecurrentSNN(2, 3, 2)
    with pytest.raises(ValueError, match="input_size = 2"):
        net(torch.rand(5, 4, 3))
    with pytest.raises(ValueError, match="3 dimensions"):
        net(torch.rand(4, 2))
    with pytest.raises(TypeError, match="floating-point"):
        net(torch.ones(5, 4, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="T >= 1"):
        net(torch.rand(0, 4, 2))
    state = net(torch.rand(5, 4, 2)).state
    with pytest.raises(ValueError, match="batch size"):
        net(torch.rand(5, 3, 2), state=state)
    with pytest.raises(ValueError, match="batch size"):
        net.hidden(torch.rand(3, 2), state[0])


def test_dt_scales_the_frequency_limit():
    RecurrentSNN(1, 4, 2, omega_init=(100.0, 150.0), dt=0.005)  # 1/dt = 200: valid
    with pytest.raises(ValueError, match="dt"):
        RecurrentSNN(1, 4, 2, omega_init=(100.0, 250.0), dt=0.005)


def test_task_table_is_consistent():
    for cfg in TASKS.values():
        assert cfg.omega_init[1] < 1 / cfg.dt
        assert cfg.loss in ("last", "sum", "per_step") and cfg.accuracy in ("last", "mean", "per_step")
