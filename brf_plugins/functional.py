r"""Neuron dynamics as pure torch functions: one time step, batch-first ``(B, h)`` tensors.

These functions are the single source of truth for the math of the package; every module here, in
``snntorch_ext`` and in ``norse_ext`` calls them. They follow ``brf_spec.md`` sections 1-3 exactly, including the
order of floating-point operations of the authors' released code, so that loaded checkpoints reproduce their
published accuracies.

Conventions shared by all steps:

* ``current`` is the synaptic input current :math:`I_t` of this step, shape ``(B, h)`` (any leading shape works;
  parameters broadcast over the last dimension).
* Trainable neuron parameters are passed **raw** and used as absolute values (``omega = |omega_raw|``,
  ``b' = |b_offset_raw|``, ``tau = |tau_raw|``), as the released models do.
* ``spike_fn`` maps the distance to threshold to spikes; it defaults to the double-Gaussian surrogate
  (:mod:`brf_plugins.surrogate`). Any callable ``x -> spikes`` works, e.g. an snnTorch surrogate.
* Each step returns a NamedTuple whose first field is the spike tensor ``z``, followed by the new state.

.. _step-validation:

Validation: every step checks its arguments unless ``validate=False`` (types and real floating dtypes, states
shaped like ``current`` with its dtype and device, parameters of shape ``(h,)`` or ``(1,)``, ``dt > 0``, and no
NaN/inf in ``current``) and raises ``TypeError``/``ValueError`` naming the argument. The NaN check reads the
tensor (a device synchronisation on a GPU), so loops that checked their whole sequence once, like
:class:`brf_plugins.network.RecurrentSNN` and :mod:`brf_plugins.sequence`, pass ``validate=False`` per step.

The membrane of the resonators is complex, :math:`U = u + iv`, stored as two real tensors.

Example:
    >>> import torch
    >>> from brf_plugins.functional import brf_step
    >>> B, h = 2, 3
    >>> u = v = q = torch.zeros(B, h)
    >>> omega, b_offset = torch.full((h,), 10.0), torch.full((h,), 0.5)
    >>> for t in range(200):
    ...     z, u, v, q = brf_step(torch.full((B, h), 150.0), u, v, q, omega, b_offset)
    >>> z.shape, bool(q.gt(0).any())
    (torch.Size([2, 3]), True)
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import torch

from ._checks import check_choice, check_step_inputs, check_step_scalar
from .surrogate import default_spike_fn

__all__ = [
    "DEFAULT_DT",
    "DEFAULT_THETA",
    "DEFAULT_GAMMA",
    "OMEGA_LIMIT_FRACTION",
    "ALIF_THETA",
    "ALIF_BETA",
    "RF_RESETS",
    "BHRF_VARIANTS",
    "max_omega",
    "resonator_omega",
    "divergence_boundary",
    "brf_damping",
    "resonator_euler",
    "rf_reset",
    "bhrf_base_damping",
    "harmonic_euler",
    "BRFState",
    "RFState",
    "BHRFState",
    "ALIFState",
    "brf_step",
    "rf_step",
    "izhikevich_step",
    "bhrf_step",
    "alif_step",
    "li_alpha",
    "li_step",
    "one_step_radius",
    "overdamping_limit",
]

DEFAULT_DT = 0.01
"""Integration step of the resonators (the released code's delta). Norse's default (0.001) is NOT used."""
DEFAULT_THETA = 1.0
"""Spike threshold theta_c of RF/BRF/BHRF."""
DEFAULT_GAMMA = 0.9
"""Decay of the refractory variable q (hard-coded 0.9 in the released code)."""
OMEGA_LIMIT_FRACTION = 0.999
"""BRF frequencies are clamped to OMEGA_LIMIT_FRACTION / dt, keeping p(omega) finite (see resonator_omega)."""
ALIF_THETA = 0.01
"""ALIF base threshold theta_0."""
ALIF_BETA = 1.8
"""ALIF adaptation strength beta."""
RF_RESETS = ("none", "soft", "hard")
BHRF_VARIANTS = ("code", "paper", "explicit")

SpikeFn = Callable[[torch.Tensor], torch.Tensor]


class BRFState(NamedTuple):
    """State of BRF neurons (what a step returns): spikes ``z``, real and imaginary membrane ``u``, ``v``,
    refractory variable ``q``. The one BRF state type of the package (the adapters' recurrent states too)."""

    z: torch.Tensor
    u: torch.Tensor
    v: torch.Tensor
    q: torch.Tensor


class RFState(NamedTuple):
    """State of RF neurons: spikes ``z``, real and imaginary membrane ``u``, ``v``."""

    z: torch.Tensor
    u: torch.Tensor
    v: torch.Tensor


class BHRFState(NamedTuple):
    """State of BHRF neurons: spikes ``z``, velocity ``u`` (it spikes), position ``v``, refractory ``q``."""

    z: torch.Tensor
    u: torch.Tensor
    v: torch.Tensor
    q: torch.Tensor


class ALIFState(NamedTuple):
    """State of ALIF neurons: spikes ``z`` (the next step's adaptation reads them), membrane ``u``, adaptation
    ``a``."""

    z: torch.Tensor
    u: torch.Tensor
    a: torch.Tensor


def max_omega(dt: float = DEFAULT_DT) -> float:
    """Largest frequency a BRF neuron uses: ``OMEGA_LIMIT_FRACTION / dt`` (99.9 rad/s at dt = 0.01)."""
    return OMEGA_LIMIT_FRACTION / dt


def resonator_omega(omega: torch.Tensor, dt: float = DEFAULT_DT) -> torch.Tensor:
    r"""Effective BRF frequency: :math:`\min(|\omega_{raw}|, 0.999/\delta)`.

    The released code uses :math:`|\omega_{raw}|` unclamped, which makes :math:`p(\omega)` NaN once training
    pushes a frequency past :math:`1/\delta`. The clamp is the identity below :math:`0.999/\delta` (so every
    released model is reproduced exactly; their largest trained frequency is 85.3 at :math:`\delta = 0.01`) and
    keeps the boundary and its gradient finite above it; a raw value beyond the clamp gets no gradient.
    """
    return omega.abs().clamp(max=max_omega(dt))


def divergence_boundary(omega: torch.Tensor, dt: float = DEFAULT_DT) -> torch.Tensor:
    r"""The divergence boundary :math:`p(\omega) = \big(-1 + \sqrt{1 - (\delta\omega)^2}\big)/\delta \le 0`.

    With damping :math:`b = p(\omega)` the explicit Euler step has :math:`|1 + \delta(b + i\omega)| = 1`
    (sustained oscillation); a smaller :math:`b` decays as long as the extra damping :math:`p(\omega) - b` stays
    below :func:`overdamping_limit` (beyond it the Euler step overshoots and the map expands again).
    NaN for :math:`|\omega| > 1/\delta`.
    """
    return (-1 + torch.sqrt(1 - torch.square(dt * omega))) / dt


def brf_damping(omega: torch.Tensor, b_offset: torch.Tensor, q: torch.Tensor, dt: float = DEFAULT_DT, *,
                divergence_boundary_on: bool = True, smooth_reset: bool = True) -> torch.Tensor:
    r"""BRF damping :math:`b_t = p(\omega) - |b'| - q_{t-1}` (``omega`` already effective, ``b_offset`` raw).

    ``divergence_boundary_on=False`` drops :math:`p(\omega)`, ``smooth_reset=False`` drops :math:`q_{t-1}`
    (the paper's appendix A.8 ablations).
    """
    b_offset = b_offset.abs()
    b = divergence_boundary(omega, dt) - b_offset if divergence_boundary_on else -b_offset
    return b - q if smooth_reset else b


def resonator_euler(current: torch.Tensor, u: torch.Tensor, v: torch.Tensor, b: torch.Tensor,
                    omega: torch.Tensor, dt: float = DEFAULT_DT):
    r"""One explicit Euler step of :math:`\dot U = (b + i\omega)U + I` on :math:`U = u + iv`.

    .. math::

        u_t = u_{t-1} + \delta(b\,u_{t-1} - \omega v_{t-1} + I_t), \qquad
        v_t = v_{t-1} + \delta(\omega u_{t-1} + b\,v_{t-1})

    Both components use the old values; the input current is scaled by :math:`\delta`.
    """
    u_new = u + b * u * dt - omega * v * dt + current * dt
    v_new = v + omega * u * dt + b * v * dt
    return u_new, v_new


def brf_step(current: torch.Tensor, u: torch.Tensor, v: torch.Tensor, q: torch.Tensor,
             omega: torch.Tensor, b_offset: torch.Tensor, dt: float = DEFAULT_DT, theta: float = DEFAULT_THETA,
             gamma: float = DEFAULT_GAMMA, spike_fn: Optional[SpikeFn] = None, *,
             divergence_boundary: bool = True, refractory: bool = True, smooth_reset: bool = True,
             validate: bool = True) -> BRFState:
    r"""One step of the balanced resonate-and-fire neuron (spec section 1.1, paper Algorithm 1).

    .. math::

        \omega &= |\omega_{raw}|, \quad b' = |b'_{raw}|, \quad
            p(\omega) = \big(-1 + \sqrt{1 - (\delta\omega)^2}\big)/\delta \\
        b_t &= p(\omega) - b' - q_{t-1} \\
        u_t &= u_{t-1} + \delta(b_t u_{t-1} - \omega v_{t-1} + I_t), \quad
        v_t = v_{t-1} + \delta(\omega u_{t-1} + b_t v_{t-1}) \\
        z_t &= H(u_t - \vartheta - q_{t-1}), \qquad q_t = \gamma q_{t-1} + z_t

    There is no other reset. Ablations (paper A.8): ``divergence_boundary=False`` uses :math:`b_t = -b' - q_{t-1}`,
    ``refractory=False`` fires at :math:`H(u_t - \vartheta)`, ``smooth_reset=False`` leaves :math:`q_{t-1}` out
    of :math:`b_t`.

    Args:
        current: input current :math:`I_t`, shape ``(B, h)``.
        u, v: real and imaginary membrane, ``(B, h)``.
        q: refractory variable, ``(B, h)``.
        omega, b_offset: raw per-neuron parameters, ``(h,)``; the frequency is clamped below ``1/dt``
            (:func:`resonator_omega`).
        dt: integration step :math:`\delta` (default 0.01). theta: threshold. gamma: decay of ``q``.
        spike_fn: surrogate spike function (default: double Gaussian).
        validate: check the arguments first (see :ref:`validation <step-validation>` in the module docstring).

    Returns:
        ``BRFState(z, u, v, q)``.

    Raises:
        TypeError: a tensor argument is not a real floating-point tensor, or a state's dtype differs.
        ValueError: a state's shape or device differs from ``current``, a parameter is not ``(h,)``, ``dt`` is
            not > 0, ``gamma`` not in [0, 1), or ``current`` contains NaN/inf.
    """
    if validate:
        check_step_inputs(current, dict(u=u, v=v, q=q), dict(omega=omega, b_offset=b_offset), dt)
        check_step_scalar("theta", theta)
        check_step_scalar("gamma", gamma, unit_interval=True)
    spike_fn = spike_fn or default_spike_fn
    omega = resonator_omega(omega, dt)
    b = brf_damping(omega, b_offset, q, dt, divergence_boundary_on=divergence_boundary, smooth_reset=smooth_reset)
    u_new, v_new = resonator_euler(current, u, v, b, omega, dt)
    z = spike_fn(u_new - theta - q) if refractory else spike_fn(u_new - theta)
    q_new = q * gamma + z
    return BRFState(z, u_new, v_new, q_new)


def rf_step(current: torch.Tensor, u: torch.Tensor, v: torch.Tensor, omega: torch.Tensor,
            b_offset: torch.Tensor, dt: float = DEFAULT_DT, theta: float = DEFAULT_THETA,
            spike_fn: Optional[SpikeFn] = None, reset: str = "none", validate: bool = True) -> RFState:
    r"""One step of the Izhikevich resonate-and-fire neuron as used for the paper's "RF" rows (spec 1.2).

    .. math::

        b = -|b'_{raw}|, \quad u_t = u_{t-1} + \delta(b u_{t-1} - \omega v_{t-1} + I_t), \quad
        v_t = v_{t-1} + \delta(\omega u_{t-1} + b v_{t-1}), \quad z_t = H(u_t - \vartheta)

    with :math:`\omega = |\omega_{raw}|` (not clamped: there is no :math:`p(\omega)` to keep finite).

    ``reset`` (paper A.1, applied to both membrane components after the spike):

    * ``"none"`` (the released models): the membrane is never reset;
    * ``"soft"``: :math:`U \leftarrow U - (1+i)\,z_t\vartheta`, i.e. ``u -= z*theta`` and ``v -= z*theta``;
    * ``"hard"``: :math:`U \leftarrow (1 - z_t)\,U` component-wise, i.e. both parts set to 0 on a spike.

    Returns:
        ``RFState(z, u, v)``.

    Raises:
        TypeError, ValueError: as :func:`brf_step` (``validate=True``); ValueError for an unknown ``reset``.
    """
    if validate:
        check_step_inputs(current, dict(u=u, v=v), dict(omega=omega, b_offset=b_offset), dt)
        check_step_scalar("theta", theta)
    spike_fn = spike_fn or default_spike_fn
    check_choice("reset", reset, RF_RESETS)
    b = -b_offset.abs()
    omega = omega.abs()
    u_new, v_new = resonator_euler(current, u, v, b, omega, dt)
    z = spike_fn(u_new - theta)
    return RFState(z, *rf_reset(u_new, v_new, z, theta, reset))


def rf_reset(u: torch.Tensor, v: torch.Tensor, z: torch.Tensor, theta, reset: str):
    r"""The RF resets of paper A.1 after a spike ``z``: ``"none"``, ``"soft"`` (:math:`u, v \mathrel{-}= zartheta`)
    or ``"hard"`` (:math:`u, v \mathrel{-}= z u, z v`: both to 0). Returns ``(u, v)``."""
    if reset == "soft":
        return u - z * theta, v - z * theta
    if reset == "hard":
        return u - z * u, v - z * v
    return u, v


def izhikevich_step(current: torch.Tensor, u: torch.Tensor, v: torch.Tensor, omega: torch.Tensor,
                    b_offset: torch.Tensor, dt: float = DEFAULT_DT, theta: float = DEFAULT_THETA,
                    spike_fn: Optional[SpikeFn] = None, validate: bool = True) -> RFState:
    r"""Izhikevich's original RF with its hard reset (spec 1.3; defined but unused by the released models).

    Same Euler step as :func:`rf_step` with :math:`b = -|b'|`, but the spike reads the **imaginary** part,
    :math:`z_t = H(v_t - \vartheta)`, and a spike resets the membrane to :math:`U = 0 + 1i`.

    Raises:
        TypeError, ValueError: as :func:`brf_step` (``validate=True``).
    """
    if validate:
        check_step_inputs(current, dict(u=u, v=v), dict(omega=omega, b_offset=b_offset), dt)
        check_step_scalar("theta", theta)
    spike_fn = spike_fn or default_spike_fn
    b = -b_offset.abs()
    omega = omega.abs()
    u_new, v_new = resonator_euler(current, u, v, b, omega, dt)
    z = spike_fn(v_new - theta)
    return RFState(z, u_new - u_new * z, v_new - v_new * z + z)


def bhrf_step(current: torch.Tensor, u: torch.Tensor, v: torch.Tensor, q: torch.Tensor,
              omega: torch.Tensor, b_offset: torch.Tensor, dt: float = DEFAULT_DT, theta: float = DEFAULT_THETA,
              gamma: float = DEFAULT_GAMMA, spike_fn: Optional[SpikeFn] = None, variant: str = "code",
              validate: bool = True) -> BHRFState:
    r"""One step of the balanced harmonic RF neuron (spec 1.4; paper Algorithm 2).

    The harmonic oscillator :math:`\ddot x + 2b\dot x + \omega^2 x = I` with velocity ``u`` and position ``v``,
    boundary :math:`p(\omega) = \delta\omega^2/2`, refractory ``q`` as in BRF and spikes on the velocity.

    ``variant="code"`` (default, the released code, semi-implicit Euler with the new position):

    .. math::

        b_t &= \delta\omega^2/2 + |b'| + q_{t-1}, \qquad v_t = v_{t-1} + \delta u_{t-1} \\
        u_t &= u_{t-1} + \delta I_t - 2\delta b_t u_{t-1} - \delta\omega^2 v_t \\
        z_t &= H(u_t - \vartheta - q_{t-1}), \qquad q_t = \gamma q_{t-1} + z_t

    Its one-step determinant is :math:`1 - 2\delta b_t`, so it is always strictly damped.

    ``variant="paper"`` is Algorithm 2 as printed: explicit Euler (:math:`u_t` uses :math:`v_{t-1}`) with
    :math:`b_t = p(\omega) - |b'| - q_{t-1}`. Its determinant is :math:`1 + 2\delta(|b'| + q_{t-1})`, so
    :math:`b'` and :math:`q` *amplify* the oscillation; it is offered for fidelity to the text (spec 9.3).

    ``variant="explicit"`` is explicit Euler with the code's sign, :math:`b_t = p(\omega) + |b'| + q_{t-1}`:
    determinant :math:`1 - 2\delta(|b'| + q_{t-1})`, exactly on the boundary when :math:`b' = q = 0`.

    Returns:
        ``BHRFState(z, u, v, q)``.

    Raises:
        TypeError, ValueError: as :func:`brf_step` (``validate=True``); ValueError for an unknown ``variant``.
    """
    if validate:
        check_step_inputs(current, dict(u=u, v=v, q=q), dict(omega=omega, b_offset=b_offset), dt)
        check_step_scalar("theta", theta)
        check_step_scalar("gamma", gamma, unit_interval=True)
    spike_fn = spike_fn or default_spike_fn
    check_choice("variant", variant, BHRF_VARIANTS)
    omega_sq, b0 = bhrf_base_damping(omega, b_offset, dt, variant)
    u_new, v_new = harmonic_euler(current, u, v, q, b0, omega_sq, dt, variant)
    z = spike_fn(u_new - theta - q)
    q_new = q * gamma + z
    return BHRFState(z, u_new, v_new, q_new)


def bhrf_base_damping(omega: torch.Tensor, b_offset: torch.Tensor, dt: float = DEFAULT_DT,
                      variant: str = "code"):
    r"""BHRF's per-neuron terms: :math:`(\omega^2, B_0)` with :math:`B_0 = \delta\omega^2/2 + |b'|` (the code's
    sign; ``variant="paper"``: :math:`- |b'|`), raw ``omega`` and ``b_offset`` in."""
    omega_sq = omega.abs().square()
    boundary = omega_sq * (dt / 2)
    b_offset = b_offset.abs()
    return omega_sq, (boundary - b_offset if variant == "paper" else boundary + b_offset)


def harmonic_euler(current: torch.Tensor, u: torch.Tensor, v: torch.Tensor, q: torch.Tensor, b0: torch.Tensor,
                   omega_sq: torch.Tensor, dt: float = DEFAULT_DT, variant: str = "code"):
    r"""One step of the damped harmonic oscillator of BHRF (spec 1.4): :math:`b = B_0 + q` (``"paper"``:
    :math:`B_0 - q`), :math:`v' = v + \delta u`, :math:`u' = u + \delta I - 2\delta b u - \delta\omega^2 x` with the
    position :math:`x = v'` (``"code"``, semi-implicit) or :math:`v` (``"paper"``, ``"explicit"``). Returns
    ``(u', v')``."""
    b = b0 - q if variant == "paper" else b0 + q
    v_new = v + u * dt
    position = v_new if variant == "code" else v
    return u + current * dt - b * u * (2 * dt) - omega_sq * position * dt, v_new


def alif_step(current: torch.Tensor, z: torch.Tensor, u: torch.Tensor, a: torch.Tensor,
              tau_mem: torch.Tensor, tau_adp: torch.Tensor, theta: float = ALIF_THETA, beta: float = ALIF_BETA,
              spike_fn: Optional[SpikeFn] = None, validate: bool = True) -> ALIFState:
    r"""One step of the adaptive LIF baseline of the paper's comparisons (spec 1.5; time in steps).

    .. math::

        \alpha &= e^{-1/|\tau_m|}, \quad \rho = e^{-1/|\tau_a|} \\
        a_t &= \rho a_{t-1} + (1-\rho) z_{t-1}, \qquad \vartheta_t = \vartheta_0 + \beta a_t \\
        u'_t &= \alpha u_{t-1} + (1-\alpha) I_t, \qquad z_t = H(u'_t - \vartheta_t), \qquad
        u_t = u'_t - z_t \vartheta_t

    ``z`` is the previous step's spike (part of the state). Returns ``ALIFState(z, u, a)``.

    Raises:
        TypeError, ValueError: as :func:`brf_step` (``validate=True``; parameters ``tau_mem``, ``tau_adp``).
    """
    if validate:
        check_step_inputs(current, dict(z=z, u=u, a=a), dict(tau_mem=tau_mem, tau_adp=tau_adp))
        check_step_scalar("theta", theta)
        check_step_scalar("beta", beta)
    spike_fn = spike_fn or default_spike_fn
    alpha = torch.exp(-1.0 / tau_mem.abs())
    rho = torch.exp(-1.0 / tau_adp.abs())
    a_new = a * rho + z * (1.0 - rho)
    threshold = theta + a_new * beta
    u_new = u * alpha + current * (1.0 - alpha)
    z_new = spike_fn(u_new - threshold)
    u_new = u_new - z_new * threshold
    return ALIFState(z_new, u_new, a_new)


def li_alpha(tau_mem: torch.Tensor) -> torch.Tensor:
    r"""Leaky-integrator decay :math:`\alpha = e^{-1/|\tau|}` (time constant in steps)."""
    return torch.exp(-1.0 / tau_mem.abs())


def li_step(current: torch.Tensor, o: torch.Tensor, tau_mem: torch.Tensor, validate: bool = True) -> torch.Tensor:
    r"""Leaky-integrator readout (spec 1.6): :math:`o_t = \alpha o_{t-1} + (1-\alpha) I_t`, :math:`I_t = W z_t`.

    Raises:
        TypeError, ValueError: as :func:`brf_step` (``validate=True``; state ``o``, parameter ``tau_mem``).
    """
    if validate:
        check_step_inputs(current, dict(o=o), dict(tau_mem=tau_mem))
    alpha = li_alpha(tau_mem)
    return o * alpha + current * (1.0 - alpha)


def overdamping_limit(omega: torch.Tensor, dt: float = DEFAULT_DT) -> torch.Tensor:
    r"""Largest extra damping :math:`b' + q` that keeps the BRF one-step map non-expanding.

    :math:`|1 + \delta(b + i\omega)| \le 1` holds exactly for
    :math:`p(\omega) - 2\sqrt{1 - (\delta\omega)^2}/\delta \le b \le p(\omega)`, so with
    :math:`b = p(\omega) - b' - q` the free membrane never grows iff
    :math:`0 \le b' + q \le 2\sqrt{1 - (\delta\omega)^2}/\delta`. The limit is 200 for small
    :math:`\omega` at :math:`\delta = 0.01` but shrinks to 8.9 at :math:`\omega = 99.9`, where a few spikes' worth
    of refractory :math:`q` (which saturates at :math:`1/(1-\gamma) = 10`) make the explicit Euler step overshoot.
    """
    return 2 * torch.sqrt(1 - torch.square(dt * omega)) / dt


def one_step_radius(omega: torch.Tensor, b: torch.Tensor, dt: float = DEFAULT_DT) -> torch.Tensor:
    r"""Spectral radius :math:`|1 + \delta(b + i\omega)|` of the free resonator's one-step map.

    At most 1 means the free membrane never grows. For a BRF neuron with :math:`q = 0` pass
    ``b = p(omega) - |b'|``; for the vanilla RF ``b = -|b'|``.
    """
    return torch.sqrt((1 + dt * b) ** 2 + (dt * omega) ** 2)
