"""Peak memory of one training step versus sequence length: full BPTT, truncated BPTT, checkpointed BPTT.

Every configuration runs in its own subprocess (so that one run's allocator cache cannot hide another's peak).
The worker builds the network and the input, warms up with a short sequence, reads ``ru_maxrss``, runs one
forward + backward pass over the whole sequence and reads ``ru_maxrss`` again: the difference is the peak memory
the training step added (``/proc/self/clear_refs`` resets the peak to the current RSS first). CPU only (on a GPU ``torch.cuda.max_memory_allocated`` would be the measure).

Usage (from the repository root)::

    PYTHONPATH=$PWD python benchmarks/long_sequence_memory.py                      # default sweep
    PYTHONPATH=$PWD python benchmarks/long_sequence_memory.py --lengths 100 1000 --hidden 32

Writes ``benchmarks/results/long_sequence_memory.{md,json,png}``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
MODES = ("full", "tbptt", "checkpoint", "checkpoint_torch")
LABELS = {"full": "full BPTT", "tbptt": "TBPTT ({tbptt}-step windows)",
          "checkpoint": "checkpointed BPTT, recompute ({ckpt}-step chunks)",
          "checkpoint_torch": "checkpointed BPTT, torch.utils.checkpoint ({ckpt}-step chunks)"}


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS counter to the current RSS (Linux >= 4.0); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    raise KeyError(field)


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def worker(args) -> dict:
    import torch

    from brf_plugins import RecurrentSNN
    from brf_plugins.longseq import checkpointed_forward, truncated_bptt
    from brf_plugins.metrics import sequence_loss

    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = RecurrentSNN(args.inputs, args.hidden, args.outputs, "brf", omega_init=(5.0, 40.0))
    with torch.no_grad():
        net.hidden.linear.weight.mul_(200)  # a spiking regime, as in the tests
    y = torch.randint(0, args.outputs, (args.batch,))

    def step(x):
        if args.mode == "full":
            out = net(x)
            sequence_loss(out.readout, y, "sum").backward()
            return out.spike_count.item()
        if args.mode.startswith("checkpoint"):
            method = "torch" if args.mode == "checkpoint_torch" else "recompute"
            out = checkpointed_forward(net, x, chunk_size=args.ckpt, method=method)
            sequence_loss(out.readout, y, "sum").backward()
            return out.spike_count.item()
        res = truncated_bptt(net, x, lambda out, steps: sequence_loss(out.readout, y, "sum"), chunk_size=args.tbptt)
        return res.output.spike_count.item()

    def sequence(T):
        return (torch.rand(T, args.batch, args.inputs) < 0.3).float()

    step(sequence(min(args.T, 20)))  # warm-up: lazy initialisation, thread pools
    net.zero_grad(set_to_none=True)
    x = sequence(args.T)
    # peak RSS during the step minus RSS before it; without clear_refs, minus the peak so far (an underestimate)
    before = _status_mib("VmRSS") if _reset_peak() else _peak_mib()
    start = time.perf_counter()
    spikes = step(x)
    seconds = time.perf_counter() - start
    after = _peak_mib()
    return dict(mode=args.mode, T=args.T, peak_mib=after - before, seconds=seconds, spikes=spikes)


def run_all(args) -> list:
    from tqdm import tqdm

    configs = [(mode, T) for T in args.lengths for mode in args.modes
               if not (mode == "checkpoint_torch" and T > args.torch_max_length)]
    rows = []
    RESULTS.mkdir(parents=True, exist_ok=True)
    partial = RESULTS / f"{args.name}.json"
    for mode, T in tqdm(configs, desc="configurations"):
        cmd = [sys.executable, __file__, "--worker", "--mode", mode, "--T", str(T)] + _shared_flags(args)
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{mode} T={T} failed:\n{done.stderr}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        partial.write_text(json.dumps(dict(config=vars(args), rows=rows), indent=1, default=str))  # keep what ran
    return rows


def _shared_flags(args) -> list:
    return ["--batch", str(args.batch), "--inputs", str(args.inputs), "--hidden", str(args.hidden),
            "--outputs", str(args.outputs), "--tbptt", str(args.tbptt), "--ckpt", str(args.ckpt)]


def write_results(rows: list, args, name: str = "long_sequence_memory") -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    labels = {m: LABELS[m].format(tbptt=args.tbptt, ckpt=args.ckpt) for m in MODES}
    lengths = sorted({r["T"] for r in rows})
    cell = {(r["mode"], r["T"]): r for r in rows}
    modes = [m for m in MODES if any(r["mode"] == m for r in rows)]
    lines = [f"Peak memory added by one forward + backward pass (MiB, `ru_maxrss` delta; seconds in brackets). "
             f"BRF RecurrentSNN {args.inputs}-{args.hidden}-{args.outputs}, batch {args.batch}, float32, CPU, "
             f"1 thread.", "",
             "| T | " + " | ".join(labels[m] for m in modes) + " |",
             "|---:|" + "---:|" * len(modes)]
    for T in lengths:
        lines.append(f"| {T:,} | " + " | ".join(
            f"{cell[m, T]['peak_mib']:.1f} ({cell[m, T]['seconds']:.1f} s)" if (m, T) in cell else "–"
            for m in modes) + " |")
    text = "\n".join(lines) + "\n"
    (RESULTS / f"{name}.md").write_text(text)
    (RESULTS / f"{name}.json").write_text(json.dumps(dict(config=vars(args), rows=rows), indent=1, default=str))
    print(text)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for mode, marker in zip(modes, "osd^"):
        done = [T for T in lengths if (mode, T) in cell]
        ax.plot(done, [max(cell[mode, T]["peak_mib"], 0.1) for T in done], marker=marker, label=labels[mode])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("sequence length T (steps)")
    ax.set_ylabel("peak memory of one training step (MiB)")
    ax.set_title(f"BRF network {args.inputs}-{args.hidden}-{args.outputs}, batch {args.batch}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / f"{name}.png", dpi=120)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=[100, 300, 1000, 3000, 10000])
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--inputs", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--outputs", type=int, default=6)
    parser.add_argument("--tbptt", type=int, default=50, help="TBPTT window (the paper's ALIF baseline: 50)")
    parser.add_argument("--ckpt", type=int, default=100, help="checkpoint chunk size")
    parser.add_argument("--torch-max-length", type=int, default=1000,
                        help="longest T for the (slow) torch.utils.checkpoint variant")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--T", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--name", default="long_sequence_memory", help="base name of the result files")
    parser.add_argument("--merge", nargs="+", type=Path, metavar="JSON",
                        help="write the table and plot from earlier result files instead of running")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return
    if args.merge:
        rows = [row for path in args.merge for row in json.loads(path.read_text())["rows"]]
        write_results(rows, args, args.name)
        return
    write_results(run_all(args), args, args.name)


if __name__ == "__main__":
    main()
