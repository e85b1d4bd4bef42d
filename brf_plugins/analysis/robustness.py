r"""Robustness of trained networks (paper A.10, Figures 7 and 12; spec 1.8).

Each study evaluates a trained :class:`brf_plugins.network.RecurrentSNN` on a dataset under one perturbation
and returns accuracy, SOPs and loss per level (and repeat) as a :class:`RobustnessResult`:

* :func:`quantization_study`: every parameter and buffer, the inputs and the readout's decay
  :math:`\alpha = e^{-1/|\tau|}` (ALIF: also :math:`\alpha` and :math:`\rho`) rounded to ``f`` fractional bits,
  :math:`Q_f(x) = \mathrm{round}(2^f x)\,2^{-f}` (the initial states are zeros, which :math:`Q_f` keeps);
* :func:`input_noise_study`: Gaussian noise of a given std added to the inputs;
* :func:`spike_deletion_study`: each hidden spike deleted with probability ``p`` at every step,
  :math:`z_t \leftarrow z_t \cdot 1[r \ge p]`, :math:`r \sim U[0, 1)`; the recurrence, the readout and the SOP
  count see the deletion (``RecurrentSNN.forward(spike_hook=...)``);
* :func:`synaptic_noise_study`: Gaussian noise on the weight matrices, std proportional to each weight
  (``relative=True``, the authors' method) or absolute;
* :func:`pruning_study`: recurrent weights removed by a Bernoulli keep-mask (keep probability :math:`1 - p`) on
  the recurrent columns ``[m, m + h)`` of the hidden layer's weight (post-training; Figure 7 trains with the
  mask, see :func:`attach_recurrent_mask`).

The model passed in is never modified (perturbed copies are evaluated). Randomness is seeded per (level,
repeat) from ``seed``, so a study is reproducible and a level's result does not depend on the other levels.
Scoring follows the task's rules through :func:`brf_plugins.metrics.evaluate`.

Example:
    >>> from brf_plugins.analysis import input_noise_study, plot_robustness           # doctest: +SKIP
    >>> result = input_noise_study(model, test_batches, stds=[0, 0.1, 0.2], task="ecg")  # doctest: +SKIP
    >>> result.mean_accuracy                                                            # doctest: +SKIP
    >>> fig, data = plot_robustness({"BRF": result})                                    # doctest: +SKIP
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import nn

from .. import functional as F
from .._checks import check_finite_float, check_positive_int
from ..metrics import evaluate
from ._plotting import PlotResult, new_figure
from .stability import find_recurrent_layer

__all__ = ["RobustnessResult", "quantize", "quantize_model", "as_batches", "quantization_study",
           "input_noise_study", "spike_deletion_study", "synaptic_noise_study", "recurrent_keep_mask",
           "prune_recurrent", "attach_recurrent_mask", "pruning_study", "plot_robustness", "STUDIES"]

STUDIES = {
    "quantization": "fractional bits f",
    "input_noise": "input noise std",
    "spike_deletion": "spike deletion probability p",
    "synaptic_noise": "synaptic noise level",
    "pruning": "recurrent pruning probability p",
}
"""Study name -> the quantity on the x axis."""


@dataclass
class RobustnessResult:
    """Scores of one study: ``levels`` ``(L,)``; ``accuracy`` (0..1), ``sops`` (hidden spikes per sample) and
    ``loss`` as ``(L, R)`` arrays over levels and repeats."""

    study: str
    levels: np.ndarray
    accuracy: np.ndarray
    sops: np.ndarray
    loss: np.ndarray
    seed: int = 0
    options: dict = field(default_factory=dict)

    @property
    def level_name(self) -> str:
        return STUDIES.get(self.study, self.study)

    @property
    def mean_accuracy(self) -> np.ndarray:
        return self.accuracy.mean(axis=1)

    @property
    def std_accuracy(self) -> np.ndarray:
        return self.accuracy.std(axis=1)

    @property
    def mean_sops(self) -> np.ndarray:
        return self.sops.mean(axis=1)

    def table(self) -> str:
        """A plain-text table: level, mean accuracy (%), std, mean SOPs."""
        rows = [f"{self.level_name:>32} | acc %   | std   | SOPs"]
        for level, acc, std, sops in zip(self.levels, self.mean_accuracy, self.std_accuracy, self.mean_sops):
            rows.append(f"{level:>32g} | {100 * acc:7.2f} | {100 * std:5.2f} | {sops:,.1f}")
        return "\n".join(rows)


def quantize(x: torch.Tensor, bits: int) -> torch.Tensor:
    r""":math:`Q_f(x) = \mathrm{round}(2^f x)\,2^{-f}` with ``f = bits`` fractional bits (round half to even)."""
    scale = 2.0 ** _check_bits(bits)
    return torch.round(x * scale) / scale


def _check_bits(bits) -> int:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 0 <= bits <= 100:
        raise ValueError(f"`bits` (fractional bits f) must be an int in [0, 100], got {bits!r}.")
    return int(bits)


def _tau_for_alpha(alpha: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A time constant whose decay ``exp(-1/|tau|)`` equals ``alpha`` in ``like``'s dtype (to the last bit where
    the float grid allows: the float64 inverse is corrected by a few ulps)."""
    with torch.no_grad():
        tau = (-1.0 / torch.log(alpha.double())).to(like.dtype)
        tau = torch.where(torch.isinf(tau), tau.abs(), tau)  # alpha = 1 -> tau = +inf
        for _ in range(8):
            got = F.li_alpha(tau)
            if bool((got == alpha).all()):
                break
            up = torch.nextafter(tau, torch.full_like(tau, float("inf")))
            down = torch.nextafter(tau, torch.zeros_like(tau))
            tau = torch.where(got < alpha, up, torch.where(got > alpha, down, tau))
    return tau


def quantize_model(model: nn.Module, bits: int) -> nn.Module:
    """A copy of ``model`` with every parameter and buffer quantised to ``bits`` fractional bits, then every
    decay derived from a time constant (LI readout :math:`\\alpha`; ALIF :math:`\\alpha`, :math:`\\rho`)
    quantised too, by replacing the time constant with one whose decay is exactly :math:`Q_f(\\alpha)`."""
    from ..network import LIReadout, RecurrentLayer
    bits = _check_bits(bits)
    quantised = copy.deepcopy(model)
    with torch.no_grad():
        for tensor in list(quantised.parameters()) + list(quantised.buffers()):
            if torch.is_floating_point(tensor):
                tensor.copy_(quantize(tensor, bits))
        for module in quantised.modules():
            names = ()
            if isinstance(module, LIReadout):
                names = ("tau_mem",)
            elif isinstance(module, RecurrentLayer) and module.neuron == "alif":
                names = ("tau_mem", "tau_adp")
            for name in names:
                tau = getattr(module, name)
                target = quantize(F.li_alpha(tau), bits)
                tau.copy_(_tau_for_alpha(target, tau))
    return quantised


def as_batches(data, batch_size: int = 256, max_samples: Optional[int] = None) -> List[tuple]:
    """A list of batch-first ``(x, y)`` batches from a Dataset (the first ``max_samples`` items), for the
    studies, which iterate over the data once per level and repeat. Lists and DataLoaders pass through."""
    batch_size = check_positive_int("batch_size", batch_size)
    if isinstance(data, list):
        return data
    if isinstance(data, torch.utils.data.DataLoader):
        return list(data)
    if not (hasattr(data, "__getitem__") and hasattr(data, "__len__")):
        raise TypeError("`data` must be a Dataset, a DataLoader or a list of (x, y) batches.")
    total = len(data) if max_samples is None else min(len(data), check_positive_int("max_samples", max_samples))
    subset = torch.utils.data.Subset(data, range(total))
    return list(torch.utils.data.DataLoader(subset, batch_size=batch_size, shuffle=False))


class _Hooked(nn.Module):
    """Runs ``model(x, spike_hook=hook)`` so :func:`brf_plugins.metrics.evaluate` can score it."""

    def __init__(self, model: nn.Module, hook: Callable):
        super().__init__()
        self.model = model
        self.hook = hook

    def forward(self, x):
        return self.model(x, spike_hook=self.hook)


def _rules(task, loss_rule, accuracy_rule, start):
    if task is not None:
        from ..tasks import get_task
        cfg = get_task(task) if isinstance(task, str) else task
        loss_rule = loss_rule or cfg.loss
        accuracy_rule = accuracy_rule or cfg.accuracy
    if loss_rule is None or accuracy_rule is None:
        raise ValueError("give `task` (e.g. 'ecg') or both `loss_rule` and `accuracy_rule` "
                         "(see brf_plugins.tasks.LOSS_RULES / ACCURACY_RULES).")
    return dict(loss_rule=loss_rule, accuracy_rule=accuracy_rule, start=int(start))


def _reiterable(batches) -> Iterable:
    if iter(batches) is batches:  # a one-shot iterator: keep its batches for the next levels
        return list(batches)
    return batches


def _device(model: nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _generator(seed: int, level: float, repeat: int, device: torch.device) -> torch.Generator:
    """Seeded from (seed, the level's value, repeat): a level gives the same draws whatever the other levels."""
    bits = int(np.float64(level).view(np.uint64))
    state = int(np.random.SeedSequence([int(seed), bits >> 32, bits & 0xFFFFFFFF, repeat]).generate_state(1)[0])
    return torch.Generator(device=device).manual_seed(state)


def _run(study: str, model: nn.Module, batches, levels: Sequence[float], repeats: int, seed: int,
         make: Callable, rules: dict, progress: bool, writer, options: dict) -> RobustnessResult:
    """Evaluate ``make(level, generator) -> (model, batch transform or None)`` for every level and repeat."""
    levels = np.asarray(levels, dtype=np.float64).reshape(-1)
    if levels.size == 0:
        raise ValueError("give at least one level.")
    repeats = check_positive_int("repeats", repeats)
    batches = _reiterable(batches)
    device = _device(model)
    shape = (levels.size, repeats)
    accuracy, sops, loss = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=levels.size * repeats, desc=study, leave=False)
    for i, level in enumerate(levels):
        for r in range(repeats):
            generator = _generator(seed, float(level), r, device)
            candidate, transform = make(float(level), generator)
            data = batches if transform is None else ((transform(x), y) for x, y in batches)
            result = evaluate(candidate, data, device=device, **rules)
            accuracy[i, r], sops[i, r], loss[i, r] = result.accuracy, result.sops, result.loss
            if bar is not None:
                bar.update()
        if writer is not None:
            writer.add_scalar(f"robustness/{study}/accuracy", accuracy[i].mean(), i)
            writer.add_scalar(f"robustness/{study}/sops", sops[i].mean(), i)
    if bar is not None:
        bar.close()
    return RobustnessResult(study=study, levels=levels, accuracy=accuracy, sops=sops, loss=loss, seed=seed,
                            options=options)


def quantization_study(model: nn.Module, batches, bits: Sequence[int] = (0, 1, 2, 4, 6, 8, 12, 16, 24, 32), *,
                       task=None, loss_rule: Optional[str] = None, accuracy_rule: Optional[str] = None,
                       start: int = 0, quantize_inputs: bool = True, progress: bool = False,
                       writer=None) -> RobustnessResult:
    """Accuracy and SOPs with parameters, buffers, decays and (``quantize_inputs``) inputs at ``f`` fractional
    bits (Figure 12, top left). Deterministic: one repeat per level.

    ``batches``: re-iterable ``(x, y)`` batches, batch-first (a list from :func:`as_batches` or a DataLoader);
    ``task`` names the loss/accuracy rules (or pass ``loss_rule``/``accuracy_rule``/``start``).
    """
    bits = [_check_bits(b) for b in bits]
    rules = _rules(task, loss_rule, accuracy_rule, start)

    def make(level, generator):
        f = int(level)
        return quantize_model(model, f), ((lambda x: quantize(x, f)) if quantize_inputs else None)

    return _run("quantization", model, batches, bits, 1, 0, make, rules, progress, writer,
                dict(quantize_inputs=quantize_inputs))


def input_noise_study(model: nn.Module, batches, stds: Sequence[float] = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3),
                      *, repeats: int = 3, seed: int = 0, task=None, loss_rule: Optional[str] = None,
                      accuracy_rule: Optional[str] = None, start: int = 0, progress: bool = False,
                      writer=None) -> RobustnessResult:
    """Accuracy and SOPs with Gaussian noise ``x + std * N(0, 1)`` on the inputs (Figure 12, top right)."""
    for s in stds:
        check_finite_float("stds", s, nonnegative=True)
    rules = _rules(task, loss_rule, accuracy_rule, start)

    def make(level, generator):
        def noisy(x):
            return x + level * torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        return model, noisy

    return _run("input_noise", model, batches, stds, repeats, seed, make, rules, progress, writer, {})


def spike_deletion_study(model: nn.Module, batches,
                         probabilities: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9), *,
                         repeats: int = 3, seed: int = 0, task=None, loss_rule: Optional[str] = None,
                         accuracy_rule: Optional[str] = None, start: int = 0, progress: bool = False,
                         writer=None) -> RobustnessResult:
    """Accuracy and SOPs when every hidden spike is deleted with probability ``p`` at each step (Figure 12,
    bottom left). Needs a model whose ``forward`` takes ``spike_hook`` (:class:`RecurrentSNN`)."""
    for p in probabilities:
        check_finite_float("probabilities", p, nonnegative=True)
        if p > 1:
            raise ValueError(f"`probabilities` must lie in [0, 1], got {p}.")
    rules = _rules(task, loss_rule, accuracy_rule, start)

    def make(level, generator):
        def delete(t, z):
            keep = torch.rand(z.shape, generator=generator, dtype=z.dtype, device=z.device) >= level
            return z * keep
        return _Hooked(model, delete), None

    return _run("spike_deletion", model, batches, probabilities, repeats, seed, make, rules, progress, writer, {})


def synaptic_noise_study(model: nn.Module, batches, levels: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6,
                                                                                0.7, 0.8, 0.9, 1.0), *,
                         relative: bool = True, repeats: int = 3, seed: int = 0, task=None,
                         loss_rule: Optional[str] = None, accuracy_rule: Optional[str] = None, start: int = 0,
                         progress: bool = False, writer=None) -> RobustnessResult:
    """Accuracy and SOPs with Gaussian noise on every weight matrix (2-D parameter): ``W + level * W * N(0, 1)``
    (``relative=True``, the authors' scripts) or ``W + level * N(0, 1)`` (Figure 12, bottom right)."""
    for s in levels:
        check_finite_float("levels", s, nonnegative=True)
    rules = _rules(task, loss_rule, accuracy_rule, start)

    def make(level, generator):
        noisy = copy.deepcopy(model)
        with torch.no_grad():
            for weight in noisy.parameters():
                if weight.dim() == 2:
                    noise = torch.randn(weight.shape, generator=generator, dtype=weight.dtype,
                                        device=weight.device)
                    weight.add_(level * (weight * noise if relative else noise))
        return noisy, None

    return _run("synaptic_noise", model, batches, levels, repeats, seed, make, rules, progress, writer,
                dict(relative=relative))


def recurrent_keep_mask(layer, p: float, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """A ``(h, m + h)`` mask of the hidden weight: ones on the input columns, Bernoulli(``1 - p``) on the
    recurrent columns ``[m, m + h)`` (spec 1.8 ``LinearMask``)."""
    layer = find_recurrent_layer(layer)
    p = check_finite_float("p", p, nonnegative=True)
    if p > 1:
        raise ValueError(f"`p` (pruning probability) must lie in [0, 1], got {p}.")
    if not layer.recurrent:
        raise ValueError("the layer has no recurrent weights (recurrent=False): nothing to prune.")
    weight = layer.linear.weight
    mask = torch.ones_like(weight)
    m = layer.input_size
    draw = torch.rand(weight.shape[0], weight.shape[1] - m, generator=generator, dtype=weight.dtype,
                      device=weight.device)
    mask[:, m:] = (draw >= p).to(weight.dtype)
    return mask


def prune_recurrent(model: nn.Module, p: float, generator: Optional[torch.Generator] = None) -> nn.Module:
    """A copy of ``model`` whose recurrent weights are removed with probability ``p`` each."""
    pruned = copy.deepcopy(model)
    layer = find_recurrent_layer(pruned)
    with torch.no_grad():
        layer.linear.weight.mul_(recurrent_keep_mask(layer, p, generator))
    return pruned


def attach_recurrent_mask(model: nn.Module, p: float, generator: Optional[torch.Generator] = None):
    """Prune the recurrent weights of ``model`` in place with a fixed random mask and keep them pruned during
    training (the mask is re-applied before every forward, as the authors' ``LinearMask`` does for Figure 7).

    The mask is re-applied by a forward pre-hook on ``model`` itself (not on the layer's ``Linear``: the
    network's fused path reads the weight without calling that module). Returns ``(mask, handle)``;
    ``handle.remove()`` stops re-applying the mask.
    """
    layer = find_recurrent_layer(model)
    mask = recurrent_keep_mask(layer, p, generator)
    weight = layer.linear.weight

    def apply(module, args):
        with torch.no_grad():
            weight.mul_(mask)

    apply(model, ())
    return mask, model.register_forward_pre_hook(apply)


def pruning_study(model: nn.Module, batches, probabilities: Sequence[float] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0), *,
                  repeats: int = 3, seed: int = 0, task=None, loss_rule: Optional[str] = None,
                  accuracy_rule: Optional[str] = None, start: int = 0, progress: bool = False,
                  writer=None) -> RobustnessResult:
    """Accuracy and SOPs of the trained model with a fraction ``p`` of its recurrent weights removed (a fresh
    random mask per repeat). Figure 7 instead trains each network with its mask: use
    :func:`attach_recurrent_mask` in training for that."""
    rules = _rules(task, loss_rule, accuracy_rule, start)
    return _run("pruning", model, batches, probabilities, repeats, seed,
                lambda level, generator: (prune_recurrent(model, level, generator), None), rules, progress,
                writer, {})


def _as_results(results) -> Dict[str, List[RobustnessResult]]:
    if isinstance(results, RobustnessResult):
        return {"model": [results]}
    if isinstance(results, (list, tuple)):
        return {"model": list(results)}
    if isinstance(results, Mapping):
        out = {}
        for label, value in results.items():
            out[label] = [value] if isinstance(value, RobustnessResult) else list(value)
        if out and all(isinstance(r, RobustnessResult) for rs in out.values() for r in rs):
            return out
    raise TypeError("`results` must be a RobustnessResult, a list of them, or {label: result or list}.")


def plot_robustness(results, *, show_sops: bool = True, width_per_study: float = 3.6,
                    height: float = 5.0) -> PlotResult:
    """Accuracy (top) and SOPs (bottom) against the perturbation level, one column per study, one line per
    model label, with the spread over repeats shaded (Figures 7 and 12).

    ``results``: one :class:`RobustnessResult`, a list (one model, several studies), or ``{label: result or
    list of results}`` to compare models. Returns ``(figure, {label: [results]})``.
    """
    grouped = _as_results(results)
    studies = []
    for rs in grouped.values():
        for r in rs:
            if r.study not in studies:
                studies.append(r.study)
    rows = 2 if show_sops else 1
    fig, axes = new_figure(rows, len(studies), width=width_per_study * len(studies), height=height if show_sops
                           else height / 1.8, sharex="col")
    for col, study in enumerate(studies):
        for i, (label, rs) in enumerate(grouped.items()):
            for r in rs:
                if r.study != study:
                    continue
                color = f"C{i % 10}"
                mean, std = 100 * r.mean_accuracy, 100 * r.std_accuracy
                ax = axes[0, col]
                ax.plot(r.levels, mean, "o-", ms=3, color=color, label=label)
                if r.accuracy.shape[1] > 1:
                    ax.fill_between(r.levels, mean - std, mean + std, color=color, alpha=0.2)
                if show_sops:
                    axes[1, col].plot(r.levels, r.mean_sops, "o-", ms=3, color=color, label=label)
                level_name = r.level_name
        axes[0, col].set_title(study.replace("_", " "), fontsize=10)
        axes[0, col].set_ylabel("accuracy (%)")
        axes[-1, col].set_xlabel(level_name)
        axes[0, col].legend(fontsize=7)
        if show_sops:
            axes[1, col].set_ylabel("SOPs per sample")
    return PlotResult(fig, grouped)
