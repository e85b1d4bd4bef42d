r"""Fused BRF/RF/BHRF kernels: the fast paths behind :mod:`brf_plugins.sequence` and :mod:`brf_plugins.network`.

The plain core (:mod:`brf_plugins.functional`) runs a dozen elementwise kernels per neuron step and records a
dozen autograd nodes; here the same update is one autograd node with a hand-derived backward pass:

* :func:`brf_step`, :func:`rf_step`, :func:`bhrf_step`: drop-in replacements of the core's one-step functions
  (same signature, same results), one autograd node each.
* :func:`run_sequence` (used by ``brf_plugins.sequence.*_sequence(backend=...)``): a feed-forward layer over a
  whole ``(T, B, h)`` current, backend ``"fused"`` (torch operations on any device; forward loop without a graph,
  backward loop by hand) or ``"triton"`` (one kernel launch forward, one backward, time loop inside the kernel;
  CUDA, or CPU under ``TRITON_INTERPRET=1``).
* :func:`recurrent_sequence`, :func:`li_sequence`: the paper's recurrent layer and LI readout over a sequence,
  used automatically by :class:`brf_plugins.network.RecurrentSNN`.
* :func:`make_train_step` (:mod:`.graph`): one optimisation step, eager, ``torch.compile``-d or replayed from a
  CUDA graph.

Exactness: forward values are bitwise those of the core (same operations in the same order); gradients equal
autograd through the core up to the order of floating-point sums (``tests/test_kernels.py`` checks both, and the
hand-derived backward passes against finite differences with :class:`SmoothSpike`). A spike function the kernels do
not implement (anything but the package's double/multi Gaussian), a dtype other than float32/float64 or mixed
dtypes/devices make ``backend="auto"`` fall back to the core loop.

Example:
    >>> import torch
    >>> from brf_plugins import sequence
    >>> currents = torch.randn(100, 4, 8) * 300
    >>> omega, b_offset = torch.full((8,), 20.0), torch.full((8,), 0.5)
    >>> fast = sequence.brf_sequence(currents, omega=omega, b_offset=b_offset, backend="fused")
    >>> plain = sequence.brf_sequence(currents, omega=omega, b_offset=b_offset, backend="reference")
    >>> torch.equal(fast[0], plain[0]), torch.equal(fast[1][0], plain[1][0])
    (True, True)
"""

from __future__ import annotations

import importlib.util
import os
from typing import Optional, Tuple

import torch

from .. import functional as F
from .._checks import check_choice
from ._autograd import CellSequence, CellStep, LISequence, RecurrentCellSequence
from ._spec import FUSED_DTYPES, CellSpec, SmoothSpike, cell_spec
from ._torch_cells import neuron_params
from .graph import TRAIN_MODES, make_train_step

__all__ = ["BACKENDS", "STEP_BACKENDS", "CellStep", "CellSpec", "SmoothSpike", "cell_spec", "neuron_params", "brf_step",
           "rf_step", "bhrf_step", "fused_step", "run_sequence", "recurrent_sequence", "li_sequence",
           "triton_status", "select_backend", "make_train_step", "TRAIN_MODES"]

BACKENDS = ("auto", "reference", "fused", "triton")
"""Backends of the sequence functions: ``auto`` picks ``triton`` for CUDA tensors when Triton is installed, else
``fused`` where it applies, else ``reference`` (the core's step loop)."""
STEP_BACKENDS = ("auto", "reference", "fused")
"""Backends of one-step updates and of the recurrent network (``auto`` = ``fused`` where it applies)."""


def triton_status(device: Optional[torch.device] = None) -> Tuple[bool, str]:
    """``(usable, reason)``: whether the Triton sequence kernels can run on ``device`` (CUDA, or CPU when the
    process runs Triton's interpreter, ``TRITON_INTERPRET=1`` set before the first use)."""
    if importlib.util.find_spec("triton") is None:
        return False, "Triton is not installed (pip install triton)"
    device = torch.device("cpu") if device is None else torch.device(device)
    if device.type == "cuda":
        from . import _triton_ops
        if _triton_ops.INTERPRETED:
            return False, "the Triton kernels were built for the interpreter (TRITON_INTERPRET=1), not for CUDA"
        return True, "cuda"
    interpret = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
    if not interpret:
        return False, f"Triton needs a CUDA device (got {device}); set TRITON_INTERPRET=1 to run it on CPU"
    from . import _triton_ops
    if not _triton_ops.INTERPRETED:
        return False, "TRITON_INTERPRET=1 was set after the Triton kernels were first imported"
    return True, "interpreter"


def _ineligible(spec: Optional[CellSpec], tensors) -> Optional[str]:
    """Why the fused kernels cannot reproduce the core for these arguments (``None`` if they can)."""
    if spec is None:
        return "`spike_fn` is not one the fused kernels implement (use brf_plugins.surrogate's double or multi " \
               "Gaussian, or backend='reference')"
    first = tensors[0]
    for t in tensors:
        if t is None:
            continue
        if t.dtype not in FUSED_DTYPES:
            return f"dtype {t.dtype} is not supported by the fused kernels (float32 or float64)"
        if t.dtype != first.dtype or t.device != first.device:
            return "the tensors mix dtypes or devices (cast them to one dtype and device)"
    return None


def select_backend(backend: str, spec: Optional[CellSpec], tensors, *, allow_triton: bool = True) -> str:
    """Resolve ``backend`` to ``"reference"``, ``"fused"`` or ``"triton"``; an explicit fast backend that cannot run
    raises ``ValueError`` saying why."""
    check_choice("backend", backend, BACKENDS if allow_triton else STEP_BACKENDS)
    if backend == "reference":
        return "reference"
    reason = _ineligible(spec, tensors)
    if backend == "auto":
        if reason is not None:
            return "reference"
        if allow_triton and tensors[0].is_cuda and triton_status(tensors[0].device)[0]:
            return "triton"
        return "fused"
    if reason is not None:
        raise ValueError(f"backend={backend!r} cannot run: {reason}.")
    if backend == "triton":
        usable, why = triton_status(tensors[0].device)
        if not usable:
            raise ValueError(f"backend='triton' cannot run: {why}.")
        if any(p.dim() > 1 for p in tensors[-2:]):
            raise ValueError("backend='triton' needs per-neuron `omega` and `b_offset` of shape (h,) or ().")
    return backend


def _make_spec(kind: str, dt, theta, gamma, spike_fn, option: str = "", **ablation) -> Optional[CellSpec]:
    return cell_spec(kind, dt, theta, gamma, spike_fn, option=option, **ablation)


def fused_step(spec: CellSpec, current, u, v, q, omega, b_offset):
    """One fused step for a :class:`CellSpec`: ``(z, u, v[, q])`` (``q`` ``None`` for RF)."""
    pa, pb = neuron_params(spec, omega, b_offset)
    return CellStep.apply(spec, current, u, v, q, pa, pb)


def brf_step(current, u, v, q, omega, b_offset, dt: float = F.DEFAULT_DT, theta: float = F.DEFAULT_THETA,
             gamma: float = F.DEFAULT_GAMMA, spike_fn=None, *, divergence_boundary: bool = True,
             refractory: bool = True, smooth_reset: bool = True, backend: str = "auto") -> F.BRFStep:
    """:func:`brf_plugins.functional.brf_step` as one autograd node (same arguments, same results)."""
    ablation = dict(divergence_boundary=divergence_boundary, refractory=refractory, smooth_reset=smooth_reset)
    spec = _make_spec("brf", dt, theta, gamma, spike_fn, **ablation)
    tensors = (current, u, v, q, omega, b_offset)
    if select_backend(backend, spec, tensors, allow_triton=False) == "reference":
        return F.brf_step(current, u, v, q, omega, b_offset, dt, theta, gamma, spike_fn, **ablation)
    return F.BRFStep(*fused_step(spec, current, u, v, q, omega, b_offset))


def rf_step(current, u, v, omega, b_offset, dt: float = F.DEFAULT_DT, theta: float = F.DEFAULT_THETA,
            spike_fn=None, reset: str = "none", *, backend: str = "auto") -> F.RFStep:
    """:func:`brf_plugins.functional.rf_step` as one autograd node (same arguments, same results)."""
    check_choice("reset", reset, F.RF_RESETS)
    spec = _make_spec("rf", dt, theta, F.DEFAULT_GAMMA, spike_fn, option=reset)
    if select_backend(backend, spec, (current, u, v, omega, b_offset), allow_triton=False) == "reference":
        return F.rf_step(current, u, v, omega, b_offset, dt, theta, spike_fn, reset=reset)
    return F.RFStep(*fused_step(spec, current, u, v, None, omega, b_offset))


def bhrf_step(current, u, v, q, omega, b_offset, dt: float = F.DEFAULT_DT, theta: float = F.DEFAULT_THETA,
              gamma: float = F.DEFAULT_GAMMA, spike_fn=None, variant: str = "code", *,
              backend: str = "auto") -> F.BHRFStep:
    """:func:`brf_plugins.functional.bhrf_step` as one autograd node (same arguments, same results)."""
    check_choice("variant", variant, F.BHRF_VARIANTS)
    spec = _make_spec("bhrf", dt, theta, gamma, spike_fn, option=variant)
    if select_backend(backend, spec, (current, u, v, q, omega, b_offset), allow_triton=False) == "reference":
        return F.bhrf_step(current, u, v, q, omega, b_offset, dt, theta, gamma, spike_fn, variant=variant)
    return F.BHRFStep(*fused_step(spec, current, u, v, q, omega, b_offset))


def run_sequence(spec: CellSpec, backend: str, currents, state: tuple, omega, b_offset):
    """A feed-forward layer over ``currents`` ``(T, B, h)`` from ``state`` (``(u, v, q)`` or ``(u, v)``) with the
    ``"fused"`` or ``"triton"`` backend. Returns ``(z, state)`` like the core's sequence functions."""
    u, v, q = state if spec.has_q else (state[0], state[1], None)
    pa, pb = neuron_params(spec, omega, b_offset)
    if backend == "triton":
        from ._triton_ops import TritonCellSequence
        out = TritonCellSequence.apply(spec, currents, u, v, q, pa, pb)
    else:
        out = CellSequence.apply(spec, currents, u, v, q, pa, pb)
    return out[0], tuple(out[1:])


def recurrent_sequence(spec: CellSpec, x, weight, state: tuple, omega, b_offset, recurrent: bool = True):
    r"""The recurrent layer :math:`I_t = W[x_t; z_{t-1}]` and its neurons over ``x`` ``(T, B, m)``.

    ``state`` is ``(z, u, v[, q])``. Returns ``(z_all, state_T)``; the same values as calling
    :meth:`brf_plugins.network.RecurrentLayer.step` for each step, as one autograd node.
    """
    z, u, v = state[:3]
    q = state[3] if spec.has_q else None
    pa, pb = neuron_params(spec, omega, b_offset)
    out = RecurrentCellSequence.apply(spec, bool(recurrent), x, weight, z, u, v, q, pa, pb)
    return out[0], tuple(out[1:])


def li_sequence(currents, o, tau_mem):
    r"""LI readout over a sequence: :math:`o_t = \alpha o_{t-1} + (1-\alpha) c_t`, :math:`\alpha = e^{-1/|\tau|}`
    (:func:`brf_plugins.functional.li_step` for every step; ``o`` the initial potential or ``None``)."""
    alpha = F.li_alpha(tau_mem)
    return LISequence.apply(currents, o, alpha, 1.0 - alpha)

