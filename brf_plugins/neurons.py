r"""One description per neuron kind, and the one neuron update every module goes through.

A :class:`NeuronConfig` holds everything a neuron update needs apart from its tensors, in the package's one
vocabulary (``theta``, ``spike_fn``, ``reset``, ``variant``, ``beta``, ``input_gain``, the BRF ablation switches):
the core layers, the snnTorch neurons and the Norse cells each translate their users' arguments into one, once,
at construction. :func:`neuron_step` then runs one update for it, and :func:`sequence` a whole feed-forward
sequence; both ask :func:`brf_plugins.kernels.plan` which implementation runs (plain core, fused, compiled or
Triton), so no module decides that itself.

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
one step function in :mod:`brf_plugins.functional`, one :class:`NeuronKind` entry in :data:`KINDS` and the
adapters' class lists (CONTRIBUTING.md).

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

import dataclasses
from dataclasses import dataclass
from typing import Callable, Dict, NamedTuple, Optional, Tuple, Union

import torch

from . import functional as F
from .init import Normal, Uniform
from ._checks import check_callable, check_choice, check_dt, check_finite_float, check_threshold, check_unit_interval

__all__ = ["NeuronKind", "KINDS", "NeuronConfig", "neuron_step", "sequence", "zero_state", "STATE_TYPES",
           "BRFFeedForwardState", "RFFeedForwardState", "BHRFFeedForwardState"]

Number = Union[float, torch.Tensor]


class BRFFeedForwardState(NamedTuple):
    """State of a feed-forward BRF layer: membrane ``u`` (real part, thresholded), ``v`` (imaginary part),
    refractory variable ``q``."""

    u: torch.Tensor
    v: torch.Tensor
    q: torch.Tensor


class RFFeedForwardState(NamedTuple):
    """State of a feed-forward RF layer: membrane ``u`` (real part) and ``v`` (imaginary part)."""

    u: torch.Tensor
    v: torch.Tensor


class BHRFFeedForwardState(NamedTuple):
    """State of a feed-forward BHRF layer: velocity ``u`` (thresholded), position ``v``, refractory ``q``."""

    u: torch.Tensor
    v: torch.Tensor
    q: torch.Tensor


class NeuronKind(NamedTuple):
    """What differs between neuron models, for code that builds modules for all of them."""

    name: str
    title: str
    state: type                       # the state NamedTuple, ``z`` first
    feed_forward_state: type          # without ``z`` (resonators), as a feed-forward layer keeps it
    params: Tuple[str, ...]           # per-neuron tensors, in the order the step takes them
    default_init: Dict[str, object]   # the adapters' defaults, a module built without inits draws from them
    equations: str                    # reST math for docstrings
    step: Callable


KINDS: Dict[str, NeuronKind] = {
    "brf": NeuronKind(
        "brf", "balanced resonate-and-fire", F.BRFState, BRFFeedForwardState, ("omega", "b_offset"),
        {"omega": Uniform(10.0, 50.0), "b_offset": Uniform(1.0, 6.0)},
        r"b_t = p(\omega) - |b'| - q_{t-1},\ U_t = U_{t-1} + \delta((b_t + i\omega) U_{t-1} + I_t),\ "
        r"z_t = H(\mathrm{Re}\,U_t - \vartheta - q_{t-1}),\ q_t = \gamma q_{t-1} + z_t", F.brf_step),
    "rf": NeuronKind(
        "rf", "Izhikevich resonate-and-fire", F.RFState, RFFeedForwardState, ("omega", "b_offset"),
        {"omega": Uniform(5.0, 10.0), "b_offset": Uniform(0.0, 1.0)},
        r"U_t = U_{t-1} + \delta((-|b'| + i\omega) U_{t-1} + I_t),\ z_t = H(\mathrm{Re}\,U_t - \vartheta)",
        F.rf_step),
    "bhrf": NeuronKind(
        "bhrf", "balanced harmonic resonate-and-fire", F.BHRFState, BHRFFeedForwardState, ("omega", "b_offset"),
        {"omega": Uniform(10.0, 50.0), "b_offset": Uniform(1.0, 6.0)},
        r"b_t = \delta\omega^2/2 + |b'| + q_{t-1},\ v_t = v_{t-1} + \delta u_{t-1},\ "
        r"u_t = u_{t-1} + \delta I_t - 2\delta b_t u_{t-1} - \delta\omega^2 v_t,\ "
        r"z_t = H(u_t - \vartheta - q_{t-1})", F.bhrf_step),
    "alif": NeuronKind(
        "alif", "adaptive leaky integrate-and-fire", F.ALIFState, F.ALIFState, ("tau_mem", "tau_adp"),
        {"tau_mem": Normal(20.0, 5.0), "tau_adp": Normal(200.0, 50.0)},
        r"a_t = \rho a_{t-1} + (1-\rho) z_{t-1},\ u'_t = \alpha u_{t-1} + (1-\alpha) I_t,\ "
        r"z_t = H(u'_t - \vartheta_0 - \beta a_t),\ u_t = u'_t - z_t(\vartheta_0 + \beta a_t)", F.alif_step),
}
"""The neuron kinds, by name.

``default_init`` is what snnTorch's and Norse's modules draw when built without inits: BRF's ranges are the drop-in
defaults measured on the frameworks' tutorials (``benchmarks/dropin_defaults.py``,
``benchmarks/results/dropin_defaults.md``; the paper's tasks pass their own, spec 2), RF's and BHRF's and ALIF's the
paper code's module defaults (RF ``SimpleResRNN``'s; BHRF the paper's PS-MNIST ranges; ALIF normal draws)."""

STATE_TYPES = {name: kind.state for name, kind in KINDS.items()}


@dataclass(frozen=True, eq=False)
class NeuronConfig:
    """Everything one neuron update needs except its tensors (core vocabulary; see the module docstring).

    Args:
        kind: ``"brf"``, ``"rf"``, ``"bhrf"`` or ``"alif"``.
        dt: integration step of the resonators (0.01).
        theta: threshold (default 1.0, ALIF 0.01); a number or a tensor (learnable or per neuron).
        gamma: decay of the refractory variable ``q`` (BRF, BHRF), in [0, 1).
        spike_fn: spike function with its surrogate gradient (default: the double Gaussian).
        input_gain: factor on the current before the update (1.0: the spec verbatim).
        reset: RF's reset, ``"none"``, ``"soft"`` or ``"hard"``.
        variant: BHRF's integrator, ``"code"``, ``"paper"`` or ``"explicit"``.
        beta: ALIF's adaptation strength (1.8; 0 makes it a LIF neuron).
        divergence_boundary, refractory, smooth_reset: the BRF ablation switches (paper A.8).

    Raises:
        ValueError: an unknown kind/reset/variant, ``dt <= 0``, a NaN/inf constant, ``gamma`` outside [0, 1),
            ``input_gain <= 0``, ``beta < 0``. TypeError: ``spike_fn`` not callable.
    """

    kind: str
    dt: float = F.DEFAULT_DT
    theta: Optional[Number] = None
    gamma: float = F.DEFAULT_GAMMA
    spike_fn: Optional[Callable] = None
    input_gain: float = 1.0
    reset: str = "none"
    variant: str = "code"
    beta: float = F.ALIF_BETA
    divergence_boundary: bool = True
    refractory: bool = True
    smooth_reset: bool = True

    def __post_init__(self):
        check_choice("neuron", self.kind, tuple(KINDS))
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen dataclass)
        set_("dt", check_dt(self.dt))
        theta = (F.ALIF_THETA if self.kind == "alif" else F.DEFAULT_THETA) if self.theta is None else self.theta
        set_("theta", check_threshold("theta", theta))
        set_("gamma", check_unit_interval("gamma", self.gamma))
        check_callable("spike_fn", self.spike_fn)
        set_("input_gain", check_finite_float("input_gain", self.input_gain, positive=True))
        check_choice("reset", self.reset, F.RF_RESETS)
        check_choice("variant", self.variant, F.BHRF_VARIANTS)
        set_("beta", check_finite_float("beta", self.beta, nonnegative=True))
        for flag in ("divergence_boundary", "refractory", "smooth_reset"):
            set_(flag, bool(getattr(self, flag)))

    @property
    def spec(self) -> NeuronKind:
        return KINDS[self.kind]

    @property
    def state_type(self) -> type:
        return KINDS[self.kind].state

    @property
    def state_names(self) -> Tuple[str, ...]:
        return KINDS[self.kind].state._fields

    @property
    def param_names(self) -> Tuple[str, ...]:
        return KINDS[self.kind].params

    @property
    def ablation(self) -> Dict[str, bool]:
        return dict(divergence_boundary=self.divergence_boundary, refractory=self.refractory,
                    smooth_reset=self.smooth_reset)

    def replace(self, **changes) -> "NeuronConfig":
        return dataclasses.replace(self, **changes)

    def step_kwargs(self) -> dict:
        """The keyword arguments of this kind's :mod:`brf_plugins.functional` step after the tensors."""
        if self.kind == "brf":
            return dict(dt=self.dt, theta=self.theta, gamma=self.gamma, spike_fn=self.spike_fn, **self.ablation)
        if self.kind == "rf":
            return dict(dt=self.dt, theta=self.theta, spike_fn=self.spike_fn, reset=self.reset)
        if self.kind == "bhrf":
            return dict(dt=self.dt, theta=self.theta, gamma=self.gamma, spike_fn=self.spike_fn,
                        variant=self.variant)
        return dict(theta=self.theta, beta=self.beta, spike_fn=self.spike_fn)


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


# The kernels build on the configuration above (kernels.plan reads NeuronConfig); imported last, so that either
# module may be imported first, and used only at call time.
from . import kernels  # noqa: E402
