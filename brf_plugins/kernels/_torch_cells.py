r"""The fused neuron steps in plain torch operations: the CPU path, and the reference the Triton kernels mirror.

Every step is split in two:

* :func:`neuron_params` turns the raw per-neuron parameters into the two per-neuron tensors ``(pa, pb)`` the
  elementwise update needs, with the core's own functions (so they are bitwise the core's values and autograd
  differentiates them):

  ======  ===========================================  ==============================================
  kind    ``pa``                                        ``pb``
  ======  ===========================================  ==============================================
  brf     :math:`\omega = \min(|\omega_{raw}|, .999/\delta)`  :math:`P = p(\omega) - |b'|` (or :math:`-|b'|`)
  rf      :math:`|\omega_{raw}|`                             :math:`b = -|b'|`
  bhrf    :math:`\omega^2`                                   :math:`B_0 = \delta\omega^2/2 \pm |b'|`
  ======  ===========================================  ==============================================

* :func:`cell_forward` is the elementwise update built from the core's own pieces (``resonator_euler``,
  ``rf_reset``, ``harmonic_euler``, :mod:`brf_plugins.functional`), so its values are bitwise the core's, and :func:`cell_backward` its hand-derived vector-Jacobian product. With ``u' , v'`` the new membrane,
  ``x`` the distance to threshold, ``s(x)`` the surrogate derivative and ``g_*`` incoming gradients (BRF):

  .. math::

      g_x &= (g_z + g_{q'})\,s(x), \quad G_u = g_{u'} + g_x, \quad G_v = g_{v'}, \quad b = P - q \\
      g_I &= \delta G_u, \quad g_u = G_u + \delta(b G_u + \omega G_v), \quad g_v = G_v + \delta(b G_v - \omega G_u) \\
      g_b &= \delta(G_u u + G_v v), \quad g_\omega = \delta(G_v u - G_u v), \quad
      g_q = \gamma g_{q'} - g_x - g_b, \quad g_P = g_b

  (without ``refractory`` the :math:`-g_x` term of :math:`g_q` drops, without ``smooth_reset`` the :math:`-g_b`).
  RF adds the reset's terms, BHRF its semi-implicit position update; see the comments in :func:`cell_backward`.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch

from .. import functional as F
from ._spec import CellSpec

__all__ = ["neuron_params", "cell_forward", "cell_backward"]

Tensor = torch.Tensor


def neuron_params(spec: CellSpec, omega: Tensor, b_offset: Tensor) -> Tuple[Tensor, Tensor]:
    """Per-neuron ``(pa, pb)`` from raw ``omega``, ``b_offset`` (differentiable; the core's own functions)."""
    if spec.kind == "brf":
        pa = F.resonator_omega(omega, spec.dt)
        pb = F.brf_damping(pa, b_offset, None, spec.dt, divergence_boundary_on=spec.divergence_boundary,
                           smooth_reset=False)
        return pa, pb
    if spec.kind == "rf":
        return omega.abs(), -b_offset.abs()
    return F.bhrf_base_damping(omega, b_offset, spec.dt, spec.option)


def cell_forward(spec: CellSpec, current: Tensor, u: Tensor, v: Tensor, q: Optional[Tensor], pa: Tensor,
                 pb: Tensor):
    """One step, the core's operations in the core's order. Returns ``(z, u, v, q, x)`` (``q`` None for RF).

    ``x`` is the spike function's argument (the distance to threshold), kept for the backward pass. The current is
    scaled by ``spec.input_gain`` first, as :func:`brf_plugins.neurons.neuron_step` scales it.
    """
    dt, theta = spec.dt, spec.theta
    if spec.input_gain != 1.0:
        current = current * spec.input_gain
    if spec.kind == "brf":
        b = pb - q if spec.smooth_reset else pb
        u_new, v_new = F.resonator_euler(current, u, v, b, pa, dt)
        x = u_new - theta - q if spec.refractory else u_new - theta
        z = spec.spike(x)
        return z, u_new, v_new, q * spec.gamma + z, x
    if spec.kind == "rf":
        u_new, v_new = F.resonator_euler(current, u, v, pb, pa, dt)
        x = u_new - theta
        z = spec.spike(x)
        return (z, *F.rf_reset(u_new, v_new, z, theta, spec.option), None, x)
    u_new, v_new = F.harmonic_euler(current, u, v, q, pb, pa, dt, spec.option)
    x = u_new - theta - q
    z = spec.spike(x)
    return z, u_new, v_new, q * spec.gamma + z, x


def add(a: Optional[Tensor], b: Optional[Tensor]) -> Optional[Tensor]:
    """``a + b`` where ``None`` stands for a zero gradient."""
    if a is None:
        return b
    return a if b is None else a + b


def _gained(x: Tensor, gain: float) -> Tensor:
    return x if gain == 1.0 else x * gain


def cell_backward(spec: CellSpec, current: Optional[Tensor], u: Tensor, v: Tensor, q: Optional[Tensor],
                  x: Tensor, pa: Tensor, pb: Tensor, g_z: Optional[Tensor], g_u: Optional[Tensor],
                  g_v: Optional[Tensor], g_q: Optional[Tensor], surrogate: Optional[Tensor] = None):
    """Vector-Jacobian product of :func:`cell_forward` at the saved ``(u, v, q, x)`` (inputs of the step).

    ``g_*`` are the gradients of the step's outputs (``None`` = zero). ``surrogate`` is the spike function's
    derivative at ``x`` if already computed (the sequence backward passes evaluate it for all steps at once). Returns
    ``(g_current, g_u, g_v, g_q, g_pa, g_pb)`` where ``g_pa``, ``g_pb`` are elementwise (not yet summed over the
    batch) and ``g_q`` is ``None`` for RF. ``current`` is only read by RF's hard reset (to rebuild the pre-reset
    membrane).
    """
    dt, gain = spec.dt, spec.input_gain
    zero = torch.zeros_like(u)
    g_u = zero if g_u is None else g_u
    g_v = zero if g_v is None else g_v
    if surrogate is None:
        surrogate = spec.spike_derivative(x)
    if spec.kind == "brf":
        g_x = add(g_z, g_q)
        g_x = zero if g_x is None else g_x * surrogate
        big_u = g_u + g_x
        b = pb - q if spec.smooth_reset else pb
        g_b = (big_u * u + g_v * v) * dt
        g_pa = (g_v * u - big_u * v) * dt
        g_u_prev = big_u + (big_u * b + g_v * pa) * dt
        g_v_prev = g_v + (g_v * b - big_u * pa) * dt
        g_q_prev = zero if g_q is None else g_q * spec.gamma
        if spec.refractory:
            g_q_prev = g_q_prev - g_x
        if spec.smooth_reset:
            g_q_prev = g_q_prev - g_b
        return _gained(big_u * dt, gain), g_u_prev, g_v_prev, g_q_prev, g_pa, g_b
    if spec.kind == "rf":
        g_z = zero if g_z is None else g_z
        big_u, big_v = g_u, g_v
        if spec.option == "soft":          # u = u' - z theta, v = v' - z theta
            g_z = g_z - (g_u + g_v) * spec.theta
        elif spec.option == "hard":        # u = u' - z u', v = v' - z v'
            z = spec.spike(x)
            u_pre, v_pre = F.resonator_euler(_gained(current, gain), u, v, pb, pa, dt)
            big_u, big_v = g_u - g_u * z, g_v - g_v * z
            g_z = g_z - (g_u * u_pre + g_v * v_pre)
        big_u = big_u + g_z * surrogate
        g_b = (big_u * u + big_v * v) * dt
        g_pa = (big_v * u - big_u * v) * dt
        g_u_prev = big_u + (big_u * pb + big_v * pa) * dt
        g_v_prev = big_v + (big_v * pb - big_u * pa) * dt
        return _gained(big_u * dt, gain), g_u_prev, g_v_prev, None, g_pa, g_b
    # BHRF: u' = u + I dt - 2 dt b u - w2 dt pos, v' = v + u dt, pos = v' (code) or v; b = B0 + sign q.
    g_x = add(g_z, g_q)
    g_x = zero if g_x is None else g_x * surrogate
    big_u = g_u + g_x
    sign = -1.0 if spec.option == "paper" else 1.0
    b = pb - q if spec.option == "paper" else pb + q
    position = v + u * dt if spec.option == "code" else v
    g_b = -(big_u * u) * (2 * dt)
    g_pa = -(big_u * position) * dt
    g_position = -(big_u * pa) * dt
    if spec.option == "code":
        g_v_new = g_v + g_position          # the position is v', which also feeds u'
        g_u_prev = big_u - big_u * b * (2 * dt) + g_v_new * dt
        g_v_prev = g_v_new
    else:
        g_u_prev = big_u - big_u * b * (2 * dt) + g_v * dt
        g_v_prev = g_v + g_position
    g_q_prev = (zero if g_q is None else g_q * spec.gamma) - g_x + sign * g_b
    return _gained(big_u * dt, gain), g_u_prev, g_v_prev, g_q_prev, g_pa, g_b
