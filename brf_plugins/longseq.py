r"""Training on long sequences: activation checkpointing over time chunks, and truncated BPTT.

Backpropagation through time keeps every step's activations until the backward pass, so its memory grows
linearly with the sequence length T (about 20 tensors of shape ``(B, h)`` per step for a BRF layer). Two ways
out, both for any module that follows the networks' contract ``forward(x (T, B, m), state) -> SNNOutput``
(:class:`brf_plugins.network.RecurrentSNN` and the ``build_paper_network`` modules of ``snntorch_ext`` and
``norse_ext``):

* :func:`checkpointed_forward` runs the sequence in chunks of ``chunk_size`` steps, each chunk one autograd
  node that keeps no activations (or, with ``method="torch"``, under ``torch.utils.checkpoint`` with
  ``use_reentrant=False``). Only the state at chunk boundaries and the outputs are kept; the backward pass
  recomputes one chunk at a time. The gradients are **exactly** those of full BPTT (same operations, same
  order); the cost is one extra forward pass. Memory:
  :math:`O(T/k \cdot |state| + k \cdot |activations\ per\ step|)` instead of :math:`O(T \cdot |activations|)`.
* :func:`truncated_bptt` runs the sequence in chunks and calls ``backward`` on each chunk's loss before the next
  chunk starts, detaching the state in between (optionally taking an optimizer step per chunk, as the paper's
  ALIF baseline did with 50-step chunks). Memory is that of one chunk, but gradients do not flow across chunk
  boundaries: it is an approximation of BPTT, not BPTT.

Both assemble the chunk outputs into one :class:`~brf_plugins.network.SNNOutput`: readouts (and recorded spikes)
concatenated over time, spike counts summed, the final state of the last chunk. The state is carried from chunk
to chunk unchanged, so a chunked forward pass gives the same readout, spikes and state as one call on the whole
sequence.

Example:
    >>> import torch
    >>> from brf_plugins import RecurrentSNN
    >>> from brf_plugins.longseq import checkpointed_forward, truncated_bptt
    >>> from brf_plugins.metrics import sequence_loss
    >>> net = RecurrentSNN(4, 16, 3, omega_init=(3.0, 5.0))
    >>> x, y = torch.rand(200, 2, 4), torch.tensor([0, 2])
    >>> out = checkpointed_forward(net, x, chunk_size=50)       # exact gradients, bounded activation memory
    >>> sequence_loss(out.readout, y, "sum").backward()
    >>> result = truncated_bptt(net, x, lambda out, steps: sequence_loss(out.readout, y, "sum"), chunk_size=50)
    >>> result.output.readout.shape, len(result.chunk_losses)
    (torch.Size([200, 2, 3]), 4)
"""

from __future__ import annotations

from typing import Callable, List, NamedTuple, Optional, Tuple

import torch
import torch.utils._pytree as pytree
from torch.utils.checkpoint import checkpoint as _torch_checkpoint

from ._checks import check_choice, check_finite_tensor, check_input, check_nonempty, check_positive_int
from .network import SNNOutput

__all__ = ["chunk_bounds", "detach_state", "chunked_forward", "checkpointed_forward", "truncated_bptt",
           "TBPTTResult", "CHECKPOINT_METHODS"]

CHECKPOINT_METHODS = ("recompute", "torch")

LossFn = Callable[[SNNOutput, slice], Optional[torch.Tensor]]


def chunk_bounds(length: int, chunk_size: int) -> List[Tuple[int, int]]:
    """``[(0, k), (k, 2k), ...]`` covering ``range(length)``; the last chunk may be shorter.

    >>> chunk_bounds(7, 3)
    [(0, 3), (3, 6), (6, 7)]
    """
    length = check_positive_int("length", length)
    chunk_size = check_positive_int("chunk_size", chunk_size)
    return [(start, min(start + chunk_size, length)) for start in range(0, length, chunk_size)]


def detach_state(state):
    """A copy of a (nested) state with every tensor detached from the graph; structure and types are kept.

    Handles tensors, ``None``, tuples (also NamedTuples, e.g. Norse states), lists and dicts.
    """
    if isinstance(state, torch.Tensor):
        return state.detach()
    if isinstance(state, tuple):
        items = [detach_state(s) for s in state]
        return type(state)(*items) if hasattr(state, "_fields") else type(state)(items)
    if isinstance(state, list):
        return [detach_state(s) for s in state]
    if isinstance(state, dict):
        return {k: detach_state(v) for k, v in state.items()}
    return state


def _check_sequence(x) -> torch.Tensor:
    """Checked once for the whole sequence, so that a bad late chunk cannot fail after earlier updates."""
    check_input("x", x, ndim=3)
    check_nonempty("x", x, 0, "time")
    return check_finite_tensor("x", x)


def _call(model, x_chunk, state, start, record, spike_hook, forward_kwargs):
    kwargs = dict(forward_kwargs)
    if record:
        kwargs["record"] = True
    if spike_hook is not None:
        # the model numbers the steps of each chunk from 0; the hook sees the step of the whole sequence
        kwargs["spike_hook"] = lambda t, z: spike_hook(start + t, z)
    out = model(x_chunk, state, **kwargs)
    if not isinstance(out, SNNOutput):
        raise TypeError(f"`model` must return brf_plugins.network.SNNOutput, got {type(out).__name__}; the "
                        f"chunked runners need forward(x, state) -> SNNOutput.")
    return out


class _RecomputeChunk(torch.autograd.Function):
    """One chunk as one autograd node: forward without a graph, backward recomputes the chunk with one.

    ``inputs`` are the chunk's tensor leaves (input, state) followed by the model's parameters, so that the
    parameter gradients are returned like any input's (``torch.autograd.grad`` works through it).
    """

    @staticmethod
    def forward(ctx, run, n_leaves, *inputs):
        ctx.run, ctx.n_leaves = run, n_leaves
        ctx.rng = _rng_states(inputs[:n_leaves])
        ctx.save_for_backward(*inputs)
        with torch.no_grad():
            outputs = _split(run(*inputs[:n_leaves]))[0]
        ctx.set_materialize_grads(False)
        return tuple(outputs)

    @staticmethod
    def backward(ctx, *grad_outputs):
        inputs = ctx.saved_tensors
        leaves = [t.detach().requires_grad_(t.requires_grad) for t in inputs[:ctx.n_leaves]]
        with torch.random.fork_rng(devices=list(ctx.rng[1]), enabled=True):
            _set_rng_states(ctx.rng)
            with torch.enable_grad():
                outputs, _, _ = _split(ctx.run(*leaves))
        pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if g is not None and o.requires_grad]
        wanted = [t for t, need in zip(leaves + list(inputs[ctx.n_leaves:]), ctx.needs_input_grad[2:]) if need]
        grads = iter(torch.autograd.grad([o for o, _ in pairs], wanted, [g for _, g in pairs], allow_unused=True)
                     if pairs and wanted else [None] * len(wanted))
        return (None, None) + tuple(next(grads) if need else None for need in ctx.needs_input_grad[2:])


def _split(output):
    """Tensor leaves of a (nested) output, and what is needed to rebuild it."""
    leaves, spec = pytree.tree_flatten(output)
    tensors = [leaf for leaf in leaves if isinstance(leaf, torch.Tensor)]
    constants = [_TENSOR if isinstance(leaf, torch.Tensor) else leaf for leaf in leaves]
    return tensors, spec, constants


_TENSOR = object()  # marks where a tensor leaf goes back


def _join(tensors, spec, constants):
    tensors = iter(tensors)
    return pytree.tree_unflatten([next(tensors) if c is _TENSOR else c for c in constants], spec)


def _rng_states(tensors):
    cuda = sorted({t.device.index or 0 for t in tensors if t.is_cuda})
    return torch.get_rng_state(), {d: torch.cuda.get_rng_state(d) for d in cuda}


def _set_rng_states(states):
    cpu, cuda = states
    torch.set_rng_state(cpu)
    for device, state in cuda.items():
        torch.cuda.set_rng_state(state, device)


def _recompute_chunk(model, x_chunk, state, start, record, spike_hook, forward_kwargs):
    """``_call`` on one chunk through :class:`_RecomputeChunk` (no activations kept in the forward pass)."""
    leaves, spec = pytree.tree_flatten((x_chunk, state))
    positions = [i for i, leaf in enumerate(leaves) if isinstance(leaf, torch.Tensor)]
    params = [p for p in model.parameters() if p.requires_grad] if isinstance(model, torch.nn.Module) else []
    box = {}

    def run(*tensors):
        full = list(leaves)
        for i, t in zip(positions, tensors):
            full[i] = t
        xc, st = pytree.tree_unflatten(full, spec)
        out = _call(model, xc, st, start, record, spike_hook, forward_kwargs)
        box["spec"] = _split(out)[1:]
        return out

    outputs = _RecomputeChunk.apply(run, len(positions), *[leaves[i] for i in positions], *params)
    return _join(outputs, *box["spec"])


def _assemble(outputs: List[SNNOutput], record: bool) -> SNNOutput:
    readout = torch.cat([o.readout for o in outputs])
    spike_count = outputs[0].spike_count
    for o in outputs[1:]:
        spike_count = spike_count + o.spike_count
    spikes = torch.cat([o.hidden_spikes for o in outputs]) if record else None
    return SNNOutput(readout, spike_count, spikes, outputs[-1].state)


def chunked_forward(model: torch.nn.Module, x: torch.Tensor, state=None, *, chunk_size: int,
                    checkpoint: bool = False, method: str = "recompute", detach_between: bool = False, record: bool = False,
                    spike_hook: Optional[Callable[[int, torch.Tensor], torch.Tensor]] = None,
                    **forward_kwargs) -> SNNOutput:
    """Run ``model`` over ``x`` ``(T, B, m)`` in chunks of ``chunk_size`` steps and assemble one output.

    Args:
        model: any module with ``forward(x (T, B, m), state) -> SNNOutput``.
        x: the time-first input sequence.
        state: the state to start from (``None``: the model's zero state).
        chunk_size: steps per chunk (the last chunk may be shorter).
        checkpoint: keep no activations of a chunk in the forward pass and recompute them in the backward pass
            (exact gradients). Ignored when gradients are disabled.
        method: how to checkpoint. ``"recompute"`` (default): each chunk is one autograd node whose forward runs
            without a graph; its backward reruns the chunk (restoring the RNG state) and differentiates it, so
            the graph holds only chunk-boundary states and outputs. ``"torch"``:
            ``torch.utils.checkpoint(use_reentrant=False)``, which still records one graph node and a saved-tensor
            placeholder per operation (about 1-2 kB each: for small layers nearly as much as the activations
            themselves), but supports every autograd feature (e.g. double backward). The model's trainable
            parameters must be its ``parameters()`` for ``"recompute"``.
        detach_between: detach the state between chunks (the truncated gradient of TBPTT; note that the
            memory of all chunks stays alive until a backward pass over the assembled output: use
            :func:`truncated_bptt` for bounded memory).
        record: ask the model for ``hidden_spikes`` (concatenated over time).
        spike_hook: passed to the model as ``spike_hook(t, z)`` with ``t`` counted from the start of ``x``.
        **forward_kwargs: further keyword arguments of ``model.forward``.

    Returns:
        :class:`SNNOutput` equal to ``model(x, state)`` (readout, spike count, spikes, final state).

    Raises:
        TypeError: ``x`` is not a real floating-point tensor, ``chunk_size`` not an int, or ``model`` does not
            return an ``SNNOutput``.
        ValueError: ``x`` is not 3-D or has no time steps, or ``chunk_size < 1``.
    """
    _check_sequence(x)
    bounds = chunk_bounds(x.shape[0], chunk_size)
    check_choice("method", method, CHECKPOINT_METHODS)
    use_checkpoint = checkpoint and torch.is_grad_enabled()
    outputs = []
    for start, stop in bounds:
        if use_checkpoint and method == "recompute":
            out = _recompute_chunk(model, x[start:stop], state, start, record, spike_hook, forward_kwargs)
        elif use_checkpoint:
            out = _torch_checkpoint(_call, model, x[start:stop], state, start, record, spike_hook, forward_kwargs,
                                    use_reentrant=False)
        else:
            out = _call(model, x[start:stop], state, start, record, spike_hook, forward_kwargs)
        outputs.append(out)
        state = detach_state(out.state) if detach_between else out.state
    out = _assemble(outputs, record)
    return out._replace(state=state)


def checkpointed_forward(model: torch.nn.Module, x: torch.Tensor, state=None, *, chunk_size: int = 50,
                         method: str = "recompute", record: bool = False, **forward_kwargs) -> SNNOutput:
    """``model(x, state)`` with activation checkpointing over chunks of ``chunk_size`` steps.

    The forward values and the gradients equal those of ``model(x, state)`` (full BPTT); the autograd graph
    keeps only the chunk-boundary states and the outputs, and each chunk's activations are recomputed during
    the backward pass (one extra forward pass in total). A good ``chunk_size`` is about ``sqrt(T)``.

    See :func:`chunked_forward` for the arguments and exceptions.
    """
    return chunked_forward(model, x, state, chunk_size=chunk_size, checkpoint=True, method=method, record=record,
                           **forward_kwargs)


class TBPTTResult(NamedTuple):
    """What :func:`truncated_bptt` returns.

    loss: the sum of the chunk losses (a float).
    chunk_losses: each chunk's loss (``None`` where ``loss_fn`` returned ``None``).
    output: the assembled :class:`SNNOutput`, detached (readout, spike count, spikes, final state).
    """

    loss: float
    chunk_losses: List[Optional[float]]
    output: SNNOutput


def truncated_bptt(model: torch.nn.Module, x: torch.Tensor, loss_fn: LossFn, *, chunk_size: int = 50,
                   state=None, optimizer: Optional[torch.optim.Optimizer] = None,
                   checkpoint_size: Optional[int] = None, record: bool = False,
                   spike_hook: Optional[Callable[[int, torch.Tensor], torch.Tensor]] = None,
                   **forward_kwargs) -> TBPTTResult:
    r"""Truncated backpropagation through time over chunks of ``chunk_size`` steps.

    For each chunk :math:`[s, e)`: ``out = model(x[s:e], state)``, ``loss = loss_fn(out, slice(s, e))``,
    ``loss.backward()``, then (if ``optimizer``) ``optimizer.step(); optimizer.zero_grad()``, and the next chunk
    starts from ``detach_state(out.state)``. The gradient of chunk :math:`c` therefore reaches only the steps of
    chunk :math:`c`; the state's forward values are carried on unchanged. Without an optimizer the gradients of
    all chunks accumulate in ``.grad`` (one update per sequence).

    ``loss_fn(out, steps)`` receives the chunk's output and the ``slice`` of the chunk's steps within ``x`` (to
    select per-step targets, e.g. ``y[steps]``); it returns a scalar tensor, or ``None`` when the chunk has no
    loss (e.g. the "label-last" rule scores only the last chunk).

    Args:
        model: any module with ``forward(x (T, B, m), state) -> SNNOutput``.
        x: the input sequence ``(T, B, m)``.
        loss_fn: ``(SNNOutput, slice) -> scalar tensor or None``.
        chunk_size: steps per truncation window (the paper's ALIF baseline used 50).
        state: state to start from (``None``: zeros).
        optimizer: step after every chunk (the paper's TBPTT); ``None`` only accumulates gradients.
        checkpoint_size: also checkpoint each window in sub-chunks of this many steps.
        record, spike_hook, **forward_kwargs: as in :func:`chunked_forward`.

    Returns:
        :class:`TBPTTResult` ``(loss, chunk_losses, output)``; ``output.state`` continues the sequence.

    Raises:
        TypeError: bad ``x`` dtype, ``loss_fn`` not callable, or a chunk loss that is not a scalar tensor.
        ValueError: ``x`` not 3-D or empty in time, ``chunk_size``/``checkpoint_size`` < 1, or a chunk loss with
            no gradient path to the model.

    Example:
        >>> import torch
        >>> from brf_plugins import RecurrentSNN
        >>> from brf_plugins.metrics import sequence_loss
        >>> net = RecurrentSNN(4, 16, 3, omega_init=(3.0, 5.0))
        >>> x, y = torch.rand(120, 2, 4), torch.randint(0, 3, (120, 2))
        >>> opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        >>> res = truncated_bptt(net, x, lambda out, s: sequence_loss(out.readout, y[s], "per_step"),
        ...                      chunk_size=50, optimizer=opt)
        >>> len(res.chunk_losses)
        3
    """
    _check_sequence(x)
    if not callable(loss_fn):
        raise TypeError(f"`loss_fn` must be callable as loss_fn(output, steps), got {type(loss_fn).__name__}.")
    bounds = chunk_bounds(x.shape[0], chunk_size)
    if checkpoint_size is not None:
        checkpoint_size = check_positive_int("checkpoint_size", checkpoint_size)
    outputs, chunk_losses = [], []
    for start, stop in bounds:
        if checkpoint_size is not None:
            out = chunked_forward(model, x[start:stop], state, chunk_size=checkpoint_size, checkpoint=True,
                                  record=record, spike_hook=_shifted(spike_hook, start), **forward_kwargs)
        else:
            out = _call(model, x[start:stop], state, start, record, spike_hook, forward_kwargs)
        loss = loss_fn(out, slice(start, stop))
        if loss is None:
            chunk_losses.append(None)
        else:
            if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                raise TypeError(f"`loss_fn` must return a scalar tensor or None, got "
                                f"{type(loss).__name__}{tuple(loss.shape) if isinstance(loss, torch.Tensor) else ''}.")
            if torch.is_grad_enabled() and not loss.requires_grad:
                raise ValueError("the loss returned by `loss_fn` has no gradient path to the model's parameters "
                                 "(did it use the output's readout?).")
            if loss.requires_grad:
                loss.backward()
            if optimizer is not None:
                optimizer.step()
                optimizer.zero_grad()
            chunk_losses.append(float(loss.detach()))
        outputs.append(SNNOutput(out.readout.detach(), out.spike_count.detach(),
                                 out.hidden_spikes.detach() if record else None, None))
        state = detach_state(out.state)
    output = _assemble(outputs, record)._replace(state=state)
    total = sum(loss for loss in chunk_losses if loss is not None)
    return TBPTTResult(float(total), chunk_losses, output)


def _shifted(spike_hook, offset: int):
    if spike_hook is None:
        return None
    return lambda t, z: spike_hook(offset + t, z)
