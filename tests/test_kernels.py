"""Fused kernels (brf_plugins.kernels) against the plain core (brf_plugins.functional / sequence / network).

Forward values must be bitwise the core's (same operations, same order); gradients must equal autograd through
the core up to the order of float sums (float64: 1e-10 relative; float32: float32 rounding); the hand-derived
backward passes are also checked against finite differences (gradcheck) with a smooth spike function.
"""

import copy
import itertools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from brf_plugins import RecurrentSNN, functional as F, kernels, sequence
from brf_plugins.kernels import SmoothSpike
from brf_plugins.train.capture import make_train_step
from brf_plugins.surrogate import double_gaussian, multi_gaussian

from .conftest import BRF_ABLATIONS, CASE_IDS, CASES

REPO = Path(__file__).resolve().parents[1]


SEQ = {"brf": sequence.brf_sequence, "rf": sequence.rf_sequence, "bhrf": sequence.bhrf_sequence}
STEP_REF = {"brf": F.brf_step, "rf": F.rf_step, "bhrf": F.bhrf_step}
STEP_FUSED = {"brf": kernels.brf_step, "rf": kernels.rf_step, "bhrf": kernels.bhrf_step}


def _option_kwargs(kind, option, ablation):
    if kind == "rf":
        return dict(reset=option)
    if kind == "bhrf":
        return dict(variant=option)
    return dict(ablation)


def _params(h, dtype, kind):
    # Frequencies up to the clamp (BRF) and b' mixing signs: the raw values enter through |.|.
    high = 99.0 if kind == "brf" else 60.0
    omega = (torch.rand(h, dtype=dtype) * (high - 2.0) + 2.0) * torch.sign(torch.randn(h, dtype=dtype))
    b_offset = torch.randn(h, dtype=dtype) * 0.8
    if kind == "brf":
        omega[0] = 150.0                      # beyond 1/dt: clamped, no gradient
    return omega.requires_grad_(), b_offset.requires_grad_()


def _state(kind, batch, h, dtype):
    names = ("u", "v") if kind == "rf" else ("u", "v", "q")
    state = [torch.randn(batch, h, dtype=dtype) for _ in names]
    if kind != "rf":
        state[2] = state[2].abs()
    return [s.requires_grad_() for s in state]


def _step_args(kind, option, ablation, dtype, batch=6, h=7, spike_fn=None):
    current = (torch.randn(batch, h, dtype=dtype) * 150).requires_grad_()
    state = _state(kind, batch, h, dtype)
    omega, b_offset = _params(h, dtype, kind)
    kw = _option_kwargs(kind, option, ablation)
    if spike_fn is not None:
        kw["spike_fn"] = spike_fn
    return current, state, omega, b_offset, kw


def _grads(outputs, inputs, weights):
    loss = sum((o * w).sum() for o, w in zip(outputs, weights))
    return torch.autograd.grad(loss, inputs, allow_unused=True)


def _assert_grads_close(got, want, rtol):
    for g, w in zip(got, want):
        if w is None:
            assert g is None or bool(g.eq(0).all())
            continue
        scale = w.abs().max().clamp_min(1e-30)
        assert float((g - w).abs().max() / scale) <= rtol, float((g - w).abs().max() / scale)


# ------------------------------------------------------------------------------------------------- one step


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("kind,option,ablation", CASES, ids=CASE_IDS)
def test_fused_step_equals_functional(kind, option, ablation, dtype):
    current, state, omega, b_offset, kw = _step_args(kind, option, ablation, dtype)
    ref = STEP_REF[kind](current, *state, omega, b_offset, **kw)
    fused = STEP_FUSED[kind](current, *state, omega, b_offset, backend="fused", **kw)
    assert type(fused) is type(ref)
    assert bool(ref.z.sum() > 0) and bool(ref.z.sum() < ref.z.numel())     # the case exercises both branches
    for a, b in zip(fused, ref):
        assert torch.equal(a, b)                                            # bitwise
    assert type(fused.z.grad_fn).__name__ == "CellStepBackward"
    inputs = [current, *state, omega, b_offset]
    weights = [torch.randn_like(t) for t in ref]
    rtol = 1e-12 if dtype == torch.float64 else 2e-6
    _assert_grads_close(_grads(fused, inputs, weights), _grads(ref, inputs, weights), rtol)


@pytest.mark.parametrize("surrogate", [double_gaussian(), multi_gaussian(), double_gaussian(fgi=True)],
                         ids=["double", "multi", "double-fgi"])
@pytest.mark.parametrize("kind,option", [("brf", ""), ("rf", "hard"), ("bhrf", "code")])
def test_fused_step_surrogates(kind, option, surrogate):
    current, state, omega, b_offset, kw = _step_args(kind, option, {}, torch.float64, spike_fn=surrogate)
    ref = STEP_REF[kind](current, *state, omega, b_offset, **kw)
    fused = STEP_FUSED[kind](current, *state, omega, b_offset, backend="fused", **kw)
    inputs = [current, *state, omega, b_offset]
    weights = [torch.randn_like(t) for t in ref]
    assert all(torch.equal(a, b) for a, b in zip(fused, ref))
    _assert_grads_close(_grads(fused, inputs, weights), _grads(ref, inputs, weights), 1e-12)


@pytest.mark.parametrize("kind,option,ablation", CASES, ids=CASE_IDS)
def test_fused_step_gradcheck(kind, option, ablation):
    """The hand-derived backward against finite differences (smooth spike: the surrogate is the true slope)."""
    current, state, omega, b_offset, kw = _step_args(kind, option, ablation, torch.float64, batch=2, h=3,
                                                     spike_fn=SmoothSpike(double_gaussian()))
    current = (current.detach() / 100).requires_grad_()     # keep the smooth spike in its sloped region
    omega = omega.detach().clamp(-90, 90).requires_grad_()  # away from the clamp's kink

    def fused(*args):
        return tuple(STEP_FUSED[kind](*args, backend="fused", **kw))

    assert torch.autograd.gradcheck(fused, (current, *state, omega, b_offset))
    ref = STEP_REF[kind](current, *state, omega, b_offset, **kw)
    out = fused(current, *state, omega, b_offset)
    assert all(torch.allclose(a, b, rtol=0, atol=1e-14) for a, b in zip(out, ref))


def test_step_fallbacks_and_errors():
    current, state, omega, b_offset, _ = _step_args("brf", "", {}, torch.float64)
    plain = lambda x: (x > 0).to(x.dtype)                                       # noqa: E731
    out = kernels.brf_step(current, *state, omega, b_offset, spike_fn=plain)  # auto: the core
    assert torch.equal(out.u, F.brf_step(current, *state, omega, b_offset, spike_fn=plain).u)
    with pytest.raises(ValueError, match="spike_fn"):
        kernels.brf_step(current, *state, omega, b_offset, spike_fn=plain, backend="fused")
    with pytest.raises(ValueError, match="backend"):
        kernels.brf_step(current, *state, omega, b_offset, backend="fast")
    with pytest.raises(ValueError, match="mix dtypes"):
        kernels.brf_step(current, *state, omega.float(), b_offset, backend="fused")
    theta = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)      # a learnable threshold: the core
    out = kernels.brf_step(current, *state, omega, b_offset, theta=theta)
    assert torch.autograd.grad(out.z.sum() + out.u.sum(), theta)[0].abs() > 0
    half = [t.detach().bfloat16() for t in (current, *state, omega, b_offset)]
    auto = kernels.brf_step(*half)
    assert auto.z.grad_fn is None and auto.u.dtype == torch.bfloat16


# --------------------------------------------------------------------------------------------- sequences


def _sequence_case(kind, option, ablation, dtype, steps=60, batch=3, h=5):
    currents = (torch.randn(steps, batch, h, dtype=dtype) * 150 + 40).requires_grad_()
    state = tuple(s.detach().mul(0.3).requires_grad_() for s in _state(kind, batch, h, dtype))
    omega, b_offset = _params(h, dtype, kind)
    return currents, state, omega, b_offset, _option_kwargs(kind, option, ablation)


def _run_sequence(kind, backend, currents, state, omega, b_offset, kw):
    z, final = SEQ[kind](currents, state, omega=omega, b_offset=b_offset, backend=backend, **kw)
    return (z,) + tuple(final)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("kind,option,ablation", CASES, ids=CASE_IDS)
def test_fused_sequence_equals_reference(kind, option, ablation, dtype):
    currents, state, omega, b_offset, kw = _sequence_case(kind, option, ablation, dtype)
    ref = _run_sequence(kind, "reference", currents, state, omega, b_offset, kw)
    fused = _run_sequence(kind, "fused", currents, state, omega, b_offset, kw)
    assert type(fused[0].grad_fn).__name__ == "CellSequenceBackward"
    assert bool(ref[0].sum() > 0)
    for a, b in zip(fused, ref):
        assert torch.equal(a, b)
    inputs = [currents, *state, omega, b_offset]
    weights = [torch.randn_like(t) for t in ref]
    rtol = 1e-10 if dtype == torch.float64 else 1e-4
    _assert_grads_close(_grads(fused, inputs, weights), _grads(ref, inputs, weights), rtol)


def test_sequence_auto_backend_and_fallbacks():
    currents, state, omega, b_offset, kw = _sequence_case("brf", "", {}, torch.float64, steps=10)
    z, _ = sequence.brf_sequence(currents, state, omega=omega, b_offset=b_offset)
    expected = "CPUCellSequenceBackward" if kernels.compiled_status()[0] else "CellSequenceBackward"
    assert type(z.grad_fn).__name__ == expected                     # auto on CPU: compiled where built, else fused
    z, _ = sequence.brf_sequence(currents, state, omega=omega, b_offset=b_offset, backend="reference")
    assert type(z.grad_fn).__name__ == "StackBackward0"
    plain = lambda x: (x > 0).to(x.dtype)                              # noqa: E731
    z, _ = sequence.brf_sequence(currents, state, omega=omega, b_offset=b_offset, spike_fn=plain)
    assert type(z.grad_fn).__name__ != "CellSequenceBackward"
    with pytest.raises(ValueError, match="spike_fn"):
        sequence.rf_sequence(currents, state[:2], omega=omega, b_offset=b_offset, spike_fn=plain, backend="fused")
    with pytest.raises(ValueError, match="backend"):
        sequence.bhrf_sequence(currents, state, omega=omega, b_offset=b_offset, backend="cuda")
    with pytest.raises(ValueError, match="variant"):
        sequence.bhrf_sequence(currents, state, omega=omega, b_offset=b_offset, variant="other")
    with pytest.raises(ValueError, match="T >= 1"):  # issue 8: T = 0 is rejected, not an empty result
        sequence.brf_sequence(currents[:0], state, omega=omega, b_offset=b_offset)


def test_sequence_without_gradients_and_broadcast_parameters():
    currents = torch.randn(30, 2, 4) * 200
    with torch.no_grad():
        a = sequence.brf_sequence(currents, omega=torch.tensor(20.0), b_offset=torch.tensor(0.3), backend="fused")
    b = sequence.brf_sequence(currents, omega=torch.tensor(20.0), b_offset=torch.tensor(0.3), backend="reference")
    assert torch.equal(a[0], b[0]) and torch.equal(a[1][2], b[1][2])
    omega = torch.tensor(20.0, requires_grad=True)
    z, _ = sequence.brf_sequence(currents, omega=omega, b_offset=torch.tensor(0.3), backend="fused")
    g_fused, = torch.autograd.grad(z.sum(), omega)
    z, _ = sequence.brf_sequence(currents, omega=omega, b_offset=torch.tensor(0.3), backend="reference")
    g_ref, = torch.autograd.grad(z.sum(), omega)
    assert g_fused.shape == () and torch.allclose(g_fused, g_ref, rtol=1e-4)


def test_li_sequence_equals_li_step():
    currents = torch.randn(40, 3, 4, dtype=torch.float64, requires_grad=True)
    tau = (torch.rand(4, dtype=torch.float64) * 20 + 5).requires_grad_()
    o0 = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    for start in (None, o0):
        o, outs = start, []
        for c in currents:
            o = F.li_step(c, torch.zeros_like(c) if o is None else o, tau)
            outs.append(o)
        ref = torch.stack(outs)
        fused = kernels.li_sequence(currents, start, tau)
        assert torch.equal(fused, ref)
        inputs = [currents, tau] + ([o0] if start is not None else [])
        w = torch.randn_like(ref)
        _assert_grads_close(_grads([fused], inputs, [w]), _grads([ref], inputs, [w]), 1e-12)
    assert torch.autograd.gradcheck(lambda c, t, o: kernels.li_sequence(c, o, t), (currents[:5], tau, o0))


# ----------------------------------------------------------------------------------------------- network


def _network_pair(neuron, dtype, **kw):
    net = RecurrentSNN(3, 12, 4, neuron=neuron, omega_init=(10.0, 60.0), b_offset_init=(0.0, 0.5), **kw).to(dtype)
    return net


def _train_outputs(net, x, backend, state=None, record=True, spike_hook=None):
    net.hidden.backend = backend
    net.zero_grad()
    out = net(x, state=state, record=record, spike_hook=spike_hook)
    loss = out.readout.square().mean() + out.spike_count * 1e-3 + out.state[0][1].sum() * 1e-2
    loss.backward()
    return out, loss.detach(), [p.grad.clone() for p in net.parameters()]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("neuron,kw", [("brf", {}), ("brf", dict(refractory=False, smooth_reset=False)),
                                       ("rf", {}), ("rf", dict(rf_reset="hard")), ("bhrf", {}),
                                       ("bhrf", dict(bhrf_variant="paper"))])
def test_network_fused_equals_reference(neuron, kw, dtype):
    net = _network_pair(neuron, dtype, **kw)
    x = torch.rand(80, 5, 3, dtype=dtype) * 150
    ref, loss_ref, grads_ref = _train_outputs(net, x, "reference")
    fast, loss_fast, grads_fast = _train_outputs(net, x, "fused")   # the compiled path: tests/test_cpu_kernel.py
    assert type(fast.hidden_spikes.grad_fn).__name__ == "RecurrentCellSequenceBackward"
    assert float(ref.spike_count.detach()) > 0
    assert torch.equal(fast.hidden_spikes, ref.hidden_spikes)
    assert all(torch.equal(a, b) for a, b in zip(fast.state[0], ref.state[0]))
    eps = 1e-12 if dtype == torch.float64 else 1e-5
    assert torch.allclose(fast.readout, ref.readout, rtol=eps, atol=eps)
    assert torch.allclose(loss_fast, loss_ref, rtol=eps, atol=0)
    _assert_grads_close(grads_fast, grads_ref, 1e-10 if dtype == torch.float64 else 1e-4)


def test_network_state_hook_and_opt_out():
    net = _network_pair("brf", torch.float64)
    x = torch.rand(40, 2, 3, dtype=torch.float64) * 150
    with torch.no_grad():
        first = net(x[:20])
    ref, loss_ref, g_ref = _train_outputs(net, x[20:], "reference", state=first.state)
    fast, loss_fast, g_fast = _train_outputs(net, x[20:], "fused", state=first.state)
    assert torch.equal(fast.hidden_spikes, ref.hidden_spikes)
    _assert_grads_close(g_fast, g_ref, 1e-10)
    # A spike hook runs the step loop, still with the fused neuron step.
    hook = lambda t, z: z * (t % 3 != 0)                                  # noqa: E731
    ref, _, g_ref = _train_outputs(net, x, "reference", spike_hook=hook)
    fast, _, g_fast = _train_outputs(net, x, "auto", spike_hook=hook)
    assert torch.equal(fast.hidden_spikes, ref.hidden_spikes)
    _assert_grads_close(g_fast, g_ref, 1e-10)
    step_state = net.hidden(x[0])
    assert type(step_state[0].grad_fn).__name__ in ("CellStepBackward", "CPUCellStepBackward")  # one node
    net.hidden.backend = "reference"
    assert type(net.hidden(x[0])[0].grad_fn).__name__ not in ("CellStepBackward", "CPUCellStepBackward")
    assert "backend='reference'" in repr(net.hidden)
    alif = RecurrentSNN(3, 8, 2, neuron="alif")
    assert alif(torch.rand(5, 2, 3)).readout.shape == (5, 2, 2)      # auto: no ALIF kernel, core loop
    alif.hidden.backend = "fused"
    with pytest.raises(ValueError, match="ALIF"):
        alif(torch.rand(5, 2, 3))
    with pytest.raises(ValueError, match="backend"):
        RecurrentSNN(3, 8, 2, backend="cuda")
    with pytest.raises(ValueError, match="backend='triton' cannot run"):     # on CPU without the interpreter
        RecurrentSNN(3, 8, 2, backend="triton")(torch.rand(5, 2, 3))


# ---------------------------------------------------------------------------------------------- training


def _loss(out, target):
    return torch.nn.functional.cross_entropy(out.readout.mean(0), target)


def test_make_train_step_eager_equals_manual_loop():
    net = _network_pair("brf", torch.float64)
    manual = copy.deepcopy(net)
    manual.hidden.backend = "reference"
    opt_a = torch.optim.Adam(net.parameters(), lr=1e-2)
    opt_b = torch.optim.Adam(manual.parameters(), lr=1e-2)
    step = make_train_step(net, opt_a, _loss, mode="eager")
    for _ in range(3):
        x, y = torch.rand(30, 4, 3, dtype=torch.float64) * 150, torch.randint(0, 4, (4,))
        loss = step(x, y)
        opt_b.zero_grad()
        ref = _loss(manual(x), y)
        ref.backward()
        opt_b.step()
        assert loss.requires_grad is False and torch.allclose(loss, ref.detach(), rtol=1e-10)
    for p, q in zip(net.parameters(), manual.parameters()):
        assert torch.allclose(p, q, rtol=1e-9, atol=1e-12)


def test_make_train_step_errors():
    net = _network_pair("brf", torch.float32)
    opt = torch.optim.Adam(net.parameters())
    with pytest.raises(ValueError, match="mode"):
        make_train_step(net, opt, _loss, mode="jit")
    with pytest.raises(TypeError, match="optimizer"):
        make_train_step(net, None, _loss)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            make_train_step(net, opt, _loss, mode="cuda_graph")


@pytest.mark.slow
def test_make_train_step_compile_equals_eager():
    """torch.compile of forward + loss (needs a C++ compiler; about 2 minutes of compilation on 2 cores)."""
    net = _network_pair("brf", torch.float64)
    twin = copy.deepcopy(net)
    opt_a = torch.optim.Adam(net.parameters(), lr=1e-2)
    opt_b = torch.optim.Adam(twin.parameters(), lr=1e-2)
    eager = make_train_step(net, opt_a, _loss, mode="eager")
    compiled = make_train_step(twin, opt_b, _loss, mode="compile")
    x, y = torch.rand(6, 4, 3, dtype=torch.float64) * 150, torch.randint(0, 4, (4,))
    for _ in range(2):
        assert torch.allclose(eager(x, y), compiled(x, y), rtol=1e-10)
    for p, q in zip(net.parameters(), twin.parameters()):
        assert torch.allclose(p, q, rtol=1e-9, atol=1e-12)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_make_train_step_cuda_graph_equals_eager():
    net = RecurrentSNN.from_task("smnist").cuda()
    twin = copy.deepcopy(net)
    opt_a = torch.optim.Adam(net.parameters(), lr=1e-3, capturable=True)
    opt_b = torch.optim.Adam(twin.parameters(), lr=1e-3, capturable=True)
    eager = make_train_step(net, opt_a, _loss, mode="eager")
    graphed = make_train_step(twin, opt_b, _loss, mode="cuda_graph")
    for _ in range(3):
        x, y = torch.rand(100, 8, 1, device="cuda"), torch.randint(0, 10, (8,), device="cuda")
        assert torch.allclose(eager(x, y), graphed(x, y), rtol=1e-5)
    for p, q in zip(net.parameters(), twin.parameters()):
        assert torch.allclose(p, q, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="static"):
        graphed(torch.rand(50, 8, 1, device="cuda"), y)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("kind,option,ablation", CASES, ids=CASE_IDS)
def test_triton_cuda_equals_reference(kind, option, ablation):
    currents, state, omega, b_offset, kw = _sequence_case(kind, option, ablation, torch.float32)
    args = [t.detach().cuda().requires_grad_() for t in (currents, *state, omega, b_offset)]
    currents, state, omega, b_offset = args[0], tuple(args[1:-2]), args[-2], args[-1]
    ref = _run_sequence(kind, "reference", currents, state, omega, b_offset, kw)
    tri = _run_sequence(kind, "triton", currents, state, omega, b_offset, kw)
    assert all(torch.equal(a, b) for a, b in zip(tri, ref))
    weights = [torch.randn_like(t) for t in ref]
    _assert_grads_close(_grads(tri, args, weights), _grads(ref, args, weights), 1e-4)


# --------------------------------------------------------------------------------- Triton (interpreter)

_TRITON_SCRIPT = textwrap.dedent("""
    import itertools, json, sys
    import torch
    sys.path.insert(0, {repo!r})
    import tests.test_kernels as tk
    from brf_plugins import kernels
    assert kernels.triton_status()[0], kernels.triton_status()
    results = []
    for index in {cases!r}:
        kind, option, ablation = tk.CASES[index]
        for dtype in (torch.float64, torch.float32):
            torch.manual_seed(index)
            currents, state, omega, b_offset, kw = tk._sequence_case(kind, option, ablation, dtype, steps=25)
            ref = tk._run_sequence(kind, "reference", currents, state, omega, b_offset, kw)
            tri = tk._run_sequence(kind, "triton", currents, state, omega, b_offset, kw)
            assert type(tri[0].grad_fn).__name__ == "TritonCellSequenceBackward"
            inputs = [currents, *state, omega, b_offset]
            weights = [torch.randn_like(t) for t in ref]
            g_tri, g_ref = tk._grads(tri, inputs, weights), tk._grads(ref, inputs, weights)
            err = max(float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))
                      for a, b in zip(g_tri, g_ref) if b is not None)
            results.append(dict(case=tk.CASE_IDS[index], dtype=str(dtype), spikes=float(ref[0].sum()),
                                equal=all(torch.equal(a, b) for a, b in zip(tri, ref)), grad_err=err))
    print(json.dumps(results))
""")


def _triton_interpreted(cases):
    pytest.importorskip("triton")
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    script = _TRITON_SCRIPT.format(repo=str(REPO), cases=list(cases))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600,
                          cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(results) == 2 * len(cases)
    for r in results:
        assert r["equal"], r
        assert r["spikes"] > 0, r
        assert r["grad_err"] <= (1e-10 if r["dtype"] == "torch.float64" else 1e-4), r


def test_triton_interpreter_equals_reference():
    """The Triton kernels on CPU through Triton's interpreter: one BRF, one RF (hard reset), one BHRF case."""
    _triton_interpreted([0, CASE_IDS.index("rf-hard-"), CASE_IDS.index("bhrf-code-")])


@pytest.mark.slow
def test_triton_interpreter_all_variants():
    _triton_interpreted(range(len(CASES)))


def test_triton_backend_needs_cuda_or_interpreter():
    pytest.importorskip("triton")
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0") or torch.cuda.is_available():
        pytest.skip("only meaningful on a CPU-only machine without the interpreter")
    with pytest.raises(ValueError, match="TRITON_INTERPRET"):
        sequence.brf_sequence(torch.randn(3, 2, 4), omega=torch.full((4,), 20.0),
                              b_offset=torch.full((4,), 0.5), backend="triton")


def test_docstring_examples_run():
    import doctest

    import brf_plugins.kernels._spec as spec_module
    import brf_plugins.train.capture as graph_module
    for module in (kernels, graph_module, spec_module, sequence):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.attempted > 0 and result.failed == 0, module.__name__


def test_fused_paths_allow_retain_graph():
    """A second backward through the same graph (retain_graph=True) gives the same gradients."""
    currents, state, omega, b_offset, kw = _sequence_case("brf", "", {}, torch.float64, steps=20)
    z, _ = sequence.brf_sequence(currents, state, omega=omega, b_offset=b_offset, backend="fused")
    first = torch.autograd.grad(z.sum(), omega, retain_graph=True)[0]
    assert torch.equal(torch.autograd.grad(z.sum(), omega)[0], first)
    net = _network_pair("rf", torch.float64)
    out = net(torch.rand(20, 2, 3, dtype=torch.float64) * 150)
    first = torch.autograd.grad(out.readout.sum(), net.hidden.omega, retain_graph=True)[0]
    assert torch.equal(torch.autograd.grad(out.readout.sum(), net.hidden.omega)[0], first)
