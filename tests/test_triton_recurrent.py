"""The persistent Triton kernels of the recurrent layer (brf_plugins/kernels/_triton_recurrent.py).

* interpreter tests (CPU, ``TRITON_INTERPRET=1`` in a subprocess: it must be set before Triton is imported): every
  BRF ablation, RF reset and BHRF variant, both forms of the recurrent ``tl.dot`` (W in registers / chunked
  through the output buffer), the feed-forward form, input gain, the multi Gaussian, broadcast state and
  parameters, against the torch path (:class:`RecurrentCellSequence`) and the core loop (``neuron_step`` with
  ``backend="reference"``) in float64: spikes identical, states to 1e-12, gradients to 1e-10 relative;
* ``test_aot_*``: every kernel configuration compiled ahead of time to a cubin for sm_80 and sm_90 (no GPU needed:
  ``triton.compile`` with a ``GPUTarget`` and the ptxas shipped in the Triton wheel), with a table of registers and
  spills;
* ``@pytest.mark.gpu``: the real kernels on CUDA against the torch path.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch.nn import functional as nnf

from brf_plugins import functional as F
from brf_plugins.kernels import spec_of
from brf_plugins.kernels._autograd import RecurrentCellSequence
from brf_plugins.kernels._torch_cells import neuron_params
from brf_plugins.neurons import NeuronConfig, neuron_step
from brf_plugins.surrogate import multi_gaussian

from .conftest import REPO_ROOT, subprocess_env

# (kind, options) for every cell variant the kernels implement.
VARIANTS = ([("brf", dict(divergence_boundary=a, refractory=b, smooth_reset=c))
             for a, b, c in itertools.product((True, False), repeat=3)]
            + [("rf", dict(reset=r)) for r in F.RF_RESETS] + [("bhrf", dict(variant=v)) for v in F.BHRF_VARIANTS])
VARIANT_IDS = [f"{k}-{'-'.join(f'{n}={int(v) if isinstance(v, bool) else v}' for n, v in o.items())}"
               for k, o in VARIANTS]


# ------------------------------------------------------------------------------------------------ the case


def make_case(kind, options, dtype=torch.float64, steps=12, batch=3, m=2, h=8, recurrent=True, device="cpu",
              scalar_params=False, broadcast_state=False, seed=0):
    """``(cfg, inputs)``: a neuron configuration and the leaf tensors ``x, W, omega, b_offset, z0, u0, v0[, q0]``
    of a recurrent layer whose neurons both spike and stay silent."""
    gen = torch.Generator().manual_seed(seed)
    rand = lambda *s: torch.rand(s, generator=gen, dtype=dtype)      # noqa: E731
    randn = lambda *s: torch.randn(s, generator=gen, dtype=dtype)    # noqa: E731
    cfg = NeuronConfig(kind, **options)
    x = rand(steps, batch, m) * 150
    width = m + h if recurrent else m
    weight = randn(h, width) * 0.7
    if recurrent:
        weight[:, m:] *= 60.0 / h ** 0.5
    n_params = () if scalar_params else (h,)
    high = 99.0 if kind == "brf" else 60.0
    omega = (rand(*n_params) * (high - 5.0) + 5.0) * torch.sign(randn(*n_params))
    b_offset = randn(*n_params) * 0.5
    if kind == "brf" and not scalar_params:
        omega[0] = 150.0                     # beyond 1/dt: clamped, no gradient
    state_shape = (1, h) if broadcast_state else (batch, h)
    z0 = (rand(*state_shape) > 0.5).to(dtype)
    u0, v0 = randn(*state_shape), randn(*state_shape)
    state = [z0, u0, v0] + ([randn(*state_shape).abs()] if kind != "rf" else [])
    leaves = [x, weight, omega, b_offset] + state
    return cfg, [t.to(device).requires_grad_() for t in leaves]


def layer_function(function, cfg, inputs, recurrent=True):
    """The layer through an autograd Function with the RecurrentCellSequence contract (the torch path gets the
    initial state expanded to the batch, the Triton Function as given: it reduces broadcast gradients itself)."""
    spec = spec_of(cfg)
    x, weight, omega, b_offset, *state = inputs
    pa, pb = neuron_params(spec, omega, b_offset)
    if function is RecurrentCellSequence:
        state = [s.expand(x.shape[1], weight.shape[0]) for s in state]
    q = state[3] if spec.has_q else None
    return function.apply(spec, recurrent, x, weight, state[0], state[1], state[2], q, pa, pb)


def layer_core(cfg, inputs, recurrent=True):
    """The core loop: ``cat`` + ``linear`` + :func:`neuron_step` on the reference path, as the network runs it."""
    x, weight, omega, b_offset, *state = inputs
    batch, h = x.shape[1], weight.shape[0]
    state = cfg.state_type(*(s.expand(batch, h) for s in state))
    spikes = []
    for x_t in x:
        step_input = torch.cat((x_t, state[0]), dim=1) if recurrent else x_t
        state = neuron_step(cfg, (omega, b_offset), nnf.linear(step_input, weight), state, backend="reference")
        spikes.append(state[0])
    return (torch.stack(spikes),) + tuple(state)


def loss_weights(outputs, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(o.shape, generator=gen, dtype=o.dtype).to(o.device) for o in outputs]


def output_grads(outputs, inputs, weights=None):
    """Gradients of a random weighting of every output with respect to every input."""
    weights = loss_weights(outputs) if weights is None else weights
    loss = sum((o * w).sum() for o, w in zip(outputs, weights))
    return torch.autograd.grad(loss, inputs, allow_unused=True)


def compare(got, want, inputs, got_grads=None):
    """``dict``: spikes and final spikes identical, largest state error (relative to the state's largest value, or
    absolute below 1), largest relative gradient error over all inputs (``got_grads``: ``got``'s gradients if
    already computed)."""
    got_grads = output_grads(got, inputs) if got_grads is None else got_grads
    grad_err = 0.0
    for g, w in zip(got_grads, output_grads(want, inputs)):
        if w is None or not bool(w.ne(0).any()):
            assert g is None or not bool(g.ne(0).any())
            continue
        grad_err = max(grad_err, float((g - w).abs().max() / w.abs().max()))
    return dict(spikes_equal=bool(torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])),
                spike_fraction=float(want[0].detach().mean()),
                state_err=max(float((a - b).detach().abs().max() / b.detach().abs().max().clamp_min(1.0))
                              for a, b in zip(got[2:], want[2:])),
                grad_err=grad_err)


# ------------------------------------------------------------------------------------- interpreter (CPU)

# Launch configurations forced in the interpreter: W_rec^T in registers, and the chunked read-back with partial
# chunks (h = 8 padded to 16, chunks of 4) and a partial last block of rows (B = 3, 2 rows per program).
FORMS = {"resident": True, "chunked": False}


def forced_config(form, h):
    from brf_plugins.kernels import _triton_recurrent as tr
    block_h = max(16, 1 << (h - 1).bit_length())
    return tr.Config(2, block_h, block_h if FORMS[form] else 4, FORMS[form], 4, 1)

_SCRIPT = textwrap.dedent("""
    import json, sys
    import torch
    sys.path.insert(0, {repo!r})
    from brf_plugins.kernels import _triton_recurrent as tr
    from brf_plugins.kernels._autograd import RecurrentCellSequence
    import tests.test_triton_recurrent as tt
    assert tr.INTERPRETED
    results = []
    for index, form, extra in {cases!r}:
        kind, options = tt.VARIANTS[index]
        options = dict(options, **extra.pop("cfg", {{}}))
        if "multi" in extra:
            options["spike_fn"] = tt.multi_gaussian()
            extra.pop("multi")
        tr.CONFIG_OVERRIDE = tt.forced_config(form, extra.get("h", 8))
        recurrent = extra.get("recurrent", True)
        cfg, inputs = tt.make_case(kind, options, seed=index, **extra)
        tri = tt.layer_function(tr.TritonRecurrentCellSequence, cfg, inputs, recurrent)
        assert type(tri[0].grad_fn).__name__ == "TritonRecurrentCellSequenceBackward"
        tri_grads = tt.output_grads(tri, inputs)
        for name, want in (("torch", tt.layer_function(RecurrentCellSequence, cfg, inputs, recurrent)),
                           ("core", tt.layer_core(cfg, inputs, recurrent))):
            r = tt.compare(tri, want, inputs, tri_grads)
            r.update(case=tt.VARIANT_IDS[index], form=form, extra=repr(extra), against=name)
            results.append(r)
        with torch.no_grad():    # no trace kept: same values
            quiet = tt.layer_function(tr.TritonRecurrentCellSequence, cfg, inputs, recurrent)
        results[-1]["no_grad_equal"] = all(torch.equal(a, b) for a, b in zip(quiet, tri))
    print(json.dumps(results))
""")


def _interpreted(cases, timeout=600):
    pytest.importorskip("triton")
    env = dict(subprocess_env(), TRITON_INTERPRET="1")
    script = _SCRIPT.format(repo=str(REPO_ROOT), cases=list(cases))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(results) == 2 * len(cases)
    for r in results:
        assert r["spikes_equal"], r
        assert 0.02 < r["spike_fraction"] < 0.98, r           # both branches of the spike exercised
        assert r["state_err"] <= 1e-12, r
        assert r["grad_err"] <= 1e-10, r
        assert r.get("no_grad_equal", True), r
    return results


def _cases_every_variant():
    forms = list(FORMS)
    cases = [(i, forms[i % 2], {}) for i in range(len(VARIANTS))]
    brf, rf_hard, bhrf_paper = 0, VARIANT_IDS.index("rf-reset=hard"), VARIANT_IDS.index("bhrf-variant=paper")
    cases += [(brf, "chunked", dict(recurrent=False)), (rf_hard, "resident", dict(recurrent=False)),
              (brf, "chunked", dict(cfg=dict(input_gain=0.6))),
              (bhrf_paper, "resident", dict(cfg=dict(input_gain=1.7))),
              (brf, "resident", dict(multi=True)), (rf_hard, "chunked", dict(multi=True)),
              (brf, "chunked", dict(scalar_params=True, broadcast_state=True)),
              (VARIANT_IDS.index("bhrf-variant=code"), "resident", dict(broadcast_state=True, batch=5, h=13))]
    return cases


def test_interpreter_every_variant_equals_torch_and_core():
    """All 14 cell variants (alternating the two recurrent-dot forms; both for each in the slow test), plus the
    feed-forward form, gains, the multi Gaussian and broadcast shapes: float64 against the torch path and the core loop (about 30 s on 2 cores)."""
    _interpreted(_cases_every_variant())


_NETWORK_SCRIPT = textwrap.dedent("""
    import json, sys
    import torch
    sys.path.insert(0, {repo!r})
    import brf_plugins.kernels as kernels
    from brf_plugins import RecurrentSNN
    from brf_plugins.kernels import _triton_recurrent as tr
    wired = "triton" in getattr(kernels, "RECURRENT_BACKENDS", ())
    if not wired:   # until plan() knows the Triton recurrent path: the fused path runs the Triton Function
        kernels.RecurrentCellSequence = tr.TritonRecurrentCellSequence
    results = []
    for neuron, kw in {cases!r}:
        torch.manual_seed(0)
        net = RecurrentSNN(3, 12, 4, neuron=neuron, omega_init=(10.0, 60.0), b_offset_init=(0.0, 0.5),
                           **kw).double()
        x = torch.rand(40, 5, 3, dtype=torch.float64) * 150
        runs = {{}}
        for backend in ("reference", "triton" if wired else "fused"):
            net.hidden.backend = backend
            net.zero_grad()
            out = net(x, record=True)
            loss = out.readout.square().mean() + out.spike_count * 1e-3 + out.state[0][1].sum() * 1e-2
            loss.backward()
            runs[backend] = (out, float(loss), [p.grad.clone() for p in net.parameters()])
        (ref, loss_ref, g_ref), (tri, loss_tri, g_tri) = runs.values()
        results.append(dict(neuron=neuron, kw=repr(kw), ran=type(tri.hidden_spikes.grad_fn).__name__,
                            spikes_equal=bool(torch.equal(tri.hidden_spikes, ref.hidden_spikes)),
                            spikes=float(ref.spike_count), loss_err=abs(loss_tri - loss_ref) / abs(loss_ref),
                            grad_err=max(float((a - b).abs().max() / b.abs().max()) for a, b in zip(g_tri, g_ref))))
    print(json.dumps(results))
""")


def test_interpreter_network_equals_reference_network():
    """The paper network (RecurrentSNN, LI readout, loss over readout, spike count and final state) with its
    hidden layer on the Triton kernels against ``backend="reference"``, float64: same spikes, loss and
    parameter gradients."""
    pytest.importorskip("triton")
    cases = [("brf", {}), ("rf", dict(rf_reset="hard")), ("bhrf", dict(bhrf_variant="paper")),
             ("brf", dict(input_gain=0.5, refractory=False))]
    env = dict(subprocess_env(), TRITON_INTERPRET="1")
    done = subprocess.run([sys.executable, "-c", _NETWORK_SCRIPT.format(repo=str(REPO_ROOT), cases=cases)],
                          env=env, capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-4000:]
    for r in json.loads(done.stdout.strip().splitlines()[-1]):
        assert r["ran"] == "TritonRecurrentCellSequenceBackward", r
        assert r["spikes_equal"] and r["spikes"] > 0, r
        assert r["loss_err"] <= 1e-12 and r["grad_err"] <= 1e-10, r


@pytest.mark.slow
def test_interpreter_every_variant_both_forms():
    forms = list(FORMS)
    _interpreted([(i, forms[(i + 1) % 2], {}) for i in range(len(VARIANTS))])


@pytest.mark.slow
def test_interpreter_longer_sequences():
    cases = [(i, form, dict(steps=60, batch=9, h=20, m=3)) for i in (0, 9, 12) for form in FORMS]
    _interpreted(cases)


_GRADCHECK_SCRIPT = textwrap.dedent("""
    import sys
    import torch
    sys.path.insert(0, {repo!r})
    from brf_plugins.kernels import SmoothSpike, _triton_recurrent as tr
    import tests.test_triton_recurrent as tt
    tr.CONFIG_OVERRIDE = tr.Config(2, 16, 4, False, 4, 1)
    for kind, options in (("brf", {{}}), ("rf", dict(reset="hard")), ("bhrf", dict(variant="code"))):
        options = dict(options, spike_fn=SmoothSpike())
        cfg, inputs = tt.make_case(kind, options, steps=4, batch=3, m=1, h=3)
        fn = lambda *a: tt.layer_function(tr.TritonRecurrentCellSequence, cfg, list(a))
        assert torch.autograd.gradcheck(fn, tuple(inputs), atol=1e-7, rtol=1e-5), kind
    print("ok")
""")


@pytest.mark.slow
def test_interpreter_gradcheck_smooth_spike():
    """Finite differences of the kernels with the smooth spike (an independent check of the backward)."""
    pytest.importorskip("triton")
    env = dict(subprocess_env(), TRITON_INTERPRET="1")
    done = subprocess.run([sys.executable, "-c", _GRADCHECK_SCRIPT.format(repo=str(REPO_ROOT))], env=env,
                          capture_output=True, text=True, timeout=900, cwd=REPO_ROOT)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-4000:]


def test_supported_reasons():
    pytest.importorskip("triton")
    from brf_plugins.kernels import _triton_recurrent as tr
    spec = spec_of(NeuronConfig("brf"))
    x, w = torch.zeros(3, 2, 1), torch.zeros(4, 5)
    if not tr.INTERPRETED:
        assert "CUDA" in tr.supported(spec, x, w)
    assert "float32 or float64" in tr.supported(spec, x.half(), w.half())
    assert "CellSpec" in tr.supported(None, x, w)
    assert "neither" in tr.supported(spec, x, torch.zeros(4, 7))
    assert "exceed" in tr.supported(spec, x, torch.zeros(tr.MAX_HIDDEN + 1, tr.MAX_HIDDEN + 2))
    for h in (1, 36, 64, 128, 256):
        cfg = tr.config(h, 256, interpreted=False)
        assert cfg.block_h >= h and cfg.block_h % cfg.block_k == 0


# ------------------------------------------------------------------------------------- ahead of time (AOT)

AOT_HIDDEN = (36, 64, 128, 256)
AOT_ARCHS = (80, 90)
AOT_BATCH = 256
_AOT_ROWS = []


def _ptxas_or_skip():
    triton = pytest.importorskip("triton")
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        pytest.skip("TRITON_INTERPRET=1: the kernels are interpreter functions, nothing to compile")
    ptxas = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "ptxas"
    if not ptxas.exists() and not os.environ.get("TRITON_PTXAS_PATH"):
        pytest.skip(f"no ptxas: {ptxas} is absent and TRITON_PTXAS_PATH unset (cannot compile for CUDA)")
    return triton


def _meta_of(kind, options, multi=False):
    from brf_plugins.kernels._triton_ops import _meta
    cfg = NeuronConfig(kind, **options, **({"spike_fn": multi_gaussian()} if multi else {}))
    return _meta(spec_of(cfg))


def aot_compile(kernel, meta, cfg, arch, dtype="fp32", rec=True, grads=(True, False, False)):
    """Compile one kernel configuration to a cubin; returns ``(cubin bytes, registers, spill bytes, shared)``."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from brf_plugins.kernels import _triton_recurrent as tr
    fn = tr.recurrent_forward_kernel if kernel == "forward" else tr.recurrent_backward_kernel
    constexprs = dict(meta, REC=rec, RESIDENT=cfg.resident, BLOCK_B=cfg.block_b, BLOCK_H=cfg.block_h,
                      BLOCK_K=cfg.block_k, PRECISION="ieee")
    if kernel == "backward":
        constexprs.update(HAS_GZ=grads[0], HAS_GZL=grads[1], HAS_GC=grads[2])
    signature = {name: "constexpr" if name in constexprs else f"*{dtype}" if name.endswith("_ptr") else "i32"
                 for name in fn.arg_names}
    log = io.StringIO()
    with _ptxas_log(), contextlib.redirect_stdout(log):
        compiled = triton.compile(ASTSource(fn=fn, signature=signature, constexprs=constexprs),
                                  target=GPUTarget("cuda", arch, 32),
                                  options=dict(num_warps=cfg.num_warps, num_stages=cfg.num_stages,
                                               enable_fp_fusion=False))
    cubin = compiled.asm["cubin"]
    regs, spills = _resources(log.getvalue(), cubin)
    return cubin, regs, spills, compiled.metadata.shared


@contextlib.contextmanager
def _ptxas_log():
    """Have Triton print ptxas' ``-v`` report and compile afresh (a cache hit prints nothing)."""
    from triton import knobs
    saved = knobs.nvidia.dump_ptxas_log, knobs.compilation.always_compile
    knobs.nvidia.dump_ptxas_log, knobs.compilation.always_compile = True, True
    try:
        yield
    finally:
        knobs.nvidia.dump_ptxas_log, knobs.compilation.always_compile = saved


def _resources(log: str, cubin: bytes):
    regs = re.search(r"Used (\d+) registers", log)
    spills = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", log)
    if regs is None:        # no ptxas log (another Triton version): read the cubin's resource usage
        import triton
        tool = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
        path = Path(os.environ.get("TMPDIR", "/tmp")) / f"brf_aot_{os.getpid()}.cubin"
        path.write_bytes(cubin)
        out = subprocess.run([str(tool), "--dump-resource-usage", str(path)], capture_output=True, text=True).stdout
        path.unlink()
        found = re.search(r"REG:(\d+) STACK:(\d+)", out)
        return (int(found.group(1)), int(found.group(2))) if found else (-1, -1)
    return int(regs.group(1)), int(spills.group(1)) + int(spills.group(2)) if spills else 0


def _record(kernel, variant, h, arch, cfg, regs, spills, shared, extra=""):
    _AOT_ROWS.append((kernel, variant + extra, h, f"sm_{arch}", cfg.block_b, cfg.block_h, cfg.block_k,
                      int(cfg.resident), cfg.num_warps, cfg.num_stages, regs, spills, shared))


def _print_table():
    header = ("kernel", "variant", "h", "arch", "BLOCK_B", "BLOCK_H", "BLOCK_K", "resident", "warps", "stages",
              "regs", "spill B", "smem B")
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in _AOT_ROWS:
        print("| " + " | ".join(str(c) for c in row) + " |")
    _AOT_ROWS.clear()


@pytest.mark.parametrize("arch", AOT_ARCHS)
def test_aot_dispatcher_configs_compile_without_spills(arch, capsys):
    """The configurations the Function launches for h in {36, 64, 128, 256} at batch 256 (default BRF, the
    training-step flags: spike gradients in, no final-state gradients), forward and backward, float32: a cubin
    each, no register spills."""
    _ptxas_or_skip()
    from brf_plugins.kernels import _triton_recurrent as tr
    meta = _meta_of("brf", {})
    for h in AOT_HIDDEN:
        cfg = tr.config(h, AOT_BATCH, interpreted=False)
        for kernel in ("forward", "backward"):
            cubin, regs, spills, shared = aot_compile(kernel, meta, cfg, arch)
            assert len(cubin) > 0 and cubin[:4] == b"\x7fELF"
            _record(kernel, "brf", h, arch, cfg, regs, spills, shared)
            assert 0 < regs <= 255
            assert spills == 0, (kernel, h, arch, cfg, regs, spills)
    with capsys.disabled():
        _print_table()


def test_aot_every_cell_variant_compiles(capsys):
    """Every KIND/OPT/flag combination of the cell (BRF refractory x smooth reset, RF resets, BHRF variants),
    forward and backward, at the most register-hungry size (h = 256) for sm_90: a cubin each, no spills."""
    _ptxas_or_skip()
    from brf_plugins.kernels import _triton_recurrent as tr
    cfg = tr.config(256, AOT_BATCH, interpreted=False)
    variants = [("brf", dict(refractory=a, smooth_reset=b)) for a, b in itertools.product((True, False), repeat=2)]
    variants += [(k, o) for k, o in VARIANTS if k != "brf"]
    for kind, options in variants[1:]:      # the default BRF is the dispatcher test's
        meta = _meta_of(kind, options)
        name = f"{kind}-{'-'.join(f'{k}={int(v) if isinstance(v, bool) else v}' for k, v in options.items())}"
        for kernel in ("forward", "backward"):
            cubin, regs, spills, shared = aot_compile(kernel, meta, cfg, 90)
            assert cubin[:4] == b"\x7fELF"
            _record(kernel, name, 256, 90, cfg, regs, spills, shared)
            assert spills == 0, (kernel, name, regs, spills)
    with capsys.disabled():
        _print_table()


@pytest.mark.slow
@pytest.mark.parametrize("arch", AOT_ARCHS)
def test_aot_full_product(arch, capsys):
    """Every variant x recurrent/feed-forward x hidden size, forward and backward; the multi Gaussian for every
    variant at h = 256; every backward gradient-flag combination (z_all / z_T / final-state gradients) at every size
    (about 200 compilations, minutes): each compiles to a cubin; spills are reported, and asserted absent for the
    training-step flags."""
    _ptxas_or_skip()
    from brf_plugins.kernels import _triton_recurrent as tr
    variants = [("brf", dict(refractory=a, smooth_reset=b)) for a, b in itertools.product((True, False), repeat=2)]
    variants += [(k, o) for k, o in VARIANTS if k != "brf"]
    jobs = [(kind, options, False, rec, h, (True, False, False))
            for (kind, options), rec, h in itertools.product(variants, (True, False), AOT_HIDDEN)]
    jobs += [(kind, options, True, True, 256, (True, False, False)) for kind, options in variants]
    jobs += [("brf", {}, False, True, h, grads) for h in AOT_HIDDEN
             for grads in itertools.product((True, False), repeat=3) if grads != (True, False, False)]
    spilled = []
    for kind, options, multi, rec, h, grads in jobs:
        cfg = tr.config(h, AOT_BATCH, interpreted=False)
        meta = _meta_of(kind, options, multi)
        name = f"{kind}{''.join(f'-{int(v) if isinstance(v, bool) else v}' for v in options.values())}" \
               f"{'-multi' if multi else ''}{'' if rec else '-ff'}"
        kernels = ("forward", "backward") if grads == (True, False, False) else ("backward",)
        for kernel in kernels:
            cubin, regs, spills, shared = aot_compile(kernel, meta, cfg, arch, rec=rec, grads=grads)
            assert cubin[:4] == b"\x7fELF"
            flags = "" if kernel == "forward" else "-g" + "".join(str(int(g)) for g in grads)
            _record(kernel, name, h, arch, cfg, regs, spills, shared, flags)
            if spills and grads == (True, False, False):
                spilled.append((kernel, name, h, regs, spills))
    with capsys.disabled():
        _print_table()
    assert not spilled, spilled


def test_aot_float64_compiles():
    """float64 (exact tl.dot in double) compiles too, for the sizes the GPU tests run."""
    _ptxas_or_skip()
    from brf_plugins.kernels import _triton_recurrent as tr
    for h in (8, 64):
        cfg = tr.config(h, 16, interpreted=False)
        for kernel in ("forward", "backward"):
            cubin, *_ = aot_compile(kernel, _meta_of("brf", {}), cfg, 90, dtype="fp64")
            assert cubin[:4] == b"\x7fELF"


# ------------------------------------------------------------------------------------------------- CUDA

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


CUDA_SIZES = ((8, True), (40, True), (150, True), (20, False))   # (h, recurrent): resident, resident, chunked, ff


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("index", range(len(VARIANTS)), ids=VARIANT_IDS)
def test_cuda_float64_equals_torch_path(index):
    """float64 on CUDA (exact tl.dot in double): every variant at one size (rotating through both dot forms and the
    feed-forward form), the default BRF at all of them."""
    from brf_plugins.kernels import _triton_recurrent as tr
    kind, options = VARIANTS[index]
    for h, recurrent in CUDA_SIZES if index == 0 else (CUDA_SIZES[index % len(CUDA_SIZES)],):
        cfg, inputs = make_case(kind, options, steps=30, batch=20, m=3, h=h, recurrent=recurrent, device="cuda",
                                seed=index)
        tri = layer_function(tr.TritonRecurrentCellSequence, cfg, inputs, recurrent)
        r = compare(tri, layer_function(RecurrentCellSequence, cfg, inputs, recurrent), inputs)
        assert r["spikes_equal"] and r["state_err"] <= 1e-11 and r["grad_err"] <= 1e-9, (h, r)


@pytest.mark.gpu
@cuda
def test_cuda_graph_capture_of_the_layer():
    """The Function's launches replay from a CUDA graph (no host copies or syncs inside): same spikes."""
    from brf_plugins.kernels import _triton_recurrent as tr
    cfg, inputs = make_case("brf", {}, dtype=torch.float32, steps=50, batch=32, m=2, h=64, device="cuda")
    eager = layer_function(tr.TritonRecurrentCellSequence, cfg, inputs)
    weights = loss_weights(eager)
    eager_grads = output_grads(eager, inputs, weights)   # compiles both kernels outside the capture
    graph = torch.cuda.CUDAGraph()
    torch.cuda.synchronize()
    with torch.cuda.graph(graph):
        captured = layer_function(tr.TritonRecurrentCellSequence, cfg, inputs)
        captured_grads = output_grads(captured, inputs, weights)
    graph.replay()
    torch.cuda.synchronize()
    assert all(torch.equal(a, b) for a, b in zip(captured, eager))
    assert all(torch.equal(a, b) for a, b in zip(captured_grads, eager_grads))


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("h", [36, 64, 128, 256])
def test_cuda_float32_matches_torch_path(h):
    """float32 at the benchmark sizes: the matmul sums in another order than cuBLAS, so a spike may flip near
    the threshold; short sequences agree spike for spike (then gradients to float32 rounding)."""
    from brf_plugins.kernels import _triton_recurrent as tr
    cfg, inputs = make_case("brf", {}, dtype=torch.float32, steps=20, batch=64, m=4, h=h, device="cuda")
    tri = layer_function(tr.TritonRecurrentCellSequence, cfg, inputs)
    ref = layer_function(RecurrentCellSequence, cfg, inputs)
    agree = float((tri[0] == ref[0]).float().mean())
    assert agree >= 0.999, agree
    if agree == 1.0:
        r = compare(tri, ref, inputs)
        assert r["state_err"] <= 1e-3 and r["grad_err"] <= 1e-3, r


@pytest.mark.gpu
@cuda
def test_cuda_smnist_size_runs():
    """The S-MNIST layer (1-256, T = 784, batch 256) forward and backward: finite, and the first steps agree with
    the torch path."""
    from brf_plugins.kernels import _triton_recurrent as tr
    cfg, inputs = make_case("brf", {}, dtype=torch.float32, steps=784, batch=256, m=1, h=256, device="cuda")
    tri = layer_function(tr.TritonRecurrentCellSequence, cfg, inputs)
    (sum(o.sum() for o in tri)).backward()
    assert all(bool(t.grad.isfinite().all()) for t in inputs)
    short = [t.detach()[:5] if i == 0 else t.detach() for i, t in enumerate(inputs)]
    a = layer_function(tr.TritonRecurrentCellSequence, cfg, short)
    b = layer_function(RecurrentCellSequence, cfg, short)
    assert float((a[0] == b[0]).float().mean()) >= 0.999
