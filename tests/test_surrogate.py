"""Surrogate spike functions: forward values, closed-form derivatives, FGI equivalence."""

import math

import pytest
import torch
from scipy import integrate, optimize

from brf_plugins import surrogate as S


def closed_form_double_gaussian(x, h=0.15, s=6.0, sigma=0.5, g=0.5):
    n = lambda x, mu, sd: math.exp(-((x - mu) ** 2) / (2 * sd * sd)) / (sd * math.sqrt(2 * math.pi))
    return g * ((1 + h) * n(x, 0, sigma) - 2 * h * n(x, 0, s * sigma))


def closed_form_multi_gaussian(x, h=0.15, s=6.0, sigma=0.5, g=0.5):
    n = lambda x, mu, sd: math.exp(-((x - mu) ** 2) / (2 * sd * sd)) / (sd * math.sqrt(2 * math.pi))
    return g * ((1 + h) * n(x, 0, sigma) - h * n(x, sigma, s * sigma) - h * n(x, -sigma, s * sigma))


GRID = torch.linspace(-4, 4, 801, dtype=torch.float64)


@pytest.mark.parametrize("make, closed", [(S.double_gaussian, closed_form_double_gaussian),
                                          (S.multi_gaussian, closed_form_multi_gaussian)])
@pytest.mark.parametrize("fgi", [False, True])
def test_gradient_equals_closed_form(make, closed, fgi):
    x = GRID.clone().requires_grad_()
    y = make(fgi=fgi)(x)
    assert torch.equal(y.detach(), (GRID > 0).double())
    y.sum().backward()
    expected = torch.tensor([closed(v) for v in GRID.tolist()], dtype=torch.float64)
    torch.testing.assert_close(x.grad, expected, rtol=1e-12, atol=1e-15)


def test_double_gaussian_landmarks_of_the_spec():
    f = lambda x: closed_form_double_gaussian(x)
    assert S.double_gaussian_derivative(torch.tensor(0.0, dtype=torch.float64)).item() == pytest.approx(0.43884, abs=5e-6)
    assert S.multi_gaussian_derivative(torch.tensor(0.0, dtype=torch.float64)).item() == pytest.approx(0.43911, abs=5e-6)
    crossing = optimize.brentq(f, 0.5, 2.0)
    assert crossing == pytest.approx(1.270, abs=5e-4)
    res = optimize.minimize_scalar(f, bounds=(1.3, 4.0), method="bounded")
    assert res.x == pytest.approx(1.86, abs=5e-3) and res.fun == pytest.approx(-0.0160, abs=5e-5)
    area, _ = integrate.quad(f, -50, 50)
    assert area == pytest.approx(0.425, abs=5e-4)


@pytest.mark.parametrize("make", [S.double_gaussian, S.multi_gaussian])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fgi_is_bitwise_identical_to_autograd(make, dtype):
    g = torch.Generator().manual_seed(0)
    base = torch.randn(10000, generator=g, dtype=dtype) * 2
    upstream = torch.randn(10000, generator=g, dtype=dtype)
    grads, values = [], []
    for fgi in (False, True):
        x = base.clone().requires_grad_()
        y = make(fgi=fgi)(x)
        (y * upstream).sum().backward()
        grads.append(x.grad)
        values.append(y.detach())
    assert torch.equal(values[0], values[1])
    assert torch.equal(grads[0], grads[1])


def test_fgi_generic_derivative():
    x = torch.linspace(-2, 2, 9, dtype=torch.float64, requires_grad=True)
    y = S.fgi(x, lambda t: torch.exp(-t.abs()))
    assert torch.equal(y.detach(), (x > 0).double())
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.exp(-x.detach().abs()))


def test_heaviside_is_strict_and_keeps_dtype():
    x = torch.tensor([-1.0, 0.0, 1e-30, 2.0], dtype=torch.float64)
    out = S.heaviside(x)
    assert out.dtype == torch.float64 and out.tolist() == [0.0, 0.0, 1.0, 1.0]


def test_spike_function_validation_and_repr():
    with pytest.raises(ValueError, match="width"):
        S.double_gaussian(width=0.0)
    with pytest.raises(ValueError, match="method"):
        S.DoubleGaussian(method="magic")
    assert "fgi" in repr(S.double_gaussian(fgi=True))
    assert S.double_gaussian() == S.DoubleGaussian() and S.double_gaussian() != S.multi_gaussian()


def test_usable_as_snntorch_spike_grad():
    snn = pytest.importorskip("snntorch")
    lif = snn.Leaky(beta=0.9, spike_grad=S.double_gaussian())
    x = torch.full((4, 3), 0.6, requires_grad=True)
    mem = lif.reset_mem()
    total = 0
    for _ in range(5):
        spk, mem = lif(x, mem)
        total = total + spk.sum()
    total.backward()
    assert total > 0 and x.grad.abs().sum() > 0
