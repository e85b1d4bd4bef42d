"""norse_ext: Norse-style BRF/RF/BHRF/ALIF equal the core, compose with Norse, train, and reject bad input."""

import pickle

import pytest
import torch

norse = pytest.importorskip("norse.torch")

import norse_ext  # noqa: E402
from brf_plugins import functional as F  # noqa: E402
from brf_plugins import surrogate  # noqa: E402
from brf_plugins.network import RecurrentLayer, RecurrentSNN, SNNOutput  # noqa: E402
from brf_plugins.tasks import TASKS  # noqa: E402
from norse_ext import functional as nf  # noqa: E402

from .conftest import CHECKPOINTS, DATA_ROOT, needs_data  # noqa: E402

D = torch.float64
NEURONS = ("brf", "rf", "bhrf", "alif")
PARAMS = {"brf": norse_ext.BRFParameters, "rf": norse_ext.RFParameters, "bhrf": norse_ext.BHRFParameters,
          "alif": norse_ext.ALIFParameters}
CELLS = {"brf": norse_ext.BRFCell, "rf": norse_ext.RFCell, "bhrf": norse_ext.BHRFCell, "alif": norse_ext.ALIFCell}
SEQS = {"brf": norse_ext.BRF, "rf": norse_ext.RF, "bhrf": norse_ext.BHRF, "alif": norse_ext.ALIF}
RCELLS = {"brf": norse_ext.BRFRecurrentCell, "rf": norse_ext.RFRecurrentCell,
          "bhrf": norse_ext.BHRFRecurrentCell, "alif": norse_ext.ALIFRecurrentCell}
RSEQS = {"brf": norse_ext.BRFRecurrent, "rf": norse_ext.RFRecurrent, "bhrf": norse_ext.BHRFRecurrent,
         "alif": norse_ext.ALIFRecurrent}
# Per-neuron values that make every model spike within a few dozen steps.
VALUES = {"brf": dict(omega=(5.0, 30.0), b_offset=(0.0, 1.0)), "rf": dict(omega=(5.0, 30.0), b_offset=(0.0, 1.0)),
          "bhrf": dict(omega=(5.0, 30.0), b_offset=(0.1, 1.0)), "alif": {}}


pytestmark = pytest.mark.usefixtures("one_thread")


def _params(neuron, **kw):
    return PARAMS[neuron](**{**VALUES[neuron], **kw})


def _core_step(neuron, current, state, p):
    """The core's update on a feed-forward state: ``(z, new_state)`` in norse_ext's state order."""
    if neuron == "alif":
        z, u, a = state
        out = F.alif_step(current, z, u, a, p.tau_mem, p.tau_adp)
        return out.z, tuple(out)
    if neuron == "brf":
        out = F.brf_step(current, *state, p.omega, p.b_offset, 0.01)
    elif neuron == "rf":
        out = F.rf_step(current, *state, p.omega, p.b_offset, 0.01)
    else:
        out = F.bhrf_step(current, *state, p.omega, p.b_offset, 0.01)
    return out[0], tuple(out[1:])


# ------------------------------------------------------------------------------------------------------------------
# Equivalence with the core
# ------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("neuron", NEURONS)
@pytest.mark.parametrize("gain", [1.0, None])
def test_feed_forward_cell_equals_core_step(neuron, gain):
    """``input_gain=None`` means 1/dt for the resonators (1 for ALIF, whose update has no dt)."""
    cell = CELLS[neuron](6, _params(neuron, input_gain=gain)).to(D)
    scale = 1.0 / 0.01 if gain is None and neuron != "alif" else 1.0
    currents = torch.rand(40, 3, 6, dtype=D) * (300.0 * (1.0 if gain == 1.0 else 0.01) if neuron != "alif" else 0.05)
    state, core, spikes = None, None, 0.0
    for x in currents:
        z, state = cell(x, state)
        if core is None:
            core = tuple(torch.zeros_like(x) for _ in state)
        core_z, core = _core_step(neuron, x * scale, core, cell.p)
        assert torch.equal(z, core_z)
        for mine, theirs in zip(state, core):
            torch.testing.assert_close(mine, theirs, rtol=0, atol=1e-12)
        spikes += float(z.detach().sum())
    assert spikes > 0  # the comparison covered spiking steps


@pytest.mark.parametrize("neuron", NEURONS)
def test_recurrent_cell_equals_core_layer(neuron):
    torch.manual_seed(1)
    layer = RecurrentLayer(3, 8, neuron, **({"omega_init": (5.0, 30.0)} if neuron != "alif" else {})).to(D)
    weight = layer.linear.weight.detach()
    values = {n: getattr(layer, n).detach() for n in (("tau_mem", "tau_adp") if neuron == "alif"
                                                      else ("omega", "b_offset"))}
    cell = RCELLS[neuron](3, 8, PARAMS[neuron](input_gain=1.0, **values), autapses=True,
                          input_weights=torch.nn.Parameter(weight[:, :3].clone()),
                          recurrent_weights=torch.nn.Parameter(weight[:, 3:].clone())).to(D)
    x = torch.rand(60, 2, 3, dtype=D) * (300.0 if neuron != "alif" else 1.0)
    state, core_state, spikes = None, None, 0.0
    for x_t in x:
        z, state = cell(x_t, state)
        core_state = layer(x_t, core_state)
        assert torch.equal(z, core_state[0])
        for mine, theirs in zip(state, core_state):
            torch.testing.assert_close(mine, theirs, rtol=0, atol=1e-12)
        spikes += float(z.detach().sum())
    assert spikes > 0


@pytest.mark.parametrize("neuron", NEURONS)
def test_sequence_modules_equal_cells_in_a_loop(neuron):
    torch.manual_seed(2)
    seq = SEQS[neuron](5, _params(neuron)).to(D)
    cell = CELLS[neuron](5, seq.p).to(D)  # tensors in p: the same values
    x = torch.rand(30, 2, 5, dtype=D) * (3.0 if neuron != "alif" else 0.05)
    z_seq, final = seq(x)
    state, zs = None, []
    for x_t in x:
        z, state = cell(x_t, state)
        zs.append(z)
    assert torch.equal(z_seq, torch.stack(zs)) and z_seq.sum() > 0
    for a, b in zip(final, state):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    # record_states stacks every step's state, as Norse's SNN does
    seq.record_states = True
    z_rec, states = seq(x)
    assert torch.equal(z_rec, z_seq) and type(states) is type(final)
    assert all(s.shape == (30, 2, 5) for s in states)
    for a, b in zip(states, final):
        torch.testing.assert_close(a[-1], b, rtol=0, atol=1e-12)

    rseq = RSEQS[neuron](4, 6, _params(neuron), generator=torch.Generator().manual_seed(0)).to(D)
    rcell = RCELLS[neuron](4, 6, rseq.p, input_weights=rseq.input_weights, recurrent_weights=rseq.recurrent_weights)
    xr = torch.rand(30, 2, 4, dtype=D) * 3.0
    zr, rfinal = rseq(xr)
    state, zs = None, []
    for x_t in xr:
        z, state = rcell(x_t, state)
        zs.append(z)
    assert torch.equal(zr, torch.stack(zs))
    for a, b in zip(rfinal, state):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_feed_forward_sequence_asks_the_one_execution_plan(monkeypatch):
    """BRF/RF/BHRF/ALIF sequence modules run one whole-sequence call planned by brf_plugins.kernels.plan (where
    the fast paths plug in), not a Python step loop of their own."""
    from brf_plugins import kernels
    calls = []
    original = kernels.plan

    def spy(cfg, tensors, *, scope="step", backend="auto"):
        calls.append((cfg.kind, scope))
        return original(cfg, tensors, scope=scope, backend=backend)
    monkeypatch.setattr(kernels, "plan", spy)
    for neuron in ("brf", "rf", "bhrf", "alif"):
        SEQS[neuron](4)(torch.rand(5, 2, 4))
    assert calls == [("brf", "sequence"), ("rf", "sequence"), ("bhrf", "sequence"), ("alif", "sequence")]


def test_recurrent_sequence_modules_run_the_whole_layer_kernel_and_match_the_cells_gradients(monkeypatch):
    """BRFRecurrent & co. over a sequence: one plan for scope "recurrent" (the compiled / Triton whole-layer
    kernels), no step loop; spikes, states and gradients equal stepping the RecurrentCell (float64)."""
    from brf_plugins import kernels
    scopes = []
    original = kernels.plan

    def spy(cfg, tensors, *, scope="step", backend="auto"):
        scopes.append(scope)
        return original(cfg, tensors, scope=scope, backend=backend)
    for neuron in NEURONS:
        layer = RSEQS[neuron](4, 6, _params(neuron), generator=torch.Generator().manual_seed(1)).to(D)
        cell = RCELLS[neuron](4, 6, layer.p, input_weights=layer.input_weights,
                              recurrent_weights=layer.recurrent_weights)
        x = (torch.rand(40, 3, 4, dtype=D) * 3.0).requires_grad_()
        scopes.clear()
        monkeypatch.setattr(kernels, "plan", spy)
        z, final = layer(x)
        monkeypatch.setattr(kernels, "plan", original)
        assert scopes == ["recurrent"], (neuron, scopes)
        (z.sum() + final[1].square().sum()).backward()
        grads = [t.grad.clone() for t in (x, layer.input_weights, layer.recurrent_weights)]
        for t in (x, layer.input_weights, layer.recurrent_weights):
            t.grad = None
        state, zs = None, []
        for x_t in x:
            z_t, state = cell(x_t, state)
            zs.append(z_t)
        assert torch.equal(z, torch.stack(zs)) and z.sum() > 0, neuron
        (torch.stack(zs).sum() + state[1].square().sum()).backward()
        for a, b in zip(grads, (x.grad, layer.input_weights.grad, layer.recurrent_weights.grad)):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
        # (T, B1, B2, m) inputs: the middle dimensions run as one batch
        z4, final4 = layer(x.detach().reshape(40, 3, 1, 4))
        assert torch.equal(z4.reshape(z.shape), z.detach()) and final4[1].shape == (3, 1, 6)


@pytest.mark.parametrize("neuron", NEURONS)
def test_paper_network_equals_core_network(neuron):
    """Same generator -> same initial values; same weights -> same spikes, readouts and gradients (float64)."""
    task = TASKS["ecg"].with_overrides(hidden_size=12)  # the ECG recipe, smaller for speed
    core = RecurrentSNN.from_task(task, neuron, generator=torch.Generator().manual_seed(3)).to(D)
    mine = norse_ext.build_paper_network(task, neuron, generator=torch.Generator().manual_seed(3)).to(D)
    for key, value in core.state_dict().items():
        torch.testing.assert_close(mine.authors_state_dict()[key], value, rtol=0, atol=0)
    mine.load_authors_state_dict(core.state_dict())
    x = torch.rand(60, 3, 4, dtype=D) * (30.0 if neuron != "alif" else 1.0)
    out_core = core(x, record=True)
    out = mine(x, record=True)
    assert isinstance(out, SNNOutput)
    assert torch.equal(out.hidden_spikes, out_core.hidden_spikes) and out.hidden_spikes.sum() > 0
    assert float(out.spike_count.detach()) == float(out_core.spike_count.detach())
    torch.testing.assert_close(out.readout, out_core.readout, rtol=0, atol=1e-6)
    (hidden, o), (core_hidden, core_o) = out.state, out_core.state
    for a, b in zip(hidden, core_hidden):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    torch.testing.assert_close(o.o, core_o, rtol=0, atol=1e-6)
    # gradients of the same loss agree parameter by parameter
    out.readout.square().mean().backward()
    out_core.readout.square().mean().backward()
    grads = {"hidden.linear.weight": torch.cat((mine.hidden.input_weights.grad, mine.hidden.recurrent_weights.grad), 1),
             "out.linear.weight": mine.out.input_weights.grad, "out.tau_mem": mine.out.tau_mem.grad}
    for name in (("tau_mem", "tau_adp") if neuron == "alif" else ("omega", "b_offset")):
        grads[f"hidden.{name}"] = getattr(mine.hidden, name).grad
    for key, param in core.named_parameters():
        torch.testing.assert_close(grads[key], param.grad, rtol=1e-9, atol=1e-12)
    if neuron != "alif":
        assert mine.hidden.omega.grad.abs().sum() > 0 and mine.hidden.b_offset.grad.abs().sum() > 0


def test_paper_network_spike_hook_equals_core():
    """Spike deletion (spec 1.8) through ``spike_hook`` gives the core's result."""
    core = RecurrentSNN(3, 10, 4, "brf", omega_init=(5.0, 30.0)).to(D)
    mine = norse_ext.build_paper_network((3, 10, 4), "brf").to(D).load_authors_state_dict(core.state_dict())
    x = torch.rand(40, 2, 3, dtype=D) * 200.0
    masks = (torch.rand(40, 2, 10, generator=torch.Generator().manual_seed(0)) > 0.3).to(D)

    def hook(t, z):
        return z * masks[t]
    a, b = mine(x, record=True, spike_hook=hook), core(x, record=True, spike_hook=hook)
    assert torch.equal(a.hidden_spikes, b.hidden_spikes) and a.hidden_spikes.sum() > 0
    assert not torch.equal(a.hidden_spikes, mine(x, record=True).hidden_spikes)
    torch.testing.assert_close(a.readout, b.readout, rtol=0, atol=1e-6)


def test_paper_network_equals_snntorch_ext():
    """Norse and snnTorch adapters: same weights, same spikes (skipped where snntorch_ext is not installed)."""
    snntorch_ext = pytest.importorskip("snntorch_ext")
    if not hasattr(snntorch_ext, "build_paper_network"):
        pytest.skip("this snntorch_ext has no build_paper_network")
    for neuron in NEURONS:
        mine = norse_ext.build_paper_network((3, 10, 4), neuron, generator=torch.Generator().manual_seed(4)).to(D)
        theirs = snntorch_ext.build_paper_network((3, 10, 4), neuron).to(D)
        theirs.load_authors_state_dict(mine.authors_state_dict())
        x = torch.rand(60, 2, 3, dtype=D) * (30.0 if neuron != "alif" else 1.0)
        a, b = mine(x, record=True), theirs(x, record=True)
        assert torch.equal(a.hidden_spikes, b.hidden_spikes) and a.hidden_spikes.sum() > 0, neuron
        torch.testing.assert_close(a.readout, b.readout, rtol=0, atol=1e-6)


@pytest.mark.parametrize("neuron", ["brf", "rf", "bhrf", "alif"])
def test_modules_built_without_inits_draw_the_same_parameters_in_both_frameworks(neuron):
    """The defaults live once (``brf_plugins.neurons.KINDS[kind].default_init``): a Norse cell and an snnTorch
    neuron built from the same generator hold identical per-neuron values, the same spikes follow."""
    snntorch_ext = pytest.importorskip("snntorch_ext")
    from brf_plugins.neurons import KINDS
    cell = getattr(norse_ext, f"{neuron.upper()}Cell")(64, generator=torch.Generator().manual_seed(7))
    module = getattr(snntorch_ext, neuron.upper())(64, generator=torch.Generator().manual_seed(7))
    for name in KINDS[neuron].params:
        assert torch.equal(getattr(cell, name), getattr(module, name)), name
    spec = KINDS[neuron].default_init[KINDS[neuron].params[0]]
    low, high = (spec.low, spec.high) if hasattr(spec, "low") else (spec.mean - 5 * spec.std, spec.mean + 5 * spec.std)
    first = getattr(cell, KINDS[neuron].params[0]).detach()
    assert low <= float(first.min()) and float(first.max()) <= high and float(first.std()) > 0
    x = torch.rand(30, 4, 64) * 2.0
    z_norse, s = [], None
    for x_t in x:
        z, s = cell(x_t, s)
        z_norse.append(z)
    z_snn = []
    for x_t in x:
        z_snn.append(module(x_t)[0])
    assert torch.equal(torch.stack(z_norse), torch.stack(z_snn)) and torch.stack(z_snn).sum() > 0


@needs_data("ecg_qtdb", "QTDB_test.mat")
def test_ecg_brf_checkpoint_reproduces_core_accuracy():
    from torch.utils.data import DataLoader

    from brf_plugins.checkpoints import load_authors_checkpoint
    from brf_plugins.data import ECGQTDB
    from brf_plugins.metrics import evaluate
    from brf_plugins.train.reproduce import REFERENCES, distance_to_range

    ref = next(r for r in REFERENCES if r.name == "ecg_brf")
    path = CHECKPOINTS / "ecg_brf.pt"
    batches = DataLoader(ECGQTDB(DATA_ROOT, split="test"), batch_size=141)
    mine = evaluate(norse_ext.from_authors_checkpoint(path), batches, ref.loss_rule, ref.accuracy_rule, ref.start)
    core = evaluate(load_authors_checkpoint(path), batches, ref.loss_rule, ref.accuracy_rule, ref.start)
    assert mine.scored == core.scored == 141 * (1300 - ref.start)
    assert mine.accuracy == core.accuracy and mine.sops == core.sops
    assert distance_to_range(mine.percent, ref.expected) <= ref.tolerance, mine.percent


@pytest.mark.slow
@needs_data("ecg_qtdb", "QTDB_test.mat")
@pytest.mark.parametrize("name", ["ecg_rf", "ecg_alif"])
def test_ecg_rf_and_alif_checkpoints_reproduce_published_accuracy(name):
    from torch.utils.data import DataLoader

    from brf_plugins.data import ECGQTDB
    from brf_plugins.metrics import evaluate
    from brf_plugins.train.reproduce import REFERENCES, distance_to_range

    ref = next(r for r in REFERENCES if r.name == name)
    net = norse_ext.from_authors_checkpoint(CHECKPOINTS / f"{name}.pt")
    result = evaluate(net, DataLoader(ECGQTDB(DATA_ROOT, split="test"), batch_size=141), ref.loss_rule,
                      ref.accuracy_rule, ref.start)
    assert distance_to_range(result.percent, ref.expected) <= ref.tolerance, result.percent


@needs_data("reference_checkpoints", "ecg_rf.pt")
def test_from_authors_checkpoint_kinds_and_errors(tmp_path):
    assert norse_ext.from_authors_checkpoint(CHECKPOINTS / "ecg_rf.pt").neuron == "rf"
    net = norse_ext.from_authors_checkpoint(CHECKPOINTS / "ecg_alif.pt")
    assert isinstance(net.hidden, norse_ext.ALIFRecurrent)
    with pytest.raises(Exception, match="ALIF"):
        norse_ext.from_authors_checkpoint(CHECKPOINTS / "ecg_alif.pt", neuron="brf")
    with pytest.raises(Exception, match="not found"):
        norse_ext.from_authors_checkpoint(tmp_path / "missing.pt")


# ------------------------------------------------------------------------------------------------------------------
# Norse composition
# ------------------------------------------------------------------------------------------------------------------


def test_sequential_state_with_norse_readouts_and_lift():
    model = norse.SequentialState(torch.nn.Linear(3, 8), norse_ext.BRFCell(8), norse.LILinearCell(8, 2))
    state = None
    for x in torch.rand(10, 4, 3):
        out, state = model(x, state)
    assert out.shape == (4, 2) and isinstance(state[1], norse_ext.BRFFeedForwardState)

    seq = norse.SequentialState(norse_ext.BRFRecurrent(3, 8), norse.Lift(torch.nn.Linear(8, 2)),
                                norse.LI())
    out, state = seq(torch.rand(10, 4, 3))
    assert out.shape == (10, 4, 2) and isinstance(state[0], norse_ext.BRFState)

    lifted = norse.Lift(norse_ext.BHRFCell(8))
    z, s = lifted(torch.rand(10, 4, 8))
    assert z.shape == (10, 4, 8) and isinstance(s, norse_ext.BHRFFeedForwardState)


@pytest.mark.parametrize("neuron", NEURONS)
def test_state_fallback_shape_dtype_device(neuron):
    cell = RCELLS[neuron](3, 7).to(D)
    z, state = cell(torch.rand(2, 5, 3, dtype=D))  # any leading shape, as Norse
    assert z.shape == (2, 5, 7) and all(s.shape == (2, 5, 7) and s.dtype == D for s in state)
    z, state = SEQS[neuron](4)(torch.rand(6, 2, 4)) if neuron != "alif" else ALIF_SEQ(torch.rand(6, 2, 4))
    assert z.shape == (6, 2, 4) and all(s.shape == (2, 4) and s.device == z.device for s in state)


ALIF_SEQ = norse_ext.ALIF(4)


def test_norse_threshold_methods_work_for_our_neurons():
    from norse.torch.functional.threshold import threshold as norse_threshold

    x = torch.rand(20, 2, 4) * 5
    reference, _ = norse_ext.BRF(4, norse_ext.BRFParameters(omega=10.0, b_offset=0.5))(x)
    for method in nf.METHODS:
        layer = norse_ext.BRF(4, norse_ext.BRFParameters(omega=10.0, b_offset=0.5, method=method, alpha=5.0))
        z, _ = layer(x)
        assert torch.equal(z, reference), method  # all methods share the forward Heaviside
        if method != "heaviside":
            z.sum().backward()
            assert layer.omega.grad.abs().sum() > 0, method
    # Norse's methods are Norse's own functions, with their alpha
    v = torch.linspace(-0.3, 0.3, 31, requires_grad=True)
    for method in nf.NORSE_METHODS[1:]:
        (ours,) = torch.autograd.grad(nf.threshold(v, method, 20.0).sum(), v)
        (theirs,) = torch.autograd.grad(norse_threshold(v, method, 20.0).sum(), v)
        assert torch.equal(ours, theirs) and ours.abs().sum() > 0, method
    # the Gaussian methods are the core's surrogates, autograd and fgi alike
    v = torch.linspace(-2, 2, 41, requires_grad=True)
    for method, core in [("double_gaussian", surrogate.double_gaussian_derivative),
                         ("double_gaussian_fgi", surrogate.double_gaussian_derivative),
                         ("multi_gaussian", surrogate.multi_gaussian_derivative),
                         ("multi_gaussian_fgi", surrogate.multi_gaussian_derivative)]:
        (grad,) = torch.autograd.grad(nf.threshold(v, method).sum(), v)
        torch.testing.assert_close(grad, core(v.detach()), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="`method` must be one of"):
        norse_ext.BRFCell(4, norse_ext.BRFParameters(method="gauss"))


def test_parameters_train_and_move():
    cell = norse_ext.BRFRecurrentCell(3, 6)
    names = dict(cell.named_parameters())
    assert {"omega", "b_offset", "input_weights", "recurrent_weights"} <= set(names)
    before = {k: v.detach().clone() for k, v in names.items()}
    opt = torch.optim.Adam(cell.parameters(), lr=1e-2)
    state, loss = None, 0
    for x in torch.rand(30, 4, 3):
        z, state = cell(x, state)
        loss = loss + state.v_re.square().mean()
    loss.backward()
    opt.step()
    assert not torch.equal(before["omega"], cell.omega) and not torch.equal(before["b_offset"], cell.b_offset)
    frozen = norse_ext.BRFCell(6, learn_omega=False)
    assert [n for n, _ in frozen.named_parameters()] == ["b_offset"] and "omega" in dict(frozen.named_buffers())
    assert norse_ext.BRFCell(6).double().omega.dtype == D
    # parameter tuples are Norse StateTuples: .to() works, and ours pickle
    p = norse_ext.BRFParameters(omega=torch.ones(3))
    assert p.to(D).omega.dtype == D
    assert pickle.loads(pickle.dumps(p)).omega.tolist() == [1.0, 1.0, 1.0]


def test_torch_compile_traces_cells():
    """torch.compile traces our cells, forward and backward (a compiler-free backend, so this runs anywhere)."""
    torch._dynamo.reset()
    cell = norse_ext.BRFCell(8, norse_ext.BRFParameters(method="double_gaussian_fgi"))
    x = torch.rand(4, 8)
    z, state = cell(x)
    z_c, state_c = torch.compile(cell, backend="aot_eager", fullgraph=True)(x, state)
    z_e, state_e = cell(x, state)
    assert torch.equal(z_c, z_e)
    torch.testing.assert_close(state_c.v_re, state_e.v_re)
    state_c.v_re.sum().backward()
    assert cell.omega.grad is not None and cell.omega.grad.abs().sum() > 0


@pytest.mark.slow
def test_torch_compile_inductor():
    torch._dynamo.reset()
    layer = norse_ext.BRF(8)
    x = torch.rand(20, 4, 8) * 5
    z, _ = layer(x)
    z_c, _ = torch.compile(layer)(x)
    assert torch.equal(z, z_c)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    net = norse_ext.build_paper_network((3, 16, 4), "brf", generator=torch.Generator().manual_seed(0))
    x = torch.rand(50, 2, 3) * 30
    cpu = net(x, record=True)
    gpu = net.cuda()(x.cuda(), record=True)
    assert torch.equal(cpu.hidden_spikes, gpu.hidden_spikes.cpu())


# ------------------------------------------------------------------------------------------------------------------
# Drop-in for LIFRecurrentCell: the swapped network learns
# ------------------------------------------------------------------------------------------------------------------


def _rate_task(gen, batch=32, steps=25):
    y = torch.randint(0, 2, (batch,), generator=gen)
    rates = torch.where(y[:, None] == 0, torch.tensor([0.4, 0.05]), torch.tensor([0.05, 0.4]))
    return (torch.rand(steps, batch, 2, generator=gen) < rates).float(), y


def _train(cell, iterations=25, lr=2e-2):
    torch.manual_seed(0)
    # A Norse documentation model (SequentialState docs / module tests), with only the cell class swapped.
    model = norse.SequentialState(cell(2, 16), torch.nn.Linear(16, 2), norse.LICell())
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(iterations):
        x, y = _rate_task(gen)
        state = None
        for x_t in x:
            out, state = model(x_t, state)
        loss = torch.nn.functional.cross_entropy(out, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    return losses


def test_swapping_lif_recurrent_cell_for_brf_learns():
    losses = _train(norse_ext.BRFRecurrentCell)
    assert sum(losses[-5:]) / 5 < 0.5 * losses[0], losses


@pytest.mark.slow
def test_spec_verbatim_gain_does_not_train_at_typical_rates():
    """The reason for input_gain = 1/dt: with the paper's dt-scaled current the same model barely moves."""
    def verbatim(m, h):
        return norse_ext.BRFRecurrentCell(m, h, norse_ext.BRFParameters(input_gain=1.0))
    lif, brf, spec = _train(norse.LIFRecurrentCell), _train(norse_ext.BRFRecurrentCell), _train(verbatim)
    assert lif[-1] < 0.5 * lif[0] and brf[-1] < 0.5 * brf[0]
    assert min(spec) > 0.6


# ------------------------------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------------------------------


def test_errors_name_the_argument_and_the_fix():
    with pytest.raises(ValueError, match=r"omega.*1/dt = 100"):
        norse_ext.BRFCell(8, norse_ext.BRFParameters(omega=(5.0, 120.0)))
    with pytest.raises(ValueError, match=r"1/dt = 50"):
        norse_ext.BRFRecurrent(2, 8, norse_ext.BRFParameters(omega=60.0), dt=0.02)
    with pytest.raises(ValueError, match="hidden_size"):
        nf.resolve_parameters(norse_ext.BRFParameters(), None)  # ranges need a size (modules infer it lazily)
    with pytest.raises(TypeError, match="BRFParameters"):
        norse_ext.BRFCell(8, norse.LIFParameters())
    cell = norse_ext.BRFRecurrentCell(4, 8)
    with pytest.raises(ValueError, match="input_size = 4"):
        cell(torch.rand(3, 5))
    with pytest.raises(TypeError, match=r"floating-point.*\.float\(\)"):
        cell(torch.ones(3, 4, dtype=torch.long))
    _, state = cell(torch.rand(3, 4))
    with pytest.raises(ValueError, match="batch size.*state=None"):
        cell(torch.rand(5, 4), state)
    with pytest.raises(TypeError, match="dtype"):
        cell.double()(torch.rand(3, 4, dtype=D), state)
    with pytest.raises(TypeError, match="BRFState"):
        cell(torch.rand(3, 4, dtype=D), norse.LIFState(*state[:3]))   # the cell is float64 since .double()
    with pytest.raises(ValueError, match="8 neurons|p.omega is for 8"):
        norse_ext.BRFCell(8)(torch.rand(3, 5))
    with pytest.raises(ValueError, match="time-first"):
        norse_ext.BRF(8)(torch.rand(8))
    with pytest.raises(ValueError, match="3 dimensions"):
        norse_ext.build_paper_network((4, 8, 2))(torch.rand(10, 4))
    with pytest.raises(ValueError, match="input_size = 4"):
        norse_ext.build_paper_network((4, 8, 2))(torch.rand(10, 2, 3))
    with pytest.raises(TypeError, match="resolve_parameters"):
        nf.brf_feed_forward_step(torch.rand(2, 3), nf.BRFFeedForwardState(*torch.zeros(3, 2, 3)),
                                 norse_ext.BRFParameters())
    with pytest.raises(ValueError, match="unknown task"):
        norse_ext.build_paper_network("mnist")
    with pytest.raises(ValueError, match="`neuron` must be one of"):
        norse_ext.build_paper_network("ecg", neuron="lif")


# ------------------------------------------------------------------------------------------------------------------
# Tutorial
# ------------------------------------------------------------------------------------------------------------------


def test_quickstart_notebook_runs(monkeypatch):
    """examples/norse_quickstart.ipynb executes top to bottom (BRF_QUICK=1: fewer training updates)."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("matplotlib")
    from .conftest import REPO_ROOT

    monkeypatch.setenv("BRF_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYTHONPATH", f"{REPO_ROOT}:{__import__('os').environ.get('PYTHONPATH', '')}")
    path = REPO_ROOT / "examples" / "norse_quickstart.ipynb"
    notebook = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    text = "".join(o.get("text", "") for c in notebook.cells for o in c.get("outputs", []))
    assert "batch accuracy" in text and "input_gain=1.0 " in text
