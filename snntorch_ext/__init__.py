"""Balanced resonate-and-fire (BRF) neurons as native snnTorch neurons.

Feed-forward neurons (input: the current of one step, ``(batch, num_neurons)``, like ``snn.Leaky``):
:class:`BRF`, :class:`RF`, :class:`BHRF`, :class:`ALIF`, and the :class:`LI` readout. Recurrent neurons in the
style of ``snn.RLeaky``: :class:`RBRF`, :class:`RRF`, :class:`RBHRF`, :class:`RALIF`. Surrogates:
:mod:`snntorch_ext.surrogate` (``double_gaussian()``, ``multi_gaussian()``). The paper's network:
:func:`build_paper_network`, :func:`from_authors_checkpoint`.

All of them subclass :class:`snntorch.SpikingNeuron` and call :mod:`brf_plugins.functional` for every update.
Importing this package makes ``snntorch.utils.reset(net)`` clear their states too (see
:mod:`snntorch_ext.utils`).

Example (snnTorch's tutorial network with ``snn.Leaky`` swapped for ``BRF``; nothing else changes):
    >>> import torch, torch.nn as nn
    >>> import snntorch_ext as snnx
    >>> fc1, lif1 = nn.Linear(784, 100), snnx.BRF(100)
    >>> fc2, lif2 = nn.Linear(100, 10), snnx.BRF(10)
    >>> mem1, mem2 = lif1.init_leaky(), lif2.init_leaky()
    >>> x = torch.rand(32, 784)
    >>> for step in range(25):
    ...     spk1, mem1 = lif1(fc1(x), mem1)      # mem is the real membrane u; v and q stay in the module
    ...     spk2, mem2 = lif2(fc2(spk1), mem2)
    >>> spk2.shape
    torch.Size([32, 10])

The full state of a BRF is ``(u, v, q)``; pass it explicitly as ``spk, u, v, q = brf(cur, u, v, q)`` or packed
as ``spk, state = brf(cur, state)`` (a :class:`BRFFeedForwardState`; recurrent neurons pack ``(z, u, v, q)`` in a
:class:`BRFState`, the package's state types, shared with the core and Norse).
"""

from . import surrogate, utils
from ._base import StatefulNeuron
from .network import AUTHORS_KEYS, PaperNetwork, build_paper_network, core_options, from_authors_checkpoint
from brf_plugins.functional import ALIFState, BHRFState, BRFState, RFState
from brf_plugins.neurons import BHRFFeedForwardState, BRFFeedForwardState, RFFeedForwardState

from .neurons import ALIF, BHRF, BRF, LI, RF, RF_RESET_MECHANISMS, LIState
from .recurrent import RALIF, RBHRF, RBRF, RRF
from .surrogate import double_gaussian, multi_gaussian
from .utils import NIRExportError, install_hooks, install_reset_hook, reset, uninstall_hooks, uninstall_reset_hook

install_hooks()

__all__ = ["BRF", "RF", "BHRF", "ALIF", "LI", "RBRF", "RRF", "RBHRF", "RALIF", "StatefulNeuron",
           "RF_RESET_MECHANISMS", "surrogate", "double_gaussian", "multi_gaussian", "utils", "reset",
           "install_reset_hook", "uninstall_reset_hook", "install_hooks", "uninstall_hooks", "NIRExportError", "PaperNetwork", "build_paper_network",
           "from_authors_checkpoint", "core_options", "AUTHORS_KEYS", "BRFState", "RFState", "BHRFState",
           "ALIFState", "LIState", "BRFFeedForwardState", "RFFeedForwardState", "BHRFFeedForwardState"]
