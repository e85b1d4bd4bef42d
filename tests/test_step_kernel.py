"""The compiled single step (brf_plugins.kernels._cpu.CPUCellStep) against the core and the fused step.

User code that calls a neuron once per time step (``spk, mem = brf(cur, mem)``, ``z, s = cell(cur, s)``) runs
:class:`CPUCellStep` on CPU: one C++ call forward and one backward, the per-neuron terms computed inside from the
raw ``omega`` and ``b_offset``. float64: spikes identical, states within 1e-12 (in fact bitwise), gradients of the
current, the states, ``omega`` and ``b_offset`` within 1e-10 relative of autograd through the core; float32:
forward values bitwise the fused path's. Stepping it T times equals the compiled sequence kernel; under
``torch.no_grad()`` it records no graph; the snnTorch and Norse cells take it and still equal the core.
"""

import itertools

import pytest
import torch

from brf_plugins import functional as F, kernels
from brf_plugins.kernels import CellStep, SmoothSpike, _cpu, cell_spec, neuron_params
from brf_plugins.neurons import NeuronConfig
from brf_plugins.surrogate import double_gaussian, multi_gaussian

from .conftest import BRF_ABLATIONS, CASE_IDS, CASES

USABLE, REASON = _cpu.status()
if not USABLE:
    pytest.skip(f"compiled CPU kernels unavailable: {REASON}", allow_module_level=True)

CPUCellStep = _cpu.CPUCellStep

CORE_STEP = {"brf": F.brf_step, "rf": F.rf_step, "bhrf": F.bhrf_step}
GAIN = 3.0


def _core_kwargs(kind, option, ablation):
    return {"rf": dict(reset=option), "bhrf": dict(variant=option)}.get(kind, dict(ablation))


def _spec(kind, option, ablation, spike_fn=None, gain=GAIN):
    return cell_spec(kind, F.DEFAULT_DT, 1.0, 0.9, spike_fn, option=option, input_gain=gain, **ablation)


def _problem(kind, dtype, batch=6, h=9, seed=0):
    """A step with both spiking and silent neurons: currents of both signs, states of both signs (q >= 0),
    frequencies of both signs up to and beyond BRF's clamp, offsets of both signs."""
    g = torch.Generator().manual_seed(seed)
    current = torch.randn(batch, h, dtype=dtype, generator=g) * 60
    u, v = (torch.randn(batch, h, dtype=dtype, generator=g) for _ in range(2))
    q = torch.rand(batch, h, dtype=dtype, generator=g) if kind != "rf" else None
    omega = (torch.rand(h, dtype=dtype, generator=g) * 95 + 2) * torch.randn(h, dtype=dtype, generator=g).sign()
    if kind == "brf":
        omega[0], omega[1] = 150.0, -120.0          # beyond the clamp 0.999/dt: no gradient there
    b_offset = torch.randn(h, dtype=dtype, generator=g)
    leaves = [t.requires_grad_() for t in (current, u, v, q, omega, b_offset) if t is not None]
    return current, u, v, q, omega, b_offset, leaves


def _core(kind, option, ablation, current, u, v, q, omega, b_offset, spike_fn=None):
    state = (u, v) if q is None else (u, v, q)
    return CORE_STEP[kind](current * GAIN, *state, omega, b_offset, spike_fn=spike_fn,
                           **_core_kwargs(kind, option, ablation))


def _fused(spec, current, u, v, q, omega, b_offset):
    pa, pb = neuron_params(spec, omega, b_offset)
    return CellStep.apply(spec, current, u, v, q, pa, pb)


def _grads(outputs, leaves, seed=1):
    g = torch.Generator().manual_seed(seed)
    weights = [torch.randn(o.shape, dtype=o.dtype, generator=g) for o in outputs]
    loss = sum((o * w).sum() for o, w in zip(outputs, weights))
    return torch.autograd.grad(loss, leaves)


def _rel(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


@pytest.mark.parametrize("kind,option,ablation", CASES, ids=CASE_IDS)
def test_compiled_step_equals_the_core_in_float64(kind, option, ablation):
    spec = _spec(kind, option, ablation)
    current, u, v, q, omega, b_offset, leaves = _problem(kind, torch.float64)
    got = CPUCellStep.apply(spec, current, u, v, q, omega, b_offset)
    core = _core(kind, option, ablation, current, u, v, q, omega, b_offset)
    assert 0 < float(core[0].detach().sum()) < core[0].numel()          # spiking and silent neurons
    assert torch.equal(got[0], core[0])
    for a, b in zip(got[1:], core[1:]):
        assert float((a - b).detach().abs().max()) <= 1e-12
    assert type(got[0].grad_fn).__name__ == "CPUCellStepBackward"
    grads = _grads(got, leaves)
    for g, r in zip(grads, _grads(tuple(core), leaves)):
        assert _rel(g, r) <= 1e-10, _rel(g, r)
    if kind == "brf":   # the clamp passes no gradient beyond 0.999/dt, as autograd through torch.clamp
        assert grads[-2][0] == 0 and grads[-2][1] == 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind,option,ablation", CASES, ids=CASE_IDS)
def test_compiled_step_is_bitwise_the_fused_step(kind, option, ablation, dtype):
    """Same values as CellStep with neuron_params in torch (p(omega)'s square root included: the C++ call uses
    torch's sqrt kernel); gradients to the dtype's rounding."""
    spec = _spec(kind, option, ablation)
    current, u, v, q, omega, b_offset, leaves = _problem(kind, dtype, batch=16, h=37)
    got = CPUCellStep.apply(spec, current, u, v, q, omega, b_offset)
    fused = _fused(spec, current, u, v, q, omega, b_offset)
    assert all(torch.equal(a, b) for a, b in zip(got, fused))
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    for g, r in zip(_grads(got, leaves), _grads(fused, leaves)):
        assert _rel(g, r) <= tol, _rel(g, r)


@pytest.mark.parametrize("surrogate", [multi_gaussian(), double_gaussian(fgi=True)], ids=["multi", "double-fgi"])
@pytest.mark.parametrize("kind,option", [("brf", ""), ("rf", "hard"), ("bhrf", "paper")])
def test_compiled_step_surrogates(kind, option, surrogate):
    spec = _spec(kind, option, {}, spike_fn=surrogate)
    current, u, v, q, omega, b_offset, leaves = _problem(kind, torch.float64)
    got = CPUCellStep.apply(spec, current, u, v, q, omega, b_offset)
    core = _core(kind, option, {}, current, u, v, q, omega, b_offset, spike_fn=surrogate)
    assert all(torch.equal(a, b) for a, b in zip(got, core))
    for g, r in zip(_grads(got, leaves), _grads(tuple(core), leaves)):
        assert _rel(g, r) <= 1e-10


@pytest.mark.parametrize("kind,option,ablation", [CASES[0], CASES[3], CASES[6], CASES[10], CASES[11]],
                         ids=[CASE_IDS[i] for i in (0, 3, 6, 10, 11)])
def test_compiled_step_gradcheck(kind, option, ablation):
    """The analytic backward (raw omega and b' included) against finite differences, with a smooth spike."""
    spec = _spec(kind, option, ablation, spike_fn=SmoothSpike(double_gaussian()), gain=1.0)
    current, u, v, q, omega, b_offset, _ = _problem(kind, torch.float64, batch=2, h=3)
    current = (current.detach() / 60).requires_grad_()
    omega = omega.detach().clamp(-90, 90).requires_grad_()     # away from the clamp's kink
    inputs = tuple(t for t in (current, u, v, q, omega, b_offset) if t is not None)

    def step(*args):
        cur, su, sv, *rest = args
        sq = rest[0] if q is not None else None
        return tuple(CPUCellStep.apply(spec, cur, su, sv, sq, *rest[-2:]))

    assert torch.autograd.gradcheck(step, inputs)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind,option", [("brf", ""), ("rf", "soft"), ("bhrf", "code")])
def test_stepping_equals_the_sequence_kernel(kind, option, dtype):
    """T compiled steps = one CPUCellSequence call: the same spikes and states, bitwise; the same gradients."""
    spec = _spec(kind, option, {})
    steps, batch, h = 30, 4, 11
    g = torch.Generator().manual_seed(5)
    currents = (torch.randn(steps, batch, h, dtype=dtype, generator=g) * 40).requires_grad_()
    _, u0, v0, q0, omega, b_offset, _ = _problem(kind, dtype, batch=batch, h=h, seed=6)
    state = (u0, v0, q0)
    spikes = []
    for current in currents:
        out = CPUCellStep.apply(spec, current, *state[:2], state[2], omega, b_offset)
        spikes.append(out[0])
        state = tuple(out[1:]) + ((None,) if q0 is None else ())
    stepped = (torch.stack(spikes),) + tuple(s for s in state if s is not None)
    pa, pb = neuron_params(spec, omega, b_offset)
    whole = _cpu.CPUCellSequence.apply(spec, currents, u0, v0, q0, pa, pb)
    assert float(whole[0].detach().sum()) > 0
    assert all(torch.equal(a, b) for a, b in zip(stepped, whole))
    leaves = [t for t in (currents, u0, v0, q0, omega, b_offset) if t is not None]
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    for a, b in zip(_grads(stepped, leaves), _grads(whole, leaves)):
        assert _rel(a, b) <= tol, _rel(a, b)


def test_no_grad_records_no_graph_and_shapes_broadcast():
    spec = _spec("brf", "", {})
    current, u, v, q, omega, b_offset, _ = _problem("brf", torch.float64)
    with torch.no_grad():
        out = CPUCellStep.apply(spec, current, u, v, q, omega, b_offset)
    assert all(t.grad_fn is None and not t.requires_grad for t in out)
    # leading dimensions (..., h) and one value for all neurons: the gradient of that value is summed
    cur3 = current.detach().reshape(2, 3, -1).requires_grad_()
    one_omega = torch.tensor(30.0, dtype=torch.float64, requires_grad=True)
    states = [t.detach().reshape(2, 3, -1) for t in (u, v, q)]
    got = CPUCellStep.apply(spec, cur3, *states, one_omega, b_offset)
    core = F.brf_step(cur3 * GAIN, *states, one_omega, b_offset)
    assert got[0].shape == cur3.shape and all(torch.equal(a, b) for a, b in zip(got, core))
    for a, b in zip(_grads(got, [cur3, one_omega, b_offset]), _grads(tuple(core), [cur3, one_omega, b_offset])):
        assert a.shape == b.shape and _rel(a, b) <= 1e-10


def test_plan_takes_the_compiled_step_on_cpu():
    h = 4
    z, p = torch.zeros(2, h), torch.ones(h)
    for cfg, state in ((NeuronConfig("brf"), (z, z, z)), (NeuronConfig("rf", reset="hard"), (z, z)),
                       (NeuronConfig("bhrf", variant="explicit"), (z, z, z))):
        assert kernels.plan(cfg, (z,) + state + (p, p), scope="step").path == "compiled"
    cfg = NeuronConfig("brf")
    broadcast = kernels.plan(cfg, (z, torch.zeros(h), z, z, p, p), scope="step")
    assert broadcast.path == "fused" and "shape" in broadcast.reason
    assert kernels.plan(cfg, (z, z, z, z, p, p), scope="step", backend="fused").path == "fused"
    assert kernels.plan(NeuronConfig("alif"), (z, z, z, p, p), scope="step").path == "reference"
    # the public fused steps take it too, with the core's values
    current, u, v, q, omega, b_offset, _ = _problem("brf", torch.float64)
    out = kernels.brf_step(current, u, v, q, omega, b_offset)
    assert type(out.z.grad_fn).__name__ == "CPUCellStepBackward"
    assert all(torch.equal(a, b) for a, b in zip(out, F.brf_step(current, u, v, q, omega, b_offset)))


def _core_loop(kind, currents, omega, b_offset, gain, theta=1.0, gamma=0.9):
    h = currents.shape[-1]
    state = [currents.new_zeros(currents.shape[1:]) for _ in range(2 if kind == "rf" else 3)]
    kw = dict(theta=theta) if kind == "rf" else dict(theta=theta, gamma=gamma)
    spikes = []
    for current in currents:
        out = CORE_STEP[kind](current * gain, *state, omega, b_offset, **kw)
        spikes.append(out[0])
        state = list(out[1:])
    assert state[0].shape[-1] == h
    return torch.stack(spikes), state


def _stepwise_case(package: str, name: str, seed: int):
    """The adapter package, its neuron ``name`` (5 neurons, float64) and 40 steps of currents that make it spike."""
    module = pytest.importorskip(package)
    torch.manual_seed(seed)
    return module, getattr(module, name)(5).double(), (torch.rand(40, 3, 5, dtype=torch.float64) * 4).requires_grad_()


def _stepped(step, currents, state):
    """``step(current, state) -> (spikes, state)`` over the currents: every step's spikes and the final state."""
    spikes = []
    for current in currents:
        spk, state = step(current, state)
        spikes.append(spk)
    return spikes, state


def _assert_compiled_step_equals_core(kind, spikes, state, currents, omega, b_offset, gain):
    """Spikes stepped by an adapter ran the compiled step and equal the core's loop; float64 gradients of the
    currents, ``omega`` and ``b_offset`` within 1e-10 relative."""
    assert type(spikes[-1].grad_fn).__name__ == "CPUCellStepBackward"
    ref, ref_state = _core_loop(kind, currents, omega, b_offset, gain)
    assert float(ref.detach().sum()) > 0 and torch.equal(torch.stack(spikes), ref)
    leaves = [currents, omega, b_offset]
    got = _grads((torch.stack(spikes), *state), leaves)
    want = _grads((ref, *ref_state), leaves)
    assert all(_rel(a, b) <= 1e-10 for a, b in zip(got, want))


@pytest.mark.parametrize("kind", ["brf", "rf", "bhrf"])
def test_snntorch_stepwise_takes_the_compiled_step_and_equals_the_core(kind):
    _, neuron, currents = _stepwise_case("snntorch_ext", kind.upper(), seed=0)

    def step(current, state):
        spk, *state = neuron(current, *state)
        return spk, state

    spikes, state = _stepped(step, currents, neuron.reset_mem())
    _assert_compiled_step_equals_core(kind, spikes, state, currents, neuron.omega, neuron.b_offset,
                                      neuron.input_gain)
    # the configuration it remembers follows the module: a new threshold (in place) and a new gamma
    with torch.no_grad():
        neuron.threshold.fill_(0.5)
    if kind != "rf":
        neuron.gamma = 0.5
    with torch.no_grad():
        spikes, _ = _stepped(step, currents, neuron.reset_mem())
        ref, _ = _core_loop(kind, currents, neuron.omega, neuron.b_offset, neuron.input_gain, theta=0.5,
                            gamma=0.5)
    assert torch.equal(torch.stack(spikes), ref)


def test_snntorch_mem_style_call_and_graded_spikes():
    """``spk, mem = brf(cur, mem)`` (the state kept inside) and a graded spikes factor other than 1."""
    snnx = pytest.importorskip("snntorch_ext")
    torch.manual_seed(1)
    plain = snnx.BRF(6).double()
    graded = snnx.BRF(6, graded_spikes_factor=2.0).double()
    with torch.no_grad():   # the same neurons (the state dict would also copy the factor)
        graded.omega.copy_(plain.omega)
        graded.b_offset.copy_(plain.b_offset)
    currents = torch.rand(30, 2, 6, dtype=torch.float64) * 4
    ref, _ = _core_loop("brf", currents, plain.omega.detach(), plain.b_offset.detach(), plain.input_gain)
    for neuron, factor in ((plain, 1.0), (graded, 2.0)):
        with torch.no_grad():
            spikes, _ = _stepped(neuron, currents, neuron.init_leaky())
        assert torch.equal(torch.stack(spikes), ref * factor)


@pytest.mark.parametrize("kind", ["brf", "rf", "bhrf"])
def test_norse_stepwise_takes_the_compiled_step_and_equals_the_core(kind):
    norse_ext, cell, currents = _stepwise_case("norse_ext", f"{kind.upper()}Cell", seed=2)
    spikes, state = _stepped(cell, currents, None)
    _assert_compiled_step_equals_core(kind, spikes, state, currents, cell.omega, cell.b_offset,
                                      norse_ext.functional.input_gain(cell.p, cell.dt))
