r"""The divergence boundary and the stability of trained resonators (paper section 3, A.5, A.11; spec 1.1, 9.13).

Without input, spikes and refractory state a resonator is linear: one step maps :math:`(u, v)` through a 2x2
matrix :math:`M`. The membrane never grows iff the spectral radius :math:`\rho(M) \le 1`. For the RF and BRF
:math:`M` is the rotation-scaling by :math:`1 + \delta(b + i\omega)`, so
:math:`\rho = |1 + \delta(b + i\omega)|` (:func:`brf_plugins.functional.one_step_radius`), and
:math:`\rho \le 1 \iff b \le p(\omega) = (-1 + \sqrt{1 - (\delta\omega)^2})/\delta`, the divergence boundary.
The BRF's damping :math:`b = p(\omega) - |b'|` keeps every neuron at or inside it; the vanilla RF's
:math:`b = -|b'|` does not (41 of the 256 neurons of the authors' S-MNIST RF model have :math:`\rho > 1`).

:func:`free_step_matrix` gets :math:`M` of any resonator (BHRF included) by applying the core step to the unit
states, so no update is restated here.

Example:
    >>> from brf_plugins.analysis import divergence_boundary_curves, stability_from_parameters
    >>> report = stability_from_parameters(omega=[10.0, 50.0], b_offset=[0.0, 1.0], neuron="rf")
    >>> report.n_unstable, round(report.max_radius, 4)
    (2, 1.1091)
    >>> stability_from_parameters(omega=[10.0, 50.0], b_offset=[0.0, 1.0], neuron="brf").n_unstable
    0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np
import torch

from .. import functional as F
from .._checks import check_choice, check_dt, check_finite_float, check_positive_int
from ._plotting import PlotResult, new_figure

__all__ = ["RADIUS_TOLERANCE", "StabilityReport", "BoundaryCurves", "StabilityRegion", "free_step_matrix",
           "free_step_eigenvalues", "stability_from_parameters", "model_stability", "find_recurrent_layer",
           "divergence_boundary_curves", "stability_region", "plot_divergence_boundary", "plot_stability",
           "plot_stability_region"]

RESONATORS = ("brf", "rf", "bhrf", "izhikevich")
RADIUS_TOLERANCE = 1e-12
"""A radius counts as above 1 only beyond ``1 + RADIUS_TOLERANCE`` (float64 rounding of neurons exactly on the
boundary, e.g. a BRF neuron with ``b' = 0``)."""


def _vector(name: str, value) -> torch.Tensor:
    tensor = torch.as_tensor(value.detach().cpu() if isinstance(value, torch.Tensor) else value,
                             dtype=torch.float64).reshape(-1)
    if tensor.numel() == 0 or not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"`{name}` must be a non-empty set of finite values.")
    return tensor


def free_step_matrix(neuron: str, omega, b_offset, dt: float = F.DEFAULT_DT, *, divergence_boundary: bool = True,
                     smooth_reset: bool = True, variant: str = "code", q=0.0) -> torch.Tensor:
    r"""The one-step map ``M`` of free neurons (no input, no spike), shape ``(h, 2, 2)``, float64.

    Column ``j`` is the core step applied to the unit state ``e_j`` of ``(u, v)``: ``M @ (u, v) = (u', v')``.
    ``q`` is the refractory variable held during the step (BRF/BHRF; a number or ``(h,)``): the BRF's damping
    is :math:`p(\omega) - |b'| - q` (unless ``smooth_reset=False``), so a refractory neuron has a different map.
    """
    check_choice("neuron", neuron, RESONATORS)
    dt = check_dt(dt)
    omega, b_offset, q = torch.broadcast_tensors(_vector("omega", omega), _vector("b_offset", b_offset),
                                                 _vector("q", q))
    zeros = torch.zeros_like(omega)
    ones = torch.ones_like(omega)
    silent = torch.zeros_like  # spike function that never fires: the free, subthreshold map
    columns = []
    for u, v in ((ones, zeros), (zeros, ones)):
        if neuron == "brf":
            _, u1, v1, _ = F.brf_step(zeros, u, v, q, omega, b_offset, dt, spike_fn=silent,
                                      divergence_boundary=divergence_boundary, smooth_reset=smooth_reset)
        elif neuron == "rf":
            _, u1, v1 = F.rf_step(zeros, u, v, omega, b_offset, dt, spike_fn=silent)
        elif neuron == "bhrf":
            _, u1, v1, _ = F.bhrf_step(zeros, u, v, q, omega, b_offset, dt, spike_fn=silent, variant=variant)
        else:
            _, u1, v1 = F.izhikevich_step(zeros, u, v, omega, b_offset, dt, spike_fn=silent)
        columns.append(torch.stack((u1, v1), dim=-1))
    return torch.stack(columns, dim=-1)


def free_step_eigenvalues(neuron: str, omega, b_offset, dt: float = F.DEFAULT_DT, **options) -> np.ndarray:
    """Complex eigenvalues ``(h, 2)`` of :func:`free_step_matrix`; their largest modulus is the spectral radius."""
    return torch.linalg.eigvals(free_step_matrix(neuron, omega, b_offset, dt, **options)).numpy()


@dataclass
class StabilityReport:
    r"""Per-neuron stability of a resonator population (every array ``(h,)``).

    ``omega``: effective frequency (BRF: clamped below :math:`1/\delta`); ``b_offset``: :math:`|b'|`;
    ``damping``: :math:`b` at :math:`q = 0` (RF/BRF; NaN for BHRF and Izhikevich); ``boundary``:
    :math:`p(\omega)` (NaN above :math:`1/\delta`); ``radius``: spectral radius of the free one-step map at
    :math:`q = 0`; ``worst_radius``: its maximum over every refractory level :math:`0 \le q \le q_{max}`,
    :math:`q_{max} = 1/(1 - \gamma)` (10 at the default :math:`\gamma = 0.9`), the largest ``q`` a neuron reaches
    by firing at every step (equal to ``radius`` for neurons without ``q``). A BRF neuron is non-expanding at
    :math:`q = 0` by construction, but the Euler step overshoots once :math:`b' + q` exceeds
    :func:`brf_plugins.functional.overdamping_limit`, so ``worst_radius`` can exceed 1 for
    :math:`\omega` close to :math:`1/\delta`.
    """

    name: str
    neuron: str
    dt: float
    omega: np.ndarray
    b_offset: np.ndarray
    damping: np.ndarray
    boundary: np.ndarray
    radius: np.ndarray
    worst_radius: np.ndarray
    q_max: float

    @property
    def unstable(self) -> np.ndarray:
        """Indices of the neurons whose free membrane grows (radius > 1)."""
        return np.flatnonzero(self.radius > 1.0 + RADIUS_TOLERANCE)

    @property
    def n_unstable(self) -> int:
        return int((self.radius > 1.0 + RADIUS_TOLERANCE).sum())

    @property
    def max_radius(self) -> float:
        return float(self.radius.max())

    @property
    def n_refractory_unstable(self) -> int:
        """Neurons whose free map expands at some refractory level ``0 <= q <= q_max`` (``worst_radius > 1``)."""
        return int((self.worst_radius > 1.0 + RADIUS_TOLERANCE).sum())

    def summary(self) -> str:
        return (f"{self.name}: {self.neuron.upper()}, {self.radius.size} neurons, max radius {self.max_radius:.5f}, "
                f"{self.n_unstable} above 1; over 0 <= q <= {self.q_max:g}: max {float(self.worst_radius.max()):.5f}, "
                f"{self.n_refractory_unstable} above 1")


def stability_from_parameters(omega, b_offset, dt: float = F.DEFAULT_DT, neuron: str = "brf", *,
                              divergence_boundary: bool = True, smooth_reset: bool = True, variant: str = "code",
                              gamma: float = F.DEFAULT_GAMMA, q_levels: int = 21,
                              name: Optional[str] = None) -> StabilityReport:
    r"""Stability of neurons given their raw parameters (works for any framework's modules).

    RF/BRF use :func:`brf_plugins.functional.one_step_radius` with :math:`b = p(\omega) - |b'|` (BRF; without
    :math:`p` when ``divergence_boundary=False``) or :math:`b = -|b'|` (RF); BHRF and Izhikevich use the
    eigenvalues of :func:`free_step_matrix`. ``worst_radius`` takes the largest eigenvalue modulus of
    :func:`free_step_matrix` over ``q_levels`` refractory levels from 0 to :math:`1/(1-\gamma)` (for the BRF
    the modulus is convex in ``q``, so the end points, both on the grid, give the exact maximum).
    """
    check_choice("neuron", neuron, RESONATORS)
    dt = check_dt(dt)
    gamma = check_finite_float("gamma", gamma)
    if not 0 <= gamma < 1:
        raise ValueError(f"`gamma` (decay of q) must lie in [0, 1) for q to stay bounded, got {gamma:g}.")
    q_levels = check_positive_int("q_levels", q_levels)
    omega_raw, offset_raw = torch.broadcast_tensors(_vector("omega", omega), _vector("b_offset", b_offset))
    if neuron == "brf":
        w = F.resonator_omega(omega_raw, dt)
    else:
        w = omega_raw.abs()
    boundary = F.divergence_boundary(w, dt)
    if neuron in ("brf", "rf"):
        # the RF's damping -|b'| is the BRF's without boundary (and q = 0)
        damping = F.brf_damping(w, offset_raw, torch.zeros_like(w), dt,
                                divergence_boundary_on=neuron == "brf" and divergence_boundary)
        radius = F.one_step_radius(w, damping, dt).numpy()
        damping = damping.numpy()
    else:
        damping = np.full(w.shape, np.nan)
        eig = free_step_eigenvalues(neuron, omega_raw, offset_raw, dt, variant=variant)
        radius = np.abs(eig).max(axis=-1)
    q_max = 1.0 / (1.0 - gamma)
    worst = np.array(radius, dtype=np.float64)
    if neuron in ("brf", "bhrf"):
        for q in np.linspace(0.0, q_max, max(q_levels, 2)):
            eig = free_step_eigenvalues(neuron, omega_raw, offset_raw, dt, divergence_boundary=divergence_boundary,
                                        smooth_reset=smooth_reset, variant=variant, q=float(q))
            worst = np.maximum(worst, np.abs(eig).max(axis=-1))
    return StabilityReport(name=name or neuron, neuron=neuron, dt=dt, omega=w.numpy(),
                           b_offset=offset_raw.abs().numpy(), damping=damping, boundary=boundary.numpy(),
                           radius=radius, worst_radius=worst, q_max=q_max)


def find_recurrent_layer(model):
    """The :class:`brf_plugins.network.RecurrentLayer` of a model (the model itself, ``model.hidden``, or the
    first one among its submodules)."""
    from ..network import RecurrentLayer
    if isinstance(model, RecurrentLayer):
        return model
    hidden = getattr(model, "hidden", None)
    if isinstance(hidden, RecurrentLayer):
        return hidden
    if isinstance(model, torch.nn.Module):
        for module in model.modules():
            if isinstance(module, RecurrentLayer):
                return module
    raise TypeError(f"no brf_plugins RecurrentLayer found in {type(model).__name__}; for other modules call "
                    f"stability_from_parameters(omega, b_offset, dt, neuron) with their parameters.")


def model_stability(model, name: Optional[str] = None) -> StabilityReport:
    """Per-neuron spectral radius of a model's resonators (a ``RecurrentSNN``, ``RecurrentLayer`` or a module
    holding one), honouring its ``dt``, BHRF variant and divergence-boundary ablation.

    Example:
        >>> from brf_plugins import RecurrentSNN
        >>> model_stability(RecurrentSNN.from_task("ecg")).n_unstable
        0
    """
    layer = find_recurrent_layer(model)
    if layer.neuron == "alif":
        raise ValueError("an ALIF layer has no resonator: its one-step map is a decay exp(-1/tau) < 1, there is "
                         "no divergence boundary to check.")
    return stability_from_parameters(layer.omega, layer.b_offset, layer.dt, layer.neuron,
                                     divergence_boundary=layer.ablation["divergence_boundary"],
                                     smooth_reset=layer.ablation["smooth_reset"], variant=layer.bhrf_variant,
                                     gamma=layer.gamma, name=name or type(model).__name__)


@dataclass
class BoundaryCurves:
    """:math:`p(\\omega)` for several steps: ``omega`` ``(k,)``, ``dt`` ``(d,)``, ``p`` ``(d, k)`` (NaN where
    :math:`\\omega > 1/\\delta`)."""

    omega: np.ndarray
    dt: np.ndarray
    p: np.ndarray


def divergence_boundary_curves(dts: Sequence[float] = (0.005, 0.01, 0.02), omega_max: float = 100.0,
                               points: int = 500) -> BoundaryCurves:
    """The divergence boundary :math:`p(\\omega)` on ``[0, omega_max]`` for each step in ``dts`` (paper A.5)."""
    dts = np.array([check_dt(dt) for dt in dts], dtype=np.float64)
    if dts.size == 0:
        raise ValueError("`dts` must name at least one step.")
    omega = np.linspace(0.0, float(omega_max), check_positive_int("points", points))
    omega_t = torch.as_tensor(omega)
    p = np.stack([F.divergence_boundary(omega_t, float(dt)).numpy() for dt in dts])
    return BoundaryCurves(omega=omega, dt=dts, p=p)


def _as_reports(reports) -> dict:
    if reports is None:
        return {}
    if isinstance(reports, StabilityReport):
        return {reports.name: reports}
    if isinstance(reports, Mapping):
        return dict(reports)
    return {r.name: r for r in reports}


def plot_divergence_boundary(curves: Optional[BoundaryCurves] = None, reports=None, *, width: float = 6.4,
                             height: float = 4.2) -> PlotResult:
    """Boundary curves :math:`p(\\omega)` per step (paper A.5, Figure 9) and, optionally, models' neurons as
    points :math:`(\\omega, b)`: points above the curve of their step diverge.

    ``reports``: :class:`StabilityReport` (RF/BRF) or ``{label: report}``. Returns ``(figure, curves)``.
    """
    curves = curves or divergence_boundary_curves()
    fig, axes = new_figure(1, 1, width=width, height=height)
    ax = axes[0, 0]
    for i, dt in enumerate(curves.dt):
        ax.plot(curves.omega, curves.p[i], color=f"C{i}", lw=1.4, label=f"p(omega), dt = {dt:g}")
    for j, (label, rep) in enumerate(_as_reports(reports).items()):
        if np.isnan(rep.damping).all():
            continue
        bad = rep.radius > 1.0 + RADIUS_TOLERANCE
        color = f"C{(len(curves.dt) + j) % 10}"
        ax.scatter(rep.omega[~bad], rep.damping[~bad], s=10, color=color, alpha=0.7, label=f"{label} neurons")
        if bad.any():
            ax.scatter(rep.omega[bad], rep.damping[bad], s=18, marker="x", color="C3",
                       label=f"{label}: radius > 1 ({bad.sum()})")
    ax.axhline(0.0, color="0.5", lw=0.6)
    ax.set_xlabel("omega (rad per unit time)")
    ax.set_ylabel("damping b")
    ax.set_title("Divergence boundary: the membrane converges below the curve", fontsize=10)
    ax.legend(fontsize=7)
    return PlotResult(fig, curves)


def plot_stability(reports, *, width: float = 10.0, height: float = 4.0) -> PlotResult:
    """Per-neuron spectral radius, sorted (left; the red line is 1), and :math:`(\\omega, b)` against the
    boundary of the model's step (right). ``reports``: one :class:`StabilityReport` or ``{label: report}``.
    Returns ``(figure, {label: report})``.
    """
    reports = _as_reports(reports)
    if not reports or not all(isinstance(r, StabilityReport) for r in reports.values()):
        raise TypeError("`reports` must be StabilityReport results (from model_stability).")
    fig, axes = new_figure(1, 2, width=width, height=height)
    ax_r, ax_b = axes[0]
    for i, (label, rep) in enumerate(reports.items()):
        radius = np.sort(rep.radius)
        ax_r.plot(np.arange(radius.size), radius, drawstyle="steps-mid", color=f"C{i}",
                  label=f"{label}: max {rep.max_radius:.5f}, {rep.n_unstable} > 1")
    ax_r.axhline(1.0, color="C3", lw=0.9)
    ax_r.set_xlabel("neuron (sorted)")
    ax_r.set_ylabel("spectral radius of the free one-step map")
    ax_r.legend(fontsize=7)
    dts = sorted({rep.dt for rep in reports.values()})
    omega_max = max(float(np.nanmax(rep.omega)) for rep in reports.values()) * 1.1
    curves = divergence_boundary_curves(dts, omega_max=max(omega_max, 1.0))
    for k, dt in enumerate(curves.dt):
        ax_b.plot(curves.omega, curves.p[k], color="k", ls="--", lw=1.0, label=f"p(omega), dt = {dt:g}")
    for i, (label, rep) in enumerate(reports.items()):
        if np.isnan(rep.damping).all():
            continue
        bad = rep.radius > 1.0 + RADIUS_TOLERANCE
        ax_b.scatter(rep.omega[~bad], rep.damping[~bad], s=10, color=f"C{i}", alpha=0.7, label=label)
        if bad.any():
            ax_b.scatter(rep.omega[bad], rep.damping[bad], s=18, marker="x", color="C3")
    ax_b.set_xlabel("omega")
    ax_b.set_ylabel("damping b (q = 0)")
    ax_b.legend(fontsize=7)
    return PlotResult(fig, reports)


@dataclass
class StabilityRegion:
    r"""Spectral radius of the free BRF one-step map over a grid of frequency and extra damping.

    ``omega`` ``(k,)``; ``extra`` ``(e,)``: the extra damping :math:`b' + q` below the divergence boundary (the
    BRF's damping is :math:`b = p(\omega) - b' - q`); ``radius`` ``(e, k)``, measured from the core step
    (:func:`free_step_matrix`); ``limit`` ``(k,)``: the analytic edge
    :func:`brf_plugins.functional.overdamping_limit`. The map is non-expanding exactly for
    :math:`0 \le b' + q \le` ``limit``.
    """

    omega: np.ndarray
    extra: np.ndarray
    radius: np.ndarray
    limit: np.ndarray
    dt: float

    @property
    def stable(self) -> np.ndarray:
        """``(e, k)`` booleans: radius at most 1 (up to :data:`RADIUS_TOLERANCE`)."""
        return self.radius <= 1.0 + RADIUS_TOLERANCE


def stability_region(omega=None, extra=None, dt: float = F.DEFAULT_DT, *, points: int = 200) -> StabilityRegion:
    r"""Where the BRF's explicit Euler step stays non-expanding, measured on a grid (paper A.5, spec 9).

    ``omega`` defaults to ``points`` values in :math:`[0, 0.999/\delta]`, ``extra`` to ``points`` values of
    :math:`b' + q` in :math:`[0, 2.2/\delta]`. The radius is the largest eigenvalue modulus of the map the core
    ``brf_step`` applies (``b_offset = extra``, ``q = 0``; ``b'`` and ``q`` enter the damping only as their sum).
    The paper's divergence boundary is the top edge (:math:`b' + q = 0`); the bottom edge, where a large
    :math:`b' + q` makes the Euler step overshoot, is :func:`brf_plugins.functional.overdamping_limit`
    (:math:`2\sqrt{1 - (\delta\omega)^2}/\delta`: 200 at small :math:`\omega`, 8.9 at :math:`\omega = 99.9`).

    Example:
        >>> region = stability_region(omega=[10.0, 99.9], extra=[0.5, 9.0, 198.0, 200.0])
        >>> region.stable.T.tolist()
        [[True, True, True, False], [True, False, False, False]]
    """
    dt = check_dt(dt)
    points = check_positive_int("points", points)
    omega = np.linspace(0.0, F.max_omega(dt), points) if omega is None else _vector("omega", omega).numpy()
    extra = np.linspace(0.0, 2.2 / dt, points) if extra is None else _vector("extra", extra).numpy()
    if np.any(np.abs(omega) >= 1.0 / dt):
        raise ValueError(f"`omega` must stay below 1/dt = {1 / dt:g} (p(omega) is undefined beyond).")
    grid_w, grid_e = np.meshgrid(omega, extra)
    eig = free_step_eigenvalues("brf", grid_w.reshape(-1), grid_e.reshape(-1), dt)
    radius = np.abs(eig).max(axis=-1).reshape(grid_e.shape)
    limit = F.overdamping_limit(torch.as_tensor(omega, dtype=torch.float64), dt).numpy()
    return StabilityRegion(omega=omega, extra=extra, radius=radius, limit=limit, dt=dt)


def plot_stability_region(region: Optional[StabilityRegion] = None, reports=None, *, width: float = 6.4,
                          height: float = 4.4) -> PlotResult:
    r"""The measured spectral radius over :math:`(\omega, b' + q)` (colour, log scale), its contour at 1, the
    analytic edge :func:`brf_plugins.functional.overdamping_limit` (dashed) and, optionally, models' BRF
    neurons at :math:`q = 0` (dots) and at the largest refractory level :math:`q_{max}` (crosses).

    ``reports``: :class:`StabilityReport` (BRF) or ``{label: report}``. Returns ``(figure, region)``.
    """
    region = region or stability_region()
    fig, axes = new_figure(1, 1, width=width, height=height)
    ax = axes[0, 0]
    log_radius = np.log10(np.maximum(region.radius, 1e-300))
    bound = max(float(np.abs(log_radius).max()), 1e-6)
    mesh = ax.pcolormesh(region.omega, region.extra, log_radius, cmap="RdBu_r", vmin=-bound, vmax=bound,
                         shading="auto")
    fig.colorbar(mesh, ax=ax, label="log10 spectral radius")
    if region.radius.shape[0] > 1 and region.radius.shape[1] > 1:
        ax.contour(region.omega, region.extra, region.radius, levels=[1.0], colors="k", linewidths=1.0)
    ax.plot(region.omega, region.limit, color="y", ls="--", lw=1.2, label="overdamping_limit (radius = 1)")
    for j, (label, rep) in enumerate(_as_reports(reports).items()):
        if rep.neuron != "brf":
            continue
        color = ("C4", "C8", "C6", "C9", "C5")[j % 5]  # not red/blue: the colour map uses them
        ax.scatter(rep.omega, rep.b_offset, s=8, color=color, label=f"{label}: b' (q = 0)")
        ax.scatter(rep.omega, rep.b_offset + rep.q_max, s=10, marker="x", color=color, alpha=0.6,
                   label=f"{label}: b' + q_max")
    ax.set_ylim(region.extra.min(), region.extra.max())
    ax.set_xlabel("omega")
    ax.set_ylabel("extra damping b' + q")
    ax.set_title(f"BRF one-step map: stable between 0 and the overdamping limit (dt = {region.dt:g})", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    return PlotResult(fig, region)
