r"""BRF, RF, BHRF, ALIF and the paper's LI readout in Norse's functional style (``norse.torch.functional.lif``):
parameter NamedTuples (Norse's ``StateTuple``), state NamedTuples, steps returning ``(z, new_state)``:
``<kind>_feed_forward_step(input_tensor, state, p, dt)`` on a given current, ``<kind>_step(input_tensor, state,
input_weights, recurrent_weights, p, dt)`` for recurrent layers, ``<kind>_feed_forward_integral`` over a sequence.

The math is :mod:`brf_plugins.functional`'s, through :func:`brf_plugins.neurons.neuron_step` and
:func:`~brf_plugins.neurons.sequence`; this module translates ``p`` into a :class:`~brf_plugins.neurons.NeuronConfig`
(:func:`neuron_config`) and makes the steps from the core's description of each kind. ``dt`` defaults to 0.01 (the
paper's, not Norse's 0.001); ``p.input_gain=None`` means ``1/dt`` for the resonators (:func:`input_gain`), ``1.0``
is the paper verbatim. The steps take values in the per-neuron fields; the modules also take init specs there
(``(low, high)``, :class:`~brf_plugins.init.Normal`), drawn by :func:`resolve_parameters`.

Example:
    >>> import torch
    >>> from norse_ext.functional import BRFParameters, BRFFeedForwardState, brf_feed_forward_step
    >>> p = BRFParameters(omega=torch.tensor([10.0, 20.0]), b_offset=torch.tensor([0.5, 0.5]))
    >>> state = BRFFeedForwardState(*(torch.zeros(1, 2) for _ in range(3)))
    >>> spikes = []
    >>> for t in range(100):
    ...     z, state = brf_feed_forward_step(torch.full((1, 2), 0.2), state, p)
    ...     spikes.append(z)
    >>> torch.stack(spikes).sum(0)          # the slower resonator integrates the constant input longer
    tensor([[4., 1.]])
"""

from __future__ import annotations

import functools
import numbers
import warnings
from typing import Callable, Dict, NamedTuple, Optional, Tuple, Union

import torch
import torch.nn.functional as nnf
from norse.torch.functional.threshold import threshold as norse_threshold
from norse.torch.utils import pytree

from brf_plugins import functional as F
from brf_plugins import surrogate
from brf_plugins._checks import (check_choice, check_current, check_finite_float, check_named_state, check_neuron_input,
                                 check_threshold, check_unit_interval)
from brf_plugins.init import Normal, Uniform, parameter_values
from brf_plugins.neurons import KINDS, NeuronConfig, neuron_step, recurrent_sequence, sequence

__all__ = ["DEFAULT_DT", "GAUSSIAN_METHODS", "NORSE_METHODS", "METHODS", "Normal", "Uniform", "BRFParameters",
           "RFParameters", "BHRFParameters", "ALIFParameters", "LIReadoutParameters", "BRFFeedForwardState",
           "BRFState", "RFFeedForwardState", "RFState", "BHRFFeedForwardState", "BHRFState", "ALIFFeedForwardState",
           "ALIFState", "LIReadoutState", "spike_function", "threshold", "input_gain", "neuron_config",
           "resolve_parameters", "concat_weights", "li_readout_feed_forward_step", "li_readout_step"]
# brf_feed_forward_step, brf_step, brf_feed_forward_integral and the same for rf, bhrf, alif: made below.

DEFAULT_DT = F.DEFAULT_DT
"""0.01, the paper's integration step (Norse's own default, 0.001, is not used)."""

GAUSSIAN_METHODS = ("double_gaussian", "multi_gaussian", "double_gaussian_fgi", "multi_gaussian_fgi")
"""Surrogates of the BRF paper (:mod:`brf_plugins.surrogate`), with the released code's constants. The ``_fgi``
forms give the same values and gradients by forward gradient injection (plain differentiable ops, no custom
autograd Function), which tracers and compilers see through."""
NORSE_METHODS = ("heaviside", "super", "triangle", "tanh", "circ", "heavi_erfc")
"""Norse's own threshold methods, applied by ``norse.torch.functional.threshold.threshold(x, method, alpha)``."""
METHODS = GAUSSIAN_METHODS + NORSE_METHODS

_GAUSSIAN_SPIKES = {
    "double_gaussian": surrogate.default_spike_fn,
    "multi_gaussian": surrogate.multi_gaussian(),
    "double_gaussian_fgi": surrogate.double_gaussian(fgi=True),
    "multi_gaussian_fgi": surrogate.multi_gaussian(fgi=True),
}


_NO_MEMBRANE_TAU = ("a {cls} has no membrane time constant: its decay is `b_offset` (the damping offset b', "
                    "per neuron, default range {b_offset}) and its resonance `omega` (rad per unit time, default "
                    "range {omega}); the equivalent of a faster leak is a larger b_offset")
_NORSE_NAMES = {
    # Norse's LIFParameters / LSNNParameters / LIParameters / IzhikevichParameters fields -> what to use here
    "tau_mem_inv": {"resonator": _NO_MEMBRANE_TAU,
                    "alif": "ALIFParameters has `tau_mem`, the membrane time constant in steps (not its inverse in "
                            "1/s): tau_mem = 1 / (tau_mem_inv * dt)",
                    "readout": "LIReadoutParameters has `tau_mem`, the time constant in steps (not its inverse in "
                               "1/s): tau_mem = 1 / (tau_mem_inv * dt)"},
    "tau_syn_inv": {"resonator": "a {cls} has no synaptic current: the input current drives the membrane "
                                 "directly (scaled by `input_gain`, default 1/dt)",
                    "alif": "the ALIF neuron has no synaptic current: the input current drives the membrane "
                            "directly"},
    "tau_adapt_inv": {"alif": "ALIFParameters has `tau_adp`, the adaptation time constant in steps: "
                              "tau_adp = 1 / (tau_adapt_inv * dt)"},
    "v_leak": {"any": "the resting potential is 0 and is not a parameter (shift the input current instead)"},
    "v_reset": {"resonator": "a {cls} does not reset to a potential: spikes raise the refractory variable q "
                             "(decay `gamma`), which lifts the threshold and damps the membrane",
                "rf": "RFParameters resets by `reset` = 'none' (the paper's RF), 'soft' or 'hard' (to 0)",
                "alif": "the ALIF neuron resets by subtracting its (adaptive) threshold"},
    "tau_inv": {"any": "see tau_mem_inv: a resonator's decay is `b_offset`, its frequency `omega`"},
    "threshold": {"any": "Norse's name for the threshold is `v_th` (snnTorch's `threshold` is not used here)"},
}
_THRESHOLD_ALIASES = ("theta",)


def _unknown_argument(cls, name: str) -> TypeError:
    """The error for a keyword ``cls`` does not take, naming what to use instead where we know what was meant."""
    kind = _KIND_OF.get(cls)
    group = {"alif": "alif", None: "readout"}.get(kind, "resonator")
    hints = _NORSE_NAMES.get(name, {})
    hint = hints.get(kind) or hints.get(group) or hints.get("any")
    defaults = cls._field_defaults
    title = {"brf": "BRF neuron", "rf": "RF neuron", "bhrf": "BHRF neuron", "alif": "ALIF neuron"}.get(kind, "neuron")
    text = f"{cls.__name__} got an unexpected keyword argument {name!r}"
    if hint:
        shown = {name: (spec.low, spec.high) if isinstance(spec, Uniform) else spec
                 for name, spec in ((n, defaults.get(n)) for n in ("omega", "b_offset"))}
        text += ": " + hint.format(cls=title, **shown)
    return TypeError(f"{text}. Its fields: {', '.join(cls._fields)}.")


class _ParametersMeta(pytree.MultipleInheritanceNamedTupleMeta):
    """Norse's metaclass for ``StateTuple`` parameters, keeping the class's module, name and docstring, and
    answering the names a Norse user brings.

    Norse's own metaclass builds the final class with ``type(...)`` and loses them, so its parameter tuples cannot
    be pickled (``LIFParameters`` cannot); ours can. The constructor accepts the package's old threshold name
    ``theta`` for ``v_th`` (with a ``DeprecationWarning``) and turns an unknown keyword into a ``TypeError`` that
    names the class, the argument and what to use instead (``tau_mem_inv``: a resonator has no membrane time
    constant, ...), where the tuple's own constructor would only say "unexpected keyword argument".
    """

    def __new__(mcls, typename, bases, ns, leading: tuple = ()):
        # ``leading``: (name, type, default) fields the class shares with others, before its own
        ns["__annotations__"] = {**{n: t for n, t, _ in leading}, **ns.get("__annotations__", {})}
        ns.update({n: d for n, _, d in leading})
        cls = super().__new__(mcls, typename, bases, ns)
        cls.__module__ = ns.get("__module__", cls.__module__)
        cls.__qualname__ = ns.get("__qualname__", typename)
        cls.__doc__ = ns.get("__doc__")
        tuple_new = cls.__new__

        def __new__(klass, *args, **kwargs):
            for name in list(kwargs):
                if name in klass._fields:
                    continue
                if name in _THRESHOLD_ALIASES and "v_th" in klass._fields:
                    if "v_th" in kwargs:
                        raise TypeError(f"{klass.__name__} got both v_th and {name}; they are one threshold, "
                                        f"pass v_th only.")
                    warnings.warn(f"{klass.__name__}({name}=...) is deprecated: the threshold is `v_th`, Norse's "
                                  f"name.", DeprecationWarning, stacklevel=2)
                    kwargs["v_th"] = kwargs.pop(name)
                    continue
                raise _unknown_argument(klass, name)
            return tuple_new(klass, *args, **kwargs)

        __new__.__doc__ = tuple_new.__doc__
        cls.__new__ = staticmethod(__new__)
        return cls


Init = Union[float, Tuple[float, float], Uniform, Normal, torch.Tensor]
SpikeMethod = Union[str, Callable[[torch.Tensor], torch.Tensor]]


def _resonator_fields(kind: str, gamma: bool = True) -> tuple:
    """The leading fields of the resonators' parameters: ranges (:data:`brf_plugins.neurons.KINDS`'s defaults, as
    snnTorch's), threshold, [gamma,] gain, spike function."""
    init = KINDS[kind].default_init
    return ((("omega", Init, init["omega"]), ("b_offset", Init, init["b_offset"]), ("v_th", float, F.DEFAULT_THETA))
            + ((("gamma", float, F.DEFAULT_GAMMA),) if gamma else ())
            + (("input_gain", Optional[float], None), ("method", SpikeMethod, "double_gaussian"),
               ("alpha", float, 100.0)))


class BRFParameters(pytree.StateTuple, metaclass=_ParametersMeta, leading=_resonator_fields("brf")):
    r"""Parameters of a balanced resonate-and-fire neuron (spec 1.1, :func:`brf_plugins.functional.brf_step`).

    Parameters:
        omega, b_offset: raw frequency :math:`\omega` (rad per unit time, ``|omega| < 1/dt``) and damping offset
            :math:`b'`: values in the functional steps, also ``(low, high)`` ranges in modules. Defaults ``(10, 50)``
            and ``(1, 6)``, the drop-in defaults (the same as ``snntorch_ext.BRF``'s; the paper's tasks pass theirs).
        v_th: threshold :math:`\vartheta` (1.0), Norse's name (``theta=`` works, with a ``DeprecationWarning``).
        gamma: decay of the refractory :math:`q` (0.9). input_gain: ``None`` is ``1/dt``, ``1.0`` the paper's.
        method: spike function, one of :data:`METHODS` or a callable ``x -> spikes``; alpha: Norse's sharpness.
        divergence_boundary, refractory, smooth_reset: the paper's ablations (appendix A.8); all on by default.
    """

    divergence_boundary: bool = True
    refractory: bool = True
    smooth_reset: bool = True


class RFParameters(pytree.StateTuple, metaclass=_ParametersMeta,
                   leading=_resonator_fields("rf", gamma=False)):
    r"""Parameters of the Izhikevich RF neuron (spec 1.2, :func:`brf_plugins.functional.rf_step`): the fields of
    :class:`BRFParameters` without ``gamma``, and ``reset``: ``"none"`` (default), ``"soft"`` or ``"hard"``."""

    reset: str = "none"


class BHRFParameters(pytree.StateTuple, metaclass=_ParametersMeta, leading=_resonator_fields("bhrf")):
    r"""Parameters of the balanced harmonic RF neuron (spec 1.4, :func:`brf_plugins.functional.bhrf_step`): as
    :class:`BRFParameters`, with ``variant`` ``"code"`` (default), ``"paper"`` or ``"explicit"``."""

    variant: str = "code"


class ALIFParameters(pytree.StateTuple, metaclass=_ParametersMeta):
    r"""Parameters of the adaptive LIF baseline (spec 1.5, :func:`brf_plugins.functional.alif_step`): time
    constants ``tau_mem``, ``tau_adp`` in steps (defaults N(20, 5), N(200, 50)), base threshold ``v_th`` (0.01),
    adaptation ``beta`` (1.8), ``input_gain`` 1.0 (no ``dt`` in the update)."""

    tau_mem: Init = KINDS["alif"].default_init["tau_mem"]
    tau_adp: Init = KINDS["alif"].default_init["tau_adp"]
    v_th: float = F.ALIF_THETA
    beta: float = F.ALIF_BETA
    input_gain: Optional[float] = 1.0
    method: SpikeMethod = "double_gaussian"
    alpha: float = 100.0


class LIReadoutParameters(pytree.StateTuple, metaclass=_ParametersMeta):
    r"""The paper's LI readout (spec 1.6, :func:`brf_plugins.functional.li_step`): ``tau_mem`` in steps, N(20, 5)."""

    tau_mem: Init = Normal(20.0, 5.0)


def _renamed(old: str, new: str, meaning: str):
    """A read-only alias of a field renamed for Norse (the package's earlier name), warning on use."""

    def get(self):
        warnings.warn(f"{type(self).__name__}.{old} is deprecated: it is `{new}` ({meaning}). Norse's LIF state "
                      f"calls its membrane `v`; here the part compared with the threshold v_th is "
                      f"`{self._fields[1] if self._fields[0] == 'z' else self._fields[0]}`.", FutureWarning,
                      stacklevel=2)
        return getattr(self, new)

    return property(get, doc=f"Deprecated alias of ``{new}`` ({meaning}).")


_STATE_DOC = """

    The membrane :math:`U = v_{{re}} + i\\,v_{{im}}` is stored as ``v_re`` (thresholded, what LIF's ``v`` is) and
    ``v_im``; positionally the core's :class:`brf_plugins.functional.{core}` ``({core_fields})`` (``state.u`` /
    ``state.v`` still work, with a ``FutureWarning``)."""


_MEMBRANE = {"u": ("v_re", "the real part of the membrane"), "v": ("v_im", "the imaginary part of the membrane")}
_HARMONIC = {"u": ("velocity", "the thresholded velocity"), "v": ("position", "the oscillator's position")}


def _state(name: str, fields: str, doc: str, renamed: dict) -> type:
    """A Norse state NamedTuple (positionally the core's) with read-only, warning aliases of its old field names."""
    cls = NamedTuple(name, [(field, torch.Tensor) for field in fields.split()])
    cls.__module__, cls.__doc__ = __name__, doc
    for old, (new, meaning) in renamed.items():
        setattr(cls, old, _renamed(old, new, meaning))
    return cls


BRFState = _state("BRFState", "z v_re v_im q", """State of a recurrent BRF layer: last spikes ``z``, membrane
    ``v_re`` (real part, thresholded) and ``v_im`` (imaginary part), refractory variable ``q``.""", _MEMBRANE)
BRFFeedForwardState = _state("BRFFeedForwardState", "v_re v_im q", """State of a feed-forward BRF layer: membrane
    ``v_re`` (real part, thresholded) and ``v_im`` (imaginary part), refractory variable ``q``.""", _MEMBRANE)
RFState = _state("RFState", "z v_re v_im", """State of a recurrent RF layer: last spikes ``z``, membrane ``v_re``
    (real part, thresholded), ``v_im``.""", _MEMBRANE)
RFFeedForwardState = _state("RFFeedForwardState", "v_re v_im", """State of a feed-forward RF layer: membrane
    ``v_re`` (real part, thresholded) and ``v_im``.""", _MEMBRANE)
for _s, _core in ((BRFState, "BRFState"), (BRFFeedForwardState, "BRFState"), (RFState, "RFState"),
                  (RFFeedForwardState, "RFState")):
    _s.__doc__ += _STATE_DOC.format(core=_core, core_fields=", ".join(getattr(F, _core)._fields))
del _s, _core
BHRFState = _state("BHRFState", "z velocity position q", """State of a recurrent BHRF layer (a damped harmonic
    oscillator): last spikes ``z``, ``velocity`` (the variable compared with the threshold ``v_th``, what LIF's ``v``
    is), ``position``, refractory ``q``.

    Positionally the core's :class:`brf_plugins.functional.BHRFState` ``(z, u, v, q)``: ``u`` is ``velocity``,
    ``v`` is ``position`` (``state.u`` / ``state.v`` still work, with a ``FutureWarning``).""", _HARMONIC)
BHRFFeedForwardState = _state("BHRFFeedForwardState", "velocity position q", """State of a feed-forward BHRF
    layer: ``velocity`` (thresholded), ``position``, refractory ``q`` (the core's ``(u, v, q)``).""", _HARMONIC)
ALIFState = _state("ALIFState", "z v a", """State of ALIF neurons: last spikes ``z`` (the next step's adaptation
    reads them), membrane ``v`` (as in Norse's ``LIFState`` and ``LSNNState``: the potential compared with the
    adaptive threshold), adaptation ``a``.

    Positionally the core's :class:`brf_plugins.functional.ALIFState` ``(z, u, a)``: ``u`` is ``v``
    (``state.u`` still works, with a ``FutureWarning``).""", {"u": ("v", "the membrane potential")})


ALIFFeedForwardState = ALIFState
"""A feed-forward ALIF layer keeps its last spikes too (the adaptation reads them): the same state type."""

STATES = {"brf": (BRFState, BRFFeedForwardState), "rf": (RFState, RFFeedForwardState),
          "bhrf": (BHRFState, BHRFFeedForwardState), "alif": (ALIFState, ALIFFeedForwardState)}
"""Norse state types per kind: ``(recurrent, feed-forward)``; positionally the core's
(:data:`brf_plugins.neurons.KINDS`)."""


class LIReadoutState(NamedTuple):
    """State of the LI readout: its potential ``o``."""

    o: torch.Tensor


def spike_function(method: SpikeMethod, alpha: float = 100.0) -> Callable[[torch.Tensor], torch.Tensor]:
    """The spike function ``x -> spikes`` for a threshold ``method`` (see :data:`METHODS`).

    ``"double_gaussian"`` is exactly the core's default spike function (the released code's surrogate);
    Norse's methods go through Norse's ``threshold(x, method, alpha)``; a callable is returned as it is.
    """
    if callable(method):
        return method
    if method in _GAUSSIAN_SPIKES:
        return _GAUSSIAN_SPIKES[method]
    if method in NORSE_METHODS:
        return functools.partial(norse_threshold, method=method, alpha=alpha)
    raise ValueError(f"`method` must be one of {', '.join(repr(m) for m in METHODS)} or a callable x -> spikes; "
                     f"got {method!r}.")


def threshold(x: torch.Tensor, method: SpikeMethod, alpha: float = 100.0) -> torch.Tensor:
    r"""Heaviside :math:`H(x)` (1 where :math:`x > 0`) with the surrogate gradient of ``method``.

    Extends ``norse.torch.functional.threshold.threshold`` with ``"double_gaussian"`` and ``"multi_gaussian"``;
    Norse's own methods are passed to it unchanged.

    Example:
        >>> import torch
        >>> from norse_ext.functional import threshold
        >>> x = torch.tensor([-0.5, 0.0, 0.5], requires_grad=True)
        >>> threshold(x, "double_gaussian").sum().backward(); x.grad
        tensor([0.2586, 0.4388, 0.2586])
    """
    return spike_function(method, alpha)(x)


def input_gain(p, dt: float) -> float:
    """The factor on the input current: ``p.input_gain``; where it is ``None``, ``1/dt`` for the resonators (whose
    update scales the current by ``dt``) and 1 for ALIF (whose update has no ``dt``)."""
    if p.input_gain is not None:
        return p.input_gain
    return 1.0 if isinstance(p, ALIFParameters) else 1.0 / dt


_PER_NEURON = {
    BRFParameters: ("omega", "b_offset"),
    RFParameters: ("omega", "b_offset"),
    BHRFParameters: ("omega", "b_offset"),
    ALIFParameters: ("tau_mem", "tau_adp"),
    LIReadoutParameters: ("tau_mem",),
}
_PARAMETERS_OF = {"brf": BRFParameters, "rf": RFParameters, "bhrf": BHRFParameters, "alif": ALIFParameters}


def _is_spec(value) -> bool:
    return isinstance(value, (tuple, list, Uniform, Normal))


def _draw(name: str, spec, size: Optional[int], dt: float, generator, dtype) -> torch.Tensor:
    """Values for one per-neuron parameter from its spec (:func:`brf_plugins.init.parameter_values`); ``p``'s
    fields take the specs below, not callables."""
    if isinstance(spec, bool) or not isinstance(spec, (numbers.Real, torch.Tensor, tuple, list, Uniform, Normal)):
        raise TypeError(f"`{name}` must be a number, a (low, high) range, a tensor, Uniform(low, high) or "
                        f"Normal(mean, std); got {type(spec).__name__}.")
    return parameter_values(name, size, spec, dt=dt, generator=generator, dtype=dtype)


def resolve_parameters(p, size: Optional[int], dt: float = DEFAULT_DT, *, generator: Optional[torch.Generator] = None,
                       dtype: Optional[torch.dtype] = None):
    """``p`` with every per-neuron initialisation spec replaced by drawn values of shape ``(size,)``.

    Numbers become ``(size,)`` tensors of that value, ``(low, high)`` ranges uniform draws, :class:`Normal` normal
    draws; tensors are checked and broadcast. Frequencies at or above ``1/dt`` are rejected. With ``size=None``
    numbers become 0-dim tensors and tensors are kept (ranges then raise).

    Example:
        >>> from norse_ext.functional import BRFParameters, resolve_parameters
        >>> p = resolve_parameters(BRFParameters(omega=(15.0, 50.0)), 256)
        >>> p.omega.shape, bool(p.omega.min() >= 15.0)
        (torch.Size([256]), True)
    """
    names = _PER_NEURON.get(type(p))
    if names is None:
        raise TypeError(f"`p` must be one of {', '.join(c.__name__ for c in _PER_NEURON)}; got {type(p).__name__}.")
    return p._replace(**{n: _draw(n, getattr(p, n), size, dt, generator, dtype) for n in names})


def _values(p, names: Tuple[str, ...], expected) -> tuple:
    if not isinstance(p, expected):
        raise TypeError(f"`p` must be {expected.__name__}, got {type(p).__name__}.")
    out = []
    for name in names:
        value = getattr(p, name)
        if _is_spec(value):
            raise TypeError(
                f"p.{name} = {value!r} is an initialisation spec, but the functional steps need values (a number or "
                f"a tensor per neuron). Draw them with norse_ext.functional.resolve_parameters(p, hidden_size, dt), "
                f"or use a module (e.g. norse_ext.BRFCell), which does so.")
        out.append(value)
    return tuple(out)


def _check_input(input_tensor, reference=None, owner: str = "this step") -> torch.Tensor:
    """The input of a public step, checked (and cast up under autocast) against ``reference``, a tensor of the
    step's parameters or weights, where there is one (the package's dtype policy)."""
    if isinstance(reference, torch.Tensor):
        return check_neuron_input(owner, "input_tensor", input_tensor, reference)
    return check_current("input_tensor", input_tensor)


def _first_tensor(values):
    return next((v for v in values if isinstance(v, torch.Tensor)), None)


def _check_width(input_tensor: torch.Tensor, values: tuple, names: Tuple[str, ...]) -> None:
    for name, value in zip(names, values):
        if isinstance(value, torch.Tensor) and value.dim() and value.shape[-1] not in (1, input_tensor.shape[-1]):
            raise ValueError(f"`input_tensor` has {input_tensor.shape[-1]} neurons in its last dimension (shape "
                             f"{tuple(input_tensor.shape)}) but p.{name} is for {value.shape[-1]}.")


def _check_state(state, expected, reference: torch.Tensor) -> None:
    check_named_state("state", state, expected, reference)


def _check_recurrent(input_tensor: torch.Tensor, input_weights: torch.Tensor, recurrent_weights: torch.Tensor,
                     state, state_type: type) -> torch.Tensor:
    """The checks of a recurrent step's weights and ``state`` against one step of input; an empty tensor of the
    hidden layer's shape (the state's reference)."""
    if input_weights.dim() != 2 or recurrent_weights.dim() != 2:
        raise ValueError(f"`input_weights` and `recurrent_weights` must be matrices (hidden, input) and "
                         f"(hidden, hidden); got shapes {tuple(input_weights.shape)} and "
                         f"{tuple(recurrent_weights.shape)}.")
    hidden = recurrent_weights.shape[0]
    if recurrent_weights.shape[1] != hidden or input_weights.shape[0] != hidden:
        raise ValueError(f"`recurrent_weights` must be ({hidden}, {hidden}) and `input_weights` ({hidden}, input); "
                         f"got {tuple(recurrent_weights.shape)} and {tuple(input_weights.shape)}.")
    if input_tensor.shape[-1] != input_weights.shape[1]:
        raise ValueError(f"`input_tensor` has last dimension {input_tensor.shape[-1]} (shape "
                         f"{tuple(input_tensor.shape)}) but the layer expects input_size = {input_weights.shape[1]}.")
    reference = input_tensor.new_empty(*input_tensor.shape[:-1], hidden)
    _check_state(state, state_type, reference)
    return reference


def _recurrent_current(input_tensor: torch.Tensor, z: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``W [x; z]`` with ``weight = [W_in, W_rec]``: one matmul over the concatenation, as the paper's code and
    :class:`brf_plugins.network.RecurrentLayer` compute it, so float32 results match them bit for bit."""
    return nnf.linear(torch.cat((input_tensor, z), -1), weight)


def concat_weights(input_weights: torch.Tensor, recurrent_weights: torch.Tensor) -> torch.Tensor:
    """``[W_in, W_rec]``, the ``(hidden, input + hidden)`` matrix of the paper's ``Linear`` on ``concat(x, z)``."""
    return torch.cat((input_weights, recurrent_weights), 1)


_KIND_OF = {cls: kind for kind, cls in _PARAMETERS_OF.items()}


_CONFIGS: Dict[tuple, NeuronConfig] = {}
"""The configurations already made, by parameter type, ``dt`` and the parameters' constants (not their
per-neuron tensors): a cell stepped T times builds its :class:`~brf_plugins.neurons.NeuronConfig` (and, remembered
on it, its execution plan) once, not on every step."""


def neuron_config(p, dt: float) -> NeuronConfig:
    """The core :class:`brf_plugins.neurons.NeuronConfig` of Norse-style parameters ``p`` and step ``dt``.

    The same constants give the same (immutable) configuration object: it is built, and its constants checked,
    once (:data:`_CONFIGS`), unless a constant is a tensor (a learnable threshold), which is read afresh."""
    if torch.compiler.is_compiling():   # traced once: built in the graph's setup, no memo to consult
        return _build_config(p, dt)
    per_neuron = _PER_NEURON[type(p)]
    constants = tuple(value for name, value in zip(p._fields, p) if name not in per_neuron)
    if any(isinstance(value, torch.Tensor) for value in constants):
        return _build_config(p, dt)
    key = (type(p), dt, constants)
    try:
        cfg = _CONFIGS.get(key)
    except TypeError:   # an unhashable constant (e.g. a spike method object): no memo
        return _build_config(p, dt)
    if cfg is None:
        cfg = _build_config(p, dt)
        if len(_CONFIGS) >= 256:
            _CONFIGS.clear()
        _CONFIGS[key] = cfg
    return cfg


def _build_config(p, dt: float) -> NeuronConfig:
    kind = _KIND_OF[type(p)]
    fields = p._fields
    options = dict(theta=p.v_th, spike_fn=spike_function(p.method, p.alpha), input_gain=input_gain(p, dt))
    if kind != "alif":
        options["dt"] = dt
    if "gamma" in fields:
        options["gamma"] = p.gamma
    if kind == "brf":
        options.update(divergence_boundary=p.divergence_boundary, refractory=p.refractory,
                       smooth_reset=p.smooth_reset)
    options.update({"rf": lambda: dict(reset=p.reset), "bhrf": lambda: dict(variant=p.variant),
                    "alif": lambda: dict(beta=p.beta)}.get(kind, dict)())
    return NeuronConfig(kind, **options)


def _backend(values) -> str:
    """``"reference"`` where a per-neuron parameter is not laid out along the last dimension (e.g. ``(C, 1, 1)``
    broadcasting over a ``(B, C, H, W)`` feature map: the fused and compiled kernels take parameters of shape
    ``(h,)``), otherwise ``"auto"`` (:func:`brf_plugins.kernels.plan` decides). The modules' ``per_channel`` layout
    moves the channels last instead and keeps the fast paths."""
    return "reference" if any(isinstance(v, torch.Tensor) and v.dim() > 1 for v in values) else "auto"


def _update(current, state: tuple, p, dt):
    """One core update (:func:`brf_plugins.neurons.neuron_step`) of ``state`` ``(z, ...)``; ``z`` may be None
    for feed-forward resonators."""
    names = _PER_NEURON[type(p)]
    values = _values(p, names, type(p))
    _check_width(current, values, names)
    return neuron_step(neuron_config(p, dt), values, current, state, backend=_backend(values))


def _feed_forward(kind: str, state: tuple) -> tuple:
    """A feed-forward state as the core's ``(z, ...)`` (resonators do not keep ``z``)."""
    return tuple(state) if kind == "alif" else (None, *state)


def _recurrent(input_tensor, state, weight, p, dt):
    """A recurrent step without argument checks (``weight = [W_in, W_rec]``)."""
    new = _update(_recurrent_current(input_tensor, state.z, weight), state, p, dt)
    return new[0], type(state)(*new)


def _recurrent_integral(input_tensor, state, input_weights, recurrent_weights, p, dt):
    """A recurrent layer over a time-first ``(T, ..., input_size)`` input in one
    :func:`brf_plugins.neurons.recurrent_sequence` call (the whole-layer kernels), with the checks of the public
    step; ``(z (T, ..., hidden), final state)``."""
    kind = _KIND_OF[type(p)]
    input_tensor = _check_sequence(input_tensor, input_weights, f"{kind}Recurrent")
    reference = _check_recurrent(input_tensor[0], input_weights, recurrent_weights, state, STATES[kind][0])
    names = _PER_NEURON[type(p)]
    values = _values(p, names, type(p))
    _check_width(reference, values, names)
    z, final = recurrent_sequence(neuron_config(p, dt), values, input_tensor,
                                  concat_weights(input_weights, recurrent_weights), tuple(state),
                                  backend=_backend(values))
    return z, type(state)(*final)


def _make_steps(kind: str):
    """``<kind>_feed_forward_step``, ``<kind>_step`` and ``<kind>_feed_forward_integral`` from one template."""
    desc, params = KINDS[kind], _PARAMETERS_OF[kind]
    state_type, ff_type = STATES[kind]
    ff_tail = (lambda new: new) if kind == "alif" else (lambda new: new[1:])

    def feed_forward_step(input_tensor, state, p, dt=DEFAULT_DT):
        values = _values(p, desc.params, params)
        input_tensor = _check_input(input_tensor, _first_tensor(values), f"{kind}_feed_forward_step")
        _check_state(state, ff_type, input_tensor)
        new = _update(input_tensor, _feed_forward(kind, state), p, dt)
        return new[0], ff_type(*ff_tail(new))

    def step(input_tensor, state, input_weights, recurrent_weights, p, dt=DEFAULT_DT):
        input_tensor = _check_input(input_tensor, input_weights, f"{kind}_step")
        _check_recurrent(input_tensor, input_weights, recurrent_weights, state, state_type)
        _values(p, (), params)
        return _recurrent(input_tensor, state, concat_weights(input_weights, recurrent_weights), p, dt)

    def feed_forward_integral(input_tensor, state, p, dt=DEFAULT_DT):
        values = _values(p, desc.params, params)
        input_tensor = _check_sequence(input_tensor, _first_tensor(values), f"{kind}_feed_forward_integral")
        _check_state(state, ff_type, input_tensor[0])
        _check_width(input_tensor, values, desc.params)
        z, final = sequence(neuron_config(p, dt), values, input_tensor, _feed_forward(kind, state),
                            backend=_backend(values))
        return z, ff_type(*ff_tail(final))

    fields, rec_fields = ", ".join(ff_type._fields), ", ".join(state_type._fields)
    equation = f"""

    .. math:: {desc.equations}

    with :math:`I_t = g\\,x_t` (``g = input_gain(p, dt)``): :func:`brf_plugins.functional.{kind}_step`."""
    docs = {
        feed_forward_step: f"""One step of {desc.title} neurons on an input current ``(..., neurons)``.{equation}

    ``state``: :class:`{ff_type.__name__}` ``({fields})``; ``p``: :class:`{params.__name__}` with values in
    ``{"``, ``".join(desc.params)}``; ``dt`` 0.01. Returns ``(z, {ff_type.__name__}({fields}))``.""",
        step: f"""One step of a recurrent {desc.title} layer: the current ``[W_in, W_rec] @ concat(x, z)`` (one matmul,
    the paper code's, so results equal :class:`brf_plugins.network.RecurrentSNN`'s bit for bit), then
    :func:`{kind}_feed_forward_step`'s update. ``input_weights`` ``(hidden, input)``, ``recurrent_weights``
    ``(hidden, hidden)``. Returns ``(z, {state_type.__name__}({rec_fields}))``.""",
        feed_forward_integral: f""":func:`{kind}_feed_forward_step` over a time-first ``(T, ..., neurons)`` current
    in one :func:`brf_plugins.neurons.sequence` call (the fast paths). Returns ``(z, final_state)``.""",
    }
    made = {}
    for function, suffix in ((feed_forward_step, "feed_forward_step"), (step, "step"),
                             (feed_forward_integral, "feed_forward_integral")):
        function.__name__ = function.__qualname__ = f"{kind}_{suffix}"
        function.__module__ = __name__
        function.__doc__ = docs[function]
        made[function.__name__] = function
    return made


for _kind in _PARAMETERS_OF:   # every kind with Norse parameters
    _steps = _make_steps(_kind)
    globals().update(_steps)
    __all__ += list(_steps)
del _kind, _steps


def li_readout_feed_forward_step(input_tensor: torch.Tensor, state: LIReadoutState, p: LIReadoutParameters,
                                 dt: Optional[float] = None) -> Tuple[torch.Tensor, LIReadoutState]:
    r"""The paper's LI readout (spec 1.6): :math:`o_t = \alpha o_{t-1} + (1-\alpha) I_t`,
    :math:`\alpha = e^{-1/|\tau|}` (``tau_mem`` in steps; ``dt`` is accepted for Norse's signature and unused).

    Computed by :func:`brf_plugins.functional.li_step`. Returns ``(o, LIReadoutState(o))``.
    """
    (tau_mem,) = _values(p, ("tau_mem",), LIReadoutParameters)
    input_tensor = _check_input(input_tensor, tau_mem, "li_readout_feed_forward_step")
    _check_state(state, LIReadoutState, input_tensor)
    _check_width(input_tensor, (tau_mem,), ("tau_mem",))
    o = F.li_step(input_tensor, state.o, tau_mem)
    return o, LIReadoutState(o)


def li_readout_step(input_tensor: torch.Tensor, state: LIReadoutState, input_weights: torch.Tensor,
                    p: LIReadoutParameters, dt: Optional[float] = None) -> Tuple[torch.Tensor, LIReadoutState]:
    r"""LI readout of weighted spikes, :math:`o_t = \alpha o_{t-1} + (1-\alpha) W z_t` (like Norse's ``li_step``).

    ``input_weights`` is ``(outputs, inputs)``. Returns ``(o, LIReadoutState(o))``.
    """
    input_tensor = _check_input(input_tensor, input_weights, "li_readout_step")
    if input_weights.dim() != 2 or input_tensor.shape[-1] != input_weights.shape[1]:
        raise ValueError(f"`input_tensor` of shape {tuple(input_tensor.shape)} does not fit `input_weights` of "
                         f"shape {tuple(input_weights.shape)} (outputs, inputs).")
    return li_readout_feed_forward_step(nnf.linear(input_tensor, input_weights), state, p, dt)


def _check_sequence(input_tensor, reference=None, owner: str = "this module") -> torch.Tensor:
    input_tensor = _check_input(input_tensor, reference, owner)
    if input_tensor.dim() < 2:
        raise ValueError(f"`input_tensor` must be time-first (T, ..., neurons), got shape {tuple(input_tensor.shape)}.")
    if input_tensor.shape[0] == 0:
        raise ValueError(f"`input_tensor` has no time steps (shape {tuple(input_tensor.shape)}); sequences need "
                         f"T >= 1.")
    return input_tensor


def _check_choices(p) -> None:
    """Reject unknown strings in ``p`` early (modules call this at construction)."""
    if "method" in p._fields:
        spike_function(p.method, p.alpha)
    if isinstance(p, RFParameters):
        check_choice("reset", p.reset, F.RF_RESETS)
    if isinstance(p, BHRFParameters):
        check_choice("variant", p.variant, F.BHRF_VARIANTS)
    for name in ("beta", "alpha"):
        if name in p._fields and not isinstance(getattr(p, name), torch.Tensor):
            check_finite_float(name, getattr(p, name))
    if "v_th" in p._fields:
        check_threshold("v_th", p.v_th)
    if "gamma" in p._fields:
        check_unit_interval("gamma", p.gamma)  # the refractory variable grows without bound at gamma >= 1
    if "input_gain" in p._fields and p.input_gain is not None:
        check_finite_float("input_gain", p.input_gain, positive=True)
