r"""Ablations of the balancing mechanisms and of the RF reset (paper A.8, A.9; Figures 10 and 11).

:data:`ABLATIONS` names each model variant as the :class:`brf_plugins.network.RecurrentLayer` options that make
it (the switches ``divergence_boundary``, ``refractory``, ``smooth_reset`` of ``brf_step`` and the RF's
``rf_reset``); :func:`build_ablation` builds the task's network for one of them. A trainer exposes them as
``--ablation NAME``. :func:`load_training_log` reads the per-epoch CSV logs of such runs and
:func:`plot_training_curves` / :func:`ablation_summary` compare them.

========================  =====================================================================================
name                      model
========================  =====================================================================================
``brf``                   BRF: refractory period (RP) + smooth reset (SmR) + divergence boundary (DB)
``brf-no-rp``             BRF without the refractory period: fires at :math:`H(u_t - \vartheta)`
``brf-no-smr``            BRF without the smooth reset: damping :math:`p(\omega) - b'`
``brf-no-db``             BRF without the divergence boundary: damping :math:`-b' - q_{t-1}` (RF + RP + SmR)
``rf-rp``                 RF with the refractory period only (damping :math:`-b'`)
``rf-smr``                RF with the smooth reset only
``rf``                    vanilla RF, no reset (the paper's RF rows)
``rf-soft``               RF with soft reset :math:`U \leftarrow U - (1+i) z \vartheta`
``rf-hard``               RF with hard reset :math:`U \leftarrow (1 - z) U`
========================  =====================================================================================

Example:
    >>> from brf_plugins.analysis.ablations import ABLATIONS, build_ablation
    >>> net = build_ablation("brf-no-rp", "ecg")
    >>> net.hidden.neuron, net.hidden.ablation["refractory"]
    ('brf', False)
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Union

import numpy as np

from ._plotting import PlotResult, new_figure

__all__ = ["ABLATIONS", "ablation_kwargs", "build_ablation", "add_ablation_argument", "ablation_from_args",
           "switch_off_study", "plot_switch_off", "load_training_log", "ablation_summary", "plot_training_curves"]

ABLATIONS: Dict[str, dict] = {
    "brf": dict(neuron="brf"),
    "brf-no-rp": dict(neuron="brf", refractory=False),
    "brf-no-smr": dict(neuron="brf", smooth_reset=False),
    "brf-no-db": dict(neuron="brf", divergence_boundary=False),
    "rf-rp": dict(neuron="brf", divergence_boundary=False, smooth_reset=False),
    "rf-smr": dict(neuron="brf", divergence_boundary=False, refractory=False),
    "rf": dict(neuron="rf", rf_reset="none"),
    "rf-soft": dict(neuron="rf", rf_reset="soft"),
    "rf-hard": dict(neuron="rf", rf_reset="hard"),
}
"""Ablation name -> ``neuron`` plus :class:`RecurrentLayer` keyword arguments."""


def ablation_kwargs(name: str) -> dict:
    """``{"neuron": ..., **layer_kwargs}`` of an ablation (a fresh dict), with a helpful error for unknown names."""
    if name not in ABLATIONS:
        raise ValueError(f"unknown ablation {name!r}; choose one of {', '.join(ABLATIONS)}.")
    return dict(ABLATIONS[name])


def build_ablation(name: str, task, generator=None, **overrides):
    """The task's :class:`RecurrentSNN` (paper initialisation) with the ablation's neuron and switches.

    ``overrides`` are further :class:`RecurrentLayer` / ``RecurrentSNN`` options (e.g. ``omega_init``).
    """
    from ..network import RecurrentSNN
    options = ablation_kwargs(name)
    neuron = options.pop("neuron")
    options.update(overrides)
    return RecurrentSNN.from_task(task, neuron=neuron, generator=generator, **options)


def add_ablation_argument(parser, *, flag: str = "--ablation", default: str = "brf"):
    """Add ``--ablation NAME`` (one of :data:`ABLATIONS`) to an ``argparse`` parser, for trainers.

    Read it back with :func:`ablation_from_args`::

        parser = argparse.ArgumentParser()
        add_ablation_argument(parser)
        args = parser.parse_args(["--ablation", "brf-no-rp"])
        neuron, layer_kwargs = ablation_from_args(args)      # "brf", {"refractory": False}
        model = RecurrentSNN.from_task("ecg", neuron=neuron, **layer_kwargs)
    """
    ablation_kwargs(default)  # validates the default
    lines = ", ".join(f"{name} ({_describe(opts)})" for name, opts in ABLATIONS.items())
    parser.add_argument(flag, choices=list(ABLATIONS), default=default, metavar="NAME",
                        help=f"model variant of the paper's ablations (A.8, A.9); default {default}. {lines}")
    return parser


def _describe(options: dict) -> str:
    extras = [f"{k}={v}" for k, v in options.items() if k != "neuron"]
    return options["neuron"] + (": " + ", ".join(extras) if extras else "")


def ablation_from_args(args, *, dest: str = "ablation"):
    """``(neuron, layer_kwargs)`` of the ablation chosen on the command line (see :func:`add_ablation_argument`)."""
    options = ablation_kwargs(getattr(args, dest))
    return options.pop("neuron"), options


def switch_off_study(model, batches, names: Optional[Sequence[str]] = None, *, task=None,
                     loss_rule: Optional[str] = None, accuracy_rule: Optional[str] = None, start: int = 0,
                     progress: bool = False) -> Dict[str, object]:
    """Evaluate a trained resonator model's weights under each ablation (no retraining): ``{name: EvalResult}``.

    This shows what each mechanism does *inside* a trained network (e.g. the ECG BRF model without its
    refractory period); the paper's A.8 instead trains every variant from scratch, which the trainer does with
    ``--ablation NAME``. ``names`` default to every entry of :data:`ABLATIONS`; ``model`` is a BRF or RF
    :class:`RecurrentSNN` (both share the state-dict keys). Rules as in the robustness studies.
    """
    from ..metrics import evaluate
    from ..network import RecurrentSNN
    from .robustness import _rules
    from .stability import find_recurrent_layer
    layer = find_recurrent_layer(model)
    if layer.neuron not in ("brf", "rf"):
        raise ValueError(f"switch_off_study needs a BRF or RF model (the ablations share their weights), got "
                         f"neuron={layer.neuron!r}.")
    rules = _rules(task, loss_rule, accuracy_rule, start)
    names = list(ABLATIONS) if names is None else list(names)
    batches = list(batches) if iter(batches) is batches else batches
    state = model.state_dict()
    weight = model.hidden.linear.weight
    results = {}
    for name in names:
        options = ablation_kwargs(name)
        neuron = options.pop("neuron")
        variant = RecurrentSNN(layer.input_size, layer.hidden_size, model.out.output_size, neuron, dt=layer.dt,
                               theta=layer.theta, gamma=layer.gamma, spike_fn=layer.spike_fn, omega_init=1.0,
                               b_offset_init=1.0, **options).to(device=weight.device, dtype=weight.dtype)
        variant.load_state_dict(state)
        results[name] = evaluate(variant, batches, progress=progress, **rules)
    return results


def plot_switch_off(results: Mapping, *, width: float = 9.0, height: float = 3.4) -> PlotResult:
    """Bars of accuracy and SOPs per ablation from :func:`switch_off_study`. Returns ``(figure, results)``."""
    if not isinstance(results, Mapping) or not results:
        raise TypeError("`results` must be the {name: EvalResult} mapping of switch_off_study.")
    names = list(results)
    fig, axes = new_figure(1, 2, width=width, height=height)
    ax_a, ax_s = axes[0]
    x = np.arange(len(names))
    colors = [f"C{i % 10}" for i in range(len(names))]
    ax_a.bar(x, [100 * results[n].accuracy for n in names], color=colors)
    ax_s.bar(x, [results[n].sops for n in names], color=colors)
    for ax, label in ((ax_a, "accuracy (%)"), (ax_s, "SOPs per sample")):
        ax.set_xticks(x)
        ax.set_xticklabels(names, rotation=45, ha="right", fontsize=8)
        ax.set_ylabel(label)
    ax_s.set_yscale("log")
    ax_a.set_title("trained weights, mechanism switched off", fontsize=9)
    return PlotResult(fig, dict(results))


TrainingLog = Dict[str, np.ndarray]


def load_training_log(path: Union[str, Path]) -> TrainingLog:
    """Columns of a per-epoch CSV training log as float arrays (``{"epoch": ..., "val_loss": ..., ...}``).

    Any header works; columns that are not numbers (e.g. a timestamp) are kept as strings. The trainer's logs
    have at least ``epoch, val_loss, val_acc, test_acc, sops, lr``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training log {path} not found (the trainer writes one CSV per run).")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames:
            raise ValueError(f"{path} has no header row.")
        rows = list(reader)
    if not rows:
        raise ValueError(f"{path} has a header but no epochs.")
    columns: TrainingLog = {}
    for name in reader.fieldnames:
        values = [row.get(name, "") for row in rows]
        try:
            columns[name] = np.array([float(v) if v not in ("", None) else math.nan for v in values])
        except ValueError:
            columns[name] = np.array(values, dtype=object)
    return columns


def _as_logs(logs) -> Dict[str, TrainingLog]:
    if not isinstance(logs, Mapping) or not logs:
        raise TypeError("`logs` must be a non-empty mapping name -> CSV path (or loaded log).")
    return {name: value if isinstance(value, Mapping) else load_training_log(value) for name, value in logs.items()}


def _epochs(log: TrainingLog) -> np.ndarray:
    return log["epoch"] if "epoch" in log else np.arange(len(next(iter(log.values()))))


def ablation_summary(logs: Mapping, *, select: str = "val_loss", report: Sequence[str] = ("test_acc", "sops"),
                     fraction: float = 0.95) -> Dict[str, dict]:
    """Per run: the epoch of minimum ``select`` (the paper's model selection), the ``report`` columns at that
    epoch, and the first epoch reaching ``fraction`` of that test accuracy (Table 2's convergence measure).

    ``logs``: ``{name: csv path or loaded log}``. Returns ``{name: {"epoch": ..., "test_acc": ..., ...,
    "epochs_to_95": ...}}``.
    """
    summary = {}
    for name, log in _as_logs(logs).items():
        if select not in log:
            raise KeyError(f"log {name!r} has no column {select!r} (columns: {', '.join(log)}).")
        criterion = np.asarray(log[select], dtype=np.float64)
        if np.isnan(criterion).all():
            raise ValueError(f"log {name!r}: column {select!r} is all NaN.")
        best = int(np.nanargmin(criterion))
        epochs = _epochs(log)
        row = {"epoch": float(epochs[best])}
        for column in report:
            if column in log:
                row[column] = float(log[column][best])
        if "test_acc" in log:
            target = fraction * float(log["test_acc"][best])
            reached = np.flatnonzero(np.asarray(log["test_acc"], dtype=np.float64) >= target)
            row[f"epochs_to_{round(100 * fraction)}"] = float(epochs[reached[0]]) if reached.size else math.nan
        summary[name] = row
    return summary


def plot_training_curves(logs: Mapping, columns: Sequence[str] = ("val_loss", "test_acc", "sops"), *,
                         log_scale: Sequence[str] = ("val_loss", "sops"), width_per_column: float = 3.8,
                         height: float = 3.4) -> PlotResult:
    """Learning curves of several runs side by side (paper Figures 5, 10, 11): one panel per column, one line
    per run, the minimum-validation-loss epoch marked with a dot.

    ``logs``: ``{name: csv path or loaded log}``, e.g. ``{"brf": "runs/ecg_brf.csv", "brf-no-rp": ...}``.
    Returns ``(figure, {name: log})``.
    """
    loaded = _as_logs(logs)
    columns = [c for c in columns if any(c in log for log in loaded.values())]
    if not columns:
        raise ValueError("none of the requested columns is in the logs.")
    fig, axes = new_figure(1, len(columns), width=width_per_column * len(columns), height=height)
    for i, (name, log) in enumerate(loaded.items()):
        epochs = _epochs(log)
        best = int(np.nanargmin(log["val_loss"])) if "val_loss" in log else None
        for ax, column in zip(axes[0], columns):
            if column not in log:
                continue
            values = np.asarray(log[column], dtype=np.float64)
            ax.plot(epochs, values, color=f"C{i % 10}", lw=1.1, label=name)
            if best is not None:
                ax.plot(epochs[best], values[best], "o", color=f"C{i % 10}", ms=4)
    for ax, column in zip(axes[0], columns):
        ax.set_title(column, fontsize=10)
        ax.set_xlabel("epoch")
        if column in log_scale:
            ax.set_yscale("log")
        ax.legend(fontsize=7)
    return PlotResult(fig, loaded)
