r"""The paper's network with snnTorch neurons, run by the core's :class:`brf_plugins.network.PaperNetwork`
(checks, execution plan, whole-sequence kernels; the same random draws as the core's for the same seed):

.. code-block:: python

    cur = self.fc(torch.cat((x_t, spk), dim=1))    # nn.Linear(m + h, h, bias=False)
    spk, u, v, q = self.hidden(cur, u, v, q)        # snntorch_ext.BRF (or RF, BHRF, ALIF), input_gain=1.0
    mem = self.readout(self.fc_out(spk), mem)       # nn.Linear(h, C, bias=False) + snntorch_ext.LI

Example:
    >>> import torch
    >>> from snntorch_ext import build_paper_network
    >>> out = build_paper_network("ecg", neuron="brf")(torch.rand(100, 2, 4))
    >>> out.readout.shape, out.spike_count.shape
    (torch.Size([100, 2, 6]), torch.Size([]))
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple, Union

import torch
from torch import nn

from brf_plugins import functional as F
from brf_plugins import network as core
from brf_plugins._checks import check_choice
from brf_plugins.checkpoints import network_from_checkpoint
from brf_plugins.init import Init, xavier_uniform_
from brf_plugins.tasks import TaskConfig

from .neurons import ALIF, BHRF, BRF, LI, RF, RF_RESET_MECHANISMS

__all__ = ["PaperNetwork", "build_paper_network", "from_authors_checkpoint", "AUTHORS_KEYS", "CORE_OPTIONS",
           "core_options"]

AUTHORS_KEYS = {
    "hidden.linear.weight": "fc.weight",
    "hidden.omega": "hidden.omega",
    "hidden.b_offset": "hidden.b_offset",
    "hidden.tau_mem": "hidden.tau_mem",
    "hidden.tau_adp": "hidden.tau_adp",
    "out.linear.weight": "fc_out.weight",
    "out.tau_mem": "readout.tau_mem",
}
"""The authors' (and the core's) state-dict keys and the matching keys of :class:`PaperNetwork`."""

CORE_OPTIONS = {"theta": "threshold", "spike_fn": "spike_grad", "rf_reset": "reset_mechanism",
                "bhrf_variant": "variant"}
"""The package's option names (:class:`brf_plugins.network.RecurrentLayer`'s, what ``brf-train`` passes) and
snnTorch's, for :func:`core_options`."""


def core_options(options: dict) -> dict:
    """``options`` in the package's vocabulary translated to :class:`PaperNetwork`'s snnTorch names (the RF reset
    values too: ``"soft"`` is snnTorch's ``"subtract"``, ``"hard"`` its ``"zero"``)."""
    out = {CORE_OPTIONS.get(key, key): value for key, value in options.items()}
    if "reset_mechanism" in out and "rf_reset" in options:
        reset = check_choice("rf_reset", options["rf_reset"], tuple(RF_RESET_MECHANISMS.values()))
        out["reset_mechanism"] = {core: name for name, core in RF_RESET_MECHANISMS.items()}[reset]
    return out


class PaperNetwork(core.PaperNetwork):
    """The paper's recurrent network from snnTorch parts (module docstring); ``forward`` and the state are the
    core's (:class:`brf_plugins.network.PaperNetwork`).

    Args: ``input_size, hidden_size, output_size`` (m, h, C), ``neuron`` (``"brf"``, ``"rf"``, ``"bhrf"``,
    ``"alif"``), the inits ``omega_init``, ``b_offset_init``, ``tau_mem_init``, ``tau_adp_init``, ``tau_out_init``
    (the core's), and the neurons' own arguments (:class:`~snntorch_ext.BRF` etc.) in snnTorch's names.
    """

    AUTHORS_KEYS = AUTHORS_KEYS

    def __init__(self, input_size: int, hidden_size: int, output_size: int, neuron: str = "brf", *,
                 omega_init: Init = (5.0, 10.0), b_offset_init: Init = (0.0, 1.0),
                 tau_mem_init: Tuple[float, float] = (20.0, 5.0), tau_adp_init: Tuple[float, float] = (200.0, 50.0),
                 tau_out_init: Tuple[float, float] = (20.0, 5.0), dt: float = F.DEFAULT_DT,
                 threshold: Optional[float] = None, gamma: float = F.DEFAULT_GAMMA, input_gain: float = 1.0,
                 spike_grad=None, reset_mechanism: str = "none", variant: str = "code",
                 divergence_boundary: bool = True, refractory: bool = True, smooth_reset: bool = True,
                 learn_omega: bool = True, learn_b_offset: bool = True,
                 generator: Optional[torch.Generator] = None):
        super().__init__()
        self._set_sizes(input_size, hidden_size, output_size, neuron)
        # Same modules and random draws, in the same order, as brf_plugins.network.RecurrentSNN.
        self.fc = nn.Linear(input_size + hidden_size, hidden_size, bias=False)
        xavier_uniform_(self.fc.weight, generator=generator)
        common = dict(spike_grad=spike_grad, input_gain=input_gain, generator=generator)
        if threshold is not None:
            common["threshold"] = threshold
        resonator = dict(dt=dt, learn_omega=learn_omega, learn_b_offset=learn_b_offset, **common)
        if neuron == "alif":
            self.hidden = ALIF(hidden_size, tau_mem_init, tau_adp_init, **common)
        elif neuron == "brf":
            self.hidden = BRF(hidden_size, omega_init, b_offset_init, gamma=gamma,
                              divergence_boundary=divergence_boundary, refractory=refractory,
                              smooth_reset=smooth_reset, **resonator)
        elif neuron == "rf":
            self.hidden = RF(hidden_size, omega_init, b_offset_init, reset_mechanism=reset_mechanism, **resonator)
        else:
            self.hidden = BHRF(hidden_size, omega_init, b_offset_init, gamma=gamma, variant=variant, **resonator)
        self.fc_out = nn.Linear(hidden_size, output_size, bias=False)
        xavier_uniform_(self.fc_out.weight, generator=generator)
        self.readout = LI(output_size, tau_out_init, generator=generator)

    def neuron_config(self):
        return self.hidden.neuron_config()

    def neuron_parameters(self) -> tuple:
        return self.hidden.neuron_parameters()

    def recurrent_weight(self) -> torch.Tensor:
        return self.fc.weight

    def readout_parameters(self):
        return self.fc_out.weight, self.fc_out.bias, self.readout.tau_mem


def build_paper_network(task_or_sizes: Union[str, TaskConfig, Tuple[int, int, int]], neuron: str = "brf",
                        **kwargs) -> PaperNetwork:
    """The paper's network for a task (``"smnist"``, ``"psmnist"``, ``"ecg"``, ``"shd"`` or a
    :class:`~brf_plugins.tasks.TaskConfig`) with its published initialisation, or for ``(m, h, C)`` sizes with
    the defaults of :class:`PaperNetwork`. ``kwargs`` override (see :class:`PaperNetwork`).

    Example:
        >>> from snntorch_ext import build_paper_network
        >>> build_paper_network((4, 36, 6), neuron="alif").hidden
        ALIF(36, adaptation=1.8)
    """
    sizes, options = core.paper_network_args(task_or_sizes, neuron, kwargs)
    return PaperNetwork(*sizes, neuron, **options)


def from_authors_checkpoint(path: Union[str, Path], neuron: Optional[str] = None, *, dt: float = F.DEFAULT_DT,
                            map_location: Union[str, torch.device] = "cpu", **kwargs) -> PaperNetwork:
    """A :class:`PaperNetwork` holding a released checkpoint of the paper's authors.

    Args:
        path: the ``.pt`` file (e.g. ``ecg_brf.pt``).
        neuron: ``"brf"``, ``"rf"``, ``"bhrf"`` or ``"alif"``; inferred from the keys and the file name if omitted
            (BRF and RF files have the same keys: ``*_rf*`` names are RF).
        dt: the resonators' step (0.01 in every released model).
        map_location: device of the returned network.
        **kwargs: further :class:`PaperNetwork` options (e.g. ``spike_grad``, ablations).

    Example:
        >>> net = from_authors_checkpoint("../shared/data/reference_checkpoints/ecg_brf.pt")   # doctest: +SKIP
    """
    return network_from_checkpoint(PaperNetwork, path, neuron, dt=dt, map_location=map_location, **kwargs)
