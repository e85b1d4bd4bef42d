r"""BRF, RF, BHRF, ALIF and the paper's LI readout in Norse's functional style.

Like ``norse.torch.functional.lif``: parameters are NamedTuples (inheriting Norse's ``StateTuple``, so ``p.to(device)``
works), states are NamedTuples, and every step returns ``(z, new_state)``:

* ``<model>_feed_forward_step(input_tensor, state, p, dt)``: ``input_tensor`` is the already-weighted input current
  (for example the output of an ``nn.Linear``);
* ``<model>_step(input_tensor, state, input_weights, recurrent_weights, p, dt)``: recurrent layers, current
  :math:`I_t = W_{in} x_t + W_{rec} z_{t-1}`.

All neuron math is :mod:`brf_plugins.functional`'s (``brf_step``, ``rf_step``, ``bhrf_step``, ``alif_step``,
``li_step``); this module only adapts arguments. The resonators' membrane :math:`U = u + iv` is stored as its real
part ``u`` (the one compared with the threshold) and imaginary part ``v``.

Two conventions differ from Norse's LIF on purpose:

* ``dt`` defaults to **0.01** (the BRF paper's step), not Norse's 0.001. Frequencies ``omega`` are in rad per unit
  time and must stay below ``1/dt``.
* The input current is multiplied by ``p.input_gain`` before the paper's update. ``input_gain=None`` (default)
  means ``1/dt`` (:func:`brf_plugins.init.default_input_gain`): the membrane then moves by the input per step, as a
  Norse or snnTorch neuron does, and networks with PyTorch's default initialisation and learning rates train.
  ``input_gain=1.0`` is the paper's equation verbatim (checkpoints and equivalence tests use it).

Per-neuron parameters (``omega``, ``b_offset``; ALIF's ``tau_mem``, ``tau_adp``; the readout's ``tau_mem``) hold
values here: numbers or tensors broadcasting over the last (neuron) dimension. The modules
(:mod:`norse_ext.module`) also accept *initialisation specs* in those fields (a ``(low, high)`` uniform range, as the
paper initialises ``omega`` and ``b'``, or :class:`Normal`) and draw per-neuron values from them;
:func:`resolve_parameters` does that for functional use.

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
from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional, Tuple, Union

import torch
import torch.nn.functional as nnf
from norse.torch.functional.threshold import threshold as norse_threshold
from norse.torch.utils import pytree

from brf_plugins import functional as F
from brf_plugins import surrogate
from brf_plugins._checks import check_choice, check_finite_float, check_finite_tensor, check_omega_init, check_state
from brf_plugins.init import b_offset_parameter, normal_parameter, omega_parameter, uniform_or_value
from brf_plugins.neurons import NeuronConfig, neuron_step, sequence

__all__ = [
    "DEFAULT_DT",
    "GAUSSIAN_METHODS",
    "NORSE_METHODS",
    "METHODS",
    "Normal",
    "BRFParameters",
    "RFParameters",
    "BHRFParameters",
    "ALIFParameters",
    "LIReadoutParameters",
    "BRFFeedForwardState",
    "BRFState",
    "RFFeedForwardState",
    "RFState",
    "BHRFFeedForwardState",
    "BHRFState",
    "ALIFFeedForwardState",
    "ALIFState",
    "LIReadoutState",
    "spike_function",
    "threshold",
    "input_gain",
    "resolve_parameters",
    "concat_weights",
    "brf_feed_forward_step",
    "brf_feed_forward_integral",
    "brf_step",
    "rf_feed_forward_step",
    "rf_feed_forward_integral",
    "rf_step",
    "bhrf_feed_forward_step",
    "bhrf_feed_forward_integral",
    "bhrf_step",
    "alif_feed_forward_step",
    "alif_feed_forward_integral",
    "alif_step",
    "li_readout_feed_forward_step",
    "li_readout_step",
]

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


# --------------------------------------------------------------------------------------------------------------
# Parameters and states
# --------------------------------------------------------------------------------------------------------------


class _ParametersMeta(pytree.MultipleInheritanceNamedTupleMeta):
    """Norse's metaclass for ``StateTuple`` parameters, keeping the class's module, name and docstring.

    Norse's own metaclass builds the final class with ``type(...)`` and loses them, so its parameter tuples cannot
    be pickled (``LIFParameters`` cannot); ours can.
    """

    def __new__(mcls, typename, bases, ns):
        cls = super().__new__(mcls, typename, bases, ns)
        cls.__module__ = ns.get("__module__", cls.__module__)
        cls.__qualname__ = ns.get("__qualname__", typename)
        cls.__doc__ = ns.get("__doc__")
        return cls


@dataclass(frozen=True)
class Normal:
    """Initialisation spec: per-neuron values drawn from N(mean, std) (the paper's time-constant init)."""

    mean: float
    std: float


Init = Union[float, Tuple[float, float], torch.Tensor, Normal]
SpikeMethod = Union[str, Callable[[torch.Tensor], torch.Tensor]]


class BRFParameters(pytree.StateTuple, metaclass=_ParametersMeta):
    r"""Parameters of a balanced resonate-and-fire neuron (paper Algorithm 1, spec 1.1).

    Parameters:
        omega: raw angular frequency :math:`\omega` in rad per unit time, used as :math:`|\omega|` and clamped
            below :math:`0.999/\delta`. Values (number or tensor) in the functional steps; modules also accept a
            ``(low, high)`` uniform range. Default ``(5.0, 10.0)``, the paper code's module default (the tasks use
            their own ranges, :mod:`brf_plugins.tasks`).
        b_offset: raw damping offset :math:`b'`, used as :math:`|b'|`. Default range ``(0.0, 1.0)``.
        theta: threshold :math:`\vartheta_c` (1.0).
        gamma: decay of the refractory variable :math:`q` (0.9).
        input_gain: factor on the input current before the update; ``None`` means ``1/dt`` (see the module
            docstring), ``1.0`` is the paper verbatim.
        method: spike function: ``"double_gaussian"`` (default, the paper's surrogate), ``"multi_gaussian"``,
            ``"double_gaussian_fgi"`` / ``"multi_gaussian_fgi"`` (the same by forward gradient injection), one
            of Norse's (``"super"``, ``"tanh"``, ``"triangle"``, ``"circ"``, ``"heavi_erfc"``, ``"heaviside"``),
            or any callable ``x -> spikes`` (e.g. ``brf_plugins.surrogate.double_gaussian(width=0.3, fgi=True)``
            for other Gaussian constants).
        alpha: sharpness of Norse's methods (as in ``LIFParameters``); unused by the Gaussian ones.
        divergence_boundary, refractory, smooth_reset: the paper's ablations (appendix A.8); all on by default.
    """

    omega: Init = (5.0, 10.0)
    b_offset: Init = (0.0, 1.0)
    theta: float = F.DEFAULT_THETA
    gamma: float = F.DEFAULT_GAMMA
    input_gain: Optional[float] = None
    method: SpikeMethod = "double_gaussian"
    alpha: float = 100.0
    divergence_boundary: bool = True
    refractory: bool = True
    smooth_reset: bool = True


class RFParameters(pytree.StateTuple, metaclass=_ParametersMeta):
    r"""Parameters of the Izhikevich resonate-and-fire neuron of the paper's "RF" rows (spec 1.2).

    ``omega``, ``b_offset`` (:math:`b = -|b'|`), ``theta``, ``input_gain``, ``method``, ``alpha`` as in
    :class:`BRFParameters`; ``reset`` is ``"none"`` (the released models), ``"soft"`` or ``"hard"`` (paper A.1).
    """

    omega: Init = (5.0, 10.0)
    b_offset: Init = (0.0, 1.0)
    theta: float = F.DEFAULT_THETA
    input_gain: Optional[float] = None
    method: SpikeMethod = "double_gaussian"
    alpha: float = 100.0
    reset: str = "none"


class BHRFParameters(pytree.StateTuple, metaclass=_ParametersMeta):
    r"""Parameters of the balanced harmonic RF neuron (spec 1.4, paper Algorithm 2).

    As :class:`BRFParameters` with the harmonic model's default ranges ``omega`` U(10, 50), ``b_offset`` U(1, 6),
    and ``variant``: ``"code"`` (released code, semi-implicit Euler; default), ``"paper"`` or ``"explicit"``
    (see :func:`brf_plugins.functional.bhrf_step`).
    """

    omega: Init = (10.0, 50.0)
    b_offset: Init = (1.0, 6.0)
    theta: float = F.DEFAULT_THETA
    gamma: float = F.DEFAULT_GAMMA
    input_gain: Optional[float] = None
    method: SpikeMethod = "double_gaussian"
    alpha: float = 100.0
    variant: str = "code"


class ALIFParameters(pytree.StateTuple, metaclass=_ParametersMeta):
    r"""Parameters of the adaptive LIF baseline of the paper (spec 1.5; time constants in steps).

    ``tau_mem``, ``tau_adp``: raw time constants (used as :math:`|\tau|`); modules draw them from ``Normal``
    specs (defaults N(20, 5) and N(200, 50)). ``theta`` base threshold (0.01), ``beta`` adaptation strength (1.8).
    ``input_gain`` defaults to 1.0: the ALIF update has no ``dt`` in it.
    """

    tau_mem: Init = Normal(20.0, 5.0)
    tau_adp: Init = Normal(200.0, 50.0)
    theta: float = F.ALIF_THETA
    beta: float = F.ALIF_BETA
    input_gain: Optional[float] = 1.0
    method: SpikeMethod = "double_gaussian"
    alpha: float = 100.0


class LIReadoutParameters(pytree.StateTuple, metaclass=_ParametersMeta):
    r"""The paper's leaky-integrator readout (spec 1.6): :math:`\alpha = e^{-1/|\tau|}`, ``tau_mem`` in steps.

    Default init N(20, 5). Unlike Norse's ``LIParameters`` there is no synaptic current and no ``dt``.
    """

    tau_mem: Init = Normal(20.0, 5.0)


class BRFFeedForwardState(NamedTuple):
    """State of a feed-forward BRF neuron: membrane ``u`` (real part, thresholded), ``v`` (imaginary part) and the
    refractory variable ``q``."""

    u: torch.Tensor
    v: torch.Tensor
    q: torch.Tensor


class BRFState(NamedTuple):
    """State of a recurrent BRF neuron: the last spikes ``z`` (fed back), ``u``, ``v``, ``q``."""

    z: torch.Tensor
    u: torch.Tensor
    v: torch.Tensor
    q: torch.Tensor


class RFFeedForwardState(NamedTuple):
    """State of a feed-forward RF neuron: membrane ``u`` (real part) and ``v`` (imaginary part)."""

    u: torch.Tensor
    v: torch.Tensor


class RFState(NamedTuple):
    """State of a recurrent RF neuron: last spikes ``z``, ``u``, ``v``."""

    z: torch.Tensor
    u: torch.Tensor
    v: torch.Tensor


class BHRFFeedForwardState(NamedTuple):
    """State of a feed-forward BHRF neuron: velocity ``u`` (thresholded), position ``v``, refractory ``q``."""

    u: torch.Tensor
    v: torch.Tensor
    q: torch.Tensor


class BHRFState(NamedTuple):
    """State of a recurrent BHRF neuron: last spikes ``z``, ``u``, ``v``, ``q``."""

    z: torch.Tensor
    u: torch.Tensor
    v: torch.Tensor
    q: torch.Tensor


class ALIFFeedForwardState(NamedTuple):
    """State of a feed-forward ALIF neuron: last spikes ``z`` (they drive the adaptation), membrane ``u``,
    adaptation ``a``."""

    z: torch.Tensor
    u: torch.Tensor
    a: torch.Tensor


class ALIFState(NamedTuple):
    """State of a recurrent ALIF neuron: last spikes ``z``, membrane ``u``, adaptation ``a``."""

    z: torch.Tensor
    u: torch.Tensor
    a: torch.Tensor


class LIReadoutState(NamedTuple):
    """State of the LI readout: its potential ``o``."""

    o: torch.Tensor


# --------------------------------------------------------------------------------------------------------------
# Spike functions
# --------------------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------------------
# Initialisation specs -> values
# --------------------------------------------------------------------------------------------------------------

_PER_NEURON = {
    BRFParameters: ("omega", "b_offset"),
    RFParameters: ("omega", "b_offset"),
    BHRFParameters: ("omega", "b_offset"),
    ALIFParameters: ("tau_mem", "tau_adp"),
    LIReadoutParameters: ("tau_mem",),
}
_PARAMETERS_OF = {"brf": BRFParameters, "rf": RFParameters, "bhrf": BHRFParameters, "alif": ALIFParameters}


def _is_spec(value) -> bool:
    return isinstance(value, (tuple, list, Normal))


def _draw(name: str, spec, size: Optional[int], dt: float, generator, dtype) -> torch.Tensor:
    """Values for one per-neuron parameter from its spec; ``size=None`` keeps numbers 0-dim and tensors as given."""
    if isinstance(spec, torch.Tensor):
        spec = spec.detach()
    if dtype is None:  # a given floating-point tensor keeps its precision
        floating = isinstance(spec, torch.Tensor) and torch.is_floating_point(spec)
        dtype = spec.dtype if floating else torch.get_default_dtype()
    if isinstance(spec, Normal):
        if size is None:
            raise ValueError(f"`{name}` = {spec} is drawn per neuron: give the layer's size (hidden_size).")
        return normal_parameter(name, size, spec.mean, spec.std, generator=generator, dtype=dtype)
    if isinstance(spec, bool) or not isinstance(spec, (numbers.Real, torch.Tensor, tuple, list)):
        raise TypeError(f"`{name}` must be a number, a (low, high) range, a tensor or Normal(mean, std); "
                        f"got {type(spec).__name__}.")
    if size is None:
        if isinstance(spec, (tuple, list)):
            raise ValueError(f"`{name}` = {tuple(spec)} is a range to draw per-neuron values from: give the "
                             f"layer's size (hidden_size), or a number or tensor instead.")
        value = spec.detach().clone() if isinstance(spec, torch.Tensor) else torch.tensor(float(spec))
        if not torch.is_floating_point(value):
            raise TypeError(f"`{name}` must be a floating-point tensor, got dtype {value.dtype}.")
        if name == "omega":
            check_omega_init(name, value, dt)
        return value.to(dtype)
    if name == "omega":
        return omega_parameter(size, spec, dt, name=name, generator=generator, dtype=dtype)
    if name == "b_offset":
        return b_offset_parameter(size, spec, name=name, generator=generator, dtype=dtype)
    return uniform_or_value(name, size, spec, generator=generator, dtype=dtype)


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


# --------------------------------------------------------------------------------------------------------------
# Argument checks (shapes and dtypes only: no device synchronisation)
# --------------------------------------------------------------------------------------------------------------


def _check_input(input_tensor) -> None:
    if not isinstance(input_tensor, torch.Tensor):
        raise TypeError(f"`input_tensor` must be a torch.Tensor, got {type(input_tensor).__name__}.")
    if input_tensor.is_complex() or not torch.is_floating_point(input_tensor):
        raise TypeError(f"`input_tensor` must be a real floating-point tensor, got dtype {input_tensor.dtype}; "
                        f"convert it with `.float()`.")
    if input_tensor.dim() == 0:
        raise ValueError("`input_tensor` must have at least one dimension (..., neurons), got a scalar.")
    check_finite_tensor("input_tensor", input_tensor)  # a NaN would silently poison every later state


def _check_width(input_tensor: torch.Tensor, values: tuple, names: Tuple[str, ...]) -> None:
    for name, value in zip(names, values):
        if isinstance(value, torch.Tensor) and value.dim() and value.shape[-1] not in (1, input_tensor.shape[-1]):
            raise ValueError(f"`input_tensor` has {input_tensor.shape[-1]} neurons in its last dimension (shape "
                             f"{tuple(input_tensor.shape)}) but p.{name} is for {value.shape[-1]}.")


def _check_state(state, expected, reference: torch.Tensor) -> None:
    if not isinstance(state, expected):
        raise TypeError(f"`state` must be a {expected.__name__}({', '.join(expected._fields)}), got "
                        f"{type(state).__name__}. Pass state=None to start from zeros.")
    for name, value in zip(expected._fields, state):
        check_state(name, value, reference)


def _check_recurrent(input_tensor: torch.Tensor, input_weights: torch.Tensor, recurrent_weights: torch.Tensor):
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
    return input_tensor.new_empty(*input_tensor.shape[:-1], hidden)


def _recurrent_current(input_tensor: torch.Tensor, z: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``W [x; z]`` with ``weight = [W_in, W_rec]``: one matmul over the concatenation, as the paper's code and
    :class:`brf_plugins.network.RecurrentLayer` compute it, so float32 results match them bit for bit."""
    return nnf.linear(torch.cat((input_tensor, z), -1), weight)


def concat_weights(input_weights: torch.Tensor, recurrent_weights: torch.Tensor) -> torch.Tensor:
    """``[W_in, W_rec]``, the ``(hidden, input + hidden)`` matrix of the paper's ``Linear`` on ``concat(x, z)``."""
    return torch.cat((input_weights, recurrent_weights), 1)


# --------------------------------------------------------------------------------------------------------------
# Neuron updates given the input current (shared by feed-forward and recurrent steps)
# --------------------------------------------------------------------------------------------------------------


_KIND_OF = {cls: kind for kind, cls in _PARAMETERS_OF.items()}


def neuron_config(p, dt: float) -> NeuronConfig:
    """The core :class:`brf_plugins.neurons.NeuronConfig` of Norse-style parameters ``p`` and step ``dt``."""
    kind = _KIND_OF[type(p)]
    fields = p._fields
    options = dict(theta=p.theta, spike_fn=spike_function(p.method, p.alpha), input_gain=input_gain(p, dt))
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


def _update(current, state: tuple, p, dt):
    """One core update (:func:`brf_plugins.neurons.neuron_step`) of ``state`` ``(z, ...)``; ``z`` may be None
    for feed-forward resonators."""
    names = _PER_NEURON[type(p)]
    values = _values(p, names, type(p))
    _check_width(current, values, names)
    return neuron_step(neuron_config(p, dt), values, current, state)


# --------------------------------------------------------------------------------------------------------------
# Public steps
# --------------------------------------------------------------------------------------------------------------


def brf_feed_forward_step(input_tensor: torch.Tensor, state: BRFFeedForwardState, p: BRFParameters,
                          dt: float = DEFAULT_DT) -> Tuple[torch.Tensor, BRFFeedForwardState]:
    r"""One step of a BRF neuron driven by an input current (spec 1.1, paper Algorithm 1).

    With :math:`I_t = g\,x_t` (``g = p.input_gain``, ``1/dt`` by default), :math:`\omega = |\omega_{raw}|`
    (clamped below :math:`0.999/\delta`), :math:`b' = |b'_{raw}|`:

    .. math::

        p(\omega) &= \big(-1 + \sqrt{1 - (\delta\omega)^2}\big)/\delta, \qquad b_t = p(\omega) - b' - q_{t-1} \\
        u_t &= u_{t-1} + \delta(b_t u_{t-1} - \omega v_{t-1} + I_t), \qquad
        v_t = v_{t-1} + \delta(\omega u_{t-1} + b_t v_{t-1}) \\
        z_t &= H(u_t - \vartheta - q_{t-1}), \qquad q_t = \gamma q_{t-1} + z_t

    Computed by :func:`brf_plugins.functional.brf_step`.

    Parameters:
        input_tensor: input current :math:`x_t`, shape ``(..., neurons)``.
        state: :class:`BRFFeedForwardState` ``(u, v, q)`` of the input's shape.
        p: :class:`BRFParameters` with values (not ranges) in ``omega`` and ``b_offset``.
        dt: integration step :math:`\delta` (default 0.01).

    Returns:
        ``(z, BRFFeedForwardState(u, v, q))``.
    """
    _check_input(input_tensor)
    _check_state(state, BRFFeedForwardState, input_tensor)
    _values(p, (), BRFParameters)
    z, u, v, q = _update(input_tensor, (None, *state), p, dt)
    return z, BRFFeedForwardState(u, v, q)


def brf_step(input_tensor: torch.Tensor, state: BRFState, input_weights: torch.Tensor,
             recurrent_weights: torch.Tensor, p: BRFParameters, dt: float = DEFAULT_DT
             ) -> Tuple[torch.Tensor, BRFState]:
    r"""One step of a recurrent BRF layer: :math:`x_t = W_{in} x^{in}_t + W_{rec} z_{t-1}`, then
    :func:`brf_feed_forward_step`'s update.

    The current is one matmul of ``[W_in, W_rec]`` over ``concat(input, z)``, the operation of the paper's code,
    so results equal :class:`brf_plugins.network.RecurrentLayer`'s bit for bit.

    Parameters:
        input_tensor: ``(..., input_size)``.
        state: :class:`BRFState` ``(z, u, v, q)``, each ``(..., hidden_size)``.
        input_weights: ``(hidden_size, input_size)``. recurrent_weights: ``(hidden_size, hidden_size)``.
        p, dt: as in :func:`brf_feed_forward_step`.

    Returns:
        ``(z, BRFState(z, u, v, q))``.
    """
    _check_input(input_tensor)
    reference = _check_recurrent(input_tensor, input_weights, recurrent_weights)
    _check_state(state, BRFState, reference)
    _values(p, (), BRFParameters)
    return _recurrent(input_tensor, state, concat_weights(input_weights, recurrent_weights), p, dt)


def _recurrent(input_tensor, state, weight, p, dt):
    """A recurrent step without argument checks (``weight = [W_in, W_rec]``)."""
    new = _update(_recurrent_current(input_tensor, state.z, weight), state, p, dt)
    return new[0], type(state)(*new)


def rf_feed_forward_step(input_tensor: torch.Tensor, state: RFFeedForwardState, p: RFParameters,
                         dt: float = DEFAULT_DT) -> Tuple[torch.Tensor, RFFeedForwardState]:
    r"""One step of the paper's vanilla RF neuron (spec 1.2): :math:`b = -|b'|`, no boundary, no refractoriness.

    .. math::

        u_t = u_{t-1} + \delta(b u_{t-1} - \omega v_{t-1} + I_t), \quad
        v_t = v_{t-1} + \delta(\omega u_{t-1} + b v_{t-1}), \quad z_t = H(u_t - \vartheta)

    then the reset of ``p.reset`` (none, soft or hard). Computed by :func:`brf_plugins.functional.rf_step`.
    Returns ``(z, RFFeedForwardState(u, v))``.
    """
    _check_input(input_tensor)
    _check_state(state, RFFeedForwardState, input_tensor)
    _values(p, (), RFParameters)
    z, u, v = _update(input_tensor, (None, *state), p, dt)
    return z, RFFeedForwardState(u, v)


def rf_step(input_tensor: torch.Tensor, state: RFState, input_weights: torch.Tensor,
            recurrent_weights: torch.Tensor, p: RFParameters, dt: float = DEFAULT_DT) -> Tuple[torch.Tensor, RFState]:
    """Recurrent RF layer step (see :func:`brf_step` for the current). Returns ``(z, RFState(z, u, v))``."""
    _check_input(input_tensor)
    reference = _check_recurrent(input_tensor, input_weights, recurrent_weights)
    _check_state(state, RFState, reference)
    _values(p, (), RFParameters)
    return _recurrent(input_tensor, state, concat_weights(input_weights, recurrent_weights), p, dt)


def bhrf_feed_forward_step(input_tensor: torch.Tensor, state: BHRFFeedForwardState, p: BHRFParameters,
                           dt: float = DEFAULT_DT) -> Tuple[torch.Tensor, BHRFFeedForwardState]:
    r"""One step of the balanced harmonic RF neuron (spec 1.4), ``p.variant="code"`` by default:

    .. math::

        b_t &= \delta\omega^2/2 + |b'| + q_{t-1}, \qquad v_t = v_{t-1} + \delta u_{t-1} \\
        u_t &= u_{t-1} + \delta I_t - 2\delta b_t u_{t-1} - \delta\omega^2 v_t, \qquad
        z_t = H(u_t - \vartheta - q_{t-1}), \qquad q_t = \gamma q_{t-1} + z_t

    Computed by :func:`brf_plugins.functional.bhrf_step` (which documents the other variants).
    Returns ``(z, BHRFFeedForwardState(u, v, q))``.
    """
    _check_input(input_tensor)
    _check_state(state, BHRFFeedForwardState, input_tensor)
    _values(p, (), BHRFParameters)
    z, u, v, q = _update(input_tensor, (None, *state), p, dt)
    return z, BHRFFeedForwardState(u, v, q)


def bhrf_step(input_tensor: torch.Tensor, state: BHRFState, input_weights: torch.Tensor,
              recurrent_weights: torch.Tensor, p: BHRFParameters, dt: float = DEFAULT_DT
              ) -> Tuple[torch.Tensor, BHRFState]:
    """Recurrent BHRF layer step (see :func:`brf_step` for the current). Returns ``(z, BHRFState(z, u, v, q))``."""
    _check_input(input_tensor)
    reference = _check_recurrent(input_tensor, input_weights, recurrent_weights)
    _check_state(state, BHRFState, reference)
    _values(p, (), BHRFParameters)
    return _recurrent(input_tensor, state, concat_weights(input_weights, recurrent_weights), p, dt)


def alif_feed_forward_step(input_tensor: torch.Tensor, state: ALIFFeedForwardState, p: ALIFParameters,
                           dt: float = DEFAULT_DT) -> Tuple[torch.Tensor, ALIFFeedForwardState]:
    r"""One step of the paper's adaptive LIF baseline (spec 1.5; time constants in steps, ``dt`` unused):

    .. math::

        a_t &= \rho a_{t-1} + (1-\rho) z_{t-1}, \quad \vartheta_t = \vartheta_0 + \beta a_t, \quad
        u'_t = \alpha u_{t-1} + (1-\alpha) I_t \\
        z_t &= H(u'_t - \vartheta_t), \quad u_t = u'_t - z_t\vartheta_t

    with :math:`\alpha = e^{-1/|\tau_m|}`, :math:`\rho = e^{-1/|\tau_a|}`. Computed by
    :func:`brf_plugins.functional.alif_step`. Returns ``(z, ALIFFeedForwardState(z, u, a))``.
    """
    _check_input(input_tensor)
    _check_state(state, ALIFFeedForwardState, input_tensor)
    _values(p, (), ALIFParameters)
    z, u, a = _update(input_tensor, state, p, dt)
    return z, ALIFFeedForwardState(z, u, a)


def alif_step(input_tensor: torch.Tensor, state: ALIFState, input_weights: torch.Tensor,
              recurrent_weights: torch.Tensor, p: ALIFParameters, dt: float = DEFAULT_DT
              ) -> Tuple[torch.Tensor, ALIFState]:
    """Recurrent ALIF layer step (see :func:`brf_step` for the current). Returns ``(z, ALIFState(z, u, a))``."""
    _check_input(input_tensor)
    reference = _check_recurrent(input_tensor, input_weights, recurrent_weights)
    _check_state(state, ALIFState, reference)
    _values(p, (), ALIFParameters)
    return _recurrent(input_tensor, state, concat_weights(input_weights, recurrent_weights), p, dt)


def li_readout_feed_forward_step(input_tensor: torch.Tensor, state: LIReadoutState, p: LIReadoutParameters,
                                 dt: Optional[float] = None) -> Tuple[torch.Tensor, LIReadoutState]:
    r"""The paper's LI readout (spec 1.6): :math:`o_t = \alpha o_{t-1} + (1-\alpha) I_t`,
    :math:`\alpha = e^{-1/|\tau|}` (``tau_mem`` in steps; ``dt`` is accepted for Norse's signature and unused).

    Computed by :func:`brf_plugins.functional.li_step`. Returns ``(o, LIReadoutState(o))``.
    """
    _check_input(input_tensor)
    _check_state(state, LIReadoutState, input_tensor)
    (tau_mem,) = _values(p, ("tau_mem",), LIReadoutParameters)
    _check_width(input_tensor, (tau_mem,), ("tau_mem",))
    o = F.li_step(input_tensor, state.o, tau_mem)
    return o, LIReadoutState(o)


def li_readout_step(input_tensor: torch.Tensor, state: LIReadoutState, input_weights: torch.Tensor,
                    p: LIReadoutParameters, dt: Optional[float] = None) -> Tuple[torch.Tensor, LIReadoutState]:
    r"""LI readout of weighted spikes, :math:`o_t = \alpha o_{t-1} + (1-\alpha) W z_t` (like Norse's ``li_step``).

    ``input_weights`` is ``(outputs, inputs)``. Returns ``(o, LIReadoutState(o))``.
    """
    _check_input(input_tensor)
    if input_weights.dim() != 2 or input_tensor.shape[-1] != input_weights.shape[1]:
        raise ValueError(f"`input_tensor` of shape {tuple(input_tensor.shape)} does not fit `input_weights` of "
                         f"shape {tuple(input_weights.shape)} (outputs, inputs).")
    return li_readout_feed_forward_step(nnf.linear(input_tensor, input_weights), state, p, dt)


# --------------------------------------------------------------------------------------------------------------
# Whole sequences of feed-forward layers (Norse's ``*_integral``)
# --------------------------------------------------------------------------------------------------------------


def _check_sequence(input_tensor) -> None:
    _check_input(input_tensor)
    if input_tensor.dim() < 2:
        raise ValueError(f"`input_tensor` must be time-first (T, ..., neurons), got shape {tuple(input_tensor.shape)}.")


def _integral(kind_params: type, state_type: type, input_tensor, state, p, dt):
    """A feed-forward layer over a time-first current through :func:`brf_plugins.neurons.sequence` (where the
    fast paths plug in): the same as stepping the ``*_feed_forward_step`` in a loop."""
    _check_sequence(input_tensor)
    _check_state(state, state_type, input_tensor[0])
    names = _PER_NEURON[kind_params]
    values = _values(p, names, kind_params)
    _check_width(input_tensor, values, names)
    full = tuple(state) if kind_params is ALIFParameters else (None, *state)
    z, final = sequence(neuron_config(p, dt), values, input_tensor, full)
    return z, state_type(*(final if kind_params is ALIFParameters else final[1:]))


def brf_feed_forward_integral(input_tensor: torch.Tensor, state: BRFFeedForwardState, p: BRFParameters,
                              dt: float = DEFAULT_DT) -> Tuple[torch.Tensor, BRFFeedForwardState]:
    """:func:`brf_feed_forward_step` over a time-first ``(T, ..., neurons)`` current. Returns ``(z, final_state)``
    with ``z`` of shape ``(T, ..., neurons)``: the same as stepping in a loop."""
    return _integral(BRFParameters, BRFFeedForwardState, input_tensor, state, p, dt)


def rf_feed_forward_integral(input_tensor: torch.Tensor, state: RFFeedForwardState, p: RFParameters,
                             dt: float = DEFAULT_DT) -> Tuple[torch.Tensor, RFFeedForwardState]:
    """:func:`rf_feed_forward_step` over a time-first current."""
    return _integral(RFParameters, RFFeedForwardState, input_tensor, state, p, dt)


def bhrf_feed_forward_integral(input_tensor: torch.Tensor, state: BHRFFeedForwardState, p: BHRFParameters,
                               dt: float = DEFAULT_DT) -> Tuple[torch.Tensor, BHRFFeedForwardState]:
    """:func:`bhrf_feed_forward_step` over a time-first current."""
    return _integral(BHRFParameters, BHRFFeedForwardState, input_tensor, state, p, dt)


def alif_feed_forward_integral(input_tensor: torch.Tensor, state: ALIFFeedForwardState, p: ALIFParameters,
                               dt: float = DEFAULT_DT) -> Tuple[torch.Tensor, ALIFFeedForwardState]:
    """:func:`alif_feed_forward_step` over a time-first current."""
    return _integral(ALIFParameters, ALIFFeedForwardState, input_tensor, state, p, dt)


def _check_choices(p) -> None:
    """Reject unknown strings in ``p`` early (modules call this at construction)."""
    if "method" in p._fields:
        spike_function(p.method, p.alpha)
    if isinstance(p, RFParameters):
        check_choice("reset", p.reset, F.RF_RESETS)
    if isinstance(p, BHRFParameters):
        check_choice("variant", p.variant, F.BHRF_VARIANTS)
    for name in ("theta", "gamma", "beta", "alpha"):
        if name in p._fields and not isinstance(getattr(p, name), torch.Tensor):
            check_finite_float(name, getattr(p, name))
    if "input_gain" in p._fields and p.input_gain is not None:
        check_finite_float("input_gain", p.input_gain)
