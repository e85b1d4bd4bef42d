r"""One description per neuron kind, and the one neuron update every module goes through.

A :class:`NeuronConfig` holds everything a neuron update needs apart from its tensors, in the package's one
vocabulary (``theta``, ``spike_fn``, ``reset``, ``variant``, ``beta``, ``input_gain``, the BRF ablation switches):
the core layers, the snnTorch neurons and the Norse cells each translate their users' arguments into one, once,
at construction. :func:`neuron_step` then runs one update for it, :func:`sequence` a whole feed-forward
sequence and :func:`recurrent_sequence` a whole recurrent layer; all ask :func:`brf_plugins.kernels.plan` which
implementation runs (plain core, fused, compiled or Triton), so no module decides that itself.

========  =======================  ==========================  ====================================
kind      per-neuron parameters     state (``z`` first)         core step
========  =======================  ==========================  ====================================
``brf``   ``omega``, ``b_offset``   ``BRFState(z, u, v, q)``     :func:`~brf_plugins.functional.brf_step`
``rf``    ``omega``, ``b_offset``   ``RFState(z, u, v)``         :func:`~brf_plugins.functional.rf_step`
``bhrf``  ``omega``, ``b_offset``   ``BHRFState(z, u, v, q)``    :func:`~brf_plugins.functional.bhrf_step`
``alif``  ``tau_mem``, ``tau_adp``  ``ALIFState(z, u, a)``       :func:`~brf_plugins.functional.alif_step`
========  =======================  ==========================  ====================================

``z`` is the last step's spikes: the recurrence and ALIF's adaptation read it. A feed-forward resonator does not
need it, so its sequence state is the rest (``state[1:]``).

The input gain :math:`g` multiplies the current before the spec's update (:math:`I_t = g\,c_t`); it is part of
the configuration, so every path (reference, fused, compiled) applies it the same way. Adding a neuron kind means
one step function in :mod:`brf_plugins.functional`, one :class:`NeuronKind` entry in
:data:`brf_plugins.kinds.KINDS` and the adapters' class lists (CONTRIBUTING.md).

Example:
    >>> import torch
    >>> from brf_plugins.neurons import NeuronConfig, neuron_step, zero_state
    >>> cfg = NeuronConfig("brf", input_gain=100.0)
    >>> params = (torch.full((3,), 10.0), torch.full((3,), 0.5))
    >>> state = zero_state(cfg, torch.zeros(2, 3))
    >>> for t in range(50):
    ...     state = neuron_step(cfg, params, torch.full((2, 3), 2.0), state)
    >>> type(state).__name__, bool(state.q.gt(0).any())
    ('BRFState', True)
"""

from __future__ import annotations

from typing import Tuple

import torch

from . import functional as F
from . import kernels
from .kinds import (KINDS, STATE_TYPES, BHRFFeedForwardState, BRFFeedForwardState,  # noqa: F401 (re-exported)
                    NeuronConfig, NeuronKind, Number, RFFeedForwardState)

__all__ = ["NeuronKind", "KINDS", "NeuronConfig", "neuron_step", "sequence", "recurrent_sequence", "zero_state",
           "STATE_TYPES", "BRFFeedForwardState", "RFFeedForwardState", "BHRFFeedForwardState"]


def zero_state(cfg: NeuronConfig, like: torch.Tensor, shape=None) -> tuple:
    """The zero state ``(z, ...)`` of ``cfg``'s kind, shaped like ``like`` (or ``shape``), in its dtype/device."""
    shape = like.shape if shape is None else shape
    return cfg.state_type(*(like.new_zeros(shape) for _ in cfg.state_names))


def scaled(cfg: NeuronConfig, current: torch.Tensor) -> torch.Tensor:
    """The current the spec's update sees: ``input_gain * current``."""
    return current if cfg.input_gain == 1.0 else current * cfg.input_gain


def reference_step(cfg: NeuronConfig, params: tuple, current: torch.Tensor, state: tuple) -> tuple:
    """The plain core update (no dispatch, no checks): ``current`` already scaled by the gain."""
    if cfg.kind == "alif":
        return F.alif_step(current, *state, *params, validate=False, **cfg.step_kwargs())
    return cfg.spec.step(current, *state[1:], *params, validate=False, **cfg.step_kwargs())


def neuron_step(cfg: NeuronConfig, params: tuple, current: torch.Tensor, state: tuple, *,
                backend: str = "auto") -> tuple:
    """One update of ``cfg``'s neurons: ``state`` ``(z, ...)`` -> the new state of the same type.

    ``params`` are the per-neuron tensors (:attr:`NeuronConfig.param_names`); the current is scaled by the gain
    here. The implementation is :func:`brf_plugins.kernels.plan`'s choice (``backend`` as there). No argument
    checks: callers check once per call of their own public method.
    """
    chosen = kernels.plan(cfg, (current,) + tuple(state[1:]) + tuple(params), scope="step", backend=backend)
    if chosen.path == "reference":
        return cfg.state_type(*reference_step(cfg, params, scaled(cfg, current), state))
    return cfg.state_type(*kernels.run_step(chosen, current, *state[1:], *params))  # the spec has the gain


def sequence(cfg: NeuronConfig, params: tuple, currents: torch.Tensor, state: tuple, *,
             backend: str = "auto") -> Tuple[torch.Tensor, tuple]:
    """A feed-forward layer over ``currents`` ``(T, ..., h)`` from ``state`` ``(z, ...)``.

    Returns ``(z_all (T, ..., h), final state)``: the values of :func:`neuron_step` applied T times, computed by
    the path :func:`brf_plugins.kernels.plan` picks for the whole sequence. The whole-sequence kernels take
    ``(T, B, h)``: with ``(h,)`` parameters, other shapes run with the middle dimensions as one batch (restored
    in the results), which computes the same values.
    """
    if currents.dim() != 3 and all(not isinstance(p, torch.Tensor) or p.dim() <= 1 for p in params):
        shape, h = currents.shape, currents.shape[-1]
        start = tuple(None if s is None else s.reshape(-1, h) for s in state)
        z_all, final = sequence(cfg, params, currents.reshape(shape[0], -1, h), start, backend=backend)
        return z_all.reshape(shape), type(final)(*(s.reshape(shape[1:]) for s in final))
    chosen = kernels.plan(cfg, (currents,) + tuple(state[1:]) + tuple(params), scope="sequence", backend=backend)
    if chosen.path != "reference":
        z_all, rest = kernels.run_sequence(chosen, currents, tuple(state[1:]), *params)
        return z_all, cfg.state_type(z_all[-1], *rest)
    currents = scaled(cfg, currents)
    spikes = []
    for current in currents:
        state = cfg.state_type(*reference_step(cfg, params, current, state))
        spikes.append(state[0])
    return torch.stack(spikes), state


def recurrent_sequence(cfg: NeuronConfig, params: tuple, x: torch.Tensor, weight: torch.Tensor, state: tuple, *,
                       backend: str = "auto") -> Tuple[torch.Tensor, tuple]:
    r"""A recurrent layer over ``x`` ``(T, ..., m)`` from ``state`` ``(z, ...)`` (``z`` of shape ``(..., h)``):
    :math:`I_t = W [x_t; z_{t-1}]` with ``weight`` ``(h, m + h)`` (input and recurrent weights side by side, one
    matmul, as the paper's code), then :func:`neuron_step`.

    Returns ``(z_all (T, ..., h), final state)``, computed by the path :func:`brf_plugins.kernels.plan` picks for
    the whole layer (scope ``"recurrent"``: one compiled or Triton call forward and one backward), else stepped.
    """
    if x.dim() != 3:   # the whole-layer kernels take (T, B, m): the middle dimensions as one batch
        h = weight.shape[0]
        start = tuple(s.reshape(-1, h) for s in state)
        z_all, final = recurrent_sequence(cfg, params, x.reshape(x.shape[0], -1, x.shape[-1]), weight, start,
                                          backend=backend)
        shape = tuple(x.shape[1:-1]) + (h,)
        return z_all.reshape((x.shape[0],) + shape), type(final)(*(s.reshape(shape) for s in final))
    chosen = kernels.plan(cfg, (x, weight) + tuple(params), scope="recurrent", backend=backend)
    if chosen.path != "reference":
        z_all, final = kernels.recurrent_sequence(chosen, x, weight, tuple(state), *params, True)
        return z_all, cfg.state_type(*final)
    spikes = []
    for x_t in x:
        current = torch.nn.functional.linear(torch.cat((x_t, state[0]), -1), weight)
        state = neuron_step(cfg, params, current, state, backend=backend)
        spikes.append(state[0])
    return torch.stack(spikes), state

