"""The LIF baselines are each framework's own recurrent LIF network, as its tutorials write it."""

import pytest
import torch

from brf_plugins.train import TrainConfig
from brf_plugins.train.baselines import (LIF_LEARNING_RATES, NorseLIFRecurrentNetwork, SnnTorchRLeakyNetwork,
                                         lif_learning_rate)
from brf_plugins.train.models import build_model, count_parameters
from brf_plugins.train.tasks import resolve_task
from brf_plugins.train.trainer import recipe

snn = pytest.importorskip("snntorch")
norse = pytest.importorskip("norse.torch")

SYNTHETIC = resolve_task("synthetic")


def _net(framework, seed=0):
    return build_model(framework, SYNTHETIC, "lif", generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("framework, cls", [("snntorch", SnnTorchRLeakyNetwork),
                                            ("norse", NorseLIFRecurrentNetwork)])
def test_build_model_gives_the_frameworks_own_lif_network_reproducibly(framework, cls):
    net = _net(framework)
    assert isinstance(net, cls)
    again, other = _net(framework), _net(framework, seed=1)
    for a, b, c in zip(net.state_dict().values(), again.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)
    assert any(not torch.equal(a, c) for a, c in zip(net.state_dict().values(), other.state_dict().values()))
    # the paper network's size: hidden 32 on the synthetic task (weights within a few biases of the BRF's)
    brf = build_model("core", SYNTHETIC, "brf")
    assert abs(count_parameters(net) - count_parameters(brf)) < 0.1 * count_parameters(brf)
    with pytest.raises(ValueError, match="no model options"):
        build_model(framework, SYNTHETIC, "lif", omega_init=(1, 2))


def test_snntorch_baseline_is_rleaky_stepped_as_in_the_tutorials():
    torch.manual_seed(0)
    net = _net("snntorch")
    x = (torch.rand(30, 4, 16) < 0.3).float()
    out = net(x)
    spk, mem = net.lif.init_rleaky()
    mem_out = net.readout.init_leaky()
    readout, count = [], 0.0
    for x_t in x:
        spk, mem = net.lif(net.fc_in(x_t), spk, mem)
        _, mem_out = net.readout(net.fc_out(spk), mem_out)
        readout.append(mem_out)
        count += float(spk.detach().sum())
    assert torch.equal(out.readout, torch.stack(readout))
    assert float(out.spike_count) == count > 0
    assert isinstance(net.lif, snn.RLeaky) and net.lif.beta.requires_grad


def test_norse_baseline_is_lifrecurrent_with_an_li_readout():
    net = _net("norse")
    x = (torch.rand(30, 4, 16) < 0.3).float()
    out = net(x)
    cell = norse.LIFRecurrentCell(16, 32)
    cell.load_state_dict(net.lif.state_dict())
    state = readout_state = None
    readout, count = [], 0.0
    for x_t in x:
        z, state = cell(x_t, state)
        v, readout_state = norse.LICell()(net.fc_out.lifted_module(z), readout_state)
        readout.append(v)
        count += float(z.sum())
    torch.testing.assert_close(out.readout, torch.stack(readout), rtol=0, atol=1e-6)
    assert float(out.spike_count) == count


@pytest.mark.parametrize("framework", ["snntorch", "norse"])
def test_baseline_trains_with_the_brf_recipe_at_its_swept_rate(framework):
    rules = recipe(TrainConfig(task="synthetic", framework=framework, neuron="lif"))
    brf = recipe(TrainConfig(task="synthetic", framework=framework, neuron="brf"))
    assert rules["lr"] == lif_learning_rate("synthetic", framework, SYNTHETIC.alif.lr)
    assert ("synthetic", framework) in LIF_LEARNING_RATES
    assert (rules["batch_size"], rules["tbptt"], rules["start"]) == (brf["batch_size"], 0, 0)
    # the core keeps its ALIF-without-adaptation baseline and the ALIF recipe
    core = recipe(TrainConfig(task="synthetic", framework="core", neuron="lif"))
    assert core["lr"] == SYNTHETIC.alif.lr


@pytest.mark.parametrize("framework", ["snntorch", "norse"])
def test_baseline_gradients_reach_every_parameter(framework):
    net = _net(framework)
    x = (torch.rand(40, 8, 16) < 0.4).float() * 3
    out = net(x)
    out.readout.sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
