"""BRF, RF, BHRF, ALIF neurons and the LI readout as native snnTorch neurons (subclasses of
:class:`snntorch.SpikingNeuron`; every update is :func:`brf_plugins.neurons.neuron_step`). Recurrent ``R*`` classes
in the style of ``snn.RLeaky``; surrogates in :mod:`snntorch_ext.surrogate`; the paper network
(:func:`build_paper_network`, :func:`from_authors_checkpoint`). Importing it makes ``snntorch.utils.reset(net)``
clear their states (:mod:`snntorch_ext.utils`).

Example (snnTorch's tutorial network, ``snn.Leaky`` swapped for ``BRF``):
    >>> import torch, torch.nn as nn
    >>> import snntorch_ext as snnx
    >>> fc1, lif1, fc2, lif2 = nn.Linear(784, 100), snnx.BRF(100), nn.Linear(100, 10), snnx.BRF(10)
    >>> mem1, mem2 = lif1.init_leaky(), lif2.init_leaky()
    >>> for step in range(25):
    ...     spk1, mem1 = lif1(fc1(torch.rand(32, 784)), mem1)      # mem is u; v and q stay in the module
    ...     spk2, mem2 = lif2(fc2(spk1), mem2)
    >>> spk2.shape
    torch.Size([32, 10])
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
