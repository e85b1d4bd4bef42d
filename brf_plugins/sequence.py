r"""Whole-sequence updates of feed-forward neuron layers (input currents known for every step).

``brf_sequence(currents, ...)`` runs :func:`brf_plugins.functional.brf_step` over a time-first ``(T, B, h)``
current and returns the stacked spikes and the final state; likewise ``rf_sequence`` and ``bhrf_sequence``.
These are the entry points the framework adapters use for sequence modules; they are the place where fused
kernels plug in, and the reference loop below defines what any fast path must reproduce.

``backend`` picks the implementation (:mod:`brf_plugins.kernels`): ``"auto"`` (default) runs the Triton kernel
on CUDA tensors when Triton is installed, else the fused CPU/GPU path (a hand-written forward and reverse-time
backward loop, one autograd node), falling back to ``"reference"`` (the plain step loop) for spike functions or
dtypes the kernels do not implement; ``"fused"`` and ``"triton"`` force a path (``ValueError`` if it cannot run).
All give the same spikes and states; gradients agree up to float rounding.

Example:
    >>> import torch
    >>> from brf_plugins.sequence import brf_sequence
    >>> currents = torch.randn(100, 2, 8) * 200
    >>> z, (u, v, q) = brf_sequence(currents, omega=torch.full((8,), 20.0), b_offset=torch.full((8,), 0.5))
    >>> z.shape, u.shape
    (torch.Size([100, 2, 8]), torch.Size([2, 8]))
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch

from . import functional as F
from ._checks import (check_choice, check_finite_tensor, check_nonempty, check_state_tuple, check_step_inputs,
                      check_step_scalar)

__all__ = ["brf_sequence", "rf_sequence", "bhrf_sequence", "BACKENDS"]

BACKENDS = ("auto", "reference", "fused", "triton")


def _fast_path(kind: str, backend: str, currents, state, omega, b_offset, dt, theta, gamma, spike_fn, **options):
    """``(z, state)`` from a fused kernel, or ``None`` when the reference loop is to run."""
    from . import kernels
    spec = kernels.cell_spec(kind, dt, theta, gamma, spike_fn, **options)
    chosen = kernels.select_backend(backend, spec, (currents,) + tuple(state) + (omega, b_offset))
    if chosen == "reference" or currents.shape[0] == 0:
        return None
    return kernels.run_sequence(spec, chosen, currents, state, omega, b_offset)


def _initial_state(currents: torch.Tensor, state: Optional[tuple], names: Tuple[str, ...], params: dict,
                   dt=None) -> tuple:
    """Check a whole sequence's arguments once (the loop then runs its steps with ``validate=False``)."""
    if isinstance(currents, torch.Tensor) and currents.dim() != 3:
        raise ValueError(f"`currents` must have 3 dimensions (T, B, h), got shape {tuple(currents.shape)}.")
    check_step_inputs(currents, {}, params, dt, name="currents")  # types, parameter shapes/devices, dt, NaN/inf (once)
    check_nonempty("currents", currents, 0, "time")
    check_nonempty("currents", currents, 1, "batch")
    reference = currents[0]
    if state is None:
        return tuple(torch.zeros_like(reference) for _ in names)
    state = check_state_tuple("state", state, names, reference)
    for n, s in zip(names, state):
        check_finite_tensor(f"state {n}", s)
    return state


def _stack(spikes, currents):
    return torch.stack(spikes)


def brf_sequence(currents: torch.Tensor, state: Optional[tuple] = None, *, omega: torch.Tensor,
                 b_offset: torch.Tensor, dt: float = F.DEFAULT_DT, theta: float = F.DEFAULT_THETA,
                 gamma: float = F.DEFAULT_GAMMA, spike_fn=None, divergence_boundary: bool = True,
                 refractory: bool = True, smooth_reset: bool = True, backend: str = "auto"):
    """:func:`brf_step` over ``currents`` ``(T, B, h)`` from ``state = (u, v, q)`` (zeros if None).

    Returns ``(z, (u, v, q))`` with ``z`` of shape ``(T, B, h)``. ``backend``: see the module doc.

    Raises:
        TypeError: ``currents``, a state or a parameter is not a real floating tensor (or dtypes differ).
        ValueError: ``currents`` is not ``(T, B, h)`` with T, B >= 1 or contains NaN/inf; ``state`` has the wrong
            number of tensors or shapes; ``omega``/``b_offset`` are not ``(h,)``; ``dt`` <= 0.
    """
    u, v, q = _initial_state(currents, state, ("u", "v", "q"), dict(omega=omega, b_offset=b_offset), dt)
    check_step_scalar("theta", theta)
    check_step_scalar("gamma", gamma, unit_interval=True)
    fast = _fast_path("brf", backend, currents, (u, v, q), omega, b_offset, dt, theta, gamma, spike_fn,
                      divergence_boundary=divergence_boundary, refractory=refractory, smooth_reset=smooth_reset)
    if fast is not None:
        return fast
    spikes = []
    for current in currents:
        z, u, v, q = F.brf_step(current, u, v, q, omega, b_offset, dt, theta, gamma, spike_fn,
                                divergence_boundary=divergence_boundary, refractory=refractory,
                                smooth_reset=smooth_reset, validate=False)
        spikes.append(z)
    return _stack(spikes, currents), (u, v, q)


def rf_sequence(currents: torch.Tensor, state: Optional[tuple] = None, *, omega: torch.Tensor,
                b_offset: torch.Tensor, dt: float = F.DEFAULT_DT, theta: float = F.DEFAULT_THETA, spike_fn=None,
                reset: str = "none", backend: str = "auto"):
    """:func:`rf_step` over ``currents`` ``(T, B, h)`` from ``state = (u, v)``. Returns ``(z, (u, v))``.

    Raises: as :func:`brf_sequence`.
    """
    u, v = _initial_state(currents, state, ("u", "v"), dict(omega=omega, b_offset=b_offset), dt)
    check_step_scalar("theta", theta)
    check_choice("reset", reset, F.RF_RESETS)
    fast = _fast_path("rf", backend, currents, (u, v), omega, b_offset, dt, theta, F.DEFAULT_GAMMA, spike_fn,
                      option=reset)
    if fast is not None:
        return fast
    spikes = []
    for current in currents:
        z, u, v = F.rf_step(current, u, v, omega, b_offset, dt, theta, spike_fn, reset=reset, validate=False)
        spikes.append(z)
    return _stack(spikes, currents), (u, v)


def bhrf_sequence(currents: torch.Tensor, state: Optional[tuple] = None, *, omega: torch.Tensor,
                  b_offset: torch.Tensor, dt: float = F.DEFAULT_DT, theta: float = F.DEFAULT_THETA,
                  gamma: float = F.DEFAULT_GAMMA, spike_fn=None, variant: str = "code", backend: str = "auto"):
    """:func:`bhrf_step` over ``currents`` ``(T, B, h)`` from ``state = (u, v, q)``. Returns ``(z, (u, v, q))``.

    Raises: as :func:`brf_sequence`.
    """
    u, v, q = _initial_state(currents, state, ("u", "v", "q"), dict(omega=omega, b_offset=b_offset), dt)
    check_step_scalar("theta", theta)
    check_step_scalar("gamma", gamma, unit_interval=True)
    check_choice("variant", variant, F.BHRF_VARIANTS)
    fast = _fast_path("bhrf", backend, currents, (u, v, q), omega, b_offset, dt, theta, gamma, spike_fn,
                      option=variant)
    if fast is not None:
        return fast
    spikes = []
    for current in currents:
        z, u, v, q = F.bhrf_step(current, u, v, q, omega, b_offset, dt, theta, gamma, spike_fn, variant=variant,
                                 validate=False)
        spikes.append(z)
    return _stack(spikes, currents), (u, v, q)
