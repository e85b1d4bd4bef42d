r"""BRF, RF, BHRF and ALIF neurons as Norse modules on Norse's base classes, and the paper's LI readout.

Each kind in Norse's four shapes: ``BRFCell`` (``SNNCell``, one step of a current), ``BRFRecurrentCell``
(``SNNRecurrentCell``, own input and recurrent weights), ``BRF`` (``SNN``, ``(T, B, h)`` currents), ``BRFRecurrent``
(``SNNRecurrent``); likewise ``RF*``, ``BHRF*``, ``ALIF*``, made from one description per kind
(:data:`brf_plugins.neurons.KINDS`). Each takes ``(p, **kwargs)`` after its sizes, as Norse's do; ``state=None``
starts from zeros. Unlike Norse's LIF, the per-neuron parameters are ``nn.Parameter`` s (``learn_omega=False`` etc.
makes them buffers; ``p`` may give ranges to draw them from), ``dt`` is 0.01 and the current is scaled by
``p.input_gain`` (:mod:`norse_ext.functional`).

Example:
    >>> import torch
    >>> import norse.torch as norse
    >>> from norse_ext import BRFCell
    >>> model = norse.SequentialState(torch.nn.Linear(4, 32), BRFCell(32), norse.LILinearCell(32, 2))
    >>> state = None
    >>> for x in torch.rand(50, 8, 4):          # (T, B, m)
    ...     out, state = model(x, state)
    >>> out.shape
    torch.Size([8, 2])
"""

from __future__ import annotations

import math
from typing import Callable, Dict, NamedTuple, Optional

import torch
from norse.torch.module.snn import SNN, SNNCell, SNNRecurrent, SNNRecurrentCell, _merge_states
from torch.nn.modules.lazy import LazyModuleMixin

from brf_plugins._checks import check_dt, check_positive_int
from brf_plugins.init import check_brf_damping, materialize_per_neuron, register_per_neuron, xavier_uniform_
from brf_plugins.neurons import KINDS

from . import functional as nf
from .functional import LIReadoutParameters, LIReadoutState

__all__ = [
    "BRFCell", "BRFRecurrentCell", "BRF", "BRFRecurrent",
    "RFCell", "RFRecurrentCell", "RF", "RFRecurrent",
    "BHRFCell", "BHRFRecurrentCell", "BHRF", "BHRFRecurrent",
    "ALIFCell", "ALIFRecurrentCell", "ALIF", "ALIFRecurrent",
    "LIReadoutCell", "LIReadoutLinearCell",
]


class _Kind(NamedTuple):
    """Everything that differs between neuron models."""

    name: str
    params: type
    names: tuple                 # per-neuron parameters registered on the module
    ff_state: type
    state: type
    ff_step: Callable
    step: Callable
    integral: Callable           # feed-forward whole sequence


_KINDS = {name: _Kind(name, nf._PARAMETERS_OF[name], KINDS[name].params, nf.STATES[name][1], nf.STATES[name][0],
                      getattr(nf, f"{name}_feed_forward_step"), getattr(nf, f"{name}_step"),
                      getattr(nf, f"{name}_feed_forward_integral"))
          for name in nf._PARAMETERS_OF}


def _as_parameters(p, kind: _Kind, owner: str):
    if p is None:
        return kind.params()
    if not isinstance(p, kind.params):
        raise TypeError(f"{owner} takes p={kind.params.__name__}(...), got {type(p).__name__}. Its fields: "
                        f"{', '.join(kind.params._fields)}.")
    return p


def _zeros(shape, like: torch.Tensor, n: int):
    return tuple(torch.zeros(shape, dtype=like.dtype, device=like.device) for _ in range(n))


class _NeuronMixin:
    """Registers the per-neuron parameters and serves ``p`` with them (put before Norse's base class)."""

    _kind: _Kind = None

    @property
    def p(self):
        """The neuron parameters, with the module's live per-neuron tensors."""
        static = self._static_p
        live = {name: getattr(self, name) for name in self._kind.names}
        # positionally, in field order: torch.compile's tracer mis-counts the items of NamedTuple._replace here
        return type(static)(*(live.get(field, value) for field, value in zip(static._fields, static)))

    @p.setter
    def p(self, value):
        self._static_p = value

    @classmethod
    def _learn_flags(cls, kwargs: dict) -> Dict[str, bool]:
        """``learn_<parameter>`` keywords -> ``{parameter: flag}``; any other keyword is an error naming the
        class and its accepted keywords."""
        learn = {name: bool(kwargs.pop(f"learn_{name}", True)) for name in cls._kind.names}
        unknown = sorted(set(kwargs) - ({"record_states"} if "record_states" in cls._keywords else set()))
        if unknown:
            accepted = ", ".join(f"learn_{n}" for n in cls._kind.names)
            raise TypeError(f"{cls.__name__} got unexpected keyword argument(s) {', '.join(unknown)}; "
                            f"it takes p={cls._kind.params.__name__}(...) for the neuron parameters, and "
                            f"{cls._keywords}, {accepted}, generator.")
        return learn

    def _setup_neuron(self, size: Optional[int], learn: Dict[str, bool], generator, lazy: bool = False) -> None:
        """Register the per-neuron parameters for ``size`` neurons, or ``lazy`` ones (:meth:`initialize_parameters`)."""
        p = _plain_constants(self._static_p)
        nf._check_choices(p)
        self._lazy_specs = ({name: getattr(p, name) for name in self._kind.names}, generator) if lazy else None
        resolved = None if lazy else nf.resolve_parameters(p, size, self.dt, generator=generator)
        for name in self._kind.names:
            register_per_neuron(self, name, None if lazy else getattr(resolved, name), learn.get(name, True))
        if self._kind.name == "brf" and size is not None:
            check_brf_damping(self.omega, self.b_offset, self.dt)
        self._static_p = p._replace(**{name: None for name in self._kind.names})

    def neuron_config(self):
        """The core :class:`brf_plugins.neurons.NeuronConfig` of this module."""
        return nf.neuron_config(self._static_p, self.dt)

    def neuron_parameters(self) -> tuple:
        return tuple(getattr(self, name) for name in self._kind.names)

    def _neuron_repr(self) -> str:
        p = self._static_p
        shown = [f"{k}={getattr(p, k)!r}" for k in p._fields if k not in self._kind.names + ("input_gain",)]
        sizes = ", ".join(f"{n}: {_shape_text(getattr(self, n))}" for n in self._kind.names)
        return f"dt={self.dt}, input_gain={nf.input_gain(p, self.dt):g}, {', '.join(shown)} ({sizes})"


def _ff_size(hidden_size, p):
    """``hidden_size`` may be omitted when ``p`` holds numbers or tensors; a positional ``p`` is accepted too."""
    if hidden_size is not None and not isinstance(hidden_size, int) and hasattr(hidden_size, "_fields"):
        return None, hidden_size  # BRFCell(BRFParameters(...)) as Norse's LIFCell(p)
    if hidden_size is not None:
        hidden_size = check_positive_int("hidden_size", hidden_size)
    return hidden_size, p


def _plain_constants(p):
    """``p`` with constant 0-dim tensors in ``v_th`` and ``alpha`` (Norse's habit) as numbers, which the fused and
    compiled kernels take."""
    changes = {}
    for name in ("v_th", "alpha"):
        value = getattr(p, name, None)
        if isinstance(value, torch.Tensor) and value.dim() == 0 and not value.requires_grad \
                and torch.is_floating_point(value) and value.device.type == "cpu":
            changes[name] = float(value)
    return p._replace(**changes) if changes else p


def _shape_text(value) -> str:
    if isinstance(value, torch.nn.parameter.UninitializedTensorMixin):
        return "inferred on the first call"
    return str(tuple(value.shape))


def _zero_state(module, input_tensor: torch.Tensor, *, sequence: bool, recurrent: bool):
    """Zeros of the module's state type for one step of ``input_tensor`` (time-first when ``sequence``), in its
    dtype and on its device; recurrent layers have ``hidden_size`` neurons, feed-forward ones the input's."""
    reference = module.neuron_parameters()[0]   # the state takes the parameters' dtype (the dtype policy)
    input_tensor = (nf._check_sequence if sequence else nf._check_input)(input_tensor, reference, type(module).__name__)
    shape = tuple(input_tensor.shape[1:] if sequence else input_tensor.shape)
    if recurrent:
        shape = shape[:-1] + (int(module.hidden_size),)
    state_type = module._kind.state if recurrent else module._kind.ff_state
    return state_type(*(input_tensor.new_zeros(shape) for _ in state_type._fields))


class _FeedForward(_NeuronMixin):
    """Constructor of the feed-forward shapes. Per-neuron parameters (:attr:`neuron_shape`): ``(h,)`` along the
    last dimension; ``hidden_size`` omitted with ranges in ``p``: one per neuron of the first input's step (lazy,
    e.g. ``(C, H, W)``); ``per_channel=True``: one per channel (dimension -3). The state keeps the input's layout.
    """

    def __init__(self, hidden_size: Optional[int] = None, p=None, *, per_channel: bool = False,
                 dt: float = nf.DEFAULT_DT, generator: Optional[torch.Generator] = None, **kwargs):
        learn = self._learn_flags(kwargs)
        options = {"record_states": bool(kwargs.pop("record_states"))} if "record_states" in kwargs else {}
        hidden_size, p = _ff_size(hidden_size, p)
        p = _as_parameters(p, self._kind, type(self).__name__)
        super().__init__(activation=self._kind.ff_step, state_fallback=self.initial_state, p=p, dt=check_dt(dt),
                         **options)
        self.per_channel = bool(per_channel)
        self._given_size = hidden_size
        lazy = hidden_size is None and any(nf._is_spec(getattr(p, n)) for n in self._kind.names)
        self._setup_neuron(hidden_size, learn, generator, lazy=lazy)

    # -- sizes ---------------------------------------------------------------------------------------------------
    @property
    def neuron_shape(self) -> Optional[tuple]:
        """``(h,)``, ``(C,)``, ``(C, H, W)``, ``()`` (one shared value) or ``None`` (lazy, before the first call)."""
        first = self.neuron_parameters()[0]
        return None if isinstance(first, torch.nn.parameter.UninitializedTensorMixin) else tuple(first.shape)

    @property
    def hidden_size(self) -> Optional[int]:
        """Neurons with their own parameters (channels when ``per_channel``), or ``None``."""
        shape = self.neuron_shape
        return None if not shape else math.prod(shape)

    def _infer_shape(self, input_tensor: torch.Tensor) -> tuple:
        sequence = isinstance(self, SNN)
        step = input_tensor.shape[1:] if sequence else input_tensor.shape
        if self.per_channel:
            if len(step) < 3:
                raise ValueError(f"{type(self).__name__}(per_channel=True) needs feature maps (..., C, H, W) with the "
                                 f"channels at dimension -3; got input of shape {tuple(input_tensor.shape)}.")
            return (step[-3],)
        if len(step) <= 1:
            return tuple(step)
        return tuple(step[1:])   # every neuron of one step's (B, ...) input

    def initialize_parameters(self, input_tensor: torch.Tensor, state=None) -> None:
        """Draw a lazy module's parameters for the first input (``LazyModuleMixin`` calls it before ``forward``)."""
        if self._lazy_specs is None or not self.has_uninitialized_params():
            return
        specs, generator = self._lazy_specs
        shape = self._infer_shape(input_tensor)
        reference = self.neuron_parameters()[0]
        dtype = reference.dtype if reference.dtype.is_floating_point else torch.get_default_dtype()
        drawn = nf.resolve_parameters(self._static_p._replace(**specs), math.prod(shape), self.dt,
                                      generator=generator, dtype=dtype)
        materialize_per_neuron(self, {name: getattr(drawn, name) for name in self._kind.names}, shape,
                               device=input_tensor.device, dtype=dtype)
        if self._kind.name == "brf":
            check_brf_damping(self.omega.reshape(-1), self.b_offset.reshape(-1), self.dt)
        self._lazy_specs = None

    # -- layout ----------------------------------------------------------------------------------------------------
    def _layout(self, input_tensor: torch.Tensor, sequence: bool) -> str:
        """``"last"`` (parameters along the last dimension, or shared), ``"channel"`` or ``"flat"``, after
        checking that the input fits the parameters."""
        shape = self.neuron_shape
        step = tuple(input_tensor.shape[1:] if sequence else input_tensor.shape)
        if self.per_channel and shape:
            if len(step) < 3 or step[-3] != shape[0]:
                raise ValueError(f"{type(self).__name__}(per_channel=True) has {shape[0]} channels, so it takes "
                                 f"(..., {shape[0]}, H, W) with the channels at dimension -3; got input of shape "
                                 f"{tuple(input_tensor.shape)}.")
            return "channel"
        if len(shape or ()) > 1:
            if step[-len(shape):] != shape:
                raise ValueError(f"{type(self).__name__} has per-neuron parameters of shape {shape} (inferred from "
                                 f"its first input), so it takes (..., {', '.join(map(str, shape))}); got input of "
                                 f"shape {tuple(input_tensor.shape)}.")
            return "flat"
        return "last"

    def _pack(self, layout: str, t: torch.Tensor) -> torch.Tensor:
        """``t`` with the neurons in the last dimension, as the core takes them."""
        if layout == "channel":
            return t.movedim(-3, -1)
        k = len(self.neuron_shape)
        return t.reshape(*t.shape[:t.dim() - k], -1)

    def _unpack(self, layout: str, t: torch.Tensor, shape) -> torch.Tensor:
        """``t`` from :meth:`_pack` back to the user's ``shape``."""
        if layout == "channel":
            moved = shape[:-3] + shape[-2:] + shape[-3:-2]
            return t.reshape(moved).movedim(-1, -3)
        return t.reshape(shape)

    def _run(self, function, input_tensor: torch.Tensor, state, sequence: bool = False):
        """``function(input, state, p, dt)`` (a step or a whole sequence) on the neurons-last view of the input and
        state, its results in the user's layout."""
        state = state if state is not None else self.state_fallback(input_tensor)
        layout = self._layout(input_tensor, sequence)
        if layout == "last":
            return function(input_tensor, state, self.p, self.dt)
        p = self.p
        if layout == "flat":
            p = p._replace(**{n: getattr(p, n).reshape(-1) for n in self._kind.names})
        z, new = function(self._pack(layout, input_tensor), type(state)(*(self._pack(layout, s) for s in state)), p,
                          self.dt)
        shape = tuple(input_tensor.shape)
        step_shape = shape[1:] if sequence else shape
        return self._unpack(layout, z, shape), type(new)(*(self._unpack(layout, s, step_shape) for s in new))

    def _replicate_for_data_parallel(self):
        if self.has_uninitialized_params():   # PyTorch's message: run a first forward pass
            return LazyModuleMixin._replicate_for_data_parallel(self)
        return torch.nn.Module._replicate_for_data_parallel(self)

    def initial_state(self, input_tensor: torch.Tensor):
        """Zeros of the input's (one step's) shape, dtype and device."""
        if self._lazy_specs is not None:
            self.initialize_parameters(input_tensor)
        return _zero_state(self, input_tensor, sequence=isinstance(self, SNN), recurrent=False)

    def extra_repr(self) -> str:
        record = f", record_states={self.record_states}" if isinstance(self, SNN) else ""
        channel = ", per_channel=True" if self.per_channel else ""
        return f"hidden_size={self.hidden_size}{channel}, {self._neuron_repr()}{record}"


class _FeedForwardCell(_FeedForward, LazyModuleMixin, SNNCell):
    _keywords = "dt, per_channel"

    def forward(self, input_tensor: torch.Tensor, state=None):
        """One step of a current ``(..., h)`` or feature map; returns ``(z, state)`` in its layout."""
        return self._run(self.activation, input_tensor, state)


class _Sequence(_FeedForward, LazyModuleMixin, SNN):
    _keywords = "dt, per_channel, record_states"

    def forward(self, input_tensor: torch.Tensor, state=None):
        """Time-first currents ``(T, ..., h)`` or feature maps ``(T, B, C, H, W)``; returns ``(z, state)`` (every
        step's state stacked with ``record_states=True``)."""
        nf._check_sequence(input_tensor)
        state = state if state is not None else self.state_fallback(input_tensor)
        if not self.record_states:
            return self._run(self._kind.integral, input_tensor, state, sequence=True)
        outputs, states = [], []
        for x in input_tensor:
            z, state = self._run(self.activation, x, state)
            outputs.append(z)
            states.append(state)
        return torch.stack(outputs), _merge_states(states)


def _default_weights(input_size: int, hidden_size: int, input_weights, recurrent_weights, generator):
    """Norse's default weights (``randn * sqrt(2 / hidden_size)``), drawn from ``generator`` when one is given."""
    if generator is None:
        return input_weights, recurrent_weights  # Norse's base class draws them
    scale = math.sqrt(2.0 / hidden_size)
    if input_weights is None:
        input_weights = torch.nn.Parameter(torch.randn(hidden_size, input_size, generator=generator) * scale)
    if recurrent_weights is None:
        recurrent_weights = torch.nn.Parameter(torch.randn(hidden_size, hidden_size, generator=generator) * scale)
    return input_weights, recurrent_weights


class _RecurrentLayer(_NeuronMixin):
    """Constructor of the recurrent shapes: ``(input_size, hidden_size, p=None, *, input_weights,
    recurrent_weights, autapses, dt, generator, **kwargs)``."""

    def __init__(self, input_size: int, hidden_size: int, p=None, *, input_weights: Optional[torch.Tensor] = None,
                 recurrent_weights: Optional[torch.Tensor] = None, autapses: bool = False,
                 dt: float = nf.DEFAULT_DT, generator: Optional[torch.Generator] = None, **kwargs):
        learn = self._learn_flags(kwargs)
        options = {"record_states": bool(kwargs.pop("record_states"))} if "record_states" in kwargs else {}
        input_size = check_positive_int("input_size", input_size)
        hidden_size = check_positive_int("hidden_size", hidden_size)
        input_weights, recurrent_weights = _default_weights(input_size, hidden_size, input_weights,
                                                            recurrent_weights, generator)
        super().__init__(activation=self._kind.step, state_fallback=self.initial_state, input_size=input_size,
                         hidden_size=hidden_size, p=_as_parameters(p, self._kind, type(self).__name__),
                         input_weights=input_weights, recurrent_weights=recurrent_weights, autapses=bool(autapses),
                         dt=check_dt(dt), **options)
        self._setup_neuron(hidden_size, learn, generator)

    def initial_state(self, input_tensor: torch.Tensor):
        """Zeros ``(..., hidden_size)`` for (one step of) the input, in its dtype and on its device."""
        return _zero_state(self, input_tensor, sequence=isinstance(self, SNNRecurrent), recurrent=True)

    def extra_repr(self) -> str:
        record = f", record_states={self.record_states}" if isinstance(self, SNNRecurrent) else ""
        return (f"input_size={int(self.input_size)}, hidden_size={int(self.hidden_size)}, "
                f"autapses={self.autapses}, {self._neuron_repr()}{record}")


class _RecurrentCell(_RecurrentLayer, SNNRecurrentCell):
    _keywords = "input_weights, recurrent_weights, autapses, dt"

    def forward(self, input_tensor: torch.Tensor, state=None):
        """One step: ``input_tensor`` ``(..., input_size)``; returns ``(z, state)``."""
        state = state if state is not None else self.state_fallback(input_tensor)
        return self.activation(input_tensor, state, self.input_weights, self.recurrent_weights, self.p, self.dt)


class _Recurrent(_RecurrentLayer, SNNRecurrent):
    _keywords = "input_weights, recurrent_weights, autapses, dt, record_states"

    def forward(self, input_tensor: torch.Tensor, state=None):
        """``input_tensor``: ``(T, ..., input_size)``. Returns ``(z (T, ..., hidden_size), state)``: the whole layer
        in one call of the fast paths (:func:`brf_plugins.neurons.recurrent_sequence`); with ``record_states=True``,
        Norse's step loop keeping every state."""
        nf._check_sequence(input_tensor)
        state = state if state is not None else self.state_fallback(input_tensor)
        if input_tensor.shape[0] == 0:
            raise ValueError("`input_tensor` has no time steps (shape (0, ...)); sequences need T >= 1.")
        p, dt = self.p, self.dt
        if not self.record_states:
            return nf._recurrent_integral(input_tensor, state, self.input_weights, self.recurrent_weights, p, dt)
        # Check once with the public step, then run the unchecked kernel with the weights concatenated once.
        z, state = self.activation(input_tensor[0], state, self.input_weights, self.recurrent_weights, p, dt)
        outputs, states = [z], [state]
        weight = nf.concat_weights(self.input_weights, self.recurrent_weights)
        for x in input_tensor[1:]:
            z, state = nf._recurrent(x, state, weight, p, dt)
            outputs.append(z)
            if self.record_states:
                states.append(state)
        return torch.stack(outputs), (_merge_states(states) if self.record_states else state)


_SHAPES = {
    # suffix: (base, what it is, example input, example call)
    "Cell": (_FeedForwardCell, "neurons driven by an input current, one step (no recurrence, no time): "
             ":func:`norse_ext.functional.{kind}_feed_forward_step`", "torch.rand(8, 16)", "{cls}(16)"),
    "": (_Sequence, "neurons over time-first sequences ``(T, B, h)`` of input currents, in one call of "
         ":func:`norse_ext.functional.{kind}_feed_forward_integral` (the fast paths); with ``record_states=True``, "
         "Norse's step loop keeping every state", "torch.rand(100, 8, 16)", "{cls}(16)"),
    "RecurrentCell": (_RecurrentCell, "a recurrent layer, one step: :math:`x_t = W_{{in}} x^{{in}}_t + W_{{rec}} "
                      "z_{{t-1}}` (one matmul over the concatenation), then :func:`norse_ext.functional.{kind}_step`; "
                      "where you had Norse's ``LIFRecurrentCell``", "torch.rand(8, 4)", "{cls}(4, 32)"),
    "Recurrent": (_Recurrent, "a recurrent layer over time-first sequences ``(T, B, m)``", "torch.rand(100, 8, 4)",
                  "{cls}(4, 32)"),
}

_CELL_ARGS = """
    Parameters:
        hidden_size: number of neurons; may be omitted (inferred, or one shared value when ``p`` holds numbers).
        p: the neuron parameters (defaults: the paper's). dt: integration step (0.01, not Norse's 0.001).
        learn_{names}: make that per-neuron parameter an ``nn.Parameter`` (default) or a buffer.
        generator: random generator for drawing per-neuron values.
"""

_RECURRENT_ARGS = """
    Parameters:
        input_size, hidden_size: features in, neurons. p, dt, learn_{names}, generator: as the cells'.
        input_weights, recurrent_weights: default Norse's ``randn * sqrt(2 / hidden_size)``.
        autapses: keep self-connections (default False, as Norse; the paper's network has them).
"""


def _make_class(kind: _Kind, suffix: str) -> type:
    base, what, example_input, call = _SHAPES[suffix]
    name = f"{kind.name.upper()}{suffix}"
    state = kind.state if "Recurrent" in suffix else kind.ff_state
    args = (_RECURRENT_ARGS if "Recurrent" in suffix else _CELL_ARGS).format(names=" / learn_".join(kind.names))
    if suffix in ("", "Recurrent"):
        args += "        record_states: return the states of all steps, stacked over time.\n"
    doc = f"""{KINDS[kind.name].title.capitalize()}: {what.format(kind=kind.name)}.

    .. math:: {KINDS[kind.name].equations}

    Returns ``(z, {state.__name__}({", ".join(state._fields)}))``{" (the last step's)" if suffix in ("", "Recurrent")
                                                                  else ""}; ``state=None`` starts from zeros.

    Example:
        >>> import torch
        >>> from norse_ext import {name}
        >>> z, state = {call.format(cls=name)}({example_input})
        >>> type(state).__name__, [n for n, _ in {call.format(cls=name)}.named_parameters()][-2:]
        ('{state.__name__}', {list(kind.names)!r})
    """ + args
    return type(name, (base,), {"_kind": kind, "__doc__": doc, "__module__": __name__, "__qualname__": name})


for _kind in _KINDS.values():
    for _suffix in _SHAPES:
        globals()[f"{_kind.name.upper()}{_suffix}"] = _make_class(_kind, _suffix)
del _kind, _suffix


_LI = _Kind("li", LIReadoutParameters, ("tau_mem",), LIReadoutState, LIReadoutState,
            nf.li_readout_feed_forward_step, None, None)


class LIReadoutCell(_FeedForwardCell):
    r"""The paper's LI readout on a given current (:func:`brf_plugins.functional.li_step`):
    :math:`o_t = \alpha o_{t-1} + (1-\alpha) x_t`, :math:`\alpha = e^{-1/|\tau|}`, a learnable ``tau_mem`` per output
    (in steps; ``p`` an :class:`LIReadoutParameters`, ``learn_tau``). Norse's ``LICell`` has a synaptic current.

    Example:
        >>> import torch
        >>> from norse_ext import LIReadoutCell
        >>> o, state = LIReadoutCell(10)(torch.rand(8, 10))
        >>> o.shape, type(state).__name__
        (torch.Size([8, 10]), 'LIReadoutState')
    """

    _kind = _LI

    def __init__(self, hidden_size: Optional[int] = None, p: LIReadoutParameters = LIReadoutParameters(), *,
                 learn_tau: bool = True, generator: Optional[torch.Generator] = None):
        super().__init__(hidden_size, p, dt=1.0, generator=generator, learn_tau_mem=bool(learn_tau))

    def extra_repr(self) -> str:
        return f"hidden_size={self.hidden_size}, tau_mem: {tuple(self.tau_mem.shape)}"


class LIReadoutLinearCell(torch.nn.Module):
    r"""The paper's readout layer, :math:`o_t = \alpha o_{t-1} + (1-\alpha)(W z_t + b)` (Norse's ``LILinearCell``
    with the paper's dynamics): xavier-uniform ``input_weights``, ``tau_mem`` from ``p.tau_mem``, no bias unless
    ``bias=True``.

    Example:
        >>> import torch
        >>> from norse_ext import LIReadoutLinearCell
        >>> o, state = LIReadoutLinearCell(32, 10)(torch.rand(8, 32))
        >>> o.shape
        torch.Size([8, 10])
    """

    def __init__(self, input_size: int, output_size: int, p: LIReadoutParameters = LIReadoutParameters(), *,
                 bias: bool = False, learn_tau: bool = True, generator: Optional[torch.Generator] = None):
        super().__init__()
        self.input_size = check_positive_int("input_size", input_size)
        self.output_size = check_positive_int("output_size", output_size)
        p = _as_parameters(p, _LI, "LIReadoutLinearCell")
        self.input_weights = torch.nn.Parameter(torch.empty(output_size, input_size))
        xavier_uniform_(self.input_weights, generator=generator)
        self.bias = torch.nn.Parameter(torch.zeros(output_size)) if bias else None
        register_per_neuron(self, "tau_mem", nf.resolve_parameters(p, output_size, generator=generator).tau_mem,
                            bool(learn_tau))

    @property
    def p(self) -> LIReadoutParameters:
        return LIReadoutParameters(tau_mem=self.tau_mem)

    def initial_state(self, input_tensor: torch.Tensor) -> LIReadoutState:
        input_tensor = nf._check_input(input_tensor, self.input_weights, type(self).__name__)
        shape = (*input_tensor.shape[:-1], self.output_size)
        return LIReadoutState(torch.zeros(shape, dtype=input_tensor.dtype, device=input_tensor.device))

    def forward(self, input_tensor: torch.Tensor, state: Optional[LIReadoutState] = None):
        """One step: ``input_tensor`` ``(..., input_size)`` (spikes); returns ``(o, LIReadoutState(o))``."""
        input_tensor = nf._check_input(input_tensor, self.input_weights, type(self).__name__)
        if input_tensor.shape[-1] != self.input_size:
            raise ValueError(f"`input_tensor` has last dimension {input_tensor.shape[-1]} (shape "
                             f"{tuple(input_tensor.shape)}) but the readout expects input_size = {self.input_size}.")
        state = state if state is not None else self.initial_state(input_tensor)
        current = torch.nn.functional.linear(input_tensor, self.input_weights, self.bias)
        return nf.li_readout_feed_forward_step(current, state, self.p)

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, output_size={self.output_size}, bias={self.bias is not None}"

