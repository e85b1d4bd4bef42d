"""The description of every neuron kind (:data:`KINDS`) and :class:`NeuronConfig`, the package's one vocabulary for
a neuron update's constants: the lowest layer above :mod:`brf_plugins.functional`, read by the kernels
(:func:`brf_plugins.kernels.plan`) and by :mod:`brf_plugins.neurons`, whose entry points run the updates (and which
re-exports everything here)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Dict, NamedTuple, Optional, Tuple, Union

import torch

from . import functional as F
from .init import Normal, Uniform
from ._checks import check_callable, check_choice, check_dt, check_finite_float, check_threshold, check_unit_interval

__all__ = ["NeuronKind", "KINDS", "NeuronConfig", "STATE_TYPES", "BRFFeedForwardState", "RFFeedForwardState",
           "BHRFFeedForwardState"]

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
