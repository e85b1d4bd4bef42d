r"""The paper's training recipe (spec section 4) for models of the core, snnTorch and Norse.

Per epoch ``e = 0 .. E`` (``E + 1`` passes, as the released scripts):

1. evaluate validation and test (epoch 0 is the untrained network);
2. keep the model with the lowest validation loss (``<=`` for ECG, ``<`` elsewhere) as ``best.pt``;
3. if ``e < E``: train one epoch (Adam, loss summed over time and averaged over the batch, optional
   ``clip_grad_norm_``), then step the linear LR decay :math:`\mathrm{lr}_e = \mathrm{lr}_0 (1 - e/E)`;
4. write ``last.pt`` atomically (model, optimizer, scheduler, history, best model), so ``resume=True`` continues
   exactly where a killed run stopped: the shuffling of epoch ``e`` is drawn from ``seed`` and ``e`` alone.

ALIF (and the core's ``neuron="lif"``, ALIF without adaptation) on (P)S-MNIST train with the authors' truncated
BPTT (``AlifRecipe.tbptt`` = 50 steps, ``SimpleALIFRNNTbptt``, spec section 4): an optimizer step at every step
``t`` with ``t % 50 == 0`` (``t = 0`` included) and at ``t = T - 1``, each over the window since the previous one
(:func:`tbptt_windows`: ``[0, 1), [1, 51), ..., [751, 784)``, 17 per S-MNIST batch), whose gradient reaches only
that window (the state is carried on detached). The label-last rule scores each window at its last step (the
authors' "label-last" TBPTT trains on those intermediate labels, spec 9.8); the sum rule sums the window's steps.

Divergence: after every backward pass the loss and all gradients, and after every optimizer step all
parameters, are checked in one fused reduction each (``torch._foreach_norm(..., inf)``: NaN and inf propagate).
A non-finite value raises :class:`DivergenceError` (:class:`NonFiniteLossError` when the loss itself is
non-finite) with the epoch, batch, global step, the offending tensors and their statistics, also written to
``divergence.txt``; ``on_nan="skip"`` instead drops a batch whose loss or gradients are non-finite (nothing is
updated with it), but a parameter that turns non-finite after an update, a non-finite validation loss, or an
epoch whose every batch was dropped always stops the run. ``last.pt`` and ``best.pt`` are never written from a
non-finite model: after a divergence they hold the last good epoch.

Run folders: a run holds an ``fcntl`` lock on ``out_dir/.brf-train.lock`` (a second run on the folder fails at
once with :class:`~brf_plugins.train.state.RunFolderInUseError` naming the holder's pid), and refuses to start
in a folder that holds a previous run unless ``resume`` (continue it) or ``force`` (move its files to
``out_dir/replaced-TIMESTAMP/`` first; nothing is deleted) is set.

Resume checks the recipe: the task, framework, neuron, model options and data (``data_seed``, permutation,
masking, SHD binning) must equal the run's; a changed epochs / lr / batch size / grad clip / TBPTT window / seed /
sample count / max batches raises :class:`RecipeChangedError` listing the differences, unless
``allow_recipe_change`` (then the changes are logged in ``run.log``, ``last.pt`` and ``summary.json``). The
learning rate of epoch ``e`` is always :math:`\mathrm{lr}_0 (1 - e/E)` with the requested ``lr_0`` and ``E``,
from the first epoch trained after the resume: extending a finished 2-epoch run to 4 epochs trains epochs 2 and
3 (the third and fourth passes) at :math:`\mathrm{lr}_0/2` and :math:`\mathrm{lr}_0/4` and evaluates epoch 4.
A run cannot be shortened below the epochs it has trained.

The reported result is the test accuracy at the epoch of minimum validation loss; the convergence metrics are the
first epochs whose test accuracy reaches 95 / 98 / 100 % of it (paper Table 2). Logs: tqdm, TensorBoard and a CSV
(``metrics.csv``) per epoch with loss, accuracy, SOPs, learning rate and omega / b' statistics.

Under ``torchrun --nproc_per_node=N`` (``WORLD_SIZE`` set) the same code trains with DistributedDataParallel: each
rank reads its share of every global batch (``DistributedSampler``), gradients are averaged, metrics are summed
over ranks, and only rank 0 logs and writes checkpoints. ``batch_size`` is the *global* batch.

Example:
    >>> from brf_plugins.train import TrainConfig, train
    >>> result = train(TrainConfig(task="synthetic", epochs=1, train_samples=64, val_samples=32,
    ...                            test_samples=32, progress=False, tensorboard=False))   # doctest: +SKIP
    >>> 0.0 <= result.test_accuracy <= 1.0                                                 # doctest: +SKIP
    True
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from .._checks import check_choice, check_finite_float, check_positive_int
from .._io import remove_stale_temporaries
from ..longseq import detach_state
from ..metrics import (EvalResult, count_correct, eval_result, evaluation_sums, loss_per_step, sequence_loss,
                       time_first)
from ..tasks import TaskConfig
from .baselines import lif_learning_rate
from .capture import keep_tensor_lr
from .models import build_model, canonical_framework, count_parameters, resonator_parameters
from .state import (RUN_FORMAT, CheckpointCorruptError, RunExistsError, RunLock, append_run_log, atomic_torch_save,
                    atomic_write_text, capture_rng, load_run_file, move_run_aside, restore_rng, run_files)
from .tasks import best_rule, resolve_task, task_datasets

__all__ = ["TrainConfig", "TrainResult", "DivergenceError", "NonFiniteLossError", "RecipeChangedError", "train",
           "recipe", "run_recipe", "recipe_differences", "convergence_epochs", "parameter_stats", "CSV_COLUMNS",
           "IDENTITY_KEYS", "RECIPE_KEYS"]

CSV_COLUMNS = ("epoch", "lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss",
               "test_accuracy", "test_sops", "skipped_batches", "epoch_seconds", "omega_mean", "omega_std",
               "omega_min", "omega_max", "b_offset_mean", "b_offset_std", "b_offset_min", "b_offset_max")


class DivergenceError(FloatingPointError):
    """Training diverged: a loss, gradient, parameter or validation loss became NaN or inf.

    Attributes:
        kind: ``"loss"``, ``"gradients"``, ``"parameters"``, ``"validation loss"`` or ``"all batches skipped"``.
        epoch, batch, step: where (``batch``/``step`` None outside a training step; ``step`` counts optimizer
            steps over the whole run, from 1).
        tensors: names of the non-finite tensors (``["loss"]`` for the loss).
        statistics: per parameter ``{min, max, mean, non_finite, grad_abs_max, grad_non_finite}`` (finite values
            only for min/max/mean), plus ``"loss"`` and ``"lr"``.
        summary: the message without the statistics table (one line, what ``brf-train`` prints).
    """

    def __init__(self, message: str, *, kind: str, epoch: int, batch: Optional[int] = None,
                 step: Optional[int] = None, tensors: Sequence[str] = (), statistics: Optional[dict] = None,
                 summary: Optional[str] = None):
        super().__init__(message)
        if summary is None:  # drop the statistics table: "HEAD Parameter statistics...:\n TABLE\nHINT"
            lines = message.split("\n")
            summary = lines[0].split(" Parameter statistics")[0] + (" " + lines[-1] if len(lines) > 1 else "")
        self.summary = summary
        self.kind, self.epoch, self.batch, self.step = kind, epoch, batch, step
        self.tensors = list(tensors)
        self.statistics = dict(statistics or {})


class NonFiniteLossError(DivergenceError):
    """The training loss became NaN or inf (a :class:`DivergenceError` of kind ``"loss"``)."""


class RecipeChangedError(ValueError):
    """``resume`` with a recipe that differs from the run's; ``differences`` maps a key to ``(run's, requested)``."""

    def __init__(self, message: str, differences: Dict[str, Tuple[object, object]]):
        super().__init__(message)
        self.differences = differences


@dataclass
class TrainConfig:
    """One training run. ``None`` fields take the task's recipe (:mod:`brf_plugins.tasks`).

    Attributes:
        task: ``synthetic`` (built in), ``smnist``, ``psmnist``, ``ecg`` or ``shd``.
        framework: ``core``, ``snntorch`` or ``norse``.
        neuron: ``brf``, ``rf``, ``bhrf``, ``alif`` or ``lif`` (ALIF without adaptation, same size).
        epochs, batch_size, lr, grad_clip: the recipe's values unless given (``grad_clip=0`` switches clipping off).
        seed: model initialisation and shuffling; ``data_seed``: validation split / PS-MNIST permutation /
            synthetic data.
        out_dir: where ``last.pt``, ``best.pt``, ``metrics.csv``, ``summary.json`` and TensorBoard logs go.
        resume: continue from ``out_dir/last.pt`` (the recipe must match, see ``allow_recipe_change``).
        force: start a new run in an ``out_dir`` that holds one: its files move to ``out_dir/replaced-TIMESTAMP/``.
        allow_recipe_change: let ``resume`` continue with a changed epochs / lr / batch size / grad clip / TBPTT /
            seed / sample counts (logged); without it such a resume raises :class:`RecipeChangedError`.
        on_nan: ``"stop"`` (raise :class:`DivergenceError`) or ``"skip"`` (drop a batch whose loss or gradients
            are non-finite, count it); see the module docstring.
        time_limit: minutes; no new epoch starts when the last one would end past it (the run then reports
            what it reached).
        stop_after_epochs: stop, as ``time_limit`` does (resumable, reported as stopped early), once this many
            epochs of the recipe are trained; the schedule stays the recipe's, so a resumed run continues it
            unchanged (a first pass over several long runs before any is finished).
        cuda_graph: capture each full-size training batch's whole step (forward, full BPTT, finite check,
            clipping, Adam with ``capturable=True`` and a tensor learning rate) in one CUDA graph and replay it
            (:class:`brf_plugins.train.capture.CapturedTrainStep`); the last, smaller batch runs eagerly. CUDA
            only; not with ``on_nan="skip"`` (a graph cannot drop a batch), TBPTT windows or DDP.
        train_samples, val_samples, test_samples, max_batches: shrink a run (quick checks, notebooks).
        threads: ``torch.set_num_threads`` for the run (1: these small networks gain nothing from intra-op
            threads, and idle OpenMP threads spin on a shared machine; None leaves the setting alone).
    """

    task: str = "synthetic"
    framework: str = "core"
    neuron: str = "brf"
    epochs: Optional[int] = None
    batch_size: Optional[int] = None
    lr: Optional[float] = None
    grad_clip: Optional[float] = None
    seed: int = 0
    data_seed: int = 0
    data_root: Optional[str] = None
    download: bool = False
    permutation: Optional[str] = None
    mask_unlabelled: bool = False
    shd_binning: str = "paper"
    out_dir: Optional[str] = None
    resume: bool = False
    force: bool = False
    allow_recipe_change: bool = False
    on_nan: str = "stop"
    time_limit: Optional[float] = None
    stop_after_epochs: Optional[int] = None
    cuda_graph: bool = False
    train_samples: Optional[int] = None
    val_samples: Optional[int] = None
    test_samples: Optional[int] = None
    max_batches: Optional[int] = None
    eval_test_every_epoch: bool = True
    progress: bool = True
    tensorboard: bool = True
    threads: Optional[int] = 1
    device: str = "cpu"
    model_kwargs: Dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, object]:
        return asdict(self)


@dataclass
class TrainResult:
    """Outcome of :func:`train`. Accuracies are fractions (0..1)."""

    config: Dict[str, object]
    history: List[Dict[str, float]]
    best_epoch: int
    best_val_loss: float
    test_accuracy: float          # at the best validation epoch
    test_sops: float
    convergence: Dict[str, Optional[int]]
    parameters: int
    wall_seconds: float           # this call
    stopped_early: bool
    out_dir: Optional[str]
    model: Optional[nn.Module] = None       # the model after the last epoch
    best_state: Optional[Dict[str, torch.Tensor]] = None   # its state dict at the best validation epoch
    recipe_changes: List[Dict[str, object]] = field(default_factory=list)   # allowed changes at resumes

    @property
    def final_epoch(self) -> int:
        return int(self.history[-1]["epoch"]) if self.history else 0

    @property
    def run_seconds(self) -> float:
        """Wall time of every epoch of the run, over all the calls a resumed run took."""
        return float(sum(h.get("epoch_seconds", 0.0) for h in self.history))


def recipe(cfg: TrainConfig) -> Dict[str, object]:
    """The effective hyper-parameters of a run: the task's recipe with the config's overrides.

    ALIF (and the core's LIF baseline) use the repo's ALIF recipe (lr, batch size, ``sub_seq_length``, and
    ``tbptt``: the truncated-BPTT window in steps, 0 for full BPTT). The snnTorch and Norse LIF baselines train
    with the BRF recipe (full BPTT) at their swept learning rate
    (:data:`brf_plugins.train.baselines.LIF_LEARNING_RATES`; the ALIF one for a task not swept)."""
    task = resolve_task(cfg.task)
    framework_lif = cfg.neuron == "lif" and canonical_framework(cfg.framework) != "core"
    spiking_alif = cfg.neuron in ("alif", "lif") and not framework_lif
    default_lr = task.alif.lr if spiking_alif else task.lr
    if framework_lif:
        default_lr = lif_learning_rate(task.name, canonical_framework(cfg.framework), task.alif.lr)
    lr = cfg.lr if cfg.lr is not None else default_lr
    batch = cfg.batch_size if cfg.batch_size is not None else (task.alif.batch_size if spiking_alif
                                                                 else task.batch_size)
    recipe_clip = task.alif.grad_clip if spiking_alif else task.grad_clip
    clip = recipe_clip if cfg.grad_clip is None else (cfg.grad_clip or None)
    start = task.alif.sub_seq_length if spiking_alif else 0
    tbptt = int(getattr(task.alif, "tbptt", 0) or 0) if spiking_alif else 0
    epochs = cfg.epochs if cfg.epochs is not None else task.epochs
    return dict(task=task, lr=float(lr), batch_size=check_positive_int("batch_size", batch), grad_clip=clip,
                start=int(start), tbptt=tbptt, epochs=check_positive_int("epochs", epochs),
                best_rule=best_rule(task.name, spiking_alif), loss=task.loss, accuracy=task.accuracy)


def convergence_epochs(accuracies: List[float], final: float,
                       fractions: Tuple[float, ...] = (0.95, 0.98, 1.0)) -> Dict[str, Optional[int]]:
    """First epoch whose accuracy reaches ``fraction * final`` (paper Table 2), or None."""
    out = {}
    for fraction in fractions:
        hit = next((e for e, a in enumerate(accuracies) if a >= fraction * final - 1e-12), None)
        out[f"epochs_to_{round(fraction * 100)}"] = hit
    return out


def parameter_stats(model: nn.Module) -> Dict[str, float]:
    """Mean / std / min / max of the learned omega and b' (absolute values, as the neurons use them)."""
    stats = {}
    for leaf, tensor in resonator_parameters(model).items():
        value = tensor.abs().double()
        stats.update({f"{leaf}_mean": float(value.mean()), f"{leaf}_std": float(value.std(unbiased=False)),
                      f"{leaf}_min": float(value.min()), f"{leaf}_max": float(value.max())})
    return stats


def _tensor_statistics(model: nn.Module) -> Dict[str, Dict[str, float]]:
    """Per parameter: min / max / mean of its finite values, its non-finite count, and the same of its gradient
    (only called once a check failed, so a loop over tensors is fine here)."""
    stats = {}
    for name, p in model.named_parameters():
        d = p.detach().double()
        finite = torch.isfinite(d)
        shown = d[finite]
        entry = {"shape": tuple(p.shape), "non_finite": int((~finite).sum()),
                 "min": float(shown.min()) if shown.numel() else math.nan,
                 "max": float(shown.max()) if shown.numel() else math.nan,
                 "mean": float(shown.mean()) if shown.numel() else math.nan}
        if p.grad is not None:
            g = p.grad.detach().double()
            g_finite = torch.isfinite(g)
            entry["grad_non_finite"] = int((~g_finite).sum())
            entry["grad_abs_max"] = float(g[g_finite].abs().max()) if g_finite.any() else math.nan
        stats[name] = entry
    return stats


def _format_statistics(stats: Dict[str, Dict[str, float]]) -> str:
    lines = []
    for name, e in stats.items():
        rng = (f"min {e['min']:.4g}, max {e['max']:.4g}, mean {e['mean']:.4g}" if math.isfinite(e["min"])
               else "no finite value")
        grad = (f", grad |max| {e['grad_abs_max']:.3g}, grad non-finite {e['grad_non_finite']}"
                if "grad_non_finite" in e else "")
        lines.append(f"  {name} {e['shape']}: {rng}, non-finite {e['non_finite']}{grad}")
    return "\n".join(lines)


def _describe_parameters(model: nn.Module) -> str:
    return _format_statistics(_tensor_statistics(model))


def _all_finite(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """One fused check that every element of ``tensors`` is finite: a 0-dim bool tensor (no host sync).

    ``torch._foreach_norm(..., inf)`` takes every tensor's max-abs in one multi-tensor kernel (NaN and inf
    propagate, and a max cannot overflow), then a single ``isfinite().all()`` over the stacked scalars."""
    tensors = [t for t in tensors if t is not None and t.numel() and t.is_floating_point()]
    if not tensors:
        return torch.tensor(True)
    norms = torch._foreach_norm(tensors, float("inf"))
    if len({(n.dtype, n.device) for n in norms}) > 1:
        device = norms[0].device
        norms = [n.to(device=device, dtype=torch.float64) for n in norms]
    return torch.isfinite(torch.stack(norms)).all()


def _nonfinite_names(named: Sequence[Tuple[str, Optional[torch.Tensor]]]) -> List[str]:
    return [name for name, t in named if t is not None and not bool(torch.isfinite(t).all())]


# -- distributed helpers ------------------------------------------------------------------------------------

def _dist_setup(device: str):
    """Initialise torch.distributed when launched by torchrun (``WORLD_SIZE`` > 1). Returns (rank, world)."""
    import torch.distributed as dist
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, False, False
    created = not dist.is_initialized()
    if created:
        backend = "nccl" if device.startswith("cuda") and torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size(), True, created


def _all_sum(values: List[float], distributed: bool) -> List[float]:
    if not distributed:
        return values
    import torch.distributed as dist
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


# -- evaluation ---------------------------------------------------------------------------------------------

def _evaluate(model, loader, rules, device, distributed) -> EvalResult:
    """:func:`brf_plugins.metrics.evaluate` with its sums reduced over ranks."""
    sums = evaluation_sums(model, loader, rules["loss"], rules["accuracy"], rules["start"], device)
    return eval_result(_all_sum(sums, distributed))


# -- the run ------------------------------------------------------------------------------------------------

def _loader(dataset: Dataset, batch: int, shuffle: bool, seed: int, rank: int, world: int):
    if world > 1 and batch % world:
        raise ValueError(f"`batch_size` ({batch}) is the global batch and must be divisible by the number of "
                         f"processes ({world}).")
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=shuffle, seed=seed,
                                 drop_last=False)
    return DataLoader(dataset, batch_size=batch // world if world > 1 else batch, sampler=sampler), sampler


def _write_csv(history: List[Dict[str, float]], path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(CSV_COLUMNS), extrasaction="ignore")
    writer.writeheader()
    for row in history:
        writer.writerow({k: row.get(k, "") for k in CSV_COLUMNS})
    atomic_write_text(buffer.getvalue(), path)


def _training_loss(framework: str, rules: Dict[str, object]):
    """The task's training loss. For snnTorch models with the summed rule it is snnTorch's own
    ``snntorch.functional.ce_rate_loss`` (log-softmax NLL per step, averaged over steps and batch) times ``T``,
    which is that rule exactly; every other case uses :func:`brf_plugins.metrics.sequence_loss`."""
    if framework == "snntorch" and rules["loss"] == "sum" and rules["start"] == 0:
        try:
            import snntorch.functional as SF
        except ImportError:
            pass
        else:
            ce_rate = SF.ce_rate_loss()

            def snntorch_loss(readout, target, rule, start):
                return ce_rate(readout, target) * readout.shape[0]
            return snntorch_loss
    return lambda readout, target, rule, start: sequence_loss(readout, target, rule, start)


def _state_dict(model: nn.Module) -> Dict[str, torch.Tensor]:
    module = model.module if hasattr(model, "module") else model
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


IDENTITY_KEYS = ("task", "framework", "neuron", "model_kwargs", "data_seed", "permutation", "mask_unlabelled",
                 "shd_binning")
"""What makes a run this run: a resume never changes them (another network or other data is a new run)."""
RECIPE_KEYS = ("epochs", "lr", "batch_size", "grad_clip", "tbptt", "tbptt_schedule", "seed", "train_samples",
               "val_samples", "test_samples", "max_batches")
"""What a resume may change with ``allow_recipe_change`` (effective values: the task's recipe where unset)."""


def run_recipe(cfg: TrainConfig) -> Dict[str, object]:
    """The values of :data:`IDENTITY_KEYS` and :data:`RECIPE_KEYS` a run trains with (what ``last.pt`` stores
    under ``"recipe"`` and a resume compares)."""
    rules = recipe(cfg)
    permutation = cfg.permutation
    if permutation is not None and not isinstance(permutation, (int, str)):
        permutation = "<tensor>"
    return dict(task=rules["task"].name, framework=canonical_framework(cfg.framework), neuron=cfg.neuron,
                model_kwargs=dict(cfg.model_kwargs), data_seed=cfg.data_seed, permutation=permutation,
                mask_unlabelled=bool(cfg.mask_unlabelled), shd_binning=cfg.shd_binning, epochs=rules["epochs"],
                lr=rules["lr"], batch_size=rules["batch_size"], grad_clip=rules["grad_clip"],
                tbptt=rules["tbptt"], tbptt_schedule=TBPTT_SCHEDULE if rules["tbptt"] else None,
                seed=cfg.seed, train_samples=cfg.train_samples,
                val_samples=cfg.val_samples, test_samples=cfg.test_samples, max_batches=cfg.max_batches)


def recipe_differences(stored: Dict[str, object], requested: Dict[str, object]) -> Dict[str, Tuple[object, object]]:
    """``{key: (stored, requested)}`` for every key of :data:`IDENTITY_KEYS` + :data:`RECIPE_KEYS` that differs."""
    return {k: (stored.get(k), requested.get(k)) for k in IDENTITY_KEYS + RECIPE_KEYS
            if stored.get(k) != requested.get(k)}


def _shown(key: str, value) -> str:
    if value is None and key.endswith(("_samples", "max_batches")):
        return "all"
    if value is None and key in ("grad_clip", "tbptt_schedule"):
        return "off"
    return repr(value)


def _stored_recipe(blob: Dict[str, object]) -> Dict[str, object]:
    if isinstance(blob.get("recipe"), dict):
        return blob["recipe"]
    saved = {k: v for k, v in blob["config"].items() if k in TrainConfig.__dataclass_fields__}
    return run_recipe(TrainConfig(**saved))  # a checkpoint of an older version: recompute its recipe


def _check_config(cfg: TrainConfig) -> None:
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"`cfg` must be a TrainConfig, got {type(cfg).__name__}.")
    check_choice("on_nan", cfg.on_nan, ("stop", "skip"))
    if cfg.resume and not cfg.out_dir:
        raise ValueError("`resume=True` needs `out_dir`: the folder holding last.pt of the run to continue.")
    if cfg.resume and cfg.force:
        raise ValueError("give `resume` (continue the run in out_dir) or `force` (start a new one there), not both.")
    if cfg.time_limit is not None:
        check_finite_float("time_limit", cfg.time_limit, nonnegative=True)
    if cfg.stop_after_epochs is not None:
        check_positive_int("stop_after_epochs", cfg.stop_after_epochs)
    if cfg.cuda_graph and cfg.on_nan == "skip":
        raise ValueError("`cuda_graph=True` (--cuda-graph) cannot skip a batch: the update is inside the graph. "
                         "Use on_nan='stop' with it, or train eagerly.")


def _graph_backend(cfg: TrainConfig, rules: Dict[str, object], distributed: bool):
    """What records and replays the captured steps (CUDA graphs); a clear error where they cannot run."""
    if not str(cfg.device).startswith("cuda") or not torch.cuda.is_available():
        raise ValueError(f"`cuda_graph=True` (--cuda-graph) needs a CUDA device (got device={cfg.device!r}"
                         f"{'' if torch.cuda.is_available() else ', and no CUDA device is available'}); "
                         f"train without it on the CPU, where the compiled kernels are the fast path.")
    if rules.get("tbptt"):
        raise ValueError(f"`cuda_graph=True` (--cuda-graph) captures full-BPTT steps; this recipe trains in "
                         f"{rules['tbptt']}-step TBPTT windows (ALIF on (P)S-MNIST). Train it without --cuda-graph.")
    if distributed:
        raise ValueError("`cuda_graph=True` (--cuda-graph) is single-process; run it without torchrun.")
    from .capture import _CUDAGraphs
    return _CUDAGraphs()


def _prepare_adam(optimizer: torch.optim.Optimizer, device, *, tensor_lr: bool, capturable: bool) -> List[torch.Tensor]:
    """Set Adam's groups for the step that trains (after construction and after ``load_state_dict``, which
    restores the saved run's flags and learning rates): a tensor learning rate on ``device`` for a captured step
    (the graph reads it; :func:`~brf_plugins.train.capture.keep_tensor_lr` updates it in place), ``capturable``
    with the step counters on the parameters' device for CUDA graphs, plain floats otherwise. Returns the groups'
    learning-rate tensors (empty without ``tensor_lr``)."""
    tensors = []
    for group in optimizer.param_groups:
        group["capturable"] = capturable
        lr = float(group["lr"])
        if "initial_lr" in group:
            group["initial_lr"] = float(group["initial_lr"])
        group["lr"] = torch.tensor(lr, dtype=torch.float32, device=device) if tensor_lr else lr
        if tensor_lr:
            tensors.append(group["lr"])
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            if "step" in state:
                state["step"] = torch.as_tensor(state["step"], dtype=torch.float32).to(
                    p.device if capturable else "cpu")
    return tensors


class _Stepper:
    """Backward, clipping, the fused divergence checks and the optimizer step of one training loss."""

    def __init__(self, model, core_model, optimizer, params, grad_clip, on_nan, distributed, global_step):
        self.model, self.core_model, self.optimizer, self.params = model, core_model, optimizer, params
        self.grad_clip, self.on_nan, self.distributed = grad_clip, on_nan, distributed
        self.global_step = global_step
        self.epoch, self.batch = 0, 0

    def _fail(self, kind, loss, tensors, what, applied: bool = False):
        stats = _tensor_statistics(self.core_model)
        lr = float(self.optimizer.param_groups[0]["lr"])
        where = f"at epoch {self.epoch}, batch {self.batch} (global step {self.global_step})"
        kept = ("the CUDA-graph step had applied its update already; last.pt and best.pt keep the last good epoch."
                if applied else "nothing was updated with {}.")
        if kind == "loss":
            head = f"the training loss is {float(loss)} {where}; {kept.format('it')}"
        elif kind == "gradients":
            head = (f"the gradients of {', '.join(tensors)} are non-finite {where} (loss {float(loss):.6g}); "
                    f"{kept.format('them')}")
        else:
            head = (f"the parameters {', '.join(tensors)} became non-finite after the optimizer step {where} "
                    f"(loss {float(loss):.6g}, lr {lr:g}, finite gradients).")
        hint = ("Lower the learning rate (--lr), enable gradient clipping (--grad-clip)"
                + (" or pass --on-nan skip to drop such batches." if kind != "parameters" and self.on_nan == "stop"
                   else "; --on-nan skip cannot undo an update that made the parameters non-finite."
                   if kind == "parameters" else "."))
        message = f"{head} Parameter statistics{what}:\n{_format_statistics(stats)}\n{hint}"
        stats.update(loss=float(loss), lr=lr)
        error = NonFiniteLossError if kind == "loss" else DivergenceError
        return error(message, kind=kind, epoch=self.epoch, batch=self.batch, step=self.global_step,
                     tensors=tensors, statistics=stats, summary=f"{head} {hint}")

    def _agree(self, ok: bool) -> bool:
        if self.distributed:  # ranks see different losses: all stop or all skip together
            return _all_sum([0.0 if ok else 1.0], True)[0] == 0.0
        return ok

    def __call__(self, loss: torch.Tensor) -> int:
        """Update with ``loss``; returns 1 (updated) or 0 (batch skipped under ``on_nan="skip"``)."""
        self.global_step += 1
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grads = [p.grad for p in self.params]
        if not self._agree(bool(_all_finite([loss.detach()] + grads))):
            loss_ok = bool(torch.isfinite(loss.detach()))
            kind = "gradients" if loss_ok else "loss"
            names = ["loss"] if not loss_ok else _nonfinite_names(
                [(n, p.grad) for n, p in self.core_model.named_parameters() if p.requires_grad]) or ["(another rank)"]
            if self.on_nan == "stop":
                raise self._fail(kind, loss.detach(), names, " (before the update)")
            self.optimizer.zero_grad(set_to_none=True)
            warnings.warn(f"non-finite training {'loss' if kind == 'loss' else 'gradients'} at epoch {self.epoch}, "
                          f"batch {self.batch}: batch skipped.")
            return 0
        if self.grad_clip:
            nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        self.optimizer.step()
        if not bool(_all_finite(self.params)):
            names = _nonfinite_names([(n, p) for n, p in self.core_model.named_parameters()])
            raise self._fail("parameters", loss.detach(), names, " (after the update)")
        return 1

    def replay(self, graph, x, y) -> Tuple[torch.Tensor, torch.Tensor, int]:
        """One captured step (:class:`~brf_plugins.train.capture.CapturedTrainStep`), then the same checks as
        :meth:`__call__` on its results: ``(loss, readout, 1)``."""
        self.global_step += 1
        loss, readout, finite = graph(x, y)
        if not bool(finite):
            loss_ok = bool(torch.isfinite(loss))
            names = ["loss"] if not loss_ok else _nonfinite_names(
                [(n, p.grad) for n, p in self.core_model.named_parameters() if p.requires_grad])
            raise self._fail("gradients" if loss_ok else "loss", loss, names, " (after the update)", applied=True)
        if not bool(_all_finite(self.params)):
            names = _nonfinite_names([(n, p) for n, p in self.core_model.named_parameters()])
            raise self._fail("parameters", loss, names, " (after the update)")
        return loss, readout, 1


TBPTT_SCHEDULE = "authors: updates at t % window == 0 and t = T - 1, label-last scored per window"
"""The truncated-BPTT schedule a run trains with (stored in its recipe, so that a run started under an earlier
schedule resumes only with ``allow_recipe_change``)."""


def tbptt_windows(T: int, window: int) -> List[Tuple[int, int]]:
    """The windows ``[s, e)`` of the authors' TBPTT over ``T`` steps: an update at every ``t`` with
    ``t % window == 0`` (``t = 0`` included) and at ``t = T - 1``, each over the steps since the previous update.

    >>> tbptt_windows(7, 3)
    [(0, 1), (1, 4), (4, 7)]
    """
    return [(0, 1)] + [(s, min(s + window, T)) for s in range(1, T, window)]


def _chunk_target(rules, y, s: int, e: int):
    """``(scored, target, start)`` of the window ``[s, e)`` of a batch under the task's loss rule."""
    rule, start = rules["loss"], rules["start"]
    if rule == "last":
        return True, y, 0     # every window is scored at its last step, as the authors' TBPTT
    if e <= start:
        return False, None, 0
    return True, (y[s:e] if rule == "per_step" else y), max(0, start - s)


def _train_batch(model, x, y, loss_fn, rules, step, graph=None) -> Tuple[torch.Tensor, torch.Tensor, int]:
    """Forward, loss and update(s) of one batch: ``(loss (summed over the batch's windows), readout, updates)``.

    With ``graph`` (a :class:`~brf_plugins.train.capture.CapturedTrainStep`), a batch of its captured shape (or
    the first batch, which it captures) is one replay; another shape runs eagerly.

    With ``rules["tbptt"] = W`` the batch runs in the windows of :func:`tbptt_windows`, each an update of its own
    whose gradient stops at the window's start (the state is carried on detached); otherwise (or for ``T = 1``)
    one full-BPTT update. The returned loss of a label-last batch is its last step's (the quantity the validation
    loss measures), of other rules the sum over the windows."""
    T = x.shape[0]
    window = rules.get("tbptt") or 0
    if graph is not None and graph.accepts(x, y):
        return step.replay(graph, x, y)
    if not window or T == 1:
        out = model(x)
        loss = loss_fn(out[0], y, rules["loss"], rules["start"])
        return loss.detach(), out[0].detach(), step(loss)
    state, readouts, total, updates = None, [], None, 0
    for s, e in tbptt_windows(T, window):
        scored, target, start = _chunk_target(rules, y, s, e)
        with torch.set_grad_enabled(scored):
            out = model(x[s:e], state)
        if scored:
            loss = loss_fn(out[0], target, rules["loss"], start)
            updates += step(loss)
            last_only = total is None or rules["loss"] == "last"
            total = loss.detach() if last_only else total + loss.detach()
        readouts.append(out[0].detach())
        state = detach_state(out.state)
    return total, torch.cat(readouts), updates


def _finite_state(state: Dict[str, torch.Tensor]) -> bool:
    return bool(_all_finite(list(state.values())))


def train(cfg: TrainConfig) -> TrainResult:
    """Train one model with the paper's recipe; see the module docstring. Returns a :class:`TrainResult`.

    Raises:
        DivergenceError / NonFiniteLossError: a NaN or inf loss, gradient, parameter or validation loss.
        RunFolderInUseError: another process trains in ``out_dir``.
        RunExistsError: ``out_dir`` holds a run and neither ``resume`` nor ``force`` is set.
        RecipeChangedError: ``resume`` with another recipe (without ``allow_recipe_change``) or another network.
        CheckpointCorruptError: ``last.pt`` does not load, or holds non-finite weights.
        FileNotFoundError: ``resume`` without ``out_dir/last.pt``.
    """
    _check_config(cfg)
    rank = int(os.environ.get("RANK", "0")) if int(os.environ.get("WORLD_SIZE", "1")) > 1 else 0
    out_dir = Path(cfg.out_dir) if cfg.out_dir else None
    lock = None
    if out_dir is not None and rank == 0:
        lock = RunLock(out_dir).acquire()
    try:
        if lock is not None:
            remove_stale_temporaries(out_dir)
            _prepare_folder(cfg, out_dir)
        return _train(cfg, out_dir)
    except DivergenceError as err:
        if lock is not None:
            atomic_write_text(str(err) + "\n", out_dir / "divergence.txt")
            err.summary += f" Statistics in {out_dir / 'divergence.txt'}."
            append_run_log(out_dir, f"diverged ({err.kind}) at epoch {err.epoch}, step {err.step}; last.pt and "
                                    f"best.pt keep the last finite model")
        raise
    finally:
        if lock is not None:
            lock.release()


def _prepare_folder(cfg: TrainConfig, out_dir: Path) -> None:
    """Refuse a used folder without resume/force; with force, move the old run aside (and say so)."""
    if cfg.resume:
        if not (out_dir / "last.pt").is_file():
            others = run_files(out_dir)
            extra = (f" It holds {', '.join(others)} of a run that ended before its first epoch was saved: start "
                     f"it again with --force." if others else "")
            raise FileNotFoundError(f"`resume=True` but {out_dir / 'last.pt'} does not exist: start the run without "
                                    f"--resume, or point --out-dir at the folder of the run to continue.{extra}")
        return
    existing = run_files(out_dir)
    if not existing:
        return
    if not cfg.force:
        raise RunExistsError(f"{out_dir} already holds a run ({', '.join(existing)}): pass --resume to continue "
                             f"it, --force to start a new run there (the old files move to "
                             f"{out_dir}/replaced-TIMESTAMP/, nothing is deleted), or use another --out-dir.")
    moved = move_run_aside(out_dir)
    message = f"--force: moved the previous run's {', '.join(existing)} to {moved}"
    warnings.warn(f"{out_dir}: {message}.")
    append_run_log(out_dir, message)


def _train(cfg: TrainConfig, out_dir: Optional[Path]) -> TrainResult:
    started = time.monotonic()
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    framework = canonical_framework(cfg.framework)
    rules = recipe(cfg)
    task: TaskConfig = rules["task"]
    epochs = rules["epochs"]
    requested_recipe = run_recipe(cfg)
    rank, world, distributed, created_group = _dist_setup(cfg.device)
    device = torch.device(cfg.device if not cfg.device.startswith("cuda") or not distributed
                          else f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
    is_main = rank == 0

    train_set, val_set, test_set = task_datasets(
        task, cfg.data_root, data_seed=cfg.data_seed, permutation=cfg.permutation,
        mask_unlabelled=cfg.mask_unlabelled, shd_binning=cfg.shd_binning, download=cfg.download and is_main,
        train_samples=cfg.train_samples, val_samples=cfg.val_samples, test_samples=cfg.test_samples)

    torch.manual_seed(cfg.seed)  # the adapters initialise from the global generator
    model = build_model(framework, task, cfg.neuron, generator=torch.Generator().manual_seed(cfg.seed),
                        **cfg.model_kwargs).to(device)
    n_params = count_parameters(model)
    params = [p for p in model.parameters() if p.requires_grad]
    graphs = _graph_backend(cfg, rules, distributed) if cfg.cuda_graph else None
    optimizer = torch.optim.Adam(params, lr=rules["lr"])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: 1.0 - e / epochs)

    history: List[Dict[str, float]] = []
    best = {"val_loss": float("inf"), "epoch": -1, "state": None}
    start_epoch = 0
    recipe_changes: List[Dict[str, object]] = []
    if cfg.resume:
        path = out_dir / "last.pt"
        blob = load_run_file(path, map_location=device)
        stored = _stored_recipe(blob)
        differences = recipe_differences(stored, requested_recipe)
        fixed = {k: v for k, v in differences.items() if k in IDENTITY_KEYS}
        if fixed:
            listed = "; ".join(f"it was trained with {k}={a!r}, this run has {k}={b!r}" for k, (a, b) in fixed.items())
            raise RecipeChangedError(f"cannot resume {path}: {listed}. Another network or other data is a new run: "
                                     f"use another --out-dir (or --force to replace this run).", fixed)
        history = list(blob["history"])
        start_epoch = int(blob["epoch"])
        trained = sum(1 for h in history if "train_loss" in h)
        if differences and not cfg.allow_recipe_change:
            listed = ", ".join(f"{k} {_shown(k, a)} -> {_shown(k, b)}" for k, (a, b) in differences.items())
            raise RecipeChangedError(f"cannot resume {path}: the recipe differs from the run's ({listed}). Resume "
                                     f"with the run's values, or pass --allow-recipe-change to continue with the "
                                     f"new ones (the change is logged).", differences)
        if epochs < trained:
            raise RecipeChangedError(f"cannot resume {path} with epochs={epochs}: the run has already trained "
                                     f"{trained} epochs; pass --epochs {trained} or more.", differences)
        if cfg.stop_after_epochs is not None and trained >= cfg.stop_after_epochs:
            raise ValueError(f"nothing to do: {path} has already trained {trained} epochs, and "
                             f"stop_after_epochs={cfg.stop_after_epochs} (--stop-after-epochs) would stop it before "
                             f"another; resume without it, or with a larger value.")
        state = blob["model"]
        if not _finite_state(state):
            raise CheckpointCorruptError(f"checkpoint {path} holds non-finite weights (a diverged run saved by an "
                                         f"older brf-plugins): it cannot be resumed; start again with --force.", path)
        model.load_state_dict(state)
        optimizer.load_state_dict(blob["optimizer"])
        scheduler.load_state_dict(blob["scheduler"])
        best = {"val_loss": blob["best_val_loss"], "epoch": blob["best_epoch"], "state": blob["best_model"]}
        recipe_changes = list(blob.get("recipe_changes", []))
        if differences:
            if history and "train_loss" not in history[-1] and epochs > int(history[-1]["epoch"]):
                # a finished run is extended: its final, evaluation-only epoch is redone and trained this time
                start_epoch = int(history[-1]["epoch"])
                history = history[:-1]
            # the schedule lr_e = lr0 (1 - e/E) with the requested lr0 and E, from this epoch on
            for group in optimizer.param_groups:
                group["initial_lr"] = rules["lr"]
                group["lr"] = rules["lr"] * (1.0 - start_epoch / epochs)
            scheduler.base_lrs = [rules["lr"]] * len(optimizer.param_groups)
            scheduler.last_epoch = start_epoch
            scheduler._last_lr = [g["lr"] for g in optimizer.param_groups]
            change = {"epoch": start_epoch, "changes": {k: [a, b] for k, (a, b) in differences.items()}}
            recipe_changes.append(change)
            text = ", ".join(f"{k} {_shown(k, a)} -> {_shown(k, b)}" for k, (a, b) in differences.items())
            if is_main:
                append_run_log(out_dir, f"resumed at epoch {start_epoch} with a changed recipe: {text}; lr of "
                                        f"epoch e = {rules['lr']:g} * (1 - e/{epochs})")
                warnings.warn(f"{out_dir}: resuming at epoch {start_epoch} with a changed recipe ({text}); logged "
                              f"in run.log and summary.json.")
        elif is_main:
            append_run_log(out_dir, f"resumed at epoch {start_epoch}")
        restore_rng(blob["rng"])
    elif is_main and out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        append_run_log(out_dir, f"started: {', '.join(f'{k}={v!r}' for k, v in requested_recipe.items())}")

    # after a resume's load_state_dict too: the saved groups bring the saved run's flags and learning rates
    lr_tensors = _prepare_adam(optimizer, device, tensor_lr=graphs is not None,
                               capturable=bool(getattr(graphs, "capturable", False)))

    if distributed:
        from torch.nn.parallel import DistributedDataParallel
        model = DistributedDataParallel(model)
    core_model = model.module if distributed else model

    train_loader, train_sampler = _loader(train_set, rules["batch_size"], True, cfg.seed, rank, world)
    val_task = task.val_batch_size
    val_loader, _ = _loader(val_set, max(world, val_task - val_task % world), False, 0, rank, world)
    test_loader, _ = _loader(test_set, max(world, task.test_batch_size - task.test_batch_size % world), False, 0,
                             rank, world)

    writer = None
    progress = None
    try:
        if is_main and out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            if cfg.tensorboard:
                try:
                    from torch.utils.tensorboard import SummaryWriter
                    writer = SummaryWriter(str(out_dir / "tensorboard"), purge_step=start_epoch)
                except ImportError:
                    warnings.warn("tensorboard is not installed: no TensorBoard logs (pip install tensorboard).")
        if cfg.progress and is_main:
            from tqdm.auto import tqdm
            progress = tqdm(total=epochs + 1, initial=start_epoch, desc=f"{task.name}/{framework}/{cfg.neuron}",
                            unit="epoch", dynamic_ncols=True)
        result = _epochs(cfg, rules, model, core_model, optimizer, scheduler, params, history, best, start_epoch,
                         recipe_changes, requested_recipe, train_loader, train_sampler, val_loader, test_loader,
                         device, distributed, is_main, out_dir, writer, progress, started, n_params,
                         graphs=graphs, lr_tensors=lr_tensors)
    finally:
        if progress is not None:
            progress.close()
        if writer is not None:
            writer.close()
    if created_group:
        import torch.distributed as dist
        dist.barrier()
        dist.destroy_process_group()
    return result


def _epochs(cfg, rules, model, core_model, optimizer, scheduler, params, history, best, start_epoch, recipe_changes,
            requested_recipe, train_loader, train_sampler, val_loader, test_loader, device, distributed, is_main,
            out_dir, writer, progress, started, n_params, graphs=None, lr_tensors=()) -> TrainResult:
    epochs = rules["epochs"]
    loss_fn = _training_loss(canonical_framework(cfg.framework), rules)
    graph = None
    if graphs is not None:
        from .capture import CapturedTrainStep
        graph = CapturedTrainStep(model, optimizer, lambda out, y: loss_fn(out[0], y, rules["loss"], rules["start"]),
                                  params=params, grad_clip=rules["grad_clip"], output_of=lambda out: out[0],
                                  all_finite=_all_finite, graphs=graphs)
    better = (lambda a, b: a <= b) if rules["best_rule"] == "<=" else (lambda a, b: a < b)
    stopped_early = False
    step = _Stepper(model, core_model, optimizer, params, rules["grad_clip"], cfg.on_nan, distributed,
                    sum(int(h.get("steps", 0)) + int(h.get("skipped_batches", 0) or 0) for h in history))
    last_epoch_seconds = history[-1]["epoch_seconds"] if history else 0.0
    for epoch in range(start_epoch, epochs + 1):
        epoch_started = time.monotonic()
        step.epoch, step.batch = epoch, None
        val = _evaluate(model, val_loader, rules, device, distributed)
        if not math.isfinite(val.loss):
            names = _nonfinite_names([(n, p) for n, p in core_model.named_parameters()])
            raise DivergenceError(
                f"the validation loss is {val.loss} at epoch {epoch} (non-finite parameters: "
                f"{', '.join(names) or 'none'}): the network's output overflows. Parameter statistics:\n"
                f"{_describe_parameters(core_model)}\nLower the learning rate (--lr) or enable gradient clipping "
                f"(--grad-clip).", kind="validation loss", epoch=epoch, step=step.global_step,
                tensors=names or ["validation loss"], statistics=_tensor_statistics(core_model))
        test = _evaluate(model, test_loader, rules, device, distributed) if (
            cfg.eval_test_every_epoch or epoch == epochs) else None
        if better(val.loss, best["val_loss"]):
            best = {"val_loss": val.loss, "epoch": epoch, "state": _state_dict(model)}
            if is_main and out_dir is not None:
                atomic_torch_save({"format": RUN_FORMAT, "kind": "best", "epoch": epoch, "config": cfg.to_dict(),
                                   "recipe": requested_recipe, "model": best["state"], "val_loss": val.loss,
                                   "test_accuracy": test.accuracy if test else None}, out_dir / "best.pt")
        row = {"epoch": epoch, "lr": float(optimizer.param_groups[0]["lr"]), "val_loss": val.loss,
               "val_accuracy": val.accuracy, "test_loss": test.loss if test else float("nan"),
               "test_accuracy": test.accuracy if test else float("nan"),
               "test_sops": test.sops if test else float("nan")}
        row.update(parameter_stats(core_model))

        out_of_time = epoch < epochs and (
            (cfg.time_limit is not None and time.monotonic() - started + last_epoch_seconds > 60.0 * cfg.time_limit)
            or (cfg.stop_after_epochs is not None and epoch >= cfg.stop_after_epochs))
        if epoch < epochs and not out_of_time:
            train_sampler.set_epoch(epoch)
            model.train()
            loss_sum, correct, scored, batches, skipped, steps = 0.0, 0, 0, 0, 0, 0
            for b, (x, y) in enumerate(train_loader):
                if cfg.max_batches is not None and b >= cfg.max_batches:
                    break
                step.batch = b
                x = time_first(x.to(device))
                y = y.to(device)
                if y.dim() == 2:
                    y = time_first(y)
                attempted = step.global_step
                loss, readout, updates = _train_batch(model, x, y, loss_fn, rules, step, graph)
                skipped += (step.global_step - attempted) - updates
                if updates == 0:
                    continue
                steps += updates
                loss_sum += loss_per_step(loss, readout, rules["loss"], rules["start"])
                c, n = count_correct(readout, y, rules["accuracy"], rules["start"])
                correct, scored, batches = correct + c, scored + n, batches + 1
                if progress is not None:
                    progress.set_postfix(batch=f"{b + 1}/{len(train_loader)}", loss=f"{loss_sum / batches:.4f}",
                                         refresh=False)
            if steps == 0 and skipped:
                raise DivergenceError(
                    f"every training batch of epoch {epoch} had a non-finite loss or gradients ({skipped} skipped "
                    f"under --on-nan skip): nothing was trained. Parameter statistics:\n"
                    f"{_describe_parameters(core_model)}\nLower the learning rate (--lr) or enable gradient "
                    f"clipping (--grad-clip).", kind="all batches skipped", epoch=epoch, step=step.global_step,
                    tensors=["loss"], statistics=_tensor_statistics(core_model))
            scheduler.step()
            keep_tensor_lr(optimizer, lr_tensors)   # the captured graph reads its lr tensor
            loss_sum, batches, correct, scored = _all_sum([loss_sum, batches, correct, scored], distributed)
            row.update(train_loss=loss_sum / max(batches, 1), train_accuracy=correct / max(scored, 1),
                       skipped_batches=skipped, steps=steps)
        row["epoch_seconds"] = time.monotonic() - epoch_started
        last_epoch_seconds = row["epoch_seconds"]
        history.append(row)

        if is_main:
            if writer is not None:
                for key, value in row.items():
                    if key != "epoch" and isinstance(value, (int, float)) and math.isfinite(value):
                        writer.add_scalar(key.replace("_", "/", 1), value, epoch)
                writer.flush()
            if out_dir is not None:
                state = _state_dict(model)
                if not _finite_state(state):  # the step checks make this unreachable; never save such a model
                    raise DivergenceError(f"the model is non-finite at the end of epoch {epoch}; last.pt keeps "
                                          f"the previous epoch.", kind="parameters", epoch=epoch,
                                          step=step.global_step, statistics=_tensor_statistics(core_model))
                _write_csv(history, out_dir / "metrics.csv")
                # A run stopped by the time limit evaluated this epoch but did not train it: resuming redoes it.
                atomic_torch_save({"format": RUN_FORMAT, "kind": "last",
                                   "epoch": epoch if out_of_time else epoch + 1,
                                   "config": cfg.to_dict(), "recipe": requested_recipe, "model": state,
                                   "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                                   "history": history[:-1] if out_of_time else history,
                                   "best_val_loss": best["val_loss"], "best_epoch": best["epoch"],
                                   "best_model": best["state"], "recipe_changes": recipe_changes,
                                   "rng": capture_rng()}, out_dir / "last.pt")
            if progress is not None:
                progress.update(1)
                progress.set_postfix(val_acc=f"{100 * val.accuracy:.2f}%", val_loss=f"{val.loss:.4f}",
                                     test_acc=f"{100 * row['test_accuracy']:.2f}%")
        if out_of_time:
            stopped_early = True
            break

    best_row = next(h for h in history if h["epoch"] == best["epoch"]) if best["epoch"] >= 0 else history[-1]
    test_accuracy = best_row["test_accuracy"]
    test_sops = best_row["test_sops"]
    if not math.isfinite(test_accuracy):  # test not evaluated every epoch: score the best model now
        current = _state_dict(model)
        core_model.load_state_dict(best["state"])
        test = _evaluate(model, test_loader, rules, device, distributed)
        core_model.load_state_dict(current)
        test_accuracy, test_sops = test.accuracy, test.sops
    curve = [h["test_accuracy"] for h in history]
    convergence = (convergence_epochs(curve, test_accuracy) if all(math.isfinite(a) for a in curve)
                   else {"epochs_to_95": None, "epochs_to_98": None, "epochs_to_100": None})
    result = TrainResult(config=cfg.to_dict(), history=history, best_epoch=int(best["epoch"]),
                         best_val_loss=float(best["val_loss"]), test_accuracy=float(test_accuracy),
                         test_sops=float(test_sops), convergence=convergence, parameters=n_params,
                         wall_seconds=time.monotonic() - started, stopped_early=stopped_early,
                         out_dir=str(out_dir) if out_dir else None, model=core_model,
                         best_state=best["state"], recipe_changes=recipe_changes)
    if is_main and out_dir is not None:
        import json
        summary = {f.name: getattr(result, f.name) for f in fields(TrainResult)
                   if f.name not in ("model", "history", "best_state")}
        summary.update(final_epoch=result.final_epoch, run_seconds=result.run_seconds)
        atomic_write_text(json.dumps(summary, indent=2, default=str) + "\n", out_dir / "summary.json")
    return result
