"""The BRF paper's surrogates with snnTorch's names and call style (``spike_grad=double_gaussian()``): the objects of
:mod:`brf_plugins.surrogate`, which documents their derivatives.

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
    """The double-Gaussian surrogate spike function (:func:`brf_plugins.surrogate.double_gaussian`: its arguments,
    derivative 0.43884 at the threshold); ``fgi=True``: by forward gradient injection."""
    return _core.double_gaussian(height, scale, width, gamma, fgi=fgi)


def multi_gaussian(height: float = _core.HEIGHT, scale: float = _core.SCALE, width: float = _core.WIDTH,
                   gamma: float = _core.GAMMA, fgi: bool = False) -> MultiGaussian:
    """The multi-Gaussian surrogate (Yin et al. 2021; :func:`brf_plugins.surrogate.multi_gaussian`), arguments as
    :func:`double_gaussian`."""
    return _core.multi_gaussian(height, scale, width, gamma, fgi=fgi)
