r"""Recurrent BRF, RF, BHRF and ALIF neurons in the style of ``snn.RLeaky``: the feed-forward neuron on
:math:`I_t = g\,(x_t + R(z_{t-1}))`, ``R`` a dense ``nn.Linear(h, h)`` (``all_to_all=True``) or one-to-one ``V``.

The paper's layer is ``nn.Linear(m, h, bias=False)`` then ``RBRF(h, recurrent_bias=False)``.

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

from typing import Optional

import torch
from torch import nn

from brf_plugins._checks import check_bool, check_positive_int
from brf_plugins.init import constant_tensor
from brf_plugins.functional import ALIFState, BHRFState, BRFState, RFState

from .neurons import ALIF, BHRF, BRF, RF

__all__ = ["RBRF", "RRF", "RBHRF", "RALIF"]


_RECURRENT_ARGS = """
        V: one-to-one recurrent weight (number or ``(num_neurons,)`` tensor), used when ``all_to_all=False``.
        all_to_all: dense recurrent ``nn.Linear(num_neurons, num_neurons)`` (default) or one-to-one ``V``.
        linear_features: ``snn.RLeaky``'s name of the size; must equal ``num_neurons``.
        learn_recurrent, recurrent_bias: train the recurrent weights, give the dense one a bias (both True)."""


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
            if self.num_neurons is None:   # lazy: PyTorch's LazyLinear way, the same Parameter objects later
                self.recurrent = nn.Linear(1, 1, bias=recurrent_bias)
                self.recurrent.weight = nn.UninitializedParameter(requires_grad=learn_recurrent)
                if recurrent_bias:
                    self.recurrent.bias = nn.UninitializedParameter(requires_grad=learn_recurrent)
            else:
                self.recurrent = nn.Linear(self.num_neurons, self.num_neurons, bias=recurrent_bias)
            if not learn_recurrent:
                for param in self.recurrent.parameters():
                    param.requires_grad_(False)
        else:
            if linear_features is not None:
                raise TypeError("When `all_to_all=False`, `linear_features` must not be given: the one-to-one "
                                "weight `V` is used instead.")
            self.linear_features = None
            V = constant_tensor("V", V, self.num_neurons or 1, learnable=True)
            if learn_recurrent:
                self.V = nn.Parameter(V)
            else:
                self.register_buffer("V", V)

    def _after_materialize(self) -> None:
        super()._after_materialize()
        if self.all_to_all and isinstance(self.recurrent.weight, nn.UninitializedParameter):
            n = self.num_neurons
            self.linear_features = self.recurrent.in_features = self.recurrent.out_features = n
            self.recurrent.weight.materialize((n, n))
            if self.recurrent.bias is not None:
                self.recurrent.bias.materialize((n,))
            self.recurrent.reset_parameters()

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

    def __init__(self, num_neurons: Optional[int] = None, *args, V=1.0, all_to_all: bool = True,
                 linear_features: Optional[int] = None, learn_recurrent: bool = True, recurrent_bias: bool = True,
                 **kwargs):
        if num_neurons is None and all_to_all and linear_features is not None:
            num_neurons = linear_features          # snn.RLeaky(beta, linear_features=h): the size
        if num_neurons is None and isinstance(V, torch.Tensor) and V.dim() == 1 and V.numel() > 1:
            num_neurons = V.numel()
        cls_init(self, num_neurons, *args, **kwargs)
        self._init_recurrent(V, all_to_all, linear_features, learn_recurrent, recurrent_bias)

    return __init__


def _recurrent_class(feed_forward: type, state: type) -> type:
    """``R<neuron>``: the feed-forward snnTorch neuron plus the recurrence, its previous spikes a state."""
    name = f"R{feed_forward.__name__}"
    names = ("spk",) + tuple(n for n in feed_forward.state_names if n != "spk")
    doc = f"""Recurrent {feed_forward.__name__} neuron (``snn.RLeaky`` style): :class:`~snntorch_ext.{feed_forward.__name__}`
    driven by ``input_ + R(spk)``{"; the same spikes feed the recurrence and the adaptation" if "spk" in
                                  feed_forward.state_names else ""}.

    Args: those of :class:`~snntorch_ext.{feed_forward.__name__}`, plus""" + _RECURRENT_ARGS + f"""

    Inputs: ``input_, {", ".join(names)}`` (states optional; packed: a :class:`~brf_plugins.functional.{state.__name__}`).
    Outputs: ``{", ".join(names)}``; ``spk`` only with ``init_hidden=True`` and ``output=False``, ``spk, mem`` with
    ``output=True`` (as ``snn.RLeaky``).
    """

    def init_state(self):
        return self.reset_mem()

    init_state.__doc__ = f"Clear the state and return it as ``({', '.join(names)})`` (empty tensors, meaning zeros)."
    init_state.__name__ = f"init_{name.lower()}"

    def extra_repr(self) -> str:
        return f"{super(cls, self).extra_repr()}, {self._recurrent_repr()}"

    cls = type(name, (_Recurrent, feed_forward), {
        "__doc__": doc, "__module__": __name__, "__qualname__": name, "state_names": names,
        "mem_style": ("spk", "u"), "State": state, "__init__": _recurrent_init(feed_forward.__init__),
        init_state.__name__: init_state, "extra_repr": extra_repr})
    return cls


RBRF = _recurrent_class(BRF, BRFState)
RRF = _recurrent_class(RF, RFState)
RBHRF = _recurrent_class(BHRF, BHRFState)
RALIF = _recurrent_class(ALIF, ALIFState)
