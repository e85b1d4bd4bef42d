r"""Frequency response of a resonator (paper section 3, appendix A.4, Figures 3 and 8).

A neuron of angular frequency :math:`\omega` is driven by regular input spikes of frequency :math:`f` for 20 time
units; its response is the mean membrane magnitude :math:`\overline{|U_t|}` over the sequence. The curve peaks
near the natural frequency :math:`f_0 = \omega / 2\pi` (slightly off it: the explicit Euler step turns
:math:`\omega` into the discrete rotation :math:`\arg(1 + \delta(b + i\omega))` per step, an offset that
vanishes as :math:`\delta \to 0`), and again at the subharmonics :math:`f_0/2, f_0/3, \dots` (one input spike
every second, third, ... cycle). The neuron is kept subthreshold (:math:`\vartheta = \infty`) so the response is
the membrane's own; the simulation calls the core steps through
:func:`brf_plugins.analysis.simulate_neuron`.

Example:
    >>> from brf_plugins.analysis import frequency_response
    >>> r = frequency_response(omega=10.0, b_offset=0.1)
    >>> abs(r.peak_frequency / r.natural_frequency - 1) < 0.1
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from .. import functional as F
from .._checks import check_choice, check_dt, check_finite_float, check_positive_int
from ._plotting import PlotResult, new_figure
from .single_neuron import simulate_neuron, spike_train
from .stability import free_step_eigenvalues

__all__ = ["FrequencyResponse", "frequency_response", "plot_frequency_response"]


@dataclass
class FrequencyResponse:
    """Mean membrane magnitude per input frequency.

    ``frequencies`` ``(k,)`` in cycles per unit of time; ``response`` ``(k,)``; ``natural_frequency`` is
    :math:`\\omega / 2\\pi`; ``peak_frequency`` the frequency of the largest response; ``discrete_frequency`` the
    resonance of the discrete one-step map, :math:`\\arg\\lambda / (2\\pi\\delta)` with :math:`\\lambda` its
    eigenvalue (:math:`1 + \\delta(b + i\\omega)` for RF/BRF).
    """

    neuron: str
    omega: float
    b_offset: float
    dt: float
    duration: float
    frequencies: np.ndarray
    response: np.ndarray
    natural_frequency: float
    discrete_frequency: float

    @property
    def peak_frequency(self) -> float:
        return float(self.frequencies[np.argmax(self.response)])

    @property
    def relative_frequencies(self) -> np.ndarray:
        """``frequencies / natural_frequency``: 1 is the resonance, 1/2 and 1/3 the first subharmonics."""
        return self.frequencies / self.natural_frequency


def frequency_response(omega: float = 10.0, b_offset: float = 0.1, dt: float = F.DEFAULT_DT, neuron: str = "brf",
                       *, frequencies: Optional[Sequence[float]] = None, relative_range=(0.05, 2.5),
                       points: int = 400, duration: float = 20.0, variant: str = "code",
                       divergence_boundary: bool = True) -> FrequencyResponse:
    r"""Response of one neuron (``"brf"``, ``"rf"`` or ``"bhrf"``) to regular input spikes of many frequencies.

    Args:
        omega, b_offset: the neuron's parameters (raw values, used as absolute values).
        dt: integration step (the spec's 0.01 by default).
        frequencies: input frequencies in cycles per unit of time; default ``points`` values over
            ``relative_range`` times :math:`\omega/2\pi`.
        duration: length of each input in units of time (the paper's 20), i.e. ``round(duration / dt)`` steps.
        variant: the BHRF variant; divergence_boundary: the BRF's :math:`p(\omega)` switch.

    All frequencies run as one batch of neurons with the same parameters, from rest, with unit input spikes.
    """
    check_choice("neuron", neuron, ("brf", "rf", "bhrf"))
    dt = check_dt(dt)
    omega = check_finite_float("omega", omega, positive=True)
    b_offset = check_finite_float("b_offset", b_offset)
    duration = check_finite_float("duration", duration, positive=True)
    natural = omega / (2 * math.pi)
    if frequencies is None:
        low = check_finite_float("relative_range[0]", relative_range[0], positive=True)
        high = check_finite_float("relative_range[1]", relative_range[1], positive=True)
        if low >= high:
            raise ValueError(f"`relative_range` must be (low, high) with low < high, got {relative_range!r}.")
        frequencies = natural * np.linspace(low, high, check_positive_int("points", points))
    frequencies = np.asarray(frequencies, dtype=np.float64).reshape(-1)
    if frequencies.size == 0 or not np.all(np.isfinite(frequencies)) or np.any(frequencies <= 0):
        raise ValueError("`frequencies` must be a non-empty sequence of positive, finite values.")
    steps = max(int(round(duration / dt)), 1)
    drive = spike_train(frequencies, steps, dt)
    trace = simulate_neuron(drive, neuron, omega, b_offset, dt, theta=float("inf"), variant=variant,
                            divergence_boundary=divergence_boundary)
    response = trace.magnitude.mean(axis=0)
    eigenvalues = free_step_eigenvalues(neuron, omega, b_offset, dt, variant=variant,
                                        divergence_boundary=divergence_boundary)
    # the oscillating eigenvalue rotates by arg(lambda) per step: resonance at arg / (2 pi dt)
    discrete = float(np.abs(np.angle(eigenvalues[0])).max() / (2 * math.pi * dt))
    return FrequencyResponse(neuron=neuron, omega=omega, b_offset=b_offset, dt=dt, duration=steps * dt,
                             frequencies=frequencies, response=response, natural_frequency=natural,
                             discrete_frequency=discrete)


def plot_frequency_response(responses, *, relative: bool = True, normalise: bool = True,
                            subharmonics: int = 3, width: float = 7.0, height: float = 4.0) -> PlotResult:
    """Frequency-response curves (Figures 3 and 8), one line per :class:`FrequencyResponse`.

    ``relative`` puts :math:`f / f_0` on the x axis (the resonance at 1, subharmonics at 1/2, 1/3, ... marked by
    dotted lines); ``normalise`` scales each curve to its maximum. ``responses`` is one result, a list, or a
    mapping ``{label: result}``. Returns ``(figure, {label: result})``.
    """
    if isinstance(responses, FrequencyResponse):
        responses = [responses]
    if not isinstance(responses, dict):
        responses = {f"{r.neuron.upper()} omega={r.omega:g}, b'={abs(r.b_offset):g}": r for r in responses}
    if not responses or not all(isinstance(r, FrequencyResponse) for r in responses.values()):
        raise TypeError("`responses` must be FrequencyResponse results (from frequency_response).")
    fig, axes = new_figure(1, 1, width=width, height=height)
    ax = axes[0, 0]
    for i, (label, r) in enumerate(responses.items()):
        x = r.relative_frequencies if relative else r.frequencies
        y = r.response / r.response.max() if normalise else r.response
        ax.plot(x, y, color=f"C{i % 10}", lw=1.2, label=label)
        if not relative:
            ax.axvline(r.natural_frequency, color=f"C{i % 10}", ls="--", lw=0.8)
    if relative:
        ax.axvline(1.0, color="k", ls="--", lw=0.8, label="omega / 2 pi")
        for k in range(2, subharmonics + 1):
            ax.axvline(1.0 / k, color="0.4", ls=":", lw=0.8, label="subharmonics" if k == 2 else None)
    ax.set_xlabel("input frequency / (omega / 2 pi)" if relative else "input frequency (cycles per unit time)")
    ax.set_ylabel("mean |U| (normalised)" if normalise else "mean |U|")
    ax.set_title(f"Frequency response (dt = {next(iter(responses.values())).dt:g})", fontsize=10)
    ax.legend(fontsize=7)
    return PlotResult(fig, responses)
