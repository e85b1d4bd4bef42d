"""Gradients of every dynamics function against finite differences (float64 gradcheck).

The Heaviside spike has no derivative, so these checks swap in a smooth spike function (a sigmoid); the surrogate
itself is checked against its closed form in test_surrogate.py. Parameters stay away from 0 (|.| has a kink there)
and omega below the BRF clamp.
"""

import pytest
import torch
from torch.autograd import gradcheck

from brf_plugins import functional as F


def smooth_spike(x):
    return torch.sigmoid(4.0 * x)


def _rand(*shape, low=-1.0, high=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g, dtype=torch.float64) * (high - low) + low).requires_grad_()


B, H = 2, 3


def _multi_step(step, n_state, steps=5):
    """Composes several steps so gradients also flow through the state recursion."""
    def run(current, *args):
        state, params = args[:n_state], args[n_state:]
        outs = []
        for t in range(steps):
            res = step(current * (1 + 0.1 * t), *state, *params)
            state = res[1:]
            outs.append(res[0])
        return (torch.stack(outs),) + tuple(state)
    return run


def test_brf_step_gradcheck():
    inputs = (_rand(B, H, low=50, high=150), _rand(B, H, seed=1), _rand(B, H, seed=2), _rand(B, H, low=0.0, high=1.0, seed=3),
              _rand(H, low=5, high=80, seed=4), _rand(H, low=0.1, high=2, seed=5))
    step = lambda c, u, v, q, w, b: F.brf_step(c, u, v, q, w, b, spike_fn=smooth_spike)
    assert gradcheck(_multi_step(step, 3), inputs)


@pytest.mark.parametrize("ablation", [dict(divergence_boundary=False), dict(refractory=False),
                                      dict(smooth_reset=False)])
def test_brf_ablation_gradcheck(ablation):
    inputs = (_rand(B, H, low=50, high=150), _rand(B, H, seed=1), _rand(B, H, seed=2), _rand(B, H, low=0.0, high=1.0, seed=3),
              _rand(H, low=5, high=80, seed=4), _rand(H, low=0.1, high=2, seed=5))
    step = lambda c, u, v, q, w, b: F.brf_step(c, u, v, q, w, b, spike_fn=smooth_spike, **ablation)
    assert gradcheck(_multi_step(step, 3), inputs)


@pytest.mark.parametrize("reset", ["none", "soft", "hard"])
def test_rf_step_gradcheck(reset):
    inputs = (_rand(B, H, low=50, high=150), _rand(B, H, seed=1), _rand(B, H, seed=2),
              _rand(H, low=5, high=80, seed=4), _rand(H, low=0.1, high=2, seed=5))
    step = lambda c, u, v, w, b: F.rf_step(c, u, v, w, b, spike_fn=smooth_spike, reset=reset)
    assert gradcheck(_multi_step(step, 2), inputs)


def test_izhikevich_step_gradcheck():
    inputs = (_rand(B, H, low=50, high=150), _rand(B, H, seed=1), _rand(B, H, seed=2),
              _rand(H, low=5, high=80, seed=4), _rand(H, low=0.1, high=2, seed=5))
    step = lambda c, u, v, w, b: F.izhikevich_step(c, u, v, w, b, spike_fn=smooth_spike)
    assert gradcheck(_multi_step(step, 2), inputs)


@pytest.mark.parametrize("variant", ["code", "paper", "explicit"])
def test_bhrf_step_gradcheck(variant):
    inputs = (_rand(B, H, low=50, high=150), _rand(B, H, seed=1), _rand(B, H, seed=2), _rand(B, H, low=0.0, high=1.0, seed=3),
              _rand(H, low=5, high=40, seed=4), _rand(H, low=0.1, high=2, seed=5))
    step = lambda c, u, v, q, w, b: F.bhrf_step(c, u, v, q, w, b, spike_fn=smooth_spike, variant=variant)
    assert gradcheck(_multi_step(step, 3), inputs)


def test_alif_step_gradcheck():
    inputs = (_rand(B, H, low=0, high=0.2), _rand(B, H, low=0, high=1, seed=1), _rand(B, H, seed=2), _rand(B, H, low=0, high=1, seed=3),
              _rand(H, low=5, high=30, seed=4), _rand(H, low=50, high=200, seed=5))
    step = lambda c, z, u, a, tm, ta: F.alif_step(c, z, u, a, tm, ta, spike_fn=smooth_spike)

    def run(current, z, u, a, tm, ta):
        outs = []
        for t in range(5):
            z, u, a = step(current * (1 + 0.1 * t), z, u, a, tm, ta)
            outs.append(z)
        return torch.stack(outs), u, a
    assert gradcheck(run, inputs)


def test_li_step_gradcheck():
    inputs = (_rand(B, H), _rand(B, H, seed=1), _rand(H, low=2, high=30, seed=2))
    assert gradcheck(F.li_step, inputs)


def test_divergence_boundary_gradcheck():
    omega = _rand(7, low=1, high=99, seed=3)
    assert gradcheck(lambda w: F.divergence_boundary(w, 0.01), (omega,))


def test_surrogate_gradient_reaches_parameters_through_brf():
    """With the real double-Gaussian surrogate, omega and b' get nonzero gradients from a spike loss."""
    omega = torch.full((H,), 20.0, dtype=torch.float64, requires_grad=True)
    b_offset = torch.full((H,), 0.5, dtype=torch.float64, requires_grad=True)
    u = v = q = torch.zeros(B, H, dtype=torch.float64)
    total = 0
    for t in range(200):
        z, u, v, q = F.brf_step(torch.full((B, H), 120.0, dtype=torch.float64), u, v, q, omega, b_offset)
        total = total + z.sum()
    assert total > 0
    total.backward()
    assert omega.grad.abs().sum() > 0 and b_offset.grad.abs().sum() > 0
