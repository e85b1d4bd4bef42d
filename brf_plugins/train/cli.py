"""Command lines ``brf-train`` (``python -m brf_plugins.train``) and ``brf-eval``.

    brf-train                                   # synthetic task, BRF vs a same-size LIF network, ~1 min on 2 cores
    brf-train ecg --framework norse --neuron brf --time-limit 60 --out-dir runs/ecg-norse
    brf-train ecg --out-dir runs/ecg --resume   # continue a stopped run exactly where it stopped
    torchrun --nproc_per_node=2 -m brf_plugins.train smnist --framework snntorch   # DDP (gloo on CPU)
    brf-eval runs/ecg/best.pt                   # a model saved by brf-train
    brf-eval ../shared/data/reference_checkpoints/ecg_brf.pt --framework snntorch   # an authors' model

``--neuron`` may be given several times (or ``--neuron brf,lif``): each is trained with the same seed and data and
the result table compares them. The table shows the test accuracy at the best validation epoch, the epochs to
95 / 98 / 100 % of it, the SOPs per test sample, the parameter count and the wall time.

Errors: an expected error (a bad argument, a missing or corrupt file, a used or locked run folder, a changed
recipe on resume, a full disk) prints one line ``brf-train: error: ...`` and exits with 2; a diverged run prints
``brf-train: error: training diverged: ...`` and exits with 3 (the statistics are in ``OUT/divergence.txt``);
Ctrl-C prints the command that resumes the run and exits with 130; any other exception prints one line and
exits with 1. ``--traceback`` prints the full traceback as well. ``brf-eval`` and ``brf-plot`` do the same.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import shlex
import sys
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence

import torch
from torch.utils.data import DataLoader

from .models import FRAMEWORKS, MODEL_NEURONS, adapter_module, build_model, canonical_framework, default_framework
from .tasks import TASK_NAMES, resolve_task, task_datasets
from .state import RunFolderInUseError
from .trainer import DivergenceError, TrainConfig, TrainResult, recipe, train

__all__ = ["compare", "format_table", "evaluate_checkpoint", "train_main", "eval_main", "QUICK_SIZES",
           "EXIT_ERROR", "EXIT_DIVERGED", "EXIT_INTERRUPTED", "run_cli"]

EXIT_ERROR = 2
"""Exit status of an expected error (argument, file, folder, recipe, disk)."""
EXIT_DIVERGED = 3
"""Exit status of a run stopped by :class:`~brf_plugins.train.DivergenceError`."""
EXIT_INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT)."""
EXIT_INTERNAL = 1

EXPECTED_ERRORS = (ValueError, TypeError, OSError, ImportError, RunFolderInUseError)
"""What the command lines report in one line: bad arguments and options (ValueError / TypeError), missing,
unreadable or corrupt files, used folders, full disks (OSError and its subclasses), missing packages."""


class CLIParser(argparse.ArgumentParser):
    """``argparse`` whose errors are one line, ``PROG: error: MESSAGE (PROG --help lists the options)``, exit 2."""

    def error(self, message: str):
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} ({self.prog} --help lists the options)\n")


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def run_cli(prog: str, body: Callable[[], int], *, show_traceback: bool,
            on_interrupt: Optional[Callable[[], str]] = None) -> int:
    """Run ``body()`` and turn its exceptions into one line on stderr and an exit status (see the module doc)."""
    try:
        return body()
    except KeyboardInterrupt:
        if show_traceback:
            traceback.print_exc()
        hint = on_interrupt() if on_interrupt is not None else ""
        print(f"\n{prog}: interrupted{'; ' + hint if hint else ''}", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except DivergenceError as err:
        if show_traceback:
            traceback.print_exc()
        print(f"{prog}: error: training diverged: {_one_line(err.summary)}", file=sys.stderr, flush=True)
        return EXIT_DIVERGED
    except EXPECTED_ERRORS as err:
        if show_traceback:
            traceback.print_exc()
        print(f"{prog}: error: {_one_line(err)}", file=sys.stderr, flush=True)
        return EXIT_ERROR
    except Exception as err:  # noqa: BLE001 - a bug or an unforeseen failure: still one line, trace on request
        if show_traceback:
            traceback.print_exc()
        print(f"{prog}: error: unexpected {type(err).__name__}: {_one_line(err)} (rerun with --traceback for the "
              f"full traceback)", file=sys.stderr, flush=True)
        return EXIT_INTERNAL

QUICK_SIZES = dict(train_samples=64, val_samples=32, test_samples=32, epochs=1)
"""What ``--quick`` shrinks a run to (a smoke test of the whole pipeline)."""


LIF_DESCRIPTIONS = {
    "snntorch": "lif: snnTorch's own snn.RLeaky network of the same size (brf_plugins.train.baselines), its swept lr",
    "norse": "lif: Norse's own LIFRecurrentCell network of the same size (brf_plugins.train.baselines), its swept lr",
    "core": "lif: the core's ALIF neuron without adaptation (alif_beta=0)",
}


def _pct(value: Optional[float]) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{100 * value:.2f}"


def format_table(results: Dict[str, TrainResult]) -> str:
    """A plain-text table of :class:`TrainResult` rows, one per neuron (or label)."""
    header = ("model", "params", "test acc %", "best epoch", "epochs to 95/98/100 %", "SOPs/sample", "wall s")
    rows = []
    for label, r in results.items():
        conv = r.convergence
        to = "/".join("-" if conv.get(k) is None else str(conv[k])
                      for k in ("epochs_to_95", "epochs_to_98", "epochs_to_100"))
        rows.append((label, str(r.parameters), _pct(r.test_accuracy), str(r.best_epoch), to,
                     f"{r.test_sops:.1f}", f"{r.wall_seconds:.1f}"))
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(out)


def _run_dirs(base: TrainConfig, neurons: Sequence[str]) -> Dict[str, Optional[str]]:
    if base.out_dir and len(neurons) > 1:
        return {n: str(Path(base.out_dir) / n) for n in neurons}
    return {n: base.out_dir for n in neurons}


def compare(base: TrainConfig, neurons: Sequence[str]) -> Dict[str, TrainResult]:
    """Train ``base`` once per neuron (same seed, data and recipe; ``out_dir/NEURON`` if ``out_dir``).

    With ``resume`` and several neurons, the neurons whose folder has no ``last.pt`` yet (a comparison
    interrupted before it reached them) start fresh; at least one must have one."""
    results = {}
    dirs = _run_dirs(base, neurons)
    started = {n for n, d in dirs.items() if d and (Path(d) / "last.pt").is_file()}
    for neuron in neurons:
        cfg = TrainConfig(**{**base.to_dict(), "neuron": neuron, "out_dir": dirs[neuron]})
        if base.resume and len(neurons) > 1 and started and neuron not in started:
            cfg.resume = False
        results[neuron] = train(cfg)
    return results


def _parse_value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _model_kwargs(pairs: Sequence[str], parser: argparse.ArgumentParser) -> Dict[str, object]:
    kwargs = {}
    for pair in pairs:
        if "=" not in pair:
            parser.error(f"--set takes KEY=VALUE (e.g. --set omega_init='(5, 10)'), got {pair!r}")
        key, value = pair.split("=", 1)
        kwargs[key.strip()] = _parse_value(value.strip())
    return kwargs


def _train_parser() -> argparse.ArgumentParser:
    p = CLIParser(
        prog="brf-train", description="Train BRF (and RF, BHRF, ALIF, LIF) networks with the paper's recipe. "
        "Without arguments: the built-in synthetic task, BRF versus a same-size LIF network.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("task", nargs="?", default="synthetic", choices=TASK_NAMES, help="benchmark")
    p.add_argument("--framework", default=None, choices=FRAMEWORKS + ("torch",),
                   help="model implementation (default: snntorch when installed, else core)")
    p.add_argument("--neuron", action="append", default=None,
                   help=f"one of {', '.join(MODEL_NEURONS)}; repeat or comma-separate to compare "
                        f"(default: brf,lif for the synthetic task, brf otherwise)")
    p.add_argument("--epochs", type=int, help="training epochs E (default: the recipe's)")
    p.add_argument("--batch-size", type=int, help="global batch size (default: the recipe's)")
    p.add_argument("--lr", type=float, help="Adam learning rate (default: the recipe's)")
    p.add_argument("--grad-clip", type=float, help="clip_grad_norm_ threshold, 0 = off (default: the recipe's)")
    p.add_argument("--seed", type=int, default=0, help="initialisation and shuffling seed")
    p.add_argument("--data-seed", type=int, default=0, help="validation split / permutation / synthetic data")
    p.add_argument("--data-root", help="data folder (default $BRF_PLUGINS_DATA or ~/.cache/brf_plugins)")
    p.add_argument("--download", action="store_true", help="download missing data files first")
    p.add_argument("--permutation", help="PS-MNIST permutation: a .pt file or an int seed")
    p.add_argument("--mask-unlabelled", action="store_true", help="ECG: leave unlabelled steps out of loss/acc")
    p.add_argument("--shd-binning", default="paper", choices=("paper", "plain"))
    p.add_argument("--out-dir", help="checkpoints, metrics.csv, TensorBoard logs (default: runs/TASK-FRAMEWORK)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out-dir from last.pt")
    p.add_argument("--force", action="store_true",
                   help="start a new run in an --out-dir that holds one: its files move to OUT/replaced-TIMESTAMP/")
    p.add_argument("--allow-recipe-change", action="store_true",
                   help="with --resume: continue with changed --epochs/--lr/--batch-size/--grad-clip/--seed/sample "
                        "counts (logged in run.log and summary.json; lr_e = lr (1 - e/epochs) from the resume on)")
    p.add_argument("--on-nan", default="stop", choices=("stop", "skip"), help="a non-finite loss or gradient: stop the run (exit 3), or skip the batch; non-finite parameters "
                        "after an update always stop")
    p.add_argument("--time-limit", type=float, help="minutes; start no epoch that would end later")
    p.add_argument("--stop-after-epochs", type=int, metavar="N",
                   help="stop resumably once N epochs are trained (the schedule stays the recipe's)")
    p.add_argument("--cuda-graph", action="store_true",
                   help="CUDA: capture each training step (forward, backward, checks, clipping, Adam) in one CUDA "
                        "graph and replay it")
    p.add_argument("--train-samples", type=int)
    p.add_argument("--val-samples", type=int)
    p.add_argument("--test-samples", type=int)
    p.add_argument("--max-batches", type=int, help="training batches per epoch at most")
    p.add_argument("--quick", action="store_true", help="1 epoch on 64/32/32 samples: a smoke test")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="model option, e.g. --set divergence_boundary=False --set omega_init='(5, 10)'")
    p.add_argument("--ablation", default=None, metavar="NAME",
                   help="train a variant of the paper's ablations (A.8) instead of --neuron: "
                        "brf, brf-no-rp, brf-no-smr, brf-no-db, rf-rp, rf-smr, rf, rf-soft, rf-hard")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (0: leave torch's default)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--no-tensorboard", action="store_true")
    p.add_argument("--json", action="store_true", help="also print the results as JSON")
    p.add_argument("--traceback", action="store_true", help="print the full traceback of an error")
    return p


def _resume_hint(argv: Sequence[str], out_dir: str, neurons: Sequence[str]) -> str:
    """What to run after Ctrl-C: the same command with --resume (or --force when no epoch was saved yet)."""
    dirs = [Path(out_dir)] + [Path(out_dir) / n for n in neurons]
    args = [a for a in argv if a not in ("--resume", "--force")]
    if any((d / "last.pt").is_file() for d in dirs):
        return (f"last.pt in {out_dir} keeps the last finished epoch; continue with: "
                f"{shlex.join(['brf-train', *args, '--resume'])}")
    return f"no epoch was saved yet; start again with: {shlex.join(['brf-train', *args, '--force'])}"


def train_main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``brf-train``; returns the exit status (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _train_parser()
    args = parser.parse_args(argv)
    where: Dict[str, object] = {}
    return run_cli("brf-train", lambda: _train_command(args, parser, where), show_traceback=args.traceback,
                   on_interrupt=lambda: _resume_hint(argv, where["out_dir"], where["neurons"])
                   if "out_dir" in where else "")


def _train_command(args, parser: argparse.ArgumentParser, where: Dict[str, object]) -> int:
    framework = canonical_framework(args.framework) if args.framework else default_framework()
    if args.neuron:
        neurons = [n.strip() for item in args.neuron for n in item.split(",") if n.strip()]
    else:
        neurons = ["brf", "lif"] if args.task == "synthetic" else ["brf"]
    for n in neurons:
        if n not in MODEL_NEURONS:
            parser.error(f"--neuron {n!r} is not one of {', '.join(MODEL_NEURONS)}")
    model_kwargs = _model_kwargs(args.set, parser)
    if args.ablation is not None:
        from ..analysis.ablations import ablation_kwargs
        if args.neuron:
            parser.error("give --ablation or --neuron, not both (an ablation sets the neuron)")
        try:
            options = ablation_kwargs(args.ablation)
        except ValueError as err:
            parser.error(f"--ablation: {_one_line(err)}")
        neurons = [options.pop("neuron")]
        model_kwargs = {**options, **model_kwargs}
    if args.resume and args.force:
        parser.error("give --resume (continue the run) or --force (start a new one in its folder), not both")
    if args.allow_recipe_change and not args.resume:
        parser.error("--allow-recipe-change only applies with --resume")
    run_name = f"{args.task}-{framework}" + (f"-{args.ablation}" if args.ablation else "")
    out_dir = args.out_dir or str(Path("runs") / run_name)
    sizes = dict(QUICK_SIZES) if args.quick else {}
    for key in ("train_samples", "val_samples", "test_samples", "epochs"):
        if getattr(args, key) is not None:
            sizes[key] = getattr(args, key)
    permutation = args.permutation
    if permutation is not None and permutation.lstrip("-").isdigit():
        permutation = int(permutation)
    base = TrainConfig(task=args.task, framework=framework, neuron=neurons[0], batch_size=args.batch_size,
                       lr=args.lr, grad_clip=args.grad_clip, seed=args.seed, data_seed=args.data_seed,
                       data_root=args.data_root, download=args.download, permutation=permutation,
                       mask_unlabelled=args.mask_unlabelled, shd_binning=args.shd_binning, out_dir=out_dir,
                       resume=args.resume, force=args.force, allow_recipe_change=args.allow_recipe_change,
                       on_nan=args.on_nan, time_limit=args.time_limit,
                       stop_after_epochs=args.stop_after_epochs, cuda_graph=args.cuda_graph,
                       max_batches=args.max_batches, progress=not args.no_progress,
                       tensorboard=not args.no_tensorboard, threads=args.threads, device=args.device,
                       model_kwargs=model_kwargs, **sizes)
    is_main = int(os.environ.get("RANK", "0")) == 0
    if is_main:
        r = recipe(base)
        rates = {n: recipe(replace(base, neuron=n))["lr"] for n in neurons}
        lr = r["lr"] if len(set(rates.values())) == 1 else ", ".join(f"{n} {v}" for n, v in rates.items())
        print(f"brf-train {args.task}: framework={framework}, neurons={','.join(neurons)}, epochs={r['epochs']}, "
              f"batch={r['batch_size']}, lr={lr}, clip={r['grad_clip']}, out_dir={out_dir}", flush=True)
    where.update(out_dir=out_dir, neurons=neurons if len(neurons) > 1 else [])
    results = compare(base, neurons)
    if is_main:
        print()
        print(f"{args.task} ({framework}): test accuracy at the epoch of minimum validation loss")
        print(format_table(results))
        if "lif" in results:
            print(LIF_DESCRIPTIONS[framework])
        if args.json:
            print(json.dumps({k: {"test_accuracy": r.test_accuracy, "best_epoch": r.best_epoch,
                                  "convergence": r.convergence, "test_sops": r.test_sops,
                                  "parameters": r.parameters, "wall_seconds": r.wall_seconds,
                                  "run_seconds": r.run_seconds, "final_epoch": r.final_epoch,
                                  "accuracy_per_epoch": [h["test_accuracy"] for h in r.history]}
                              for k, r in results.items()}, indent=2))
    return 0


# -- brf-eval -----------------------------------------------------------------------------------------------

_NAME_NEURONS = {"brf": "brf", "rf": "rf", "vrf": "rf", "bhrf": "bhrf", "alif": "alif"}


def _neuron_in_name(path: Path) -> Optional[str]:
    """The neuron an authors' file name states (``ecg_brf.pt`` -> ``brf``), or None."""
    tokens = [t for t in path.stem.lower().replace("-", "_").split("_") if t]
    found = {_NAME_NEURONS[t] for t in tokens if t in _NAME_NEURONS}
    return found.pop() if len(found) == 1 else None


def evaluate_checkpoint(path, *, task: Optional[str] = None, framework: Optional[str] = None,
                        data_root=None, split: str = "test", neuron: Optional[str] = None,
                        samples: Optional[int] = None, progress: bool = False, force_neuron: bool = False,
                        device: Optional[torch.device] = None, batch_size: Optional[int] = None):
    """Score a checkpoint on a split. Returns ``(EvalResult, description)``.

    ``path`` is a ``best.pt`` / ``last.pt`` written by the trainer (its config says task, framework, neuron) or
    one of the authors' released models (task from the file name or ``task``; ``framework`` picks the core or an
    adapter's ``from_authors_checkpoint``). ``device`` and ``batch_size`` (default: the task's evaluation batch) only
    change where and in what pieces it is computed.

    Raises:
        ValueError: ``neuron`` contradicts the checkpoint (its stored config, its ALIF keys, or the neuron its
            file name states) and ``force_neuron`` is not set; another framework than a run checkpoint's; no task.
        CheckpointCorruptError: the file does not load (named, with the reason).
        FileNotFoundError: no file at ``path``.
    """
    from ..checkpoints import infer_task, load_authors_checkpoint
    from ..metrics import evaluate
    from .state import is_run_checkpoint, load_checkpoint_file
    from .trainer import recipe as make_recipe

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found.")
    blob = load_checkpoint_file(path)
    if is_run_checkpoint(blob):
        cfg_dict = dict(blob["config"])
        cfg = TrainConfig(**{k: v for k, v in cfg_dict.items() if k in TrainConfig.__dataclass_fields__})
        if framework is not None and canonical_framework(framework) != canonical_framework(cfg.framework):
            raise ValueError(f"{path} holds a {cfg.framework!r} model; evaluate it with --framework "
                             f"{cfg.framework} (or leave --framework out).")
        if neuron is not None and neuron != cfg.neuron:
            raise ValueError(f"{path} holds a {cfg.neuron!r} model (its stored config); --neuron {neuron} cannot "
                             f"load it as another neuron. Leave --neuron out.")
        task_cfg = resolve_task(cfg.task)
        model = build_model(cfg.framework, task_cfg, cfg.neuron, **cfg.model_kwargs)
        model.load_state_dict(blob["model"])
        rules = make_recipe(cfg)
        start = rules["start"]
        data_kwargs = dict(data_seed=cfg.data_seed, permutation=cfg.permutation,
                           mask_unlabelled=cfg.mask_unlabelled, shd_binning=cfg.shd_binning)
        epoch = int(blob.get("epoch", 0))
        if blob.get("kind") == "best":  # evaluated at epoch e, before training pass e: e passes trained
            trained = f"the best validation epoch {epoch}, after {epoch} of {rules['epochs']} training epochs"
        else:  # last.pt stores the next epoch to run (E + 1 once the run is complete)
            trained = f"after {min(epoch, rules['epochs'])} of {rules['epochs']} training epochs"
        description = f"{cfg.task} {cfg.neuron} ({cfg.framework}), {path.name}: {trained} (brf-train)"
        data_root = data_root if data_root is not None else cfg.data_root
        if samples is None:  # the run's own (possibly shrunk) splits
            val_n, test_n = cfg.val_samples, cfg.test_samples
        else:
            val_n = test_n = samples
    else:
        task = task or infer_task(path)
        if task is None:
            raise ValueError(f"cannot tell the task of {path} from its name; pass --task.")
        task_cfg = resolve_task(task)
        stated = ("alif" if isinstance(blob, dict) and any(str(k).endswith("tau_adp") for k in blob)
                  else _neuron_in_name(path))
        if neuron is not None and stated is not None and neuron != stated and not force_neuron:
            source = "its ALIF weights" if stated == "alif" else "its file name"
            raise ValueError(f"{path} is a {stated!r} model ({source} says so); --neuron {neuron} would score it "
                             f"as another neuron. Leave --neuron out, or pass --force-neuron to do it anyway.")
        fw = canonical_framework(framework) if framework else "core"
        if fw == "core":
            model = load_authors_checkpoint(path, neuron)
        else:
            model = adapter_module(fw).from_authors_checkpoint(path, neuron)
        model_neuron = getattr(model, "neuron", neuron)
        rules = make_recipe(TrainConfig(task=task_cfg.name, neuron=model_neuron or "brf"))
        start = rules["start"]
        permutation = None
        if task_cfg.name == "psmnist":
            candidate = path.with_name(f"{path.stem}_permutation.pt")
            permutation = str(candidate) if candidate.is_file() else None
            if permutation is None:
                raise ValueError(f"PS-MNIST needs the model's pixel permutation: expected {candidate}.")
        data_kwargs = dict(permutation=permutation)
        val_n = test_n = samples
        description = f"{task_cfg.name} {model_neuron} ({fw}), authors' checkpoint {path.name}"
    train_set, val_set, test_set = task_datasets(task_cfg, data_root, **data_kwargs, test_samples=test_n,
                                                 val_samples=val_n)
    dataset = {"test": test_set, "val": val_set, "validation": val_set}[split]
    batch = batch_size or (task_cfg.test_batch_size if split == "test" else task_cfg.val_batch_size)
    device = torch.device("cpu") if device is None else device
    result = evaluate(model.to(device), DataLoader(dataset, batch_size=batch), rules["loss"], rules["accuracy"],
                      start=start, device=device, progress=progress)
    return result, description


def eval_main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``brf-eval``; returns the exit status (2: an expected error, printed in one line)."""
    p = CLIParser(prog="brf-eval", description="Evaluate a brf-train checkpoint or an authors' model.")
    p.add_argument("checkpoint")
    p.add_argument("--task", choices=TASK_NAMES, help="task of an authors' checkpoint (default: from its name)")
    p.add_argument("--framework", choices=FRAMEWORKS + ("torch",), help="implementation for authors' checkpoints")
    p.add_argument("--neuron", choices=("brf", "rf", "bhrf", "alif"),
                   help="authors' checkpoint neuron (default: from its weights and file name)")
    p.add_argument("--force-neuron", action="store_true",
                   help="load the checkpoint as --neuron even where its file name says another neuron")
    p.add_argument("--data-root")
    p.add_argument("--split", default="test", choices=("test", "val"))
    p.add_argument("--samples", type=int, help="score only the first samples")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--traceback", action="store_true", help="print the full traceback of an error")
    args = p.parse_args(argv)
    if args.force_neuron and args.neuron is None:
        p.error("--force-neuron needs --neuron")

    def body() -> int:
        result, description = evaluate_checkpoint(args.checkpoint, task=args.task, framework=args.framework,
                                                  data_root=args.data_root, split=args.split, neuron=args.neuron,
                                                  samples=args.samples, progress=not args.no_progress,
                                                  force_neuron=args.force_neuron)
        print(description)
        print(f"{args.split}: accuracy {result.percent:.2f} % ({result.scored} scored), loss {result.loss:.4f}, "
              f"SOPs/sample {result.sops:.1f}, {result.samples} samples")
        return 0
    return run_cli("brf-eval", body, show_traceback=args.traceback)
