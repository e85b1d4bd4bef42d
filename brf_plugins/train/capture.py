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

__all__ = ["TRAIN_MODES", "make_train_step", "CapturedTrainStep", "keep_tensor_lr"]

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


class _CUDAGraphs:
    """How :class:`CapturedTrainStep` records and replays: a ``torch.cuda.CUDAGraph`` (warm-up on a side stream,
    as capture requires; the optimizer must be capturable)."""

    capturable = True

    def check(self, optimizer) -> None:
        _check_capturable(optimizer)

    def warm_up(self, body, iterations: int) -> None:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(iterations):
                body()
        torch.cuda.current_stream().wait_stream(side)

    def capture(self, body) -> None:
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            body()

    def replay(self) -> None:
        self.graph.replay()


class _Rerun(_CUDAGraphs):
    """The same protocol on any device, re-running the recorded body at every replay (what a graph replays):
    the static-buffer logic of :class:`CapturedTrainStep` tested without a GPU."""

    capturable = False

    def check(self, optimizer) -> None:
        pass

    def warm_up(self, body, iterations: int) -> None:
        for _ in range(iterations):
            body()

    def capture(self, body) -> None:
        self.body = body

    def replay(self) -> None:
        self.body()


def _snapshot(optimizer):
    params = [p for group in optimizer.param_groups for p in group["params"]]
    return params, [p.detach().clone() for p in params], {
        p: {k: v.clone() if torch.is_tensor(v) else v for k, v in optimizer.state[p].items()}
        for p in params if p in optimizer.state}


def _restore(optimizer, snapshot) -> None:
    """Undo the warm-up in place (the graph reads these very tensors)."""
    params, saved_params, saved_state = snapshot
    with torch.no_grad():
        for p, saved in zip(params, saved_params):
            p.copy_(saved)
        for p in params:
            before = saved_state.get(p)
            for key, value in optimizer.state.get(p, {}).items():
                if not torch.is_tensor(value):
                    continue
                if before is not None and torch.is_tensor(before.get(key)):
                    value.copy_(before[key])
                else:            # state created by the warm-up: a fresh optimizer's zeros
                    value.zero_()


class CapturedTrainStep:
    r"""One full-BPTT training step captured once into a CUDA graph and replayed: forward, loss, backward, the
    fused all-finite check of loss and gradients, ``clip_grad_norm_`` and the optimizer step, one launch.

    ``step(x, target) -> (loss, output, finite)``: detached copies of the loss and of ``output_of(model(x))``
    (e.g. the readout, for the training accuracy; the loss again without ``output_of``) and a 0-dim bool tensor, False when the loss or a gradient was
    non-finite (read it after the call: one host sync). The update is inside the graph, so it has already been
    applied when ``finite`` is False (the trainer stops the run then; a graph cannot skip a batch).

    Shapes are static: the first call captures for its ``x`` and ``target``; a call with another shape raises
    ``ValueError`` (the trainer runs such a batch, the last partial one, eagerly). The optimizer must be built with
    ``capturable=True`` and, for a learning rate that changes after the capture (a scheduler), a tensor ``lr``
    updated in place (:func:`keep_tensor_lr`). ``warmup`` iterations on the first batch precede the capture, as
    CUDA graphs require, and are undone (parameters and optimizer state restored in place).
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer,
                 loss_fn: Callable[[object, torch.Tensor], torch.Tensor], *, params=None, grad_clip=None,
                 output_of: Optional[Callable[[object], torch.Tensor]] = None, all_finite=None,
                 warmup: int = 3, graphs=None):
        self.graphs = graphs if graphs is not None else _CUDAGraphs()
        self.graphs.check(optimizer)
        self.model, self.optimizer, self.loss_fn, self.output_of = model, optimizer, loss_fn, output_of
        self.params = list(params if params is not None else
                           [p for g in optimizer.param_groups for p in g["params"] if p.requires_grad])
        self.grad_clip, self.warmup = grad_clip, check_positive_int("warmup", warmup)
        self.all_finite = all_finite or (lambda ts: torch.stack([torch.isfinite(t).all() for t in ts]).all())
        self.static = None

    def accepts(self, x: torch.Tensor, target: torch.Tensor) -> bool:
        """Whether ``(x, target)`` can be replayed: the first batch (captured then) or one of the captured shape,
        dtype and device."""
        if self.static is None:
            return True
        return all(t.shape == s.shape and t.dtype == s.dtype and t.device == s.device
                   for t, s in ((x, self.static["x"]), (target, self.static["target"])))

    def _body(self) -> None:
        s = self.static
        self.optimizer.zero_grad(set_to_none=True)
        out = self.model(s["x"])
        loss = self.loss_fn(out, s["target"])
        loss.backward()
        finite = self.all_finite([loss.detach()] + [p.grad for p in self.params if p.grad is not None])
        if self.grad_clip:
            nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        self.optimizer.step()
        output = self.output_of(out).detach() if self.output_of is not None else loss.detach()
        for name, value in (("loss", loss.detach()), ("output", output), ("finite", finite)):
            if name in s:
                s[name].copy_(value)
            else:
                s[name] = value.clone()

    def _capture(self, x, target) -> None:
        self.static = {"x": x.clone(), "target": target.clone()}
        snapshot = _snapshot(self.optimizer)
        self.graphs.warm_up(self._body, self.warmup)   # allocates the outputs' static buffers too
        _restore(self.optimizer, snapshot)
        self.graphs.capture(self._body)

    def __call__(self, x: torch.Tensor, target: torch.Tensor):
        if self.static is None:
            self._capture(x, target)
        else:
            if not self.accepts(x, target):
                name, given = ("x", x) if (x.shape, x.dtype, x.device) != (
                    self.static["x"].shape, self.static["x"].dtype, self.static["x"].device) else ("target", target)
                static = self.static[name]
                raise ValueError(f"mode='cuda_graph' has static shapes: `{name}` must be "
                                 f"{tuple(static.shape)} {static.dtype} on {static.device} as when captured, "
                                 f"got {tuple(given.shape)} {given.dtype} on {given.device}; build another "
                                 f"step for this shape.")
            self.static["x"].copy_(x)
            self.static["target"].copy_(target)
        self.graphs.replay()
        s = self.static
        return s["loss"].clone(), s["output"].clone(), s["finite"].clone()


def keep_tensor_lr(optimizer: torch.optim.Optimizer, lr_tensors) -> None:
    """After a scheduler step, put each group's learning rate back into its captured tensor (in place): a graph
    reads the tensor it was captured with, and a scheduler may have replaced it by a float."""
    for group, tensor in zip(optimizer.param_groups, lr_tensors):
        value = group["lr"]
        if value is not tensor:
            tensor.fill_(float(value))
            group["lr"] = tensor


def _cuda_graph_step(model, optimizer, loss_fn, warmup: int):
    if not torch.cuda.is_available():
        raise RuntimeError("mode='cuda_graph' needs a CUDA device; use mode='eager' or 'compile' on CPU.")
    captured = CapturedTrainStep(model, optimizer, loss_fn, warmup=warmup)

    def step(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return captured(x, target)[0]

    return step
