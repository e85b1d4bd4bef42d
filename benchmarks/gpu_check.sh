#!/usr/bin/env bash
# GPU check of brf-plugins, ready for a machine with a CUDA GPU (under 5 minutes):
#
#   1. the GPU tests: `pytest -m gpu` over the whole suite (the feed-forward Triton kernels, CUDA-graph training,
#      the recurrent Triton kernels of tests/test_triton_recurrent.py against the torch path);
#   2. the registers and spills of the recurrent Triton kernels as compiled on this GPU;
#   3. a timing table: one training step (forward + full BPTT + Adam) of S-MNIST (1-256-10, T = 784, batch 256) and
#      ECG (4-36-6, T = 1300, batch 16) for the Triton recurrent path, the fused torch path and the matmul floor,
#      eager and captured in a CUDA graph (brf_plugins.train.capture.make_train_step(mode="cuda_graph")),
#      written to benchmarks/results/gpu.md;
#   4. brf-train on the synthetic task eagerly and with --cuda-graph (the captured training step), wall times
#      appended to gpu.md.
#
# Usage: benchmarks/gpu_check.sh            (PYTHON=... to choose the interpreter; .venv/bin/python if present)
#        GPU_CHECK_SKIP_TESTS=1 benchmarks/gpu_check.sh   (the table only)
# Every part runs under its own time limit; what could not run is listed at the end (and in gpu.md).
set -u
cd "$(dirname "$0")/.."
REPO=$(pwd)
PY=${PYTHON:-}
if [ -z "$PY" ]; then
    if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python; fi
fi
OUT=benchmarks/results/gpu.md
mkdir -p benchmarks/results
START=$(date +%s)
PROBLEMS=()
elapsed() { echo $(( $(date +%s) - START )); }

if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "gpu_check: NO CUDA DEVICE (torch.cuda.is_available() is False): nothing was run."
    printf '# GPU check\n\nNot run: no CUDA device on %s (%s).\n' "$(hostname)" "$(date -u +%F)" > "$OUT"
    exit 2
fi
if [ -n "${TRITON_INTERPRET:-}" ] && [ "${TRITON_INTERPRET}" != "0" ]; then
    echo "gpu_check: unsetting TRITON_INTERPRET (the kernels must be compiled for the GPU)"
    unset TRITON_INTERPRET
fi
"$PY" -c "import torch, triton; print('gpu_check:', torch.cuda.get_device_name(0), '| torch', torch.__version__, '| triton', triton.__version__)" \
    || PROBLEMS+=("triton is not importable: the Triton paths cannot run")

# ------------------------------------------------------------------------------------------------- 1. tests
if [ -z "${GPU_CHECK_SKIP_TESTS:-}" ]; then
    echo "== 1/3 GPU tests: pytest -m gpu ($(elapsed) s) =="
    WORKERS=""
    if "$PY" -c "import xdist" 2>/dev/null; then WORKERS="-n 4"; fi   # parallel Triton compilation
    timeout 170 "$PY" -m pytest tests -m gpu -q -p no:cacheprovider $WORKERS -rfEs 2>&1 | tail -40
    rc=${PIPESTATUS[0]}
    if [ "$rc" = 124 ]; then PROBLEMS+=("pytest -m gpu: stopped after 170 s (time limit)");
    elif [ "$rc" != 0 ]; then PROBLEMS+=("pytest -m gpu: exit status $rc (failures above)"); fi
else
    PROBLEMS+=("GPU tests skipped (GPU_CHECK_SKIP_TESTS set)")
fi

# ------------------------------------------------------------------------------- 2 + 3. registers and table
echo "== 2-3/3 kernel registers and the timing table ($(elapsed) s) =="
BUDGET=$(( 245 - $(elapsed) ))
[ "$BUDGET" -lt 60 ] && BUDGET=60
TABLE_LOG=$(mktemp)
timeout "$BUDGET" "$PY" - "$OUT" "$BUDGET" <<'PYEOF' 2>&1 | tee "$TABLE_LOG"
import copy, os, statistics, sys, time, traceback

import torch
from torch.nn import functional as nnf

sys.path.insert(0, os.getcwd())
from brf_plugins import RecurrentSNN
from brf_plugins.kernels import li_sequence, neuron_params, plan, spec_of
from brf_plugins.train.capture import make_train_step

out_path, budget = sys.argv[1], float(sys.argv[2])
t_start = time.time()
torch.backends.cuda.matmul.allow_tf32 = False     # exact float32 everywhere (the kernels' default too)
torch.backends.cudnn.allow_tf32 = False
dev = torch.device("cuda")
problems, rows, notes = [], [], []
TARGET_MS = 20.0
try:
    from brf_plugins.kernels import _triton_recurrent as tr
except Exception as exc:                           # noqa: BLE001
    tr = None
    problems.append(f"import of the Triton recurrent kernels failed: {exc!r}")


class TritonRecurrentNet(torch.nn.Module):
    """The paper network with its hidden layer through TritonRecurrentCellSequence and the fused LI readout: what
    RecurrentSNN runs once kernels.plan() picks the Triton path for scope "recurrent"."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        net = self.net
        spec = spec_of(net.neuron_config())
        pa, pb = neuron_params(spec, *net.neuron_parameters())
        zeros = x.new_zeros(x.shape[1], net.hidden_size)
        out = tr.TritonRecurrentCellSequence.apply(spec, True, x, net.recurrent_weight(), zeros, zeros, zeros,
                                                   zeros if spec.has_q else None, pa, pb)
        w, bias, tau = net.readout_parameters()
        return li_sequence(nnf.linear(out[0], w, bias), None, tau)


def readout(out):
    return out.readout if hasattr(out, "readout") else out


def loss_fn(out, y):
    return nnf.cross_entropy(readout(out).mean(0), y)


def median_ms(fn, min_iters=3, max_iters=20, seconds=2.0):
    fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    first = time.perf_counter() - t0
    iters = int(max(min_iters, min(max_iters, seconds / max(first, 1e-6))))
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times), iters


def batch(task, b, steps, m, classes, gen):
    if task == "ecg":
        x = (torch.rand(steps, b, m, generator=gen) < 0.1).float()
    else:
        x = torch.rand(steps, b, m, generator=gen)
    return x.to(dev), torch.randint(0, classes, (b,), generator=gen).to(dev)


def floor_step(m, h, b, steps):
    """The layer's matmuls alone: T dependent (B x (m+h)) x ((m+h) x h) products forward, T (B x h) x (h x h)
    backward through the recurrence, one (h x TB) x (TB x (m+h)) weight gradient; preallocated, no elementwise."""
    w = torch.randn(h, m + h, device=dev) * 0.1
    w_t = w.t().contiguous()
    w_rec = w[:, m:].contiguous()
    inputs = torch.randn(steps, b, m + h, device=dev)
    cur = torch.empty(steps, b, h, device=dev)
    g = torch.empty(steps, b, h, device=dev)
    g_w = torch.empty(h, m + h, device=dev)

    def run():
        for t in range(steps):
            torch.mm(inputs[t], w_t, out=cur[t])
        for t in range(steps - 1, 0, -1):
            torch.mm(cur[t], w_rec, out=g[t - 1])
        torch.mm(cur.flatten(0, 1).t(), inputs.flatten(0, 1), out=g_w)
    return run


def graphed(run):
    run()
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        run()
    return graph.replay


def time_left():
    return budget - (time.time() - t_start)


TASKS = [("smnist", 256, (1, 256, 10, 784)), ("ecg", 16, (4, 36, 6, 1300))]
reference_losses = {}
for task, b, (m, h, classes, steps) in TASKS:
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    base = RecurrentSNN.from_task(task).to(dev)
    x, y = batch(task, b, steps, m, classes, gen)
    tensors = (x, base.recurrent_weight()) + tuple(base.neuron_parameters())
    chosen = plan(base.neuron_config(), tensors, scope="recurrent")
    notes.append(f"{task}: kernels.plan(scope='recurrent', backend='auto') picks {chosen.path!r}"
                 + (f" ({chosen.reason})" if chosen.reason else ""))
    if tr is not None:
        why = tr.supported(spec_of(base.neuron_config()), x, base.recurrent_weight())
        if why is not None:
            problems.append(f"{task}: Triton recurrent path not supported: {why}")
    paths = [("triton", lambda net: TritonRecurrentNet(net)) if tr is not None else None,
             ("fused", lambda net: (setattr(net.hidden, "backend", "fused"), net)[1]),
             ("auto (plan)", lambda net: net)]
    losses = {}
    for entry in paths:
        if entry is None:
            continue
        name, make = entry
        if name == "auto (plan)" and chosen.path in ("fused", "triton"):
            continue                                # same as a row above
        for mode in ("eager", "cuda_graph"):
            if name == "auto (plan)" and mode == "cuda_graph":
                continue
            if time_left() < 25:
                problems.append(f"{task} {name} {mode}: not run (time budget)")
                continue
            try:
                net = copy.deepcopy(base)
                model = make(net)
                opt = torch.optim.Adam(net.parameters(), lr=1e-3, capturable=(mode == "cuda_graph"))
                if mode == "eager":
                    first = loss_fn(model(x), y)
                    first.backward()
                    grads = torch.cat([p.grad.flatten() for p in net.parameters()])
                    losses[name] = (float(first), grads)
                    net.zero_grad(set_to_none=True)
                t0 = time.perf_counter()
                step = make_train_step(model, opt, loss_fn, mode=mode, **({"warmup": 2} if mode == "cuda_graph" else {}))
                ms, iters = median_ms(lambda: step(x, y), seconds=min(3.0, max(0.5, time_left() / 12)))
                setup = time.perf_counter() - t0
                rows.append(dict(task=task, batch=b, path=name, mode=mode, ms=ms, iters=iters, setup_s=setup))
                print(f"  {task:6s} b={b:3d} {name:12s} {mode:10s} {ms:9.2f} ms/step ({iters} steps, "
                      f"{setup:.1f} s with warm-up/capture)", flush=True)
            except Exception as exc:                # noqa: BLE001
                problems.append(f"{task} {name} {mode}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
                traceback.print_exc()
            finally:
                torch.cuda.synchronize()
                torch.cuda.empty_cache()
    if "triton" in losses and "fused" in losses:
        (la, ga), (lb, gb) = losses["triton"], losses["fused"]
        notes.append(f"{task}: first-step loss triton {la:.6f} vs fused {lb:.6f} (|d| = {abs(la - lb):.2e}); "
                     f"largest gradient difference / largest gradient = {float((ga - gb).abs().max() / gb.abs().max()):.2e} "
                     "(float32; the matmuls sum in another order, so near-threshold spikes may flip over T steps)")
    for mode in ("eager", "cuda_graph"):
        try:
            run = floor_step(m, h, b, steps)
            fn = run if mode == "eager" else graphed(run)
            ms, iters = median_ms(fn)
            rows.append(dict(task=task, batch=b, path="floor", mode=mode, ms=ms, iters=iters, setup_s=0.0))
            print(f"  {task:6s} b={b:3d} {'floor':12s} {mode:10s} {ms:9.2f} ms/step", flush=True)
        except Exception as exc:                    # noqa: BLE001
            problems.append(f"{task} floor {mode}: {type(exc).__name__}: {exc}")

# Launch-configuration sweep of the Triton layer alone (forward + backward), S-MNIST size: data for config().
sweep = []
if tr is not None and time_left() > 70:
    torch.manual_seed(0)
    m, h, steps, b = 1, 256, 784, 256
    net = RecurrentSNN.from_task("smnist").to(dev)
    spec = spec_of(net.neuron_config())
    x = torch.rand(steps, b, m, device=dev)
    weight = net.recurrent_weight().detach().clone().requires_grad_()
    omega, b_offset = (p.detach().clone().requires_grad_() for p in net.neuron_parameters())
    zeros = x.new_zeros(b, h)
    default = tr.config(h, b)
    candidates = [default] + [c for c in (tr.Config(2, 256, 8, False, 8, 2), tr.Config(8, 256, 8, False, 8, 2),
                                          tr.Config(4, 256, 16, False, 8, 2), tr.Config(4, 256, 8, False, 8, 3),
                                          tr.Config(4, 256, 8, False, 4, 2), tr.Config(16, 256, 8, False, 8, 2))
                              if c != default]

    def layer_step():
        pa, pb = neuron_params(spec, omega, b_offset)
        out = tr.TritonRecurrentCellSequence.apply(spec, True, x, weight, zeros, zeros, zeros, zeros, pa, pb)
        out[0].sum().backward()

    for cfg in candidates:
        if time_left() < 45:
            problems.append(f"config sweep: {cfg} not run (time budget)")
            continue
        tr.CONFIG_OVERRIDE = cfg
        try:
            ms, iters = median_ms(layer_step, seconds=1.0)
            sweep.append((cfg, ms))
            print(f"  sweep {cfg}: {ms:.2f} ms (layer forward + backward)", flush=True)
        except Exception as exc:                    # noqa: BLE001
            problems.append(f"config sweep {cfg}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        finally:
            tr.CONFIG_OVERRIDE = None
            torch.cuda.synchronize()

# Registers and spills of the recurrent kernels as compiled for this GPU.
kernel_rows = []
if tr is not None:
    for fn in (tr.recurrent_forward_kernel, tr.recurrent_backward_kernel):
        try:
            for device_cache in fn.device_caches.values():
                for compiled in device_cache[0].values():
                    compiled._init_handles()
                    c = compiled.metadata
                    kernel_rows.append((fn.__name__, c.num_warps, c.num_stages, compiled.n_regs, compiled.n_spills,
                                        c.shared))
        except Exception as exc:                    # noqa: BLE001
            problems.append(f"registers of {fn.__name__}: {exc!r}")

floors = {(r["task"], r["mode"]): r["ms"] for r in rows if r["path"] == "floor"}
name = torch.cuda.get_device_name(0)
lines = [f"# GPU check: {name}", "",
         f"torch {torch.__version__}, CUDA {torch.version.cuda}; float32, TF32 off; one training step = forward + "
         "full BPTT + Adam; median over the steps shown. Ratio: to the floor (the layer's matmuls alone) in the "
         "same mode.", "",
         "| task | batch | path | mode | ms / step | x floor | steps timed | note |", "|---|---|---|---|---|---|---|---|"]
for r in rows:
    floor = floors.get((r["task"], r["mode"]))
    ratio = f"{r['ms'] / floor:.1f}" if floor and r["path"] != "floor" else ""
    note = ""
    if r["task"] == "smnist" and r["path"] == "triton":
        note = f"target < {TARGET_MS:g} ms: {'met' if r['ms'] < TARGET_MS else 'NOT met'}"
    lines.append(f"| {r['task']} | {r['batch']} | {r['path']} | {r['mode']} | {r['ms']:.2f} | {ratio} | "
                 f"{r['iters']} | {note} |")
if sweep:
    lines += ["", "Triton recurrent layer alone (S-MNIST size, forward + backward, no readout/Adam) per launch "
              "configuration (the first is what `config()` picks):", "",
              "| BLOCK_B | BLOCK_H | BLOCK_K | resident | warps | stages | ms |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {c.block_b} | {c.block_h} | {c.block_k} | {int(c.resident)} | {c.num_warps} | {c.num_stages} | "
              f"{ms:.2f} |" for c, ms in sweep]
if kernel_rows:
    lines += ["", "Recurrent Triton kernels as compiled on this GPU:", "",
              "| kernel | warps | stages | registers | spills (bytes) | shared (bytes) |", "|---|---|---|---|---|---|"]
    lines += [f"| {k} | {w} | {s} | {r} | {sp} | {sh} |" for k, w, s, r, sp, sh in kernel_rows]
lines += ["", "Notes:", ""] + [f"* {n}" for n in notes]
if problems:
    lines += ["", "Could not run:", ""] + [f"* {p}" for p in problems]
open(out_path, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
for p in problems:
    print(f"GPU_CHECK_PROBLEM: {p}")
PYEOF
rc=${PIPESTATUS[0]}
if [ "$rc" = 124 ]; then PROBLEMS+=("timing table: stopped after $BUDGET s (time limit); $OUT may be incomplete");
elif [ "$rc" != 0 ]; then PROBLEMS+=("timing table: exit status $rc"); fi
while IFS= read -r line; do PROBLEMS+=("${line#GPU_CHECK_PROBLEM: }"); done < <(grep '^GPU_CHECK_PROBLEM: ' "$TABLE_LOG")
rm -f "$TABLE_LOG"

# ---------------------------------------------------------------------------- 4. brf-train --cuda-graph
echo "== 4/4 brf-train synthetic, eager and --cuda-graph ($(elapsed) s) =="
printf '\nbrf-train synthetic (16-32-5, T = 100, 5 epochs, BRF) on this GPU:\n\n| mode | wall s | test accuracy %% |\n|---|---|---|\n' >> "$OUT"
for flag in "" "--cuda-graph"; do
    RUN_DIR=$(mktemp -d)
    RES=$(timeout 25 "$PY" -m brf_plugins.train synthetic --device ${GPU_CHECK_DEVICE:-cuda} --neuron brf $flag --no-progress \
          --no-tensorboard --threads 0 --out-dir "$RUN_DIR/run" --json 2>/dev/null | "$PY" -c \
          "import json,sys; t=sys.stdin.read(); r=json.loads(t[t.index('{'):])['brf']; print(f\"{r['wall_seconds']:.1f} | {100*r['test_accuracy']:.2f}\")" 2>/dev/null)
    if [ -n "$RES" ]; then echo "| ${flag:-eager} | $RES |" | tee -a "$OUT";
    else PROBLEMS+=("brf-train synthetic ${flag:-eager} on cuda: failed or over 25 s"); fi
    rm -rf "$RUN_DIR"
done

echo "== done in $(elapsed) s; table: $OUT =="
if [ ${#PROBLEMS[@]} -gt 0 ]; then
    echo "COULD NOT RUN / FAILED:"
    for p in "${PROBLEMS[@]}"; do echo "  - $p"; done
    exit 1
fi
echo "all GPU checks ran."
