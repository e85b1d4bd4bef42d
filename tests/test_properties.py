"""Property-based tests of the divergence boundary (hypothesis)."""

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from brf_plugins import functional as F

dts = st.sampled_from([0.001, 0.004, 0.01, 0.05])
fractions = st.floats(min_value=1e-4, max_value=0.999, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(dt=dts, frac=fractions, b_offset=st.floats(0.0, 50.0), q=st.floats(0.0, 20.0))
def test_one_step_map_is_non_expanding_exactly_below_the_overdamping_limit(dt, frac, b_offset, q):
    """With b' >= 0, q >= 0 the free BRF map has spectral radius <= 1 (= 1 on the boundary b' = q = 0) as long as
    b' + q <= 2 sqrt(1 - (dt w)^2) / dt; beyond that the explicit Euler step overshoots and expands."""
    omega = torch.tensor([frac / dt], dtype=torch.float64)
    b = F.brf_damping(omega, torch.tensor([b_offset], dtype=torch.float64),
                      torch.tensor([q], dtype=torch.float64), dt)
    radius = float(F.one_step_radius(omega, b, dt))
    limit = float(F.overdamping_limit(omega, dt))
    if b_offset + q <= limit * (1 - 1e-9):
        assert radius <= 1.0 + 1e-12
    elif b_offset + q >= limit * (1 + 1e-9):
        assert radius > 1.0
    if b_offset == 0 and q == 0:
        assert math.isclose(radius, 1.0, abs_tol=1e-12)


@settings(max_examples=60, deadline=None)
@given(dt=dts, frac=fractions, share=st.floats(0.0, 1.0), split=st.floats(0.0, 1.0),
       u0=st.floats(-10, 10), v0=st.floats(-10, 10))
def test_free_membrane_never_grows(dt, frac, share, split, u0, v0):
    """Simulated with brf_step (no input, threshold out of reach): |U_t| is non-increasing over 300 steps for any
    b', q0 >= 0 with b' + q0 within the overdamping limit (q only decays without spikes)."""
    omega = torch.tensor([frac / dt], dtype=torch.float64)
    total = share * float(F.overdamping_limit(omega, dt)) * (1 - 1e-9)
    b_offset, q0 = split * total, (1 - split) * total
    b_off = torch.tensor([b_offset], dtype=torch.float64)
    u = torch.tensor([[u0]], dtype=torch.float64)
    v = torch.tensor([[v0]], dtype=torch.float64)
    q = torch.tensor([[q0]], dtype=torch.float64)
    zero = torch.zeros(1, 1, dtype=torch.float64)
    norm = math.hypot(u0, v0)
    for _ in range(300):
        z, u, v, q = F.brf_step(zero, u, v, q, omega, b_off, dt, theta=1e9)
        new = math.hypot(float(u), float(v))
        assert new <= norm * (1 + 1e-12) + 1e-300
        norm = new
    assert float(z) == 0


@settings(max_examples=100, deadline=None)
@given(dt=dts, frac=st.floats(0.5, 0.999), b_offset=st.floats(0.0, 0.5))
def test_vanilla_rf_expands_where_brf_does_not(dt, frac, b_offset):
    """Without p(omega) a small damping is not enough: the RF map expands when b' < -p(omega) (spec 9.13)."""
    omega = torch.tensor([frac / dt], dtype=torch.float64)
    p = float(F.divergence_boundary(omega, dt))
    radius_rf = float(F.one_step_radius(omega, torch.tensor([-b_offset], dtype=torch.float64), dt))
    if b_offset < -p - 1e-9:
        assert radius_rf > 1.0
    else:
        assert radius_rf <= 1.0 + 1e-12
