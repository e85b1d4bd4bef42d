"""brf-plugins: balanced resonate-and-fire neurons for PyTorch, snnTorch and Norse.

The framework-free core. The math lives in :mod:`brf_plugins.functional` (one-step updates of the BRF, RF, BHRF,
ALIF and LI neurons) and :mod:`brf_plugins.surrogate` (double/multi-Gaussian surrogates, forward gradient
injection); :mod:`brf_plugins.network` builds the paper's recurrent network; :mod:`brf_plugins.checkpoints`
imports the authors' trained models; :mod:`brf_plugins.metrics` holds the tasks' loss/accuracy rules and SOPs.

Example:
    >>> import torch
    >>> from brf_plugins import RecurrentSNN
    >>> net = RecurrentSNN.from_task("ecg", neuron="brf")
    >>> out = net(torch.rand(100, 2, 4))
    >>> out.readout.shape
    torch.Size([100, 2, 6])
"""

from . import functional, surrogate
from .functional import (DEFAULT_DT, alif_step, bhrf_step, brf_step, divergence_boundary, izhikevich_step,
                         li_step, rf_step)
from .network import LIReadout, RecurrentLayer, RecurrentSNN, SNNOutput
from .surrogate import double_gaussian, multi_gaussian

__version__ = "0.1.0"

__all__ = ["functional", "surrogate", "DEFAULT_DT", "brf_step", "rf_step", "izhikevich_step", "bhrf_step",
           "alif_step", "li_step", "divergence_boundary", "RecurrentLayer", "LIReadout", "RecurrentSNN",
           "SNNOutput", "double_gaussian", "multi_gaussian", "__version__"]
