"""Norse's MNIST ConvNet (``norse/task/mnist.py`` with ``norse.torch.models.conv.ConvNet4``) with its LIF cells
swapped for BRF cells, against the original at the same budget.

The model is ConvNet4 line for line (conv 5x5 -> spiking cell -> max-pool 2 -> 10 x conv 5x5 -> spiking cell ->
max-pool 2 -> linear -> spiking cell -> ``LILinearCell`` readout on ReLU'd spikes; the output is the maximum readout
voltage over time, trained with NLL on its log-softmax, Adam at 2e-3), fed by Norse's ``ConstantCurrentLIFEncoder``
as in the task. Only the three ``LIFCell(p=LIFParameters(method=..., alpha=..., v_th=...))`` change:

* ``--neuron lif``: Norse's ``LIFCell`` (the original);
* ``--neuron brf``: ``norse_ext.BRFCell(per_channel=True, p=BRFParameters(v_th=...))`` after the two convolutions
  (one omega and b' per feature map, shared over space, as a BatchNorm2d shares its weights) and
  ``norse_ext.BRFCell(p=...)`` after the linear layer; no size is given: the cells infer it on the first call.

Run (a few hundred images, seconds on a CPU)::

    python examples/norse_conv.py --neuron lif --train 2000 --test 1000 --steps 20 --epochs 1
    python examples/norse_conv.py --neuron brf --train 2000 --test 1000 --steps 20 --epochs 1

``--small`` uses 8/16 channels and 128 hidden units instead of ConvNet4's 32/64/1024 (the tests use it).
"""

from __future__ import annotations

import argparse
import time
from typing import Optional

import torch
import norse.torch as norse
from norse.torch.functional.lif import LIFParameters

import norse_ext

MEAN, STD = 0.1307, 0.3081   # the task's torchvision Normalize


def cell(neuron: str, *, v_th: float = 1.0, conv: bool = False, method: str = "super"):
    """The spiking cell of one ConvNet4 layer: Norse's LIFCell, or the BRF cell that replaces it."""
    if neuron == "lif":
        return norse.LIFCell(p=LIFParameters(method=method, alpha=torch.tensor(100.0), v_th=torch.as_tensor(v_th)))
    if neuron == "brf":   # Norse's v_th carries over; BRF's own surrogate (the paper's double Gaussian)
        return norse_ext.BRFCell(p=norse_ext.BRFParameters(v_th=v_th), per_channel=conv)
    raise ValueError(f"--neuron must be 'lif' or 'brf', got {neuron!r}.")


class ConvNet4(torch.nn.Module):
    """``norse.torch.models.conv.ConvNet4`` with the spiking cell chosen by ``neuron``."""

    def __init__(self, neuron: str = "lif", channels=(32, 64), hidden: int = 1024, feature_size: int = 28):
        super().__init__()
        self.features = int(((feature_size - 4) / 2 - 4) / 2)
        self.conv1 = torch.nn.Conv2d(1, channels[0], 5, 1)
        self.conv2 = torch.nn.Conv2d(channels[0], channels[1], 5, 1)
        self.fc1 = torch.nn.Linear(self.features * self.features * channels[1], hidden)
        self.lif0 = cell(neuron, v_th=0.7, conv=True)
        self.lif1 = cell(neuron, v_th=0.7, conv=True)
        self.lif2 = cell(neuron)
        self.out = norse.LILinearCell(hidden, 10)
        self.flat = self.features ** 2 * channels[1]

    def forward(self, x):
        seq_length, batch_size = x.shape[:2]
        s0 = s1 = s2 = so = None
        voltages = []
        for ts in range(seq_length):
            z = self.conv1(x[ts, :])
            z, s0 = self.lif0(z, s0)
            z = torch.nn.functional.max_pool2d(z, 2, 2)
            z = 10 * self.conv2(z)
            z, s1 = self.lif1(z, s1)
            z = torch.nn.functional.max_pool2d(z, 2, 2)
            z = z.reshape(-1, self.flat)
            z = self.fc1(z)
            z, s2 = self.lif2(z, s2)
            v, so = self.out(torch.nn.functional.relu(z), so)
            voltages.append(v)
        return torch.stack(voltages)


class ConvNetTask(torch.nn.Module):
    """``LIFConvNet`` of the task: constant-current LIF encoding, ConvNet4, max over time, log-softmax."""

    def __init__(self, neuron: str, steps: int, small: bool = False, input_scale: float = 1.0):
        super().__init__()
        self.encoder = norse.ConstantCurrentLIFEncoder(seq_length=steps)
        self.rsnn = ConvNet4(neuron, (8, 16), 128) if small else ConvNet4(neuron)
        self.steps, self.input_scale = steps, input_scale

    def forward(self, images):      # images (B, 784), normalised
        batch = images.shape[0]
        x = self.encoder(images * self.input_scale).reshape(self.steps, batch, 1, 28, 28)
        m, _ = torch.max(self.rsnn(x), 0)
        return torch.nn.functional.log_softmax(m, dim=1)


def mnist(split: str, n: int, data_root: Optional[str] = None, offset: int = 0):
    """``n`` MNIST images ``(n, 784)`` normalised as the task does, and their labels."""
    from brf_plugins.data import SequentialMNIST
    data = SequentialMNIST(data_root, split, verify=False)
    images = data.images[offset:offset + n].float() / 255.0
    return (images - MEAN) / STD, data.labels[offset:offset + n]


def run(neuron: str, *, train: int = 2000, test: int = 1000, steps: int = 20, epochs: int = 1, batch: int = 32,
        lr: float = 2e-3, seed: int = 1234, small: bool = False, data_root: Optional[str] = None,
        verbose: bool = False) -> dict:
    """Train on the first ``train`` training images, score on the first ``test`` test images. Returns a dict with
    ``accuracy`` (test), ``first_loss``, ``last_loss`` and ``seconds``."""
    torch.manual_seed(seed)
    x_train, y_train = mnist("train", train, data_root)
    x_test, y_test = mnist("test", test, data_root)
    model = ConvNetTask(neuron, steps, small=small)
    with torch.no_grad():
        model(x_train[:2])              # the BRF cells infer their sizes: build the optimizer after this call
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses, start = [], time.perf_counter()
    for epoch in range(epochs):
        order = torch.randperm(train)
        for i in range(0, train, batch):
            idx = order[i:i + batch]
            loss = torch.nn.functional.nll_loss(model(x_train[idx]), y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            if verbose and len(losses) % 20 == 0:
                print(f"{neuron} epoch {epoch} batch {len(losses)} loss {losses[-1]:.3f}", flush=True)
    correct = 0
    with torch.no_grad():
        for i in range(0, test, 250):
            correct += int((model(x_test[i:i + 250]).argmax(1) == y_test[i:i + 250]).sum())
    return dict(neuron=neuron, accuracy=correct / test, first_loss=losses[0],
                last_loss=sum(losses[-5:]) / len(losses[-5:]), seconds=time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--neuron", choices=("lif", "brf", "both"), default="both")
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=20, help="time steps (the task's default is 200)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--small", action="store_true", help="8/16 channels, 128 hidden units")
    parser.add_argument("--data-root", default=None, help="folder with MNIST (default $BRF_PLUGINS_DATA)")
    args = parser.parse_args(argv)
    for neuron in (("lif", "brf") if args.neuron == "both" else (args.neuron,)):
        r = run(neuron, train=args.train, test=args.test, steps=args.steps, epochs=args.epochs,
                batch=args.batch_size, lr=args.learning_rate, seed=args.seed, small=args.small,
                data_root=args.data_root, verbose=True)
        print(f"{neuron}: test accuracy {r['accuracy']:.3f} (loss {r['first_loss']:.3f} -> {r['last_loss']:.3f}, "
              f"{r['seconds']:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
