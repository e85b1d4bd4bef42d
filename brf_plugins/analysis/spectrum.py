r"""Dominant frequencies of a dataset, and an omega initialisation drawn from them (paper section 5 / Figure 5).

The paper notes that trained S-MNIST frequencies cluster at 23-25 and 41-43 rad/s, near the row period of the
images (28 pixels at :math:`\delta = 0.01`: :math:`2\pi / 0.28 = 22.4`), and names the initialisation of
:math:`\omega` from the data's Fourier spectrum as its open problem. Here:

* :func:`dataset_spectrum` averages the power spectrum of the input sequences over samples and channels. The
  frequency axis is angular, in radians per unit of :math:`\delta \cdot` step, the unit of the neurons' omega: a
  sinusoid with a period of :math:`P` steps sits at :math:`\omega = 2\pi / (P\delta)`.
* :func:`spectrum_omega_init` turns the spectrum into ``n`` frequencies: the part of the power above the
  spectrum's broadband floor (its median) is read as a distribution over :math:`\omega`, and the neurons take its
  quantiles :math:`(i + 1/2)/n` (or random draws), so more neurons sit where the data have more periodic power.
  Frequencies stay in :math:`(0, 0.999/\delta]`, where the BRF is defined.
* :class:`SpectrumInit` is the same as a callable init, accepted as ``omega_init`` by every layer
  (``brf_plugins.analysis.resolve_omega_init("spectrum", data=...)`` builds it).

Example:
    >>> import torch
    >>> from brf_plugins.analysis import dataset_spectrum, spectrum_omega_init
    >>> t = torch.arange(784.0)
    >>> x = (torch.sin(2 * torch.pi * t / 28) + 0.5 * torch.sin(2 * torch.pi * t / 14)).reshape(1, 784, 1)
    >>> dataset_spectrum(x, dt=0.01).peaks(2).round(1).tolist()
    [22.4, 44.9]
    >>> omega = spectrum_omega_init(x, 8, dt=0.01)
    >>> int((omega < 30).sum()), int((omega > 40).sum())      # power 1 : 0.25
    (6, 2)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Mapping, Optional

import numpy as np
import torch

from .. import functional as F
from .._checks import check_choice, check_dt, check_finite_float, check_positive_int
from ..init import SPECTRUM
from ._plotting import PlotResult, new_figure

__all__ = ["resolve_omega_init", "Spectrum", "iter_sequences", "dataset_spectrum", "spectrum_omega_init",
           "SpectrumInit",
           "plot_spectrum"]


def _as_batch(x) -> torch.Tensor:
    x = torch.as_tensor(x.detach().cpu() if isinstance(x, torch.Tensor) else np.asarray(x))
    if not (torch.is_floating_point(x) or x.dtype in (torch.uint8, torch.int8, torch.int16, torch.int32,
                                                       torch.int64, torch.bool)):
        raise TypeError(f"sequences must be real numbers, got dtype {x.dtype}.")
    x = x.to(torch.float64)
    if x.dim() == 1:
        return x.reshape(1, -1, 1)
    if x.dim() == 2:
        return x.unsqueeze(0)
    if x.dim() == 3:
        return x
    raise ValueError(f"sequences must be (T,), (T, m) or batch-first (N, T, m), got shape {tuple(x.shape)}.")


def iter_sequences(data, max_samples: int = 1000, chunk: int = 64) -> Iterator[torch.Tensor]:
    """Batch-first float64 chunks ``(n, T, m)`` of at most ``max_samples`` input sequences from ``data``.

    ``data``: a tensor/array ``(N, T, m)`` (or one sequence ``(T, m)`` / ``(T,)``); a Dataset of ``(x, y)`` or
    ``x`` items (``max_samples`` evenly spaced items, so class-sorted datasets are sampled fairly); or an iterable
    of batches ``(x, y)`` / ``x`` such as a DataLoader (the first ``max_samples`` samples).
    """
    max_samples = check_positive_int("max_samples", max_samples)
    if isinstance(data, (torch.Tensor, np.ndarray)):
        batch = _as_batch(data)
        for start in range(0, min(batch.shape[0], max_samples), chunk):
            yield batch[start:min(start + chunk, max_samples)]
        return
    if hasattr(data, "__getitem__") and hasattr(data, "__len__"):
        total = len(data)
        if total == 0:
            raise ValueError("`data` is an empty dataset.")
        indices = np.unique(np.linspace(0, total - 1, min(total, max_samples)).round().astype(np.int64))
        for start in range(0, indices.size, chunk):
            part = indices[start:start + chunk]
            if hasattr(data, "sequences"):  # SequentialMNIST: vectorised
                yield _as_batch(data.sequences(torch.as_tensor(part)))
                continue
            items = [data[int(i)] for i in part]
            xs = [item[0] if isinstance(item, (tuple, list)) else item for item in items]
            yield torch.stack([_as_batch(x)[0] for x in xs])
        return
    if hasattr(data, "__iter__"):
        seen = 0
        for batch in data:
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            x = _as_batch(x)
            x = x[:max_samples - seen]
            seen += x.shape[0]
            yield x
            if seen >= max_samples:
                return
        return
    raise TypeError(f"`data` must be a tensor (N, T, m), a Dataset of (x, y) items or an iterable of batches, got "
                    f"{type(data).__name__}.")


@dataclass
class Spectrum:
    r"""Mean power spectrum of a dataset's inputs.

    ``omega`` ``(k,)``: angular frequencies of the non-zero FFT bins, :math:`2\pi j / (T\delta)`, in radians per
    unit of :math:`\delta \cdot` step; ``power`` ``(k,)``: power per bin averaged over samples and channels.
    """

    omega: np.ndarray
    power: np.ndarray
    dt: float
    steps: int
    n_samples: int
    channels: int

    @property
    def resolution(self) -> float:
        """Spacing of the bins, :math:`2\\pi / (T\\delta)`."""
        return 2 * math.pi / (self.steps * self.dt)

    @property
    def floor(self) -> float:
        """The broadband floor: median power over the bins below :math:`0.999/\\delta`."""
        usable = self.omega <= F.max_omega(self.dt)
        return float(np.median(self.power[usable])) if usable.any() else 0.0

    def peaks(self, n: int = 5, omega_max: Optional[float] = None) -> np.ndarray:
        """The ``n`` strongest local maxima of the power, strongest first, up to ``omega_max``
        (default :math:`0.999/\\delta`)."""
        n = check_positive_int("n", n)
        limit = F.max_omega(self.dt) if omega_max is None else float(omega_max)
        p = self.power
        left = np.concatenate(([-np.inf], p[:-1]))
        right = np.concatenate((p[1:], [-np.inf]))
        candidates = np.flatnonzero((p >= left) & (p > right) & (self.omega <= limit))
        order = candidates[np.argsort(p[candidates])[::-1]]
        return self.omega[order[:n]]


def dataset_spectrum(data, dt: float = F.DEFAULT_DT, *, max_samples: int = 1000,
                     window: Optional[str] = "hann") -> Spectrum:
    """Power spectrum of the input sequences, averaged over samples and channels.

    Each sequence and channel has its mean removed (the DC bin is dropped anyway) and is tapered by a Hann window
    (``window=None`` for none) before ``rfft``. ``data`` as in :func:`iter_sequences`.
    """
    dt = check_dt(dt)
    if window is not None:
        check_choice("window", window, ("hann",))
    total, count, steps, channels = None, 0, None, None
    for x in iter_sequences(data, max_samples):
        if steps is None:
            steps, channels = x.shape[1], x.shape[2]
            if steps < 4:
                raise ValueError(f"sequences of {steps} steps are too short for a spectrum (need >= 4).")
            taper = torch.hann_window(steps, periodic=False, dtype=torch.float64) if window else None
        elif x.shape[1:] != (steps, channels):
            raise ValueError(f"all sequences must have the same shape (T, m); got {(steps, channels)} and "
                             f"{tuple(x.shape[1:])}. Pad or crop them first.")
        x = x - x.mean(dim=1, keepdim=True)
        if taper is not None:
            x = x * taper[None, :, None]
        power = torch.fft.rfft(x, dim=1).abs().square().sum(dim=(0, 2))
        total = power if total is None else total + power
        count += x.shape[0]
    if total is None:
        raise ValueError("`data` yielded no sequences.")
    omega = 2 * math.pi * np.fft.rfftfreq(steps, d=dt)
    power = (total / (count * channels)).numpy()
    return Spectrum(omega=omega[1:], power=power[1:], dt=dt, steps=steps, n_samples=count, channels=channels)


def _omega_distribution(spectrum: Spectrum, omega_min: Optional[float], omega_max: Optional[float]):
    """Bins ``(low, high, weight)`` of the excess-power distribution inside ``[omega_min, omega_max]``."""
    limit = F.max_omega(spectrum.dt)
    high_cap = limit if omega_max is None else min(check_finite_float("omega_max", omega_max, positive=True), limit)
    low_cap = 0.0 if omega_min is None else check_finite_float("omega_min", omega_min, nonnegative=True)
    if low_cap >= high_cap:
        raise ValueError(f"`omega_min` ({low_cap:g}) must be below `omega_max` ({high_cap:g}; at most 0.999/dt).")
    half = spectrum.resolution / 2
    low = np.clip(spectrum.omega - half, low_cap, high_cap)
    high = np.clip(spectrum.omega + half, low_cap, high_cap)
    inside = high > low
    low, high, power = low[inside], high[inside], spectrum.power[inside]
    if power.size == 0 or not np.any(power > 0):
        raise ValueError("the data have no power between omega_min and omega_max (constant sequences?); pass a "
                         "fixed omega_init instead.")
    weight = np.clip(power - np.median(power), 0.0, None)
    if not np.any(weight > 0):  # a flat (white) spectrum: no peak stands out, use the power itself
        weight = power
    weight = weight * (high - low) / (2 * half)  # partial edge bins count partially
    return low, high, weight


def spectrum_omega_init(data, n_neurons: int, dt: Optional[float] = None, *, omega_min: Optional[float] = None,
                        omega_max: Optional[float] = None, sampling: str = "quantiles",
                        generator: Optional[torch.Generator] = None, max_samples: int = 1000,
                        window: Optional[str] = "hann") -> torch.Tensor:
    r"""``n_neurons`` frequencies ``(n,)`` read from the Fourier spectrum of ``data`` (or of a :class:`Spectrum`).

    ``dt`` is the neurons' step (default 0.01, or the spectrum's own); ``data`` as in :func:`iter_sequences`.

    The power above the spectrum's median (its broadband floor) is a distribution over :math:`\omega`, constant
    within each FFT bin; ``sampling="quantiles"`` gives its quantiles at :math:`(i + 1/2)/n` (deterministic,
    sorted), ``"random"`` draws from it with ``generator``. Bins outside ``[omega_min, omega_max]`` are left out;
    ``omega_max`` is capped at :math:`0.999/\delta` so every value is a valid BRF frequency.
    """
    n_neurons = check_positive_int("n_neurons", n_neurons)
    check_choice("sampling", sampling, ("quantiles", "random"))
    if isinstance(data, Spectrum):
        spectrum = data
        if dt is not None and check_dt(dt) != spectrum.dt:
            raise ValueError(f"`dt` ({dt:g}) differs from the dt the spectrum was computed with ({spectrum.dt:g}).")
    else:
        spectrum = dataset_spectrum(data, F.DEFAULT_DT if dt is None else dt, max_samples=max_samples,
                                    window=window)
    low, high, weight = _omega_distribution(spectrum, omega_min, omega_max)
    if sampling == "quantiles":
        levels = (np.arange(n_neurons) + 0.5) / n_neurons
    else:
        levels = torch.rand(n_neurons, generator=generator, dtype=torch.float64).numpy()
    cumulative = np.cumsum(weight)
    target = levels * cumulative[-1]
    index = np.minimum(np.searchsorted(cumulative, target, side="right"), weight.size - 1)
    before = cumulative[index] - weight[index]
    fraction = np.clip((target - before) / np.where(weight[index] > 0, weight[index], 1.0), 0.0, 1.0)
    omega = low[index] + fraction * (high[index] - low[index])
    omega = np.clip(omega, np.nextafter(0.0, 1.0), F.max_omega(spectrum.dt))
    return torch.as_tensor(omega, dtype=torch.get_default_dtype())


class SpectrumInit:
    """A callable omega initialisation from a dataset's spectrum: ``init(n, generator=None) -> (n,)`` tensor.

    The spectrum is computed once, here; each call runs :func:`spectrum_omega_init` on it. Pass it as
    ``omega_init`` to :class:`brf_plugins.network.RecurrentLayer`, ``RecurrentSNN.from_task`` or the adapters::

        model = RecurrentSNN.from_task("smnist", omega_init=SpectrumInit(train_set, dt=0.01))

    Options: ``omega_min``, ``omega_max``, ``sampling`` (``"quantiles"`` or ``"random"``), ``max_samples``,
    ``window``.
    """

    def __init__(self, data, dt: float = F.DEFAULT_DT, *, omega_min: Optional[float] = None,
                 omega_max: Optional[float] = None, sampling: str = "quantiles", max_samples: int = 1000,
                 window: Optional[str] = "hann"):
        self.dt = check_dt(dt)
        self.sampling = check_choice("sampling", sampling, ("quantiles", "random"))
        self.omega_min, self.omega_max = omega_min, omega_max
        self.spectrum = data if isinstance(data, Spectrum) else dataset_spectrum(data, self.dt,
                                                                                 max_samples=max_samples,
                                                                                 window=window)
        _omega_distribution(self.spectrum, omega_min, omega_max)  # fail early on an empty band

    def __call__(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        return spectrum_omega_init(self.spectrum, n, self.spectrum.dt, omega_min=self.omega_min,
                                   omega_max=self.omega_max, sampling=self.sampling, generator=generator)

    def __repr__(self) -> str:
        return (f"SpectrumInit(dt={self.dt:g}, samples={self.spectrum.n_samples}, steps={self.spectrum.steps}, "
                f"sampling={self.sampling!r}, peaks={np.round(self.spectrum.peaks(3), 2).tolist()})")


def plot_spectrum(spectrum: Spectrum, omegas: Optional[Mapping[str, np.ndarray]] = None, *, n_peaks: int = 3,
                  log: bool = True, width: float = 7.0, height: float = 4.0) -> PlotResult:
    """Power spectrum of a dataset against omega, its strongest peaks marked, and optionally histograms of
    neuron frequencies (``{label: omegas}``, e.g. initial and trained) on a second axis.

    Returns ``(figure, spectrum)``.
    """
    if not isinstance(spectrum, Spectrum):
        raise TypeError("`spectrum` must be a Spectrum (from dataset_spectrum).")
    fig, axes = new_figure(1, 1, width=width, height=height)
    ax = axes[0, 0]
    limit = F.max_omega(spectrum.dt)
    shown = spectrum.omega <= limit * 1.02
    ax.plot(spectrum.omega[shown], spectrum.power[shown], color="k", lw=1.0, label="mean power")
    ax.axhline(spectrum.floor, color="0.5", ls=":", lw=0.8, label="floor (median)")
    for i, peak in enumerate(spectrum.peaks(n_peaks)):
        ax.axvline(peak, color="C3", ls="--", lw=0.8, label="peaks" if i == 0 else None)
        ax.annotate(f"{peak:.1f}", (peak, 1.0), xycoords=("data", "axes fraction"), fontsize=7, ha="center",
                    va="bottom", color="C3")
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("omega (rad per unit of dt * step)")
    ax.set_ylabel("power")
    handles, labels = ax.get_legend_handles_labels()
    if omegas:
        twin = ax.twinx()
        bins = np.linspace(0.0, limit, 60)
        for j, (label, values) in enumerate(omegas.items()):
            values = np.abs(np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values))
            twin.hist(values, bins=bins, alpha=0.35, color=f"C{j}", label=label)
        twin.set_ylabel("neurons")
        more_handles, more_labels = twin.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    ax.legend(handles, labels, fontsize=7, loc="upper right")
    ax.set_title(f"Input spectrum ({spectrum.n_samples} samples, {spectrum.steps} steps, dt = {spectrum.dt:g})",
                 fontsize=10)
    return PlotResult(fig, spectrum)


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
        >>> from brf_plugins.analysis import resolve_omega_init
        >>> from brf_plugins.init import omega_parameter
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
    return SpectrumInit(data, dt=check_dt(dt), **spectrum_options)
