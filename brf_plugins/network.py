r"""The paper's recurrent network as reusable modules (spec sections 1.0, 1.6 and 1.8).

* :class:`RecurrentLayer`: one bias-free ``Linear(m + h -> h)`` on ``concat(x_t, z_{t-1})`` feeding a BRF, RF,
  BHRF or ALIF neuron population.
* :class:`LIReadout`: the leaky-integrator readout :math:`o_t = \alpha o_{t-1} + (1-\alpha) W z_t`.
* :class:`RecurrentSNN`: both, run over a time-first sequence ``(T, B, m)``; the readout uses the *current*
  step's spikes, the recurrence the previous step's.

Attribute names match the authors' checkpoints (``hidden.linear.weight``, ``hidden.omega``, ``hidden.b_offset``,
``hidden.tau_mem``, ``hidden.tau_adp``, ``out.linear.weight``, ``out.tau_mem``), so their state dicts load as they
are (:mod:`brf_plugins.checkpoints`).

Example:
    >>> import torch
    >>> from brf_plugins import RecurrentSNN
    >>> net = RecurrentSNN(4, 36, 6, neuron="brf", omega_init=(3.0, 5.0))
    >>> out = net(torch.rand(1300, 8, 4))           # (T, B, m)
    >>> out.readout.shape, out.spike_count.shape
    (torch.Size([1300, 8, 6]), torch.Size([]))
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional, Tuple

import torch
from torch import nn

from . import functional as F
from ._checks import (check_callable, check_choice, check_dt, check_finite_float, check_finite_tensor, check_input,
                      check_like_module, check_nonempty, check_positive_int, check_state, check_state_tuple,
                      check_unit_interval)
from .init import Init, b_offset_parameter, normal_parameter, omega_parameter, xavier_uniform_

__all__ = ["NEURONS", "STATE_NAMES", "RecurrentLayer", "LIReadout", "RecurrentSNN", "SNNOutput"]

NEURONS = ("brf", "rf", "bhrf", "alif")
STATE_NAMES = {
    "brf": ("z", "u", "v", "q"),
    "rf": ("z", "u", "v"),
    "bhrf": ("z", "u", "v", "q"),
    "alif": ("z", "u", "a"),
}
"""The hidden state of each neuron kind, in the order :meth:`RecurrentLayer.forward` takes and returns it.
``z`` (the previous spikes) comes first: the recurrence and ALIF's adaptation read it."""
STATE_TYPES = {"brf": F.BRFStep, "rf": F.RFStep, "bhrf": F.BHRFStep, "alif": F.ALIFStep}
"""The NamedTuple a layer's state comes in; a state of another type (another neuron kind) is rejected."""


def _replace_spikes(state: tuple, z: torch.Tensor) -> tuple:
    """``state`` with its first entry replaced, keeping its type (a neuron's NamedTuple or a plain tuple)."""
    if hasattr(state, "_fields"):
        return type(state)(z, *state[1:])
    return (z,) + tuple(state[1:])


class SNNOutput(NamedTuple):
    """What a network returns for one batch of sequences.

    readout: ``(T, B, C)`` LI potentials for every step.
    spike_count: total hidden spikes of the batch (a 0-dim tensor), for SOPs.
    hidden_spikes: ``(T, B, h)`` hidden spikes when ``record=True``, else ``None``.
    state: final ``(hidden_state, readout_state)``, to continue a sequence.
    """

    readout: torch.Tensor
    spike_count: torch.Tensor
    hidden_spikes: Optional[torch.Tensor] = None
    state: Optional[tuple] = None


class RecurrentLayer(nn.Module):
    r"""A fully recurrent spiking layer: :math:`I_t = W\,[x_t; z_{t-1}]`, then one neuron step.

    Args:
        input_size: m, features per step.
        hidden_size: h, neurons.
        neuron: ``"brf"`` (default), ``"rf"``, ``"bhrf"`` or ``"alif"``.
        omega_init, b_offset_init: value, ``(low, high)`` uniform range or tensor (resonators).
        tau_mem_init, tau_adp_init: ``(mean, std)`` normal init of the ALIF time constants (in steps).
        dt, theta, gamma: integration step (0.01), threshold (1.0), refractory decay (0.9) of the resonators.
        spike_fn: surrogate spike function (default double Gaussian).
        rf_reset: ``"none"``/``"soft"``/``"hard"`` for ``neuron="rf"``.
        bhrf_variant: ``"code"``/``"paper"``/``"explicit"`` for ``neuron="bhrf"``.
        divergence_boundary, refractory, smooth_reset: BRF ablation switches (all on by default).
        alif_beta: adaptation strength of ``neuron="alif"`` (default 1.8); ``0.0`` turns it into a LIF neuron
            with a fixed threshold and soft reset (the LIF baseline of the trainer's synthetic task).
        learn_omega, learn_b_offset: train the resonator parameters (default True).
        recurrent: feed back the previous spikes (default True; False gives ``Linear(m -> h)``).
        backend: ``"auto"`` (default) runs BRF/RF/BHRF steps as one fused autograd node
            (:mod:`brf_plugins.kernels`; same spikes, gradients equal up to float rounding) where the kernels
            implement the spike function and dtype, and :class:`RecurrentSNN` runs the whole sequence as one node;
            ``"fused"`` insists on it (``ValueError`` if it cannot run); ``"reference"`` is the plain core loop.
            Settable after construction (``layer.backend = "reference"``).
    """

    def __init__(self, input_size: int, hidden_size: int, neuron: str = "brf", *,
                 omega_init: Init = (5.0, 10.0), b_offset_init: Init = (0.0, 1.0),
                 tau_mem_init: Tuple[float, float] = (20.0, 5.0), tau_adp_init: Tuple[float, float] = (200.0, 50.0),
                 dt: float = F.DEFAULT_DT, theta: Optional[float] = None, gamma: float = F.DEFAULT_GAMMA,
                 spike_fn=None, rf_reset: str = "none", bhrf_variant: str = "code",
                 divergence_boundary: bool = True, refractory: bool = True, smooth_reset: bool = True,
                 learn_omega: bool = True, learn_b_offset: bool = True, recurrent: bool = True,
                 alif_beta: float = F.ALIF_BETA, backend: str = "auto",
                 generator: Optional[torch.Generator] = None):
        super().__init__()
        self.input_size = check_positive_int("input_size", input_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.neuron = check_choice("neuron", neuron, NEURONS)
        self.dt = check_dt(dt)
        default_theta = F.ALIF_THETA if neuron == "alif" else F.DEFAULT_THETA
        self.theta = check_finite_float("theta", default_theta if theta is None else theta)
        self.gamma = check_unit_interval("gamma", gamma)
        self.spike_fn = check_callable("spike_fn", spike_fn)
        self.rf_reset = check_choice("rf_reset", rf_reset, F.RF_RESETS)
        self.bhrf_variant = check_choice("bhrf_variant", bhrf_variant, F.BHRF_VARIANTS)
        self.ablation = dict(divergence_boundary=bool(divergence_boundary), refractory=bool(refractory),
                             smooth_reset=bool(smooth_reset))
        self.recurrent = bool(recurrent)
        self.alif_beta = check_finite_float("alif_beta", alif_beta, nonnegative=True)
        self.backend = check_choice("backend", backend, ("auto", "reference", "fused"))

        fan_in = self.input_size + (self.hidden_size if self.recurrent else 0)
        self.linear = nn.Linear(fan_in, self.hidden_size, bias=False)
        xavier_uniform_(self.linear.weight, generator=generator)

        if neuron == "alif":
            self.tau_mem = nn.Parameter(normal_parameter("tau_mem_init", hidden_size, *tau_mem_init,
                                                         generator=generator))
            self.tau_adp = nn.Parameter(normal_parameter("tau_adp_init", hidden_size, *tau_adp_init,
                                                         generator=generator))
        else:
            omega = omega_parameter(hidden_size, omega_init, self.dt, name="omega_init", generator=generator)
            b_offset = b_offset_parameter(hidden_size, b_offset_init, name="b_offset_init", generator=generator)
            self._register("omega", omega, learn_omega)
            self._register("b_offset", b_offset, learn_b_offset)

    def _register(self, name: str, value: torch.Tensor, learnable: bool) -> None:
        if learnable:
            setattr(self, name, nn.Parameter(value))
        else:
            self.register_buffer(name, value)

    @property
    def state_names(self) -> Tuple[str, ...]:
        return STATE_NAMES[self.neuron]

    def init_state(self, batch_size: int, *, dtype=None, device=None) -> tuple:
        """Zero state ``(z, u, v[, q])`` or ``(z, u, a)`` for a batch."""
        weight = self.linear.weight
        zeros = torch.zeros(batch_size, self.hidden_size, dtype=dtype or weight.dtype,
                            device=device or weight.device)
        return STATE_TYPES[self.neuron](*(zeros.clone() for _ in self.state_names))

    def fused_spec(self, tensors: tuple):
        """The :class:`brf_plugins.kernels.CellSpec` of this layer if the fused kernels run for ``tensors`` (the
        step's current and state) under :attr:`backend`, else ``None`` (plain core step)."""
        if self.backend == "reference":
            return None
        if self.neuron == "alif":
            if self.backend == "fused":
                raise ValueError("backend='fused' has no ALIF kernel; use backend='auto' or 'reference'.")
            return None
        from . import kernels
        option = {"rf": self.rf_reset, "bhrf": self.bhrf_variant}.get(self.neuron, "")
        ablation = self.ablation if self.neuron == "brf" else {}
        spec = kernels.cell_spec(self.neuron, self.dt, self.theta, self.gamma, self.spike_fn, option=option,
                                 **ablation)
        chosen = kernels.select_backend(self.backend, spec, tuple(tensors) + (self.omega, self.b_offset),
                                        allow_triton=False)
        return spec if chosen == "fused" else None

    def neuron_step(self, current: torch.Tensor, state: tuple) -> tuple:
        """The neuron update alone, given this step's input current. Returns ``(z, *state)``."""
        spec = self.fused_spec((current,) + tuple(state[1:]))
        if spec is not None:
            from .kernels import fused_step
            u, v = state[1], state[2]
            q = state[3] if spec.has_q else None
            return STATE_TYPES[self.neuron](*fused_step(spec, current, u, v, q, self.omega, self.b_offset))
        if self.neuron == "brf":
            _, u, v, q = state
            return (F.brf_step(current, u, v, q, self.omega, self.b_offset, self.dt, self.theta, self.gamma,
                                    self.spike_fn, **self.ablation, validate=False))
        if self.neuron == "rf":
            _, u, v = state
            return (F.rf_step(current, u, v, self.omega, self.b_offset, self.dt, self.theta, self.spike_fn,
                                   reset=self.rf_reset, validate=False))
        if self.neuron == "bhrf":
            _, u, v, q = state
            return (F.bhrf_step(current, u, v, q, self.omega, self.b_offset, self.dt, self.theta, self.gamma,
                                     self.spike_fn, variant=self.bhrf_variant, validate=False))
        z, u, a = state
        return (F.alif_step(current, z, u, a, self.tau_mem, self.tau_adp, self.theta, self.alif_beta,
                                 spike_fn=self.spike_fn, validate=False))

    def forward(self, x: torch.Tensor, state: Optional[tuple] = None) -> tuple:
        """One step: ``x`` is ``(B, m)``; returns the new state, whose first entry is the spike tensor.

        Raises:
            TypeError: ``x`` is not a real floating-point tensor or not of the parameters' dtype; a state
                tensor has another dtype.
            ValueError: ``x`` is not ``(B, input_size)``, has an empty batch, is on another device or contains
                NaN/inf; ``state`` has the wrong number of tensors (another neuron kind) or shapes.
        """
        self.check_input(x, ndim=2)
        return self.step(x, self.check_state(state, x.shape[0], x))

    def check_input(self, x: torch.Tensor, ndim: int, name: str = "x") -> torch.Tensor:
        """Validate an input of ``ndim`` dimensions (time/batch first, features last) once per call."""
        check_input(name, x, width=self.input_size, ndim=ndim)
        check_nonempty(name, x, -2, "batch")
        check_like_module(name, x, self.linear.weight)
        return check_finite_tensor(name, x)

    def check_state(self, state: Optional[tuple], batch_size: int, x: torch.Tensor, name: str = "state") -> tuple:
        """The given state checked against this layer and batch, or the zero state if ``None``."""
        if state is None:
            return self.init_state(batch_size, dtype=x.dtype, device=x.device)
        reference = x.new_empty(batch_size, self.hidden_size)
        expected = STATE_TYPES[self.neuron]
        if hasattr(state, "_fields") and type(state) is not expected:
            raise ValueError(f"`{name}` is a {type(state).__name__} ({', '.join(state._fields)}) but this "
                             f"{self.neuron!r} layer needs a {expected.__name__}: it comes from another neuron kind. "
                             f"Pass None to start from zeros.")
        state = check_state_tuple(name, state, self.state_names, reference)
        for n, s in zip(self.state_names, state):
            check_finite_tensor(f"{name}.{n}", s)
        return state

    def step(self, x: torch.Tensor, state: tuple) -> tuple:
        """:meth:`forward` without the argument checks, for loops that checked once."""
        inputs = torch.cat((x, state[0]), dim=1) if self.recurrent else x
        return self.neuron_step(self.linear(inputs), state)

    def extra_repr(self) -> str:
        extras = [f"neuron={self.neuron!r}", f"dt={self.dt}", f"theta={self.theta}"]
        if self.neuron == "rf":
            extras.append(f"rf_reset={self.rf_reset!r}")
        if self.neuron == "bhrf":
            extras.append(f"bhrf_variant={self.bhrf_variant!r}")
        if self.neuron == "alif" and self.alif_beta != F.ALIF_BETA:
            extras.append(f"alif_beta={self.alif_beta}")
        if self.backend != "auto":
            extras.append(f"backend={self.backend!r}")
        if self.neuron == "brf" and not all(self.ablation.values()):
            extras.append(", ".join(f"{k}={v}" for k, v in self.ablation.items()))
        return ", ".join(extras)


class LIReadout(nn.Module):
    r"""Leaky-integrator readout :math:`o_t = \alpha o_{t-1} + (1-\alpha) W z_t`, :math:`\alpha = e^{-1/|\tau|}`.

    ``tau_init`` is ``(mean, std)`` of the normal initialisation (in steps), as in the paper.
    """

    def __init__(self, input_size: int, output_size: int, tau_init: Tuple[float, float] = (20.0, 5.0),
                 bias: bool = False, learn_tau: bool = True, generator: Optional[torch.Generator] = None):
        super().__init__()
        self.input_size = check_positive_int("input_size", input_size)
        self.output_size = check_positive_int("output_size", output_size)
        self.linear = nn.Linear(input_size, output_size, bias=bias)
        xavier_uniform_(self.linear.weight, generator=generator)
        if bias:
            nn.init.zeros_(self.linear.bias)
        tau = normal_parameter("tau_init", output_size, *tau_init, generator=generator)
        if learn_tau:
            self.tau_mem = nn.Parameter(tau)
        else:
            self.register_buffer("tau_mem", tau)

    def forward(self, z: torch.Tensor, o: Optional[torch.Tensor] = None) -> torch.Tensor:
        """One step from spikes ``z`` ``(B, input_size)`` and the previous potential ``o`` ``(B, output_size)``.

        Raises:
            TypeError: ``z`` not a real floating tensor of the parameters' dtype, ``o`` of another dtype.
            ValueError: wrong shapes, empty batch, another device, NaN/inf in ``z`` or ``o``.
        """
        check_input("z", z, width=self.input_size, ndim=2)
        check_nonempty("z", z, 0, "batch")
        check_like_module("z", z, self.linear.weight)
        check_finite_tensor("z", z)
        if o is not None:
            check_state("o", o, z.new_empty(z.shape[0], self.output_size))
            check_finite_tensor("o", o)
        return self.step(z, o)

    def step(self, z: torch.Tensor, o: Optional[torch.Tensor] = None) -> torch.Tensor:
        """:meth:`forward` without the argument checks, for loops that checked once."""
        current = self.linear(z)
        if o is None:
            o = torch.zeros_like(current)
        return F.li_step(current, o, self.tau_mem, validate=False)


class RecurrentSNN(nn.Module):
    """The paper's network: one recurrent spiking layer and an LI readout, over time-first sequences.

    Args:
        input_size, hidden_size, output_size: m, h, C.
        neuron: ``"brf"``, ``"rf"``, ``"bhrf"`` or ``"alif"``.
        tau_out_init: ``(mean, std)`` of the readout time constants.
        **layer_kwargs: passed to :class:`RecurrentLayer` (omega/b' init, dt, ablations, ...).

    Use :meth:`from_task` for a task's published configuration.

    ``forward(x)`` takes ``(T, B, m)`` and returns :class:`SNNOutput` with the readout of every step; which
    steps enter the loss and the accuracy is the task's rule (:mod:`brf_plugins.metrics`).

    ``forward(x, spike_hook=fn)`` calls ``z = fn(t, z)`` on the hidden spikes of every step ``t`` right after the
    neuron update; what it returns is what the recurrence (next step), the readout, the spike count and
    ``hidden_spikes`` see. The neuron's own refractory state ``q_t`` was already updated with the original spike.
    This is how the robustness studies delete spikes (spec 1.8, ``z <- z * 1[rand > p]``):

    >>> net = RecurrentSNN(4, 36, 6, omega_init=(3.0, 5.0))
    >>> out = net(torch.rand(50, 2, 4), spike_hook=lambda t, z: torch.zeros_like(z))
    >>> float(out.spike_count), bool(out.readout.eq(0).all())
    (0.0, True)
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int, neuron: str = "brf", *,
                 tau_out_init: Tuple[float, float] = (20.0, 5.0), generator: Optional[torch.Generator] = None,
                 **layer_kwargs):
        super().__init__()
        self.hidden = RecurrentLayer(input_size, hidden_size, neuron, generator=generator, **layer_kwargs)
        self.out = LIReadout(hidden_size, output_size, tau_init=tau_out_init, generator=generator)

    @classmethod
    def from_task(cls, task, neuron: str = "brf", generator: Optional[torch.Generator] = None,
                  **overrides) -> "RecurrentSNN":
        """The network and initialisation the paper used for ``task`` (a name or :class:`TaskConfig`)."""
        from .tasks import get_task
        cfg = get_task(task) if isinstance(task, str) else task
        kwargs = cfg.init_kwargs(neuron)
        kwargs.update(overrides)
        return cls(cfg.input_size, cfg.hidden_size, cfg.output_size, neuron, generator=generator, **kwargs)

    @property
    def neuron(self) -> str:
        return self.hidden.neuron

    def check_forward_args(self, x: torch.Tensor, state: Optional[tuple], spike_hook=None) -> tuple:
        """Validate the arguments of :meth:`forward` once; returns ``(hidden_state, o)`` (zeros if ``state`` is None).

        Raises:
            TypeError: ``x`` is not a real floating tensor with the parameters' dtype; ``state`` is not a pair
                ``(hidden_state, o)`` or a state tensor has another dtype; ``spike_hook`` is not callable.
            ValueError: ``x`` is not ``(T, B, input_size)``, has T = 0 or B = 0, lies on another device than the
                parameters, or contains NaN/inf; ``state`` has the wrong number of tensors (another neuron kind),
                shapes (another batch size or layer size), device, or contains NaN/inf.
        """
        self.hidden.check_input(x, ndim=3)
        check_nonempty("x", x, 0, "time")
        check_callable("spike_hook", spike_hook)
        if state is None:
            return self.hidden.init_state(x.shape[1], dtype=x.dtype, device=x.device), None
        if not isinstance(state, (tuple, list)) or len(state) != 2:
            raise TypeError("`state` must be the pair (hidden_state, readout_state) of SNNOutput.state, got "
                            f"{type(state).__name__}{f' of length {len(state)}' if isinstance(state, (tuple, list)) else ''}.")
        hidden_state = self.hidden.check_state(state[0], x.shape[1], x, name="state[0]")
        o = state[1]
        if o is not None:
            check_state("state[1] (readout o)", o, x.new_empty(x.shape[1], self.out.output_size))
            check_finite_tensor("state[1] (readout o)", o)
        return hidden_state, o

    def forward(self, x: torch.Tensor, state: Optional[tuple] = None, record: bool = False,
                spike_hook: Optional[Callable[[int, torch.Tensor], torch.Tensor]] = None) -> SNNOutput:
        """Run the network over ``x`` ``(T, B, input_size)``; ``state`` continues a previous call's ``out.state``.

        The arguments are checked once per call (:meth:`check_forward_args` lists the exceptions); the time loop
        runs unchecked.
        """
        hidden_state, o = self.check_forward_args(x, state, spike_hook)
        spec = self.hidden.fused_spec((x,) + tuple(hidden_state))
        if spec is not None and spike_hook is None:
            return self._fused_forward(spec, x, hidden_state, o, record)
        step = self.hidden.step if spec is None else self._fused_step(spec)
        readouts, spikes = [], []
        spike_count = x.new_zeros(())
        for t, x_t in enumerate(x):
            hidden_state = step(x_t, hidden_state)
            if spike_hook is not None:
                hidden_state = _replace_spikes(hidden_state, spike_hook(t, hidden_state[0]))
            z = hidden_state[0]
            spike_count = spike_count + z.sum()
            o = self.out.step(z, o)
            readouts.append(o)
            if record:
                spikes.append(z)
        return SNNOutput(torch.stack(readouts), spike_count, torch.stack(spikes) if record else None,
                         (hidden_state, o))

    def _fused_step(self, spec):
        """:meth:`RecurrentLayer.step` with the fused neuron step and its per-neuron terms computed once."""
        from .kernels import CellStep, neuron_params
        layer = self.hidden
        pa, pb = neuron_params(spec, layer.omega, layer.b_offset)
        state_type = STATE_TYPES[layer.neuron]

        def step(x_t, state):
            inputs = torch.cat((x_t, state[0]), dim=1) if layer.recurrent else x_t
            u, v = state[1], state[2]
            q = state[3] if spec.has_q else None
            return state_type(*CellStep.apply(spec, layer.linear(inputs), u, v, q, pa, pb))

        return step

    def _fused_forward(self, spec, x: torch.Tensor, hidden_state: tuple, o, record: bool) -> SNNOutput:
        """The whole sequence as one autograd node for the hidden layer and one for the LI readout (the same
        values as the step loop; the readout's matmul runs once over all steps)."""
        from .kernels import li_sequence, recurrent_sequence
        layer = self.hidden
        z_all, hidden_state = recurrent_sequence(spec, x, layer.linear.weight, hidden_state, layer.omega,
                                                 layer.b_offset, layer.recurrent)
        readout = li_sequence(self.out.linear(z_all), o, self.out.tau_mem)
        return SNNOutput(readout, z_all.sum(), z_all if record else None,
                         (STATE_TYPES[layer.neuron](*hidden_state), readout[-1]))
