"""Stepwise cells: user code calling a neuron once per time step, BRF against the LIF cell it replaces.

The snnTorch tutorial network (``fc1 -> neuron -> fc2 -> neuron``, explicit states) with ``snn.Leaky`` and with
``snntorch_ext.BRF``, and Norse's ``Linear -> LIFCell -> Linear -> LIFCell`` with ``norse_ext.BRFCell``; one
training step (forward over T steps, backward, Adam), best of ``--repeats``, all rows from one run. The ratio
column is BRF time / LIF time (the issue's target: at most 1.2); the last column names the autograd node of the
BRF cell's output, i.e. the path :func:`brf_plugins.kernels.plan` chose for one step (on CPU the compiled step,
``CPUCellStepBackward``: one C++ call forward and one backward).

    python benchmarks/bench_stepwise.py                 # T = 100, batch 16 and 128, hidden 256, one thread
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent


def two_layer_net(framework: str, neuron: str, m: int, h: int, c: int) -> nn.Module:
    """``fc1 -> cell -> fc2 -> cell`` stepped over time with explicit states, in the framework's own idiom:
    snnTorch's ``spk, mem = leaky(cur, mem)`` or Norse's ``z, state = cell(cur, state)``."""
    if framework == "snnTorch":
        import snntorch as snn
        import snntorch_ext as snnx
        make = (lambda n: snn.Leaky(beta=0.95)) if neuron == "lif" else snnx.BRF
        first_state = lambda cell: cell.init_leaky()       # noqa: E731
    else:
        import norse.torch as norse
        import norse_ext
        make = (lambda n: norse.LIFCell()) if neuron == "lif" else norse_ext.BRFCell
        first_state = lambda cell: None                     # noqa: E731

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.cell1, self.fc2, self.cell2 = nn.Linear(m, h), make(h), nn.Linear(h, c), make(c)

        def forward(self, x):
            s1, s2 = first_state(self.cell1), first_state(self.cell2)
            out = []
            for x_t in x:
                z1, s1 = self.cell1(self.fc1(x_t), s1)
                z2, s2 = self.cell2(self.fc2(z1), s2)
                out.append(z2 if framework == "Norse" else s2)
            return torch.stack(out)

    return Net()


def step_time(net, x, repeats: int) -> float:
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    best = float("inf")
    for i in range(repeats + 1):
        start = time.perf_counter()
        loss = net(x).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if i:   # the first run warms up
            best = min(best, time.perf_counter() - start)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batches", default="16,128")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--inputs", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(HERE / "results" / "stepwise.md"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for framework in ("snnTorch", "Norse"):
        for batch in (int(b) for b in args.batches.split(",")):
            torch.manual_seed(0)
            x = torch.rand(args.steps, batch, args.inputs) * 2
            nets = {n: two_layer_net(framework, n, args.inputs, args.hidden, 10) for n in ("lif", "brf")}
            times = {n: step_time(net, x, args.repeats) for n, net in nets.items()}
            node = type(nets["brf"](x[:1]).grad_fn.next_functions[0][0]).__name__   # the stacked cell output
            rows.append((framework, batch, 1e3 * times["lif"], 1e3 * times["brf"], times["brf"] / times["lif"], node))
            print(f"{framework:8s} batch {batch:4d}: LIF {rows[-1][2]:8.1f} ms  BRF {rows[-1][3]:8.1f} ms  "
                  f"ratio {rows[-1][4]:.2f}  ({node})", flush=True)
    lines = [f"# Stepwise cells: one training step, T = {args.steps}, {args.inputs}-{args.hidden}-10, "
             f"{args.threads} thread(s), best of {args.repeats}", "",
             "| framework | batch | LIF cell ms | BRF cell ms | BRF / LIF | BRF step node |",
             "|---|---:|---:|---:|---:|---|"]
    lines += [f"| {f} | {b} | {a:.1f} | {r:.1f} | {q:.2f}x | {n} |" for f, b, a, r, q, n in rows]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
