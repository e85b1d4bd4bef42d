"""Writes the four tutorial notebooks (``python examples/make_notebooks.py``); edit the text here, not the .ipynb.

Every notebook trains the paper's BRF network on one benchmark in snnTorch and in Norse side by side (the core
network if an adapter is not installed), then plots the learning curves, a spike raster and the omega-b' scatter.
``BRF_QUICK=1`` shrinks data and epochs so each runs in seconds (the test suite executes them this way).
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = '''\
import os, tempfile, time
import torch
import matplotlib.pyplot as plt
from brf_plugins.train import TrainConfig, adapter_available, build_model, resolve_task, task_datasets, train
from brf_plugins.train.plots import plot_learning_curves, plot_omega_b_scatter, plot_raster

QUICK = os.environ.get("BRF_QUICK") == "1"          # BRF_QUICK=1: a smoke run in seconds
DATA_ROOT = os.environ.get("BRF_PLUGINS_DATA", "../../shared/data")
FRAMEWORKS = [fw for fw in ("snntorch", "norse") if adapter_available(fw)] or ["core"]
QUICK_SIZES = dict(epochs=1, train_samples=32, val_samples=16, test_samples=16, max_batches=1)
print("frameworks:", FRAMEWORKS, "| mode:", "quick" if QUICK else "full")'''

TRAIN = '''\
results = {}
for fw in FRAMEWORKS:
    cfg = TrainConfig(task=TASK, framework=fw, neuron="brf", data_root=DATA_ROOT, **EXTRA,
                      out_dir=None if QUICK else f"runs/{TASK}-{fw}", progress=not QUICK,
                      **(QUICK_SIZES if QUICK else FULL))
    results[fw] = r = train(cfg)
    print(f"{fw:9s} test accuracy {100 * r.test_accuracy:6.2f} % (best validation epoch {r.best_epoch}), "
          f"{r.test_sops:8.1f} SOPs/sample, epochs to 95/98/100 %: {list(r.convergence.values())}, "
          f"{r.wall_seconds:.0f} s")'''

CURVES = '''\
plot_learning_curves({fw: r.history for fw, r in results.items()}, title=f"{TASK}: BRF network")
plt.show()'''

RASTER = '''\
_, _, test = task_datasets(TASK, DATA_ROOT, test_samples=1, **DATA_EXTRA)
x, y = test[0]
fw = FRAMEWORKS[0]
model = results[fw].model
model.load_state_dict(results[fw].best_state)          # the model of the best validation epoch
model.eval()
with torch.no_grad():
    out = model(x.unsqueeze(1), record=True)           # time-first (T, 1, m)
print("hidden spikes in this sample:", int(out.hidden_spikes.sum()))
plot_raster(out.hidden_spikes[:, 0], inputs=x, title=f"{fw}: hidden spikes")
plt.show()'''

SCATTER = '''\
torch.manual_seed(0)                                    # the trainer's initialisation (seed 0)
initial = build_model(FRAMEWORKS[0], resolve_task(TASK), "brf", generator=torch.Generator().manual_seed(0))
plot_omega_b_scatter({"initial": initial, **{fw: r.model for fw, r in results.items()}})
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
benchmarks"). The command line does the same: `brf-train ecg --framework norse --data-root DATA`.""",
        full="dict(epochs=400, time_limit=120)", extra="dict()", data_extra="dict()",
        extra_cells=[("md", "Per-step predictions of the best model against the labels of one test segment."),
                     ("code", '''\
pred = out.readout[:, 0].argmax(-1)
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
        full="dict(epochs=300)", extra="dict()", data_extra="dict()", extra_cells=[]),
    "psmnist_tutorial.ipynb": dict(
        task="psmnist", title="Permuted sequential MNIST with BRF neurons (snnTorch and Norse)",
        intro="""\
As S-MNIST, but the pixels come in a fixed random order (a seeded permutation, or the authors' file
`psmnist_brf_permutation.pt`), which destroys the local structure; the loss is summed over all 784 steps and the
class is the argmax of the time-averaged readout. Network 1 → 256 → 10, omega initialised in U(15, 85).

**Full mode**: the paper reports 95.0 % (released model: 95.21 %) after 300 epochs, about 10 epochs to 95 % of
that; a GPU job like S-MNIST (`brf-train psmnist --device cuda --data-root DATA`).""",
        full="dict(epochs=300)", extra="dict(permutation=PERMUTATION)",
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
        full="dict(epochs=20)", extra="dict()", data_extra="dict()", extra_cells=[],
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
    cells += [new_markdown_cell("## Training in each framework\nSame seed, same data, same recipe: the "
                                "frameworks compute the same network, so their curves should agree."),
              new_code_cell(f"TASK = {spec['task']!r}\nFULL = {spec['full']}\nEXTRA = {spec['extra']}\n"
                            f"DATA_EXTRA = {spec['data_extra']}\n" + TRAIN),
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
