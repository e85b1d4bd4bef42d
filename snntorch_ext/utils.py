"""``snntorch.utils.reset`` for the neurons of :mod:`snntorch_ext`.

snnTorch's ``utils.reset(net)`` only knows snnTorch's own classes: it looks through ``net``'s direct children for
``snn.Leaky``, ``snn.Synaptic``, ... and calls those classes' ``reset_hidden()``. Our neurons are not among them,
so importing :mod:`snntorch_ext` wraps ``snntorch.utils.reset`` (once, idempotently): the wrapper runs snnTorch's
original and then clears every :mod:`snntorch_ext` neuron inside ``net`` (all nested modules, ``net`` itself
included). Code that calls ``utils.reset(net)`` or ``snntorch.utils.reset(net)``, including snnTorch's own
``snntorch.backprop`` helpers, therefore resets BRF layers too.

The one case the wrapper cannot reach is a name bound before :mod:`snntorch_ext` was imported
(``from snntorch.utils import reset`` executed first). :func:`reset` here is the same function and works
regardless of import order; :func:`uninstall_reset_hook` restores snnTorch's original.

Example:
    >>> import torch, torch.nn as nn, snntorch as snn
    >>> from snntorch import utils
    >>> from snntorch_ext import BRF
    >>> net = nn.Sequential(nn.Linear(2, 4), BRF(4, init_hidden=True), nn.Linear(4, 2), snn.Leaky(0.9, init_hidden=True))
    >>> _ = net(torch.ones(1, 2))
    >>> utils.reset(net)
    >>> net[1].u.numel()      # cleared: the next step starts from zeros
    0
"""

from __future__ import annotations

import functools

import snntorch.utils as _snn_utils
from torch import nn

from ._base import StatefulNeuron

__all__ = ["reset", "reset_brf_neurons", "install_reset_hook", "uninstall_reset_hook"]

_MARK = "_snntorch_ext_wrapper"


def reset_brf_neurons(net: nn.Module) -> None:
    """Clear (and so detach) the state of every :mod:`snntorch_ext` neuron in ``net``, recursively."""
    for module in net.modules():
        if isinstance(module, StatefulNeuron):
            module.reset_mem()


def _original_reset():
    current = _snn_utils.reset
    return getattr(current, "__wrapped__", current) if getattr(current, _MARK, False) else current


def reset(net: nn.Module) -> None:
    """snnTorch's ``utils.reset(net)`` plus the :mod:`snntorch_ext` neurons anywhere inside ``net``."""
    _original_reset()(net)
    reset_brf_neurons(net)


def install_reset_hook() -> None:
    """Make ``snntorch.utils.reset`` also clear :mod:`snntorch_ext` neurons (done on import; idempotent)."""
    current = _snn_utils.reset
    if getattr(current, _MARK, False):
        return

    @functools.wraps(current)
    def wrapped_reset(net):
        current(net)
        reset_brf_neurons(net)

    wrapped_reset.__doc__ = (current.__doc__ or "") + (
        "\n\n    Wrapped by snntorch_ext: also clears snntorch_ext neurons (BRF, RF, BHRF, ALIF, LI, ...) anywhere "
        "in ``net``.")
    setattr(wrapped_reset, _MARK, True)
    _snn_utils.reset = wrapped_reset


def uninstall_reset_hook() -> None:
    """Restore snnTorch's original ``snntorch.utils.reset``."""
    _snn_utils.reset = _original_reset()
