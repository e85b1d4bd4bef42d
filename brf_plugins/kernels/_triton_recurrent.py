r"""Persistent Triton kernels for the paper's recurrent layer :math:`I_t = g\,W[x_t; z_{t-1}]` (CUDA, or CPU under
``TRITON_INTERPRET=1``).

``TritonRecurrentCellSequence.apply(spec, recurrent, x, weight, z, u, v, q, pa, pb) -> (z_all, z_T, u_T, v_T[, q_T])``
has the contract of :class:`._autograd.RecurrentCellSequence` (``x`` ``(T, B, m)``, ``weight`` ``(h, m + h)`` if
``recurrent`` else ``(h, m)``, initial state ``z, u, v, q`` with ``q`` ``None`` for RF, ``pa, pb`` of
:func:`._torch_cells.neuron_params`). :func:`supported` says why it cannot run a call (``None`` if it can).

How it runs:

* the input part :math:`W_x x_t` of every step does not depend on the recurrence: one torch matmul over all steps
  before the kernel (``nnf.linear(x, W[:, :m])``, a ``(T, B, h)`` buffer the kernel then overwrites with each
  step's current :math:`I_t`, which the backward reads);
* **forward**, one launch: program ``i`` owns batch rows ``[i*BLOCK_B, (i+1)*BLOCK_B)`` and *all* ``h`` hidden
  units, keeps ``u, v, q, z`` in registers and loops over time; each step adds :math:`W_{rec} z_{t-1}` with
  ``tl.dot`` (``input_precision="ieee"``: exact float32 products, no TF32), multiplies by the gain and applies the
  cell update :func:`._triton._cell_fwd` (the same ``@triton.jit`` helper as the feed-forward kernels, the
  operations of :func:`._torch_cells.cell_forward` in its order). It stores ``z_t``, ``I_t`` and the state after
  every step (only the final one under ``torch.no_grad``);
* **backward**, one launch back over time: each step recomputes the cell from its saved inputs
  (:func:`._triton._cell_bwd`, the hand-derived VJP of :func:`._torch_cells.cell_backward`), stores
  :math:`g_{I_t}` (gain applied) and propagates :math:`g_{z_{t-1}} = g_{I_t} W_{rec}` with ``tl.dot``;
  per-neuron parameter gradients are summed over time in registers and over the program's rows at the end (one
  partial row per program, summed by torch: deterministic, no atomics);
* the weight gradient is one torch matmul over all steps afterwards, ``g_I^T [x; z_{prev}]``
  (as :class:`RecurrentCellSequence` forms it), and :math:`g_x = g_I W_x` one more.

Two ways to feed the recurrent ``tl.dot``, chosen per hidden size (:func:`config`):

* ``RESIDENT`` (padded ``h`` <= 64): :math:`W_{rec}^T` is loaded into registers once, ``z`` is used from registers;
* chunked (larger ``h``): ``z_{t-1}`` (``g_{I_t}`` in the backward) is read back from the program's own rows of
  the output buffer after a CTA barrier, ``BLOCK_K`` hidden units at a time, against ``BLOCK_K`` rows of
  :math:`W_{rec}^T` read from L1/L2 each step (a ``256 x 256`` float32 matrix does not fit in registers).

Exactness: the cell update is the core's operations in the core's order (no fp contraction,
``enable_fp_fusion=False``); the matmul sums in another order than torch's ``linear``, so values agree with the
torch path to rounding (float64: states to ~1e-15, identical spikes in the tests), not bitwise.

The tests (``tests/test_triton_recurrent.py``) run these kernels under the interpreter in float64 against the
torch path and compile every configuration ahead of time for sm_80 and sm_90 (``test_aot_*``).
"""

from __future__ import annotations

import threading
from typing import NamedTuple, Optional

import torch
import triton
import triton.language as tl
from torch.nn import functional as nnf

from ._spec import FUSED_DTYPES, CellSpec
from ._triton import N_CONSTANTS, _cell_bwd, _cell_fwd, _load_state, _store_state
from ._triton_ops import INTERPRETED, _launch_options, _meta

__all__ = ["TritonRecurrentCellSequence", "supported", "config", "Config", "MAX_HIDDEN", "INTERPRETED",
           "recurrent_forward_kernel", "recurrent_backward_kernel"]

MAX_HIDDEN = 256
"""Largest hidden size one program holds in registers (all hidden units of its rows)."""

_GAIN = tl.constexpr(N_CONSTANTS)   # the input gain follows CellSpec.constants() in the constants tensor


@triton.jit
def _program_tile(pa_ptr, pb_ptr, pid, B, H, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr):
    """This program's batch rows and all hidden units: indices, masks, flat offsets into (B, H), the neurons' pa/pb."""
    rows = pid * BLOCK_B + tl.arange(0, BLOCK_B)
    cols = tl.arange(0, BLOCK_H)
    row_ok = rows < B
    col_ok = cols < H
    mask = row_ok[:, None] & col_ok[None, :]
    offs = rows[:, None] * H + cols[None, :]
    pa = tl.load(pa_ptr + cols, mask=col_ok, other=0.0)[None, :]
    pb = tl.load(pb_ptr + cols, mask=col_ok, other=0.0)[None, :]
    return rows, cols, row_ok, col_ok, mask, offs, pa, pb


@triton.jit
def recurrent_forward_kernel(cur_ptr, w_ptr, z0_ptr, u0_ptr, v0_ptr, q0_ptr, z_ptr, u_ptr, v_ptr, q_ptr, s_ts,
                             pa_ptr, pb_ptr, c_ptr, B, H, N, T,
                             KIND: tl.constexpr, OPT: tl.constexpr, REFR: tl.constexpr, SR: tl.constexpr,
                             MULTI: tl.constexpr, SMOOTH: tl.constexpr, HAS_Q: tl.constexpr, REC: tl.constexpr,
                             RESIDENT: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr,
                             BLOCK_K: tl.constexpr, PRECISION: tl.constexpr):
    """T steps of the recurrent layer for rows [pid*BLOCK_B, (pid+1)*BLOCK_B).

    cur: (T, B, H), in: W_x x_t; out: the step's current I_t = g (W_x x_t + W_rec z_{t-1}). w: W_rec^T, (H, H)
    contiguous (w[k, j] = W[j, m + k]). z0/u0/v0/q0: (B, H) initial state. z: (T, B, H) spikes. u/v/q: the state
    after step t goes to slot t * s_ts (s_ts = 0: only the final state survives).
    """
    pid = tl.program_id(0)
    rows, cols, row_ok, col_ok, mask, offs, pa, pb = _program_tile(pa_ptr, pb_ptr, pid, B, H, BLOCK_B, BLOCK_H)
    gain = tl.load(c_ptr + _GAIN)
    u, v, q = _load_state(u0_ptr, v0_ptr, q0_ptr, offs, mask, HAS_Q)
    z = tl.load(z0_ptr + offs, mask=mask, other=0.0)
    if REC and RESIDENT:
        w = tl.load(w_ptr + cols[:, None] * H + cols[None, :], mask=col_ok[:, None] & col_ok[None, :], other=0.0)
    t = 0
    while t < T:
        slot = t.to(tl.int64) * N
        acc = tl.load(cur_ptr + slot + offs, mask=mask, other=0.0)
        if REC:
            if RESIDENT:
                acc = tl.dot(z, w, acc, input_precision=PRECISION)
            else:
                if t > 0:
                    prev_ptr = z_ptr + (slot - N)
                else:
                    prev_ptr = z0_ptr
                tl.debug_barrier()          # z_{t-1} was stored by other threads of this program
                for k0 in range(0, BLOCK_H, BLOCK_K):
                    ks = k0 + tl.arange(0, BLOCK_K)
                    k_ok = ks < H
                    zc = tl.load(prev_ptr + rows[:, None] * H + ks[None, :], mask=row_ok[:, None] & k_ok[None, :],
                                 other=0.0)
                    wc = tl.load(w_ptr + ks[:, None] * H + cols[None, :], mask=k_ok[:, None] & col_ok[None, :],
                                 other=0.0)
                    acc = tl.dot(zc, wc, acc, input_precision=PRECISION)
        cur = acc * gain
        z, u, v, q, x, u_pre, v_pre = _cell_fwd(cur, u, v, q, pa, pb, c_ptr, KIND, OPT, REFR, SR, MULTI, SMOOTH)
        tl.store(cur_ptr + slot + offs, cur, mask=mask)
        tl.store(z_ptr + slot + offs, z, mask=mask)
        state = t.to(tl.int64) * s_ts
        _store_state(u_ptr + state, v_ptr + state, q_ptr + state, offs, mask, u, v, q, HAS_Q)
        t += 1


@triton.jit
def recurrent_backward_kernel(cur_ptr, w_ptr, u0_ptr, v0_ptr, q0_ptr, u_ptr, v_ptr, q_ptr, pa_ptr, pb_ptr, c_ptr,
                              gz_ptr, gzl_ptr, gcu_ptr, gcv_ptr, gcq_ptr,
                              gcur_ptr, gz0_ptr, gu0_ptr, gv0_ptr, gq0_ptr, gpa_ptr, gpb_ptr, B, H, N, T,
                              KIND: tl.constexpr, OPT: tl.constexpr, REFR: tl.constexpr, SR: tl.constexpr,
                              MULTI: tl.constexpr, SMOOTH: tl.constexpr, HAS_Q: tl.constexpr, REC: tl.constexpr,
                              RESIDENT: tl.constexpr, HAS_GZ: tl.constexpr, HAS_GZL: tl.constexpr,
                              HAS_GC: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr,
                              BLOCK_K: tl.constexpr, PRECISION: tl.constexpr):
    """Backward over T steps for rows [pid*BLOCK_B, (pid+1)*BLOCK_B).

    cur: the forward's I_t; w: W_rec, (H, H) contiguous (w[j, k] = W[j, m + k]); the state before step t is
    u0/v0/q0 for t = 0, else slot t - 1 of u/v/q. gz: (T, B, H) gradient of z_all; gzl: of z_T; gc*: of the final
    state. Writes gcur (T, B, H) = g_{I_t} (gain applied), the initial state's gradients gz0/gu0/gv0/gq0 and this
    program's row sums of the per-neuron parameter gradients to row pid of gpa/gpb (n_programs, H).
    """
    pid = tl.program_id(0)
    rows, cols, row_ok, col_ok, mask, offs, pa, pb = _program_tile(pa_ptr, pb_ptr, pid, B, H, BLOCK_B, BLOCK_H)
    gain = tl.load(c_ptr + _GAIN)
    zero = tl.zeros((BLOCK_B, BLOCK_H), dtype=pa.dtype)
    if HAS_GC:
        g_u, g_v, g_q = _load_state(gcu_ptr, gcv_ptr, gcq_ptr, offs, mask, HAS_Q)
    else:
        g_u = zero
        g_v = zero
        g_q = zero
    if HAS_GZL:
        g_rec = tl.load(gzl_ptr + offs, mask=mask, other=0.0)
    else:
        g_rec = zero
    if REC and RESIDENT:
        w = tl.load(w_ptr + cols[:, None] * H + cols[None, :], mask=col_ok[:, None] & col_ok[None, :], other=0.0)
    acc_pa = zero
    acc_pb = zero
    t = T - 1
    while t >= 0:
        slot = t.to(tl.int64) * N
        if t > 0:
            u, v, q = _load_state(u_ptr + (slot - N), v_ptr + (slot - N), q_ptr + (slot - N), offs,
                                  mask, HAS_Q)
        else:
            u, v, q = _load_state(u0_ptr, v0_ptr, q0_ptr, offs, mask, HAS_Q)
        cur = tl.load(cur_ptr + slot + offs, mask=mask, other=0.0)
        if HAS_GZ:
            g_z = tl.load(gz_ptr + slot + offs, mask=mask, other=0.0) + g_rec
        else:
            g_z = g_rec
        g_cur, g_u, g_v, g_q, g_pa, g_pb = _cell_bwd(cur, u, v, q, pa, pb, g_z, g_u, g_v, g_q, c_ptr, KIND, OPT,
                                                     REFR, SR, MULTI, SMOOTH)
        g_cur = g_cur * gain
        acc_pa += g_pa
        acc_pb += g_pb
        tl.store(gcur_ptr + slot + offs, g_cur, mask=mask)
        if REC:
            if RESIDENT:
                g_rec = tl.dot(g_cur, w, zero, input_precision=PRECISION)
            else:
                tl.debug_barrier()          # g_{I_t} was stored by other threads of this program
                g_rec = zero
                for j0 in range(0, BLOCK_H, BLOCK_K):
                    js = j0 + tl.arange(0, BLOCK_K)
                    j_ok = js < H
                    gc = tl.load(gcur_ptr + slot + rows[:, None] * H + js[None, :],
                                 mask=row_ok[:, None] & j_ok[None, :], other=0.0)
                    wc = tl.load(w_ptr + js[:, None] * H + cols[None, :], mask=j_ok[:, None] & col_ok[None, :],
                                 other=0.0)
                    g_rec = tl.dot(gc, wc, g_rec, input_precision=PRECISION)
        else:
            g_rec = zero
        t -= 1
    tl.store(gu0_ptr + offs, g_u, mask=mask)
    tl.store(gv0_ptr + offs, g_v, mask=mask)
    if HAS_Q:
        tl.store(gq0_ptr + offs, g_q, mask=mask)
    if REC:
        tl.store(gz0_ptr + offs, g_rec, mask=mask)
    tl.store(gpa_ptr + pid * H + cols, tl.sum(acc_pa, axis=0), mask=col_ok)
    tl.store(gpb_ptr + pid * H + cols, tl.sum(acc_pb, axis=0), mask=col_ok)


# ------------------------------------------------------------------------------------------------ launching


class Config(NamedTuple):
    """Launch configuration for one hidden size: rows per program, padded hidden size, chunk of the recurrent
    contraction, whether W_rec stays in registers, warps per program, software-pipeline stages of the chunk loop."""

    block_b: int
    block_h: int
    block_k: int
    resident: bool
    num_warps: int
    num_stages: int = 2


def _pow2(n: int) -> int:
    return 1 << max(int(n) - 1, 0).bit_length()


def config(hidden: int, batch: int, interpreted: Optional[bool] = None) -> Config:
    """The configuration the Function launches for ``hidden`` units and ``batch`` rows (the AOT tests compile
    each one for every hidden-size class)."""
    if CONFIG_OVERRIDE is not None:
        return CONFIG_OVERRIDE
    interpreted = INTERPRETED if interpreted is None else interpreted
    block_h = max(16, _pow2(hidden))
    if interpreted:   # numpy-vectorised: few big programs are fast; exercise both recurrent-dot forms
        return Config(max(2, min(16, _pow2(batch))), block_h, 16, block_h <= 16, 4, 1)
    if block_h <= 64:
        return Config(4 if batch > 64 else 2, block_h, block_h, True, 4, 1)
    if block_h <= 128:
        return Config(4, block_h, 8, False, 4, 2)
    return Config(4, block_h, 8, False, 8, 2)


DOT_PRECISION = "ieee"
"""``input_precision`` of the kernels' float32 ``tl.dot`` (``"ieee"``: exact float32 products, the default;
``"tf32"`` trades exactness for tensor cores). float64 always runs ``"ieee"``."""

CONFIG_OVERRIDE: Optional[Config] = None
"""A :class:`Config` every launch uses instead of :func:`config` (tests and tuning)."""


def _precision(dtype: torch.dtype) -> str:
    return DOT_PRECISION if dtype == torch.float32 else "ieee"


_CONSTS: dict = {}


def _consts(spec: CellSpec, like: torch.Tensor) -> torch.Tensor:
    """The kernels' scalars (``CellSpec.constants()`` and the gain) as a tensor of the data's dtype, made once per
    spec, dtype and device: no host-to-device copy per call, so a training step can be captured in a CUDA graph."""
    key = (spec, like.dtype, like.device)
    found = _CONSTS.get(key)
    if found is None:
        found = _CONSTS[key] = torch.tensor(spec.constants() + (spec.input_gain,), dtype=like.dtype,
                                            device=like.device)
    return found


def _full(s: Optional[torch.Tensor], shape) -> Optional[torch.Tensor]:
    return None if s is None else s.expand(shape).contiguous()


def _per_neuron(p: torch.Tensor, hidden: int) -> torch.Tensor:
    return p.expand(hidden).contiguous()


def supported(spec: Optional[CellSpec], x: torch.Tensor, weight: torch.Tensor) -> Optional[str]:
    """Why :class:`TritonRecurrentCellSequence` cannot run this call, or ``None`` if it can.

    Needs a kernel :class:`CellSpec`, CUDA tensors (CPU ones only when this module was imported under
    ``TRITON_INTERPRET=1``), float32/float64 ``x`` and ``weight`` of one dtype and device, ``x`` of shape
    ``(T, B, m)`` with ``T, B >= 1`` and ``weight`` ``(h, m + h)`` or ``(h, m)`` with ``h <= MAX_HIDDEN``.
    """
    if spec is None or spec.kind not in ("brf", "rf", "bhrf"):
        return "the Triton recurrent kernels run BRF, RF and BHRF cells with a kernel CellSpec"
    if x.dtype not in FUSED_DTYPES or weight.dtype != x.dtype:
        return f"the Triton recurrent kernels need float32 or float64 x and weight of one dtype (got {x.dtype}, " \
               f"{weight.dtype})"
    if weight.device != x.device:
        return "x and weight lie on different devices"
    if x.dim() != 3 or weight.dim() != 2 or 0 in x.shape[:2]:
        return "x must be (T, B, m) with T, B >= 1 and weight (h, m + h) or (h, m)"
    hidden, m = weight.shape[0], x.shape[2]
    if weight.shape[1] not in (m, m + hidden):
        return f"weight of shape {tuple(weight.shape)} is neither (h, m + h) nor (h, m) for m = {m}"
    if hidden > MAX_HIDDEN:
        return f"h = {hidden} hidden units exceed the {MAX_HIDDEN} one Triton program holds in registers"
    if x.device.type == "cuda":
        if INTERPRETED:
            return "the Triton kernels were built for the interpreter (TRITON_INTERPRET=1), not for CUDA"
    elif not (INTERPRETED and x.device.type == "cpu"):
        return f"the Triton recurrent kernels need CUDA tensors (got {x.device}; CPU only under TRITON_INTERPRET=1)"
    return None


_grad_mode = threading.local()


class TritonRecurrentCellSequence(torch.autograd.Function):
    r"""The recurrent layer over a sequence in two persistent Triton launches (see the module doc).

    ``apply(spec, recurrent, x, weight, z, u, v, q, pa, pb) -> (z_all, z_T, u_T, v_T[, q_T])``: the contract of
    :class:`._autograd.RecurrentCellSequence`. Under ``torch.no_grad`` only the final state is kept.
    """

    @classmethod
    def apply(cls, *args):
        _grad_mode.enabled = torch.is_grad_enabled()
        return super().apply(*args)

    @staticmethod
    def forward(ctx, spec: CellSpec, recurrent: bool, x, weight, z, u, v, q, pa, pb):
        ctx.set_materialize_grads(False)
        why = supported(spec, x, weight)
        if why is not None:
            raise ValueError(f"TritonRecurrentCellSequence cannot run: {why}.")
        steps, batch, m = x.shape
        hidden = weight.shape[0]
        if weight.shape[1] != (m + hidden if recurrent else m):
            raise ValueError(f"weight of shape {tuple(weight.shape)} does not fit x (T, B, {m}) with "
                             f"recurrent={bool(recurrent)}: (h, m + h) for the recurrent layer, (h, m) without")
        recurrent = bool(recurrent)
        for t in (z, u, v, q, pa, pb):
            if t is not None and (t.dtype != x.dtype or t.device != x.device):
                raise ValueError("the Triton recurrent kernels need the state and parameters in x's dtype and device")
        if any(p.dim() > 1 for p in (pa, pb)):
            raise ValueError("the Triton recurrent kernels need per-neuron parameters of shape (h,) or ()")
        save = getattr(_grad_mode, "enabled", True) and any(ctx.needs_input_grad)
        shape = (batch, hidden)
        x = x.contiguous()
        cur = nnf.linear(x, weight[:, :m]).contiguous()           # W_x x_t for all steps; becomes I_t in place
        z0, u0, v0 = _full(z, shape), _full(u, shape), _full(v, shape)
        q0 = _full(q, shape) if spec.has_q else u0
        pa_c, pb_c = _per_neuron(pa, hidden), _per_neuron(pb, hidden)
        consts = _consts(spec, x)
        z_all = torch.empty_like(cur)
        n_slots = steps if save else 1
        us = cur.new_empty((n_slots, batch, hidden))
        vs = cur.new_empty((n_slots, batch, hidden))
        qs = cur.new_empty((n_slots, batch, hidden)) if spec.has_q else us
        w_t = weight[:, m:].t().contiguous() if recurrent else consts
        cfg = config(hidden, batch)
        if cfg.block_h < hidden or cfg.block_h % cfg.block_k or (cfg.resident and cfg.block_k != cfg.block_h):
            raise ValueError(f"launch configuration {cfg} does not fit h = {hidden}")
        grid = (triton.cdiv(batch, cfg.block_b),)
        recurrent_forward_kernel[grid](cur, w_t, z0, u0, v0, q0, z_all, us, vs, qs, batch * hidden if save else 0,
                                       pa_c, pb_c, consts, batch, hidden, batch * hidden, steps,
                                       **_meta(spec), REC=recurrent,
                                       RESIDENT=cfg.resident, BLOCK_B=cfg.block_b, BLOCK_H=cfg.block_h,
                                       BLOCK_K=cfg.block_k, PRECISION=_precision(x.dtype),
                                       num_warps=cfg.num_warps, num_stages=cfg.num_stages, **_launch_options())
        ctx.spec, ctx.recurrent, ctx.cfg = spec, recurrent, cfg
        ctx.shapes = (z, u, v, q, pa, pb)
        if save:
            ctx.save_for_backward(x, weight, z0, u0, v0, q0 if spec.has_q else None, cur, us, vs,
                                  qs if spec.has_q else None, z_all, pa_c, pb_c, consts)
        final = (z_all[-1].clone(), us[-1].clone(), vs[-1].clone()) + ((qs[-1].clone(),) if spec.has_q else ())
        return (z_all,) + final

    @staticmethod
    def backward(ctx, g_z_all, g_z_last, g_u, g_v, g_q=None):
        spec, recurrent, cfg = ctx.spec, ctx.recurrent, ctx.cfg
        x, weight, z0, u0, v0, q0, cur, us, vs, qs, z_all, pa_c, pb_c, consts = ctx.saved_tensors
        z, u, v, q, pa, pb = ctx.shapes
        steps, batch, m = x.shape
        hidden = weight.shape[0]
        shape = (batch, hidden)
        finals = [g_u, g_v] + ([g_q] if spec.has_q else [])
        has_gc = any(g is not None for g in finals)
        finals = [torch.zeros_like(u0) if g is None else _full(g, shape) for g in finals]
        gzl = _full(g_z_last, shape)
        gz = None if g_z_all is None else g_z_all.contiguous()
        g_cur = torch.empty_like(cur)
        g_z0 = torch.empty_like(u0) if recurrent else u0
        g_u0, g_v0 = torch.empty_like(u0), torch.empty_like(u0)
        g_q0 = torch.empty_like(u0) if spec.has_q else g_u0
        grid = (triton.cdiv(batch, cfg.block_b),)
        g_pa = cur.new_empty((grid[0], hidden))
        g_pb = cur.new_empty((grid[0], hidden))
        w_rec = weight[:, m:].contiguous() if recurrent else consts
        q0_ = u0 if q0 is None else q0
        qs_ = us if qs is None else qs
        recurrent_backward_kernel[grid](cur, w_rec, u0, v0, q0_, us, vs, qs_, pa_c, pb_c, consts,
                                        cur if gz is None else gz, u0 if gzl is None else gzl,
                                        finals[0], finals[1], finals[-1],
                                        g_cur, g_z0, g_u0, g_v0, g_q0, g_pa, g_pb, batch, hidden, batch * hidden, steps,
                                        **_meta(spec), REC=recurrent, RESIDENT=cfg.resident, HAS_GZ=gz is not None,
                                        HAS_GZL=gzl is not None, HAS_GC=has_gc, BLOCK_B=cfg.block_b,
                                        BLOCK_H=cfg.block_h, BLOCK_K=cfg.block_k, PRECISION=_precision(x.dtype),
                                        num_warps=cfg.num_warps, num_stages=cfg.num_stages, **_launch_options())
        g_x = nnf.linear(g_cur, weight[:, :m].t()) if ctx.needs_input_grad[2] else None
        g_weight = None
        if ctx.needs_input_grad[3]:
            inputs = torch.cat((x, torch.cat((z0[None], z_all[:-1]))), dim=2) if recurrent else x
            g_weight = g_cur.flatten(0, 1).transpose(0, 1) @ inputs.flatten(0, 1)

        def reduce(g, like):
            if g is None or like is None:
                return None
            return g if g.shape == like.shape else g.sum_to_size(like.shape)

        return (None, None, g_x, g_weight, reduce(g_z0, z) if recurrent else None, reduce(g_u0, u),
                reduce(g_v0, v), reduce(g_q0, q) if spec.has_q else None, reduce(g_pa.sum(0), pa),
                reduce(g_pb.sum(0), pb))
