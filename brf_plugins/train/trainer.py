r"""The paper's training recipe (spec section 4) for models of the core, snnTorch and Norse.

Per epoch ``e = 0 .. E`` (``E + 1`` passes, as the released scripts):

1. evaluate validation and test (epoch 0 is the untrained network);
2. keep the model with the lowest validation loss (``<=`` for ECG, ``<`` elsewhere) as ``best.pt``;
3. if ``e < E``: train one epoch (Adam, loss summed over time and averaged over the batch, optional
   ``clip_grad_norm_``), then step the linear LR decay :math:`\mathrm{lr}_e = \mathrm{lr}_0 (1 - e/E)`;
4. write ``last.pt`` atomically (model, optimizer, scheduler, history, best model), so ``resume=True`` continues
   exactly where a killed run stopped: the shuffling of epoch ``e`` is drawn from ``seed`` and ``e`` alone.

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
from typing import Dict, List, Optional, Tuple

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from .._checks import check_choice, check_positive_int
from ..metrics import (EvalResult, count_correct, eval_result, evaluation_sums, loss_per_step, sequence_loss,
                       time_first)
from ..tasks import TaskConfig
from .models import build_model, canonical_framework, count_parameters, resonator_parameters
from .state import RUN_FORMAT, atomic_torch_save, atomic_write_text, capture_rng, load_run_file, restore_rng
from .tasks import BEST_RULES, resolve_task, task_datasets

__all__ = ["TrainConfig", "TrainResult", "NonFiniteLossError", "train", "recipe", "convergence_epochs",
           "parameter_stats", "CSV_COLUMNS"]

CSV_COLUMNS = ("epoch", "lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss",
               "test_accuracy", "test_sops", "skipped_batches", "epoch_seconds", "omega_mean", "omega_std",
               "omega_min", "omega_max", "b_offset_mean", "b_offset_std", "b_offset_min", "b_offset_max")


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or inf; the message names the step and the parameter statistics."""


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
        resume: continue from ``out_dir/last.pt``.
        on_nan: ``"stop"`` (raise :class:`NonFiniteLossError`) or ``"skip"`` (drop the batch, count it).
        time_limit: minutes; no new epoch starts when the last one would end past it (the run then reports
            what it reached).
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
    on_nan: str = "stop"
    time_limit: Optional[float] = None
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

    @property
    def final_epoch(self) -> int:
        return int(self.history[-1]["epoch"]) if self.history else 0

    @property
    def run_seconds(self) -> float:
        """Wall time of every epoch of the run, over all the calls a resumed run took."""
        return float(sum(h.get("epoch_seconds", 0.0) for h in self.history))


def recipe(cfg: TrainConfig) -> Dict[str, object]:
    """The effective hyper-parameters of a run: the task's recipe with the config's overrides.

    ALIF (and the LIF baseline) use the repo's ALIF recipe (lr, batch size, ``sub_seq_length``)."""
    task = resolve_task(cfg.task)
    spiking_alif = cfg.neuron in ("alif", "lif")
    lr = cfg.lr if cfg.lr is not None else (task.alif.lr if spiking_alif else task.lr)
    batch = cfg.batch_size if cfg.batch_size is not None else (task.alif.batch_size if spiking_alif
                                                                 else task.batch_size)
    clip = task.grad_clip if cfg.grad_clip is None else (cfg.grad_clip or None)
    start = task.alif.sub_seq_length if spiking_alif else 0
    epochs = cfg.epochs if cfg.epochs is not None else task.epochs
    return dict(task=task, lr=float(lr), batch_size=check_positive_int("batch_size", batch), grad_clip=clip,
                start=int(start), epochs=check_positive_int("epochs", epochs),
                best_rule=BEST_RULES.get(task.name, "<="), loss=task.loss, accuracy=task.accuracy)


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


def _describe_parameters(model: nn.Module) -> str:
    lines = []
    for name, p in model.named_parameters():
        d = p.detach().double()
        finite = torch.isfinite(d)
        bad = int((~finite).sum())
        grad = ""
        if p.grad is not None:
            g = p.grad.detach().double()
            grad = f", grad |max| {float(g.abs().max()):.3g}, grad non-finite {int((~torch.isfinite(g)).sum())}"
        shown = d[finite] if bad else d
        rng = (f"min {float(shown.min()):.4g}, max {float(shown.max()):.4g}, mean {float(shown.mean()):.4g}"
               if shown.numel() else "no finite value")
        lines.append(f"  {name} {tuple(p.shape)}: {rng}, non-finite {bad}{grad}")
    return "\n".join(lines)


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


def _check_config(cfg: TrainConfig) -> None:
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"`cfg` must be a TrainConfig, got {type(cfg).__name__}.")
    check_choice("on_nan", cfg.on_nan, ("stop", "skip"))
    if cfg.resume and not cfg.out_dir:
        raise ValueError("`resume=True` needs `out_dir`: the folder holding last.pt of the run to continue.")


def train(cfg: TrainConfig) -> TrainResult:
    """Train one model with the paper's recipe; see the module docstring. Returns a :class:`TrainResult`."""
    _check_config(cfg)
    started = time.monotonic()
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    framework = canonical_framework(cfg.framework)
    rules = recipe(cfg)
    task: TaskConfig = rules["task"]
    epochs = rules["epochs"]
    rank, world, distributed, created_group = _dist_setup(cfg.device)
    device = torch.device(cfg.device if not cfg.device.startswith("cuda") or not distributed
                          else f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
    is_main = rank == 0
    out_dir = Path(cfg.out_dir) if cfg.out_dir else None

    train_set, val_set, test_set = task_datasets(
        task, cfg.data_root, data_seed=cfg.data_seed, permutation=cfg.permutation,
        mask_unlabelled=cfg.mask_unlabelled, shd_binning=cfg.shd_binning, download=cfg.download and is_main,
        train_samples=cfg.train_samples, val_samples=cfg.val_samples, test_samples=cfg.test_samples)

    torch.manual_seed(cfg.seed)  # the adapters initialise from the global generator
    model = build_model(framework, task, cfg.neuron, generator=torch.Generator().manual_seed(cfg.seed),
                        **cfg.model_kwargs).to(device)
    n_params = count_parameters(model)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=rules["lr"])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: 1.0 - e / epochs)

    history: List[Dict[str, float]] = []
    best = {"val_loss": float("inf"), "epoch": -1, "state": None}
    start_epoch = 0
    if cfg.resume:
        path = out_dir / "last.pt"
        if not path.is_file():
            raise FileNotFoundError(f"`resume=True` but {path} does not exist: start the run without --resume, "
                                    f"or point --out-dir at the folder of the run to continue.")
        blob = load_run_file(path, map_location=device)
        if blob.get("format") != RUN_FORMAT:
            raise ValueError(f"{path} is not a brf-plugins training checkpoint (no format={RUN_FORMAT!r}).")
        saved = blob["config"]
        for key in ("task", "framework", "neuron", "seed", "data_seed"):
            mine = canonical_framework(cfg.framework) if key == "framework" else getattr(cfg, key)
            theirs = canonical_framework(saved[key]) if key == "framework" else saved[key]
            if mine != theirs:
                raise ValueError(f"cannot resume {path}: it was trained with {key}={theirs!r}, this run has "
                                 f"{key}={mine!r}.")
        model.load_state_dict(blob["model"])
        optimizer.load_state_dict(blob["optimizer"])
        scheduler.load_state_dict(blob["scheduler"])
        history = list(blob["history"])
        best = {"val_loss": blob["best_val_loss"], "epoch": blob["best_epoch"], "state": blob["best_model"]}
        start_epoch = int(blob["epoch"])
        restore_rng(blob["rng"])

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
    if is_main and out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        if cfg.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
                writer = SummaryWriter(str(out_dir / "tensorboard"), purge_step=start_epoch)
            except ImportError:
                warnings.warn("tensorboard is not installed: no TensorBoard logs (pip install tensorboard).")

    progress = None
    if cfg.progress and is_main:
        from tqdm.auto import tqdm
        progress = tqdm(total=epochs + 1, initial=start_epoch, desc=f"{task.name}/{framework}/{cfg.neuron}",
                        unit="epoch", dynamic_ncols=True)

    loss_fn = _training_loss(framework, rules)
    better = (lambda a, b: a <= b) if rules["best_rule"] == "<=" else (lambda a, b: a < b)
    stopped_early = False
    global_step = sum(int(h.get("steps", 0)) for h in history)
    last_epoch_seconds = history[-1]["epoch_seconds"] if history else 0.0
    for epoch in range(start_epoch, epochs + 1):
        epoch_started = time.monotonic()
        val = _evaluate(model, val_loader, rules, device, distributed)
        test = _evaluate(model, test_loader, rules, device, distributed) if (
            cfg.eval_test_every_epoch or epoch == epochs) else None
        if better(val.loss, best["val_loss"]):
            best = {"val_loss": val.loss, "epoch": epoch, "state": _state_dict(model)}
            if is_main and out_dir is not None:
                atomic_torch_save({"format": RUN_FORMAT, "kind": "best", "epoch": epoch, "config": cfg.to_dict(),
                                   "model": best["state"], "val_loss": val.loss,
                                   "test_accuracy": test.accuracy if test else None}, out_dir / "best.pt")
        row = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"], "val_loss": val.loss,
               "val_accuracy": val.accuracy, "test_loss": test.loss if test else float("nan"),
               "test_accuracy": test.accuracy if test else float("nan"),
               "test_sops": test.sops if test else float("nan")}
        row.update(parameter_stats(core_model))

        out_of_time = (cfg.time_limit is not None and epoch < epochs and
                       time.monotonic() - started + last_epoch_seconds > 60.0 * cfg.time_limit)
        if epoch < epochs and not out_of_time:
            train_sampler.set_epoch(epoch)
            model.train()
            loss_sum, correct, scored, batches, skipped, steps = 0.0, 0, 0, 0, 0, 0
            for b, (x, y) in enumerate(train_loader):
                if cfg.max_batches is not None and b >= cfg.max_batches:
                    break
                x = time_first(x.to(device))
                y = y.to(device)
                if y.dim() == 2:
                    y = time_first(y)
                out = model(x)
                loss = loss_fn(out[0], y, rules["loss"], rules["start"])
                finite = bool(torch.isfinite(loss.detach()))
                if distributed:
                    finite = _all_sum([0.0 if finite else 1.0], True)[0] == 0.0
                global_step += 1
                if not finite:
                    if cfg.on_nan == "stop":
                        message = (f"the training loss is {float(loss.detach())} at epoch {epoch}, batch {b} (global step "
                                   f"{global_step}); nothing was updated with it. Parameter statistics:\n"
                                   f"{_describe_parameters(core_model)}\nLower the learning rate, enable "
                                   f"gradient clipping (--grad-clip) or pass --on-nan skip to drop such batches.")
                        if is_main and out_dir is not None:
                            atomic_write_text(message + "\n", out_dir / "nonfinite_loss.txt")
                        raise NonFiniteLossError(message)
                    skipped += 1
                    optimizer.zero_grad(set_to_none=True)
                    warnings.warn(f"non-finite training loss at epoch {epoch}, batch {b}: batch skipped.")
                    continue
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if rules["grad_clip"]:
                    nn.utils.clip_grad_norm_(model.parameters(), rules["grad_clip"])
                optimizer.step()
                steps += 1
                loss_sum += loss_per_step(loss.detach(), out[0], rules["loss"], rules["start"])
                c, n = count_correct(out[0].detach(), y, rules["accuracy"], rules["start"])
                correct, scored, batches = correct + c, scored + n, batches + 1
                if progress is not None:
                    progress.set_postfix(batch=f"{b + 1}/{len(train_loader)}", loss=f"{loss_sum / batches:.4f}",
                                         refresh=False)
            scheduler.step()
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
                _write_csv(history, out_dir / "metrics.csv")
                # A run stopped by the time limit evaluated this epoch but did not train it: resuming redoes it.
                atomic_torch_save({"format": RUN_FORMAT, "kind": "last",
                                   "epoch": epoch if out_of_time else epoch + 1,
                                   "config": cfg.to_dict(), "model": _state_dict(model),
                                   "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                                   "history": history[:-1] if out_of_time else history, "best_val_loss": best["val_loss"],
                                   "best_epoch": best["epoch"], "best_model": best["state"],
                                   "rng": capture_rng()}, out_dir / "last.pt")
            if progress is not None:
                progress.update(1)
                progress.set_postfix(val_acc=f"{100 * val.accuracy:.2f}%", val_loss=f"{val.loss:.4f}",
                                     test_acc=f"{100 * row['test_accuracy']:.2f}%")
        if out_of_time:
            stopped_early = True
            break
    if progress is not None:
        progress.close()
    if writer is not None:
        writer.close()

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
                         best_state=best["state"])
    if is_main and out_dir is not None:
        import json
        summary = {f.name: getattr(result, f.name) for f in fields(TrainResult)
                   if f.name not in ("model", "history", "best_state")}
        summary.update(final_epoch=result.final_epoch, run_seconds=result.run_seconds)
        atomic_write_text(json.dumps(summary, indent=2, default=str) + "\n", out_dir / "summary.json")
    if created_group:
        import torch.distributed as dist
        dist.barrier()
        dist.destroy_process_group()
    return result
