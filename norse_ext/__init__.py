"""norse_ext: balanced resonate-and-fire (BRF), RF, BHRF and ALIF neurons for Norse.

Follows Norse's layout: :mod:`norse_ext.functional` holds parameter/state NamedTuples and step functions
(``brf_feed_forward_step(input, state, p, dt)``, ``brf_step(input, state, input_weights, recurrent_weights, p, dt)``,
returning ``(z, new_state)``); :mod:`norse_ext.module` the modules on Norse's base classes (``BRFCell``,
``BRFRecurrentCell``, ``BRF``, ``BRFRecurrent``, and the same for RF, BHRF, ALIF) and the paper's LI readout;
:mod:`norse_ext.network` the paper's network (:func:`build_paper_network`) and the authors' checkpoints
(:func:`from_authors_checkpoint`); :func:`to_nir` (:mod:`norse_ext.export_nir`) the NIR export. The math is
:mod:`brf_plugins.functional`'s.

Defaults to know: ``dt = 0.01`` (the paper's, not Norse's 0.001), and the input current is multiplied by
``input_gain = 1/dt`` so that the neurons train as drop-in replacements of Norse's LIF; ``input_gain=1.0`` is the
paper's equation verbatim (used for the paper network and checkpoints). Spike functions: ``p.method`` is the
paper's ``"double_gaussian"`` (default), ``"multi_gaussian"``, their ``*_fgi`` forms, or any of Norse's threshold
methods (``"super"``, ``"tanh"``, ...) with ``p.alpha``. Tutorial: ``examples/norse_quickstart.ipynb``.

Example:
    >>> import torch
    >>> import norse_ext
    >>> cell = norse_ext.BRFRecurrentCell(4, 32)       # where you had norse.torch.LIFRecurrentCell(4, 32)
    >>> z, state = cell(torch.rand(8, 4))
    >>> z.shape
    torch.Size([8, 32])
"""

from . import functional
from .functional import (METHODS, ALIFFeedForwardState, ALIFParameters, ALIFState, BHRFFeedForwardState, BHRFParameters,
                         BHRFState, BRFFeedForwardState, BRFParameters, BRFState, LIReadoutParameters, LIReadoutState,
                         Normal, RFFeedForwardState, RFParameters, RFState, alif_feed_forward_step, alif_step,
                         bhrf_feed_forward_step, bhrf_step, brf_feed_forward_step, brf_step, resolve_parameters,
                         rf_feed_forward_step, rf_step, threshold)
from .module import (ALIF, BHRF, BRF, RF, ALIFCell, ALIFRecurrent, ALIFRecurrentCell, BHRFCell, BHRFRecurrent,
                     BHRFRecurrentCell, BRFCell, BRFRecurrent, BRFRecurrentCell, LIReadoutCell, LIReadoutLinearCell,
                     RFCell, RFRecurrent, RFRecurrentCell)
from .network import PaperNetwork, build_paper_network, core_options, from_authors_checkpoint
from .export_nir import NIRExportError, install_into_norse, to_nir

install_into_norse()   # Norse's own to_nir then raises for our resonators instead of writing None nodes

__all__ = [
    "functional", "METHODS",
    "BRFParameters", "RFParameters", "BHRFParameters", "ALIFParameters", "LIReadoutParameters", "Normal",
    "BRFFeedForwardState", "BRFState", "RFFeedForwardState", "RFState", "BHRFFeedForwardState", "BHRFState",
    "ALIFFeedForwardState", "ALIFState", "LIReadoutState",
    "brf_feed_forward_step", "brf_step", "rf_feed_forward_step", "rf_step", "bhrf_feed_forward_step", "bhrf_step",
    "alif_feed_forward_step", "alif_step", "threshold", "resolve_parameters",
    "BRFCell", "BRFRecurrentCell", "BRF", "BRFRecurrent",
    "RFCell", "RFRecurrentCell", "RF", "RFRecurrent",
    "BHRFCell", "BHRFRecurrentCell", "BHRF", "BHRFRecurrent",
    "ALIFCell", "ALIFRecurrentCell", "ALIF", "ALIFRecurrent",
    "LIReadoutCell", "LIReadoutLinearCell",
    "PaperNetwork", "build_paper_network", "from_authors_checkpoint", "core_options",
    "to_nir", "NIRExportError",
]
