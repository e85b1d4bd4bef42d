r"""Graph-captured training: one optimisation step (forward, full BPTT backward, optimizer) as one callable.

:func:`make_train_step` returns ``step(x, target) -> loss`` in one of three modes:

* ``"eager"``: the plain step (``zero_grad``, forward, ``loss.backward()``, ``optimizer.step()``);
* ``"compile"``: the forward and loss through ``torch.compile`` (``dynamic=False``; ``mode="reduce-overhead"`` on
  CUDA, which replays CUDA graphs); the backward is compiled by AOTAutograd. TorchDynamo unrolls the Python time
  loop, so compile time grows with the sequence length (minutes for ``T = 784``): use it for short sequences or
  long runs where the compile time amortises. Needs a C++ compiler on CPU;
* ``"cuda_graph"``: the whole step (forward, backward **and** optimizer update) captured once into a
  ``torch.cuda.CUDAGraph`` for static shapes and replayed: one launch per training step instead of thousands.
  Needs CUDA and an optimizer built with ``capturable=True`` where it has the option (Adam, AdamW, ...). The
  warm-up iterations that capture requires run on the first batch and are then undone (parameters and optimizer
  state restored in place), so the captured step starts where an eager one would.

All modes compute the same step; the tests check ``"compile"`` against ``"eager"`` on CPU and ``"cuda_graph"`` on
a GPU.

Example:
    >>> import torch
    >>> from brf_plugins import RecurrentSNN
    >>> from brf_plugins.train.capture import make_train_step
    >>> net = RecurrentSNN(1, 16, 10, omega_init=(15.0, 50.0))
    >>> opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    >>> loss_fn = lambda out, y: torch.nn.functional.cross_entropy(out.readout.mean(0), y)
    >>> step = make_train_step(net, opt, loss_fn, mode="eager")
    >>> loss = step(torch.rand(20, 4, 1), torch.tensor([0, 1, 2, 3]))
    >>> loss.shape
    torch.Size([])
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn

from .._checks import check_choice, check_positive_int

__all__ = ["TRAIN_MODES", "make_train_step"]

TRAIN_MODES = ("eager", "compile", "cuda_graph")


def make_train_step(model: nn.Module, optimizer: torch.optim.Optimizer,
                    loss_fn: Callable[[object, torch.Tensor], torch.Tensor], mode: str = "eager", *,
                    compile_mode: Optional[str] = None, warmup: int = 3) -> Callable[[torch.Tensor, torch.Tensor],
                                                                                     torch.Tensor]:
    """One training step of ``model`` as a callable ``step(x, target) -> loss`` (a detached 0-dim tensor).

    Args:
        model: any module; ``loss_fn(model(x), target)`` must return a scalar loss.
        optimizer: the optimizer of ``model``'s parameters.
        loss_fn: ``(model output, target) -> loss``.
        mode: ``"eager"``, ``"compile"`` or ``"cuda_graph"`` (see the module doc).
        compile_mode: ``torch.compile`` mode for ``"compile"`` (default ``"reduce-overhead"`` on CUDA, ``None``
            on CPU).
        warmup: side-stream iterations before capturing a CUDA graph (undone afterwards).

    Shapes are static in ``"cuda_graph"`` mode: every call must pass ``x`` and ``target`` of the first call's shape,
    dtype and device (a different shape raises ``ValueError``; build another step for it).
    """
    check_choice("mode", mode, TRAIN_MODES)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"`optimizer` must be a torch.optim.Optimizer, got {type(optimizer).__name__}.")
    if not callable(loss_fn):
        raise TypeError("`loss_fn` must be callable as loss_fn(model(x), target).")
    if mode == "eager":
        return _eager_step(model, optimizer, loss_fn)
    if mode == "compile":
        return _compiled_step(model, optimizer, loss_fn, compile_mode)
    return _cuda_graph_step(model, optimizer, loss_fn, check_positive_int("warmup", warmup))


def _eager_step(model, optimizer, loss_fn):
    def step(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), target)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def _compiled_step(model, optimizer, loss_fn, compile_mode):
    def forward_loss(x, target):
        return loss_fn(model(x), target)

    compiled = {}

    def step(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        fn = compiled.get(x.device.type)
        if fn is None:
            chosen = compile_mode if compile_mode is not None else (
                "reduce-overhead" if x.device.type == "cuda" else None)
            fn = compiled[x.device.type] = torch.compile(forward_loss, dynamic=False, mode=chosen)
        optimizer.zero_grad(set_to_none=True)
        loss = fn(x, target)
        loss.backward()
        optimizer.step()
        return loss.detach().clone()

    return step


def _check_capturable(optimizer):
    for group in optimizer.param_groups:
        if group.get("capturable") is False:
            raise ValueError(f"mode='cuda_graph' needs the optimizer built with capturable=True (e.g. "
                             f"torch.optim.{type(optimizer).__name__}(params, lr=..., capturable=True)).")


def _cuda_graph_step(model, optimizer, loss_fn, warmup: int):
    if not torch.cuda.is_available():
        raise RuntimeError("mode='cuda_graph' needs a CUDA device; use mode='eager' or 'compile' on CPU.")
    _check_capturable(optimizer)
    captured = {}

    def capture(x, target):
        static_x, static_target = x.clone(), target.clone()
        params = [p for group in optimizer.param_groups for p in group["params"]]
        saved_params = [p.detach().clone() for p in params]
        saved_state = {p: {k: v.clone() if torch.is_tensor(v) else v for k, v in optimizer.state[p].items()}
                       for p in params if p in optimizer.state}
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                optimizer.zero_grad(set_to_none=True)
                loss_fn(model(static_x), static_target).backward()
                optimizer.step()
        torch.cuda.current_stream().wait_stream(side)
        # Undo the warm-up in place (the graph will read these very tensors).
        with torch.no_grad():
            for p, saved in zip(params, saved_params):
                p.copy_(saved)
            for p in params:
                state = optimizer.state.get(p, {})
                before = saved_state.get(p)
                for key, value in state.items():
                    if not torch.is_tensor(value):
                        continue
                    if before is not None and torch.is_tensor(before.get(key)):
                        value.copy_(before[key])
                    else:            # state created by the warm-up: a fresh optimizer's zeros
                        value.zero_()
        graph = torch.cuda.CUDAGraph()
        optimizer.zero_grad(set_to_none=True)
        with torch.cuda.graph(graph):
            static_loss = loss_fn(model(static_x), static_target)
            static_loss.backward()
            optimizer.step()
        captured.update(graph=graph, x=static_x, target=static_target, loss=static_loss)

    def step(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if not captured:
            capture(x, target)
        else:
            for name, given in (("x", x), ("target", target)):
                static = captured[name]
                if given.shape != static.shape or given.dtype != static.dtype or given.device != static.device:
                    raise ValueError(f"mode='cuda_graph' has static shapes: `{name}` must be "
                                     f"{tuple(static.shape)} {static.dtype} on {static.device} as when captured, "
                                     f"got {tuple(given.shape)} {given.dtype} on {given.device}; build another "
                                     f"step for this shape.")
            captured["x"].copy_(x)
            captured["target"].copy_(target)
        captured["graph"].replay()
        return captured["loss"].detach().clone()

    return step
