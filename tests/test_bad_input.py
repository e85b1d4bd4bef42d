"""Bad input, tried systematically (property-based, hypothesis).

Every public neuron function, module and loader of the core must answer bad input with an exception of a
documented type (``TypeError`` for wrong types and dtypes, ``ValueError`` for wrong shapes, values, devices and
NaN/inf; ``DataMissingError``/``DataCorruptError`` for files) whose message names the argument: never a silent
wrong result, a hang or a NaN state.

The tests are driven by two tables that the adapters can extend:

* ``FORWARD_CASES``: ``ForwardCase(name, build, layout, mutations, names)``. ``build()`` returns
  ``(call, inputs)``: a function and a dict of valid keyword arguments; ``inputs["x"]``-like primary argument is
  named by ``layout.arg`` and laid out as ``layout.dims`` (e.g. ``"TBm"``). Each mutation (wrong rank, wrong
  width, bad dtype, NaN/inf, empty batch, T = 0, meta device, state from another module) is a hypothesis
  property applied to the primary argument; the raised message must contain one of ``names``.
* ``CONSTRUCTOR_CASES``: ``(name, factory, valid kwargs, {kwarg: strategy of bad values})``.

To add an adapter: append cases whose ``build`` imports it with ``pytest.importorskip`` (see the snntorch_ext and
norse_ext entries at the end of each table).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, FrozenSet, Tuple

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from brf_plugins import functional as F
from brf_plugins import init as I
from brf_plugins import longseq, sequence, surrogate
from brf_plugins.network import LIReadout, RecurrentLayer, RecurrentSNN

SETTINGS = settings(max_examples=12, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

T, B, M, H, C = 4, 3, 2, 5, 3  # sizes of the valid inputs
BAD_DTYPES = [torch.int64, torch.int32, torch.uint8, torch.bool, torch.complex64, torch.complex128]
NON_FINITE = [math.nan, math.inf, -math.inf]


# --------------------------------------------------------------------------------------------------------------
# forward-input cases
# --------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    arg: str                 # keyword of the primary tensor argument
    dims: str                # e.g. "TBm": time, batch, features (last = width)
    width: int

    @property
    def rank(self):
        return len(self.dims)


ALL_MUTATIONS = frozenset({"rank", "width", "dtype", "nonfinite", "empty_batch", "empty_time", "meta",
                           "foreign_state"})


@dataclass(frozen=True)
class ForwardCase:
    name: str
    build: Callable[[], Tuple[Callable, dict]]
    layout: Layout
    mutations: FrozenSet[str]
    names: Tuple[str, ...]                       # any of these in the message is accepted
    foreign_state: Callable[[dict], dict] = None  # valid inputs -> inputs whose state belongs elsewhere
    known_failures: Dict[str, str] = field(default_factory=dict)  # mutation -> reason (strict xfail)

    def __repr__(self):
        return self.name


def _params(h=H):
    return dict(omega=torch.linspace(5.0, 40.0, h), b_offset=torch.full((h,), 0.5))


def _step_case(name, fn, state_names, params, **fixed):
    def build():
        inputs = dict(current=torch.randn(B, H) * 50)
        inputs.update({s: torch.zeros(B, H) for s in state_names})
        inputs.update(params())
        return (lambda **kw: fn(**kw, **fixed)), inputs

    def foreign(inputs):
        bad = dict(inputs)
        bad[state_names[-1]] = torch.zeros(B, H + 1)
        return bad

    return ForwardCase(name, build, Layout("current", "Bh", H), ALL_MUTATIONS - {"empty_time"},
                       ("current",) + tuple(state_names), foreign)


def _sequence_case(name, fn, state_names):
    def build():
        return fn, dict(currents=torch.randn(T, B, H) * 50, **_params())

    def foreign(inputs):
        return dict(inputs, state=tuple(torch.zeros(B, H) for _ in range(len(state_names) + 1)))

    return ForwardCase(name, build, Layout("currents", "TBh", H), ALL_MUTATIONS, ("currents", "state", "omega"),
                       foreign)


def _net(neuron="brf", m=M, h=H):
    torch.manual_seed(0)
    return RecurrentSNN(m, h, C, neuron, omega_init=(5.0, 40.0))


def _snn_case(name, neuron, runner=None):
    def build():
        net = _net(neuron)
        call = (lambda x, state=None: runner(net, x, state)) if runner else net
        return call, dict(x=torch.rand(T, B, M))

    def foreign(inputs):
        other = "alif" if neuron != "alif" else "brf"
        donor = _net(other)
        return dict(inputs, state=donor(torch.rand(T, B, M)).state)

    return ForwardCase(name, build, Layout("x", "TBm", M), ALL_MUTATIONS, ("x", "state"), foreign)


def _layer_case(neuron):
    def build():
        torch.manual_seed(0)
        layer = RecurrentLayer(M, H, neuron, omega_init=(5.0, 40.0))
        return layer, dict(x=torch.rand(B, M))

    def foreign(inputs):
        other = RecurrentLayer(M, H + 1, neuron, omega_init=(5.0, 40.0))
        return dict(inputs, state=other.init_state(B))

    return ForwardCase(f"RecurrentLayer[{neuron}]", build, Layout("x", "Bm", M), ALL_MUTATIONS - {"empty_time"},
                       ("x", "state", "z", "u", "v", "q", "a"), foreign)


def _readout_case():
    def build():
        torch.manual_seed(0)
        return LIReadout(H, C), dict(z=(torch.rand(B, H) < 0.3).float())

    def foreign(inputs):
        return dict(inputs, o=torch.zeros(B, C + 2))

    return ForwardCase("LIReadout", build, Layout("z", "Bh", H), ALL_MUTATIONS - {"empty_time"}, ("z", "o"), foreign)


def _surrogate_case(name, spike):
    def build():
        return (lambda x: spike(x)), dict(x=torch.randn(B, H))

    return ForwardCase(name, build, Layout("x", "Bh", H), frozenset({"dtype"}), ("x",))


def _tbptt(net, x, state):
    return longseq.truncated_bptt(net, x, lambda out, s: out.readout.sum(), chunk_size=2, state=state)


FORWARD_CASES = [
    _step_case("brf_step", F.brf_step, ("u", "v", "q"), _params),
    _step_case("rf_step", F.rf_step, ("u", "v"), _params),
    _step_case("izhikevich_step", F.izhikevich_step, ("u", "v"), _params),
    _step_case("bhrf_step", F.bhrf_step, ("u", "v", "q"), _params),
    _step_case("alif_step", F.alif_step, ("z", "u", "a"),
               lambda: dict(tau_mem=torch.full((H,), 20.0), tau_adp=torch.full((H,), 200.0))),
    _step_case("li_step", F.li_step, ("o",), lambda: dict(tau_mem=torch.full((H,), 20.0))),
    _sequence_case("brf_sequence", sequence.brf_sequence, ("u", "v", "q")),
    _sequence_case("rf_sequence", sequence.rf_sequence, ("u", "v")),
    _sequence_case("bhrf_sequence", sequence.bhrf_sequence, ("u", "v", "q")),
    *[_layer_case(n) for n in ("brf", "rf", "bhrf", "alif")],
    _readout_case(),
    *[_snn_case(f"RecurrentSNN[{n}]", n) for n in ("brf", "rf", "bhrf", "alif")],
    _snn_case("checkpointed_forward", "brf", lambda net, x, s: longseq.checkpointed_forward(net, x, s, chunk_size=2)),
    _snn_case("truncated_bptt", "brf", _tbptt),
    _surrogate_case("double_gaussian()", surrogate.double_gaussian()),
    _surrogate_case("multi_gaussian(fgi=True)", surrogate.multi_gaussian(fgi=True)),
]


def _adapter(package):
    mod = pytest.importorskip(package)
    build = getattr(mod, "build_paper_network", None)
    if build is None:  # e.g. an empty namespace package
        pytest.skip(f"{package} has no build_paper_network")
    return build


def _adapter_snn_case(package, neuron="brf"):
    """A ``build_paper_network`` module of an adapter package (skipped where the package is not importable)."""
    def build():
        torch.manual_seed(0)
        net = _adapter(package)((M, H, C), neuron=neuron)
        return net, dict(x=torch.rand(T, B, M))

    def foreign(inputs):
        other = "alif" if neuron != "alif" else "brf"
        donor = _adapter(package)((M, H, C), neuron=other)
        return dict(inputs, state=donor(torch.rand(T, B, M)).state)

    return ForwardCase(f"{package}.build_paper_network[{neuron}]", build, Layout("x", "TBm", M), ALL_MUTATIONS,
                       ("x", "state", "input"), foreign,
                       known_failures={**ADAPTER_KNOWN_FAILURES, **ADAPTER_KNOWN_FAILURES_BY_CASE.get((package, neuron), {})})


# found by these tests when the adapters were merged; strict, so an entry must go once the adapter is fixed
ADAPTER_KNOWN_FAILURES = {}
ADAPTER_KNOWN_FAILURES_BY_CASE = {}


ADAPTER_CASES = [_adapter_snn_case(p, n) for p in ("snntorch_ext", "norse_ext") for n in ("brf", "alif")]


def _case_params(cases, mutation):
    params = []
    for c in cases:
        if mutation not in c.mutations:
            continue
        reason = c.known_failures.get(mutation)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(c, id=c.name, marks=marks))
    return params


def _bad_input_check(mutation: str, **strategies):
    """The decorators of one malformed-input check: a case per entry point that takes ``mutation``, the Hypothesis
    settings, and the drawn ``strategies``."""
    def decorate(test):
        return pytest.mark.parametrize("case", _case_params(CASES, mutation))(SETTINGS(given(**strategies)(test)))
    return decorate


def _expect(case, error, call, inputs):
    with pytest.raises(error) as info:
        out = call(**inputs)
        # reaching here is the failure; show what came back
        pytest.fail(f"{case.name} accepted bad input and returned {type(out).__name__}")
    message = str(info.value)
    assert any(f"`{n}`" in message or f"{n}" in message.split(":")[0] or f"`{n}." in message
               or f"state `{n}`" in message for n in case.names), \
        f"{case.name}: message does not name the argument ({case.names}): {message}"
    return message


def _shape(layout, sizes):
    """A valid shape for a layout, with the given overrides (dim letter -> size)."""
    default = {"T": T, "B": B}
    return tuple(sizes.get(d, default.get(d, layout.width)) for d in layout.dims)


CASES = FORWARD_CASES + ADAPTER_CASES


@_bad_input_check("rank", data=st.data())
def test_wrong_rank(case, data):
    call, inputs = case.build()
    layout = case.layout
    rank = data.draw(st.integers(0, 5).filter(lambda r: r != layout.rank), label="rank")
    shape = tuple(data.draw(st.lists(st.integers(1, 3), min_size=max(rank - 1, 0), max_size=max(rank - 1, 0)))) \
        + ((layout.width,) if rank else ())
    inputs[layout.arg] = torch.rand(shape)
    _expect(case, (ValueError, TypeError), call, inputs)


@_bad_input_check("width", data=st.data())
def test_wrong_width(case, data):
    call, inputs = case.build()
    layout = case.layout
    width = data.draw(st.integers(0, 9).filter(lambda w: w != layout.width), label="width")
    inputs[layout.arg] = torch.rand(_shape(layout, {layout.dims[-1]: width}))
    _expect(case, ValueError, call, inputs)


@_bad_input_check("dtype", dtype=st.sampled_from(BAD_DTYPES))
def test_non_float_or_complex_dtype(case, dtype):
    call, inputs = case.build()
    x = inputs[case.layout.arg]
    inputs[case.layout.arg] = (x * 3).to(dtype) if not dtype.is_complex else torch.complex(x, x).to(dtype)
    message = _expect(case, TypeError, call, inputs)
    assert "float" in message


@_bad_input_check("nonfinite", data=st.data())
def test_nan_or_inf_input(case, data):
    call, inputs = case.build()
    x = inputs[case.layout.arg].clone()
    index = data.draw(st.integers(0, x.numel() - 1), label="flat index")
    x.view(-1)[index] = data.draw(st.sampled_from(NON_FINITE), label="value")
    inputs[case.layout.arg] = x
    message = _expect(case, ValueError, call, inputs)
    assert "NaN" in message


@_bad_input_check("empty_batch", data=st.data())
def test_empty_batch(case, data):
    call, inputs = case.build()
    layout = case.layout
    sizes = {"B": 0}
    if "T" in layout.dims:
        sizes["T"] = data.draw(st.integers(1, 4), label="T")
    inputs[layout.arg] = torch.rand(_shape(layout, sizes))
    _expect(case, ValueError, call, inputs)


@_bad_input_check("empty_time", batch=st.integers(0, 4))
def test_zero_time_steps(case, batch):
    call, inputs = case.build()
    inputs[case.layout.arg] = torch.rand(_shape(case.layout, {"T": 0, "B": batch}))
    _expect(case, ValueError, call, inputs)


@_bad_input_check("meta", data=st.data())
def test_mismatched_device(case, data):
    """The "meta" device stands in for another device (a GPU) on CPU-only machines."""
    call, inputs = case.build()
    moved = data.draw(st.sampled_from(sorted(k for k, v in inputs.items() if isinstance(v, torch.Tensor))),
                      label="argument moved to meta")
    inputs[moved] = inputs[moved].to("meta")
    message = _expect(case, ValueError, call, inputs) if moved == case.layout.arg else None
    if message is None:  # a parameter or state moved: its own name must be in the message
        with pytest.raises(ValueError, match=f"`{moved}`"):
            call(**inputs)


@_bad_input_check("foreign_state", data=st.data())
def test_state_from_another_module(case, data):
    call, inputs = case.build()
    bad = case.foreign_state(inputs)
    _expect(case, (ValueError, TypeError), call, bad)


# the valid inputs of every case work: the failures above come from the mutation alone
@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
@SETTINGS
@given(scale=st.floats(0.0, 1e3), seed=st.integers(0, 2 ** 16))
def test_valid_inputs_give_finite_results(case, scale, seed):
    call, inputs = case.build()
    g = torch.Generator().manual_seed(seed)
    x = inputs[case.layout.arg]
    inputs[case.layout.arg] = torch.rand(x.shape, generator=g) * scale
    out = call(**inputs)
    tensors = [t for t in torch.utils._pytree.tree_leaves(out) if isinstance(t, torch.Tensor)]
    assert tensors and all(bool(torch.isfinite(t).all()) for t in tensors), case.name


# --------------------------------------------------------------------------------------------------------------
# constructor and helper arguments
# --------------------------------------------------------------------------------------------------------------

not_positive_ints = st.one_of(st.integers(-5, 0), st.floats(0.5, 9.5), st.booleans(), st.text(max_size=2),
                              st.none())
not_finite = st.sampled_from(NON_FINITE)
bad_dt = st.one_of(st.floats(-1.0, 0.0), not_finite, st.text(max_size=2))
bad_gamma = st.one_of(st.floats(1.0, 10.0), st.floats(-10.0, -1e-6), not_finite)
not_callable = st.one_of(st.integers(), st.text(max_size=3), st.floats(allow_nan=False))


@st.composite
def omega_beyond_limit(draw, dt=0.01):
    """An omega init spec reaching |omega| >= 1/dt, as a value, a (low, high) range or a tensor."""
    high = draw(st.floats(1.0 / dt, 50.0 / dt)) * draw(st.sampled_from([1.0, -1.0]))
    kind = draw(st.sampled_from(["value", "range", "tensor"]))
    if kind == "value":
        return high
    if kind == "range":
        return (min(0.0, high), max(0.0, high)) if high < 0 else (1.0, high)
    return torch.tensor([1.0, high])


@st.composite
def omega_and_dt(draw):
    dt = draw(st.floats(1e-4, 0.5))
    omega = draw(st.floats(1.0, 20.0)) / dt
    return dict(dt=dt, omega_init=omega)


def _snn(**kw):
    args = dict(input_size=M, hidden_size=H, output_size=C)
    args.update(kw)
    return RecurrentSNN(**args)


def _layer(**kw):
    args = dict(input_size=M, hidden_size=H)
    args.update(kw)
    return RecurrentLayer(**args)


def _alif_layer(**kw):
    return _layer(neuron="alif", **kw)


def _readout(**kw):
    args = dict(input_size=H, output_size=C)
    args.update(kw)
    return LIReadout(**args)


CONSTRUCTOR_CASES = [
    # (case name, factory, argument, strategy of bad values, accepted exception types, name in message)
    ("RecurrentSNN", _snn, "input_size", not_positive_ints, (TypeError, ValueError), "input_size"),
    ("RecurrentSNN", _snn, "hidden_size", not_positive_ints, (TypeError, ValueError), "hidden_size"),
    ("RecurrentSNN", _snn, "output_size", not_positive_ints, (TypeError, ValueError), "output_size"),
    ("RecurrentSNN", _snn, "neuron", st.text(max_size=5).filter(lambda s: s not in ("brf", "rf", "bhrf", "alif")),
     ValueError, "neuron"),
    ("RecurrentSNN", _snn, "omega_init", omega_beyond_limit(), ValueError, "omega_init"),
    ("RecurrentSNN", None, "omega_init+dt", omega_and_dt(), ValueError, "omega_init"),
    ("RecurrentSNN", _snn, "dt", bad_dt, (TypeError, ValueError), "dt"),
    ("RecurrentSNN", _snn, "tau_out_init", st.tuples(not_finite, st.floats(0, 5)), ValueError, "tau_init"),
    ("RecurrentLayer", _layer, "gamma", bad_gamma, ValueError, "gamma"),
    ("RecurrentLayer", _layer, "theta", not_finite, ValueError, "theta"),
    ("RecurrentLayer", _layer, "spike_fn", not_callable, TypeError, "spike_fn"),
    ("RecurrentLayer", _layer, "b_offset_init", st.sampled_from([math.nan, (0.0, math.inf), (2.0, 1.0)]),
     ValueError, "b_offset_init"),
    ("RecurrentLayer", _layer, "alif_beta", st.one_of(st.floats(-10, -1e-6), not_finite), ValueError, "alif_beta"),
    ("RecurrentLayer", _layer, "rf_reset", st.text(max_size=4).filter(lambda s: s not in F.RF_RESETS), ValueError,
     "rf_reset"),
    ("RecurrentLayer", _alif_layer, "tau_adp_init", st.tuples(st.floats(1, 10), st.floats(-5, -1e-3)), ValueError,
     "tau_adp_init"),
    ("LIReadout", _readout, "output_size", not_positive_ints, (TypeError, ValueError), "output_size"),
    ("LIReadout", _readout, "tau_init", st.tuples(not_finite, st.floats(0, 1)), ValueError, "tau_init"),
    ("double_gaussian", surrogate.double_gaussian, "width", st.one_of(st.floats(-5, 0), not_finite), ValueError,
     "width"),
    ("double_gaussian", surrogate.double_gaussian, "scale", st.one_of(st.floats(-5, 0), not_finite), ValueError,
     "scale"),
    ("multi_gaussian", surrogate.multi_gaussian, "height", st.one_of(st.floats(-5, -1e-6), not_finite), ValueError,
     "height"),
    ("multi_gaussian", surrogate.multi_gaussian, "gamma", not_finite, ValueError, "gamma"),
    ("brf_step", lambda **kw: F.brf_step(torch.ones(B, H), *[torch.zeros(B, H)] * 3, **_params(), **kw), "dt",
     bad_dt, (TypeError, ValueError), "dt"),
    ("brf_step", lambda **kw: F.brf_step(torch.ones(B, H), *[torch.zeros(B, H)] * 3, **_params(), **kw), "gamma",
     bad_gamma, ValueError, "gamma"),
    ("bhrf_step", lambda **kw: F.bhrf_step(torch.ones(B, H), *[torch.zeros(B, H)] * 3, **_params(), **kw),
     "variant", st.text(max_size=4).filter(lambda s: s not in F.BHRF_VARIANTS), ValueError, "variant"),
    ("brf_sequence", lambda **kw: sequence.brf_sequence(torch.ones(T, B, H), **_params(), **kw), "dt", bad_dt,
     (TypeError, ValueError), "dt"),
    ("uniform_or_value", lambda **kw: I.uniform_or_value("omega", **kw), "n", not_positive_ints,
     (TypeError, ValueError), "omega"),
    ("omega_parameter", lambda **kw: I.omega_parameter(4, dt=0.01, **kw), "init", omega_beyond_limit(), ValueError,
     "omega"),
    ("normal_parameter", lambda **kw: I.normal_parameter("tau", 4, 20.0, **kw), "std",
     st.one_of(st.floats(-5, -1e-6), not_finite), ValueError, "tau"),
    ("default_input_gain", I.default_input_gain, "dt", bad_dt, (TypeError, ValueError), "dt"),
    ("xavier_uniform_", I.xavier_uniform_, "weight",
     st.sampled_from([torch.ones(3), torch.ones(0, 2), torch.ones(2, 2, dtype=torch.long), [[1.0]]]),
     (TypeError, ValueError), "weight"),
    ("chunk_bounds", lambda **kw: longseq.chunk_bounds(10, **kw), "chunk_size", not_positive_ints,
     (TypeError, ValueError), "chunk_size"),
]


def _constructor_params():
    params = []
    for name, factory, arg, strategy, error, expected in CONSTRUCTOR_CASES:
        params.append(pytest.param(factory, arg, strategy, error, expected, id=f"{name}({arg})"))
    return params


@pytest.mark.parametrize("factory, arg, strategy, error, expected", _constructor_params())
@SETTINGS
@given(data=st.data())
def test_bad_constructor_and_helper_arguments(factory, arg, strategy, error, expected, data):
    value = data.draw(strategy, label=arg)
    if arg == "omega_init+dt":
        call = lambda: _snn(**value)  # noqa: E731
    elif arg == "n":
        call = lambda: factory(n=value, init=1.0)  # noqa: E731
    elif arg == "init":
        call = lambda: factory(init=value)  # noqa: E731
    else:
        call = lambda: factory(**{arg: value})  # noqa: E731
    with pytest.raises(error) as info:
        call()
    assert expected in str(info.value), str(info.value)


# --------------------------------------------------------------------------------------------------------------
# datasets and the checkpoint loader: missing and corrupt files
# --------------------------------------------------------------------------------------------------------------

from brf_plugins.checkpoints import inspect_authors_checkpoint, load_authors_checkpoint  # noqa: E402
from brf_plugins.data import DataCorruptError, DataMissingError, ECGQTDB, SequentialMNIST  # noqa: E402
from brf_plugins.data.mnist import read_idx  # noqa: E402

MNIST_NAMES = ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


@pytest.mark.parametrize("loader", [
    lambda root: SequentialMNIST(root, split="test"),
    lambda root: ECGQTDB(root, split="test"),
    lambda root: load_authors_checkpoint(root / "ecg_brf.pt"),
], ids=["SequentialMNIST", "ECGQTDB", "load_authors_checkpoint"])
def test_missing_files_say_where_to_put_them(tmp_path, loader):
    with pytest.raises(DataMissingError) as info:
        loader(tmp_path)
    assert str(tmp_path) in str(info.value)
    assert isinstance(info.value, FileNotFoundError)


@pytest.mark.parametrize("make", [SequentialMNIST, ECGQTDB], ids=["SequentialMNIST", "ECGQTDB"])
@given(root=st.one_of(st.integers(), st.floats(allow_nan=False), st.lists(st.integers(), max_size=2)))
@SETTINGS
def test_root_of_the_wrong_type(make, root):
    with pytest.raises(TypeError, match="root"):
        make(root)


def test_root_that_is_a_file(tmp_path):
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(DataMissingError, match="root"):
        SequentialMNIST(tmp_path / "file")


@pytest.mark.parametrize("split", ["", "valid", "TEST", None])
def test_unknown_split(tmp_path, split):
    for make in (SequentialMNIST, ECGQTDB):
        with pytest.raises(ValueError, match="split"):
            make(tmp_path, split=split)


corrupt_bytes = st.binary(min_size=0, max_size=64)


@given(blob=corrupt_bytes, gz=st.booleans(), verify=st.booleans())
@SETTINGS
def test_corrupt_mnist_files(tmp_path_factory, blob, gz, verify):
    import gzip
    root = tmp_path_factory.mktemp("mnist")
    for name in MNIST_NAMES:
        data = gzip.compress(blob) if gz else blob
        (root / (name + (".gz" if gz else ""))).write_bytes(data)
    with pytest.raises(DataCorruptError) as info:
        SequentialMNIST(root, split="test", verify=verify)
    assert "t10k" in str(info.value) or "MNIST" in str(info.value)


@given(blob=corrupt_bytes)
@SETTINGS
def test_truncated_gzip_idx(tmp_path_factory, blob):
    import gzip
    root = tmp_path_factory.mktemp("gz")
    path = root / "x-idx1-ubyte.gz"
    full = gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x40" + blob)
    path.write_bytes(full[: len(full) // 2])
    with pytest.raises(DataCorruptError, match="x-idx1-ubyte"):
        read_idx(path)


@given(blob=corrupt_bytes, verify=st.booleans())
@SETTINGS
def test_corrupt_ecg_files(tmp_path_factory, blob, verify):
    root = tmp_path_factory.mktemp("ecg")
    (root / "QTDB_test.mat").write_bytes(blob)
    with pytest.raises(DataCorruptError, match="QTDB_test.mat"):
        ECGQTDB(root, split="test", verify=verify)


def _valid_state_dict(neuron="brf"):
    return {k: v.clone() for k, v in _net(neuron).state_dict().items()}


@st.composite
def broken_checkpoints(draw):
    kind = draw(st.sampled_from(["bytes", "not_a_dict", "missing_key", "nan_weight", "wrong_kind"]))
    if kind == "bytes":
        return kind, draw(st.binary(max_size=64))
    if kind == "not_a_dict":
        return kind, draw(st.sampled_from([[1, 2], torch.ones(3), {"model_state_dict": 3}]))
    state = _valid_state_dict()
    if kind == "missing_key":
        del state[draw(st.sampled_from(sorted(k for k in state if k != "hidden.linear.weight")))]
    elif kind == "nan_weight":
        key = draw(st.sampled_from(sorted(state)))
        state[key].view(-1)[0] = draw(st.sampled_from(NON_FINITE))
    else:
        state = _valid_state_dict("alif")
    return kind, {"model_state_dict": state}


@given(case=broken_checkpoints())
@SETTINGS
def test_corrupt_checkpoints(tmp_path_factory, case):
    kind, blob = case
    path = tmp_path_factory.mktemp("ckpt") / "ecg_brf.pt"
    if kind == "bytes":
        path.write_bytes(blob)
    else:
        torch.save(blob, path)
    neuron = "brf" if kind == "wrong_kind" else None
    with pytest.raises(DataCorruptError, match="ecg_brf.pt"):
        load_authors_checkpoint(path, neuron=neuron)


@given(dt=st.one_of(st.floats(-1, 0), not_finite, st.floats(1 / 40.0, 10.0)))
@SETTINGS
def test_checkpoint_dt_out_of_range(tmp_path_factory, dt):
    """Trained frequencies reach 40 here: dt >= 1/40 puts them at or above 1/dt."""
    path = tmp_path_factory.mktemp("ckpt") / "ecg_brf.pt"
    torch.save({"model_state_dict": _valid_state_dict()}, path)
    with pytest.raises(ValueError, match="dt"):
        inspect_authors_checkpoint(path, dt=dt)
