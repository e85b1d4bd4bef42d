"""snnTorch's tutorial 6 convolutional network with ``snn.Leaky`` swapped for ``snntorch_ext.BRF``.

The model, the loss (``SF.mse_count_loss``), the accuracy (``SF.accuracy_rate``), ``utils.reset`` and the
optimiser (Adam, lr 1e-2) are tutorial 6's; only the neuron lines differ. The conv layers' BRF neurons are
``per_channel=True``: one omega and b' per feature map (as a conv layer shares its weights over space), each pixel
with its own state, and no size to give (inferred from the first batch). MNIST is read from
``/work/shared/data/mnist`` (or ``$BRF_PLUGINS_DATA``) through :class:`brf_plugins.data.SequentialMNIST`, reshaped
to images:

    python examples/snntorch_conv.py                 # BRF
    python examples/snntorch_conv.py --leaky         # the tutorial's snn.Leaky, for comparison
    python examples/snntorch_conv.py --train 10000 --steps 25
"""

import argparse
import os
from pathlib import Path

import torch
import torch.nn as nn
import snntorch as snn
import snntorch.functional as SF
from snntorch import surrogate, utils

import snntorch_ext as snnx
from brf_plugins.data import SequentialMNIST

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--leaky", action="store_true", help="use snn.Leaky (the tutorial's neuron)")
parser.add_argument("--train", type=int, default=3000, help="training images (the last 2000 are the test set)")
parser.add_argument("--steps", type=int, default=8, help="time steps per image (tutorial 6: 50)")
parser.add_argument("--epochs", type=int, default=1)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--data", default=os.environ.get("BRF_PLUGINS_DATA",
                                                     str(Path(__file__).resolve().parents[2] / "shared" / "data")))
args = parser.parse_args()
torch.manual_seed(args.seed)

mnist = SequentialMNIST(args.data, split="test", verify=False)   # the 10k images available offline
images, labels = mnist.images.float().div(255).reshape(-1, 1, 28, 28), mnist.labels
x_train, y_train = images[:args.train], labels[:args.train]
x_test, y_test = images[-2000:], labels[-2000:]

spike_grad = surrogate.fast_sigmoid(slope=25)
beta = 0.5


def neuron(conv, output=False):
    if args.leaky:
        return snn.Leaky(beta=beta, spike_grad=spike_grad, init_hidden=True, output=output)
    return snnx.BRF(per_channel=conv, init_hidden=True, output=output)   # the swap


# ---- from here on: snnTorch's tutorial 6, unchanged ------------------------------------------------------------
net = nn.Sequential(nn.Conv2d(1, 12, 5), nn.MaxPool2d(2), neuron(conv=True),
                    nn.Conv2d(12, 64, 5), nn.MaxPool2d(2), neuron(conv=True),
                    nn.Flatten(), nn.Linear(64 * 4 * 4, 10), neuron(conv=False, output=True))
optimizer = torch.optim.Adam(net.parameters(), lr=1e-2, betas=(0.9, 0.999))
loss_fn = SF.mse_count_loss(correct_rate=0.8, incorrect_rate=0.2)


def forward_pass(net, num_steps, data):
    spk_rec = []
    utils.reset(net)  # resets hidden states for all LIF neurons in net (and BRF neurons)
    for step in range(num_steps):
        spk_out, mem_out = net(data)
        spk_rec.append(spk_out)
    return torch.stack(spk_rec)


for epoch in range(args.epochs):
    perm = torch.randperm(len(x_train))
    for i in range(0, len(x_train), 128):
        idx = perm[i:i + 128]
        net.train()
        spk_rec = forward_pass(net, args.steps, x_train[idx])
        loss_val = loss_fn(spk_rec, y_train[idx])
        optimizer.zero_grad()
        loss_val.backward()
        optimizer.step()
        if (i // 128) % 10 == 0:
            print(f"epoch {epoch} iteration {i // 128}: loss {loss_val.item():.3f}, batch accuracy "
                  f"{SF.accuracy_rate(spk_rec, y_train[idx]) * 100:.1f} %")

with torch.no_grad():
    net.eval()
    acc = sum(SF.accuracy_rate(forward_pass(net, args.steps, x_test[i:i + 500]), y_test[i:i + 500]) * 500
              for i in range(0, 2000, 500)) / 2000
print(f"{'snn.Leaky' if args.leaky else 'snntorch_ext.BRF'}: test accuracy {acc * 100:.1f} %")
print(net)
