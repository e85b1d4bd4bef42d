r"""Triton kernels: BRF/RF/BHRF over a whole sequence (feed-forward layers), with the time loop inside the kernel.

One program owns ``BLOCK`` neurons-in-batch (elements of the flattened ``(B, h)`` state) for all ``T`` steps and
keeps their state in registers: the forward is one launch over time, the backward one launch back over time that
recomputes each step from the saved states (bitwise the forward's values) and applies the hand-derived
vector-Jacobian product of :mod:`._torch_cells`. A single step is the same kernel with ``T = 1``.

Exactness: the elementwise operations are the core's, in the core's order, and the kernels are compiled with
``enable_fp_fusion=False`` (no multiply-add contraction), so float32/float64 values are bitwise those of the torch
operations on the same device. Per-neuron terms with a division or square root (:math:`p(\omega)`) come in
precomputed by torch. Scalars come in as a tensor of the data's dtype (a float64 ``dt`` must not pass through
float32).

Layout: sequences are slots of ``N = B*h`` contiguous elements; ``*_ts`` is the stride between slots (0 keeps
overwriting one slot). The initial state comes in its own tensors, the state after step ``t`` goes to slot ``t``.
The neuron of element ``n`` is ``n % H``.

Loops are ``while`` loops: Triton's interpreter (``TRITON_INTERPRET=1``, used to test these kernels on CPU) cannot
index ``range`` with a runtime bound under numpy >= 2.
"""

from __future__ import annotations

import triton
import triton.language as tl

# Constant slots (CellSpec.constants()).
_DT, _THETA, _GAMMA, _TWO_DT, _C1, _A1, _C2, _A2, _MU, _K1, _R1, _K2, _R2 = (tl.constexpr(i) for i in range(13))
N_CONSTANTS = 13

KIND_BRF, KIND_RF, KIND_BHRF = 0, 1, 2
RESET_NONE, RESET_SOFT, RESET_HARD = 0, 1, 2
VARIANT_CODE, VARIANT_PAPER, VARIANT_EXPLICIT = 0, 1, 2


@triton.jit
def _spike(x, c_ptr, MULTI: tl.constexpr, SMOOTH: tl.constexpr):
    if SMOOTH:
        k1 = tl.load(c_ptr + _K1)
        r1 = tl.load(c_ptr + _R1)
        k2 = tl.load(c_ptr + _K2)
        r2 = tl.load(c_ptr + _R2)
        mu = tl.load(c_ptr + _MU)
        z = 0.5 * k1 * (1.0 + tl.math.erf(x * r1))
        if MULTI:
            z = z - 0.5 * k2 * (1.0 + tl.math.erf((x - mu) * r2)) - 0.5 * k2 * (1.0 + tl.math.erf((x + mu) * r2))
        else:
            z = z - 0.5 * k2 * (1.0 + tl.math.erf(x * r2))
        return z.to(x.dtype)
    return (x > 0).to(x.dtype)


@triton.jit
def _surrogate(x, c_ptr, MULTI: tl.constexpr):
    c1 = tl.load(c_ptr + _C1)
    a1 = tl.load(c_ptr + _A1)
    c2 = tl.load(c_ptr + _C2)
    a2 = tl.load(c_ptr + _A2)
    s = c1 * tl.exp(-(x * x) * a1)
    if MULTI:
        mu = tl.load(c_ptr + _MU)
        s = s - c2 * tl.exp(-((x - mu) * (x - mu)) * a2) - c2 * tl.exp(-((x + mu) * (x + mu)) * a2)
    else:
        s = s - c2 * tl.exp(-(x * x) * a2)
    return s


@triton.jit
def _cell_fwd(cur, u, v, q, pa, pb, c_ptr, KIND: tl.constexpr, OPT: tl.constexpr, REFR: tl.constexpr,
              SR: tl.constexpr, MULTI: tl.constexpr, SMOOTH: tl.constexpr):
    """One step (see _torch_cells.cell_forward); returns z, u', v', q', x, u'_pre, v'_pre (before an RF reset)."""
    dt = tl.load(c_ptr + _DT)
    theta = tl.load(c_ptr + _THETA)
    gamma = tl.load(c_ptr + _GAMMA)
    if KIND == 0:
        if SR:
            b = pb - q
        else:
            b = pb
        u_new = u + b * u * dt - pa * v * dt + cur * dt
        v_new = v + pa * u * dt + b * v * dt
        if REFR:
            x = u_new - theta - q
        else:
            x = u_new - theta
        z = _spike(x, c_ptr, MULTI, SMOOTH)
        q_new = q * gamma + z
        u_pre = u_new
        v_pre = v_new
    elif KIND == 1:
        u_new = u + pb * u * dt - pa * v * dt + cur * dt
        v_new = v + pa * u * dt + pb * v * dt
        u_pre = u_new
        v_pre = v_new
        x = u_new - theta
        z = _spike(x, c_ptr, MULTI, SMOOTH)
        if OPT == 1:
            u_new = u_new - z * theta
            v_new = v_new - z * theta
        elif OPT == 2:
            u_new = u_new - z * u_new
            v_new = v_new - z * v_new
        q_new = q
    else:
        two_dt = tl.load(c_ptr + _TWO_DT)
        if OPT == 1:
            b = pb - q
        else:
            b = pb + q
        v_new = v + u * dt
        if OPT == 0:
            position = v_new
        else:
            position = v
        u_new = u + cur * dt - b * u * two_dt - pa * position * dt
        x = u_new - theta - q
        z = _spike(x, c_ptr, MULTI, SMOOTH)
        q_new = q * gamma + z
        u_pre = u_new
        v_pre = v_new
    return z, u_new, v_new, q_new, x, u_pre, v_pre


@triton.jit
def _cell_bwd(cur, u, v, q, pa, pb, g_z, g_u, g_v, g_q, c_ptr, KIND: tl.constexpr, OPT: tl.constexpr,
              REFR: tl.constexpr, SR: tl.constexpr, MULTI: tl.constexpr, SMOOTH: tl.constexpr):
    """Recompute the step from its inputs and return (g_cur, g_u, g_v, g_q, g_pa, g_pb) (_torch_cells.cell_backward)."""
    z, u_new, v_new, q_new, x, u_pre, v_pre = _cell_fwd(cur, u, v, q, pa, pb, c_ptr, KIND, OPT, REFR, SR, MULTI,
                                                        SMOOTH)
    dt = tl.load(c_ptr + _DT)
    theta = tl.load(c_ptr + _THETA)
    gamma = tl.load(c_ptr + _GAMMA)
    s = _surrogate(x, c_ptr, MULTI)
    if KIND == 0:
        g_x = (g_z + g_q) * s
        big_u = g_u + g_x
        if SR:
            b = pb - q
        else:
            b = pb
        g_b = (big_u * u + g_v * v) * dt
        g_pa = (g_v * u - big_u * v) * dt
        g_u_prev = big_u + (big_u * b + g_v * pa) * dt
        g_v_prev = g_v + (g_v * b - big_u * pa) * dt
        g_q_prev = g_q * gamma
        if REFR:
            g_q_prev = g_q_prev - g_x
        if SR:
            g_q_prev = g_q_prev - g_b
    elif KIND == 1:
        big_u = g_u
        big_v = g_v
        gz = g_z
        if OPT == 1:
            gz = gz - (g_u + g_v) * theta
        elif OPT == 2:
            big_u = g_u - g_u * z
            big_v = g_v - g_v * z
            gz = gz - (g_u * u_pre + g_v * v_pre)
        big_u = big_u + gz * s
        g_b = (big_u * u + big_v * v) * dt
        g_pa = (big_v * u - big_u * v) * dt
        g_u_prev = big_u + (big_u * pb + big_v * pa) * dt
        g_v_prev = big_v + (big_v * pb - big_u * pa) * dt
        g_q_prev = g_q
    else:
        two_dt = tl.load(c_ptr + _TWO_DT)
        g_x = (g_z + g_q) * s
        big_u = g_u + g_x
        if OPT == 1:
            b = pb - q
        else:
            b = pb + q
        if OPT == 0:
            position = v + u * dt
        else:
            position = v
        g_b = -(big_u * u) * two_dt
        g_pa = -(big_u * position) * dt
        g_position = -(big_u * pa) * dt
        if OPT == 0:
            g_v_new = g_v + g_position
            g_u_prev = big_u - big_u * b * two_dt + g_v_new * dt
            g_v_prev = g_v_new
        else:
            g_u_prev = big_u - big_u * b * two_dt + g_v * dt
            g_v_prev = g_v + g_position
        if OPT == 1:
            g_q_prev = g_q * gamma - g_x - g_b
        else:
            g_q_prev = g_q * gamma - g_x + g_b
    return big_u * dt, g_u_prev, g_v_prev, g_q_prev, g_pa, g_b


@triton.jit
def _load_state(u_ptr, v_ptr, q_ptr, offs, mask, HAS_Q: tl.constexpr):
    """``(u, v, q)`` of one slot (``q`` zeros without refractory variable)."""
    u = tl.load(u_ptr + offs, mask=mask, other=0.0)
    v = tl.load(v_ptr + offs, mask=mask, other=0.0)
    if HAS_Q:
        q = tl.load(q_ptr + offs, mask=mask, other=0.0)
    else:
        q = tl.zeros_like(u)
    return u, v, q


@triton.jit
def _store_state(u_ptr, v_ptr, q_ptr, offs, mask, u, v, q, HAS_Q: tl.constexpr):
    """Write ``(u, v, q)`` to one slot (``q`` only with a refractory variable); the twin of :func:`_load_state`."""
    tl.store(u_ptr + offs, u, mask=mask)
    tl.store(v_ptr + offs, v, mask=mask)
    if HAS_Q:
        tl.store(q_ptr + offs, q, mask=mask)


@triton.jit
def _per_neuron(pa_ptr, pb_ptr, pid, N, H, BLOCK: tl.constexpr):
    """This program's elements ``offs`` (of the flattened ``(B, h)``), their mask, and their neurons' ``pa, pb``."""
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    j = offs % H
    return offs, mask, tl.load(pa_ptr + j, mask=mask, other=0.0), tl.load(pb_ptr + j, mask=mask, other=0.0)


@triton.jit
def cell_forward_kernel(cur_ptr, cur_ts, u0_ptr, v0_ptr, q0_ptr, u_ptr, v_ptr, q_ptr, s_ts, pa_ptr, pb_ptr, c_ptr,
                        z_ptr, z_ts, N, H, T,
                        KIND: tl.constexpr, OPT: tl.constexpr, REFR: tl.constexpr, SR: tl.constexpr,
                        MULTI: tl.constexpr, SMOOTH: tl.constexpr, HAS_Q: tl.constexpr, BLOCK: tl.constexpr):
    """T steps from the state u0/v0/q0; step t writes z to z[t] and the new state to slot t * s_ts of u/v/q
    (s_ts = 0: only the final state survives)."""
    offs, mask, pa, pb = _per_neuron(pa_ptr, pb_ptr, tl.program_id(0), N, H, BLOCK)
    u, v, q = _load_state(u0_ptr, v0_ptr, q0_ptr, offs, mask, HAS_Q)
    t = 0
    while t < T:
        t64 = t.to(tl.int64)
        cur = tl.load(cur_ptr + t64 * cur_ts + offs, mask=mask, other=0.0)
        z, u, v, q, x, u_pre, v_pre = _cell_fwd(cur, u, v, q, pa, pb, c_ptr, KIND, OPT, REFR, SR, MULTI, SMOOTH)
        tl.store(z_ptr + t64 * z_ts + offs, z, mask=mask)
        slot = t64 * s_ts
        _store_state(u_ptr + slot, v_ptr + slot, q_ptr + slot, offs, mask, u, v, q, HAS_Q)
        t += 1


@triton.jit
def cell_backward_kernel(cur_ptr, cur_ts, u0_ptr, v0_ptr, q0_ptr, u_ptr, v_ptr, q_ptr, s_ts, pa_ptr, pb_ptr,
                         c_ptr,
                         gz_ptr, gz_ts, gc_u_ptr, gc_v_ptr, gc_q_ptr,
                         gcur_ptr, gcur_ts, gu0_ptr, gv0_ptr, gq0_ptr, gpa_ptr, gpb_ptr, N, H, T,
                         KIND: tl.constexpr, OPT: tl.constexpr, REFR: tl.constexpr, SR: tl.constexpr,
                         MULTI: tl.constexpr, SMOOTH: tl.constexpr, HAS_Q: tl.constexpr, HAS_GZ: tl.constexpr,
                         HAS_GC: tl.constexpr, BLOCK: tl.constexpr):
    """Backward over T steps: the state before step t is u0/v0/q0 for t = 0, else slot (t - 1) * s_ts; gz[t] is
    the gradient of z_t, gc_* the gradients of the final state. Writes gcur[t], the initial state's gradients
    gu0/gv0/gq0 (may alias gc_*) and per-element parameter gradients gpa/gpb."""
    offs, mask, pa, pb = _per_neuron(pa_ptr, pb_ptr, tl.program_id(0), N, H, BLOCK)
    zero = tl.zeros_like(pa)
    if HAS_GC:
        g_u, g_v, g_q = _load_state(gc_u_ptr, gc_v_ptr, gc_q_ptr, offs, mask, HAS_Q)
    else:
        g_u = zero
        g_v = zero
        g_q = zero
    acc_pa = zero
    acc_pb = zero
    t = T - 1
    while t >= 0:
        t64 = t.to(tl.int64)
        if t > 0:
            slot = (t64 - 1) * s_ts
            u, v, q = _load_state(u_ptr + slot, v_ptr + slot, q_ptr + slot, offs, mask, HAS_Q)
        else:
            u, v, q = _load_state(u0_ptr, v0_ptr, q0_ptr, offs, mask, HAS_Q)
        cur = tl.load(cur_ptr + t64 * cur_ts + offs, mask=mask, other=0.0)
        if HAS_GZ:
            g_z = tl.load(gz_ptr + t64 * gz_ts + offs, mask=mask, other=0.0)
        else:
            g_z = zero
        g_cur, g_u, g_v, g_q, g_pa, g_pb = _cell_bwd(cur, u, v, q, pa, pb, g_z, g_u, g_v, g_q, c_ptr, KIND, OPT,
                                                     REFR, SR, MULTI, SMOOTH)
        tl.store(gcur_ptr + t64 * gcur_ts + offs, g_cur, mask=mask)
        acc_pa += g_pa
        acc_pb += g_pb
        t -= 1
    tl.store(gu0_ptr + offs, g_u, mask=mask)
    tl.store(gv0_ptr + offs, g_v, mask=mask)
    if HAS_Q:
        tl.store(gq0_ptr + offs, g_q, mask=mask)
    tl.store(gpa_ptr + offs, acc_pa, mask=mask)
    tl.store(gpb_ptr + offs, acc_pb, mask=mask)
