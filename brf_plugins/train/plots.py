"""Plots of training runs (matplotlib, imported lazily): learning curves, spike rasters, the omega-b' scatter.

Example:
    >>> from brf_plugins.train.plots import plot_learning_curves
    >>> fig = plot_learning_curves({"brf": result.history})              # doctest: +SKIP
"""

from __future__ import annotations

import math
from typing import Dict, List, Mapping, Optional

import torch
from torch import nn

__all__ = ["plot_learning_curves", "plot_raster", "plot_omega_b_scatter", "resonator_values"]


def _plt():
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError("plots need matplotlib: pip install matplotlib (or 'brf-plugins[examples]').") from err
    return plt


def plot_learning_curves(histories: Mapping[str, List[Dict[str, float]]], title: str = ""):
    """Validation loss and test accuracy per epoch for one or more runs (``{label: TrainResult.history}``)."""
    plt = _plt()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6))
    for label, history in histories.items():
        epochs = [h["epoch"] for h in history]
        ax_loss.plot(epochs, [h["val_loss"] for h in history], marker="o", label=label)
        acc = [100 * h["test_accuracy"] for h in history]
        if any(math.isfinite(a) for a in acc):
            ax_acc.plot(epochs, acc, marker="o", label=label)
    ax_loss.set(xlabel="epoch", ylabel="validation loss (per step)", title="validation loss")
    ax_acc.set(xlabel="epoch", ylabel="test accuracy (%)", title="test accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_raster(spikes: torch.Tensor, title: str = "hidden spikes", inputs: Optional[torch.Tensor] = None):
    """Raster of ``(T, h)`` hidden spikes of one sample (and, if given, its ``(T, m)`` inputs above)."""
    plt = _plt()
    rows = 2 if inputs is not None else 1
    fig, axes = plt.subplots(rows, 1, figsize=(10, 2.2 * rows + 1), sharex=True, squeeze=False)
    panels = ([(inputs, "inputs")] if inputs is not None else []) + [(spikes, title)]
    for ax, (data, name) in zip(axes[:, 0], panels):
        data = data.detach().cpu()
        t, n = torch.nonzero(data > 0, as_tuple=True)
        ax.scatter(t.numpy(), n.numpy(), s=1.5, marker="|", color="k")
        ax.set(ylabel="neuron" if name == title else "channel", title=name, ylim=(-0.5, data.shape[1] - 0.5))
    axes[-1, 0].set_xlabel("time step")
    fig.tight_layout()
    return fig


def resonator_values(model: nn.Module) -> Optional[Dict[str, torch.Tensor]]:
    """``{"omega": |omega|, "b_offset": |b'|}`` of a model's resonator layer, or None (ALIF/LIF)."""
    found = {}
    for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
        leaf = name.rsplit(".", 1)[-1]
        if leaf in ("omega", "b_offset") and leaf not in found:
            found[leaf] = tensor.detach().abs().cpu()
    return found if len(found) == 2 else None


def plot_omega_b_scatter(models: Mapping[str, nn.Module], title: str = "learned omega and b'"):
    """Scatter of each hidden neuron's angular frequency |omega| against its dampening offset |b'|."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    for label, model in models.items():
        values = resonator_values(model)
        if values is None:
            continue
        ax.scatter(values["omega"].numpy(), values["b_offset"].numpy(), s=12, alpha=0.7, label=label)
    ax.set(xlabel="|omega| (rad per unit time)", ylabel="|b'|", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig
