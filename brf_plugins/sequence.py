r"""Whole-sequence updates of feed-forward neuron layers (input currents known for every step).

``brf_sequence(currents, ...)`` runs :func:`brf_plugins.functional.brf_step` over a time-first ``(T, B, h)``
current and returns the stacked spikes and the final state; likewise ``rf_sequence`` and ``bhrf_sequence``.
These are the entry points the framework adapters use for sequence modules; they are the place where fused
kernels plug in, and the reference loop below defines what any fast path must reproduce.

``backend`` picks the implementation; :func:`brf_plugins.kernels.plan` decides what ``"auto"`` (default) runs:
the Triton kernel on CUDA tensors when Triton is installed, the compiled C++ kernels on CPU tensors where they are
built, else the fused path (one autograd node with a hand-written backward), falling back to ``"reference"`` (the
plain step loop of :func:`brf_plugins.neurons.sequence`) for spike functions or dtypes the kernels do not
implement; ``"fused"``, ``"compiled"`` and ``"triton"`` force a path (``ValueError`` if it cannot run). All give
the same spikes and states; gradients agree up to float rounding.

Example:
    >>> import torch
    >>> from brf_plugins.sequence import brf_sequence
    >>> currents = torch.randn(100, 2, 8) * 200
    >>> z, (u, v, q) = brf_sequence(currents, omega=torch.full((8,), 20.0), b_offset=torch.full((8,), 0.5))
    >>> z.shape, u.shape
    (torch.Size([100, 2, 8]), torch.Size([2, 8]))
"""

from __future__ import annotations

from typing import Optional

import torch

from . import functional as F
from ._checks import check_finite_tensor, check_nonempty, check_state_tuple, check_step_inputs, check_step_scalar
from .kernels import BACKENDS
from .neurons import NeuronConfig, sequence

__all__ = ["brf_sequence", "rf_sequence", "bhrf_sequence", "BACKENDS"]


def _run(cfg: NeuronConfig, currents, state: Optional[tuple], omega, b_offset, backend: str):
    """Check a whole sequence's arguments once, then run it through :func:`brf_plugins.neurons.sequence`."""
    names = cfg.state_names[1:]   # a feed-forward resonator does not read its last spikes
    if isinstance(currents, torch.Tensor) and currents.dim() != 3:
        raise ValueError(f"`currents` must have 3 dimensions (T, B, h), got shape {tuple(currents.shape)}.")
    check_step_inputs(currents, {}, dict(omega=omega, b_offset=b_offset), cfg.dt, name="currents")
    check_nonempty("currents", currents, 0, "time")
    check_nonempty("currents", currents, 1, "batch")
    check_step_scalar("theta", cfg.theta)
    if state is None:
        state = tuple(torch.zeros_like(currents[0]) for _ in names)
    else:
        state = check_state_tuple("state", state, names, currents[0])
        for n, s in zip(names, state):
            check_finite_tensor(f"state {n}", s)
    z_all, final = sequence(cfg, (omega, b_offset), currents, (None,) + tuple(state), backend=backend)
    return z_all, tuple(final[1:])


def brf_sequence(currents: torch.Tensor, state: Optional[tuple] = None, *, omega: torch.Tensor,
                 b_offset: torch.Tensor, dt: float = F.DEFAULT_DT, theta: float = F.DEFAULT_THETA,
                 gamma: float = F.DEFAULT_GAMMA, spike_fn=None, divergence_boundary: bool = True,
                 refractory: bool = True, smooth_reset: bool = True, backend: str = "auto"):
    """:func:`brf_step` over ``currents`` ``(T, B, h)`` from ``state = (u, v, q)`` (zeros if None).

    Returns ``(z, (u, v, q))`` with ``z`` of shape ``(T, B, h)``. ``backend``: see the module doc.

    Raises:
        TypeError: ``currents``, a state or a parameter is not a real floating tensor (or dtypes differ).
        ValueError: ``currents`` is not ``(T, B, h)`` with T, B >= 1 or contains NaN/inf; ``state`` has the wrong
            number of tensors or shapes; ``omega``/``b_offset`` are not ``(h,)``; ``dt`` <= 0; ``gamma`` outside
            [0, 1).
    """
    cfg = NeuronConfig("brf", dt=dt, theta=theta, gamma=gamma, spike_fn=spike_fn,
                       divergence_boundary=divergence_boundary, refractory=refractory, smooth_reset=smooth_reset)
    return _run(cfg, currents, state, omega, b_offset, backend)


def rf_sequence(currents: torch.Tensor, state: Optional[tuple] = None, *, omega: torch.Tensor,
                b_offset: torch.Tensor, dt: float = F.DEFAULT_DT, theta: float = F.DEFAULT_THETA, spike_fn=None,
                reset: str = "none", backend: str = "auto"):
    """:func:`rf_step` over ``currents`` ``(T, B, h)`` from ``state = (u, v)``. Returns ``(z, (u, v))``.

    Raises: as :func:`brf_sequence`.
    """
    cfg = NeuronConfig("rf", dt=dt, theta=theta, spike_fn=spike_fn, reset=reset)
    return _run(cfg, currents, state, omega, b_offset, backend)


def bhrf_sequence(currents: torch.Tensor, state: Optional[tuple] = None, *, omega: torch.Tensor,
                  b_offset: torch.Tensor, dt: float = F.DEFAULT_DT, theta: float = F.DEFAULT_THETA,
                  gamma: float = F.DEFAULT_GAMMA, spike_fn=None, variant: str = "code", backend: str = "auto"):
    """:func:`bhrf_step` over ``currents`` ``(T, B, h)`` from ``state = (u, v, q)``. Returns ``(z, (u, v, q))``.

    Raises: as :func:`brf_sequence`.
    """
    cfg = NeuronConfig("bhrf", dt=dt, theta=theta, gamma=gamma, spike_fn=spike_fn, variant=variant)
    return _run(cfg, currents, state, omega, b_offset, backend)
