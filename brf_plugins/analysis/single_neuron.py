r"""Single-neuron simulations: membrane traces, phase portraits, spikes and the refractory variable.

The paper's Figures 1, 2 and 10 drive one resonator with a spike train timed at its own frequency and show how
the vanilla RF diverges or fires continuously, and how the refractory period (RP), the smooth reset (SmR) and the
divergence boundary (DB) of the BRF neuron make it fire sparsely in phase with its oscillation.
:func:`simulate_neuron` runs one or many neurons by calling the one-step updates of
:mod:`brf_plugins.functional` (no equation is restated here) in float64 without gradients;
:data:`MECHANISMS` adds the balancing mechanisms one at a time through ``brf_step``'s ablation switches.

Example:
    >>> from brf_plugins.analysis import spike_train, simulate_neuron, plot_neuron_trace
    >>> current = 150.0 * spike_train(10 / (2 * 3.14159), steps=600, dt=0.01)   # in phase with omega = 10
    >>> trace = simulate_neuron(current, "brf", omega=10.0, b_offset=0.5)
    >>> trace.u.shape, int(trace.z.sum()) > 0
    ((600, 1), True)
    >>> fig, data = plot_neuron_trace(trace)       # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from .. import functional as F
from .._checks import check_choice, check_dt, check_finite_float, check_positive_int
from ..surrogate import heaviside
from ._plotting import PlotResult, new_figure

__all__ = ["SINGLE_NEURONS", "MECHANISMS", "NeuronTrace", "spike_train", "simulate_neuron", "compare_mechanisms",
           "plot_neuron_trace", "plot_phase_portrait"]

SINGLE_NEURONS = ("brf", "rf", "bhrf", "izhikevich")
"""Neuron kinds :func:`simulate_neuron` runs: ``brf_step``, ``rf_step``, ``bhrf_step``, ``izhikevich_step``."""

MECHANISMS: Dict[str, dict] = {
    "RF": dict(neuron="rf"),
    "RF + RP": dict(neuron="brf", divergence_boundary=False, smooth_reset=False),
    "RF + SmR": dict(neuron="brf", divergence_boundary=False, refractory=False),
    "RF + RP + SmR": dict(neuron="brf", divergence_boundary=False),
    "BRF": dict(neuron="brf"),
}
"""The balancing mechanisms added one at a time (paper Figures 2 and 10): the vanilla RF without reset, with the
refractory period (threshold :math:`\\vartheta + q_{t-1}`), with the smooth reset (damping :math:`-b' - q_{t-1}`),
with both, and the BRF (both plus the divergence boundary :math:`p(\\omega)` in the damping)."""

ArrayLike = Union[float, Sequence[float], np.ndarray, torch.Tensor]


@dataclass
class NeuronTrace:
    """A simulated neuron population: every array is ``(T, n)`` (time first), parameters are ``(n,)``.

    ``u``/``v``: real and imaginary membrane (BHRF: velocity and position); ``z``: spikes; ``q``: refractory
    variable (zeros for RF and Izhikevich, which have none); ``threshold``: the effective threshold of each step
    (:math:`\\vartheta + q_{t-1}` with the refractory period, else :math:`\\vartheta`); ``current``: the input.
    """

    name: str
    neuron: str
    dt: float
    theta: float
    time: np.ndarray
    current: np.ndarray
    u: np.ndarray
    v: np.ndarray
    z: np.ndarray
    q: np.ndarray
    threshold: np.ndarray
    omega: np.ndarray
    b_offset: np.ndarray
    options: dict = field(default_factory=dict)

    @property
    def magnitude(self) -> np.ndarray:
        r"""Oscillation amplitude per step: :math:`|U| = \sqrt{u^2 + v^2}` (BHRF: :math:`\sqrt{u^2 + \omega^2 v^2}`,
        the velocity amplitude of the harmonic oscillator)."""
        if self.neuron == "bhrf":
            return np.sqrt(self.u ** 2 + (np.abs(self.omega) * self.v) ** 2)
        return np.hypot(self.u, self.v)

    @property
    def spike_counts(self) -> np.ndarray:
        """Spikes per neuron, ``(n,)``."""
        return self.z.sum(axis=0)

    def spike_times(self, neuron: int = 0) -> np.ndarray:
        """Times (in units of ``dt * step``) at which neuron ``neuron`` fired."""
        return self.time[self.z[:, neuron] > 0]


def spike_train(frequency: ArrayLike, steps: int, dt: float = F.DEFAULT_DT, amplitude: float = 1.0,
                phase: float = 0.0) -> np.ndarray:
    r"""Regular input spikes at ``frequency`` (cycles per unit of time), each on the step nearest its time.

    Spike ``n`` is due at :math:`t_n = (n + \text{phase}) / f` and lands on step :math:`\mathrm{round}(t_n/\delta)`,
    so the mean rate is exactly ``frequency`` even when the period is not a whole number of steps. A neuron with
    angular frequency :math:`\omega` resonates at :math:`f = \omega / 2\pi`.

    Returns ``(steps,)`` for a scalar frequency, ``(steps, k)`` for ``k`` frequencies; values are ``amplitude``
    per spike (several spikes falling on one step add up).
    """
    steps = check_positive_int("steps", steps)
    dt = check_dt(dt)
    freq = np.asarray(frequency, dtype=np.float64)
    if not np.all(np.isfinite(freq)) or np.any(freq < 0):
        raise ValueError(f"`frequency` must be finite and >= 0, got {frequency!r}.")
    phase = check_finite_float("phase", phase, nonnegative=True)
    k = np.arange(steps, dtype=np.float64).reshape((steps,) + (1,) * freq.ndim)
    # spikes due before the end of step k: #{n >= 0 : (n + phase) / f < (k + 1/2) dt}
    due = np.maximum(np.ceil((k + 0.5) * dt * freq - phase), 0.0)
    counts = np.diff(due, axis=0, prepend=0.0)
    return amplitude * counts


def _as_column(name: str, value: ArrayLike) -> np.ndarray:
    array = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value, dtype=np.float64)
    if array.ndim > 1:
        raise ValueError(f"`{name}` must be a number or a 1-D array of per-neuron values, got shape {array.shape}.")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"`{name}` contains NaN or inf.")
    return array.reshape(-1)


def simulate_neuron(current: ArrayLike, neuron: str = "brf", omega: ArrayLike = 10.0, b_offset: ArrayLike = 0.0,
                    dt: float = F.DEFAULT_DT, theta: float = F.DEFAULT_THETA, gamma: float = F.DEFAULT_GAMMA, *,
                    divergence_boundary: bool = True, refractory: bool = True, smooth_reset: bool = True,
                    reset: str = "none", variant: str = "code", name: Optional[str] = None) -> NeuronTrace:
    r"""Run neurons of one kind over an input current, from rest, with the core one-step updates (float64).

    Args:
        current: input current :math:`I_t`, ``(T,)`` for one neuron or ``(T, n)``; remember the resonators
            integrate :math:`\delta I_t` per step, so a spike of amplitude 100 moves ``u`` by 1 at ``dt = 0.01``.
        neuron: ``"brf"``, ``"rf"``, ``"bhrf"`` or ``"izhikevich"``.
        omega, b_offset: raw parameters, a number or ``(n,)`` (broadcast against the current's columns).
        dt, theta, gamma: integration step, threshold (``float("inf")`` keeps the neuron subthreshold), decay of q.
        divergence_boundary, refractory, smooth_reset: the BRF ablation switches of :func:`brf_step`.
        reset: the RF's ``"none"``/``"soft"``/``"hard"`` reset. variant: the BHRF variant.
        name: label used by the plots (default: the neuron kind).

    Returns:
        :class:`NeuronTrace` with ``(T, n)`` arrays.
    """
    check_choice("neuron", neuron, SINGLE_NEURONS)
    dt = check_dt(dt)
    theta = float(theta)
    if math.isnan(theta):
        raise ValueError("`theta` must not be NaN (use float('inf') for a neuron that never fires).")
    gamma = check_finite_float("gamma", gamma)
    currents = np.asarray(current.detach().cpu() if isinstance(current, torch.Tensor) else current,
                          dtype=np.float64)
    if currents.ndim == 1:
        currents = currents[:, None]
    if currents.ndim != 2 or currents.shape[0] == 0:
        raise ValueError(f"`current` must be (T,) or (T, n) with T >= 1, got shape {currents.shape}.")
    if not np.all(np.isfinite(currents)):
        raise ValueError("`current` contains NaN or inf.")
    omegas, offsets = _as_column("omega", omega), _as_column("b_offset", b_offset)
    try:
        n = np.broadcast_shapes((currents.shape[1],), omegas.shape, offsets.shape)[0]
    except ValueError:
        raise ValueError(f"`current` has {currents.shape[1]} columns, `omega` {omegas.size} and `b_offset` "
                         f"{offsets.size} values: give one value or one per neuron.") from None
    if neuron == "brf" and np.any(np.abs(omegas) >= 1.0 / dt):
        raise ValueError(f"`omega` reaches {np.abs(omegas).max():g} >= 1/dt = {1 / dt:g}: p(omega) is undefined "
                         f"there (brf_step would clamp it to {F.max_omega(dt):g}). Use a smaller omega or dt.")
    currents = np.broadcast_to(currents, (currents.shape[0], n))
    omega_t = torch.as_tensor(np.broadcast_to(omegas, (n,)).copy())
    offset_t = torch.as_tensor(np.broadcast_to(offsets, (n,)).copy())
    drive = torch.from_numpy(np.array(currents, dtype=np.float64))

    zeros = torch.zeros(n, dtype=torch.float64)
    u, v, q = zeros.clone(), zeros.clone(), zeros.clone()
    keys = ("u", "v", "z", "q", "threshold")
    steps = {key: [] for key in keys}
    with torch.no_grad():
        for current_t in drive:
            threshold = theta + q if (neuron == "bhrf" or (neuron == "brf" and refractory)) else theta + zeros
            if neuron == "brf":
                z, u, v, q = F.brf_step(current_t, u, v, q, omega_t, offset_t, dt, theta, gamma, heaviside,
                                        divergence_boundary=divergence_boundary, refractory=refractory,
                                        smooth_reset=smooth_reset)
            elif neuron == "rf":
                z, u, v = F.rf_step(current_t, u, v, omega_t, offset_t, dt, theta, heaviside, reset=reset)
            elif neuron == "bhrf":
                z, u, v, q = F.bhrf_step(current_t, u, v, q, omega_t, offset_t, dt, theta, gamma, heaviside,
                                         variant=variant)
            else:
                z, u, v = F.izhikevich_step(current_t, u, v, omega_t, offset_t, dt, theta, heaviside)
            for key, value in zip(keys, (u, v, z, q, threshold)):
                steps[key].append(value)
    out = {key: torch.stack(values).numpy() for key, values in steps.items()}
    options = dict(divergence_boundary=divergence_boundary, refractory=refractory, smooth_reset=smooth_reset,
                   reset=reset, variant=variant, gamma=gamma)
    return NeuronTrace(name=name or neuron, neuron=neuron, dt=dt, theta=theta,
                       time=np.arange(drive.shape[0]) * dt, current=np.array(currents), u=out["u"], v=out["v"],
                       z=out["z"], q=out["q"], threshold=out["threshold"], omega=omega_t.numpy(),
                       b_offset=offset_t.numpy(), options=options)


def compare_mechanisms(current: ArrayLike, omega: ArrayLike = 10.0, b_offset: ArrayLike = 0.0,
                       dt: float = F.DEFAULT_DT, variants: Optional[Mapping[str, dict]] = None,
                       **common) -> Dict[str, NeuronTrace]:
    """Simulate the same input with each variant (default :data:`MECHANISMS`); returns ``{name: trace}``.

    ``variants`` maps a label to :func:`simulate_neuron` keyword arguments (``neuron`` plus switches);
    ``common`` keywords (``theta``, ``gamma``, ...) apply to all.
    """
    variants = MECHANISMS if variants is None else variants
    traces = {}
    for label, options in variants.items():
        options = {**common, **options}
        kind = options.pop("neuron", "brf")
        traces[label] = simulate_neuron(current, kind, omega, b_offset, dt, name=label, **options)
    return traces


def _as_traces(traces) -> Dict[str, NeuronTrace]:
    if isinstance(traces, NeuronTrace):
        return {traces.name: traces}
    if isinstance(traces, Mapping) and traces and all(isinstance(t, NeuronTrace) for t in traces.values()):
        return dict(traces)
    if isinstance(traces, (list, tuple)) and traces and all(isinstance(t, NeuronTrace) for t in traces):
        return {t.name: t for t in traces}
    raise TypeError("`traces` must be a NeuronTrace, a non-empty mapping name -> NeuronTrace or a list of them "
                    "(from simulate_neuron / compare_mechanisms).")


def _check_index(traces: Dict[str, NeuronTrace], index: int) -> int:
    width = min(t.u.shape[1] for t in traces.values())
    if not isinstance(index, int) or not -width <= index < width:
        raise IndexError(f"`neuron_index` {index!r} is out of range for traces of {width} neuron(s).")
    return index


def plot_neuron_trace(traces, neuron_index: int = 0, *, show_v: bool = True, width: float = 8.0) -> PlotResult:
    """Membrane, threshold, spikes and refractory variable over time, one panel pair per trace (Figures 1, 2, 10).

    Top panel: ``u`` (and ``v``), the effective threshold and the output spikes (ticks at the top); bottom
    panel: ``q`` and the input spikes (grey ticks). ``traces`` is a :class:`NeuronTrace` or ``{name: trace}``.
    Returns :class:`PlotResult` ``(figure, {name: trace})``.
    """
    traces = _as_traces(traces)
    i = _check_index(traces, neuron_index)
    fig, axes = new_figure(2 * len(traces), 1, width=width, height=2.6 * len(traces),
                           gridspec_kw=dict(height_ratios=[3, 1] * len(traces)), sharex=True)
    for row, (label, tr) in enumerate(traces.items()):
        ax, ax_q = axes[2 * row, 0], axes[2 * row + 1, 0]
        ax.plot(tr.time, tr.u[:, i], color="C0", lw=1.0, label="u (real)")
        if show_v:
            ax.plot(tr.time, tr.v[:, i], color="C1", lw=0.8, alpha=0.6, label="v (imag.)")
        if np.isfinite(tr.threshold[:, i]).all():
            ax.plot(tr.time, tr.threshold[:, i], color="k", ls="--", lw=0.8, label="threshold")
        spikes = tr.spike_times(i)
        ax.plot(spikes, np.full(spikes.shape, 1.0), "|", color="C3", ms=10, mew=1.5,
                transform=ax.get_xaxis_transform(), clip_on=False, label=f"spikes ({spikes.size})")
        ax.set_title(f"{label}: omega={tr.omega[i]:g}, b'={abs(tr.b_offset[i]):g}, dt={tr.dt:g}", fontsize=9)
        ax.set_ylabel("membrane")
        ax.legend(loc="upper right", fontsize=7, ncol=4)
        ax_q.plot(tr.time, tr.q[:, i], color="C2", lw=1.0, label="q")
        inputs = tr.time[tr.current[:, i] != 0]
        ax_q.plot(inputs, np.zeros(inputs.shape), "|", color="0.5", ms=6, transform=ax_q.get_xaxis_transform(),
                  label="input")
        ax_q.set_ylabel("q")
        ax_q.legend(loc="upper right", fontsize=7, ncol=2)
    axes[-1, 0].set_xlabel("time (dt * step)")
    return PlotResult(fig, traces)


def plot_phase_portrait(traces, neuron_index: int = 0, *, size: float = 3.2) -> PlotResult:
    """Phase portrait ``v`` against ``u`` per trace, spikes marked in red, start as a black dot.

    A diverging neuron spirals outwards, a balanced one stays bounded. Returns ``(figure, {name: trace})``.
    """
    traces = _as_traces(traces)
    i = _check_index(traces, neuron_index)
    fig, axes = new_figure(1, len(traces), width=size * len(traces), height=size)
    for ax, (label, tr) in zip(axes[0], traces.items()):
        ax.plot(tr.u[:, i], tr.v[:, i], lw=0.7, color="C0")
        fired = tr.z[:, i] > 0
        ax.plot(tr.u[fired, i], tr.v[fired, i], ".", color="C3", ms=4, label="spike")
        ax.plot([0.0], [0.0], "o", color="k", ms=3)
        if np.isfinite(tr.theta):
            ax.axvline(tr.theta, color="k", ls="--", lw=0.7)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("u (real)")
        ax.set_ylabel("v (imag.)" if tr.neuron != "bhrf" else "v (position)")
    return PlotResult(fig, traces)
