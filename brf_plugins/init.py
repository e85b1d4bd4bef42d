"""Parameter initialisation shared by the core modules and the framework adapters.

Every per-neuron parameter (omega, b', tau) accepts one *init spec*:

* a number: every neuron gets that value;
* a ``(low, high)`` pair: values drawn uniformly, as the paper initialises omega and b';
* a tensor of shape ``(n,)`` (or broadcastable to it): taken as given;
* a callable ``init(n, generator=None) -> Tensor`` returning ``n`` values, e.g. a data-driven initialisation such
  as :class:`brf_plugins.analysis.SpectrumInit` (omega from the dominant frequencies of a dataset).

``omega_init="spectrum"`` names that data-driven choice; it needs the training data, so code that builds models
turns it into a callable first with :func:`resolve_omega_init` (a layer given the bare string raises an error that
says so).

Time constants of ALIF and the LI readout are drawn from a normal distribution in the paper; for those use
:func:`normal_parameter`.

The input-gain helper :func:`default_input_gain` explains the one place where the framework adapters' defaults
differ from the paper's configuration (see its docstring).
"""

from __future__ import annotations

from typing import Optional

import torch

from ._checks import Init, check_dt, check_finite_float, check_omega_init, check_positive_int, init_bounds

__all__ = ["Init", "uniform_or_value", "normal_parameter", "omega_parameter", "b_offset_parameter",
           "resolve_omega_init", "default_input_gain", "xavier_uniform_"]

SPECTRUM = "spectrum"


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
                         f"callable (omega accepts {SPECTRUM!r} after brf_plugins.init.resolve_omega_init).")
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
                         f"initialisation with brf_plugins.init.resolve_omega_init({SPECTRUM!r}, data=train_set, "
                         f"dt={dt:g}) and pass the result as `{name}`.")
    if callable(init) and not isinstance(init, torch.Tensor):
        values = uniform_or_value(name, n, init, generator=generator, dtype=dtype)
        check_omega_init(name, values, dt)
        return values
    check_omega_init(name, init, dt)
    return uniform_or_value(name, n, init, generator=generator, dtype=dtype)


def resolve_omega_init(init, *, data=None, dt: float = 0.01, **spectrum_options):
    """Turn ``omega_init="spectrum"`` into a callable init that reads the frequencies of ``data``.

    Any other spec is returned unchanged, so callers can pass every ``omega_init`` through this function::

        omega_init = resolve_omega_init(args.omega_init, data=train_set, dt=cfg.dt)
        model = RecurrentSNN.from_task(cfg, omega_init=omega_init)

    ``data`` is a Dataset of ``(x, y)`` items with ``x`` of shape ``(T, m)``, or a tensor ``(N, T, m)``.
    ``spectrum_options`` go to :class:`brf_plugins.analysis.SpectrumInit` (e.g. ``max_samples``,
    ``omega_min``). The frequencies are angular, in radians per unit of ``dt * step``, like the neurons' omega,
    and stay below ``0.999 / dt``.

    Example:
        >>> import torch
        >>> from brf_plugins.init import resolve_omega_init, omega_parameter
        >>> t = torch.arange(784.0)
        >>> data = torch.sin(2 * torch.pi * t / 28).reshape(1, 784, 1)   # period 28 steps
        >>> init = resolve_omega_init("spectrum", data=data, dt=0.01)
        >>> omega = omega_parameter(4, init, dt=0.01)
        >>> [round(float(w), 1) for w in omega]        # 2 pi / (28 * 0.01) = 22.4, spread over its FFT bin
        [21.8, 22.3, 22.6, 23.0]
    """
    if not (isinstance(init, str) and init == SPECTRUM):
        return init
    if data is None:
        raise ValueError(f"omega_init={SPECTRUM!r} needs `data`: the training Dataset (items (x, y) with x of "
                         f"shape (T, m)) or a tensor (N, T, m) whose Fourier spectrum gives the frequencies.")
    from .analysis.spectrum import SpectrumInit
    return SpectrumInit(data, dt=check_dt(dt), **spectrum_options)


def b_offset_parameter(n: int, init: Init, *, name: str = "b_offset", generator=None, dtype=None) -> torch.Tensor:
    """Initial raw damping offsets b' (used as |b'|, so any sign is accepted)."""
    return uniform_or_value(name, n, init, generator=generator, dtype=dtype)


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

