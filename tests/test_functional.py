"""Neuron dynamics against an independent float64 re-derivation written here from the spec.

The references below use complex arithmetic (BRF/RF) or the 2x2 update matrix (BHRF) instead of the core's
real-valued component updates, so an error in either shows up as a mismatch.
"""

import math

import pytest
import torch

from brf_plugins import functional as F

DT = 0.01


def heaviside(x):
    return (x > 0).double()


def ref_brf(currents, omega, b_offset, dt=DT, theta=1.0, gamma=0.9, boundary=True, refractory=True, smooth=True):
    """Complex-valued BRF (spec 1.1): U <- U + dt((b + i w) U + I)."""
    T, B, h = currents.shape
    U = torch.zeros(B, h, dtype=torch.complex128)
    q = torch.zeros(B, h, dtype=torch.float64)
    w = omega.abs()
    p = (-1 + torch.sqrt(1 - (dt * w) ** 2)) / dt
    zs, us, vs, qs = [], [], [], []
    for t in range(T):
        b = (p if boundary else 0) - b_offset.abs() - (q if smooth else 0)
        U = U + dt * (torch.complex(b, w.expand_as(b)) * U + currents[t])
        z = heaviside(U.real - theta - (q if refractory else 0))
        q = gamma * q + z
        zs.append(z), us.append(U.real), vs.append(U.imag), qs.append(q)
    return [torch.stack(a) for a in (zs, us, vs, qs)]


def ref_rf(currents, omega, b_offset, dt=DT, theta=1.0, reset="none"):
    """The RF neuron in complex128; ``reset="izhikevich"`` is Izhikevich's original (spike on the imaginary part,
    reset to 0 + 1i)."""
    T, B, h = currents.shape
    U = torch.zeros(B, h, dtype=torch.complex128)
    lam = torch.complex(-b_offset.abs(), omega.abs())
    zs, us, vs = [], [], []
    for t in range(T):
        U = U + dt * (lam * U + currents[t])
        z = heaviside((U.imag if reset == "izhikevich" else U.real) - theta)
        if reset == "soft":
            U = U - (1 + 1j) * z * theta
        elif reset == "hard":
            U = U * (1 - z)
        elif reset == "izhikevich":
            U = torch.where(z.bool(), torch.full_like(U, 1j), U)
        zs.append(z), us.append(U.real), vs.append(U.imag)
    return [torch.stack(a) for a in (zs, us, vs)]


def ref_bhrf(currents, omega, b_offset, dt=DT, theta=1.0, gamma=0.9, variant="code"):
    """Harmonic RF through its 2x2 update matrix acting on (velocity u, position v)."""
    T, B, h = currents.shape
    w2 = omega.abs() ** 2
    u = torch.zeros(B, h, dtype=torch.float64)
    v = torch.zeros_like(u)
    q = torch.zeros_like(u)
    zs, us, vs, qs = [], [], [], []
    for t in range(T):
        sign = -1.0 if variant == "paper" else 1.0
        b = dt * w2 / 2 + sign * (b_offset.abs() + q)
        if variant == "code":   # v' = v + dt u ; u' = u + dt I - 2 dt b u - dt w2 v'
            m_uu, m_uv = 1 - 2 * dt * b - dt * dt * w2, -dt * w2
        else:                   # explicit Euler: u' uses the old v
            m_uu, m_uv = 1 - 2 * dt * b, -dt * w2
        u, v = m_uu * u + m_uv * v + dt * currents[t], v + dt * u
        z = heaviside(u - theta - q)
        q = gamma * q + z
        zs.append(z), us.append(u), vs.append(v), qs.append(q)
    return [torch.stack(a) for a in (zs, us, vs, qs)]


def ref_alif(currents, tau_m, tau_a, theta0=0.01, beta=1.8):
    T, B, h = currents.shape
    alpha, rho = math.e ** (-1 / tau_m.abs()), math.e ** (-1 / tau_a.abs())
    z = torch.zeros(B, h, dtype=torch.float64)
    u, a = torch.zeros_like(z), torch.zeros_like(z)
    zs, us, as_ = [], [], []
    for t in range(T):
        a = rho * a + (1 - rho) * z
        thr = theta0 + beta * a
        u = alpha * u + (1 - alpha) * currents[t]
        z = heaviside(u - thr)
        u = u - z * thr
        zs.append(z), us.append(u), as_.append(a)
    return [torch.stack(x) for x in (zs, us, as_)]


def run_core(step, currents, n_state, *params, **kw):
    state = [torch.zeros_like(currents[0]) for _ in range(n_state)]
    outs = []
    for c in currents:
        res = step(c, *state, *params, **kw)
        state = list(res[1:])
        outs.append(res)
    return [torch.stack([o[i] for o in outs]) for i in range(n_state + 1)]


def assert_match(core, ref):
    assert torch.equal(core[0], ref[0]), f"spikes differ at {int((core[0] != ref[0]).sum())} places"
    for c, r in zip(core[1:], ref[1:]):
        # states within 1e-6; relative 1e-9 for the unbounded (unbalanced RF) cases whose amplitudes explode
        torch.testing.assert_close(c, r, rtol=1e-9, atol=1e-6)


@pytest.fixture
def inputs():
    g = torch.Generator().manual_seed(1)
    T, B, h = 400, 3, 16
    currents = (torch.rand(T, B, h, generator=g, dtype=torch.float64) < 0.1).double() * 300.0
    omega = torch.empty(h, dtype=torch.float64).uniform_(3, 60, generator=g)
    b_offset = torch.empty(h, dtype=torch.float64).uniform_(0.1, 1.0, generator=g)
    return currents, omega, b_offset


@pytest.mark.parametrize("T", [1, 400])
def test_brf_matches_complex_reference(inputs, T):
    currents, omega, b_offset = inputs
    currents = currents[:T]
    core = run_core(F.brf_step, currents, 3, omega, b_offset)
    ref = ref_brf(currents, omega, b_offset)
    assert_match(core, ref)
    if T > 1:
        assert core[0].sum() > 50, "the test input should make the neurons spike"


@pytest.mark.parametrize("ablation", [dict(divergence_boundary=False), dict(refractory=False),
                                      dict(smooth_reset=False),
                                      dict(divergence_boundary=False, refractory=False, smooth_reset=False)])
def test_brf_ablations(inputs, ablation):
    currents, omega, b_offset = inputs
    core = run_core(F.brf_step, currents, 3, omega, b_offset, **ablation)
    ref = ref_brf(currents, omega, b_offset, boundary=ablation.get("divergence_boundary", True),
                  refractory=ablation.get("refractory", True), smooth=ablation.get("smooth_reset", True))
    assert_match(core, ref)
    full = run_core(F.brf_step, currents, 3, omega, b_offset)
    assert not torch.equal(core[1], full[1]), "the ablation must change the dynamics"


def test_brf_raw_parameters_are_used_as_absolute_values(inputs):
    currents, omega, b_offset = inputs
    a = run_core(F.brf_step, currents, 3, omega, b_offset)
    b = run_core(F.brf_step, currents, 3, -omega, -b_offset)
    assert all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("reset", ["none", "soft", "hard"])
def test_rf_matches_complex_reference(inputs, reset):
    currents, omega, b_offset = inputs
    core = run_core(F.rf_step, currents, 2, omega, b_offset, reset=reset)
    assert_match(core, ref_rf(currents, omega, b_offset, reset=reset))


def test_izhikevich_matches_complex_reference(inputs):
    currents, omega, b_offset = inputs
    core = run_core(F.izhikevich_step, currents, 2, omega, b_offset)
    ref = ref_rf(currents, omega, b_offset, reset="izhikevich")
    assert core[0].sum() > 0
    assert_match(core, ref)


@pytest.mark.parametrize("variant", ["code", "paper", "explicit"])
def test_bhrf_matches_matrix_reference(inputs, variant):
    currents, omega, b_offset = inputs
    omega = omega.clamp(max=20)
    T = 120 if variant == "paper" else 400  # the paper variant grows without bound
    core = run_core(F.bhrf_step, currents[:T] * 0.2, 3, omega, b_offset, variant=variant)
    assert_match(core, ref_bhrf(currents[:T] * 0.2, omega, b_offset, variant=variant))


def test_alif_matches_reference():
    g = torch.Generator().manual_seed(2)
    T, B, h = 300, 3, 10
    currents = torch.rand(T, B, h, generator=g, dtype=torch.float64) * 0.2
    tau_m = torch.empty(h, dtype=torch.float64).normal_(20, 5, generator=g)
    tau_a = torch.empty(h, dtype=torch.float64).normal_(200, 50, generator=g)
    z = u = a = torch.zeros(B, h, dtype=torch.float64)
    zs, us, as_ = [], [], []
    for c in currents:
        z, u, a = F.alif_step(c, z, u, a, tau_m, tau_a)
        zs.append(z), us.append(u), as_.append(a)
    core = [torch.stack(x) for x in (zs, us, as_)]
    ref = ref_alif(currents, tau_m, tau_a)
    assert core[0].sum() > 0
    assert_match(core, ref)


def test_li_step_is_exponential_filter():
    tau = torch.tensor([5.0, 20.0], dtype=torch.float64)
    o = torch.zeros(1, 2, dtype=torch.float64)
    for _ in range(50):
        o = F.li_step(torch.ones(1, 2, dtype=torch.float64), o, tau)
    expected = 1 - torch.exp(-50 / tau)  # step response of o_t = a o + (1 - a), a = exp(-1/tau)
    torch.testing.assert_close(o[0], expected, rtol=0, atol=1e-12)


def test_divergence_boundary_values():
    omega = torch.tensor([0.0, 10.0, 50.0, 99.0], dtype=torch.float64)
    p = F.divergence_boundary(omega, 0.01)
    expected = torch.tensor([(-1 + math.sqrt(1 - (0.01 * w) ** 2)) / 0.01 for w in omega.tolist()],
                            dtype=torch.float64)
    torch.testing.assert_close(p, expected)
    radius = F.one_step_radius(omega, p, 0.01)
    torch.testing.assert_close(radius, torch.ones_like(radius), rtol=0, atol=1e-12)
    assert torch.isnan(F.divergence_boundary(torch.tensor([101.0]), 0.01)).all()


def test_brf_clamps_omega_below_one_over_dt():
    omega = torch.tensor([150.0], dtype=torch.float64, requires_grad=True)
    z, u, v, q = F.brf_step(torch.ones(1, 1, dtype=torch.float64), *(torch.zeros(1, 1, dtype=torch.float64),) * 3,
                            omega, torch.tensor([0.5], dtype=torch.float64))
    assert torch.isfinite(u).all() and torch.isfinite(v).all()
    assert float(F.resonator_omega(omega.detach(), 0.01)) == pytest.approx(99.9)
    # identity below the clamp: the released models' frequencies are unchanged
    w = torch.linspace(-99.8, 99.8, 101, dtype=torch.float64)
    assert torch.equal(F.resonator_omega(w, 0.01), w.abs())


def test_invalid_choices_raise():
    x = torch.zeros(1, 1)
    with pytest.raises(ValueError, match="reset"):
        F.rf_step(x, x, x, torch.ones(1), torch.ones(1), reset="zero")
    with pytest.raises(ValueError, match="variant"):
        F.bhrf_step(x, x, x, x, torch.ones(1), torch.ones(1), variant="implicit")
