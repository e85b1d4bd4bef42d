r"""The BRF paper's surrogate gradients in the style of :mod:`snntorch.surrogate`.

Like ``snntorch.surrogate.atan()``, each factory returns a callable ``spike(x)`` that gives the Heaviside step
:math:`H(x)` (1 where :math:`x > 0`) in the forward pass and the surrogate derivative in the backward pass, with
``x`` the membrane's distance to threshold. Pass it as ``spike_grad`` to any snnTorch neuron (``snn.Leaky``,
``snn.Synaptic``, ...) or to the neurons of :mod:`snntorch_ext`, whose default it is.

* :func:`double_gaussian` (the released BRF code's surrogate, normalised Gaussian densities):

  .. math:: \frac{\partial z}{\partial x} \approx \gamma_s\big[(1+h)\,\mathcal N(x;0,\sigma)
            - 2h\,\mathcal N(x;0,s\sigma)\big], \quad h=0.15,\ s=6,\ \sigma=0.5,\ \gamma_s=0.5

* :func:`multi_gaussian` (Yin et al. 2021): the wide Gaussian is split into two shifted by :math:`\pm\sigma`.

Both are the objects of :mod:`brf_plugins.surrogate` (one implementation of the math); this module gives them
snnTorch's names and call style. ``fgi=True`` applies the same derivative by forward gradient injection (no
custom ``autograd.Function``; identical values and gradients).

Example:
    >>> import torch, snntorch as snn
    >>> from snntorch_ext import surrogate
    >>> lif = snn.Leaky(beta=0.9, spike_grad=surrogate.double_gaussian())
    >>> cur = torch.ones(2, 3, requires_grad=True)
    >>> spk, mem = lif(cur)
    >>> spk.sum().backward(); cur.grad.shape
    torch.Size([2, 3])
"""

from __future__ import annotations

from brf_plugins import surrogate as _core

__all__ = ["double_gaussian", "multi_gaussian", "DoubleGaussian", "MultiGaussian", "heaviside"]

DoubleGaussian = _core.DoubleGaussian
MultiGaussian = _core.MultiGaussian
heaviside = _core.heaviside


def double_gaussian(height: float = _core.HEIGHT, scale: float = _core.SCALE, width: float = _core.WIDTH,
                    gamma: float = _core.GAMMA, fgi: bool = False) -> DoubleGaussian:
    """Double-Gaussian surrogate spike function, snnTorch-style (``spike_grad=double_gaussian()``).

    Args:
        height: ``h``, weight of the negative side lobes (0.15).
        scale: ``s``, width ratio of the wide Gaussian (6).
        width: ``sigma`` of the narrow Gaussian (0.5).
        gamma: overall scale ``gamma_s`` (0.5): the derivative is 0.43884 at the threshold.
        fgi: apply it by forward gradient injection instead of a custom autograd Function.

    Returns:
        a callable ``spike(x) -> H(x)`` whose backward uses the double-Gaussian derivative; it also has
        ``.derivative(x)``.
    """
    return _core.double_gaussian(height, scale, width, gamma, fgi=fgi)


def multi_gaussian(height: float = _core.HEIGHT, scale: float = _core.SCALE, width: float = _core.WIDTH,
                   gamma: float = _core.GAMMA, fgi: bool = False) -> MultiGaussian:
    """Multi-Gaussian surrogate spike function (Yin et al. 2021), snnTorch-style. Arguments as
    :func:`double_gaussian`; the derivative is 0.43911 at the threshold."""
    return _core.multi_gaussian(height, scale, width, gamma, fgi=fgi)
