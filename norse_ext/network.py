r"""The paper's network from Norse parts: :class:`norse_ext.BRFRecurrent` (or RF, BHRF, ALIF; with autapses) and
the readout :class:`norse_ext.LIReadoutLinearCell`, run by the core's :class:`brf_plugins.network.PaperNetwork`. The
recurrent current is one matmul of ``[W_in, W_rec]`` over ``concat(x_t, z_{t-1})``, as the authors' code, so the
float32 spikes equal :class:`brf_plugins.network.RecurrentSNN`'s bit for bit; the input gain is 1.

Example:
    >>> import torch
    >>> import norse_ext
    >>> net = norse_ext.build_paper_network("ecg", neuron="brf")
    >>> out = net(torch.rand(1300, 2, 4))
    >>> out.readout.shape, type(net.hidden).__name__
    (torch.Size([1300, 2, 6]), 'BRFRecurrent')
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

import torch
from torch import nn

from brf_plugins import functional as F
from brf_plugins import network as core
from brf_plugins._checks import check_dt
from brf_plugins.checkpoints import network_from_checkpoint
from brf_plugins.init import xavier_uniform_
from brf_plugins.tasks import TaskConfig

from .functional import LIReadoutState, concat_weights
from .functional import ALIFParameters, BHRFParameters, BRFParameters, LIReadoutParameters, RFParameters
from .module import ALIFRecurrent, BHRFRecurrent, BRFRecurrent, LIReadoutLinearCell, RFRecurrent

__all__ = ["PaperNetwork", "build_paper_network", "from_authors_checkpoint", "AUTHORS_KEYS", "core_options"]

_LAYERS = {"brf": BRFRecurrent, "rf": RFRecurrent, "bhrf": BHRFRecurrent, "alif": ALIFRecurrent}


AUTHORS_KEYS = {
    "hidden.linear.weight": ("hidden.input_weights", "hidden.recurrent_weights"),
    "hidden.omega": "hidden.omega",
    "hidden.b_offset": "hidden.b_offset",
    "hidden.tau_mem": "hidden.tau_mem",
    "hidden.tau_adp": "hidden.tau_adp",
    "out.linear.weight": "out.input_weights",
    "out.linear.bias": "out.bias",
    "out.tau_mem": "out.tau_mem",
}
"""The authors' keys and :class:`PaperNetwork`'s (their ``(h, m + h)`` matrix is the input and recurrent weights
side by side)."""


def core_options(options: dict) -> dict:
    """``options`` in the package's vocabulary (what ``brf-train`` passes) with Norse's names: only the spike
    function differs (``spike_fn`` -> ``method``, which also takes a callable)."""
    return {("method" if key == "spike_fn" else key): value for key, value in options.items()}


class PaperNetwork(core.PaperNetwork):
    r"""The paper's recurrent SNN from Norse modules (module docstring): :math:`z_t, s_t = \mathrm{hidden}(x_t,
    s_{t-1})` on :math:`W[x_t; z_{t-1}]`, then :math:`o_t = \alpha o_{t-1} + (1-\alpha) W_{out} z_t` (spec 1.8).

    Parameters: ``input_size, hidden_size, output_size`` (m, h, C), ``neuron``, the inits (``omega_init``,
    ``b_offset_init``, ``tau_mem_init``, ``tau_adp_init``, ``tau_out_init``) and the core's options in Norse's names
    (``theta`` is ``v_th``, ``method``/``alpha`` the spike function); ``forward(x, state=None, record=False,
    spike_hook=None)`` and the state are the core's, with Norse state types.
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int, neuron: str = "brf", *,
                 omega_init=(5.0, 10.0), b_offset_init=(0.0, 1.0), tau_mem_init=(20.0, 5.0),
                 tau_adp_init=(200.0, 50.0), tau_out_init=(20.0, 5.0), dt: float = F.DEFAULT_DT,
                 theta: Optional[float] = None, gamma: float = F.DEFAULT_GAMMA, method="double_gaussian",
                 alpha: float = 100.0, rf_reset: str = "none", bhrf_variant: str = "code",
                 divergence_boundary: bool = True, refractory: bool = True, smooth_reset: bool = True,
                 learn_omega: bool = True, learn_b_offset: bool = True, input_gain: float = 1.0,
                 generator: Optional[torch.Generator] = None):
        super().__init__()
        self._set_sizes(input_size, hidden_size, output_size, neuron)
        dt = check_dt(dt)
        m, h = self.input_size, self.hidden_size
        weight = torch.empty(h, m + h)
        xavier_uniform_(weight, generator=generator)  # over the whole concatenated matrix, as the paper
        if theta is None:
            theta = F.ALIF_THETA if neuron == "alif" else F.DEFAULT_THETA
        common = dict(v_th=theta, input_gain=input_gain, method=method, alpha=alpha)
        if neuron == "alif":
            p = ALIFParameters(tau_mem=tau_mem_init, tau_adp=tau_adp_init, **common)
            learn = {}
        else:
            resonator = dict(omega=omega_init, b_offset=b_offset_init, **common)
            if neuron == "brf":
                p = BRFParameters(gamma=gamma, divergence_boundary=bool(divergence_boundary),
                                  refractory=bool(refractory), smooth_reset=bool(smooth_reset), **resonator)
            elif neuron == "rf":
                p = RFParameters(reset=rf_reset, **resonator)
            else:
                p = BHRFParameters(gamma=gamma, variant=bhrf_variant, **resonator)
            learn = dict(learn_omega=learn_omega, learn_b_offset=learn_b_offset)
        self.hidden = _LAYERS[neuron](m, h, p, input_weights=nn.Parameter(weight[:, :m].clone()),
                                      recurrent_weights=nn.Parameter(weight[:, m:].clone()), autapses=True, dt=dt,
                                      generator=generator, **learn)
        self.out = LIReadoutLinearCell(h, self.output_size, LIReadoutParameters(tau_out_init),
                                       generator=generator)

    AUTHORS_KEYS = AUTHORS_KEYS

    def neuron_config(self):
        return self.hidden.neuron_config()

    def neuron_parameters(self) -> tuple:
        return self.hidden.neuron_parameters()

    def recurrent_weight(self) -> torch.Tensor:
        return concat_weights(self.hidden.input_weights, self.hidden.recurrent_weights)

    def readout_parameters(self):
        return self.out.input_weights, self.out.bias, self.out.tau_mem

    def pack_state(self, hidden: tuple, o: torch.Tensor):
        """The core's hidden state ``(z, u, v[, q])`` as this layer's Norse state (e.g. :class:`norse_ext.BRFState`
        ``(z, v_re, v_im, q)``: the same tensors in the same order, Norse-side names) and the readout's."""
        return self.hidden._kind.state(*hidden), LIReadoutState(o)

    def unpack_state(self, state):
        hidden, readout = super().unpack_state(state)
        if readout is not None and not isinstance(readout, LIReadoutState):
            raise TypeError(f"`state[1]` must be a LIReadoutState(o), got {type(readout).__name__}.")
        ours = self.hidden._kind.state
        if isinstance(hidden, ours):
            hidden = self.neuron_config().state_type(*hidden)   # positionally the core's (z, u, v[, q])
        elif hasattr(hidden, "_fields") and type(hidden).__module__ == ours.__module__:
            raise ValueError(f"`state[0]` is a {type(hidden).__name__} but this {self.neuron!r} network needs a "
                             f"{ours.__name__}({', '.join(ours._fields)}): it comes from another neuron kind. Pass "
                             f"None to start from zeros.")
        return hidden, None if readout is None else readout.o


def build_paper_network(task_or_sizes: Union[str, TaskConfig, Sequence[int]], neuron: str = "brf", *,
                        generator: Optional[torch.Generator] = None, **kwargs) -> PaperNetwork:
    """The paper's network for a task (``"smnist"``, ``"psmnist"``, ``"ecg"``, ``"shd"`` or a
    :class:`brf_plugins.tasks.TaskConfig`) with its published initialisation, or for sizes ``(m, h, C)`` with the
    defaults of :class:`PaperNetwork`.

    ``kwargs`` override any :class:`PaperNetwork` option (e.g. ``omega_init=(3.0, 5.0)``). The recipe is the same
    as :meth:`brf_plugins.network.RecurrentSNN.from_task`'s (same values for the same ``generator``).

    Example:
        >>> import torch, norse_ext
        >>> net = norse_ext.build_paper_network((4, 16, 3), neuron="rf")
        >>> out = net(torch.rand(20, 5, 4), record=True)
        >>> out.hidden_spikes.shape, out.readout.shape
        (torch.Size([20, 5, 16]), torch.Size([20, 5, 3]))
    """
    sizes, options = core.paper_network_args(task_or_sizes, neuron, kwargs)
    return PaperNetwork(*sizes, neuron, generator=generator, **options)


def from_authors_checkpoint(path: Union[str, Path], neuron: Optional[str] = None, *, dt: float = 0.01,
                            map_location: Union[str, torch.device] = "cpu", **kwargs) -> PaperNetwork:
    """A :class:`PaperNetwork` with the weights of one of the authors' released checkpoints.

    ``neuron`` (``"brf"``, ``"rf"``, ``"alif"``; BHRF has no released model) is inferred from the file when
    omitted, as by :func:`brf_plugins.checkpoints.load_authors_checkpoint`, which this mirrors: same checks, same
    model.

    Example:
        >>> import norse_ext
        >>> net = norse_ext.from_authors_checkpoint("../shared/data/reference_checkpoints/ecg_brf.pt")  # doctest: +SKIP
        >>> net.neuron, net.hidden_size                                                                  # doctest: +SKIP
        ('brf', 36)
    """
    return network_from_checkpoint(PaperNetwork, path, neuron, dt=dt, map_location=map_location, **kwargs)
