r"""Trained resonator parameters: omega-b scatter and histograms, initial versus trained (paper Figure 5).

:func:`neuron_parameters` reads a model's effective per-neuron values (:math:`\omega`, :math:`|b'|` and the
damping :math:`b` at :math:`q = 0`) through :func:`brf_plugins.analysis.model_stability`;
:func:`plot_parameters` draws the paper's panels: the :math:`(\omega, b)` plane with the divergence boundary, and
histograms of :math:`\omega` and :math:`b'`, for any number of models (e.g. ``{"initial": ..., "trained": ...}``).

Example:
    >>> from brf_plugins import RecurrentSNN
    >>> from brf_plugins.analysis import neuron_parameters
    >>> p = neuron_parameters(RecurrentSNN.from_task("ecg"))
    >>> p.omega.shape, bool(((p.omega >= 3) & (p.omega <= 5)).all())
    ((36,), True)
"""

from __future__ import annotations

from typing import Mapping, Optional

import numpy as np

from ._plotting import PlotResult, new_figure
from .stability import StabilityReport, divergence_boundary_curves, model_stability

__all__ = ["NeuronParameters", "neuron_parameters", "plot_parameters"]


NeuronParameters = StabilityReport
"""The effective per-neuron parameters ``(h,)`` of a resonator layer are the fields of its stability report:
``omega``, ``b_offset`` (:math:`|b'|`), ``damping`` (:math:`b` at :math:`q = 0`; NaN for BHRF), ``radius`` (the
spectral radius of the free step), and more."""


def neuron_parameters(model, name: Optional[str] = None) -> NeuronParameters:
    """The effective parameters of the resonator layer of ``model`` (see :func:`model_stability`)."""
    return model_stability(model, name=name)


def _as_parameter_sets(models) -> dict:
    if isinstance(models, NeuronParameters):
        return {models.name: models}
    if not isinstance(models, Mapping) or not models:
        raise TypeError("`models` must be NeuronParameters or a non-empty mapping label -> model or "
                        "NeuronParameters (e.g. {'initial': init_model, 'trained': model}).")
    return {label: m if isinstance(m, NeuronParameters) else neuron_parameters(m, name=label)
            for label, m in models.items()}


def plot_parameters(models, *, bins: int = 30, width: float = 12.0, height: float = 3.8) -> PlotResult:
    """The paper's Figure 5 panels for one or more models.

    Left: :math:`(\\omega, b)` with the divergence boundary :math:`p(\\omega)` (dashed); middle: histogram of
    :math:`\\omega`; right: histogram of :math:`b'` (log-spaced bins). ``models``: ``{label: model or
    NeuronParameters}``, drawn in order (put ``"initial"`` first). Returns ``(figure, {label: NeuronParameters})``.
    """
    sets = _as_parameter_sets(models)
    fig, axes = new_figure(1, 3, width=width, height=height)
    ax_s, ax_w, ax_b = axes[0]
    omega_max = max(float(p.omega.max()) for p in sets.values())
    dts = sorted({p.dt for p in sets.values()})
    curves = divergence_boundary_curves(dts, omega_max=omega_max * 1.05 + 1e-9)
    for k, dt in enumerate(curves.dt):
        ax_s.plot(curves.omega, curves.p[k], color="k", ls="--", lw=0.9, label=f"p(omega), dt = {dt:g}")
    omega_bins = np.linspace(0.0, omega_max * 1.05 + 1e-9, bins + 1)
    offsets = np.concatenate([p.b_offset for p in sets.values()])
    positive = offsets[offsets > 0]
    low = max(float(positive.min()) if positive.size else 1e-3, 1e-6)
    high = max(float(offsets.max()), low * 10)
    offset_bins = np.geomspace(low, high, bins + 1)
    for i, (label, p) in enumerate(sets.items()):
        color = f"C{i}"
        if not np.isnan(p.damping).all():
            ax_s.scatter(p.omega, p.damping, s=9, alpha=0.6, color=color, label=label)
        ax_w.hist(p.omega, bins=omega_bins, alpha=0.5, color=color, label=label)
        ax_b.hist(np.clip(p.b_offset, low, None), bins=offset_bins, alpha=0.5, color=color, label=label)
    ax_s.set_xlabel("omega")
    ax_s.set_ylabel("damping b (q = 0)")
    ax_s.legend(fontsize=7)
    ax_w.set_xlabel("omega")
    ax_w.set_ylabel("neurons")
    ax_w.legend(fontsize=7)
    ax_b.set_xscale("log")
    ax_b.set_xlabel("|b'|")
    ax_b.legend(fontsize=7)
    return PlotResult(fig, sets)
