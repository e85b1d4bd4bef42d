"""snnTorch's tutorial 5 network with ``snn.Leaky`` swapped for ``snntorch_ext.BRF`` (nothing else changed).

The model, the training loop, the loss on the output membrane and the optimiser settings are those of snnTorch's
tutorial 5 ("Training Spiking Neural Networks with snntorch"); only the two neuron lines differ. The data are a
small synthetic classification problem (noisy class prototypes, the same input at every step as in the tutorial)
so that the script runs in seconds without torchvision:

    python examples/snntorch_tutorial_swap.py            # BRF
    python examples/snntorch_tutorial_swap.py --leaky    # the original snn.Leaky, for comparison
"""

import argparse

import torch
import torch.nn as nn
import snntorch as snn

import snntorch_ext

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--leaky", action="store_true", help="use snn.Leaky (the tutorial's neuron)")
parser.add_argument("--iterations", type=int, default=60)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
torch.manual_seed(args.seed)

# Synthetic stand-in for MNIST: 4 classes, 64 features.
num_inputs, num_hidden, num_outputs = 64, 128, 4
num_steps, batch_size = 25, 32
prototypes = torch.rand(num_outputs, num_inputs)


def make_batch(n):
    targets = torch.randint(0, num_outputs, (n,))
    return (prototypes[targets] + 0.3 * torch.randn(n, num_inputs)).clamp(0, 1), targets


beta = 0.95


def neuron(size):
    if args.leaky:
        return snn.Leaky(beta=beta)
    return snntorch_ext.BRF(size)          # the swap: default omega/b' ranges, input_gain = 1/dt


# ---- from here on: snnTorch's tutorial 5, unchanged ------------------------------------------------------------
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(num_inputs, num_hidden)
        self.lif1 = neuron(num_hidden)
        self.fc2 = nn.Linear(num_hidden, num_outputs)
        self.lif2 = neuron(num_outputs)

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        mem2 = self.lif2.init_leaky()
        spk2_rec = []
        mem2_rec = []
        for step in range(num_steps):
            cur1 = self.fc1(x)
            spk1, mem1 = self.lif1(cur1, mem1)
            cur2 = self.fc2(spk1)
            spk2, mem2 = self.lif2(cur2, mem2)
            spk2_rec.append(spk2)
            mem2_rec.append(mem2)
        return torch.stack(spk2_rec, dim=0), torch.stack(mem2_rec, dim=0)


net = Net()
loss = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(net.parameters(), lr=5e-4, betas=(0.9, 0.999))


def accuracy(data, targets):
    with torch.no_grad():
        spk_rec, _ = net(data)
        return float((spk_rec.sum(dim=0).argmax(1) == targets).float().mean())


test_data, test_targets = make_batch(512)
print(f"test accuracy before training: {accuracy(test_data, test_targets):.1%}")
for iteration in range(args.iterations):
    data, targets = make_batch(batch_size)
    net.train()
    spk_rec, mem_rec = net(data)
    loss_val = torch.zeros((1), dtype=torch.float)
    for step in range(num_steps):
        loss_val += loss(mem_rec[step], targets)
    optimizer.zero_grad()
    loss_val.backward()
    optimizer.step()
    if iteration % 20 == 0:
        print(f"iteration {iteration:3d}  train loss {loss_val.item():.2f}")
final = accuracy(test_data, test_targets)
print(f"test accuracy after training: {final:.1%}")
