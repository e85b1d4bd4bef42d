r"""Compiled CPU kernels: the time loop leaves Python (and a stepped neuron's step is one call).

The torch fused path (:mod:`._autograd`) runs one Python iteration, a dozen ATen calls and their dispatcher
overhead per time step, forward and backward. For the paper's S-MNIST network (1-256-10, T = 784) that is 5-7x
off the hardware floor (the layer's matmuls), and ECG-QTDB (4-36-6, T = 1300, batch 16), whose per-step work is
a few hundred flops, is pure per-step overhead. Here the whole sequence is **one C++ call forward and one
backward** (``csrc/brf_cpu.cpp``), with the time loop inside:

* :class:`CPUCellSequence` (feed-forward layer, currents known for all steps),
* :class:`CPURecurrentCellSequence` (the paper's layer :math:`I_t = W[x_t; z_{t-1}]`, or :math:`W x_t`),
* :class:`CPUALIFSequence` (the same layer with ALIF neurons, :func:`brf_plugins.functional.alif_step`),
* :class:`CPULISequence` (the LI readout scan :math:`o_t = \alpha o_{t-1} + (1-\alpha) c_t`),

with exactly the ``apply`` contracts of the torch Functions (ALIF's is documented on its class), and

* :class:`CPUCellStep` (one BRF/RF/BHRF step, for user code that calls a neuron once per time step, as
  ``spk, mem = brf(cur, mem)``): one call forward and one backward, taking the raw ``omega`` and ``b_offset``.
  The fused :class:`CellStep` is one autograd node too, but its forward is a dozen ATen calls, its backward
  two dozen, and the per-neuron terms (:func:`._torch_cells.neuron_params`) eight more autograd operations each
  way; at a stepped layer's sizes (batch 16, 256 neurons) each costs more in dispatch than in arithmetic, so the
  step's own work is a small part of it. The compiled step computes the terms inside the call (the square root
  of :math:`p(\omega)` through ATen's sqrt kernel, which on some CPUs is not the correctly rounded
  ``std::sqrt``) and chains their gradients by hand, so its values are bitwise the fused step's. Measured at
  batch 16, 256 BRF neurons, one thread (``autograd.Function.apply`` included): forward 23 us, forward and
  backward 115 us, against 151 / 511 us for the fused step with its terms and 113 / 466 us for the sequence
  kernel at T = 1 (its whole-sequence buffers and the terms in torch).

Why C++ through ``torch.utils.cpp_extension`` (and not TorchScript, ``torch.compile`` or Triton): the cost to
remove is the per-step interpreter and dispatcher overhead, and the loop is inherently sequential (step t needs
step t-1's spikes), so it has to run in a compiled language that can still call ATen/BLAS for the per-step
matmul with the torch path's exact call (``at::mm_out`` on the same ``(B, m+h) x (m+h, h)`` operands, so float32
results are bitwise the torch path's). TorchScript keeps an interpreter per op; ``torch.compile`` unrolls the
784-step loop (minutes of compilation) and reorders float math; Triton on CPU is an interpreter. A JIT-built
extension needs only a C++ compiler and ninja, builds once (about a minute) and is cached under
``TORCH_EXTENSIONS_DIR`` (default ``~/.cache/torch_extensions``), keyed by a hash of the source, flags, torch
version and CPU, so a changed source or another machine rebuilds. The source is compiled from a copy inside that
build folder (:func:`_staged_source`): ninja rebuilds when a source's path changes, so compiling the package's own
file would rebuild (a minute) every time another checkout or installed copy of the same version loads it.

Exactness: the elementwise updates mirror :func:`._torch_cells.cell_forward` / :func:`cell_backward` (and
``alif_step``) operation for operation and in the same order, compiled with ``-O3 -ffp-contract=off`` (no
contraction of ``a*b+c`` into FMA, no ``-ffast-math``; ``-march=native`` vectorises the loops, which does not
change IEEE results). So spikes and states are **bitwise** the torch path's (and the core's) in float32 and
float64. Gradients equal it up to float summation order (the surrogate's exp comes from ATen's vectorised exp on
blocks of steps, the weight gradient from one matmul). ``smooth`` spike functions (:class:`SmoothSpike`, for
gradient checks) use ``std::erf``, which is not bitwise torch's ``erf``.

Design:

* Forward (one C++ call): for each step, ``at::mm_out`` into a preallocated current buffer (``cat`` is a write of
  the spikes into the next step's input row), then the cell update over the batch rows (``at::parallel_for``
  over rows when ``torch.get_num_threads() > 1``; the feed-forward and LI scans parallelise over rows outside the
  time loop, since rows are independent).
* Saved for backward, per step and batch row (when grad is enabled and an input requires it): the states
  ``u, v[, q]`` (``2h`` or ``3h`` values; ALIF ``u, a``), the spikes (``h``: the output itself) and, only for RF
  soft/hard reset and ALIF, the current (``h``). Not saved: the step inputs ``[x_t; z_{t-1}]`` (the weight
  gradient reads ``x`` and the spikes directly), the spike argument and the surrogate (rebuilt exactly from the
  saved states in the backward, same operations). So BRF keeps ``4h`` values per step and row including its
  output (the torch path ``m + 6h``): S-MNIST at batch 256 in float32, 0.8 GiB for T = 784. Under
  ``torch.no_grad()`` only two ping-pong state slots are kept. The whole-sequence buffers ask for transparent
  huge pages (``madvise``): fresh multi-MB buffers otherwise pay a page fault per 4 KiB on every call.
* Backward (one C++ call, subnormals flushed to zero): the reverse-time loop in blocks of steps; per block the
  spike arguments are rebuilt and the surrogate derivative evaluated with ATen's vectorised ``exp`` (one call per
  block, not per step); per step the hand-derived cell VJP, then ``g_z = g_I W_rec`` (``at::mm_out``,
  ``(B, h) x (h, h)``). Afterwards the weight gradient is formed from all steps at once, as
  :class:`RecurrentCellSequence` does: its input columns as one ``(m, T B) x (T B, h)`` matmul (transposed), its
  recurrent columns as one ``(h, T B) x (T B, h)`` matmul of the current gradients and the previous spikes; the
  input gradient (if needed) is one ``(T B, h) x (h, m)`` matmul.
* All matmuls go through ATen/BLAS, also ECG's tiny ``16 x 40 x 36`` ones (their per-call cost is a few
  microseconds once the loop is in C++), so float32 currents stay bitwise the torch path's; nothing is
  hand-rolled.

``status()`` builds on first call and returns ``(usable, reason)``; importing this module never raises and never
builds. Set ``BRF_CPU_KERNELS=0`` to turn the compiled path off (``status()`` then says so), ``BRF_CPU_VERBOSE=1``
to see the build, ``BRF_CPU_PROFILE=1`` to print the time of the forward's and backward's phases.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import threading
import warnings
from pathlib import Path
from typing import Optional, Tuple

import torch

from ._spec import CellSpec

__all__ = ["status", "load", "unsupported", "CPUCellStep", "CPUCellSequence", "CPURecurrentCellSequence", "CPUALIFSequence",
           "CPULISequence", "run_sequence", "recurrent_sequence", "alif_sequence", "alif_layer", "li_sequence",
           "supported_dtypes", "variant_code", "BUILD_FLAGS"]

_SOURCE = Path(__file__).resolve().parent / "csrc" / "brf_cpu.cpp"
BUILD_FLAGS = ["-O3", "-ffp-contract=off", "-fno-fast-math", "-march=native", "-std=c++17"]
"""Compiler flags of the extension: no FMA contraction and no fast-math keep float results IEEE-exact."""

_lock = threading.Lock()
_module = None
_reason: Optional[str] = None


def supported_dtypes() -> Tuple[torch.dtype, ...]:
    return (torch.float32, torch.float64)


def _cpu_tag() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
        flags = next((line for line in text.splitlines() if line.startswith("flags")), "")
    except OSError:
        flags = platform.processor()
    return flags


def _name() -> str:
    digest = hashlib.sha1()
    digest.update(_SOURCE.read_bytes())
    digest.update(" ".join(BUILD_FLAGS).encode())
    digest.update(torch.__version__.encode())
    digest.update(_cpu_tag().encode())
    return "brf_cpu_" + digest.hexdigest()[:12]


def _staged_source(name: str) -> Path:
    """The source as ``<build folder>/<name>.cpp``, written there once (atomically: concurrent first loads may
    race): a path that depends on the content only, unlike the package's own file."""
    from torch.utils import cpp_extension
    staged = Path(cpp_extension._get_build_directory(name, verbose=False)) / f"{name}.cpp"
    source = _SOURCE.read_bytes()
    if not staged.exists() or staged.read_bytes() != source:
        partial = staged.with_name(f"{staged.name}.{os.getpid()}.tmp")
        partial.write_bytes(source)
        os.replace(partial, staged)
    return staged


def load():
    """The compiled extension module (built on first use), or ``None`` if it cannot be built (see :func:`status`)."""
    global _module, _reason
    if _module is not None or _reason is not None:
        return _module
    with _lock:
        if _module is not None or _reason is not None:
            return _module
        if os.environ.get("BRF_CPU_KERNELS", "1").strip().lower() in ("0", "false", "no", "off"):
            _reason = "the compiled CPU kernels are turned off (BRF_CPU_KERNELS=0)"
            return None
        try:
            if not _SOURCE.exists():
                raise FileNotFoundError(f"{_SOURCE} is missing (package data not installed)")
            from torch.utils import cpp_extension
            cpp_extension.verify_ninja_availability()
            name = _name()
            _module = cpp_extension.load(name=name, sources=[str(_staged_source(name))], extra_cflags=BUILD_FLAGS,
                                         verbose=os.environ.get("BRF_CPU_VERBOSE", "0") == "1")
        except Exception as exc:  # noqa: BLE001 - any build failure means "not usable", with its reason
            message = str(exc).strip().splitlines()
            _reason = f"building the C++ CPU kernels failed: {type(exc).__name__}: " + \
                      (message[-1] if message else "") + " (needs a C++ compiler and ninja: pip install ninja)"
            _module = None
            # once per process: the fused torch path runs instead (correct, slower); plan() reasons repeat it
            warnings.warn(f"brf_plugins: {_reason}; the CPU runs the fused torch path instead (slower, same "
                          f"results).", RuntimeWarning, stacklevel=3)
    return _module


def status() -> Tuple[bool, str]:
    """``(usable, reason)``: whether the compiled CPU kernels are available (builds them on the first call)."""
    module = load()
    if module is None:
        return False, _reason or "not built"
    return True, "compiled"


def _ext():
    module = load()
    if module is None:
        raise RuntimeError(f"brf_plugins compiled CPU kernels unavailable: {_reason}")
    return module


def unsupported(cfg, scope: str, tensors=()) -> Optional[str]:
    """Why the compiled kernels cannot run ``cfg``'s neurons (a :class:`brf_plugins.neurons.NeuronConfig`) for
    ``scope`` (``"step"``: :class:`CPUCellStep`; ``"sequence"``: :class:`CPUCellSequence`; ``"recurrent"``:
    :class:`CPURecurrentCellSequence` or, for ALIF, :class:`CPUALIFSequence`) over ``tensors`` (``None`` entries
    skipped); ``None`` if they can.

    Checks: the extension builds; a known scope; ALIF only as the recurrent layer; the threshold and the other
    constants are numbers (not tensors); the spike function is the package's double/multi Gaussian (or
    :class:`SmoothSpike`); the tensors are CPU float32/float64 tensors of one dtype.
    """
    usable, why = status()
    if not usable:
        return why
    if scope not in ("step", "sequence", "recurrent"):
        return f"the compiled kernels have no scope {scope!r} (only 'step', 'sequence' or 'recurrent')"
    kind = getattr(cfg, "kind", None)
    if kind == "alif" and scope != "recurrent":
        return "the compiled kernels have ALIF only as the recurrent layer (CPUALIFSequence)"
    if kind not in ("brf", "rf", "bhrf", "alif"):
        return f"the compiled kernels have no {kind!r} neuron"
    for name in ("dt", "theta", "gamma", "input_gain", "beta"):
        value = getattr(cfg, name, 1.0)
        if isinstance(value, torch.Tensor) or isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"`{name}` is not a plain number (a tensor, e.g. learnable); the compiled kernels take a constant"
    from ._spec import cell_spec, surrogate_of
    if surrogate_of(getattr(cfg, "spike_fn", None)) is None:
        return "`spike_fn` is not one the compiled kernels implement (brf_plugins.surrogate's double or multi " \
               "Gaussian, or SmoothSpike)"
    if kind != "alif":
        option = {"rf": getattr(cfg, "reset", "none"), "bhrf": getattr(cfg, "variant", "code")}.get(kind, "")
        ablation = dict(divergence_boundary=cfg.divergence_boundary, refractory=cfg.refractory,
                        smooth_reset=cfg.smooth_reset) if kind == "brf" else {}
        spec = cell_spec(kind, cfg.dt, cfg.theta, cfg.gamma, cfg.spike_fn, option=option, **ablation)
        if spec is None:
            return "the compiled kernels cannot reproduce this neuron configuration"
        try:
            variant_code(spec)
        except ValueError as err:
            return str(err)
    first = None
    for t in tensors:
        if t is None:
            continue
        if not isinstance(t, torch.Tensor):
            continue
        if t.device.type != "cpu":
            return "the compiled kernels run on CPU tensors"
        if t.dtype not in supported_dtypes():
            return f"dtype {t.dtype} is not supported by the compiled kernels (float32 or float64)"
        if first is None:
            first = t
        elif t.dtype != first.dtype:
            return "the tensors mix dtypes (cast them to one dtype)"
    return None


# ------------------------------------------------------------------------------------------------ helpers

_KINDS = {("rf", "none"): 4, ("rf", "soft"): 5, ("rf", "hard"): 6, ("bhrf", "code"): 7, ("bhrf", "paper"): 8,
          ("bhrf", "explicit"): 9}
ALIF_KIND = 10


def variant_code(spec: CellSpec) -> int:
    """The C++ kernel's variant number for ``spec`` (``ValueError`` for a variant it does not implement)."""
    if spec.kind == "brf":
        return {(True, True): 0, (True, False): 1, (False, True): 2, (False, False): 3}[
            (bool(spec.refractory), bool(spec.smooth_reset))]
    try:
        return _KINDS[(spec.kind, spec.option)]
    except KeyError:
        raise ValueError(f"the compiled CPU kernels have no {spec.kind!r} variant {spec.option!r}") from None


def _consts(spec: CellSpec, beta: float = 0.0):
    from ..surrogate import MultiGaussian
    c = list(spec.constants())
    multi = isinstance(spec.surrogate, MultiGaussian)
    return c + [1.0 if multi else 0.0, float(getattr(spec, "input_gain", 1.0)), float(beta)]


def _per_neuron(p: torch.Tensor, batch: int, h: int) -> torch.Tensor:
    """``p`` as ``(h,)`` (one value per neuron) or, if it varies over the batch, ``(B, h)``; contiguous."""
    if p.dim() <= 1 or all(s == 1 for s in p.shape[:-1]):
        flat = p.reshape(-1)
        return (flat.expand(h) if flat.numel() == 1 else flat).contiguous()
    return p.expand(batch, h).contiguous()


def _sum_to(grad, like):
    if grad is None or like is None:
        return None
    return grad if grad.shape == like.shape else grad.sum_to_size(like.shape)


def _empty(like):
    return like.new_empty(0)


def _grad_or_zeros(g, like):
    return torch.zeros_like(like) if g is None else g.contiguous()


_grad_mode = threading.local()


class _GradModeAware:
    """Records the caller's grad mode before ``Function.apply`` (inside ``forward`` it is always off and
    ``ctx.needs_input_grad`` ignores ``torch.no_grad()``), so a forward under ``no_grad`` keeps no trace."""

    @classmethod
    def apply(cls, *args):
        _grad_mode.enabled = torch.is_grad_enabled()
        return super().apply(*args)


def _needs_save(ctx, tensors) -> bool:
    if not getattr(_grad_mode, "enabled", True):
        return False
    needs = getattr(ctx, "needs_input_grad", None)
    if needs is not None:
        return any(needs)
    return any(isinstance(t, torch.Tensor) and t.requires_grad for t in tensors)


# ---------------------------------------------------------------------------------------------- Functions


class CPUCellSequence(_GradModeAware, torch.autograd.Function):
    """``CPUCellSequence.apply(spec, currents, u, v, q, pa, pb) -> (z, u_T, v_T[, q_T])``: :class:`CellSequence`
    compiled (same contract: ``currents`` ``(T, B, h)``, ``q`` ``None`` for RF, ``pa, pb`` from
    :func:`._torch_cells.neuron_params`)."""

    @staticmethod
    def forward(ctx, spec: CellSpec, currents, u, v, q, pa, pb):
        ctx.set_materialize_grads(False)
        ext = _ext()
        kind = variant_code(spec)
        steps, batch, h = currents.shape
        currents = currents.contiguous()
        pa_c, pb_c = _per_neuron(pa, batch, h), _per_neuron(pb, batch, h)
        consts = _consts(spec)
        save = _needs_save(ctx, (currents, u, v, q, pa, pb))
        zeros = currents.new_zeros(())
        z_all, U, V, Q, _ = ext.sequence_forward(kind, bool(spec.smooth), consts, currents, _empty(currents),
                                                    _empty(currents), False, zeros, u, v,
                                                    zeros if q is None else q, pa_c, pb_c, save)
        last = steps if save else steps % 2
        if save:
            ctx.save_for_backward(currents, pa, pb, z_all, U, V, Q, pa_c, pb_c)
            ctx.meta = (kind, consts, u, v, q)
        out = (z_all, U[last].clone(), V[last].clone())
        return out + (Q[last].clone(),) if spec.has_q else out

    @staticmethod
    def backward(ctx, g_z_all, g_u, g_v, g_q=None):
        currents, pa, pb, z_all, U, V, Q, pa_c, pb_c = ctx.saved_tensors
        kind, consts, u0, v0, q0 = ctx.meta
        like = U[0]
        res = _ext().sequence_backward(
            kind, consts, z_all, U, V, Q, currents, _empty(like), _empty(like), False,
            like.new_zeros(()), pa_c, pb_c, _empty(like) if g_z_all is None else g_z_all.contiguous(),
            _empty(like), _grad_or_zeros(g_u, like), _grad_or_zeros(g_v, like),
            _grad_or_zeros(g_q, like) if q0 is not None else _empty(like), False, False)
        g_cur, _, _, g_u0, g_v0, g_q0, acc_pa, acc_pb = res
        return (None, _sum_to(g_cur, currents), _sum_to(g_u0, u0), _sum_to(g_v0, v0),
                _sum_to(g_q0, q0) if q0 is not None else None, _sum_to(acc_pa, pa), _sum_to(acc_pb, pb))


@functools.lru_cache(maxsize=256)
def _step_constants(spec: CellSpec) -> tuple:
    """The step kernels' leading arguments for ``spec``: ``(kind, smooth, consts, boundary, max_omega, dt/2)``
    (computed once per spec: ``spec.constants()`` does a dozen float operations)."""
    from .. import functional as F
    return (variant_code(spec), bool(spec.smooth), _consts(spec), bool(spec.divergence_boundary),
            F.max_omega(spec.dt), spec.dt / 2)


def _neuron_vector(p: torch.Tensor, h: int) -> torch.Tensor:
    """A per-neuron parameter (``(h,)``, or one value for all) as a contiguous ``(h,)`` tensor."""
    if p.dim() == 1 and p.shape[0] == h and p.is_contiguous():
        return p
    return p.reshape(-1).expand(h).contiguous() if p.numel() == 1 else p.reshape(h).contiguous()


class CPUCellStep(_GradModeAware, torch.autograd.Function):
    r"""``CPUCellStep.apply(spec, current, u, v, q, omega, b_offset) -> (z, u', v'[, q'])``: one BRF/RF/BHRF step
    as one compiled call forward and one backward (``q`` ``None`` for RF).

    Unlike :class:`CellStep` it takes the **raw** per-neuron ``omega`` and ``b_offset`` (shape ``(h,)`` or one
    value): the per-neuron terms of :func:`._torch_cells.neuron_params` (BRF :math:`\omega = \min(|\omega_{raw}|,
    0.999/\delta)`, :math:`P = p(\omega) - |b'|`; RF :math:`|\omega|, -|b'|`; BHRF :math:`\omega^2,
    \delta\omega^2/2 \pm |b'|`) are computed inside the call with torch's operations in torch's order, so the
    step's values are bitwise :class:`CellStep`'s (and the core's); the backward returns the raw parameters'
    gradients by the chain rule through them, analytically (BRF:
    :math:`g_\omega = \mathrm{sgn}(\omega)[|\omega| \le 0.999/\delta]\,(A_a - A_b\,\delta\omega/\sqrt{1 -
    (\delta\omega)^2})`, :math:`g_{b'} = -\mathrm{sgn}(b') A_b`, with :math:`A_a, A_b` the cell's gradients of
    the two terms summed over the batch). Why: computing the terms in torch costs 8 small autograd operations
    per step, forward and backward, more than the step itself.

    ``current``, ``u``, ``v``, ``q`` share one shape ``(..., h)`` (:func:`brf_plugins.kernels.plan` checks it).
    Saved for the backward: the step's inputs and its outputs ``z``, ``u'`` (the spike argument and the
    surrogate are rebuilt from them, as the sequence kernels do); nothing under ``torch.no_grad()``.
    """

    @staticmethod
    def forward(ctx, spec: CellSpec, current, u, v, q, omega, b_offset):
        ctx.set_materialize_grads(False)
        h = current.shape[-1]
        w, b = _neuron_vector(omega, h), _neuron_vector(b_offset, h)
        args = _step_constants(spec)
        z, u_new, v_new, q_new = _ext().step_forward(*args, current, u, v, current if q is None else q, w, b)
        if _needs_save(ctx, (current, u, v, q, omega, b_offset)):
            ctx.save_for_backward(current, u, v, q, u_new, z, w, b)
            ctx.spec, ctx.shapes = spec, (omega.shape, b_offset.shape)
        return (z, u_new, v_new, q_new) if q is not None else (z, u_new, v_new)

    @staticmethod
    def backward(ctx, g_z, g_u, g_v, g_q=None):
        current, u, v, q, u_new, z, w, b = ctx.saved_tensors
        kind, _, consts, boundary, max_w, half_dt = _step_constants(ctx.spec)
        needs = ctx.needs_input_grad
        empty = _empty(u)
        res = _ext().step_backward(kind, consts, boundary, max_w, half_dt, current, u, v,
                                   empty if q is None else q, u_new, z, w, b,
                                   empty if g_z is None else g_z, empty if g_u is None else g_u,
                                   empty if g_v is None else g_v, empty if g_q is None else g_q,
                                   bool(needs[5] or needs[6]))
        g_cur, g_u0, g_v0, g_q0, g_w, g_b = res
        omega_shape, b_shape = ctx.shapes
        g_w = (g_w if g_w.shape == omega_shape else g_w.sum_to_size(omega_shape)) if needs[5] else None
        g_b = (g_b if g_b.shape == b_shape else g_b.sum_to_size(b_shape)) if needs[6] else None
        return (None, g_cur if needs[1] else None, g_u0 if needs[2] else None, g_v0 if needs[3] else None,
                g_q0 if q is not None and needs[4] else None, g_w, g_b)


def _layer_forward(ctx, kind, smooth, consts, recurrent, x, weight, z, u, v, q, pa, pb, save):
    steps, batch, _ = x.shape
    h = weight.shape[0]
    x = x.contiguous()
    weight_c = weight.contiguous()
    pa_c, pb_c = _per_neuron(pa, batch, h), _per_neuron(pb, batch, h)
    zeros = x.new_zeros(())
    z_all, U, V, Q, currents = _ext().sequence_forward(
        kind, smooth, consts, _empty(x), x, weight_c, bool(recurrent), z, u, v, zeros if q is None else q,
        pa_c, pb_c, save)
    last = steps if save else steps % 2
    if save:
        ctx.save_for_backward(x, weight_c, z_all, U, V, Q, currents, pa_c, pb_c)
        ctx.meta = (kind, consts, bool(recurrent), z, u, v, q, pa, pb)
    return z_all, z_all[-1].clone(), U[last].clone(), V[last].clone(), (Q[last].clone() if Q.numel() else None)


def _layer_backward(ctx, g_z_all, g_z_last, g_u, g_v, g_q):
    x, weight, z_all, U, V, Q, currents, pa_c, pb_c = ctx.saved_tensors
    kind, consts, recurrent, z0, u0, v0, q0, pa, pb = ctx.meta
    like = U[0]
    need_x, need_w = ctx.needs_input_grad[2], ctx.needs_input_grad[3]
    res = _ext().sequence_backward(
        kind, consts, z_all, U, V, Q, currents, x, weight, recurrent, z0, pa_c, pb_c,
        _empty(like) if g_z_all is None else g_z_all.contiguous(),
        _empty(like) if g_z_last is None else g_z_last.contiguous(), _grad_or_zeros(g_u, like),
        _grad_or_zeros(g_v, like), _grad_or_zeros(g_q, like) if Q.numel() else _empty(like), bool(need_x),
        bool(need_w))
    g_x, g_w, g_z0, g_u0, g_v0, g_q0, acc_pa, acc_pb = res
    none = lambda t: None if t.numel() == 0 else t  # noqa: E731
    return (none(g_x) if need_x else None, none(g_w) if need_w else None, _sum_to(none(g_z0), z0),
            _sum_to(g_u0, u0), _sum_to(g_v0, v0), _sum_to(none(g_q0), q0), _sum_to(acc_pa, pa),
            _sum_to(acc_pb, pb))


class CPURecurrentCellSequence(_GradModeAware, torch.autograd.Function):
    r""":class:`RecurrentCellSequence` compiled, same contract:
    ``apply(spec, recurrent, x, weight, z, u, v, q, pa, pb) -> (z_all, z_T, u_T, v_T[, q_T])``.

    ``x`` ``(T, B, m)``, ``weight`` ``(h, m + h)`` (``recurrent``) or ``(h, m)``, initial state ``z, u, v, q``
    (``q`` ``None`` for RF). Forward values are bitwise :class:`RecurrentCellSequence`'s.
    """

    @staticmethod
    def forward(ctx, spec: CellSpec, recurrent: bool, x, weight, z, u, v, q, pa, pb):
        ctx.set_materialize_grads(False)
        save = _needs_save(ctx, (x, weight, z, u, v, q, pa, pb))
        z_all, z_last, u_t, v_t, q_t = _layer_forward(ctx, variant_code(spec), bool(spec.smooth), _consts(spec),
                                                      recurrent, x, weight, z, u, v, q, pa, pb, save)
        return (z_all, z_last, u_t, v_t, q_t) if spec.has_q else (z_all, z_last, u_t, v_t)

    @staticmethod
    def backward(ctx, g_z_all, g_z_last, g_u, g_v, g_q=None):
        return (None, None) + _layer_backward(ctx, g_z_all, g_z_last, g_u, g_v, g_q)


class CPUALIFSequence(_GradModeAware, torch.autograd.Function):
    r"""The recurrent layer with ALIF neurons over a sequence, as one compiled node.

    ``CPUALIFSequence.apply(spike_fn, recurrent, x, weight, z, u, a, alpha, rho, theta, beta[, input_gain])
    -> (z_all, z_T, u_T, a_T)``

    * ``spike_fn``: ``None`` (default double Gaussian), a :class:`~brf_plugins.surrogate.DoubleGaussian` /
      :class:`~brf_plugins.surrogate.MultiGaussian` or a :class:`SmoothSpike` (gradient checks);
    * ``x`` ``(T, B, m)``, ``weight`` ``(h, m + h)`` (``recurrent``: :math:`I_t = W[x_t; z_{t-1}]`) or ``(h, m)``;
    * ``z, u, a``: the initial state (``ALIFStep`` order: previous spikes, membrane, adaptation);
    * ``alpha = exp(-1/|tau_mem|)``, ``rho = exp(-1/|tau_adp|)`` (tensors, per neuron; differentiable: their
      gradients are returned, autograd takes them on to ``tau``), ``theta`` (base threshold) and ``beta``
      (adaptation strength) Python floats, ``input_gain`` a float factor on the current (default 1).

    Per step (:func:`brf_plugins.functional.alif_step`, same operations and order, so bitwise equal values):
    :math:`a_t = \rho a_{t-1} + (1-\rho) z_{t-1}`, :math:`\vartheta_t = \vartheta + \beta a_t`,
    :math:`u'_t = \alpha u_{t-1} + (1-\alpha) I_t`, :math:`z_t = H(u'_t - \vartheta_t)`,
    :math:`u_t = u'_t - z_t\vartheta_t`.

    Backward (hand-derived): with :math:`s_t` the surrogate at :math:`u'_t - \vartheta_t` and incoming
    :math:`g_z` (loss + recurrence + the next step's adaptation), :math:`g_u`, :math:`g_a`:
    :math:`g_x = (g_z - g_u\vartheta_t)s_t`, :math:`g_{u'} = g_u + g_x`,
    :math:`g_\vartheta = -g_u z_t - g_x`, :math:`g_{a_t} = g_a + \beta g_\vartheta`; then
    :math:`g_{u_{t-1}} = \alpha g_{u'}`, :math:`g_{I_t} = (1-\alpha) g_{u'}`,
    :math:`g_\alpha \mathrel{+}= g_{u'}(u_{t-1} - I_t)`, :math:`g_{a_{t-1}} = \rho g_{a_t}`,
    :math:`g_{z_{t-1}} \mathrel{+}= (1-\rho) g_{a_t}`, :math:`g_\rho \mathrel{+}= g_{a_t}(a_{t-1} - z_{t-1})`.
    """

    @staticmethod
    def forward(ctx, spike_fn, recurrent: bool, x, weight, z, u, a, alpha, rho, theta: float, beta: float,
                input_gain: float = 1.0):
        ctx.set_materialize_grads(False)
        from ._spec import surrogate_of
        found = surrogate_of(spike_fn)
        if found is None:
            raise ValueError(f"CPUALIFSequence: spike_fn {spike_fn!r} is not a double/multi Gaussian or SmoothSpike")
        surrogate, smooth = found
        spec = CellSpec("alif", 1.0, float(theta), 0.0, surrogate=surrogate, smooth=smooth)
        consts = list(spec.constants())
        from ..surrogate import MultiGaussian
        consts += [1.0 if isinstance(surrogate, MultiGaussian) else 0.0, float(input_gain), float(beta)]
        save = _needs_save(ctx, (x, weight, z, u, a, alpha, rho))
        z_all, z_last, u_t, a_t, _ = _layer_forward(ctx, ALIF_KIND, bool(smooth), consts, recurrent, x, weight,
                                                    z, u, a, None, alpha, rho, save)
        return z_all, z_last, u_t, a_t

    @staticmethod
    def backward(ctx, g_z_all, g_z_last, g_u, g_a):
        g = _layer_backward(ctx, g_z_all, g_z_last, g_u, g_a, None)
        g_x, g_w, g_z0, g_u0, g_a0, _, g_alpha, g_rho = g
        return (None, None, g_x, g_w, g_z0, g_u0, g_a0, g_alpha, g_rho, None, None, None)


class CPULISequence(_GradModeAware, torch.autograd.Function):
    r""":class:`LISequence` compiled: ``apply(currents, o, alpha, beta) -> o_all``,
    :math:`o_t = o_{t-1}\alpha + c_t\beta` (``o`` the initial potential or ``None`` for zeros; ``beta`` must be
    ``1 - alpha``, whose gradient goes through ``alpha`` as in :class:`LISequence`)."""

    @staticmethod
    def forward(ctx, currents, o, alpha, beta):
        ctx.set_materialize_grads(False)
        ext = _ext()
        steps, batch, width = currents.shape
        currents = currents.contiguous()
        alpha_c, beta_c = _per_neuron(alpha, batch, width), _per_neuron(beta, batch, width)
        o0 = currents.new_zeros(()) if o is None else o
        out = ext.li_forward(currents, o0, alpha_c, beta_c)
        if _needs_save(ctx, (currents, o, alpha, beta)):
            ctx.save_for_backward(currents, alpha, beta, out, alpha_c, beta_c)
            ctx.o0 = o
        return out

    @staticmethod
    def backward(ctx, g_out):
        if g_out is None:
            return None, None, None, None
        currents, alpha, beta, out, alpha_c, beta_c = ctx.saved_tensors
        o = ctx.o0
        o0 = currents.new_zeros(()) if o is None else o
        g_c, g_o, acc_a = _ext().li_backward(g_out.contiguous(), currents, out, o0, alpha_c, beta_c)
        # beta is 1 - alpha: the whole derivative goes through alpha (as LISequence's backward)
        return _sum_to(g_c, currents), None if o is None else _sum_to(g_o, o), _sum_to(acc_a, alpha), None


# ----------------------------------------------------------------------------- convenience (kernels API)


def run_sequence(spec: CellSpec, currents, state: tuple, omega, b_offset):
    """:func:`brf_plugins.kernels.run_sequence` on the compiled path: ``(z, state_T)``."""
    from ._torch_cells import neuron_params
    u, v, q = state if spec.has_q else (state[0], state[1], None)
    pa, pb = neuron_params(spec, omega, b_offset)
    out = CPUCellSequence.apply(spec, currents, u, v, q, pa, pb)
    return out[0], tuple(out[1:])


def recurrent_sequence(spec: CellSpec, x, weight, state: tuple, omega, b_offset, recurrent: bool = True):
    """:func:`brf_plugins.kernels.recurrent_sequence` on the compiled path: ``(z_all, (z, u, v[, q]))``."""
    from ._torch_cells import neuron_params
    z, u, v = state[:3]
    q = state[3] if spec.has_q else None
    pa, pb = neuron_params(spec, omega, b_offset)
    out = CPURecurrentCellSequence.apply(spec, bool(recurrent), x, weight, z, u, v, q, pa, pb)
    return out[0], tuple(out[1:])


def alif_sequence(x, weight, state: tuple, tau_mem, tau_adp, theta: float, beta: float, spike_fn=None,
                  recurrent: bool = True, input_gain: float = 1.0):
    """The ALIF recurrent layer over ``x`` from ``state = (z, u, a)``: ``(z_all, (z, u, a))``; the same values as
    :func:`brf_plugins.functional.alif_step` step by step (``alpha``, ``rho`` computed as it does)."""
    alpha = torch.exp(-1.0 / tau_mem.abs())
    rho = torch.exp(-1.0 / tau_adp.abs())
    z, u, a = state
    out = CPUALIFSequence.apply(spike_fn, bool(recurrent), x, weight, z, u, a, alpha, rho, float(theta),
                                float(beta), float(input_gain))
    return out[0], tuple(out[1:])


def alif_layer(cfg, x, weight, state: tuple, tau_mem, tau_adp, recurrent: bool = True):
    """:func:`alif_sequence` for a :class:`brf_plugins.neurons.NeuronConfig` (its ``theta``, ``beta``,
    ``spike_fn`` and ``input_gain``): ``(z_all, (z, u, a))``."""
    return alif_sequence(x, weight, tuple(state), tau_mem, tau_adp, float(cfg.theta), float(cfg.beta),
                         cfg.spike_fn, recurrent, float(getattr(cfg, "input_gain", 1.0)))


def li_sequence(currents, o, tau_mem):
    """:func:`brf_plugins.kernels.li_sequence` on the compiled path."""
    from .. import functional as F
    alpha = F.li_alpha(tau_mem)
    return CPULISequence.apply(currents, o, alpha, 1.0 - alpha)
