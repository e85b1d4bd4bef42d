"""The reliability issue's probes at the neurons' public entry points (core, snnTorch, Norse): the one
validation layer (brf_plugins._checks) and the dtype policy, each with its error type and message."""

import pytest
import torch

from brf_plugins import RecurrentSNN, functional as F, kernels
from brf_plugins.kernels import li_sequence

snnx = pytest.importorskip("snntorch_ext")
norse_ext = pytest.importorskip("norse_ext")


def _drive(neuron, steps=40, dtype=torch.float32):
    torch.manual_seed(1)
    lin = torch.nn.Linear(3, 4)
    return lin, [torch.rand(2, 3) * 40 for _ in range(steps)]


def test_bf16_under_autocast_keeps_the_float32_state_and_the_float32_spikes():
    """torch.autocast feeds a bf16 current: the neuron casts it up, keeps its float32 state across steps (it was
    re-zeroed every step) and spikes as for the float32 current it was cast from."""
    lin, xs = _drive("brf")
    cast, plain = snnx.BRF(4, init_hidden=True), snnx.BRF(4, init_hidden=True)
    plain.load_state_dict(cast.state_dict())
    spikes_autocast, spikes_plain = [], []
    for x in xs:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            current = lin(x)
            assert current.dtype == torch.bfloat16
            spikes_autocast.append(cast(current))
        spikes_plain.append(plain(current.float()))
    assert cast.u.dtype == torch.float32 and cast.q.abs().sum() > 0          # a state that persisted
    assert torch.equal(torch.stack(spikes_autocast), torch.stack(spikes_plain))
    assert torch.stack(spikes_plain).sum() > 0


@pytest.mark.parametrize("make", [lambda: snnx.BRF(4), lambda: norse_ext.BRFCell(4),
                                  lambda: norse_ext.BRFRecurrentCell(4, 4)])
def test_half_input_outside_autocast_is_an_error_with_the_fix(make):
    with pytest.raises(TypeError, match=r"bfloat16.*float32.*autocast"):
        make()(torch.rand(2, 4, dtype=torch.bfloat16))


@pytest.mark.parametrize("make", [lambda: snnx.BRF(4), lambda: norse_ext.BRFCell(4)])
def test_half_precision_modules_are_rejected(make):
    with pytest.raises(TypeError, match="not accurate in half precision.*float32"):
        make().half()(torch.rand(2, 4, dtype=torch.half))


def test_other_dtype_than_the_parameters_is_caught_at_the_entry():
    """float32 current into float64 parameters: named at once (it used to promote and fail a step later)."""
    with pytest.raises(TypeError, match=r"`input_`.*float32.*BRF's parameters have torch.float64"):
        snnx.BRF(4).double()(torch.rand(2, 4))
    with pytest.raises(TypeError, match=r"`input_tensor`.*float32.*torch.float64"):
        norse_ext.BRFCell(4).double()(torch.rand(2, 4))
    with pytest.raises(TypeError, match=r"`x`.*float32.*RecurrentSNN's parameters have torch.float64"):
        RecurrentSNN(2, 4, 3).double()(torch.rand(5, 2, 2))


def test_snntorch_single_step_rejects_nan():
    brf = snnx.BRF(4, init_hidden=True)
    with pytest.raises(ValueError, match="NaN or inf"):
        brf(torch.tensor([[float("nan"), 0.0, 0.0, 0.0]]))


@pytest.mark.parametrize("make", [lambda: snnx.BRF(3, gamma=1.5), lambda: snnx.BHRF(3, gamma=-0.1),
                                  lambda: snnx.RBRF(3, gamma=1.0),
                                  lambda: norse_ext.BRFCell(3, norse_ext.BRFParameters(gamma=1.5)),
                                  lambda: norse_ext.BHRFCell(3, norse_ext.BHRFParameters(gamma=1.5))])
def test_gamma_outside_the_unit_interval_is_rejected(make):
    with pytest.raises(ValueError, match=r"`gamma` must be in \[0, 1\)"):
        make()


@pytest.mark.parametrize("kwargs,match", [(dict(dt=-0.01), "dt"), (dict(dt=0.0), "dt"),
                                          (dict(theta=float("nan")), "theta"), (dict(gamma=1.5), "gamma"),
                                          (dict(theta=0.0), "theta.*> 0")])
def test_public_fused_step_checks_its_constants(kwargs, match):
    h = 3
    state = [torch.zeros(2, h) for _ in range(3)]
    with pytest.raises(ValueError, match=match):
        kernels.brf_step(torch.rand(2, h), *state, torch.full((h,), 10.0), torch.full((h,), 0.5), **kwargs)


def test_public_fused_step_checks_its_tensors():
    h = 3
    state = [torch.zeros(2, h) for _ in range(3)]
    with pytest.raises(ValueError, match="NaN or inf"):
        kernels.brf_step(torch.full((2, h), float("inf")), *state, torch.full((h,), 10.0), torch.full((h,), 0.5))
    with pytest.raises(ValueError, match="shape"):
        kernels.brf_step(torch.rand(2, h), *state, torch.full((h + 1,), 10.0), torch.full((h,), 0.5))


@pytest.mark.parametrize("make", [lambda: snnx.BRF(3, threshold=0.0), lambda: snnx.RF(3, threshold=-1.0),
                                  lambda: norse_ext.BRFCell(3, norse_ext.BRFParameters(theta=0.0))(torch.rand(2, 3)),
                                  lambda: RecurrentSNN(2, 3, 2, theta=-0.5)])
def test_a_threshold_at_or_below_rest_is_rejected(make):
    with pytest.raises(ValueError, match="must be > 0.*fire on every step"):
        make()


@pytest.mark.parametrize("make", [lambda: snnx.BRF(3, b_offset=250.0),
                                  lambda: norse_ext.BRFCell(3, norse_ext.BRFParameters(b_offset=250.0)),
                                  lambda: RecurrentSNN(2, 3, 2, b_offset_init=(250.0, 300.0))])
def test_offsets_beyond_the_overdamping_limit_are_rejected(make):
    with pytest.raises(ValueError, match="overdamping limit"):
        make()


def test_the_overdamping_limit_is_where_the_free_membrane_starts_to_grow():
    """The check's bound is real: just inside it a free BRF decays, just beyond it the membrane grows."""
    omega = torch.tensor([30.0], dtype=torch.float64)
    limit = float(F.overdamping_limit(omega, 0.01))
    for b_offset, grows in ((0.99 * limit, False), (1.01 * limit, True)):
        u, v, q = torch.ones(1, 1, dtype=torch.float64), torch.zeros(1, 1, dtype=torch.float64), \
            torch.zeros(1, 1, dtype=torch.float64)
        for _ in range(200):
            _, u, v, q = F.brf_step(torch.zeros_like(u), u, v, q, omega, torch.tensor([b_offset], dtype=torch.float64),
                                    theta=float("inf"))
        assert bool((u.square() + v.square()).sqrt() > 1) == grows, b_offset


def test_norse_sequences_without_time_steps_are_an_error():
    with pytest.raises(ValueError, match="no time steps"):
        norse_ext.BRF(4)(torch.rand(0, 2, 4))
    with pytest.raises(ValueError, match="no time steps"):
        norse_ext.BRFRecurrent(3, 4)(torch.rand(0, 2, 3))


def test_fused_readout_time_constant_gradient_is_as_precise_as_the_plain_path_in_float32():
    """d loss / d tau of the fused and compiled LI readouts, float32 against float64: within 3x the plain step
    loop's error (the two-sum backward was about 10x worse)."""
    torch.manual_seed(0)
    cur = torch.randn(1300, 16, 6, dtype=torch.float64) * 3
    tau = torch.rand(6, dtype=torch.float64) * 5 + 18
    weights = torch.randn(1300, 16, 6, dtype=torch.float64)

    def plain(c, t):
        o, outs = torch.zeros_like(c[0]), []
        for x in c:
            o = F.li_step(x, o, t, validate=False)
            outs.append(o)
        return torch.stack(outs)

    def grad(fn, dtype):
        t = tau.to(dtype).clone().requires_grad_()
        (fn(cur.to(dtype), t) * weights.to(dtype)).sum().backward()
        return t.grad.double()

    reference = grad(plain, torch.float64)
    paths = [("plain", plain), ("fused", lambda c, t: li_sequence(c, None, t))]
    if kernels.compiled_status()[0]:
        paths.append(("compiled", lambda c, t: li_sequence(c, None, t, compiled=True)))
    error = {name: float(((grad(fn, torch.float32) - reference).abs() / reference.abs()).max())
             for name, fn in paths}
    assert max(error.values()) <= 3 * error["plain"], error
