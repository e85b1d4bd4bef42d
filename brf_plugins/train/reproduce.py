"""Reproduce the published test accuracies of the authors' released checkpoints.

``brf-reproduce`` (or ``python -m brf_plugins.train.reproduce``) scores each released model exactly as
``brf-eval`` does (:func:`brf_plugins.train.cli.evaluate_checkpoint`: the task's test set, loss/accuracy rule and
ALIF start step from the task table) and prints a table of expected versus measured accuracy and SOPs per sample;
what it adds is only the published figures.

    brf-reproduce --data-root ../shared/data            # all rows whose data is available
    brf-reproduce --only ecg_brf ecg_rf --subset 1000    # a quick look

The data root holds ``mnist/``, ``ecg_qtdb/`` and ``reference_checkpoints/`` (the layout of this project's shared
data folder); ``--checkpoints`` can point elsewhere. SHD rows need the SHD test file (``--shd-root``).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import torch

from ..data import DataMissingError
from ..data._files import resolve_root
from .cli import CLIParser, evaluate_checkpoint, run_cli
from .trainer import TrainConfig, recipe

__all__ = ["Reference", "REFERENCES", "reproduce", "main"]


@dataclass(frozen=True)
class Reference:
    """A released checkpoint and the figure it must reproduce; its scoring rules come from the task table."""

    name: str                      # checkpoint file stem: <task>_<neuron>
    expected: Tuple[float, float]  # published test accuracy range in % (low, high)
    tolerance: float               # allowed distance to that range, in percentage points
    sops: Optional[float] = None   # expected SOPs per sample (approximate, informational)
    note: str = ""

    @property
    def task(self) -> str:
        return self.name.split("_")[0]

    @property
    def neuron(self) -> str:
        return self.name.split("_")[1]

    @property
    def rules(self) -> dict:
        return recipe(TrainConfig(task=self.task, neuron=self.neuron))

    @property
    def permutation(self) -> Optional[str]:
        """The pixel-order file released beside a PS-MNIST model (what :func:`evaluate_checkpoint` loads)."""
        return f"{self.name}_permutation.pt" if self.task == "psmnist" else None

    loss_rule = property(lambda self: self.rules["loss"])
    accuracy_rule = property(lambda self: self.rules["accuracy"])
    start = property(lambda self: self.rules["start"])


REFERENCES: List[Reference] = [
    Reference("ecg_brf", (86.21, 86.22), 0.02, sops=6913),
    Reference("ecg_rf", (85.11, 85.11), 0.02, sops=11906),
    Reference("ecg_alif", (70.75, 70.75), 0.1),
    Reference("smnist_brf", (99.14, 99.14), 0.02, sops=16100),
    Reference("psmnist_brf", (95.21, 95.21), 0.02, sops=28070),
    Reference("smnist_alif", (92.44, 92.44), 0.1),
    Reference("psmnist_alif", (83.8, 83.8), 0.1),
    Reference("smnist_rf", (98.1, 98.7), 0.0, note="41 unstable neurons: sensitive to float order (spec 9.13)"),
    Reference("shd_brf", (92.27, 92.27), 0.02, note="needs the SHD test file"),
    Reference("shd_rf", (90.15, 90.15), 0.02, note="needs the SHD test file"),
    Reference("shd_alif", (73.63, 73.63), 0.1, note="needs the SHD test file"),
]


def distance_to_range(value: float, expected: Tuple[float, float]) -> float:
    low, high = expected
    return 0.0 if low <= value <= high else min(abs(value - low), abs(value - high))


def reproduce(data_root=None, checkpoints=None, only: Optional[List[str]] = None, subset: Optional[int] = None,
              device: str = "cpu", batch_size: int = 500, shd_root=None,
              log: Callable[[str], None] = print) -> List[dict]:
    """Evaluate the released checkpoints; returns one row (dict) per checkpoint evaluated or skipped."""
    data_root = resolve_root(data_root)
    checkpoints = Path(checkpoints) if checkpoints else data_root / "reference_checkpoints"
    rows = []
    for ref in REFERENCES:
        if only and ref.name not in only:
            continue
        row = dict(name=ref.name, task=ref.task, expected=ref.expected, tolerance=ref.tolerance, measured=None,
                   sops=None, status="skipped", seconds=0.0, samples=0, note=ref.note)
        root = Path(shd_root) if (ref.task == "shd" and shd_root) else data_root
        start = time.perf_counter()
        try:
            result, _ = evaluate_checkpoint(checkpoints / f"{ref.name}.pt", task=ref.task, data_root=root,
                                            samples=subset, progress=True, device=torch.device(device),
                                            batch_size=None if ref.task == "ecg" else batch_size)
        except (DataMissingError, FileNotFoundError) as err:
            row["note"] = f"skipped: {str(err).splitlines()[0][:90]}"
            rows.append(row)
            log(f"{ref.name:14s} skipped ({row['note']})")
            continue
        row.update(measured=result.percent, sops=result.sops, seconds=time.perf_counter() - start,
                   samples=result.samples)
        if subset:
            row["status"] = "subset"
        else:
            ok = distance_to_range(result.percent, ref.expected) <= ref.tolerance + 1e-9
            row["status"] = "ok" if ok else "MISMATCH"
        rows.append(row)
        log(f"{ref.name:14s} {result.percent:8.4f} %  ({row['status']}, {row['seconds']:.1f} s)")
    return rows


def format_table(rows: List[dict]) -> str:
    lines = ["| checkpoint | task | expected % | measured % | distance pp | tolerance pp | SOPs/sample | status |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        low, high = r["expected"]
        expected = f"{low:.2f}" if low == high else f"{low:.2f}-{high:.2f}"
        if r["measured"] is None:
            lines.append(f"| {r['name']} | {r['task']} | {expected} | - | - | {r['tolerance']:.2f} | - | "
                         f"{r['status']} |")
            continue
        dist = distance_to_range(r["measured"], r["expected"])
        lines.append(f"| {r['name']} | {r['task']} | {expected} | {r['measured']:.4f} | {dist:.4f} | "
                     f"{r['tolerance']:.2f} | {r['sops']:,.1f} | {r['status']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    """Entry point of ``brf-reproduce``: 0 when every evaluated row is within tolerance, 1 on a mismatch, 2 for an
    expected error (one line; ``--traceback`` for the trace)."""
    parser = CLIParser(prog="brf-reproduce", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", default=None,
                        help="folder with mnist/, ecg_qtdb/, reference_checkpoints/ (default $BRF_PLUGINS_DATA)")
    parser.add_argument("--checkpoints", default=None, help="folder of the released .pt files")
    parser.add_argument("--shd-root", default=None, help="folder with the SHD test file (shd_test.h5)")
    parser.add_argument("--only", nargs="*", help="checkpoint names, e.g. ecg_brf smnist_brf")
    parser.add_argument("--subset", type=int, default=None, help="evaluate only the first N test samples")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--traceback", action="store_true", help="show the full traceback of an error")
    args = parser.parse_args(argv)
    known = {r.name for r in REFERENCES}
    if args.only and not set(args.only) <= known:
        parser.error(f"unknown checkpoint(s) {sorted(set(args.only) - known)}; choose from {sorted(known)}")

    def body() -> int:
        rows = reproduce(args.data_root, args.checkpoints, args.only, args.subset, args.device, args.batch_size,
                         args.shd_root, log=lambda s: print(s, file=sys.stderr))
        print(format_table(rows))
        return 1 if any(r["status"] == "MISMATCH" for r in rows) else 0

    return run_cli("brf-reproduce", body, show_traceback=args.traceback)


if __name__ == "__main__":
    sys.exit(main())
