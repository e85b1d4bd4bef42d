"""Plots of training runs (matplotlib, imported lazily): learning curves, spike rasters, the omega-b' scatter.

From the shell, ``brf-plot RUN_DIR [RUN_DIR ...] --out curves.png`` draws the learning curves of finished or
running ``brf-train`` runs from their ``metrics.csv``.

Example:
    >>> from brf_plugins.train.plots import plot_learning_curves
    >>> fig = plot_learning_curves({"brf": result.history})              # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Union

import torch
from torch import nn

from .models import resonator_parameters

__all__ = ["plot_learning_curves", "plot_raster", "plot_omega_b_scatter", "resonator_values", "read_history",
           "plot_main", "MetricsFormatError", "REQUIRED_COLUMNS"]

REQUIRED_COLUMNS = ("epoch", "val_loss", "test_accuracy")
"""The columns of a brf-train ``metrics.csv`` that :func:`read_history` needs (the others are optional)."""


class MetricsFormatError(ValueError):
    """A file given as a run's ``metrics.csv`` is not one: unreadable, missing columns, no rows, or a cell that
    is not a number."""


def _plt():
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError("plots need matplotlib: pip install matplotlib (or 'brf-plugins[examples]').") from err
    return plt


def plot_learning_curves(histories: Mapping[str, List[Dict[str, float]]], title: str = "", mark_best: bool = True,
                         groups: Optional[Mapping[str, str]] = None):
    """Validation loss and test accuracy per epoch for one or more runs (``{label: TrainResult.history}``).

    ``mark_best`` stars the epoch of minimum validation loss, the model a run reports. ``groups`` (``{label:
    group}``, e.g. the seeds of one configuration) draws the runs of a group in one colour under one legend entry.
    """
    plt = _plt()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6))
    colours: Dict[str, str] = {}
    for label, history in histories.items():
        epochs = [h["epoch"] for h in history]
        val_loss = [h["val_loss"] for h in history]
        acc = [100 * h["test_accuracy"] for h in history]
        marker = "o" if len(history) <= 60 and groups is None else None
        group = groups.get(label, label) if groups is not None else label
        shown = None if group in colours else group
        colour = colours.setdefault(group, f"C{len(colours) % 10}")
        line, = ax_loss.plot(epochs, val_loss, marker=marker, color=colour, label=shown,
                             alpha=0.75 if groups is not None else 1.0)
        has_acc = any(math.isfinite(a) for a in acc)
        if has_acc:
            ax_acc.plot(epochs, acc, marker=marker, color=colour, label=shown, alpha=line.get_alpha())
        finite = [i for i, v in enumerate(val_loss) if math.isfinite(v)]
        if mark_best and finite:
            best = min(finite, key=lambda i: val_loss[i])
            ax_loss.plot(epochs[best], val_loss[best], "*", ms=14, color=line.get_color(), mec="k")
            if has_acc and math.isfinite(acc[best]):
                ax_acc.plot(epochs[best], acc[best], "*", ms=14, color=line.get_color(), mec="k")
                if groups is None:   # one figure per run: its reported accuracy (a group's are in its table)
                    ax_acc.annotate(f"{acc[best]:.2f} %", (epochs[best], acc[best]), textcoords="offset points",
                                    xytext=(-10, -18), ha="right", color=line.get_color())
    ax_loss.set(xlabel="epoch", ylabel="validation loss (per step)", title="validation loss")
    ax_acc.set(xlabel="epoch", ylabel="test accuracy (%)", title="test accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def read_history(run: Union[str, Path]) -> List[Dict[str, float]]:
    """The per-epoch rows of a ``brf-train`` run (its folder or its ``metrics.csv``) as floats (empty cells, e.g. the
    training columns of an epoch a time limit stopped, read as NaN)."""
    path = Path(run)
    if path.is_dir():
        path = path / "metrics.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no metrics.csv at {path}: pass a brf-train output folder (--out-dir) or its "
                                f"metrics.csv.")
    not_metrics = f"{path} is not a brf-train metrics.csv"
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = list(reader.fieldnames or [])
            raw = list(reader)
    except (UnicodeDecodeError, csv.Error) as err:
        raise MetricsFormatError(f"{not_metrics}: it is not a readable CSV text file ({type(err).__name__}).") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise MetricsFormatError(f"{not_metrics}: it has no {', '.join(missing)} column"
                                 f"{'s' if len(missing) > 1 else ''} (found: {', '.join(header) or 'nothing'}).")
    if not raw:
        raise MetricsFormatError(f"{not_metrics}: it has a header but no epoch rows (the run has not finished an "
                                 f"epoch yet?).")
    rows = []
    for line, row in enumerate(raw, start=2):
        if None in row:
            raise MetricsFormatError(f"{not_metrics}: line {line} has more cells than the header.")
        parsed = {}
        for key, value in row.items():
            try:
                parsed[key] = float(value) if value not in ("", None) else math.nan
            except ValueError:
                raise MetricsFormatError(f"{not_metrics}: line {line}, column {key}: {value!r} is not a "
                                         f"number.") from None
        if not math.isfinite(parsed["epoch"]) or parsed["epoch"] != int(parsed["epoch"]) or parsed["epoch"] < 0:
            raise MetricsFormatError(f"{not_metrics}: line {line}: epoch {row['epoch']!r} is not an epoch number.")
        parsed["epoch"] = int(parsed["epoch"])
        rows.append(parsed)
    return rows


def _run_label(run_dir: Path) -> str:
    summary = run_dir / "summary.json"
    if summary.is_file():
        config = json.loads(summary.read_text()).get("config", {})
        if config.get("framework") and config.get("neuron"):
            return f"{config['framework']} {config['neuron']}"
    return run_dir.name


def plot_main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``brf-plot``: learning curves of one or more runs, side by side, saved to ``--out``."""
    from .cli import CLIParser, run_cli
    p = CLIParser(prog="brf-plot", description="Plot the learning curves of brf-train runs.")
    p.add_argument("runs", nargs="+", help="brf-train output folders (or their metrics.csv)")
    p.add_argument("--labels", nargs="+", help="one legend label per run (default: framework and neuron)")
    p.add_argument("--title", default="", help="figure title")
    p.add_argument("--out", default="learning_curves.png", help="image file to write (default: %(default)s)")
    p.add_argument("--traceback", action="store_true", help="print the full traceback of an error")
    args = p.parse_args(argv)
    if args.labels and len(args.labels) != len(args.runs):
        p.error(f"--labels got {len(args.labels)} labels for {len(args.runs)} runs; give one per run or none.")
    histories = {}
    for i, run in enumerate(args.runs):
        folder = Path(run) if Path(run).is_dir() else Path(run).parent
        label = args.labels[i] if args.labels else _run_label(folder)
        try:
            histories[label if label not in histories else f"{label} ({folder.name})"] = read_history(run)
        except (FileNotFoundError, MetricsFormatError) as err:
            p.error(str(err))

    def body() -> int:
        fig = plot_learning_curves(histories, title=args.title)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.out, dpi=110)
        _plt().close(fig)
        print(f"wrote {args.out}")
        return 0
    return run_cli("brf-plot", body, show_traceback=args.traceback)


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
    found = resonator_parameters(model)
    return {k: v.abs().cpu() for k, v in found.items()} if len(found) == 2 else None


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
