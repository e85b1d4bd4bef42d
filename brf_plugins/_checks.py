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
        return float(init.min()), float(init.max())
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


def check_choice(name: str, value, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {', '.join(repr(c) for c in choices)}; got {value!r}.")
    return value
