"""Argument validation shared by the core and the framework adapters.

Every check raises with a message that names the offending argument and says how to fix it. The checks only
look at Python values, shapes and dtypes, never at tensor contents, so they cost no device synchronisation and
can run on every forward call.
"""

from __future__ import annotations

import math
import numbers
from typing import Sequence, Tuple, Union

import torch

Init = Union[float, Tuple[float, float], torch.Tensor]


def check_positive_int(name: str, value) -> int:
    """``value`` must be an int >= 1 (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be a positive int, got {type(value).__name__} {value!r}.")
    if value < 1:
        raise ValueError(f"`{name}` must be a positive int (>= 1), got {value}.")
    return int(value)


def check_finite_float(name: str, value, *, positive: bool = False, nonnegative: bool = False) -> float:
    """``value`` must be a finite real number; optionally > 0 or >= 0."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"`{name}` must be a scalar, got a tensor of shape {tuple(value.shape)}.")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number, got {type(value).__name__} {value!r}.")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be finite, got {value}.")
    if positive and value <= 0:
        raise ValueError(f"`{name}` must be > 0, got {value}.")
    if nonnegative and value < 0:
        raise ValueError(f"`{name}` must be >= 0, got {value}.")
    return value


def check_dt(dt) -> float:
    """The integration step: a finite float > 0."""
    return check_finite_float("dt", dt, positive=True)


def init_bounds(name: str, init: Init) -> Tuple[float, float]:
    """Lowest and highest value an initialisation spec can produce.

    ``init`` is a number (constant), a ``(low, high)`` pair (uniform range) or a tensor (given values).
    """
    if isinstance(init, torch.Tensor):
        if init.numel() == 0:
            raise ValueError(f"`{name}` is an empty tensor.")
        if not torch.is_floating_point(init):
            raise TypeError(f"`{name}` must be a floating-point tensor, got dtype {init.dtype}.")
        if not bool(torch.isfinite(init).all()):
            raise ValueError(f"`{name}` contains NaN or inf.")
        return float(init.detach().min()), float(init.detach().max())
    if isinstance(init, (tuple, list)):
        if len(init) != 2:
            raise ValueError(f"`{name}` as a range must be a (low, high) pair, got {init!r}.")
        low = check_finite_float(f"{name}[0]", init[0])
        high = check_finite_float(f"{name}[1]", init[1])
        if low > high:
            raise ValueError(f"`{name}` range must have low <= high, got ({low}, {high}).")
        return low, high
    value = check_finite_float(name, init)
    return value, value


def check_omega_init(name: str, init: Init, dt: float) -> None:
    """Resonator frequencies must stay below 1/dt.

    At |omega| >= 1/dt the divergence boundary p(omega) = (-1 + sqrt(1 - (dt*omega)^2)) / dt is NaN, and the
    explicit Euler step can no longer resolve the oscillation. The sign is irrelevant (the neuron uses |omega|).
    """
    low, high = init_bounds(name, init)
    limit = 1.0 / dt
    largest = max(abs(low), abs(high))
    if largest >= limit:
        raise ValueError(
            f"`{name}` reaches |omega| = {largest:g}, at or above 1/dt = {limit:g} (dt = {dt:g}); the divergence "
            f"boundary p(omega) is NaN there. Use frequencies below {limit:g} rad/s or a smaller dt "
            f"(dt < {1.0 / largest:.6g})."
        )


def check_input(name: str, x, *, width: int = None, ndim: Union[int, Sequence[int]] = None,
                width_name: str = "input_size") -> torch.Tensor:
    """A real floating-point tensor with the expected rank and last dimension."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, got {type(x).__name__}.")
    if x.is_complex() or not torch.is_floating_point(x):
        raise TypeError(
            f"`{name}` must be a real floating-point tensor, got dtype {x.dtype}; convert it with `.float()`."
        )
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.dim() not in allowed:
            want = " or ".join(str(n) for n in allowed)
            raise ValueError(f"`{name}` must have {want} dimensions, got shape {tuple(x.shape)}.")
    if width is not None and (x.dim() == 0 or x.shape[-1] != width):
        raise ValueError(
            f"`{name}` has last dimension {x.shape[-1] if x.dim() else '()'} but the layer expects "
            f"{width_name} = {width} (shape {tuple(x.shape)})."
        )
    return x


def check_state(name: str, state: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """A state tensor must match the shape, dtype and device of the tensor it is combined with."""
    if not isinstance(state, torch.Tensor):
        raise TypeError(f"state `{name}` must be a torch.Tensor, got {type(state).__name__}.")
    if state.shape != reference.shape:
        raise ValueError(
            f"state `{name}` has shape {tuple(state.shape)} but the input needs {tuple(reference.shape)}: it was "
            f"made for another batch size or layer. Pass state=None (or reset the neuron) to start from zeros."
        )
    if state.dtype != reference.dtype:
        raise TypeError(f"state `{name}` has dtype {state.dtype} but the input has {reference.dtype}.")
    if state.device != reference.device:
        raise ValueError(
            f"state `{name}` is on {state.device} but the input is on {reference.device}; move one of them."
        )
    return state


def check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be True or False, got {type(value).__name__} {value!r}.")
    return value


def check_current(name: str, x) -> torch.Tensor:
    """One step's input: a real floating tensor with a neuron dimension, no NaN/inf (reads the values: once per
    call of a public step)."""
    check_input(name, x)
    if x.dim() == 0:
        raise ValueError(f"`{name}` must have at least one dimension (..., neurons), got a scalar.")
    return check_finite_tensor(name, x)  # a NaN would silently poison every later state


def check_named_state(name: str, state, expected: type, reference: torch.Tensor) -> tuple:
    """A state of NamedTuple type ``expected`` whose tensors match ``reference`` (shape, dtype, device)."""
    if not isinstance(state, expected):
        raise TypeError(f"`{name}` must be a {expected.__name__}({', '.join(expected._fields)}), got "
                        f"{type(state).__name__}. Pass {name}=None to start from zeros.")
    for field, value in zip(expected._fields, state):
        check_state(field, value, reference)
    return state


def check_choice(name: str, value, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {', '.join(repr(c) for c in choices)}; got {value!r}.")
    return value


def check_finite_tensor(name: str, x: torch.Tensor) -> torch.Tensor:
    """``x`` must hold no NaN or inf.

    This one reads the tensor's contents (one reduction and, on a GPU, one device synchronisation), so callers
    run it once per public call: once per sequence, or once per step where user code steps a module. Skipped
    while torch.compile traces.

    The reduction is a sum: a NaN or an infinity among the values makes it NaN or infinite, so a finite sum
    proves them all finite (one kernel; ``isfinite().all()`` is two and a boolean temporary, a third of a small
    neuron step's time). Only a non-finite sum (a NaN, an inf, or finite values whose sum overflows) is looked
    at element by element.
    """
    if torch.compiler.is_compiling():  # a data-dependent branch would break the graph; eager runs check
        return x
    if not x.numel() or x.is_meta or math.isfinite(float(x.detach().sum())):
        return x
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"`{name}` contains NaN or inf; clean the input (e.g. torch.nan_to_num) or find where "
                         f"it was produced. A NaN would spread through the state of every later step.")
    return x


def check_nonempty(name: str, x: torch.Tensor, dim: int, what: str) -> torch.Tensor:
    """Dimension ``dim`` of ``x`` (the batch or time axis) must not be empty."""
    if x.shape[dim] == 0:
        if what == "time":
            raise ValueError(f"`{name}` has no time steps (shape {tuple(x.shape)}); sequences need T >= 1.")
        raise ValueError(f"`{name}` has an empty {what} dimension (shape {tuple(x.shape)}); pass at least one "
                         f"sample (B >= 1).")
    return x


def check_like_module(name: str, x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``x`` must be on the device and have the dtype of a module's parameters (``reference``)."""
    if x.device != reference.device:
        raise ValueError(f"`{name}` is on {x.device} but the module's parameters are on {reference.device}; move "
                         f"one of them (e.g. `{name}.to({str(reference.device)!r})` or `module.to(...)`).")
    if x.dtype != reference.dtype:
        raise TypeError(f"`{name}` has dtype {x.dtype} but the module's parameters have {reference.dtype}; convert "
                        f"one of them (e.g. `{name}.to({reference.dtype})` or `module.to({x.dtype})`).")
    return x


HALF_DTYPES = (torch.float16, torch.bfloat16)


def _autocast_enabled(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4: no device argument
        return torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()


def check_neuron_input(owner: str, name: str, x, reference: torch.Tensor, *, width: int = None,
                       width_name: str = "input_size", ndim=None) -> torch.Tensor:
    """The input of a public neuron entry point, checked against its parameters (``reference``): the one dtype
    policy of the package.

    * The neurons run in float32 or float64: parameters in float16/bfloat16 are rejected (the resonator's state
      drifts: 1-2 % of the spikes differ after a few hundred steps).
    * Under ``torch.autocast`` a lower-precision input (a ``Linear``'s bf16 output) is cast up to the parameters'
      dtype, as autocast itself runs precision-sensitive ops in float32; the state stays in that dtype.
    * Otherwise another dtype than the parameters' is a ``TypeError`` saying how to convert.

    Returns ``x`` (cast where autocast asks for it), after the shape, device and NaN/inf checks.
    """
    check_input(name, x, width=width, width_name=width_name, ndim=ndim)
    if x.dim() == 0:
        raise ValueError(f"`{name}` must have at least one dimension (..., neurons), got a scalar.")
    if reference.dtype in HALF_DTYPES:
        raise TypeError(f"{owner}'s parameters are {reference.dtype}: its dynamics are not accurate in half "
                        f"precision. Keep the neuron in float32 (module.float()); under torch.autocast it casts its "
                        f"input itself.")
    if x.device != reference.device:
        raise ValueError(f"`{name}` is on {x.device} but {owner}'s parameters are on {reference.device}; move one "
                         f"of them (e.g. `{name}.to({str(reference.device)!r})` or `module.to(...)`).")
    if x.dtype != reference.dtype:
        if x.dtype in HALF_DTYPES and _autocast_enabled(x.device.type):
            x = x.to(reference.dtype)
        elif x.dtype in HALF_DTYPES:
            raise TypeError(f"`{name}` has dtype {x.dtype} but {owner}'s parameters have {reference.dtype}; convert "
                            f"it (`{name}.to({reference.dtype})`), or run under torch.autocast, where the neuron "
                            f"casts it itself.")
        else:
            raise TypeError(f"`{name}` has dtype {x.dtype} but {owner}'s parameters have {reference.dtype}; "
                            f"convert one of them (`{name}.to({reference.dtype})` or `module.to({x.dtype})`).")
    return check_finite_tensor(name, x)


def check_state_tuple(name: str, state, names: Sequence[str], reference: torch.Tensor) -> tuple:
    """A state tuple with one tensor per name, each matching ``reference`` (shape, dtype, device)."""
    if not isinstance(state, (tuple, list)):
        raise TypeError(f"`{name}` must be a tuple ({', '.join(names)}), got {type(state).__name__}.")
    if len(state) != len(names):
        raise ValueError(f"`{name}` must be a tuple ({', '.join(names)}) of {len(names)} tensors, got {len(state)}: "
                         f"it belongs to another neuron kind or module. Pass None to start from zeros.")
    return tuple(check_state(n, s, reference) for n, s in zip(names, state))


def check_callable(name: str, value, allow_none: bool = True):
    if value is None and allow_none:
        return value
    if not callable(value):
        raise TypeError(f"`{name}` must be callable (e.g. brf_plugins.surrogate.double_gaussian()), got "
                        f"{type(value).__name__} {value!r}.")
    return value


def check_threshold(name: str, value):
    """A threshold: a number > 0 (``inf``: a neuron that never fires) or a tensor (learnable or per neuron)."""
    if isinstance(value, torch.Tensor):
        if not torch.is_floating_point(value):
            raise TypeError(f"`{name}` must be a floating-point tensor, got dtype {value.dtype}.")
        if not value.requires_grad and bool(torch.isnan(value).any()):
            raise ValueError(f"`{name}` contains NaN.")
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number or a tensor, got {type(value).__name__} {value!r}.")
    if math.isnan(value):
        raise ValueError(f"`{name}` is NaN.")
    if value <= 0:
        raise ValueError(f"`{name}` must be > 0, got {value}: a threshold at or below the resting membrane makes the "
                         f"neuron fire on every step (the refractory variable then grows until the state is NaN).")
    return float(value)


def check_unit_interval(name: str, value, *, closed_high: bool = False) -> float:
    """A float in [0, 1) (or [0, 1] with ``closed_high``), e.g. a decay factor."""
    value = check_finite_float(name, value)
    if value < 0 or value > 1 or (value == 1 and not closed_high):
        raise ValueError(f"`{name}` must be in [0, 1{']' if closed_high else ')'}, got {value}.")
    return value


def check_step_inputs(current, states: dict, params: dict, dt=None, name: str = "current") -> None:
    """Structural checks of a one-step function's arguments (no look at the values except NaN).

    ``current`` is a real floating tensor; each state has its shape, dtype and device; each parameter is a real
    floating tensor on the same device whose size is 1 or the last dimension of ``current``; ``dt`` > 0.
    """
    check_input(name, current)
    if current.dim() == 0:
        raise ValueError(f"`{name}` must have at least one dimension (neurons), got a 0-dim tensor.")
    for sname, s in states.items():
        check_state(sname, s, current)
    width = current.shape[-1]
    for pname, p in params.items():
        if not isinstance(p, torch.Tensor):
            raise TypeError(f"`{pname}` must be a torch.Tensor of shape ({width},), got {type(p).__name__}.")
        if p.is_complex() or not torch.is_floating_point(p):
            raise TypeError(f"`{pname}` must be a real floating-point tensor, got dtype {p.dtype}.")
        if p.device != current.device:
            raise ValueError(f"`{pname}` is on {p.device} but `{name}` is on {current.device}; move one of them.")
        if p.dim() > 1 or p.numel() not in (1, width):
            raise ValueError(f"`{pname}` must have shape ({width},) (one value per neuron) or (1,), got "
                             f"{tuple(p.shape)} for `{name}` of shape {tuple(current.shape)}.")
    if dt is not None:
        check_step_scalar("dt", dt, positive=True)
    check_finite_tensor(name, current)


def check_step_scalar(name: str, value, *, unit_interval: bool = False, positive: bool = False) -> None:
    """A step's scalar constant (``theta``, ``gamma``, ``dt``, ``beta``): a real number that is not NaN.

    ``inf`` is allowed where meaningful (``theta = inf``: a neuron that never fires). Tensors (per-neuron
    constants) are accepted as they are: their values are not read on the per-step path.
    """
    if isinstance(value, torch.Tensor):
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number, got {type(value).__name__} {value!r}.")
    if math.isnan(value):
        raise ValueError(f"`{name}` is NaN.")
    if positive and not (0 < value < math.inf):
        raise ValueError(f"`{name}` must be a finite number > 0, got {value}.")
    if unit_interval and not (0 <= value < 1):
        raise ValueError(f"`{name}` must be in [0, 1), got {value}.")
