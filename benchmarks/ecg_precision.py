"""The ECG BRF checkpoint's test accuracy in float32 and float64: over 1300 steps the rounding of float32 moves a
few spikes, and with them 0.02 pp of the accuracy (README, "Findings").

    python benchmarks/ecg_precision.py [--data-root ../shared/data]
"""

import argparse
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from brf_plugins.checkpoints import load_authors_checkpoint
from brf_plugins.data import ECGQTDB
from brf_plugins.metrics import evaluate
from brf_plugins.train.reproduce import REFERENCES


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    args = p.parse_args()
    ref = next(r for r in REFERENCES if r.name == "ecg_brf")
    path = Path(args.data_root) / "reference_checkpoints" / "ecg_brf.pt"
    for dtype in (torch.float32, torch.float64):
        net = load_authors_checkpoint(path).to(dtype)
        batches = DataLoader(ECGQTDB(args.data_root, split="test"), batch_size=141)
        batches = [(x.to(dtype), y) for x, y in batches]
        with torch.no_grad():
            result = evaluate(net, batches, ref.loss_rule, ref.accuracy_rule, ref.start)
        print(f"{str(dtype).removeprefix('torch.')}: {result.percent:.4f} % ({result.scored} scored steps), "
              f"SOPs/sample {result.sops:,.1f}")


if __name__ == "__main__":
    main()
