"""What a fused kernel needs to know about a neuron: kind, variant switches, surrogate, constants.

A :class:`CellSpec` is hashable and built once per call from the arguments of the core step functions;
:func:`cell_spec` returns ``None`` when the fast paths cannot reproduce the core (an unknown ``spike_fn``, for
example), and the caller then runs the plain core loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional, Tuple

import torch

from .. import functional as F
from ..surrogate import DoubleGaussian, MultiGaussian, default_spike_fn, heaviside

__all__ = ["CellSpec", "cell_spec", "SmoothSpike", "surrogate_of", "FUSED_DTYPES"]

FUSED_DTYPES = (torch.float32, torch.float64)
"""Dtypes the fused paths run in; other dtypes use the plain core loop."""

KINDS = ("brf", "rf", "bhrf")


class SmoothSpike:
    """A *smooth* spike function for checking gradients with finite differences (tests, ``gradcheck``).

    The forward is the antiderivative of the surrogate (a sum of Gaussian CDFs) instead of the Heaviside step, so
    the surrogate derivative becomes the true derivative. The fused paths recognise it and switch their forward to
    the same smooth function, so ``torch.autograd.gradcheck`` can test their hand-derived backward passes.

    Example:
        >>> import torch
        >>> from brf_plugins.kernels import SmoothSpike
        >>> from brf_plugins.surrogate import double_gaussian
        >>> s = SmoothSpike(double_gaussian())
        >>> x = torch.tensor([0.3], dtype=torch.float64, requires_grad=True)
        >>> torch.autograd.grad(s(x).sum(), x)[0].item() == s.derivative(x).item()
        True
    """

    def __init__(self, surrogate=None):
        surrogate = surrogate or default_spike_fn
        if type(surrogate) not in (DoubleGaussian, MultiGaussian):
            raise TypeError(f"`surrogate` must be a brf_plugins double or multi Gaussian, got {surrogate!r}.")
        self.surrogate = surrogate

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return self.surrogate.derivative(x)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.surrogate.antiderivative(x)

    def __repr__(self) -> str:
        return f"SmoothSpike({self.surrogate!r})"

    def __eq__(self, other) -> bool:
        return type(other) is SmoothSpike and other.surrogate == self.surrogate

    def __hash__(self) -> int:
        return hash(("SmoothSpike", self.surrogate))


def surrogate_of(spike_fn) -> Optional[Tuple[object, bool]]:
    """``(surrogate, smooth)`` for spike functions the fused paths implement, else ``None``.

    Built-in double/multi Gaussians (``autograd`` or ``fgi`` method alike: same values and gradients) and
    :class:`SmoothSpike` are supported; any other callable (an snnTorch surrogate, a subclass) is not.
    """
    if spike_fn is None:
        return default_spike_fn, False
    if type(spike_fn) in (DoubleGaussian, MultiGaussian):
        return spike_fn, False
    if type(spike_fn) is SmoothSpike:
        return spike_fn.surrogate, True
    return None


@dataclass(frozen=True)
class CellSpec:
    """One neuron kind with its switches, constants and surrogate; hashable (a cache key for compiled kernels).

    ``kind``: ``"brf"``, ``"rf"`` or ``"bhrf"``. ``option``: the RF reset (``"none"``, ``"soft"``, ``"hard"``) or the
    BHRF variant (``"code"``, ``"paper"``, ``"explicit"``); ``""`` for BRF. ``divergence_boundary``, ``refractory``,
    ``smooth_reset``: the BRF ablation switches. ``input_gain``: the factor on the current before the update
    (every kernel applies it first, as :func:`brf_plugins.neurons.neuron_step` does).
    """

    kind: str
    dt: float
    theta: float
    gamma: float = F.DEFAULT_GAMMA
    option: str = ""
    divergence_boundary: bool = True
    refractory: bool = True
    smooth_reset: bool = True
    surrogate: object = default_spike_fn
    smooth: bool = False
    input_gain: float = 1.0

    def with_gain(self, input_gain: float) -> "CellSpec":
        return replace(self, input_gain=float(input_gain))

    @property
    def has_q(self) -> bool:
        """Whether the neuron carries the refractory variable ``q`` (BRF, BHRF)."""
        return self.kind != "rf"

    @property
    def state_names(self) -> Tuple[str, ...]:
        return ("u", "v", "q") if self.has_q else ("u", "v")

    def spike(self, x: torch.Tensor) -> torch.Tensor:
        """Forward spike value: Heaviside (or the smooth antiderivative in gradient-check mode)."""
        return SmoothSpike(self.surrogate)(x) if self.smooth else heaviside(x)

    def spike_derivative(self, x: torch.Tensor) -> torch.Tensor:
        return self.surrogate.derivative(x)

    def constants(self) -> Tuple[float, ...]:
        """Scalars of the Triton kernels, in the order they read them (see ``_triton.py``)."""
        height, scale, width, gamma_s = self.surrogate.constants
        multi = isinstance(self.surrogate, MultiGaussian)
        wide = scale * width
        root = math.sqrt(2.0 * math.pi)
        c1 = gamma_s * (1.0 + height) / (width * root)
        c2 = gamma_s * (1.0 if multi else 2.0) * height / (wide * root)
        return (self.dt, self.theta, self.gamma, 2 * self.dt,
                c1, 1.0 / (2.0 * width ** 2), c2, 1.0 / (2.0 * wide ** 2), width if multi else 0.0,
                gamma_s * (1.0 + height), 1.0 / (width * math.sqrt(2.0)),
                gamma_s * (1.0 if multi else 2.0) * height, 1.0 / (wide * math.sqrt(2.0)))


def cell_spec(kind: str, dt: float, theta: float, gamma: float = F.DEFAULT_GAMMA, spike_fn=None, *,
              option: str = "", divergence_boundary: bool = True, refractory: bool = True,
              smooth_reset: bool = True, input_gain: float = 1.0) -> Optional[CellSpec]:
    """A :class:`CellSpec`, or ``None`` if the fused kernels cannot reproduce the core for these arguments: an
    unknown ``spike_fn``, or ``dt``/``theta``/``gamma`` given as tensors (e.g. a learnable threshold, whose gradient
    the kernels would drop)."""
    if kind not in KINDS:
        return None
    if not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in (dt, theta, gamma)):
        return None
    found = surrogate_of(spike_fn)
    if found is None:
        return None
    surrogate, smooth = found
    if kind == "rf":
        option = option or "none"
        if option not in F.RF_RESETS:
            return None
    elif kind == "bhrf":
        option = option or "code"
        if option not in F.BHRF_VARIANTS:
            return None
    else:
        option = ""
    return CellSpec(kind, float(dt), float(theta), float(gamma), option, bool(divergence_boundary),
                    bool(refractory), bool(smooth_reset), surrogate, smooth, float(input_gain))
