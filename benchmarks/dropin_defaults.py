"""The drop-in defaults of ``snntorch_ext.BRF`` / ``RBRF``, measured on snnTorch's tutorial tasks.

A user swapping ``snn.Leaky`` / ``snn.RLeaky`` for BRF keeps the tutorial's model, loss, optimiser and learning
rate; the defaults (omega and b' ranges, input gain) must let that swap learn. This script trains each tutorial
network, shrunk to run on 2 CPU cores, with the original neuron and with BRF under several candidate defaults,
at the tutorial's own learning rate and the same budget, and writes ``benchmarks/results/dropin_defaults.md``.

Tasks (snnTorch's tutorials, shrunk):

* ``fc``: tutorial 5, 784-H-10 fully connected, the static image at every step, ``CrossEntropyLoss`` on the
  output membrane summed over steps, Adam lr 5e-4, Leaky beta 0.95;
* ``conv``: tutorial 6, 12C5-MP2-64C5-MP2-FC10 with ``init_hidden=True`` nets, ``SF.mse_count_loss(0.8, 0.2)``,
  Adam lr 1e-2, Leaky beta 0.5 with ``surrogate.fast_sigmoid(slope=25)``; BRF layers ``per_channel=True``;
* ``regression``: regression tutorial 2 style, a recurrent layer (``snn.RLeaky`` / ``RBRF``) and a non-spiking
  leaky readout (``snn.Leaky(reset_mechanism="none")``) regressing a smoothed, delayed copy of a noisy 1-D input
  (``mse_loss`` on the readout membrane), Adam lr 1e-3; the score is R^2 on held-out sequences.

MNIST: the 10,000 images of ``/work/shared/data/mnist`` (``brf_plugins.data.SequentialMNIST``, split "test" as
the only one available offline), first ``--train`` for training, last 2,000 for testing.

    python benchmarks/dropin_defaults.py                  # the default run (a few minutes on 2 cores)
    python benchmarks/dropin_defaults.py --tasks fc --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

import snntorch as snn
import snntorch.functional as SF
from snntorch import surrogate, utils

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import snntorch_ext as snnx  # noqa: E402

CANDIDATES = {
    "omega (5, 10), b' (0, 1) [paper inits]": dict(omega=(5.0, 10.0), b_offset=(0.0, 1.0)),
    "omega (10, 50), b' (1, 6)": dict(omega=(10.0, 50.0), b_offset=(1.0, 6.0)),
    "omega (20, 40), b' (2, 5)": dict(omega=(20.0, 40.0), b_offset=(2.0, 5.0)),
    "omega (5, 40), b' (2, 6)": dict(omega=(5.0, 40.0), b_offset=(2.0, 6.0)),
    "omega (10, 30), b' (1, 3)": dict(omega=(10.0, 30.0), b_offset=(1.0, 3.0)),
    "omega (15, 35), b' (1, 4)": dict(omega=(15.0, 35.0), b_offset=(1.0, 4.0)),
}
"""BRF initialisations compared (``input_gain`` stays ``1/dt``; ``--gains`` adds others)."""


def mnist(root, n_train, n_test=2000):
    from brf_plugins.data import SequentialMNIST
    data = SequentialMNIST(root, split="test", verify=False)
    x = data.images.float().div(255.0).reshape(-1, 1, 28, 28)
    y = data.labels
    return (x[:n_train], y[:n_train]), (x[-n_test:], y[-n_test:])


# ---- tutorial 5: fully connected --------------------------------------------------------------------------------

class FCNet(nn.Module):
    def __init__(self, neuron, hidden):
        super().__init__()
        self.fc1, self.lif1 = nn.Linear(784, hidden), neuron(hidden)
        self.fc2, self.lif2 = nn.Linear(hidden, 10), neuron(10)

    def forward(self, x, steps):
        mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
        mem_rec = []
        for _ in range(steps):
            spk1, mem1 = self.lif1(self.fc1(x), mem1)
            spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
            mem_rec.append(mem2)
        return torch.stack(mem_rec)


def run_fc(neuron, data, *, steps=10, hidden=128, epochs=1, batch=128, lr=5e-4, seed=0):
    torch.manual_seed(seed)
    (xtr, ytr), (xte, yte) = data
    net = FCNet(neuron, hidden)
    net(xtr[:1].flatten(1), 1)                 # materialise lazy sizes before the optimiser (either works)
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=(0.9, 0.999))
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), batch):
            idx = perm[i:i + batch]
            mem = net(xtr[idx].flatten(1), steps)
            loss = sum(loss_fn(m, ytr[idx]) for m in mem)
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        mem = net(xte.flatten(1), steps)
        return float((mem.sum(0).argmax(1) == yte).float().mean())


# ---- tutorial 6: convolutional ----------------------------------------------------------------------------------

def conv_net(neuron):
    return nn.Sequential(nn.Conv2d(1, 12, 5), nn.MaxPool2d(2), neuron(conv=True),
                         nn.Conv2d(12, 64, 5), nn.MaxPool2d(2), neuron(conv=True),
                         nn.Flatten(), nn.Linear(64 * 4 * 4, 10), neuron(conv=False, output=True))


def run_conv(neuron, data, *, steps=8, epochs=1, batch=128, lr=1e-2, seed=0):
    torch.manual_seed(seed)
    (xtr, ytr), (xte, yte) = data
    net = conv_net(neuron)
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=(0.9, 0.999))   # tutorial 6: before any call
    loss_fn = SF.mse_count_loss(correct_rate=0.8, incorrect_rate=0.2)

    def forward(x):
        utils.reset(net)
        return torch.stack([net(x)[0] for _ in range(steps)])

    for _ in range(epochs):
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), batch):
            idx = perm[i:i + batch]
            loss = loss_fn(forward(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        correct = 0
        for i in range(0, len(xte), 500):
            correct += SF.accuracy_rate(forward(xte[i:i + 500]), yte[i:i + 500]) * len(yte[i:i + 500])
        return float(correct / len(xte))


# ---- regression tutorial 2: recurrent ---------------------------------------------------------------------------

def regression_data(n, steps, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(steps, n, 1, generator=g)
    target = torch.zeros_like(x)
    acc = torch.zeros(n, 1)
    for t in range(steps):                      # a leaky trace of the input, delayed by 5 steps
        acc = 0.9 * acc + 0.1 * (x[t - 5] if t >= 5 else 0.0)
        target[t] = acc * 3
    return x, target


class RegressionNet(nn.Module):
    def __init__(self, recurrent, hidden):
        super().__init__()
        self.fc_in, self.rec = nn.Linear(1, hidden), recurrent(hidden)
        self.fc_out = nn.Linear(hidden, 1)
        self.readout = snn.Leaky(beta=0.9, reset_mechanism="none", learn_beta=True)

    def forward(self, x):
        utils.reset(self)
        spk, mem = self.rec.init_rleaky()
        mem_out = self.readout.init_leaky()
        out = []
        for t in range(x.shape[0]):
            spk, mem = self.rec(self.fc_in(x[t]), spk, mem)
            _, mem_out = self.readout(self.fc_out(spk), mem_out)
            out.append(mem_out)
        return torch.stack(out)


def run_regression(recurrent, *, steps=40, hidden=32, iterations=100, batch=32, lr=1e-3, seed=0):
    torch.manual_seed(seed)
    net = RegressionNet(recurrent, hidden)
    net(torch.zeros(1, 1, 1))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for it in range(iterations):
        x, y = regression_data(batch, steps, seed * 100_000 + it)
        loss = F.mse_loss(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, y = regression_data(256, steps, 999_999)
    with torch.no_grad():
        pred = net(x)
    return float(1 - ((pred - y) ** 2).sum() / ((y - y.mean()) ** 2).sum())   # R^2


# ---- neurons ------------------------------------------------------------------------------------------------------

def leaky_fc(h):
    return snn.Leaky(beta=0.95)


def brf_fc(init):
    return lambda h: snnx.BRF(h, **init)


def leaky_conv(conv, output=False):
    return snn.Leaky(beta=0.5, spike_grad=surrogate.fast_sigmoid(slope=25), init_hidden=True, output=output)


def brf_conv(init):
    return lambda conv, output=False: snnx.BRF(per_channel=conv, init_hidden=True, output=output, **init)


def rleaky(h):
    return snn.RLeaky(beta=0.9, linear_features=h)


def rbrf(init):
    return lambda h: snnx.RBRF(h, **init)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["fc", "conv", "regression"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--train", type=int, default=3000, help="MNIST training images (fc, conv)")
    parser.add_argument("--data", default=os.environ.get("BRF_PLUGINS_DATA", str(Path(__file__).resolve()
                                                                                   .parents[2] / "shared" / "data")))
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "dropin_defaults.md"))
    parser.add_argument("--candidates", nargs="*", default=None, help="subset of candidate names (default all)")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    candidates = {k: v for k, v in CANDIDATES.items() if args.candidates is None or k in args.candidates}
    data = mnist(args.data, args.train) if {"fc", "conv"} & set(args.tasks) else None

    tasks = {
        "fc": ("tutorial 5 FC, Adam 5e-4", lambda s: run_fc(leaky_fc, data, seed=s),
               lambda init, s: run_fc(brf_fc(init), data, seed=s), "snn.Leaky(beta=0.95)"),
        "conv": ("tutorial 6 CNN, Adam 1e-2", lambda s: run_conv(leaky_conv, data, seed=s),
                 lambda init, s: run_conv(brf_conv(init), data, seed=s), "snn.Leaky(beta=0.5, fast_sigmoid(25))"),
        "regression": ("regression 2 (recurrent), Adam 1e-3, R^2", lambda s: run_regression(rleaky, seed=s),
                       lambda init, s: run_regression(rbrf(init), seed=s), "snn.RLeaky(beta=0.9)"),
    }
    rows = []
    for task in args.tasks:
        title, base, swap, base_name = tasks[task]
        t0 = time.time()
        scores = [base(s) for s in args.seeds]
        rows.append((title, base_name, scores, time.time() - t0))
        print(rows[-1], flush=True)
        for name, init in candidates.items():
            t0 = time.time()
            scores = [swap(init, s) for s in args.seeds]
            rows.append((title, f"BRF {name}", scores, time.time() - t0))
            print(rows[-1], flush=True)

    lines = ["# Drop-in defaults of snntorch_ext.BRF / RBRF, measured", "",
             f"`python benchmarks/dropin_defaults.py {' '.join(argv if argv is not None else sys.argv[1:])}`"
             .rstrip() + f" (seeds {args.seeds}, {args.train} MNIST training images, 2,000 test images; torch "
             f"{torch.__version__}, snntorch {snn.__version__}, {torch.get_num_threads()} threads).", "",
             "Each row: the tutorial's network, loss, optimiser and learning rate, with the neuron as named; the "
             "same budget (data, epochs, steps) per task. Accuracy on held-out images (fc, conv), R^2 on held-out "
             "sequences (regression). `input_gain` is the default 1/dt = 100 throughout.", "",
             "| task | neuron | score (mean) | per seed | seconds |", "| --- | --- | --- | --- | --- |"]
    for title, name, scores, secs in rows:
        lines.append(f"| {title} | {name} | {sum(scores) / len(scores):.3f} | "
                     f"{', '.join(f'{s:.3f}' for s in scores)} | {secs:.0f} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
