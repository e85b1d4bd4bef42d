"""Time the BRF fast paths against the plain step loop, snnTorch and Norse, side by side in one run.

For each path: the forward pass and one training step (forward, full BPTT backward, Adam) of an S-MNIST-shaped
network (1 input -> h hidden -> 10 LI readout over T steps), the ratio to the plain BRF step loop, the peak memory
and, for the BRF paths, the largest difference of loss and gradients to the plain loop on the same weights and
batch. Every path runs in its own subprocess (clean peak-memory figures, no cross-talk between frameworks).

Writes ``benchmarks/results/<device>.md`` (a markdown table), ``<device>.json`` and ``<device>.png`` (a plot).

Usage::

    python benchmarks/bench_training.py --suite             # compiled vs fused vs plain vs floor: S-MNIST and ECG,
                                                            # batch 16 and 256 (writes <device>-suite.md)
    python benchmarks/bench_training.py                    # CPU-sized: h=256, T=784, batch 16
    python benchmarks/bench_training.py --batch 4 --steps 200
    python benchmarks/bench_training.py --paper-size        # the issue's size: h=256, T=784, batch 256 (CUDA)
    python benchmarks/bench_training.py --device cuda --modes eager,cuda_graph

Paths (``--paths`` to choose):

* ``brf-plain``: :class:`brf_plugins.RecurrentSNN` with ``backend="reference"`` (the plain step loop; baseline);
* ``brf-fused-step``: the step loop with the fused one-node neuron step (``spike_hook`` forces the step loop);
* ``brf-fused``: ``backend="fused"``: the torch fused sequence, whole sequence as one autograd node (time loop in
  Python);
* ``brf-compiled``: the compiled C++ whole-sequence kernels (:mod:`brf_plugins.kernels._cpu`: recurrent layer and
  LI readout, one C++ call forward and one backward each);
* ``floor``: the layer's matmuls alone, timed in the same run: the forward's T dependent
  ``(B x (m+h)) x ((m+h) x h)`` matmuls, and for the training step three such passes (forward, the backward's
  recurrence, the weight gradient). Every path's time is also reported as a ratio to this floor;
* ``ff-plain`` / ``ff-fused`` / ``ff-triton``: a feed-forward BRF layer (``Linear -> brf_sequence -> Linear -> LI``)
  with ``brf_sequence(backend="reference" | "fused" | "triton")`` (Triton on CUDA only);
* ``snntorch-rleaky`` / ``snntorch-leaky``, ``norse-lifrecurrent`` / ``norse-lif``: the frameworks' own neurons in
  networks of the same size.

``--task ecg`` times the ECG-QTDB network (4 -> 36 -> 6, T = 1300, binary input spikes) instead of S-MNIST's;
``--suite`` runs both tasks at ``--batches`` (default 16 and 256) for the BRF paths and the floor, one thread by
default, and writes one table with each path's ratio to the floor and to the plain loop.

``--modes`` adds training-step modes of :func:`brf_plugins.train.capture.make_train_step` for the BRF recurrent paths
(``compile`` unrolls the 784-step loop: minutes of compilation; ``cuda_graph`` needs CUDA).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

BRF_RECURRENT = ("brf-plain", "brf-fused-step", "brf-fused", "brf-compiled")
FLOOR = ("floor",)
FEED_FORWARD = ("ff-plain", "ff-fused", "ff-triton")
FRAMEWORKS = ("snntorch-rleaky", "snntorch-leaky", "norse-lifrecurrent", "norse-lif")
ALL_PATHS = BRF_RECURRENT + FLOOR + FEED_FORWARD + FRAMEWORKS
SUITE_PATHS = ("brf-plain", "brf-fused", "brf-compiled", "floor")
TASKS = {  # task: (input size m, hidden h, classes C, steps T)
    "smnist": (1, 256, 10, 784),
    "ecg": (4, 36, 6, 1300),
}
DESCRIPTIONS = {
    "brf-plain": "BRF recurrent, plain step loop (reference)",
    "brf-fused-step": "BRF recurrent, step loop + fused step",
    "brf-fused": "BRF recurrent, torch fused sequence",
    "brf-compiled": "BRF recurrent, compiled C++ sequence (kernels._cpu)",
    "floor": "floor: the layer's matmuls alone",
    "ff-plain": "BRF feed-forward, plain step loop",
    "ff-fused": "BRF feed-forward, fused sequence (CPU path)",
    "ff-triton": "BRF feed-forward, Triton sequence kernel",
    "snntorch-rleaky": "snnTorch RLeaky network (brf_plugins.train.baselines)",
    "snntorch-leaky": "snnTorch Leaky (feed-forward LIF)",
    "norse-lifrecurrent": "Norse LIFRecurrentCell network (brf_plugins.train.baselines)",
    "norse-lif": "Norse LIFCell (feed-forward)",
}


# ----------------------------------------------------------------------------------------------- models


class _CompiledSNN:
    """A RecurrentSNN run on the compiled CPU kernels (hidden layer and LI readout, one C++ node each)."""

    def __init__(self, net):
        from brf_plugins.kernels import _cpu
        from brf_plugins.kernels._spec import cell_spec
        usable, reason = _cpu.status()
        if not usable:
            raise RuntimeError(f"compiled CPU kernels unavailable: {reason}")
        layer = net.hidden
        self.net, self.cpu = net, _cpu
        self.spec = cell_spec("brf", layer.dt, layer.theta, layer.gamma, layer.spike_fn, **layer.ablation)

    def __call__(self, x):
        from brf_plugins.network import SNNOutput
        net, layer = self.net, self.net.hidden
        state = tuple(layer.init_state(x.shape[1], dtype=x.dtype, device=x.device))
        z_all, _ = self.cpu.recurrent_sequence(self.spec, x, layer.linear.weight, state, layer.omega,
                                               layer.b_offset, layer.recurrent)
        readout = self.cpu.li_sequence(net.out.linear(z_all), None, net.out.tau_mem)
        return SNNOutput(readout, z_all.sum())


def _build(path: str, hidden: int, device, seed: int, task: str = "smnist"):
    import torch
    from torch import nn

    from brf_plugins import RecurrentSNN, kernels
    from brf_plugins.network import SNNOutput

    torch.manual_seed(seed)
    if path in BRF_RECURRENT:
        from brf_plugins.tasks import get_task
        m, _, classes, _ = TASKS[task]
        net = RecurrentSNN(m, hidden, classes, "brf", **get_task(task).init_kwargs("brf"))
        # brf-fused: the torch fused sequence explicitly (backend="auto" may now pick the compiled kernels)
        net.hidden.backend = {"brf-plain": "reference", "brf-fused": "fused"}.get(path, "auto")
        net.to(device)
        if path == "brf-compiled":
            return _CompiledSNN(net), net
        hook = (lambda t, z: z) if path == "brf-fused-step" else None
        return (lambda x: net(x, spike_hook=hook)), net

    if path in FEED_FORWARD:
        from brf_plugins import sequence
        from brf_plugins.init import b_offset_parameter, omega_parameter
        from brf_plugins.network import LIReadout
        backend = {"ff-plain": "reference", "ff-fused": "fused", "ff-triton": "triton"}[path]

        class FeedForward(nn.Module):
            def __init__(self):
                super().__init__()
                self.linear = nn.Linear(1, hidden, bias=False)
                self.omega = nn.Parameter(omega_parameter(hidden, (15.0, 50.0), 0.01))
                self.b_offset = nn.Parameter(b_offset_parameter(hidden, (0.1, 1.0)))
                self.out = LIReadout(hidden, 10)

            def forward(self, x):
                z, _ = sequence.brf_sequence(self.linear(x), omega=self.omega, b_offset=self.b_offset,
                                             backend=backend)
                readout = kernels.li_sequence(self.out.linear(z), None, self.out.tau_mem) if backend != "reference" \
                    else _li_loop(self.out, z)
                return SNNOutput(readout, z.sum())

        net = FeedForward().to(device)
        return net, net

    if path in ("snntorch-rleaky", "norse-lifrecurrent"):   # the trainer's LIF baselines, the same networks
        from brf_plugins.train.baselines import lif_baseline
        m, _, classes, _ = TASKS[task]
        net = lif_baseline(path.split("-")[0], m, hidden, classes).to(device)
        return net, net

    # The feed-forward LIF networks, each stepped in its framework's idiom: snnTorch's `spk, mem = leaky(cur, mem)`
    # (the readout a Leaky without reset, its membrane recorded), Norse's `out, state = cell(cur, state)`.
    if path == "snntorch-leaky":
        import snntorch as snn
        cells = (snn.Leaky(beta=0.95), snn.Leaky(beta=0.95, reset_mechanism="none"))

        def step(cell, current, mem):
            spk, mem = cell(current, cell.init_leaky() if mem is None else mem)
            return spk, mem, mem
    else:
        import norse.torch as norse
        cells = (norse.LIFCell(), norse.LICell())

        def step(cell, current, state):
            out, state = cell(current, state)
            return out, out, state

    class FeedForwardLIF(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc_in, self.fc_out = nn.Linear(1, hidden), nn.Linear(hidden, 10)
            self.lif, self.readout = cells

        def forward(self, x):
            state = out_state = None
            outs, count = [], 0
            for x_t in x:
                z, _, state = step(self.lif, self.fc_in(x_t), state)
                _, v, out_state = step(self.readout, self.fc_out(z), out_state)
                outs.append(v)
                count = count + z.sum()
            return SNNOutput(torch.stack(outs), count)

    net = FeedForwardLIF().to(device)
    return net, net


def _li_loop(readout, z):
    import torch
    o, outs = None, []
    for z_t in z:
        o = readout(z_t, o)
        outs.append(o)
    return torch.stack(outs)


# ------------------------------------------------------------------------------------------------ worker


def _sync(device):
    import torch
    if device.type == "cuda":
        torch.cuda.synchronize()


def worker(args) -> dict:
    """Time one path (runs in a subprocess); returns its row and writes loss/gradients for the comparison."""
    import torch

    from brf_plugins.train.capture import make_train_step

    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    m, _, classes, _ = TASKS[args.task]
    generator = torch.Generator().manual_seed(args.seed + 1)
    if args.task == "ecg":      # binary level-crossing spikes, a few per step
        x = (torch.rand(args.steps, args.batch, m, generator=generator) < 0.05).float().to(device)
    else:
        x = (torch.rand(args.steps, args.batch, m, generator=generator) * args.input_scale).to(device)
    target = torch.randint(0, classes, (args.batch,), generator=generator).to(device)
    if args.path == "floor":
        return _floor_worker(args, x, device)
    forward, module = _build(args.path, args.hidden, device, args.seed, args.task)

    def loss_fn(out, y):
        return torch.nn.functional.cross_entropy(out.readout.mean(0), y)

    row = dict(path=args.path, mode=args.mode, device=str(device), task=args.task, batch=args.batch)
    # The comparison figures: loss and gradients of one step from the common initial weights.
    module.zero_grad()
    out = forward(x)
    loss = loss_fn(out, target)
    loss.backward()
    row["spikes_per_step"] = float(out.spike_count.detach()) / args.steps / args.batch
    torch.save({"loss": loss.detach().cpu(), "grads": {n: p.grad.detach().cpu().clone()
                                                      for n, p in module.named_parameters()}}, args.dump)
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    # Forward only.
    times = []
    with torch.no_grad():
        for i in range(args.warmup + args.repeats):
            _sync(device)
            t0 = time.perf_counter()
            forward(x)
            _sync(device)
            if i >= args.warmup:
                times.append(time.perf_counter() - t0)
    row["forward_s"] = min(times)

    # Training step.
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    capturable = dict(capturable=True) if args.mode == "cuda_graph" else {}
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3, **capturable)
    model = (lambda inp: forward(inp)) if args.path in ("brf-fused-step", "brf-compiled") else module
    step = make_train_step(model if isinstance(model, torch.nn.Module) else _Wrap(model, module), optimizer,
                           loss_fn, mode=args.mode)
    times = []
    for i in range(args.warmup + args.repeats):
        _sync(device)
        t0 = time.perf_counter()
        step(x, target)
        _sync(device)
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    row["train_s"] = min(times)
    row["train_s_all"] = times
    if device.type == "cuda":
        row["peak_mib"] = (torch.cuda.max_memory_allocated() - base) / 2 ** 20
    else:
        # ru_maxrss is KiB on Linux: the growth of the process's peak resident set during the timed runs.
        row["peak_mib"] = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_start, 0) / 1024
    return row


def _floor_worker(args, x, device) -> dict:
    """The layer's matmuls alone: T sequential (B x (m+h)) x ((m+h) x h) products per pass; the forward is one pass,
    the training step three (forward, the backward's recurrence, the weight gradient)."""
    import torch
    steps, batch, m = x.shape
    h = args.hidden
    weight_t = (torch.rand(h, m + h, device=device) - 0.5).t()
    step_input = torch.rand(batch, m + h, device=device)
    out = torch.empty(batch, h, device=device)

    def one_pass():          # the products only (no copies); on CPU each waits for the previous one anyway
        for _ in range(steps):
            torch.mm(step_input, weight_t, out=out)

    def timed(passes):
        times = []
        for i in range(args.warmup + args.repeats):
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(passes):
                one_pass()
            _sync(device)
            if i >= args.warmup:
                times.append(time.perf_counter() - t0)
        return min(times), times

    forward_s, _ = timed(1)
    train_s, train_all = timed(3)
    return dict(path="floor", mode=args.mode, device=str(device), task=args.task, batch=args.batch,
                forward_s=forward_s, train_s=train_s, train_s_all=train_all, peak_mib=0.0, spikes_per_step=0.0)


class _Wrap:
    """A callable model for make_train_step whose parameters live in ``module``."""

    def __init__(self, fn, module):
        self.fn, self.module = fn, module

    def __call__(self, x):
        return self.fn(x)


# ------------------------------------------------------------------------------------------------ driver


def _run_worker(path: str, mode: str, args, dump: Path) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--path", path, "--mode", mode,
           "--device", args.device, "--hidden", str(args.hidden), "--steps", str(args.steps),
           "--batch", str(args.batch), "--repeats", str(args.repeats), "--warmup", str(args.warmup),
           "--threads", str(args.threads), "--seed", str(args.seed), "--input-scale", str(args.input_scale),
           "--task", args.task, "--dump", str(dump)]
    env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        return dict(path=path, mode=mode, task=args.task, batch=args.batch,
                    error=done.stderr.strip().splitlines()[-1] if done.stderr else "failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _compare(rows, dumps):
    import torch
    base = dumps.get(("brf-plain", "eager"))
    if base is None or not base.exists():
        return
    ref = torch.load(base)
    for row in rows:
        key = (row["path"], row["mode"])
        if "error" in row or not (row["path"] in BRF_RECURRENT) or not dumps[key].exists():
            continue
        got = torch.load(dumps[key])
        row["loss_diff"] = float((got["loss"] - ref["loss"]).abs())
        row["grad_rel_diff"] = max(float((got["grads"][n] - g).abs().max() / g.abs().max().clamp_min(1e-30))
                                   for n, g in ref["grads"].items())
    ff = dumps.get(("ff-plain", "eager"))
    if ff is not None and ff.exists():
        ref = torch.load(ff)
        for row in rows:
            key = (row["path"], row["mode"])
            if "error" in row or row["path"] not in FEED_FORWARD or not dumps[key].exists():
                continue
            got = torch.load(dumps[key])
            row["loss_diff"] = float((got["loss"] - ref["loss"]).abs())
            row["grad_rel_diff"] = max(float((got["grads"][n] - g).abs().max() / g.abs().max().clamp_min(1e-30))
                                       for n, g in ref["grads"].items())


def _table(rows, args, device_name: str) -> str:
    base = next((r for r in rows if r["path"] == "brf-plain" and r["mode"] == "eager" and "error" not in r), None)
    lines = [f"# BRF training-step benchmark: {device_name}", "",
             f"{'ECG' if args.task == 'ecg' else 'S-MNIST'}-shaped network: {TASKS[args.task][0]} -> {args.hidden} -> "
             f"{TASKS[args.task][2]} (LI readout), T = {args.steps}, batch {args.batch}; "
             f"float32; {args.threads} CPU thread(s); best of {args.repeats} after {args.warmup} warm-up run(s). "
             "Ratio = plain BRF step loop time / this path's time (higher is faster). Loss/grad diff: against the "
             "plain loop of the same architecture on the same weights and batch (BRF paths only).", "",
             "| path | mode | forward ms | train step ms | train speed-up | forward speed-up | peak MiB | "
             "spikes/neuron-step... | max abs loss diff | max rel grad diff |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    lines[-2] = lines[-2].replace("spikes/neuron-step...", "spikes/step/sample")
    for r in rows:
        name = DESCRIPTIONS.get(r["path"], r["path"])
        if "error" in r:
            lines.append(f"| {name} | {r['mode']} | not run: {r['error'][:90]} | | | | | | | |")
            continue
        train_ratio = base["train_s"] / r["train_s"] if base else float("nan")
        fwd_ratio = base["forward_s"] / r["forward_s"] if base else float("nan")
        diff = (f"{r['loss_diff']:.1e} | {r['grad_rel_diff']:.1e}" if "loss_diff" in r else "- | -")
        lines.append(f"| {name} | {r['mode']} | {1e3 * r['forward_s']:.1f} | {1e3 * r['train_s']:.1f} | "
                     f"{train_ratio:.2f}x | {fwd_ratio:.2f}x | {r['peak_mib']:.0f} | {r['spikes_per_step']:.2f} | "
                     f"{diff} |")
    return "\n".join(lines) + "\n"


def _plot(rows, out: Path, title: str):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ok = [r for r in rows if "error" not in r]
    if not ok:
        return
    labels = [f"{r['path']}" + ("" if r["mode"] == "eager" else f" [{r['mode']}]") for r in ok]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(ok) + 1.5))
    y = range(len(ok))
    ax.barh([i + 0.2 for i in y], [1e3 * r["train_s"] for r in ok], height=0.4, label="training step")
    ax.barh([i - 0.2 for i in y], [1e3 * r["forward_s"] for r in ok], height=0.4, label="forward")
    ax.set_yticks(list(y), labels)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("time [ms] (log)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--steps", type=int, default=784)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--paper-size", action="store_true", help="the issue's size: h=256, T=784, batch 256")
    p.add_argument("--paths", default=",".join(ALL_PATHS), help="comma-separated subset of: " + ", ".join(ALL_PATHS))
    p.add_argument("--modes", default="eager", help="eager,compile,cuda_graph (extra modes: BRF recurrent only)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: small per-step kernels gain nothing from more, and shared "
                        "machines make multi-threaded timings noisy)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--input-scale", type=float, default=1.0, help="inputs are uniform in [0, input_scale)")
    p.add_argument("--task", default="smnist", choices=sorted(TASKS),
                   help="network and sequence length: smnist (1-256-10, T=784) or ecg (4-36-6, T=1300)")
    p.add_argument("--suite", action="store_true",
                   help="S-MNIST and ECG at each of --batches, paths " + ",".join(SUITE_PATHS) + " (or --paths)")
    p.add_argument("--batches", default="16,256", help="batch sizes of --suite (comma-separated)")
    p.add_argument("--out", default=str(HERE / "results"))
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--path", help=argparse.SUPPRESS)
    p.add_argument("--mode", default="eager", help=argparse.SUPPRESS)
    p.add_argument("--dump", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0

    import torch
    from tqdm import tqdm
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.suite:
        return _suite(args, p)
    if args.task != "smnist":
        _, args.hidden, _, args.steps = TASKS[args.task]
    if args.paper_size:
        args.hidden, args.steps, args.batch = 256, 784, 256
    paths = [s.strip() for s in args.paths.split(",") if s.strip()]
    unknown = set(paths) - set(ALL_PATHS)
    if unknown:
        p.error(f"unknown --paths {sorted(unknown)}; choose from {', '.join(ALL_PATHS)}")
    if args.device == "cpu" and "ff-triton" in paths:
        paths.remove("ff-triton")         # Triton's CPU interpreter is a test harness, not a fast path
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    jobs = [(path, "eager") for path in paths]
    jobs += [(path, mode) for mode in modes if mode != "eager" for path in paths if path in BRF_RECURRENT]

    device_name = (torch.cuda.get_device_name(0) if args.device == "cuda" else
                   f"CPU ({os.cpu_count()} cores visible, {args.threads} thread(s))")
    rows, dumps = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for path, mode in tqdm(jobs, desc="paths", unit="path"):
            dumps[(path, mode)] = Path(tmp) / f"{path}-{mode}.pt"
            rows.append(_run_worker(path, mode, args, dumps[(path, mode)]))
            tqdm.write(json.dumps({k: v for k, v in rows[-1].items() if k != "train_s_all"}))
        _compare(rows, dumps)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = args.device + ("-paper" if args.paper_size else "")
    table = _table(rows, args, device_name)
    (out / f"{stem}.md").write_text(table)
    (out / f"{stem}.json").write_text(json.dumps(dict(args={k: v for k, v in vars(args).items()
                                                             if k not in ("worker", "path", "mode", "dump")},
                                                       device=device_name, rows=rows), indent=1))
    _plot(rows, out / f"{stem}.png", f"BRF S-MNIST network, T={args.steps}, batch {args.batch}: {device_name}")
    print(table)
    print(f"wrote {out / (stem + '.md')}, {out / (stem + '.json')}, {out / (stem + '.png')}")
    return 0


def _suite(args, parser) -> int:
    """S-MNIST and ECG at several batch sizes: each path's time, its ratio to the floor and to the plain loop."""
    import torch
    from tqdm import tqdm
    explicit = "--paths" in " ".join(sys.argv)
    paths = [s.strip() for s in args.paths.split(",") if s.strip()] if explicit else list(SUITE_PATHS)
    unknown = set(paths) - set(ALL_PATHS)
    if unknown:
        parser.error(f"unknown --paths {sorted(unknown)}; choose from {', '.join(ALL_PATHS)}")
    batches = [int(b) for b in args.batches.split(",") if b.strip()]
    device_name = (torch.cuda.get_device_name(0) if args.device == "cuda" else
                   f"CPU ({os.cpu_count()} cores visible, {args.threads} thread(s))")
    rows = []
    configs = [(task, batch) for task in ("smnist", "ecg") for batch in batches]
    with tempfile.TemporaryDirectory() as tmp:
        for task, batch in tqdm(configs, desc="configs", unit="config"):
            sub = argparse.Namespace(**vars(args))
            sub.task, sub.batch = task, batch
            _, sub.hidden, _, sub.steps = TASKS[task]
            dumps, config_rows = {}, []
            for path in paths:
                dumps[(path, "eager")] = Path(tmp) / f"{task}-{batch}-{path}.pt"
                config_rows.append(_run_worker(path, "eager", sub, dumps[(path, "eager")]))
                tqdm.write(json.dumps({k: v for k, v in config_rows[-1].items() if k != "train_s_all"}))
            _compare(config_rows, dumps)
            rows += config_rows
    table = _suite_table(rows, args, device_name)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{args.device}-suite"
    (out / f"{stem}.md").write_text(table)
    (out / f"{stem}.json").write_text(json.dumps(dict(args={k: v for k, v in vars(args).items()
                                                             if k not in ("worker", "path", "mode", "dump")},
                                                       device=device_name, rows=rows), indent=1))
    print(table)
    print(f"wrote {out / (stem + '.md')}, {out / (stem + '.json')}")
    return 0


def _suite_table(rows, args, device_name: str) -> str:
    names = {"smnist": "S-MNIST 1-256-10, T=784", "ecg": "ECG-QTDB 4-36-6, T=1300"}
    lines = [f"# BRF training-step benchmark, compiled CPU kernels: {device_name}", "",
             f"float32; {args.threads} CPU thread(s); best of {args.repeats} after {args.warmup} warm-up run(s); "
             "all rows of one table from one run. Training step = forward + full BPTT + Adam. Floor = the "
             "layer's matmuls alone (forward: T dependent (B x (m+h))((m+h) x h) matmuls; training step: three "
             "such passes). 'x floor' = time / floor time (lower is better, 1.0 = the floor); 'vs plain' = plain "
             "loop time / time (higher is faster).", "",
             "| network | batch | path | forward ms | fwd x floor | fwd vs plain | train step ms | train x floor | "
             "train vs plain | max rel grad diff |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for task in ("smnist", "ecg"):
        for batch in sorted({r["batch"] for r in rows if r.get("task") == task}):
            group = [r for r in rows if r.get("task") == task and r.get("batch") == batch]
            ok = {r["path"]: r for r in group if "error" not in r}
            floor, plain = ok.get("floor"), ok.get("brf-plain")
            for r in group:
                name = DESCRIPTIONS.get(r["path"], r["path"])
                if "error" in r:
                    lines.append(f"| {names[task]} | {batch} | {name} | not run: {r['error'][:80]} | | | | | | |")
                    continue

                def ratio(ref, key, inverse=False):
                    if ref is None:
                        return "-"
                    value = ref[key] / r[key] if inverse else r[key] / ref[key]
                    return f"{value:.2f}x"
                diff = f"{r['grad_rel_diff']:.1e}" if "grad_rel_diff" in r else "-"
                lines.append(f"| {names[task]} | {batch} | {name} | {1e3 * r['forward_s']:.1f} | "
                             f"{ratio(floor, 'forward_s')} | {ratio(plain, 'forward_s', True)} | "
                             f"{1e3 * r['train_s']:.1f} | {ratio(floor, 'train_s')} | "
                             f"{ratio(plain, 'train_s', True)} | {diff} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
