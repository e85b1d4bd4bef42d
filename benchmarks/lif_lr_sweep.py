"""Learning-rate sweep of the framework-native LIF baselines (snnTorch RLeaky, Norse LIFRecurrentCell).

Trains ``brf-train TASK --framework F --neuron lif --lr LR`` for every learning rate and framework with the task's
recipe otherwise, picks the learning rate of the lowest validation loss (the trainer's own model selection), and
writes ``benchmarks/results/lif_lr_sweep_TASK.md`` (and ``.json``): the table the README reports and the values
for :data:`brf_plugins.train.baselines.LIF_LEARNING_RATES`.

    python benchmarks/lif_lr_sweep.py                       # synthetic task, 7 rates x 2 frameworks, ~3 min
    python benchmarks/lif_lr_sweep.py --task ecg --epochs 40 --data-root ../shared/data
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from brf_plugins.train import TrainConfig, train

RATES = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="synthetic")
    ap.add_argument("--frameworks", default="snntorch,norse")
    ap.add_argument("--rates", default=",".join(map(str, RATES)))
    ap.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    rows, best = [], {}
    for framework in args.frameworks.split(","):
        for lr in map(float, args.rates.split(",")):
            result = train(TrainConfig(task=args.task, framework=framework, neuron="lif", lr=lr, seed=args.seed,
                                       epochs=args.epochs, data_root=args.data_root, threads=args.threads,
                                       progress=False, tensorboard=False))
            val = result.best_val_loss
            row = dict(framework=framework, lr=lr, best_val_loss=val, test_accuracy=result.test_accuracy,
                       best_epoch=result.best_epoch, wall_seconds=result.wall_seconds)
            rows.append(row)
            print(json.dumps(row), flush=True)
            if math.isfinite(val) and val < best.get(framework, (math.inf,))[0]:
                best[framework] = (val, lr)
    chosen = {f: lr for f, (_, lr) in best.items()}
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"lif_lr_sweep_{args.task}"
    stem.with_suffix(".json").write_text(json.dumps(dict(task=args.task, epochs=args.epochs, seed=args.seed,
                                                         rows=rows, chosen=chosen), indent=2) + "\n")
    lines = [f"# LIF baseline learning-rate sweep: {args.task}", "",
             f"`python benchmarks/lif_lr_sweep.py --task {args.task}"
             + (f" --epochs {args.epochs}" if args.epochs else "") + f"` (seed {args.seed}; the task's recipe "
             "otherwise; chosen = lowest validation loss)", "",
             "| framework | lr | best validation loss | test accuracy % | best epoch | wall s | chosen |",
             "| --- | ---: | ---: | ---: | ---: | ---: | :---: |"]
    for r in rows:
        mark = "yes" if chosen.get(r["framework"]) == r["lr"] else ""
        lines.append(f"| {r['framework']} | {r['lr']:g} | {r['best_val_loss']:.4f} | {100 * r['test_accuracy']:.2f} "
                     f"| {r['best_epoch']} | {r['wall_seconds']:.1f} | {mark} |")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("chosen:", chosen)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
