r"""Loss and accuracy rules of the paper's tasks, spike-operation counts, and model evaluation.

Readouts are time-first ``(T, B, C)``. Targets are either one label per sequence, ``(B,)``, or one label per step,
``(T, B)``; a per-step label of ``IGNORE_INDEX`` (-1) is left out of loss and accuracy (used by the ECG loader's
option to mask unlabelled steps; the paper scores them as class 0).

Rules (``brf_plugins.tasks.LOSS_RULES`` / ``ACCURACY_RULES``):

* ``"last"``: only the last step counts (S-MNIST);
* ``"mean"`` (accuracy): argmax of the time-mean readout (PS-MNIST, SHD);
* ``"sum"`` (loss): NLL of every step against the sequence label, summed over time (PS-MNIST, SHD);
* ``"per_step"``: every step against its own label (ECG).

Losses are summed over time and averaged over the batch, as the released code backpropagates them.
``start`` skips the first steps (the ALIF scripts' ``sub_seq_length``).

SOPs (paper Eq. 41): hidden spikes summed over steps, neurons and samples, divided by the number of samples.

Example:
    >>> import torch
    >>> from brf_plugins.metrics import sequence_loss, count_correct
    >>> readout = torch.randn(50, 4, 10)
    >>> labels = torch.tensor([1, 2, 3, 4])
    >>> loss = sequence_loss(readout, labels, "sum")
    >>> correct, total = count_correct(readout, labels, "mean")
    >>> total
    4
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, List, Optional, Tuple

import torch
import torch.nn.functional as nnf

from ._checks import check_choice

__all__ = ["IGNORE_INDEX", "sequence_loss", "predictions", "count_correct", "accuracy", "sops_per_sample",
           "EvalResult", "evaluate", "evaluation_sums", "eval_result", "loss_per_step", "time_first"]

IGNORE_INDEX = -1


def _check_target(readout: torch.Tensor, target: torch.Tensor, per_step: bool) -> None:
    if readout.dim() != 3:
        raise ValueError(f"`readout` must be (T, B, C), got shape {tuple(readout.shape)}.")
    want = tuple(readout.shape[:2]) if per_step else (readout.shape[1],)
    if tuple(target.shape) != want:
        layout = "(T, B) per-step labels" if per_step else "(B,) sequence labels"
        raise ValueError(f"`target` must be {layout} of shape {want}, got {tuple(target.shape)}.")


def sequence_loss(readout: torch.Tensor, target: torch.Tensor, rule: str, start: int = 0) -> torch.Tensor:
    """NLL of ``log_softmax(readout)``: summed over the scored steps, mean over the batch."""
    check_choice("rule", rule, ("last", "sum", "per_step"))
    _check_target(readout, target, rule == "per_step")
    batch = readout.shape[1]
    if rule == "last":
        return nnf.nll_loss(nnf.log_softmax(readout[-1], dim=-1), target)
    scored = readout[start:]
    log_p = nnf.log_softmax(scored, dim=-1).reshape(-1, scored.shape[-1])
    labels = target[start:] if rule == "per_step" else target.expand(scored.shape[0], batch)
    return nnf.nll_loss(log_p, labels.reshape(-1), reduction="sum", ignore_index=IGNORE_INDEX) / batch


def predictions(readout: torch.Tensor, rule: str, start: int = 0) -> torch.Tensor:
    """Predicted classes: ``(B,)`` for ``last``/``mean``, ``(T - start, B)`` for ``per_step``."""
    check_choice("rule", rule, ("last", "mean", "per_step"))
    if rule == "last":
        return readout[-1].argmax(-1)
    if rule == "mean":
        return readout[start:].mean(0).argmax(-1)
    return readout[start:].argmax(-1)


def count_correct(readout: torch.Tensor, target: torch.Tensor, rule: str, start: int = 0) -> Tuple[int, int]:
    """``(correct, scored)`` counts under an accuracy rule; ignored per-step labels are not scored."""
    _check_target(readout, target, rule == "per_step")
    pred = predictions(readout, rule, start)
    labels = target[start:] if rule == "per_step" else target
    valid = labels != IGNORE_INDEX
    return int(((pred == labels) & valid).sum()), int(valid.sum())


def accuracy(readout: torch.Tensor, target: torch.Tensor, rule: str, start: int = 0) -> float:
    """Fraction correct (0..1) under an accuracy rule."""
    correct, total = count_correct(readout, target, rule, start)
    return correct / total if total else float("nan")


def sops_per_sample(spike_count: float, n_samples: int) -> float:
    """Spike operations per sample (paper Eq. 41): total hidden spikes / samples."""
    return float(spike_count) / n_samples


def time_first(x: torch.Tensor) -> torch.Tensor:
    """Batch-first ``(B, T, ...)`` loader output to the time-first layout of the networks."""
    return x.transpose(0, 1)


@dataclass
class EvalResult:
    """Evaluation of a model on a dataset."""

    loss: float           # mean over batches of (summed-over-time loss / T), the released scripts' printout
    accuracy: float       # 0..1
    sops: float           # hidden spikes per sample
    samples: int
    scored: int           # sequences, or steps for the per-step rule

    @property
    def percent(self) -> float:
        return 100.0 * self.accuracy


def loss_per_step(loss: torch.Tensor, readout: torch.Tensor, rule: str, start: int = 0) -> float:
    """A batch's :func:`sequence_loss` divided by ``T - start`` (``T`` for the ``last`` rule, which has no
    ``start``): the per-step loss the released scripts print and the logs show."""
    steps = readout.shape[0] - (start if rule != "last" else 0)
    return float(loss) / max(steps, 1)


@torch.no_grad()
def evaluation_sums(model: torch.nn.Module, batches: Iterable, loss_rule: str, accuracy_rule: str, start: int = 0,
                    device: Optional[torch.device] = None, progress: bool = False) -> List[float]:
    """The sums behind :func:`evaluate`: ``[loss_sum, batches, correct, scored, spikes, samples]`` (the loss of
    each batch divided by its scored steps). Sums, so that data-parallel ranks can add theirs before
    :func:`eval_result` turns them into an :class:`EvalResult`."""
    was_training = model.training
    model.eval()
    if device is None:
        device = next(model.parameters()).device
    loss_sum, n_batches, correct, scored, spikes, samples = 0.0, 0, 0, 0, 0.0, 0
    iterator = batches
    if progress:
        from tqdm.auto import tqdm
        iterator = tqdm(batches, desc="eval", leave=False)
    try:
        for x, y in iterator:
            x = time_first(x.to(device))
            y = y.to(device)
            if y.dim() == 2:
                y = time_first(y)
            out = model(x)
            readout, spike_count = out[0], out[1]
            loss_sum += loss_per_step(sequence_loss(readout, y, loss_rule, start), readout, loss_rule, start)
            n_batches += 1
            c, n = count_correct(readout, y, accuracy_rule, start)
            correct += c
            scored += n
            spikes += float(spike_count)
            samples += x.shape[1]
    finally:
        model.train(was_training)
    return [loss_sum, n_batches, correct, scored, spikes, samples]


def eval_result(sums: List[float]) -> EvalResult:
    """:class:`EvalResult` from :func:`evaluation_sums` (summed over ranks where there are several)."""
    loss_sum, n_batches, correct, scored, spikes, samples = sums
    if samples == 0:
        raise ValueError("`batches` was empty: nothing to evaluate.")
    loss = loss_sum / n_batches
    return EvalResult(loss=loss if math.isfinite(loss) else float("nan"), accuracy=correct / max(scored, 1),
                      sops=spikes / samples, samples=int(samples), scored=int(scored))


def evaluate(model: torch.nn.Module, batches: Iterable, loss_rule: str, accuracy_rule: str, start: int = 0,
             device: Optional[torch.device] = None, progress: bool = False) -> EvalResult:
    """Run ``model`` over batches ``(x, y)`` (batch-first ``x``: ``(B, T, m)``) and score it.

    ``model(x_time_first)`` must return a :class:`brf_plugins.network.SNNOutput` (or a tuple whose first two
    entries are the readout ``(T, B, C)`` and the batch's spike count).
    """
    return eval_result(evaluation_sums(model, batches, loss_rule, accuracy_rule, start, device, progress))
