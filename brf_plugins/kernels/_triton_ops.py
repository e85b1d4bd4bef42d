r"""Launchers and the autograd Function of the Triton whole-sequence kernels (:mod:`._triton`).

``TritonCellSequence.apply(spec, currents, u, v, q, pa, pb)`` has the signature and results of
:class:`._autograd.CellSequence`: one kernel launch runs the whole forward over time, one launch the whole backward.
The forward stores the state after every step (``3 * T * B * h`` values) so that the backward can recompute each
step bitwise.

Runs on CUDA tensors, or on CPU tensors under Triton's interpreter (``TRITON_INTERPRET=1`` set before this
module is first imported), which is how the tests cover it without a GPU.
"""

from __future__ import annotations

import os

import torch

from ._spec import CellSpec
from ._triton import (KIND_BHRF, KIND_BRF, KIND_RF, RESET_HARD, RESET_NONE, RESET_SOFT, VARIANT_CODE,
                      VARIANT_EXPLICIT, VARIANT_PAPER, cell_backward_kernel, cell_forward_kernel)

__all__ = ["TritonCellSequence", "INTERPRETED"]

INTERPRETED = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
"""Whether the kernels were built for Triton's CPU interpreter (decided when this module was imported)."""

_KIND = {"brf": KIND_BRF, "rf": KIND_RF, "bhrf": KIND_BHRF}
_OPTION = {("rf", "none"): RESET_NONE, ("rf", "soft"): RESET_SOFT, ("rf", "hard"): RESET_HARD,
           ("bhrf", "code"): VARIANT_CODE, ("bhrf", "paper"): VARIANT_PAPER, ("bhrf", "explicit"): VARIANT_EXPLICIT}


def _meta(spec: CellSpec) -> dict:
    from ..surrogate import MultiGaussian
    return dict(KIND=_KIND[spec.kind], OPT=_OPTION.get((spec.kind, spec.option), 0), REFR=spec.refractory,
                SR=spec.smooth_reset, MULTI=isinstance(spec.surrogate, MultiGaussian), SMOOTH=spec.smooth,
                HAS_Q=spec.has_q)


def _block(n: int) -> int:
    if INTERPRETED:       # numpy-vectorised: big blocks are fast
        return max(16, min(4096, 1 << max(n - 1, 1).bit_length()))
    return 128


def _launch_options() -> dict:
    # No multiply-add contraction: keeps every value bitwise equal to the torch operations.
    return {} if INTERPRETED else {"enable_fp_fusion": False}


def _per_neuron(p: torch.Tensor, hidden: int) -> torch.Tensor:
    return p.expand(hidden).contiguous()


def _state(s: torch.Tensor, shape) -> torch.Tensor:
    return s.expand(shape).contiguous()


class TritonCellSequence(torch.autograd.Function):
    """Whole-sequence BRF/RF/BHRF forward and backward, one Triton launch each (see module doc)."""

    @staticmethod
    def forward(ctx, spec: CellSpec, currents, u, v, q, pa, pb):
        ctx.set_materialize_grads(False)
        steps, batch, hidden = currents.shape
        n = batch * hidden
        cur = currents.contiguous()
        u0, v0 = _state(u, (batch, hidden)), _state(v, (batch, hidden))
        q0 = _state(q, (batch, hidden)) if spec.has_q else u0
        pa_c, pb_c = _per_neuron(pa, hidden), _per_neuron(pb, hidden)
        consts = torch.tensor(spec.constants(), dtype=cur.dtype, device=cur.device)
        us = torch.empty_like(cur)
        vs = torch.empty_like(cur)
        qs = torch.empty_like(cur) if spec.has_q else us
        z = torch.empty_like(cur)
        block = _block(n)
        grid = (triton_cdiv(n, block),)
        cell_forward_kernel[grid](cur, n, u0, v0, q0, us, vs, qs, n, pa_c, pb_c, consts, z, n, n, hidden, steps,
                                  **_meta(spec), BLOCK=block, **_launch_options())
        ctx.spec = spec
        ctx.shapes = (u, v, q, pa, pb)
        ctx.save_for_backward(cur, u0, v0, q0, us, vs, qs if spec.has_q else None, pa_c, pb_c, consts)
        final = (us[-1].clone(), vs[-1].clone()) + ((qs[-1].clone(),) if spec.has_q else ())
        return (z,) + final

    @staticmethod
    def backward(ctx, g_z, g_u, g_v, g_q=None):
        spec = ctx.spec
        cur, u0, v0, q0, us, vs, qs, pa_c, pb_c, consts = ctx.saved_tensors
        u, v, q, pa, pb = ctx.shapes
        steps, batch, hidden = cur.shape
        n = batch * hidden
        finals = [g_u, g_v] + ([g_q] if spec.has_q else [])
        has_gc = any(g is not None for g in finals)
        finals = [torch.zeros_like(u0) if g is None else g.expand(batch, hidden).contiguous() for g in finals]
        g_cur = torch.empty_like(cur)
        g_u0, g_v0 = torch.empty_like(u0), torch.empty_like(v0)
        g_q0 = torch.empty_like(u0) if spec.has_q else g_u0
        g_pa = torch.empty_like(u0)
        g_pb = torch.empty_like(u0)
        gz = cur if g_z is None else g_z.contiguous()
        block = _block(n)
        grid = (triton_cdiv(n, block),)
        cell_backward_kernel[grid](cur, n, u0, v0, q0, us, vs, us if qs is None else qs, n, pa_c, pb_c, consts,
                                   gz, n, finals[0], finals[1], finals[-1] if spec.has_q else finals[0],
                                   g_cur, n, g_u0, g_v0, g_q0, g_pa, g_pb, n, hidden, steps,
                                   **_meta(spec), HAS_GZ=g_z is not None, HAS_GC=has_gc, BLOCK=block,
                                   **_launch_options())

        def reduce(g, like):
            return g if g.shape == like.shape else g.sum_to_size(like.shape)

        return (None, g_cur,
                reduce(g_u0, u), reduce(g_v0, v), reduce(g_q0, q) if spec.has_q else None,
                reduce(g_pa, pa), reduce(g_pb, pb))


def triton_cdiv(a: int, b: int) -> int:
    return (a + b - 1) // b
