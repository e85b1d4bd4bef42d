r"""Recurrent BRF, RF, BHRF and ALIF neurons in the style of ``snn.RLeaky``.

The neuron owns its recurrent connection and keeps its previous spikes as a state:

.. math:: I_t = g\,\big(x_t + R(z_{t-1})\big)

where ``x_t`` is the input current (e.g. ``nn.Linear`` of the layer's input), ``g`` the input gain and ``R``
either a dense ``nn.Linear(num_neurons, num_neurons)`` (``all_to_all=True``, default) or the one-to-one weights
``V`` (``all_to_all=False``: ``R(z) = V * z``). The update is then the feed-forward neuron's (one core call).

``spk, u, v, q = rbrf(cur, spk, u, v, q)`` (as ``spk, mem = rleaky(cur, spk, mem)``); with ``init_hidden=True``
``spk = rbrf(cur)``.

The paper's layer (one bias-free linear map of ``concat(x_t, z_{t-1})``) is
``nn.Linear(m, h, bias=False)`` followed by ``RBRF(h, recurrent_bias=False)``: the two weight blocks are the input
and recurrent columns of the paper's matrix. (:func:`snntorch_ext.build_paper_network` concatenates instead, to
reproduce the authors' floating-point summation order bit for bit.)

Example:
    >>> import torch, torch.nn as nn
    >>> from snntorch_ext import RBRF
    >>> fc, rbrf = nn.Linear(4, 8), RBRF(8)
    >>> spk, u, v, q = rbrf.init_rbrf()
    >>> for step in range(5):
    ...     spk, u, v, q = rbrf(fc(torch.rand(2, 4)), spk, u, v, q)
    >>> spk.shape
    torch.Size([2, 8])
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import nn

from brf_plugins._checks import check_positive_int

from ._base import check_bool, scalar_or_per_neuron
from .neurons import ALIF, BHRF, BRF, RF

__all__ = ["RBRF", "RRF", "RBHRF", "RALIF", "RBRFState", "RRFState", "RBHRFState"]


class RBRFState(NamedTuple):
    """State of :class:`RBRF`: previous spikes ``spk``, membrane ``u``, ``v``, refractory variable ``q``."""

    spk: torch.Tensor
    u: torch.Tensor
    v: torch.Tensor
    q: torch.Tensor


class RRFState(NamedTuple):
    """State of :class:`RRF`: previous spikes ``spk``, membrane ``u``, ``v``."""

    spk: torch.Tensor
    u: torch.Tensor
    v: torch.Tensor


class RBHRFState(NamedTuple):
    """State of :class:`RBHRF`: previous spikes ``spk``, velocity ``u``, position ``v``, refractory ``q``."""

    spk: torch.Tensor
    u: torch.Tensor
    v: torch.Tensor
    q: torch.Tensor

_RECURRENT_ARGS = """
        V: one-to-one recurrent weight (number or ``(num_neurons,)`` tensor), used when ``all_to_all=False``.
        all_to_all: dense recurrent ``nn.Linear(num_neurons, num_neurons)`` (default) or one-to-one ``V``.
        linear_features: size of the dense recurrence; must equal ``num_neurons`` (default), accepted for
            ``snn.RLeaky`` compatibility.
        learn_recurrent: train the recurrent weights (default True, as ``snn.RLeaky``).
        recurrent_bias: bias of the dense recurrence (default True, as ``snn.RLeaky``'s ``nn.Linear``).
        **kwargs: the arguments of the feed-forward neuron."""


class _Recurrent:
    """The recurrent connection of ``snn.RLeaky`` (dense or one-to-one), for our neurons."""

    def _init_recurrent(self, V, all_to_all: bool, linear_features: Optional[int], learn_recurrent: bool,
                        recurrent_bias: bool) -> None:
        self.all_to_all = check_bool("all_to_all", all_to_all)
        self.learn_recurrent = check_bool("learn_recurrent", learn_recurrent)
        check_bool("recurrent_bias", recurrent_bias)
        if all_to_all:
            if linear_features is not None and check_positive_int("linear_features", linear_features) \
                    != self.num_neurons:
                raise ValueError(f"`linear_features` ({linear_features}) must equal num_neurons "
                                 f"({self.num_neurons}): the recurrence maps the layer's spikes onto itself.")
            self.linear_features = self.num_neurons
            self.recurrent = nn.Linear(self.num_neurons, self.num_neurons, bias=recurrent_bias)
            if not learn_recurrent:
                for param in self.recurrent.parameters():
                    param.requires_grad_(False)
        else:
            if linear_features is not None:
                raise TypeError("When `all_to_all=False`, `linear_features` must not be given: the one-to-one "
                                "weight `V` is used instead.")
            self.linear_features = None
            V = scalar_or_per_neuron("V", V, self.num_neurons, learnable=True)
            if learn_recurrent:
                self.V = nn.Parameter(V)
            else:
                self.register_buffer("V", V)

    def _current(self, input_: torch.Tensor, states: tuple) -> torch.Tensor:
        spk = states[0]
        return input_ + (self.recurrent(spk) if self.all_to_all else spk * self.V)

    def _core_sequence(self, input_: torch.Tensor, given: tuple):
        # The recurrence feeds every step's spikes back: a step loop, not a feed-forward sequence.
        return self._forward_sequence(input_, given)

    def _recurrent_repr(self) -> str:
        return "all_to_all=True" if self.all_to_all else "all_to_all=False"


def _recurrent_init(cls_init):
    """The constructor of a recurrent class: the feed-forward one plus the recurrence."""

    def __init__(self, num_neurons: int, *args, V=1.0, all_to_all: bool = True, linear_features: Optional[int] = None,
                 learn_recurrent: bool = True, recurrent_bias: bool = True, **kwargs):
        cls_init(self, num_neurons, *args, **kwargs)
        self._init_recurrent(V, all_to_all, linear_features, learn_recurrent, recurrent_bias)

    return __init__


class RBRF(_Recurrent, BRF):
    __doc__ = """Recurrent BRF neuron (``snn.RLeaky`` style): :class:`~snntorch_ext.BRF` driven by
    ``input_ + R(spk)``.

    Args: those of :class:`~snntorch_ext.BRF`, plus""" + _RECURRENT_ARGS + """

    Inputs: ``input_, spk, u, v, q`` (states optional). Outputs: ``spk, u, v, q``; ``spk`` only with
    ``init_hidden=True`` and ``output=False``.
    """

    state_names = ("spk", "u", "v", "q")
    mem_style = ("spk", "u")
    State = RBRFState
    __init__ = _recurrent_init(BRF.__init__)

    def forward(self, input_: torch.Tensor, spk: Optional[torch.Tensor] = None, u: Optional[torch.Tensor] = None,
                v: Optional[torch.Tensor] = None, q: Optional[torch.Tensor] = None):
        return self._forward(input_, (spk, u, v, q))

    def forward_sequence(self, input_: torch.Tensor, spk: Optional[torch.Tensor] = None,
                         u: Optional[torch.Tensor] = None, v: Optional[torch.Tensor] = None,
                         q: Optional[torch.Tensor] = None):
        """Step through a time-first ``(T, batch, num_neurons)`` input. Returns ``spk_rec, spk, u, v, q``."""
        return self._forward_sequence(input_, (spk, u, v, q))

    def init_rbrf(self):
        """Clear the state and return it as ``(spk, u, v, q)`` (empty tensors, meaning zeros)."""
        return self.reset_mem()

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self._recurrent_repr()}"


class RRF(_Recurrent, RF):
    __doc__ = """Recurrent RF neuron (``snn.RLeaky`` style): :class:`~snntorch_ext.RF` driven by
    ``input_ + R(spk)``.

    Args: those of :class:`~snntorch_ext.RF`, plus""" + _RECURRENT_ARGS + """

    Inputs: ``input_, spk, u, v``. Outputs: ``spk, u, v``.
    """

    state_names = ("spk", "u", "v")
    mem_style = ("spk", "u")
    State = RRFState
    __init__ = _recurrent_init(RF.__init__)

    def forward(self, input_: torch.Tensor, spk: Optional[torch.Tensor] = None, u: Optional[torch.Tensor] = None,
                v: Optional[torch.Tensor] = None):
        return self._forward(input_, (spk, u, v))

    def forward_sequence(self, input_: torch.Tensor, spk: Optional[torch.Tensor] = None,
                         u: Optional[torch.Tensor] = None, v: Optional[torch.Tensor] = None):
        """Step through a time-first ``(T, batch, num_neurons)`` input. Returns ``spk_rec, spk, u, v``."""
        return self._forward_sequence(input_, (spk, u, v))

    def init_rrf(self):
        """Clear the state and return it as ``(spk, u, v)`` (empty tensors, meaning zeros)."""
        return self.reset_mem()

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self._recurrent_repr()}"


class RBHRF(_Recurrent, BHRF):
    __doc__ = """Recurrent BHRF neuron (``snn.RLeaky`` style): :class:`~snntorch_ext.BHRF` driven by
    ``input_ + R(spk)``.

    Args: those of :class:`~snntorch_ext.BHRF`, plus""" + _RECURRENT_ARGS + """

    Inputs: ``input_, spk, u, v, q``. Outputs: ``spk, u, v, q``.
    """

    state_names = ("spk", "u", "v", "q")
    mem_style = ("spk", "u")
    State = RBHRFState
    __init__ = _recurrent_init(BHRF.__init__)

    def forward(self, input_: torch.Tensor, spk: Optional[torch.Tensor] = None, u: Optional[torch.Tensor] = None,
                v: Optional[torch.Tensor] = None, q: Optional[torch.Tensor] = None):
        return self._forward(input_, (spk, u, v, q))

    def forward_sequence(self, input_: torch.Tensor, spk: Optional[torch.Tensor] = None,
                         u: Optional[torch.Tensor] = None, v: Optional[torch.Tensor] = None,
                         q: Optional[torch.Tensor] = None):
        """Step through a time-first ``(T, batch, num_neurons)`` input. Returns ``spk_rec, spk, u, v, q``."""
        return self._forward_sequence(input_, (spk, u, v, q))

    def init_rbhrf(self):
        """Clear the state and return it as ``(spk, u, v, q)`` (empty tensors, meaning zeros)."""
        return self.reset_mem()

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self._recurrent_repr()}"


class RALIF(_Recurrent, ALIF):
    __doc__ = """Recurrent ALIF neuron (``snn.RLeaky`` style): :class:`~snntorch_ext.ALIF` driven by
    ``input_ + R(spk)``; the same spike state feeds the recurrence and the adaptation.

    Args: those of :class:`~snntorch_ext.ALIF`, plus""" + _RECURRENT_ARGS + """

    Inputs: ``input_, spk, u, a``. Outputs: ``spk, u, a``.
    """

    __init__ = _recurrent_init(ALIF.__init__)

    def init_ralif(self):
        """Clear the state and return it as ``(spk, u, a)`` (empty tensors, meaning zeros)."""
        return self.reset_mem()

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self._recurrent_repr()}"
