"""Long sequences: checkpointed BPTT is exact, TBPTT is the hand-written chunked loop, state carries over."""

import pytest
import torch

from brf_plugins import RecurrentSNN
from brf_plugins.longseq import (chunk_bounds, checkpointed_forward, chunked_forward, detach_state,
                                 truncated_bptt)
from brf_plugins.metrics import sequence_loss

NEURONS = ["brf", "rf", "bhrf", "alif"]


def spiking_net(neuron, m=3, h=8, c=4):
    torch.manual_seed(0)
    net = RecurrentSNN(m, h, c, neuron=neuron, omega_init=(5.0, 40.0)).double()
    with torch.no_grad():
        net.hidden.linear.weight.mul_(200 if neuron != "alif" else 1)
    return net


def binary_input(T, B=2, m=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, m, generator=g, dtype=torch.float64) < 0.3).double()


def readout_loss(out):
    # weights every step differently so that every step's gradient matters
    T = out.readout.shape[0]
    w = torch.linspace(0.5, 1.5, T, dtype=out.readout.dtype)[:, None, None]
    return (w * out.readout.tanh()).sum()


def grads(loss, tensors):
    return torch.autograd.grad(loss, tensors, allow_unused=False)


def assert_states_equal(a, b):
    (ha, oa), (hb, ob) = a, b
    assert len(ha) == len(hb)
    for sa, sb in zip(ha, hb):
        torch.testing.assert_close(sa, sb, rtol=0, atol=0)
    torch.testing.assert_close(oa, ob, rtol=0, atol=0)


def test_chunk_bounds_cover_the_sequence():
    assert chunk_bounds(7, 3) == [(0, 3), (3, 6), (6, 7)]
    assert chunk_bounds(6, 3) == [(0, 3), (3, 6)]
    assert chunk_bounds(2, 50) == [(0, 2)]
    for length in range(1, 30):
        for k in range(1, 12):
            steps = [t for s, e in chunk_bounds(length, k) for t in range(s, e)]
            assert steps == list(range(length))


@pytest.mark.parametrize("neuron", NEURONS)
@pytest.mark.parametrize("chunk_size, method", [(1, "recompute"), (7, "recompute"), (60, "recompute"),
                                                (100, "recompute"), (7, "torch"), (25, "torch")])
def test_checkpointed_gradients_equal_full_bptt(neuron, chunk_size, method):
    net = spiking_net(neuron)
    x = binary_input(60).requires_grad_()
    # start from a non-trivial state that itself needs gradients
    with torch.no_grad():
        warm = net(binary_input(20, seed=3)).state
    (h0, o0) = detach_state(warm)
    h0 = tuple(s.clone().requires_grad_() for s in h0)
    o0 = o0.clone().requires_grad_()
    inputs = list(net.parameters()) + [x, *h0, o0]

    full = net(x, (h0, o0), record=True)
    g_full = grads(readout_loss(full), inputs)
    ckpt = checkpointed_forward(net, x, (h0, o0), chunk_size=chunk_size, method=method, record=True)
    g_ckpt = grads(readout_loss(ckpt), inputs)

    assert full.hidden_spikes.sum() > 0, "the test network must spike"
    assert torch.equal(full.readout, ckpt.readout)
    assert torch.equal(full.hidden_spikes, ckpt.hidden_spikes)
    assert full.spike_count.item() == ckpt.spike_count.item()
    assert_states_equal(full.state, ckpt.state)
    assert any(g.abs().max() > 0 for g in g_full[:len(list(net.parameters()))])
    for a, b in zip(g_full, g_ckpt):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", ["recompute", "torch"])
def test_checkpointing_recomputes_random_spike_deletion_identically(method):
    """A spike_hook that draws random numbers is replayed with the same RNG state in the backward pass."""
    net = spiking_net("brf")
    x = binary_input(50)
    params = list(net.parameters())

    def delete(t, z):
        return z * (torch.rand_like(z) > 0.3)

    torch.manual_seed(5)
    full = net(x, spike_hook=delete)
    g_full = grads(readout_loss(full), params)
    torch.manual_seed(5)
    ckpt = checkpointed_forward(net, x, chunk_size=12, spike_hook=delete, method=method)
    g_ckpt = grads(readout_loss(ckpt), params)
    assert torch.equal(full.readout, ckpt.readout)
    for a, b in zip(g_full, g_ckpt):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)


def test_spike_hook_sees_the_step_of_the_whole_sequence():
    net = spiking_net("brf")
    seen = []
    with torch.no_grad():
        chunked_forward(net, binary_input(23), chunk_size=5, spike_hook=lambda t, z: seen.append(t) or z)
    assert seen == list(range(23))


@pytest.mark.parametrize("neuron", NEURONS)
def test_state_carries_over_between_chunks(neuron):
    """Two calls with the state handed over equal one call; chunked_forward does the same for any chunking."""
    net = spiking_net(neuron)
    x = binary_input(45)
    with torch.no_grad():
        full = net(x, record=True)
        first = net(x[:17], record=True)
        second = net(x[17:], first.state, record=True)
        assert torch.equal(torch.cat([first.readout, second.readout]), full.readout)
        assert torch.equal(torch.cat([first.hidden_spikes, second.hidden_spikes]), full.hidden_spikes)
        assert_states_equal(second.state, full.state)
        for k in (1, 4, 17, 45, 90):
            chunked = chunked_forward(net, x, chunk_size=k, record=True)
            assert torch.equal(chunked.readout, full.readout)
            assert torch.equal(chunked.hidden_spikes, full.hidden_spikes)
            assert float(chunked.spike_count) == float(full.spike_count) > 0
            assert_states_equal(chunked.state, full.state)


def hand_written_tbptt(net, x, targets, chunk, optimizer=None):
    """The textbook loop, written out: forward a window, backward its loss, detach, repeat."""
    state, losses = None, []
    for start in range(0, x.shape[0], chunk):
        out = net(x[start:start + chunk], state)
        loss = sequence_loss(out.readout, targets[start:start + chunk], "per_step")
        loss.backward()
        if optimizer is not None:
            optimizer.step()
            optimizer.zero_grad()
        losses.append(loss.item())
        hidden, o = out.state
        state = (tuple(s.detach() for s in hidden), o.detach())
    return losses, state


@pytest.mark.parametrize("neuron", NEURONS)
def test_tbptt_accumulated_gradients_equal_a_hand_written_loop(neuron):
    x = binary_input(53)
    y = torch.randint(0, 4, (53, 2), generator=torch.Generator().manual_seed(2))
    ref = spiking_net(neuron)
    losses_ref, state_ref = hand_written_tbptt(ref, x, y, 10)
    net = spiking_net(neuron)
    res = truncated_bptt(net, x, lambda out, s: sequence_loss(out.readout, y[s], "per_step"), chunk_size=10)
    assert res.chunk_losses == pytest.approx(losses_ref, rel=1e-14)
    assert res.loss == pytest.approx(sum(losses_ref), rel=1e-14)
    assert_states_equal(res.output.state, state_ref)
    for (name, p), q in zip(ref.named_parameters(), net.parameters()):
        assert p.grad is not None and q.grad is not None, name
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-12, atol=1e-12)


def test_tbptt_with_an_optimizer_step_per_chunk_equals_a_hand_written_loop():
    x = binary_input(40)
    y = torch.randint(0, 4, (40, 2), generator=torch.Generator().manual_seed(2))
    ref = spiking_net("brf")
    hand_written_tbptt(ref, x, y, 8, torch.optim.SGD(ref.parameters(), lr=0.05))
    net = spiking_net("brf")
    truncated_bptt(net, x, lambda out, s: sequence_loss(out.readout, y[s], "per_step"), chunk_size=8,
                   optimizer=torch.optim.SGD(net.parameters(), lr=0.05))
    moved = False
    for (name, p), q in zip(ref.named_parameters(), net.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-12, atol=1e-12)
        moved |= not torch.equal(p, spiking_net("brf").state_dict()[name])
    assert moved


def test_tbptt_truncates_and_a_single_window_is_full_bptt():
    x = binary_input(60)
    y = torch.randint(0, 4, (60, 2), generator=torch.Generator().manual_seed(2))

    def loss_fn(out, s):
        return sequence_loss(out.readout, y[s], "per_step")

    full = spiking_net("brf")
    sequence_loss(full(x).readout, y, "per_step").backward()
    one_window = spiking_net("brf")
    truncated_bptt(one_window, x, loss_fn, chunk_size=60)
    truncated = spiking_net("brf")
    truncated_bptt(truncated, x, loss_fn, chunk_size=15)
    w_full = full.hidden.linear.weight.grad
    torch.testing.assert_close(one_window.hidden.linear.weight.grad, w_full, rtol=1e-12, atol=1e-12)
    assert (truncated.hidden.linear.weight.grad - w_full).abs().max() > 1e-6 * w_full.abs().max()


def test_tbptt_label_last_scores_only_the_last_chunk_and_checkpoint_windows_are_exact():
    x = binary_input(50)
    y = torch.tensor([1, 3])

    def last(out, s):
        return sequence_loss(out.readout, y, "last") if s.stop == 50 else None

    plain, ckpt = spiking_net("brf"), spiking_net("brf")
    res = truncated_bptt(plain, x, last, chunk_size=20)
    res_ckpt = truncated_bptt(ckpt, x, last, chunk_size=20, checkpoint_size=6, record=True)
    assert res.chunk_losses[:2] == [None, None] and res.chunk_losses[2] is not None
    assert res_ckpt.chunk_losses == res.chunk_losses
    assert torch.equal(res.output.readout, res_ckpt.output.readout)
    assert res_ckpt.output.hidden_spikes.shape == (50, 2, 8)
    for p, q in zip(plain.parameters(), ckpt.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-12, atol=1e-12)
    assert not res.output.readout.requires_grad


def test_detach_state_keeps_structure():
    from collections import namedtuple
    Pair = namedtuple("Pair", "a b")
    t = torch.ones(2, requires_grad=True) * 2
    state = (Pair(t, [t, None]), {"o": t}, 3)
    d = detach_state(state)
    assert isinstance(d[0], Pair) and isinstance(d[0].b, list) and d[0].b[1] is None and d[2] == 3
    assert not d[0].a.requires_grad and not d[1]["o"].requires_grad and torch.equal(d[0].a, t)


def saved_bytes(fn):
    """Bytes autograd saves for the backward pass while ``fn`` runs (outside any checkpointed region)."""
    total = [0]

    def pack(t):
        total[0] += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return total[0]


def count_graph_nodes(tensor):
    seen, stack = set(), [tensor.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        stack.extend(next_fn for next_fn, _ in node.next_functions)
    return len(seen)


def test_checkpointing_keeps_activations_out_of_the_graph():
    net = spiking_net("brf")
    net.hidden.backend = "reference"  # the per-step graph (the fused kernels store a compact trace instead)
    x = binary_input(200)
    full = saved_bytes(lambda: net(x))
    half = saved_bytes(lambda: net(x[:100]))
    ckpt = saved_bytes(lambda: checkpointed_forward(net, x, chunk_size=20))
    assert full > 1.9 * half > 0           # full BPTT stores activations for every step
    # the recompute nodes save their inputs only: the x chunks, the boundary states and the parameters
    inputs = x.numel() * 8 + 10 * sum(p.numel() * 8 for p in net.parameters()) + 10 * 5 * 16 * 8
    assert ckpt <= inputs < full / 10
    nodes_full = count_graph_nodes(net(x).readout)
    nodes_ckpt = count_graph_nodes(checkpointed_forward(net, x, chunk_size=20).readout)
    assert nodes_ckpt < 100 < 4000 < nodes_full


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(chunk_size=0), ValueError, "chunk_size"),
    (dict(chunk_size=2.5), TypeError, "chunk_size"),
    (dict(chunk_size=True), TypeError, "chunk_size"),
])
def test_bad_chunk_sizes_are_rejected(kwargs, error, match):
    net = spiking_net("brf")
    with pytest.raises(error, match=match):
        checkpointed_forward(net, binary_input(5), **kwargs)
    with pytest.raises(error, match=match):
        truncated_bptt(net, binary_input(5), lambda o, s: o.readout.sum(), **kwargs)


def test_bad_models_and_losses_are_rejected():
    net = spiking_net("brf")
    x = binary_input(5)
    with pytest.raises(TypeError, match="SNNOutput"):
        chunked_forward(lambda x, state: x, x, chunk_size=2)
    with pytest.raises(TypeError, match="loss_fn"):
        truncated_bptt(net, x, "nll", chunk_size=2)
    with pytest.raises(TypeError, match="loss_fn"):
        truncated_bptt(net, x, lambda o, s: o.readout, chunk_size=2)
    with pytest.raises(ValueError, match="loss_fn"):
        truncated_bptt(net, x, lambda o, s: torch.tensor(1.0), chunk_size=2)
    with pytest.raises(ValueError, match="`x`"):
        checkpointed_forward(net, x[:0], chunk_size=2)
    with pytest.raises(ValueError, match="`x`"):
        checkpointed_forward(net, x[0], chunk_size=2)


@pytest.mark.parametrize("package", ["snntorch_ext", "norse_ext"])
@pytest.mark.parametrize("method", ["recompute", "torch"])
def test_adapter_networks_checkpoint_exactly(package, method):
    """Any module with forward(x, state) -> SNNOutput works: the adapters' build_paper_network modules."""
    mod = pytest.importorskip(package)
    if not hasattr(mod, "build_paper_network"):
        pytest.skip(f"{package} has no build_paper_network")
    torch.manual_seed(0)
    net = mod.build_paper_network((3, 8, 4), neuron="brf").double()
    with torch.no_grad():  # a spiking regime: scale the weight matrices as spiking_net does
        for p in net.parameters():
            if p.dim() == 2:
                p.mul_(200)
    x = binary_input(40)
    params = [p for p in net.parameters() if p.requires_grad]
    full = net(x)
    g_full = grads(readout_loss(full), params)
    ckpt = checkpointed_forward(net, x, chunk_size=9, method=method)
    g_ckpt = grads(readout_loss(ckpt), params)
    assert torch.equal(full.readout, ckpt.readout)
    assert full.spike_count.item() == ckpt.spike_count.item() > 0
    for a, b in zip(g_full, g_ckpt):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)
    res = truncated_bptt(net, x, lambda out, s: readout_loss(out), chunk_size=40)
    for p, g in zip(params, g_full):
        torch.testing.assert_close(p.grad, g, rtol=1e-12, atol=1e-12)
