r"""Spike functions: Heaviside forward, surrogate derivative backward.

The released BRF code uses the **double Gaussian** of Yin et al. (2021) with *normalised* Gaussian densities
(spec section 3; the paper's Eq. 39-40 with unnormalised Gaussians is not what produced its numbers):

.. math::

    \frac{\partial z}{\partial x} \approx \gamma_s\Big[(1+h)\,\mathcal N(x; 0, \sigma)
        - 2h\,\mathcal N(x; 0, s\sigma)\Big],
    \qquad h = 0.15,\ s = 6,\ \sigma = 0.5,\ \gamma_s = 0.5

where :math:`x = u - \vartheta` is the membrane distance to threshold and the forward value is
:math:`H(x) = 1` iff :math:`x > 0`. The **multi Gaussian** replaces the centred wide Gaussian by two shifted ones,
:math:`\gamma_s[(1+h)\mathcal N(x;0,\sigma) - h\mathcal N(x;\sigma,s\sigma) - h\mathcal N(x;-\sigma,s\sigma)]`.

Each surrogate can be applied two ways with identical forward values and gradients:

* ``autograd`` (default): a ``torch.autograd.Function`` whose backward returns ``grad * derivative(x)``;
* ``fgi``: *forward gradient injection* (Otte 2024), plain differentiable ops
  :math:`y = h - \mathrm{sg}(h) + \mathrm{sg}(H(x))` with :math:`h = \mathrm{sg}(g'(x))\,x`; no custom
  backward, which lets tracers and compilers see through it.

The objects returned by :func:`double_gaussian` and :func:`multi_gaussian` are callables ``spike(x)`` in the style
of ``snntorch.surrogate``, so snnTorch's own neurons accept them as ``spike_grad``.

Example:
    >>> import torch
    >>> from brf_plugins import surrogate
    >>> spike = surrogate.double_gaussian()
    >>> x = torch.tensor([-0.5, 0.0, 0.5], requires_grad=True)
    >>> spike(x)
    tensor([0., 0., 1.], grad_fn=<DoubleGaussianSpikeBackward>)
    >>> spike(x).sum().backward(); round(float(x.grad[1]), 5)
    0.43884
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from ._checks import check_choice, check_finite_float

__all__ = [
    "heaviside",
    "gaussian_density",
    "gaussian_cdf",
    "double_gaussian_derivative",
    "multi_gaussian_derivative",
    "DoubleGaussianSpike",
    "MultiGaussianSpike",
    "fgi",
    "SurrogateSpike",
    "DoubleGaussian",
    "MultiGaussian",
    "double_gaussian",
    "multi_gaussian",
    "default_spike_fn",
]

# Constants of the released code (Yin's names in brackets): height ("hight"), scale, width ("lens"), gamma.
HEIGHT = 0.15
SCALE = 6.0
WIDTH = 0.5
GAMMA = 0.5

_SQRT_2PI = math.sqrt(2.0 * math.pi)


def heaviside(x: torch.Tensor) -> torch.Tensor:
    """H(x) = 1 where x > 0 (strict), else 0, in the dtype of ``x``."""
    return (x > 0).to(x.dtype)


def gaussian_density(x: torch.Tensor, mu: float = 0.0, sigma: float = 1.0) -> torch.Tensor:
    """Normalised Gaussian density N(x; mu, sigma)."""
    return (1.0 / (sigma * _SQRT_2PI)) * torch.exp(-((x - mu) ** 2) / (2.0 * sigma ** 2))


def gaussian_cdf(x: torch.Tensor, mu: float = 0.0, sigma: float = 1.0) -> torch.Tensor:
    """Cumulative distribution of N(mu, sigma) at ``x`` (the antiderivative of :func:`gaussian_density`)."""
    return 0.5 * (1.0 + torch.erf((x - mu) / (sigma * math.sqrt(2.0))))


def double_gaussian_derivative(x: torch.Tensor, height: float = HEIGHT, scale: float = SCALE,
                               width: float = WIDTH, gamma: float = GAMMA) -> torch.Tensor:
    """gamma * [(1 + h) N(x; 0, w) - 2 h N(x; 0, s w)]: 0.43884 at x = 0, zero crossing at |x| = 1.270."""
    return gamma * ((1.0 + height) * gaussian_density(x, 0.0, width)
                    - 2.0 * height * gaussian_density(x, 0.0, scale * width))


def multi_gaussian_derivative(x: torch.Tensor, height: float = HEIGHT, scale: float = SCALE,
                              width: float = WIDTH, gamma: float = GAMMA) -> torch.Tensor:
    """gamma * [(1 + h) N(x; 0, w) - h N(x; w, s w) - h N(x; -w, s w)]: 0.43911 at x = 0."""
    return gamma * ((1.0 + height) * gaussian_density(x, 0.0, width)
                    - height * gaussian_density(x, width, scale * width)
                    - height * gaussian_density(x, -width, scale * width))


def _spike_function(name: str, derivative: Callable) -> type:
    """A ``torch.autograd.Function``: Heaviside forward, ``grad * derivative(x, *constants)`` backward."""

    def forward(ctx, x, height=HEIGHT, scale=SCALE, width=WIDTH, gamma=GAMMA):
        ctx.save_for_backward(x)
        ctx.constants = (height, scale, width, gamma)
        return heaviside(x)

    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * derivative(x, *ctx.constants), None, None, None, None

    return type(name, (torch.autograd.Function,), {
        "forward": staticmethod(forward), "backward": staticmethod(backward), "__module__": __name__,
        "__doc__": f"Heaviside forward, ``{derivative.__name__}`` backward. ``apply(x, height, scale, width, "
                   f"gamma)``."})


DoubleGaussianSpike = _spike_function("DoubleGaussianSpike", double_gaussian_derivative)
MultiGaussianSpike = _spike_function("MultiGaussianSpike", multi_gaussian_derivative)


def fgi(x: torch.Tensor, derivative: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Forward gradient injection of any surrogate ``derivative``.

    Returns a tensor equal to H(x) whose gradient with respect to ``x`` is ``derivative(x)``, using only
    differentiable primitives: ``y = h - sg(h) + sg(H(x))`` with ``h = sg(derivative(x)) * x``.
    """
    injected = derivative(x).detach() * x
    return injected - injected.detach() + heaviside(x).detach()


class SurrogateSpike:
    """Base of the spike-function objects: ``spike(x)`` gives spikes, ``spike.derivative(x)`` the surrogate.

    ``method="autograd"`` applies the surrogate through a custom autograd Function, ``method="fgi"`` through
    forward gradient injection; both give identical values and gradients.
    """

    _function: type = None

    def __init__(self, height: float = HEIGHT, scale: float = SCALE, width: float = WIDTH, gamma: float = GAMMA,
                 method: str = "autograd"):
        self.height = check_finite_float("height", height, nonnegative=True)
        self.scale = check_finite_float("scale", scale, positive=True)
        self.width = check_finite_float("width", width, positive=True)
        self.gamma = check_finite_float("gamma", gamma)
        self.method = check_choice("method", method, ("autograd", "fgi"))

    @property
    def constants(self):
        return self.height, self.scale, self.width, self.gamma

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def antiderivative(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Spikes ``H(x)`` with the surrogate gradient.

        Raises:
            TypeError: ``x`` is not a real floating-point tensor (a type check only: this runs every step, so
                NaN is left to the callers, which check their inputs once per sequence).
        """
        if not isinstance(x, torch.Tensor) or x.is_complex() or not torch.is_floating_point(x):
            raise TypeError(f"`x` must be a real floating-point tensor, got "
                            f"{x.dtype if isinstance(x, torch.Tensor) else type(x).__name__}.")
        if self.method == "fgi":
            return fgi(x, self.derivative)
        return self._function.apply(x, *self.constants)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(height={self.height}, scale={self.scale}, width={self.width}, "
                f"gamma={self.gamma}, method={self.method!r})")

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.constants == other.constants and self.method == other.method

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.constants, self.method))


class DoubleGaussian(SurrogateSpike):
    """The released code's surrogate (normalised densities, gamma = 0.5)."""

    _function = DoubleGaussianSpike

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return double_gaussian_derivative(x, *self.constants)

    def antiderivative(self, x: torch.Tensor) -> torch.Tensor:
        """The smooth step whose derivative is :meth:`derivative` (Gaussian CDFs instead of densities)."""
        h, s, w, g = self.constants
        return g * ((1.0 + h) * gaussian_cdf(x, 0.0, w) - 2.0 * h * gaussian_cdf(x, 0.0, s * w))


class MultiGaussian(SurrogateSpike):
    """Yin's multi-Gaussian ("MG") surrogate."""

    _function = MultiGaussianSpike

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return multi_gaussian_derivative(x, *self.constants)

    def antiderivative(self, x: torch.Tensor) -> torch.Tensor:
        """The smooth step whose derivative is :meth:`derivative` (Gaussian CDFs instead of densities)."""
        h, s, w, g = self.constants
        return g * ((1.0 + h) * gaussian_cdf(x, 0.0, w) - h * gaussian_cdf(x, w, s * w)
                    - h * gaussian_cdf(x, -w, s * w))


def double_gaussian(height: float = HEIGHT, scale: float = SCALE, width: float = WIDTH, gamma: float = GAMMA,
                    fgi: bool = False) -> DoubleGaussian:
    """A double-Gaussian spike function, usable as ``spike_grad`` / ``spike_fn`` anywhere.

    Example:
        >>> from brf_plugins.surrogate import double_gaussian
        >>> spike = double_gaussian(fgi=True)   # same values and gradients, no custom autograd Function
    """
    return DoubleGaussian(height, scale, width, gamma, method="fgi" if fgi else "autograd")


def multi_gaussian(height: float = HEIGHT, scale: float = SCALE, width: float = WIDTH, gamma: float = GAMMA,
                   fgi: bool = False) -> MultiGaussian:
    """A multi-Gaussian spike function (Yin et al. 2021), usable as ``spike_grad`` / ``spike_fn``."""
    return MultiGaussian(height, scale, width, gamma, method="fgi" if fgi else "autograd")


default_spike_fn = DoubleGaussian()
"""The spike function every BRF/RF/BHRF/ALIF step uses unless told otherwise."""
