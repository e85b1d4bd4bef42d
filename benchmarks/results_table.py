"""The results table of the from-scratch runs: mean ± std over seeds per task, framework and neuron.

Reads ``brf-train`` run folders (their ``summary.json`` and ``metrics.csv``; a run still going or stopped by
``--time-limit`` is read from its ``metrics.csv`` and marked "partial"), copies those two files into
``--store`` (committed, so the table can be rebuilt without the checkpoints), and writes ``--out`` (markdown) and
its ``.json``, plus one learning-curve plot per task (test accuracy per epoch, every seed) beside it.

    python benchmarks/results_table.py /work/runs/ecg-*-seed* --store benchmarks/results/at_scale/run_files \\
        --out benchmarks/results/at_scale/results.md
    python benchmarks/results_table.py benchmarks/results/at_scale/run_files/* --readme README.md   # rebuild, and
        # replace the README's table between its "<!-- results:start -->" and "<!-- results:end -->" lines

The reported accuracy of a run is the trainer's: the test accuracy at the epoch of minimum validation loss.
"Epochs to 95 / 98 / 100 %" are the first epochs whose test accuracy reaches that fraction of the run's reported
accuracy (paper Table 2; mean over the finished seeds). "to 95 % of paper" is the first epoch at 95 % of the paper's figure.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional

from brf_plugins.train.plots import plot_learning_curves, read_history
from brf_plugins.train.trainer import TrainConfig, load_run_file, recipe

PAPER = {  # (task, neuron): (paper's test accuracy %, its std or None); Table 1 and the figures
    ("ecg", "brf"): (85.8, 0.7), ("ecg", "bhrf"): (87.0, 0.4), ("ecg", "rf"): (85.5, 0.7),
    ("smnist", "brf"): (99.0, 0.1), ("smnist", "rf"): (98.0, 0.4), ("smnist", "bhrf"): (99.1, 0.1),
    ("psmnist", "brf"): (95.0, 0.2), ("psmnist", "bhrf"): (95.2, None),
    ("shd", "brf"): (91.7, 0.8), ("shd", "rf"): (89.2, 0.6), ("shd", "bhrf"): (92.7, 0.7),
    # ALIF: the authors' own same-size ALIF (Table 1's ALIF* figures, 85.9 / 98.7 / 94.3 %, are Yin et al. 2021's
    # larger networks, not this baseline). ECG: their 5 runs' shipped CSVs, 67.8 ± 2.9 (spec 6.1; the
    # released checkpoint, 70.75 %, is the best of them); (P)S-MNIST: only the released (best) checkpoints.
    ("ecg", "alif"): (67.8, 2.9), ("smnist", "alif"): (92.44, None), ("psmnist", "alif"): (83.8, None),
}
PAPER_SOPS = {  # paper Table 1: synaptic operations per sample of the same-size networks
    ("smnist", "rf"): 29034.8, ("smnist", "brf"): 15462.6, ("smnist", "bhrf"): 21565.7, ("psmnist", "rf"): 66474.2,
    ("psmnist", "brf"): 27839.7, ("psmnist", "bhrf"): 24564.2, ("ecg", "rf"): 11981.9, ("ecg", "brf"): 6307.7,
    ("ecg", "bhrf"): 6233.8, ("shd", "rf"): 4750.2, ("shd", "brf"): 3502.6, ("shd", "bhrf"): 4139.5,
}
README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"
PAPER_EPOCHS = {  # paper Table 2 (spec 6.2): epochs to 95 / 98 / 100 % of the final test accuracy
    ("smnist", "alif"): (105, 162, 276), ("smnist", "rf"): (134, 172, 263), ("smnist", "brf"): (3, 29, 246),
    ("smnist", "bhrf"): (5, 12, 119), ("psmnist", "alif"): (143, 200, 265), ("psmnist", "brf"): (10, 39, 282),
    ("psmnist", "bhrf"): (6, 19, 123), ("ecg", "alif"): (51, 157, 282), ("ecg", "rf"): (8, 29, 112),
    ("ecg", "brf"): (6, 32, 75), ("ecg", "bhrf"): (15, 38, 109),
}
"""Its exact definition is not recoverable (spec 6.2: the authors' ECG BRF CSVs give 6.8 / 29.8 / 111.8 with this
script's per-run rule); the 95 % figure is also the one the "to 95 % of paper" column compares with."""


def _first(acc: List[float], level: float) -> Optional[int]:
    return next((i for i, a in enumerate(acc) if a >= level), None)


def read_run(run: Path) -> Optional[dict]:
    """One run's figures, or ``None`` for a folder without a ``metrics.csv``."""
    if not (run / "metrics.csv").exists():
        return None
    history = read_history(run)
    summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").exists() else None
    config = summary["config"] if summary else _config_of_running(run)
    acc = [h["test_accuracy"] for h in history]
    if summary:
        best, reported, sops = summary["best_epoch"], summary["test_accuracy"], summary["test_sops"]
        seconds = summary["run_seconds"]
    else:   # partial: the trainer's rule on the epochs so far (min validation loss; with "<=" the later of equals)
        losses = [h["val_loss"] for h in history]
        later = recipe(TrainConfig(task=config["task"], framework=config["framework"],
                                   neuron=config["neuron"]))["best_rule"] == "<="
        best = min(range(len(losses)), key=lambda i: (losses[i], -i if later else i))
        reported, sops = acc[best], history[best].get("test_sops", float("nan"))
        seconds = sum(h["epoch_seconds"] for h in history if math.isfinite(h.get("epoch_seconds", math.nan)))
    paper = PAPER.get((config["task"], config["neuron"]), (None, None))[0]
    partial = summary is None or bool(summary.get("stopped_early"))   # running, or stopped by --time-limit
    # a run with model options (brf-train --set KEY=VALUE) is a variant of its neuron, grouped on its own
    # (through JSON, so that a running run's tuples read as its finished siblings' lists)
    options = json.loads(json.dumps(config.get("model_kwargs") or {}))
    variant = ", ".join(f"{k}={v}" for k, v in sorted(options.items()))
    return dict(run=run.name, task=config["task"], framework=config["framework"], neuron=config["neuron"],
                variant=variant,
                seed=config["seed"], epochs=len(history) - 1, partial=partial, best_epoch=best,
                accuracy=100 * reported, sops=sops, hours=seconds / 3600, curve=acc, history=history,
                to=[_first(acc, f * reported) for f in (0.95, 0.98, 1.0)],
                to_paper95=None if paper is None else _first(acc, 0.95 * paper / 100))


def _config_of_running(run: Path) -> dict:
    """The configuration of a run without a summary yet: from its ``last.pt`` (every epoch writes one), else from
    its folder name, TASK-FRAMEWORK-NEURON-seedN[-VARIANT] (a run that has not finished its first epoch)."""
    if (run / "last.pt").exists():
        return load_run_file(run / "last.pt")["config"]
    task, framework, neuron, seed, *variant = run.name.split("-")
    return dict(task=task, framework=framework, neuron=neuron, seed=int(seed.removeprefix("seed")),
                model_kwargs={"variant": "-".join(variant)} if variant else {})


def _mean_std(values: List[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def _mean_int(values) -> str:
    values = [v for v in values if v is not None]
    return "-" if not values else f"{statistics.mean(values):.1f}"


def table(runs: List[dict]) -> str:
    groups: Dict[tuple, List[dict]] = defaultdict(list)
    for r in runs:
        groups[(r["task"], r["framework"], r["neuron"], r.get("variant", ""))].append(r)
    lines = ["| task | framework | neuron | seeds | test accuracy % (mean ± std) | paper | epochs | "
             "epochs to 95 / 98 / 100 % (paper) | to 95 % of paper (paper) | SOPs/sample (paper) | "
             "core-hours per run |",
             "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    order = {"ecg": 0, "smnist": 1, "psmnist": 2, "shd": 3}
    for key in sorted(groups, key=lambda k: (order.get(k[0], 9), k[2], k[3], k[1])):
        rs = sorted(groups[key], key=lambda r: r["seed"])
        task, framework, neuron, variant = key
        paper, paper_std = PAPER.get((task, neuron), (None, None))
        paper_s = "-" if paper is None else (f"{paper}" + (f" ± {paper_std}" if paper_std else ""))
        seeds = ", ".join(str(r["seed"]) + ("*" if r["partial"] else "") for r in rs)
        epochs = "/".join(sorted({str(r["epochs"]) for r in rs}))
        finished = [r for r in rs if not r["partial"]]   # fractions of a final accuracy: finished runs only
        to = " / ".join(_mean_int(r["to"][i] for r in finished) for i in range(3))
        p95 = _mean_int(r["to_paper95"] for r in rs)
        if (task, neuron) in PAPER_EPOCHS:
            to += " ({} / {} / {})".format(*PAPER_EPOCHS[(task, neuron)])
            p95 += f" ({PAPER_EPOCHS[(task, neuron)][0]})"
        sops = f"{statistics.mean(r['sops'] for r in rs):,.0f}"
        if (task, neuron) in PAPER_SOPS:
            sops += f" ({PAPER_SOPS[(task, neuron)]:,.0f})"
        shown = f"{neuron} ({variant})" if variant else neuron
        lines.append(f"| {task} | {framework} | {shown} | {seeds} | {_mean_std([r['accuracy'] for r in rs])} | "
                     f"{paper_s} | {epochs} | {to} | {p95} | {sops} | "
                     f"{statistics.mean(r['hours'] for r in rs):.2f} |")
    return "\n".join(lines)


def plot(runs: List[dict], out: Path) -> List[Path]:
    """One figure per task with brf-plot's :func:`~brf_plugins.train.plots.plot_learning_curves`: every seed, one
    colour per neuron and framework."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    written = []
    for task in sorted({r["task"] for r in runs}):
        chosen = sorted((r for r in runs if r["task"] == task), key=lambda r: (r["neuron"], r["framework"], r["seed"]))
        histories = {r["run"]: r["history"] for r in chosen}
        groups = {r["run"]: f"{r['neuron']}{' ' + r['variant'] if r.get('variant') else ''} ({r['framework']})"
                  for r in chosen}
        fig = plot_learning_curves(histories, title=f"{task}: every seed (* = the reported epoch)", groups=groups)
        path = out.with_name(f"{out.stem}_{task}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--store", type=Path, default=None,
                    help="copy summary.json and metrics.csv here (and an unfinished run's last.pt)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/at_scale/results.md"))
    ap.add_argument("--readme", type=Path, default=None, help="replace the table between the results markers")
    args = ap.parse_args()
    runs = []
    for run in args.runs:
        row = read_run(run)
        if row is None:
            continue
        runs.append(row)
        if args.store is not None:
            target = args.store / run.name
            if target.resolve() != run.resolve():
                target.mkdir(parents=True, exist_ok=True)
                for name in ("summary.json", "metrics.csv"):
                    if (run / name).exists():
                        shutil.copy2(run / name, target / name)
                    elif (target / name).exists():
                        (target / name).unlink()   # a restarted run's stale file would be read as its own
                # an unfinished run keeps its last.pt beside them, so that a fresh checkout resumes it; a
                # finished one needs none
                if row["partial"] and (run / "last.pt").exists():
                    shutil.copy2(run / "last.pt", target / "last.pt")
                elif not row["partial"] and (target / "last.pt").exists():
                    (target / "last.pt").unlink()
    if not runs:
        raise SystemExit("results_table: no run folder with a metrics.csv among the arguments")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = table(runs)
    args.out.write_text(text + "\n\n(* = partial: still training or stopped by --time-limit; read from its "
                        "metrics.csv)\n")
    args.out.with_suffix(".json").write_text(json.dumps([{k: v for k, v in r.items() if k not in ("curve", "history")}
                                                         for r in runs], indent=1) + "\n")
    print(text)
    if args.readme is not None:
        readme = args.readme.read_text()
        head, rest = readme.split(README_START, 1)
        _, tail = rest.split(README_END, 1)
        args.readme.write_text(f"{head}{README_START}\n{text}\n{README_END}{tail}")
    for path in plot(runs, args.out):
        print("wrote", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
