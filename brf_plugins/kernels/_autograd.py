r"""Custom autograd Functions running the fused neuron updates with hand-derived backward passes (any device).

* :class:`CellStep`: one BRF/RF/BHRF step, one autograd node instead of a dozen.
* :class:`CellSequence`: a feed-forward layer over a whole ``(T, B, h)`` current; the forward runs the time loop
  without recording a graph, the backward runs the reverse-time loop by hand (no graph of ``T * dozen`` nodes).
* :class:`RecurrentCellSequence`: the paper's recurrent layer :math:`I_t = W[x_t; z_{t-1}]` over a sequence; the
  backward loop propagates through the recurrence and forms the weight gradient as one matmul over all steps.
* :class:`LISequence`: the leaky-integrator readout :math:`o_t = \alpha o_{t-1} + (1-\alpha) c_t` over a sequence.

The elementwise math is :mod:`._torch_cells` (the core's operations in the core's order), so spikes and states are
bitwise those of :mod:`brf_plugins.functional`; gradients agree with autograd through the core up to the order of
floating-point sums. Double backward is not supported (use ``backend="reference"``).
"""

from __future__ import annotations

from typing import List

import torch
from torch.nn import functional as nnf

from ._spec import CellSpec
from ._torch_cells import add, cell_backward, cell_forward

__all__ = ["CellStep", "CellSequence", "RecurrentCellSequence", "LISequence"]


def _sum_to(grad, like):
    """Reduce a broadcast gradient to the shape of the input it belongs to (``None`` passes through)."""
    if grad is None or like is None:
        return None
    return grad if grad.shape == like.shape else grad.sum_to_size(like.shape)


class _Trace:
    """What a sequence forward keeps for its reverse-time backward loop: the state before every step and the spike
    argument of every step (no copies: the tensors the loop made anyway)."""

    def __init__(self):
        self.us: List = []
        self.vs: List = []
        self.qs: List = []
        self.xs: List = []

    def step(self, spec: CellSpec, current, u, v, q, pa, pb):
        """One :func:`cell_forward` step, recorded; returns ``(z, u, v, q)``."""
        self.us.append(u)
        self.vs.append(v)
        self.qs.append(q)
        z, u, v, q, x = cell_forward(spec, current, u, v, q, pa, pb)
        self.xs.append(x)
        return z, u, v, q

    def backward_steps(self, spec: CellSpec, current_at, g_z_at, g_u, g_v, g_q, pa, pb, after_step=None):
        """The reverse-time loop: ``(g_currents per step, g_u0, g_v0, g_q0, g_pa, g_pb)``. ``current_at(t)`` gives
        the step's current where the backward reads it (RF's hard reset), ``g_z_at(t)`` the spike gradient;
        ``after_step(t, g_current)`` returns the gradient flowing into the previous step's spikes, if any."""
        steps = len(self.xs)
        g_currents = [None] * steps
        acc_pa = acc_pb = None
        surrogates = spec.spike_derivative(torch.stack(self.xs))     # one vectorised op for all steps
        g_z_rec = None
        for t in range(steps - 1, -1, -1):
            g_z = add(g_z_at(t), g_z_rec)
            g_cur, g_u, g_v, g_q, g_pa, g_pb = cell_backward(spec, current_at(t), self.us[t], self.vs[t],
                                                             self.qs[t], self.xs[t], pa, pb, g_z, g_u, g_v, g_q,
                                                             surrogates[t])
            g_currents[t] = g_cur
            acc_pa = g_pa if acc_pa is None else acc_pa.add_(g_pa)
            acc_pb = g_pb if acc_pb is None else acc_pb.add_(g_pb)
            g_z_rec = None if after_step is None else after_step(t, g_cur)
        return g_currents, g_z_rec, g_u, g_v, g_q, acc_pa, acc_pb


class CellStep(torch.autograd.Function):
    """``CellStep.apply(spec, current, u, v, q, pa, pb) -> (z, u', v'[, q'])`` (``q`` is ``None`` for RF).

    ``pa, pb`` are the per-neuron tensors of :func:`._torch_cells.neuron_params`. Saves the step's inputs and the
    spike argument ``x``; the backward is :func:`._torch_cells.cell_backward`.
    """

    @staticmethod
    def forward(ctx, spec: CellSpec, current, u, v, q, pa, pb):
        ctx.set_materialize_grads(False)
        with torch.no_grad():
            z, u_new, v_new, q_new, x = cell_forward(spec, current, u, v, q, pa, pb)
        ctx.spec = spec
        ctx.save_for_backward(current, u, v, q, x, pa, pb)
        return (z, u_new, v_new, q_new) if spec.has_q else (z, u_new, v_new)

    @staticmethod
    def backward(ctx, g_z, g_u, g_v, g_q=None):
        spec = ctx.spec
        current, u, v, q, x, pa, pb = ctx.saved_tensors
        g_cur, g_u0, g_v0, g_q0, g_pa, g_pb = cell_backward(spec, current, u, v, q, x, pa, pb, g_z, g_u, g_v, g_q)
        return (None, _sum_to(g_cur, current), _sum_to(g_u0, u), _sum_to(g_v0, v), _sum_to(g_q0, q),
                _sum_to(g_pa, pa), _sum_to(g_pb, pb))


class CellSequence(torch.autograd.Function):
    """``CellSequence.apply(spec, currents, u, v, q, pa, pb) -> (z, u_T, v_T[, q_T])``, ``z`` of shape ``(T, B, h)``.

    ``u, v, q`` are the initial state (``q`` ``None`` for RF). Keeps the per-step states and spike arguments (no
    copies: the tensors the loop made anyway) for the reverse-time backward loop.
    """

    @staticmethod
    def forward(ctx, spec: CellSpec, currents, u, v, q, pa, pb):
        ctx.set_materialize_grads(False)
        ctx.spec = spec
        ctx.initial = (u, v, q)
        trace, spikes = _Trace(), []
        with torch.no_grad():
            for current in currents:
                z, u, v, q = trace.step(spec, current, u, v, q, pa, pb)
                spikes.append(z)
            z_all = torch.stack(spikes)
        ctx.trace = trace
        ctx.save_for_backward(currents, pa, pb)
        return (z_all, u, v, q) if spec.has_q else (z_all, u, v)

    @staticmethod
    def backward(ctx, g_z_all, g_u, g_v, g_q=None):
        currents, pa, pb = ctx.saved_tensors
        g_currents, _, g_u, g_v, g_q, acc_pa, acc_pb = ctx.trace.backward_steps(
            ctx.spec, lambda t: currents[t], lambda t: None if g_z_all is None else g_z_all[t], g_u, g_v, g_q, pa,
            pb)
        u0, v0, q0 = ctx.initial
        g_currents = _sum_to(torch.stack(g_currents), currents)
        return (None, g_currents, _sum_to(g_u, u0), _sum_to(g_v, v0), _sum_to(g_q, q0),
                _sum_to(acc_pa, pa), _sum_to(acc_pb, pb))


class RecurrentCellSequence(torch.autograd.Function):
    r"""The recurrent layer over a sequence: :math:`I_t = W[x_t; z_{t-1}]` (``recurrent``) or :math:`W x_t`.

    ``apply(spec, recurrent, x, weight, z, u, v, q, pa, pb) -> (z_all, z_T, u_T, v_T[, q_T])`` with ``x`` of shape
    ``(T, B, m)`` and the initial state ``z, u, v, q``. The forward runs exactly the core's per-step
    ``cat`` + ``linear`` + neuron update (bitwise the same spikes); the backward propagates through time by hand
    and gets the weight gradient as one ``(h, T*B) @ (T*B, m+h)`` matmul.
    """

    @staticmethod
    def forward(ctx, spec: CellSpec, recurrent: bool, x, weight, z, u, v, q, pa, pb):
        ctx.set_materialize_grads(False)
        ctx.spec, ctx.recurrent = spec, recurrent
        ctx.initial = (z, u, v, q)
        inputs, spikes, trace = [], [], _Trace()
        with torch.no_grad():
            for x_t in x:
                step_input = torch.cat((x_t, z), dim=1) if recurrent else x_t
                inputs.append(step_input)
                z, u, v, q = trace.step(spec, nnf.linear(step_input, weight), u, v, q, pa, pb)
                spikes.append(z)
            z_all = torch.stack(spikes)
        ctx.trace = (inputs, trace)
        ctx.save_for_backward(x, weight, pa, pb)
        state = (z, u, v, q) if spec.has_q else (z, u, v)
        return (z_all,) + state

    @staticmethod
    def backward(ctx, g_z_all, g_z_last, g_u, g_v, g_q=None):
        spec, recurrent = ctx.spec, ctx.recurrent
        x, weight, pa, pb = ctx.saved_tensors
        inputs, trace = ctx.trace
        m = x.shape[2]
        need_x = ctx.needs_input_grad[2]
        w_rec = weight[:, m:] if recurrent else None
        g_x = [None] * x.shape[0] if need_x else None

        def current_at(t):  # only RF's hard reset reads the current (its pre-reset membrane): rebuild it there
            return nnf.linear(inputs[t], weight) if spec.kind == "rf" and spec.option == "hard" else None

        def g_z_at(t):  # the last step's spikes also get the final state's gradient
            g_z = None if g_z_all is None else g_z_all[t]
            return add(g_z, g_z_last) if t == x.shape[0] - 1 else g_z

        def into_previous_spikes(t, g_cur):
            if need_x:
                g_input = g_cur @ weight
                g_x[t] = g_input[:, :m]
                return g_input[:, m:] if recurrent else None
            return g_cur @ w_rec if recurrent else None

        g_currents, g_z_rec, g_u, g_v, g_q, acc_pa, acc_pb = trace.backward_steps(
            spec, current_at, g_z_at, g_u, g_v, g_q, pa, pb, into_previous_spikes)
        g_cur_all = torch.stack(g_currents)
        g_weight = None
        if ctx.needs_input_grad[3]:
            flat_inputs = torch.stack(inputs).flatten(0, 1)
            g_weight = g_cur_all.flatten(0, 1).transpose(0, 1) @ flat_inputs
        z0, u0, v0, q0 = ctx.initial
        return (None, None, torch.stack(g_x) if need_x else None, g_weight, _sum_to(g_z_rec, z0),
                _sum_to(g_u, u0), _sum_to(g_v, v0), _sum_to(g_q, q0), _sum_to(acc_pa, pa), _sum_to(acc_pb, pb))


class LISequence(torch.autograd.Function):
    r"""``LISequence.apply(currents, o, alpha, beta) -> o_all``: :math:`o_t = o_{t-1}\alpha + c_t\beta` over time.

    With ``beta = 1 - alpha`` this is :func:`brf_plugins.functional.li_step` step by step (same operations, same
    order). ``o`` is the initial potential (zeros if ``None``).

    ``beta`` must be ``1 - alpha``: the backward returns the whole derivative through ``alpha``,
    :math:`\sum_t G_t (o_{t-1} - c_t)`, and none through ``beta``. Summing the two terms separately and letting
    autograd subtract them (:math:`\sum G o - \sum G c`, both large) loses about ten times more float32 digits of
    the time constants' gradient.
    """

    @staticmethod
    def forward(ctx, currents, o, alpha, beta):
        ctx.set_materialize_grads(False)
        ctx.o0 = o
        outputs = []
        with torch.no_grad():
            state = torch.zeros_like(currents[0]) if o is None else o
            for current in currents:
                state = state * alpha + current * beta
                outputs.append(state)
            o_all = torch.stack(outputs)
        ctx.save_for_backward(currents, alpha, beta, o_all)
        return o_all

    @staticmethod
    def backward(ctx, g_o_all):
        currents, alpha, beta, o_all = ctx.saved_tensors
        o0 = ctx.o0
        if g_o_all is None:
            return None, None, None, None
        steps = currents.shape[0]
        g_state = None
        acc_alpha = None
        g_currents = [None] * steps
        for t in range(steps - 1, -1, -1):
            g_state = g_o_all[t] if g_state is None else g_o_all[t] + g_state * alpha
            g_currents[t] = g_state * beta
            previous = o_all[t - 1] if t > 0 else o0
            # d o_t / d alpha = o_{t-1} - c_t (beta = 1 - alpha): one sum of the small differences
            difference = -currents[t] if previous is None else previous - currents[t]
            term = g_state * difference
            acc_alpha = term if acc_alpha is None else acc_alpha.add_(term)
        g_o0 = None if o0 is None else _sum_to(g_state * alpha, o0)
        return _sum_to(torch.stack(g_currents), currents), g_o0, _sum_to(acc_alpha, alpha), None
