"""Parameter initialisation shared by the core modules and the framework adapters.

Every per-neuron parameter (omega, b', tau) accepts one *init spec*, turned into values by one resolver,
:func:`init_values`:

* a number: every neuron gets that value;
* :class:`Uniform` ``(low, high)``: values drawn uniformly, as the paper initialises omega and b';
* :class:`Normal` ``(mean, std)``: values drawn from a normal distribution, as the paper initialises the time
  constants of ALIF and the LI readout;
* a plain pair ``(a, b)``: the parameter's own distribution, the one the paper uses for it (uniform ``(low, high)``
  for omega and b', normal ``(mean, std)`` for time constants); ``Uniform``/``Normal`` say it explicitly;
* a tensor of shape ``(n,)`` (or broadcastable to it): taken as given;
* a callable ``init(n, generator=None) -> Tensor`` returning ``n`` values, e.g. a data-driven initialisation such
  as :class:`brf_plugins.analysis.SpectrumInit` (omega from the dominant frequencies of a dataset).

``omega_init="spectrum"`` names that data-driven choice; it needs the training data, so code that builds models
turns it into a callable first with :func:`brf_plugins.analysis.resolve_omega_init` (a layer given the bare string
raises an error that says so).


The input-gain helper :func:`default_input_gain` explains the one place where the framework adapters' defaults
differ from the paper's configuration (see its docstring).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Union

import torch
from torch import nn

from . import functional as F
from ._checks import check_dt, check_finite_float, check_omega_init, check_positive_int, init_bounds

__all__ = ["Init", "Uniform", "Normal", "init_values", "parameter_values", "register_per_neuron",
           "materialize_per_neuron", "constant_tensor", "check_brf_damping", "uniform_or_value", "normal_parameter",
           "omega_parameter", "b_offset_parameter", "default_input_gain", "xavier_uniform_"]

SPECTRUM = "spectrum"


@dataclass(frozen=True)
class Uniform:
    """Init spec: per-neuron values drawn uniformly from ``[low, high]`` (the paper's omega and b' init)."""

    low: float
    high: float


@dataclass(frozen=True)
class Normal:
    """Init spec: per-neuron values drawn from N(mean, std) (the paper's time-constant init)."""

    mean: float
    std: float


Init = Union[float, Uniform, Normal, tuple, torch.Tensor, Callable]


def init_values(name: str, n: Optional[int], init, *, pair: str = "uniform",
                generator: Optional[torch.Generator] = None, dtype: torch.dtype = None) -> torch.Tensor:
    """The one resolver of init specs (module docstring): ``(n,)`` values for parameter ``name`` (``n=None``:
    a number becomes a 0-dim tensor and a tensor stays as given; a spec to draw from raises).

    ``pair`` is what a plain ``(a, b)`` pair means for this parameter: ``"uniform"`` ``(low, high)`` or
    ``"normal"`` ``(mean, std)``.

    Raises:
        ValueError: a pair of another length, ``low > high``, ``std < 0``, NaN/inf, a tensor that does not fit
            ``n`` neurons. TypeError: anything that is not an init spec.
    """
    if n is None:  # no layer size: one shared value (a 0-dim tensor) or a given tensor, nothing to draw
        if isinstance(init, (tuple, list, Uniform, Normal)) or (callable(init) and not isinstance(init, torch.Tensor)):
            raise ValueError(f"`{name}` = {init!r} is drawn per neuron: give the layer's size (hidden_size), or a "
                             f"number or tensor instead.")
        init_bounds(name, init)  # a finite number or a finite floating-point tensor
        value = init.detach().clone() if isinstance(init, torch.Tensor) else torch.tensor(float(init))
        return value.to(dtype or torch.get_default_dtype())
    if isinstance(init, (tuple, list)) and not isinstance(init, torch.Tensor):
        if len(init) != 2:
            shape = "(low, high)" if pair == "uniform" else "(mean, std)"
            raise ValueError(f"`{name}` as a pair must be {shape}, got {tuple(init)!r}.")
        init = Uniform(*init) if pair == "uniform" else Normal(*init)
    if isinstance(init, Normal):
        return normal_parameter(name, n, init.mean, init.std, generator=generator, dtype=dtype)
    if isinstance(init, Uniform):
        init = (init.low, init.high)
    return uniform_or_value(name, n, init, generator=generator, dtype=dtype)


def parameter_values(name: str, n: Optional[int], init, *, dt: float = None,
                     generator: Optional[torch.Generator] = None, dtype: torch.dtype = None) -> torch.Tensor:
    """The initial values of a neuron's per-neuron parameter ``name`` (``omega``, ``b_offset``, ``tau_*``), what
    both adapters draw: :func:`init_values` with the parameter's own meaning of a plain pair (normal for the time
    constants, uniform otherwise), frequencies checked against ``1/dt`` (:func:`omega_parameter`).

    ``dtype=None``: a given floating-point tensor keeps its precision, anything else gets the default dtype.
    """
    if dtype is None:
        floating = isinstance(init, torch.Tensor) and torch.is_floating_point(init)
        dtype = init.dtype if floating else torch.get_default_dtype()
    if name == "omega" and n is not None:
        return omega_parameter(n, init, dt, name=name, generator=generator, dtype=dtype)
    value = init_values(name, n, init, pair="normal" if name.startswith("tau") else "uniform", generator=generator,
                        dtype=dtype)
    if name == "omega":
        check_omega_init(name, value, dt)
    return value


def register_per_neuron(module: nn.Module, name: str, value: Optional[torch.Tensor], learnable: bool) -> None:
    """Register a per-neuron tensor on ``module``, an ``nn.Parameter`` (``learnable``) or a buffer. ``value=None``
    (the size is not known yet) registers PyTorch's lazy-module placeholder, ``nn.UninitializedParameter`` /
    ``nn.UninitializedBuffer``, which :func:`materialize_per_neuron` fills once the first input fixes the size."""
    if value is None:
        value = nn.UninitializedParameter() if learnable else nn.UninitializedBuffer()
    if learnable:
        setattr(module, name, value if isinstance(value, nn.Parameter) else nn.Parameter(value))
    else:
        module.register_buffer(name, value)


def materialize_per_neuron(module: nn.Module, values: dict, shape: tuple, *, device=None, dtype=None) -> None:
    """Give ``module``'s placeholders (:func:`register_per_neuron`) their ``shape`` and ``values`` ``{name: tensor}``,
    in place: the Parameter objects (what an optimiser holds) stay the same."""
    with torch.no_grad():
        for name, value in values.items():
            tensor = getattr(module, name)
            tensor.materialize(shape, device=device, dtype=dtype)
            tensor.copy_(value.reshape(shape))


def uniform_or_value(name: str, n: int, init: Init, *, generator: Optional[torch.Generator] = None,
                     dtype: torch.dtype = None) -> torch.Tensor:
    """A ``(n,)`` tensor from an init spec (value, ``(low, high)`` uniform range, tensor or callable)."""
    n = check_positive_int(f"size of {name}", n)
    dtype = dtype or torch.get_default_dtype()
    if callable(init) and not isinstance(init, torch.Tensor):
        values = init(n, generator=generator)
        if not isinstance(values, torch.Tensor) or tuple(values.shape) != (n,):
            got = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
            raise ValueError(f"`{name}` is a callable, so it must return a tensor of shape ({n},) from "
                             f"init({n}, generator=...); it returned {got}.")
        init_bounds(name, values)  # floating point and finite
        return values.detach().to(dtype).clone()
    if isinstance(init, str):
        raise ValueError(f"`{name}` got the string {init!r}; give a number, a (low, high) range, a tensor or a "
                         f"callable (omega accepts {SPECTRUM!r} after brf_plugins.analysis.resolve_omega_init).")
    if isinstance(init, Uniform):
        init = (init.low, init.high)
    init_bounds(name, init)  # validates the spec
    if isinstance(init, torch.Tensor):
        try:
            return init.detach().to(dtype).expand(n).clone()
        except RuntimeError:
            raise ValueError(f"`{name}` tensor of shape {tuple(init.shape)} does not fit {n} neurons.") from None
    if isinstance(init, (tuple, list)):
        low, high = float(init[0]), float(init[1])
        return torch.empty(n, dtype=dtype).uniform_(low, high, generator=generator)
    return torch.full((n,), float(init), dtype=dtype)


def constant_tensor(name: str, value, n: int, *, learnable: bool) -> torch.Tensor:
    """A neuron constant (a threshold, a one-to-one weight) as a tensor: 0-dim or ``(n,)``.

    Python numbers become float64 0-dim tensors when not learnable, so that the value is exact in float64 runs and
    rounds exactly like a Python scalar in float32 ones; learnable ones use the default dtype.
    """
    if isinstance(value, torch.Tensor):
        if not torch.is_floating_point(value):
            raise TypeError(f"`{name}` must be a floating-point tensor, got dtype {value.dtype}.")
        if value.dim() > 1 or (value.dim() == 1 and value.numel() not in (1, n)):
            raise ValueError(f"`{name}` must be a number or a tensor of shape () or ({n},), got shape "
                             f"{tuple(value.shape)}.")
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"`{name}` contains NaN or inf.")
        return value.detach().clone()
    value = check_finite_float(name, value)
    return torch.tensor(value) if learnable else torch.tensor(value, dtype=torch.float64)


def normal_parameter(name: str, n: int, mean: float, std: float, *,
                     generator: Optional[torch.Generator] = None, dtype: torch.dtype = None) -> torch.Tensor:
    """A ``(n,)`` tensor drawn from N(mean, std) (the paper's tau initialisation)."""
    mean = check_finite_float(f"{name} mean", mean)
    std = check_finite_float(f"{name} std", std, nonnegative=True)
    n = check_positive_int(f"size of {name}", n)
    return torch.empty(n, dtype=dtype or torch.get_default_dtype()).normal_(mean, std, generator=generator)


def omega_parameter(n: int, init: Init, dt: float, *, name: str = "omega", generator=None,
                    dtype=None) -> torch.Tensor:
    """Initial raw frequencies, rejecting any |omega| >= 1/dt (where p(omega) is NaN)."""
    dt = check_dt(dt)
    if isinstance(init, str) and init == SPECTRUM:
        raise ValueError(f"`{name}`={SPECTRUM!r} needs the training data to read its frequencies from: build the "
                         f"initialisation with brf_plugins.analysis.resolve_omega_init({SPECTRUM!r}, data=train_set, "
                         f"dt={dt:g}) and pass the result as `{name}`.")
    if callable(init) and not isinstance(init, torch.Tensor):
        values = uniform_or_value(name, n, init, generator=generator, dtype=dtype)
        check_omega_init(name, values, dt)
        return values
    if isinstance(init, Uniform):
        init = (init.low, init.high)
    check_omega_init(name, init, dt)
    return uniform_or_value(name, n, init, generator=generator, dtype=dtype)


def b_offset_parameter(n: int, init: Init, *, name: str = "b_offset", generator=None, dtype=None) -> torch.Tensor:
    """Initial raw damping offsets b' (used as |b'|, so any sign is accepted)."""
    return uniform_or_value(name, n, init, generator=generator, dtype=dtype)


def check_brf_damping(omega: torch.Tensor, b_offset: torch.Tensor, dt: float, *, name: str = "b_offset") -> None:
    r"""BRF offsets must stay within the overdamping limit (:func:`brf_plugins.functional.overdamping_limit`).

    Beyond :math:`2\sqrt{1 - (\delta\omega)^2}/\delta` (200 for small omega at dt = 0.01) the explicit Euler step
    overshoots: the free membrane grows and the state is NaN within a few hundred steps.
    """
    with torch.no_grad():
        limit = F.overdamping_limit(F.resonator_omega(omega.detach(), dt), dt)
        excess = b_offset.detach().abs() - limit
    if bool((excess > 0).any()):
        worst = int(torch.argmax(excess))
        b_offset, omega = b_offset.detach().flatten(), omega.detach().flatten()
        raise ValueError(f"`{name}` has |b'| = {float(b_offset[worst].abs()):g} for a neuron with omega = "
                         f"{float(omega[worst]):g}, beyond its overdamping limit "
                         f"{float(limit.flatten()[worst]):g} (2 sqrt(1 - (dt omega)^2) / dt, dt = {dt:g}): the Euler "
                         f"step would overshoot and the membrane diverge. Use smaller offsets (or a smaller dt).")


def default_input_gain(dt: float) -> float:
    r"""The input gain the framework adapters use by default: ``1 / dt``.

    The spec's resonators integrate :math:`\delta\,I_t` per step (:math:`\delta = 0.01`), so a current of 1
    moves the membrane by only 0.01. The paper compensates with huge weights (trained :math:`|W|` up to 275) and a
    learning rate of 0.1. A layer fed by ``nn.Linear`` with PyTorch's default initialisation and trained at a
    typical rate (1e-3) therefore barely spikes and does not learn.

    The adapters multiply their input by ``input_gain`` before the spec's update, so the default
    ``input_gain = 1/dt`` makes the membrane move by :math:`I_t` per step, as in snnTorch's ``Leaky``. With Adam
    this is exactly the paper's optimisation in other units: weights ``W`` trained at rate ``lr`` with gain
    ``1/dt`` behave like weights ``W/dt`` trained at ``lr/dt`` (Adam is invariant to the gradient scale), so the
    paper's lr 0.1 corresponds to lr 1e-3 here.

    Pass ``input_gain=1.0`` to get the spec's equations verbatim (as the checkpoint loaders do).
    """
    return 1.0 / check_dt(dt)


def xavier_uniform_(weight: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """xavier_uniform over the whole matrix, as every released model initialises its weights.

    Raises:
        TypeError: ``weight`` is not a floating-point tensor. ValueError: it is not a non-empty 2-D matrix.
    """
    if not isinstance(weight, torch.Tensor) or not torch.is_floating_point(weight):
        raise TypeError(f"`weight` must be a floating-point tensor, got "
                        f"{weight.dtype if isinstance(weight, torch.Tensor) else type(weight).__name__}.")
    if weight.dim() != 2 or weight.numel() == 0:
        raise ValueError(f"`weight` must be a non-empty (out, in) matrix, got shape {tuple(weight.shape)}.")
    fan_out, fan_in = weight.shape[0], weight.shape[1]
    bound = (6.0 / (fan_in + fan_out)) ** 0.5
    with torch.no_grad():
        return weight.uniform_(-bound, bound, generator=generator)

