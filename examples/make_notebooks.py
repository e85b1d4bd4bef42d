"""Writes the four tutorial notebooks (``python examples/make_notebooks.py``); edit the text here, not the .ipynb.

Every notebook reads like the frameworks' own tutorials: the paper's BRF network is written out in the notebook
from ``snntorch_ext`` layers (``nn.Linear`` + ``snnx.BRF`` + ``snnx.LI``, trained with ``snntorch.functional``'s
loss and accuracy) and from ``norse_ext`` cells (a ``norse.SequentialState`` of ``BRFRecurrentCell`` and
``LIReadoutLinearCell``, trained with torch's loss functions, as Norse's tutorials are), each with its training loop
spelled out; then the learning curves, a spike raster and the omega-b' scatter. ``brf-train`` stays the route for
the full runs (it adds checkpoints, resume, logging and the fast whole-sequence kernels). ``BRF_QUICK=1`` shrinks
data and epochs so each runs in seconds (the test suite executes them this way).
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = '''\
import os, tempfile, time
import torch
from torch import nn
from torch.utils.data import DataLoader
import matplotlib.pyplot as plt
import snntorch.functional as SF
import norse.torch as norse
import snntorch_ext as snnx
import norse_ext
from norse_ext import BRFParameters, LIReadoutParameters
from brf_plugins.init import xavier_uniform_
from brf_plugins.train import resolve_task, task_datasets
from brf_plugins.train.plots import plot_learning_curves, plot_omega_b_scatter, plot_raster

QUICK = os.environ.get("BRF_QUICK") == "1"          # BRF_QUICK=1: a smoke run in seconds
DATA_ROOT = os.environ.get("BRF_PLUGINS_DATA", "../../shared/data")
print("mode:", "quick" if QUICK else "full")'''

DATA = '''\
cfg = resolve_task(TASK)        # the paper's recipe: sizes, initialisation, lr, batch size, epochs, scoring rules
m, h, C = cfg.input_size, cfg.hidden_size, cfg.output_size
SIZES = dict(train_samples=32, val_samples=16, test_samples=16) if QUICK else {}
EPOCHS = 1 if QUICK else cfg.epochs
train_set, val_set, test_set = task_datasets(TASK, DATA_ROOT, **DATA_EXTRA, **SIZES)
train_loader = DataLoader(train_set, batch_size=cfg.batch_size, shuffle=True,
                          generator=torch.Generator().manual_seed(0))
val_loader = DataLoader(val_set, batch_size=cfg.val_batch_size)
test_loader = DataLoader(test_set, batch_size=cfg.test_batch_size)
x, y = train_set[0]
print(f"{len(train_set)} / {len(val_set)} / {len(test_set)} samples; x: {tuple(x.shape)} (T, m), "
      f"loss rule {cfg.loss!r}, accuracy rule {cfg.accuracy!r}")'''

SCORING = '''\
ce_rate = SF.ce_rate_loss()   # snnTorch's per-step cross-entropy, here on the readout potentials


def loss_fn(mem_rec, y):
    """The task's loss on the readout record (T, B, C)."""
    if cfg.loss == "last":                          # S-MNIST: the class is read at the last step
        return nn.functional.cross_entropy(mem_rec[-1], y)
    if cfg.loss == "sum":                           # PS-MNIST, SHD: summed over all steps (ce_rate averages them)
        return ce_rate(mem_rec, y) * mem_rec.shape[0]
    T, B, _ = mem_rec.shape                         # ECG: one label per step, summed over the steps
    return nn.functional.cross_entropy(mem_rec.flatten(0, 1), y.transpose(0, 1).flatten(), reduction="sum") / B


def correct(mem_rec, y):
    """Correct predictions and how many were scored, under the task's accuracy rule."""
    if cfg.accuracy == "last":
        return int((mem_rec[-1].argmax(-1) == y).sum()), y.numel()
    if cfg.accuracy == "mean":                      # argmax of the time-summed readout, as SF.accuracy_rate
        return round(float(SF.accuracy_rate(mem_rec, y)) * y.numel()), y.numel()
    return int((mem_rec.argmax(-1) == y.transpose(0, 1)).sum()), y.numel()


def run_epoch(model, loader, optimizer=None):
    """One pass over ``loader`` (training when ``optimizer`` is given); returns (mean loss, accuracy)."""
    total_loss, hits, count = 0.0, 0, 0
    for data, targets in loader:
        data = data.transpose(0, 1)                 # batch-first (B, T, m) -> time-first (T, B, m)
        with torch.set_grad_enabled(optimizer is not None):
            mem_rec, spk_rec = model(data)
            loss = loss_fn(mem_rec, targets)
        if optimizer is not None:
            optimizer.zero_grad()
            loss.backward()
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
        total_loss += float(loss) * len(targets)
        n_hit, n = correct(mem_rec, targets)
        hits, count = hits + n_hit, count + n
    return total_loss / len(loader.dataset), hits / count


def fit(model, name):
    """The paper's recipe: Adam at cfg.lr with a linear decay to 0, the model of minimum validation loss."""
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1 - epoch / EPOCHS)
    history, best = [], None
    for epoch in range(EPOCHS + 1):                 # epoch 0: the untrained network
        start = time.perf_counter()
        if epoch:
            run_epoch(model, train_loader, optimizer)
            schedule.step()
        val_loss, _ = run_epoch(model, val_loader)
        _, test_acc = run_epoch(model, test_loader)
        history.append(dict(epoch=epoch, val_loss=val_loss, test_accuracy=test_acc))
        if best is None or val_loss <= best["val_loss"]:
            best = dict(history[-1], state={k: v.clone() for k, v in model.state_dict().items()})
        print(f"{name} epoch {epoch:3d}: validation loss {val_loss:.4f}, test accuracy {100 * test_acc:6.2f} % "
              f"({time.perf_counter() - start:.1f} s)")
    model.load_state_dict(best["state"])
    print(f"{name}: test accuracy {100 * best['test_accuracy']:.2f} % at the best validation epoch {best['epoch']}")
    return history'''

SNNTORCH_NET = '''\
class SnnTorchBRFNet(nn.Module):
    """The paper's network in snnTorch: one bias-free Linear on [x_t; spk_{t-1}], BRF neurons, a Linear
    readout into leaky integrators."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(m + h, h, bias=False)
        self.brf = snnx.BRF(h, omega=cfg.omega_init, b_offset=cfg.b_offset_init, dt=cfg.dt,
                            input_gain=1.0)       # the paper's equations verbatim (its lr 0.1 assumes them)
        self.fc_out = nn.Linear(h, C, bias=False)
        self.li = snnx.LI(C, tau_mem=cfg.tau_out)
        for layer in (self.fc, self.fc_out):        # xavier-uniform over the whole matrix, as the paper
            xavier_uniform_(layer.weight)

    def forward(self, x):                           # x: (T, B, m)
        spk = x.new_zeros(x.shape[1], h)
        u, v, q = self.brf.init_brf()               # empty states: zeros of the first input's shape
        mem = self.li.init_li()[0]
        spk_rec, mem_rec = [], []
        for x_t in x:
            cur = self.fc(torch.cat((x_t, spk), dim=1))
            spk, u, v, q = self.brf(cur, u, v, q)
            mem = self.li(self.fc_out(spk), mem)
            spk_rec.append(spk)
            mem_rec.append(mem)
        return torch.stack(mem_rec), torch.stack(spk_rec)


torch.manual_seed(0)
snn_net = SnnTorchBRFNet()
initial_net = SnnTorchBRFNet()
initial_net.load_state_dict(snn_net.state_dict())  # kept for the omega-b' scatter
snn_history = fit(snn_net, "snntorch")'''

NORSE_NET = '''\
class NorseBRFNet(nn.Module):
    """The paper's network in Norse: a recurrent BRF cell (input and recurrent weights, self-connections kept as
    in the paper) and the paper's leaky-integrator readout, stepped through a SequentialState."""

    def __init__(self):
        super().__init__()
        weight = xavier_uniform_(torch.empty(h, m + h))     # over the whole matrix, as the paper
        p = BRFParameters(omega=cfg.omega_init, b_offset=cfg.b_offset_init, input_gain=1.0)
        self.model = norse.SequentialState(
            norse_ext.BRFRecurrentCell(m, h, p, dt=cfg.dt, autapses=True,
                                       input_weights=nn.Parameter(weight[:, :m].clone()),
                                       recurrent_weights=nn.Parameter(weight[:, m:].clone())),
            norse_ext.LIReadoutLinearCell(h, C, LIReadoutParameters(tau_mem=cfg.tau_out)),
        )

    def forward(self, x):                           # x: (T, B, m)
        state, mem_rec, spk_rec = None, [], []
        for x_t in x:
            out, state = self.model(x_t, state)
            mem_rec.append(out)
            spk_rec.append(state[0].z)              # the recurrent cell's last spikes
        return torch.stack(mem_rec), torch.stack(spk_rec)


torch.manual_seed(0)
norse_net = NorseBRFNet()
norse_history = fit(norse_net, "norse")'''

CURVES = '''\
plot_learning_curves({"snntorch": snn_history, "norse": norse_history}, title=f"{TASK}: BRF network")
plt.show()'''

RASTER = '''\
x, y = test_set[0]
with torch.no_grad():
    mem_rec, spk_rec = snn_net(x.unsqueeze(1))      # time-first (T, 1, m)
print("hidden spikes in this sample:", int(spk_rec.sum()))
plot_raster(spk_rec[:, 0], inputs=x, title="snntorch: hidden BRF spikes")
plt.show()'''

SCATTER = '''\
plot_omega_b_scatter({"initial": initial_net, "snntorch": snn_net, "norse": norse_net})
plt.show()'''

NOTEBOOKS = {
    "ecg_tutorial.ipynb": dict(
        task="ecg", title="ECG-QTDB wave segmentation with BRF neurons (snnTorch and Norse)",
        intro="""\
Each sample is 1300 steps of 4 level-crossing spike channels from two ECG leads; the network labels every step
with one of 6 wave segments (P, PQ, QR, RS, ST, TP). Network 4 → 36 (recurrent BRF) → 6 (leaky-integrator
readout), 1,734 parameters. Recipe (spec section 4): Adam 0.1, linear decay over 400 epochs, batch 16, loss
summed over the 1300 steps, accuracy over all steps (unlabelled steps count as class 0, as in the paper;
`TrainConfig(mask_unlabelled=True)` leaves them out).

**Full mode** (without `BRF_QUICK`): the full recipe. The paper reports 85.8 % (the authors' released model
scores 86.21 %; their 5 runs average 85.37 %), 95 % of the final accuracy after about 6 epochs. One epoch
(training, validation and test evaluation) takes about 16 s on one CPU core, so the 400-epoch recipe takes
about 1.8 hours per framework (`time_limit` in minutes stops earlier; `brf-train ... --resume` continues). Our
CPU runs reached 86.07 % in Norse and 85.00 % / 86.07 % in snnTorch (seeds 0 / 1; README, "Training the
benchmarks"). The loops below step the neurons one call per time step, as a user's code does; `brf-train ecg
--framework norse --data-root DATA` runs the same recipe through the whole-sequence kernels, with checkpoints and
`--resume`.""",
        data_extra="dict()",
        extra_cells=[("md", "Per-step predictions of the best model against the labels of one test segment."),
                     ("code", '''\
pred = mem_rec[:, 0].argmax(-1)
fig, ax = plt.subplots(figsize=(10, 2.5))
ax.plot(y.numpy(), label="label", lw=2)
ax.plot(pred.numpy(), label="prediction", lw=1)
ax.set(xlabel="time step", ylabel="segment", yticks=range(6), yticklabels=["P", "PQ", "QR", "RS", "ST", "TP"])
ax.legend(); plt.show()
print(f"accuracy on this segment: {100 * (pred == y).float().mean():.1f} %")''')]),
    "smnist_tutorial.ipynb": dict(
        task="smnist", title="Sequential MNIST with BRF neurons (snnTorch and Norse)",
        intro="""\
Each MNIST image is read one pixel per step (784 steps, pixel/255, row by row); the class is read from the
readout of the last step. Network 1 → 256 (recurrent BRF) → 10, 68,874 parameters. Recipe: Adam 0.1, linear
decay over 300 epochs, batch 256, gradient-norm clipping 1.0, 54,000 / 6,000 / 10,000 split.

**Full mode**: the paper reports 99.0 % (the released model: 99.14 %), 95 % of it after about 3 epochs. It is
a GPU job: the paper's 300 epochs took 10 to 24 hours on its GPUs (2 to 5 minutes per epoch), and an epoch
takes hours on a CPU; run it with
`brf-train smnist --framework snntorch --device cuda --data-root DATA` (add `--time-limit MINUTES`).""",
        data_extra="dict()", extra_cells=[]),
    "psmnist_tutorial.ipynb": dict(
        task="psmnist", title="Permuted sequential MNIST with BRF neurons (snnTorch and Norse)",
        intro="""\
As S-MNIST, but the pixels come in a fixed random order (a seeded permutation, or the authors' file
`psmnist_brf_permutation.pt`), which destroys the local structure; the loss is summed over all 784 steps and the
class is the argmax of the time-averaged readout. Network 1 → 256 → 10, omega initialised in U(15, 85).

**Full mode**: the paper reports 95.0 % (released model: 95.21 %) after 300 epochs, about 10 epochs to 95 % of
that; a GPU job like S-MNIST (`brf-train psmnist --device cuda --data-root DATA`).""",
        data_extra="dict(permutation=PERMUTATION)", extra_cells=[],
        preamble='''\
# the authors' pixel order if it is at hand, else one drawn from a seed (the test set uses the same order)
_authors = os.path.join(DATA_ROOT, "reference_checkpoints", "psmnist_brf_permutation.pt")
PERMUTATION = _authors if os.path.exists(_authors) else 0
print("permutation:", PERMUTATION)'''),
    "shd_tutorial.ipynb": dict(
        task="shd", title="Spiking Heidelberg Digits with BRF neurons (snnTorch and Norse)",
        intro="""\
SHD: spoken digits (20 classes, English and German) as spikes of 700 cochlea channels, binned as the paper does
(250 bins of 4 ms, channel 700 - unit, unit 0 dropped, binary). Network 700 → 128 (recurrent BRF) → 20,
108,820 parameters. Recipe: Adam 0.075, 20 epochs, batch 32, loss summed over steps, argmax of the mean readout.

The real files are not shipped; `SHD(root, download=True)` (or `brf-train shd --download`) fetches
`shd_{train,test}.h5` from the Zenke lab (CC BY 4.0), or point `BRF_PLUGINS_DATA` at a folder holding them. In
quick mode this notebook writes a tiny synthetic file in the real layout instead
(`brf_plugins.data.make_synthetic_shd`), so it runs anywhere.

**Full mode**: the paper reports 91.7 % (released model: 92.27 %) after 20 epochs, 95 % of it after about 2
epochs; about 41 minutes on the paper's GPU, several hours on a CPU.""",
        data_extra="dict()", extra_cells=[],
        preamble='''\
from brf_plugins.data import make_synthetic_shd
if QUICK:   # a stand-in in the real .h5 layout: 40 training and 16 test recordings
    DATA_ROOT = tempfile.mkdtemp()
    make_synthetic_shd(os.path.join(DATA_ROOT, "shd_train.h5"), n_samples=40, seed=0)
    make_synthetic_shd(os.path.join(DATA_ROOT, "shd_test.h5"), n_samples=16, seed=1)
print("data:", DATA_ROOT)'''),
}


def build(name: str, spec: dict) -> nbformat.NotebookNode:
    cells = [new_markdown_cell(f"# {spec['title']}\n\n{spec['intro']}\n\nQuick mode: `BRF_QUICK=1 jupyter nbconvert "
                               f"--execute --to notebook {name}` (seconds, shrunk data, 1 epoch)."),
             new_code_cell(SETUP)]
    if spec.get("preamble"):
        cells.append(new_code_cell(spec["preamble"]))
    cells += [new_markdown_cell("## Data and recipe\nThe task's datasets with the paper's splits, and its recipe "
                                "from the package's task table (`brf_plugins.tasks`)."),
              new_code_cell(f"TASK = {spec['task']!r}\nDATA_EXTRA = {spec['data_extra']}\n" + DATA),
              new_markdown_cell("## Loss, accuracy and the training loop\nThe task's scoring rules on the readout "
                                "record, snnTorch's `ce_rate_loss` and `accuracy_rate` where they are the rule; one "
                                "training loop for both frameworks' networks (Adam, linear decay, the model of "
                                "minimum validation loss)."),
              new_code_cell(SCORING),
              new_markdown_cell("## The network in snnTorch\n`snnx.BRF` stands where `snn.Leaky` stands in snnTorch's "
                                "tutorials; its state is `(u, v, q)` (real and imaginary membrane, refractory "
                                "variable), passed and returned explicitly like `snn.Synaptic`'s."),
              new_code_cell(SNNTORCH_NET),
              new_markdown_cell("## The network in Norse\n`norse_ext.BRFRecurrentCell` stands where Norse's "
                                "`LIFRecurrentCell` stands, stepped by `SequentialState` one time step per call."),
              new_code_cell(NORSE_NET),
              new_markdown_cell("## Learning curves\nValidation loss and test accuracy per epoch (epoch 0 is the "
                                "untrained network). The reported figure is the test accuracy at the epoch of "
                                "minimum validation loss."),
              new_code_cell(CURVES),
              new_markdown_cell("## Spike raster\nInput spikes and hidden BRF spikes of one test sample."),
              new_code_cell(RASTER)]
    for kind, text in spec["extra_cells"]:
        cells.append(new_markdown_cell(text) if kind == "md" else new_code_cell(text))
    cells += [new_markdown_cell("## Learned frequencies and dampening\nEach dot is a hidden neuron: its angular "
                                "frequency |omega| against its dampening offset |b'|, before and after training."),
              new_code_cell(SCATTER)]
    stem = name.split("_")[0]
    for i, cell in enumerate(cells):  # stable ids: regenerating a notebook changes only what changed
        cell["id"] = f"{stem}-{i:02d}"
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


if __name__ == "__main__":
    for name, spec in NOTEBOOKS.items():
        nbformat.write(build(name, spec), HERE / name)
        print("wrote", HERE / name)
