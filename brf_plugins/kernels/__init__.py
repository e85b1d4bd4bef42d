r"""The fast paths behind :mod:`brf_plugins.neurons`, :mod:`brf_plugins.sequence` and :mod:`brf_plugins.network`,
and :func:`plan`, the one place that decides which path runs.

The plain core (:mod:`brf_plugins.functional`) runs a dozen elementwise kernels per neuron step and records a
dozen autograd nodes. The paths here compute the same update faster:

* ``"fused"``: one autograd node per step (:class:`CellStep`) or per sequence (:class:`CellSequence`,
  :class:`RecurrentCellSequence`, :class:`LISequence`) with hand-derived backward passes, torch operations on any
  device;
* ``"compiled"``: one compiled C++ call forward and one backward (:mod:`._cpu`, CPU tensors; built on first
  use), for a whole sequence or for one step (:class:`._cpu.CPUCellStep`: user code that calls a neuron once per
  time step, its per-neuron terms computed inside the call from the raw ``omega`` and ``b_offset``);
* ``"triton"``: a feed-forward sequence or the paper's recurrent layer as one Triton launch forward and one
  backward (CUDA, or CPU under ``TRITON_INTERPRET=1``; :mod:`._triton_ops`, :mod:`._triton_recurrent`).

:func:`plan` returns a :class:`Plan` ``(path, spec, reason)`` for a neuron configuration, its tensors and the
scope of the call (one step, a feed-forward sequence or the paper's recurrent layer); ``reason`` says why a
faster path did not apply. Every caller (core layers, sequence functions, adapters) goes through it.

Exactness: forward values are bitwise those of the core (same operations in the same order); gradients equal
autograd through the core up to the order of floating-point sums (``tests/test_kernels.py``). A spike function the
kernels do not implement (anything but the package's double/multi Gaussian), a tensor threshold, a dtype other
than float32/float64 or mixed dtypes/devices make ``backend="auto"`` run the core loop.

On CPU the compiled step is the default for a step too (a CUDA tensor, a state that broadcasts against the
current, or ``torch.compile`` tracing keep the fused step, a spike function the kernels do not implement the
reference one). ``tensors`` are the call's current, states and per-neuron parameters:

Example:
    >>> import torch
    >>> from brf_plugins import kernels
    >>> from brf_plugins.neurons import NeuronConfig
    >>> x, params = torch.zeros(2, 3), (torch.ones(3), torch.ones(3))
    >>> usable, _ = kernels.compiled_status()
    >>> kernels.plan(NeuronConfig("brf"), (x, x, x, x) + params, scope="step").path == \
    ...     ("compiled" if usable else "fused")
    True
    >>> kernels.plan(NeuronConfig("brf"), (x, x[0], x, x) + params, scope="step").path   # u broadcasts
    'fused'
    >>> kernels.plan(NeuronConfig("brf", spike_fn=torch.sigmoid), (x,), scope="step").reason[:30]
    '`spike_fn` is not one the fuse'
"""

from __future__ import annotations

import importlib.util
import os
from typing import NamedTuple, Optional, Tuple

import torch

from .. import functional as F
from .._checks import check_choice, check_step_inputs
from ..kinds import NeuronConfig
from ._autograd import CellSequence, CellStep, LISequence, RecurrentCellSequence
from ._spec import FUSED_DTYPES, CellSpec, SmoothSpike, cell_spec
from ._torch_cells import neuron_params

__all__ = ["BACKENDS", "RECURRENT_BACKENDS", "SCOPES", "Plan", "plan", "spec_of", "CellStep", "CellSpec", "SmoothSpike", "cell_spec",
           "neuron_params", "brf_step", "rf_step", "bhrf_step", "fused_step", "run_step", "run_sequence",
           "recurrent_sequence", "li_sequence", "triton_status", "compiled_status"]

BACKENDS = ("auto", "reference", "fused", "compiled", "triton")
"""``auto`` takes the fastest path that reproduces the core for the call, the others insist on one (a
``ValueError`` says why it cannot run)."""
RECURRENT_BACKENDS = BACKENDS
"""The backends that can run the paper's recurrent layer (all: Triton's persistent recurrent kernel on CUDA)."""
SCOPES = ("step", "sequence", "recurrent")
"""What is computed: one neuron step, a feed-forward layer over a sequence, or the paper's recurrent layer
:math:`I_t = W[x_t; z_{t-1}]` over a sequence."""


class Plan(NamedTuple):
    """The path :func:`plan` chose: ``path`` (one of :data:`BACKENDS` but ``auto``), the kernels'
    :class:`CellSpec` (``None`` for the reference path) and ``reason``, why no faster path runs (``""`` when
    the fastest one for this scope does)."""

    path: str
    spec: Optional[CellSpec]
    reason: str = ""
    config: Optional[NeuronConfig] = None


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


def compiled_status() -> Tuple[bool, str]:
    """``(usable, reason)``: whether the compiled C++ sequence kernels (:mod:`._cpu`) are built and loadable."""
    if importlib.util.find_spec(f"{__name__}._cpu") is None:
        return False, "this build has no compiled CPU kernels"
    from . import _cpu
    return _cpu.status()


def spec_of(cfg: NeuronConfig) -> Optional[CellSpec]:
    """The kernels' :class:`CellSpec` for a neuron configuration, or ``None`` where they cannot reproduce it."""
    option = {"rf": cfg.reset, "bhrf": cfg.variant}.get(cfg.kind, "")
    ablation = cfg.ablation if cfg.kind == "brf" else {}
    return cell_spec(cfg.kind, cfg.dt, cfg.theta, cfg.gamma, cfg.spike_fn, option=option,
                     input_gain=cfg.input_gain, **ablation)


def _ineligible(cfg: NeuronConfig, spec: Optional[CellSpec], tensors) -> Optional[str]:
    """Why the fused kernels cannot reproduce the core for these arguments (``None`` if they can)."""
    if cfg.kind == "alif":
        return "the fused kernels have no ALIF update"
    if spec is None:
        if isinstance(cfg.theta, torch.Tensor):
            return "the threshold is a tensor (learnable or per neuron); the kernels take a fixed number"
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


def _step_layout_reason(tensors) -> Optional[str]:
    """Why the compiled step cannot take these step tensors ``(current, states..., omega, b_offset)``: it reads
    rows of ``h`` values, so every state has the current's shape and the parameters are one per neuron."""
    current, states, params = tensors[0], tensors[1:-2], tensors[-2:]
    if current.dim() == 0 or current.numel() == 0:
        return "the compiled step takes a non-empty current (..., h)"
    if any(s.shape != current.shape for s in states):
        return "the compiled step takes states of the current's shape (a broadcast state runs the fused step)"
    h = current.shape[-1]
    if any(p.numel() not in (1, h) for p in params):
        return "the compiled step takes per-neuron parameters of shape (h,) or one value"
    return None


def _compiled_reason(cfg: NeuronConfig, scope: str, tensors) -> Optional[str]:
    """Why the compiled C++ kernels cannot run this call (``None`` if they can)."""
    if torch.compiler.is_compiling():
        return "torch.compile is tracing: the fused path is what it can trace (the C++ call is opaque to it)"
    if tensors[0].device.type != "cpu":
        return "the compiled kernels run on CPU tensors"
    usable, why = compiled_status()
    if not usable:
        return why
    from . import _cpu
    shape = tensors[0].shape
    if scope == "sequence" and len(shape) != 3:
        return f"the compiled kernels take (T, B, h) sequences, got shape {tuple(shape)}"
    if any(t.dim() > 1 for t in tensors[-2:]):
        return "the compiled kernels take per-neuron parameters of shape (h,) or ()"
    if scope == "step":
        why = _step_layout_reason(tensors)
        if why is not None:
            return why
    return _cpu.unsupported(cfg, scope, tensors)


def plan(cfg: NeuronConfig, tensors, *, scope: str = "step", backend: str = "auto") -> Plan:
    """Choose the implementation of one call: ``cfg``'s neurons over ``tensors`` (the call's current/input first,
    then states and parameters; ``None`` entries are skipped) for ``scope`` (:data:`SCOPES`).

    ``backend="auto"`` takes, in this order, ``"triton"`` (sequences and the recurrent layer on CUDA tensors,
    Triton installed), ``"compiled"`` (CPU tensors, C++ kernels built: one step, or a whole sequence), ``"fused"``,
    ``"reference"``, the first that reproduces the core. A named backend that cannot run raises ``ValueError``
    with the reason.

    The choice depends on the configuration and the tensors' dtypes, devices and shapes only, so it is remembered
    on the configuration per layout of the tensors (a module that keeps its :class:`NeuronConfig` and steps T
    times plans once; a new configuration plans afresh). While ``torch.compile`` traces, it is made afresh (and
    is the traceable fused path).
    """
    if torch.compiler.is_compiling():
        return _plan(cfg, tensors, scope, backend)
    key = (scope, backend) + tuple(None if t is None else (t.dtype, t.device, t.shape) for t in tensors)
    plans = cfg.__dict__.get("_plans")
    if plans is None:
        plans = {}
        object.__setattr__(cfg, "_plans", plans)   # a cache beside the (frozen) fields, not a field
    chosen = plans.get(key)
    if chosen is None:
        chosen = _plan(cfg, tensors, scope, backend)
        if len(plans) >= 64:    # e.g. a batch size that changes every call: keep the memo small
            plans.clear()
        plans[key] = chosen
    return chosen


def _plan(cfg: NeuronConfig, tensors, scope: str, backend: str) -> Plan:
    check_choice("backend", backend, BACKENDS)
    check_choice("scope", scope, SCOPES)
    if backend == "reference":
        return Plan("reference", None, "backend='reference' was asked for")
    tensors = tuple(t for t in tensors if t is not None)
    spec = spec_of(cfg) if cfg.kind != "alif" else None
    fused_reason = _ineligible(cfg, spec, tensors)
    if backend in ("fused", "triton") and fused_reason is not None:
        raise ValueError(f"backend={backend!r} cannot run: {fused_reason}.")
    if backend == "triton" or (backend == "auto" and scope != "step" and fused_reason is None
                               and tensors[0].is_cuda):
        usable, why = triton_status(tensors[0].device)
        if scope == "step":
            why, usable = "the Triton kernels run whole sequences, not single steps", False
        elif any(p.dim() > 1 for p in tensors[-2:]):
            why, usable = "the Triton kernels need per-neuron `omega` and `b_offset` of shape (h,) or ()", False
        elif usable and scope == "recurrent":
            from . import _triton_recurrent
            why = _triton_recurrent.supported(spec, tensors[0], tensors[1])
            usable = why is None
        if usable:
            return Plan("triton", spec, "", cfg)
        if backend == "triton":
            raise ValueError(f"backend='triton' cannot run: {why}.")
    compiled_reason = None
    if backend in ("compiled", "auto"):
        compiled_reason = _compiled_reason(cfg, scope, tensors)
    if backend == "compiled":
        if compiled_reason is not None:
            raise ValueError(f"backend='compiled' cannot run: {compiled_reason}.")
        return Plan("compiled", spec, "", cfg)
    if backend == "auto" and compiled_reason is None:
        return Plan("compiled", spec, "", cfg)
    if fused_reason is not None:
        return Plan("reference", None, fused_reason)
    return Plan("fused", spec, compiled_reason or "")


def fused_step(spec: CellSpec, current, *args):
    """One fused step for a :class:`CellSpec`: ``args`` are ``(u, v, q, omega, b_offset)`` (RF: no ``q``).
    Returns ``(z, u, v[, q])``."""
    *state, omega, b_offset = args
    u, v = state[0], state[1]
    q = state[2] if spec.has_q else None
    pa, pb = neuron_params(spec, omega, b_offset)
    return CellStep.apply(spec, current, u, v, q, pa, pb)


def run_step(chosen: Plan, current, *args):
    """One step on the path of ``chosen`` (a :func:`plan` for scope ``"step"``, not the reference path):
    ``args`` are ``(u, v, q, omega, b_offset)`` (RF: no ``q``), the raw per-neuron parameters. Returns
    ``(z, u, v[, q])``: the compiled step (:class:`._cpu.CPUCellStep`, the parameters' terms inside the call) or
    the fused one (:func:`fused_step`)."""
    if chosen.path == "compiled":
        from ._cpu import CPUCellStep
        *state, omega, b_offset = args
        q = state[2] if chosen.spec.has_q else None
        return CPUCellStep.apply(chosen.spec, current, state[0], state[1], q, omega, b_offset)
    return fused_step(chosen.spec, current, *args)


def _step(kind: str, backend: str, current, state: tuple, params: tuple, **options):
    cfg = NeuronConfig(kind, **options)   # checks the constants (dt > 0, theta > 0, gamma in [0, 1), ...)
    check_step_inputs(current, dict(zip(cfg.state_names[1:], state)), dict(zip(cfg.param_names, params)))
    chosen = plan(cfg, (current,) + state + params, scope="step", backend=backend)
    if chosen.path == "reference":
        return getattr(F, f"{kind}_step")(current, *state, *params, **cfg.step_kwargs())
    return cfg.state_type(*run_step(chosen, current, *state, *params))


def brf_step(current, u, v, q, omega, b_offset, dt: float = F.DEFAULT_DT, theta: float = F.DEFAULT_THETA,
             gamma: float = F.DEFAULT_GAMMA, spike_fn=None, *, divergence_boundary: bool = True,
             refractory: bool = True, smooth_reset: bool = True, backend: str = "auto") -> F.BRFState:
    """:func:`brf_plugins.functional.brf_step` as one autograd node (same arguments, same results; the reference
    path checks its arguments as the core step does)."""
    return _step("brf", backend, current, (u, v, q), (omega, b_offset), dt=dt, theta=theta, gamma=gamma,
                 spike_fn=spike_fn, divergence_boundary=divergence_boundary, refractory=refractory,
                 smooth_reset=smooth_reset)


def rf_step(current, u, v, omega, b_offset, dt: float = F.DEFAULT_DT, theta: float = F.DEFAULT_THETA,
            spike_fn=None, reset: str = "none", *, backend: str = "auto") -> F.RFState:
    """:func:`brf_plugins.functional.rf_step` as one autograd node (same arguments, same results)."""
    return _step("rf", backend, current, (u, v), (omega, b_offset), dt=dt, theta=theta, spike_fn=spike_fn,
                 reset=reset)


def bhrf_step(current, u, v, q, omega, b_offset, dt: float = F.DEFAULT_DT, theta: float = F.DEFAULT_THETA,
              gamma: float = F.DEFAULT_GAMMA, spike_fn=None, variant: str = "code", *,
              backend: str = "auto") -> F.BHRFState:
    """:func:`brf_plugins.functional.bhrf_step` as one autograd node (same arguments, same results)."""
    return _step("bhrf", backend, current, (u, v, q), (omega, b_offset), dt=dt, theta=theta, gamma=gamma,
                 spike_fn=spike_fn, variant=variant)


def run_sequence(chosen: Plan, currents, state: tuple, omega, b_offset):
    """A feed-forward layer over ``currents`` ``(T, B, h)`` from ``state`` (``(u, v, q)`` or ``(u, v)``) on the
    path of ``chosen`` (a :func:`plan` for scope ``"sequence"``). Returns ``(z_all, state)``."""
    spec = chosen.spec
    u, v, q = state if spec.has_q else (state[0], state[1], None)
    pa, pb = neuron_params(spec, omega, b_offset)
    if chosen.path == "triton":
        from ._triton_ops import TritonCellSequence
        if spec.input_gain != 1.0:   # the Triton kernels take the scaled current
            currents, spec = currents * spec.input_gain, spec.with_gain(1.0)
        out = TritonCellSequence.apply(spec, currents, u, v, q, pa, pb)
    elif chosen.path == "compiled":
        from ._cpu import CPUCellSequence
        out = CPUCellSequence.apply(spec, currents, u, v, q, pa, pb)
    else:
        out = CellSequence.apply(spec, currents, u, v, q, pa, pb)
    return out[0], tuple(out[1:])


def recurrent_sequence(chosen: Plan, x, weight, state: tuple, omega, b_offset, recurrent: bool = True):
    r"""The recurrent layer :math:`I_t = g\,W[x_t; z_{t-1}]` and its neurons over ``x`` ``(T, B, m)`` on the path
    of ``chosen`` (a :func:`plan` for scope ``"recurrent"``).

    ``state`` is ``(z, u, v[, q])`` (ALIF on the compiled path: ``(z, u, a)``, with ``tau_mem, tau_adp`` in place of
    ``omega, b_offset``). Returns ``(z_all, state_T)``: the values of stepping
    :func:`brf_plugins.neurons.neuron_step` over the sequence, as one autograd node.
    """
    if chosen.config is not None and chosen.config.kind == "alif":   # omega, b_offset are tau_mem, tau_adp here
        from ._cpu import alif_layer
        return alif_layer(chosen.config, x, weight, tuple(state), omega, b_offset, bool(recurrent))
    spec = chosen.spec
    z, u, v = state[:3]
    q = state[3] if spec.has_q else None
    pa, pb = neuron_params(spec, omega, b_offset)
    if chosen.path == "compiled":
        from ._cpu import CPURecurrentCellSequence as Function
    elif chosen.path == "triton":
        from ._triton_recurrent import TritonRecurrentCellSequence as Function
    else:
        Function = RecurrentCellSequence
    out = Function.apply(spec, bool(recurrent), x, weight, z, u, v, q, pa, pb)
    return out[0], tuple(out[1:])


def li_sequence(currents, o, tau_mem, *, compiled: bool = False):
    r"""LI readout over a sequence: :math:`o_t = \alpha o_{t-1} + (1-\alpha) c_t`, :math:`\alpha = e^{-1/|\tau|}`
    (:func:`brf_plugins.functional.li_step` for every step; ``o`` the initial potential or ``None``)."""
    alpha = F.li_alpha(tau_mem)
    if compiled:
        from ._cpu import CPULISequence
        return CPULISequence.apply(currents, o, alpha, 1.0 - alpha)
    return LISequence.apply(currents, o, alpha, 1.0 - alpha)
