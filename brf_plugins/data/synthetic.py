r"""A built-in benchmark that needs no download: classify the frequency of noisy spike trains.

Each sample is ``channels`` Bernoulli spike trains driven by one sinusoidally modulated rate,

.. math::

    r_t = r_0 \big(1 + m \sin(\omega_c (1 + \epsilon)\, t\,\delta + \varphi)\big) + r_{noise},

with the class frequency :math:`\omega_c` (rad per unit time, the neurons' unit: ``t * dt`` with ``dt = 0.01``),
a random phase :math:`\varphi`, a per-sample frequency jitter :math:`\epsilon \sim U(-j, j)` and background
spikes :math:`r_{noise}`. Every class has the same mean rate, so the label is in the timing only: a resonator
tuned near :math:`\omega_c` picks it up directly, a leaky integrator has to build that filter from its
recurrence. The label is scored on the time-mean readout (the PS-MNIST/SHD rules: loss summed over steps,
accuracy of the mean readout).

The data are generated from a seed (numpy ``default_rng``), so every run sees the same samples; train,
validation and test use independent seeds.

Example:
    >>> from brf_plugins.data import NoisyFrequencies
    >>> train = NoisyFrequencies(n_samples=8, seed=0)
    >>> x, y = train[0]; tuple(x.shape), 0 <= y < train.num_classes
    ((100, 16), True)
"""

from __future__ import annotations

import math
from typing import Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

from .._checks import check_finite_float, check_positive_int

__all__ = ["SYNTHETIC_OMEGAS", "NoisyFrequencies", "synthetic_splits"]

SYNTHETIC_OMEGAS = (12.0, 18.0, 24.0, 30.0, 36.0)
"""Class frequencies (rad per unit time at dt = 0.01): periods of 52, 35, 26, 21 and 17 steps."""


class NoisyFrequencies(Dataset):
    """Frequency classification of noisy, sinusoidally modulated spike trains (see the module docstring).

    Args:
        n_samples: number of sequences.
        seed: generator seed (different seeds give independent samples).
        seq_len: steps per sequence (100).
        channels: independent spike trains per sample, all driven by the same rate (16).
        omegas: class frequencies in rad per unit time (:data:`SYNTHETIC_OMEGAS`); ``len(omegas)`` classes.
        rate: mean spike probability per step and channel of the modulated part, :math:`r_0` (0.2).
        depth: modulation depth :math:`m` in [0, 1] (0.8).
        noise: background spike probability per step and channel (0.05).
        jitter: relative frequency jitter :math:`j` (0.04).
        dt: time step of the frequency unit (0.01, the resonators' default).

    Items are ``(x, y)``: ``x`` float32 ``(seq_len, channels)`` of 0/1 spikes, ``y`` the class.
    """

    def __init__(self, n_samples: int = 1000, seed: int = 0, seq_len: int = 100, channels: int = 16,
                 omegas: Sequence[float] = SYNTHETIC_OMEGAS, rate: float = 0.2, depth: float = 0.8,
                 noise: float = 0.05, jitter: float = 0.04, dt: float = 0.01):
        self.n_samples = check_positive_int("n_samples", n_samples)
        self.seq_len = check_positive_int("seq_len", seq_len)
        self.input_size = check_positive_int("channels", channels)
        self.omegas = tuple(check_finite_float(f"omegas[{i}]", w, positive=True) for i, w in enumerate(omegas))
        if len(self.omegas) < 2:
            raise ValueError(f"`omegas` needs at least 2 class frequencies, got {len(self.omegas)}.")
        self.num_classes = len(self.omegas)
        rate = check_finite_float("rate", rate, nonnegative=True)
        depth = check_finite_float("depth", depth, nonnegative=True)
        noise = check_finite_float("noise", noise, nonnegative=True)
        jitter = check_finite_float("jitter", jitter, nonnegative=True)
        dt = check_finite_float("dt", dt, positive=True)
        if depth > 1:
            raise ValueError(f"`depth` must be in [0, 1] (a rate cannot go negative), got {depth}.")
        if rate * (1 + depth) + noise > 1:
            raise ValueError(f"`rate * (1 + depth) + noise` = {rate * (1 + depth) + noise:g} exceeds 1: it is a "
                             f"spike probability per step; lower `rate` or `noise`.")
        self.seed = int(seed)
        rng = np.random.default_rng(self.seed)
        labels = rng.integers(0, self.num_classes, self.n_samples)
        omega = np.asarray(self.omegas)[labels] * (1 + rng.uniform(-jitter, jitter, self.n_samples))
        phase = rng.uniform(0, 2 * math.pi, self.n_samples)
        time = np.arange(self.seq_len) * dt
        prob = rate * (1 + depth * np.sin(omega[:, None] * time[None, :] + phase[:, None])) + noise
        spikes = rng.random((self.n_samples, self.seq_len, self.input_size)) < prob[:, :, None]
        self.inputs = torch.from_numpy(spikes)
        self.labels = torch.from_numpy(labels.astype(np.int64))

    def __len__(self) -> int:
        return self.n_samples

    def __getitem__(self, index: int):
        return self.inputs[index].float(), int(self.labels[index])


def synthetic_splits(n_train: int = 1500, n_val: int = 300, n_test: int = 500, seed: int = 0,
                     **kwargs) -> Tuple[NoisyFrequencies, NoisyFrequencies, NoisyFrequencies]:
    """Independent train / validation / test sets, generated from seeds ``10007 * seed + 1``, ``+ 2`` and ``+ 3``."""
    base = 10007 * int(seed)
    return (NoisyFrequencies(n_train, base + 1, **kwargs), NoisyFrequencies(n_val, base + 2, **kwargs),
            NoisyFrequencies(n_test, base + 3, **kwargs))
