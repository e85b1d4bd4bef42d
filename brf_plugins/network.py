r"""The paper's recurrent network, once (spec sections 1.0, 1.6 and 1.8).

* :class:`PaperNetwork`: the network's one implementation (input checks, the execution plan, the step loop or
  the whole-sequence kernels, the spike hook, the authors' state-dict keys), parameterised by its neuron. Its
  subclasses only hold modules: :class:`RecurrentSNN` the core's, ``snntorch_ext.PaperNetwork`` snnTorch
  neurons, ``norse_ext.PaperNetwork`` Norse cells; each says where its weights are and how its framework's users
  see the state.
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

from typing import Callable, Dict, NamedTuple, Optional, Tuple, Union

import torch
from torch import nn
from torch.nn import functional as nnf

from . import functional as F
from ._checks import (check_callable, check_choice, check_finite_float, check_finite_tensor, check_input,
                      check_like_module, check_nonempty, check_neuron_input, check_positive_int, check_state,
                      check_state_tuple)
from .init import Init, b_offset_parameter, check_brf_damping, normal_parameter, omega_parameter, xavier_uniform_
from .kernels import RECURRENT_BACKENDS, Plan, li_sequence, neuron_params, plan, recurrent_sequence
from .kernels._autograd import CellStep
from .neurons import KINDS, NeuronConfig, neuron_step, reference_step, scaled, zero_state
from .tasks import TaskConfig, get_task

__all__ = ["NEURONS", "STATE_NAMES", "IGNORED_KEYS", "PaperNetwork", "RecurrentLayer", "LIReadout",
           "RecurrentSNN", "SNNOutput", "paper_network_args"]

NEURONS = tuple(KINDS)
STATE_NAMES = {name: kind.state._fields for name, kind in KINDS.items()}
"""The hidden state of each neuron kind, in the order :meth:`RecurrentLayer.forward` takes and returns it.
``z`` (the previous spikes) comes first: the recurrence and ALIF's adaptation read it."""
IGNORED_KEYS = ("hidden.linear.mask",)
"""Keys of the authors' files that hold nothing (an all-ones mask)."""


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


def _check_hidden_state(cfg: NeuronConfig, state, reference: torch.Tensor, name: str) -> tuple:
    """A hidden state of ``cfg``'s kind (any NamedTuple with its field names, or a plain tuple), checked."""
    if hasattr(state, "_fields") and tuple(state._fields) != cfg.state_names:
        raise ValueError(f"`{name}` is a {type(state).__name__} ({', '.join(state._fields)}) but this "
                         f"{cfg.kind!r} layer needs ({', '.join(cfg.state_names)}): it comes from another neuron "
                         f"kind. Pass None to start from zeros.")
    state = check_state_tuple(name, state, cfg.state_names, reference)
    for n, s in zip(cfg.state_names, state):
        check_finite_tensor(f"{name}.{n}", s)
    return cfg.state_type(*state)


class PaperNetwork(nn.Module):
    r"""The paper's network: :math:`z_t, s_t = \mathrm{neuron}(g\,W[x_t; z_{t-1}], s_{t-1})`, then the LI readout
    :math:`o_t = \alpha o_{t-1} + (1-\alpha)(W_{out} z_t + b)`, over time-first input ``(T, B, m)``.

    This class is the network's one implementation; a subclass holds the modules and tells where things are:
    :meth:`neuron_config` and :meth:`neuron_parameters` (the hidden neurons), :meth:`recurrent_weight`
    (``(h, m + h)``: input columns first), :meth:`readout_parameters`, and :data:`AUTHORS_KEYS` (the authors'
    state-dict keys and its own). :meth:`pack_state`/:meth:`unpack_state` translate the final state into the
    framework's types.

    ``forward(x, state=None, record=False, spike_hook=None)`` returns :class:`SNNOutput`. The arguments are
    checked once; then :func:`brf_plugins.kernels.plan` picks the path: the whole sequence as one autograd node
    for the hidden layer and one for the readout (fused or compiled kernels), or the step loop (reference
    updates, another spike function, a ``spike_hook``). All paths give the same spikes.

    ``spike_hook(t, z) -> z`` edits the hidden spikes of every step right after the neuron update; what it returns
    is what the recurrence (next step), the readout, the spike count, ``hidden_spikes`` and ALIF's adaptation see.
    The refractory variable ``q_t`` was already updated with the original spike. This is how the robustness
    studies delete spikes (spec 1.8, ``z <- z * 1[rand > p]``).
    """

    AUTHORS_KEYS: Dict[str, Union[str, Tuple[str, str]]] = {}
    """The authors' keys and this network's; a pair of keys splits the ``(h, m + h)`` matrix into its input and
    recurrent columns."""

    input_size: int
    hidden_size: int
    output_size: int

    # -- what a subclass provides -------------------------------------------------------------------------
    def neuron_config(self) -> NeuronConfig:
        raise NotImplementedError

    def neuron_parameters(self) -> tuple:
        """The hidden neurons' per-neuron tensors (``omega, b_offset`` or ``tau_mem, tau_adp``)."""
        raise NotImplementedError

    def recurrent_weight(self) -> torch.Tensor:
        raise NotImplementedError

    def readout_parameters(self) -> Tuple[torch.Tensor, Optional[torch.Tensor], torch.Tensor]:
        """``(weight (C, h), bias or None, tau_mem (C,))`` of the LI readout."""
        raise NotImplementedError

    def pack_state(self, hidden: tuple, o: torch.Tensor):
        """The final state as this framework returns it (default: ``(hidden, o)``)."""
        return hidden, o

    def unpack_state(self, state) -> Tuple[Optional[tuple], Optional[torch.Tensor]]:
        """``(hidden_state or None, readout potential or None)`` from a state given to :meth:`forward`."""
        if not isinstance(state, (tuple, list)) or len(state) != 2:
            raise TypeError("`state` must be the pair (hidden_state, readout_state) of SNNOutput.state, got "
                            f"{type(state).__name__}"
                            f"{f' of length {len(state)}' if isinstance(state, (tuple, list)) else ''}.")
        return state[0], state[1]

    backend = "auto"
    recurrent = True

    def _set_sizes(self, input_size: int, hidden_size: int, output_size: int, neuron: str) -> None:
        """Check and keep m, h, C and the neuron kind's name (for subclasses' constructors)."""
        self.input_size = check_positive_int("input_size", input_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.output_size = check_positive_int("output_size", output_size)
        check_choice("neuron", neuron, NEURONS)

    # -- the network ---------------------------------------------------------------------------------------
    @property
    def neuron(self) -> str:
        return self.neuron_config().kind

    @property
    def state_names(self) -> Tuple[str, ...]:
        """Names of the hidden state, in the order of ``SNNOutput.state[0]``."""
        return STATE_NAMES[self.neuron]

    def init_state(self, batch_size: int, *, dtype=None, device=None) -> tuple:
        """Zero ``(hidden_state, readout_state)`` for a batch, in this framework's types."""
        weight = self.recurrent_weight()
        like = weight.new_zeros((), dtype=dtype or weight.dtype, device=device or weight.device)
        hidden = zero_state(self.neuron_config(), like, (batch_size, self.hidden_size))
        return self.pack_state(hidden, like.new_zeros(batch_size, self.output_size))

    def check_forward_args(self, x: torch.Tensor, state=None, spike_hook=None) -> Tuple[tuple, Optional[torch.Tensor]]:
        """Validate the arguments of :meth:`forward` once; returns ``(hidden_state, o)`` (zeros/None if no state).

        Raises:
            TypeError: ``x`` is not a real floating tensor with the parameters' dtype; ``state`` is not a pair
                ``(hidden_state, o)`` or a state tensor has another dtype; ``spike_hook`` is not callable.
            ValueError: ``x`` is not ``(T, B, input_size)``, has T = 0 or B = 0, lies on another device than the
                parameters, or contains NaN/inf; ``state`` has the wrong number of tensors (another neuron kind),
                shapes (another batch size or layer size), device, or contains NaN/inf.
        """
        return self._checked_args(x, state, spike_hook)[1:]

    def _checked_args(self, x: torch.Tensor, state, spike_hook) -> Tuple[torch.Tensor, tuple, Optional[torch.Tensor]]:
        """:meth:`check_forward_args` returning the input too (cast up under autocast: the dtype policy of
        :func:`brf_plugins._checks.check_neuron_input`)."""
        check_input("x", x, width=self.input_size, ndim=3)
        check_nonempty("x", x, 1, "batch")
        x = check_neuron_input(type(self).__name__, "x", x, self.recurrent_weight())
        check_nonempty("x", x, 0, "time")
        check_callable("spike_hook", spike_hook)
        cfg = self.neuron_config()
        reference = x.new_empty(x.shape[1], self.hidden_size)
        hidden, o = (None, None) if state is None else self.unpack_state(state)
        hidden = zero_state(cfg, reference) if hidden is None else _check_hidden_state(cfg, hidden, reference,
                                                                                       "state[0]")
        if o is not None:
            check_state("state[1] (readout o)", o, x.new_empty(x.shape[1], self.output_size))
            check_finite_tensor("state[1] (readout o)", o)
        return x, hidden, o

    def execution_plan(self, x: torch.Tensor, spike_hook=None) -> Plan:
        """The path :meth:`forward` takes for input ``x`` (a :class:`brf_plugins.kernels.Plan` with the reason a
        faster one does not apply)."""
        cfg = self.neuron_config()
        tensors = (x, self.recurrent_weight()) + tuple(self.neuron_parameters())
        whole = plan(cfg, tensors, scope="recurrent", backend=self.backend)
        if spike_hook is not None:
            step = plan(cfg, tensors, scope="step", backend="auto" if self.backend == "compiled" else self.backend)
            return step._replace(reason="a spike_hook edits every step")
        return whole

    def forward(self, x: torch.Tensor, state=None, record: bool = False,
                spike_hook: Optional[Callable[[int, torch.Tensor], torch.Tensor]] = None) -> SNNOutput:
        """Run the network over ``x`` ``(T, B, input_size)``; ``state`` continues a previous call's ``out.state``.
        (:meth:`check_forward_args` lists the exceptions.)"""
        x, hidden, o = self._checked_args(x, state, spike_hook)
        cfg, params = self.neuron_config(), tuple(self.neuron_parameters())
        weight = self.recurrent_weight()
        w_out, b_out, tau = self.readout_parameters()
        chosen = self.execution_plan(x, spike_hook)
        if chosen.path != "reference" and spike_hook is None:
            z_all, final = recurrent_sequence(chosen, x, weight, hidden, *params, self.recurrent)
            readout = li_sequence(nnf.linear(z_all, w_out, b_out), o, tau, compiled=chosen.path == "compiled")
            return SNNOutput(readout, z_all.sum(), z_all if record else None,
                             self.pack_state(cfg.state_type(*final), readout[-1]))
        step = self._step_function(cfg, params, chosen)
        readouts, spikes = [], []
        spike_count = x.new_zeros(())
        for t, x_t in enumerate(x):
            inputs = torch.cat((x_t, hidden[0]), dim=1) if self.recurrent else x_t
            hidden = step(nnf.linear(inputs, weight), hidden)
            if spike_hook is not None:
                hidden = hidden._replace(z=spike_hook(t, hidden.z))
            z = hidden.z
            spike_count = spike_count + z.sum()
            current = nnf.linear(z, w_out, b_out)
            o = F.li_step(current, torch.zeros_like(current) if o is None else o, tau, validate=False)
            readouts.append(o)
            if record:
                spikes.append(z)
        return SNNOutput(torch.stack(readouts), spike_count, torch.stack(spikes) if record else None,
                         self.pack_state(hidden, o))

    @staticmethod
    def _step_function(cfg: NeuronConfig, params: tuple, chosen: Plan):
        """``step(current, state) -> state`` on the plan's path, with the fused kernels' per-neuron terms
        computed once per sequence."""
        if chosen.path == "reference":
            return lambda current, state: cfg.state_type(*reference_step(cfg, params, scaled(cfg, current), state))
        spec = chosen.spec
        pa, pb = neuron_params(spec, *params)

        def step(current, state):
            q = state[3] if spec.has_q else None
            return cfg.state_type(*CellStep.apply(spec, current, state[1], state[2], q, pa, pb))

        return step

    # -- the authors' state dicts ----------------------------------------------------------------------------
    def _authors_keys(self) -> Dict[str, Tuple[str, ...]]:
        own = self.state_dict(keep_vars=True)
        keys = {k: (v,) if isinstance(v, str) else tuple(v) for k, v in self.AUTHORS_KEYS.items()}
        return {k: v for k, v in keys.items() if all(o in own for o in v)}

    def authors_state_dict(self) -> Dict[str, torch.Tensor]:
        """This network's parameters under the authors' keys (``hidden.linear.weight`` ``(h, m + h)``,
        ``hidden.omega``, ..., ``out.linear.weight``, ``out.tau_mem``), loadable by :class:`RecurrentSNN`."""
        own = self.state_dict()
        return {key: torch.cat([own[o] for o in ours], 1).detach().clone() if len(ours) > 1
                else own[ours[0]].detach().clone() for key, ours in self._authors_keys().items()}

    def load_authors_state_dict(self, state: Dict[str, torch.Tensor], strict: bool = True) -> "PaperNetwork":
        """Load a state dict under the authors' (= the core's) keys; ``hidden.linear.mask`` (all ones) is
        ignored. With ``strict`` every key of this network must be given and none left over.

        Raises:
            KeyError: ``strict`` and keys missing or unexpected (both listed).
            ValueError: ``hidden.linear.weight`` of another shape than ``(h, m + h)``.
        """
        keys = self._authors_keys()
        given = set(state) - set(IGNORED_KEYS)
        missing, unexpected = sorted(set(keys) - given), sorted(given - set(keys))
        if strict and (missing or unexpected):
            raise KeyError(f"the state dict does not fit this {self.neuron!r} network: missing {missing}, "
                           f"unexpected {unexpected}.")
        mapped = {}
        for key, ours in keys.items():
            if key not in state:
                continue
            value = state[key]
            if len(ours) > 1:
                want = (self.hidden_size, self.input_size + self.hidden_size)
                if tuple(value.shape) != want:
                    raise ValueError(f"`{key}` has shape {tuple(value.shape)}, this network needs {want}.")
                value = value[:, :self.input_size], value[:, self.input_size:]
            mapped.update(zip(ours, value if len(ours) > 1 else (value,)))
        self.load_state_dict(mapped, strict=False)
        return self

    def extra_repr(self) -> str:
        return (f"input_size={self.input_size}, hidden_size={self.hidden_size}, output_size={self.output_size}, "
                f"neuron={self.neuron!r}")


def paper_network_args(task_or_sizes, neuron: str, kwargs: dict) -> Tuple[Tuple[int, int, int], dict]:
    """``((m, h, C), options)`` for a builder's ``task_or_sizes`` (a task name, a :class:`TaskConfig` with its
    published initialisation for ``neuron``, or sizes), ``kwargs`` overriding."""
    check_choice("neuron", neuron, NEURONS)
    if isinstance(task_or_sizes, (str, TaskConfig)):
        cfg = get_task(task_or_sizes) if isinstance(task_or_sizes, str) else task_or_sizes
        sizes, options = (cfg.input_size, cfg.hidden_size, cfg.output_size), dict(cfg.init_kwargs(neuron))
    else:
        try:
            sizes = tuple(task_or_sizes)
        except TypeError:
            raise TypeError(f"`task_or_sizes` must be a task name, a TaskConfig or (input_size, hidden_size, "
                            f"output_size), got {type(task_or_sizes).__name__}.") from None
        if len(sizes) != 3:
            raise ValueError(f"`task_or_sizes` as sizes must be (input_size, hidden_size, output_size), got "
                             f"{task_or_sizes!r}.")
        options = {}
    options.update(kwargs)
    return sizes, options


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
        input_gain: factor on the current before the update (1.0, the spec verbatim).
        learn_omega, learn_b_offset: train the resonator parameters (default True).
        recurrent: feed back the previous spikes (default True; False gives ``Linear(m -> h)``).
        backend: one of :data:`brf_plugins.kernels.RECURRENT_BACKENDS`; ``"auto"`` (default) lets
            :func:`brf_plugins.kernels.plan` choose (same spikes, gradients equal up to float rounding), a named one
            insists on it (``ValueError`` if it cannot run), ``"reference"`` is the plain core loop. Settable after
            construction (``layer.backend = "reference"``).
    """

    def __init__(self, input_size: int, hidden_size: int, neuron: str = "brf", *,
                 omega_init: Init = (5.0, 10.0), b_offset_init: Init = (0.0, 1.0),
                 tau_mem_init: Tuple[float, float] = (20.0, 5.0), tau_adp_init: Tuple[float, float] = (200.0, 50.0),
                 dt: float = F.DEFAULT_DT, theta: Optional[float] = None, gamma: float = F.DEFAULT_GAMMA,
                 spike_fn=None, rf_reset: str = "none", bhrf_variant: str = "code",
                 divergence_boundary: bool = True, refractory: bool = True, smooth_reset: bool = True,
                 learn_omega: bool = True, learn_b_offset: bool = True, recurrent: bool = True,
                 alif_beta: float = F.ALIF_BETA, input_gain: float = 1.0, backend: str = "auto",
                 generator: Optional[torch.Generator] = None):
        super().__init__()
        self.input_size = check_positive_int("input_size", input_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        # Checked under the layer's own argument names first, so errors name what the caller typed.
        check_choice("neuron", neuron, NEURONS)
        check_choice("rf_reset", rf_reset, F.RF_RESETS)
        check_choice("bhrf_variant", bhrf_variant, F.BHRF_VARIANTS)
        check_finite_float("alif_beta", alif_beta, nonnegative=True)
        self.config = NeuronConfig(neuron, dt=dt, theta=theta if theta is None else check_finite_float("theta", theta),
                                   gamma=gamma, spike_fn=spike_fn, input_gain=input_gain, reset=rf_reset,
                                   variant=bhrf_variant, beta=alif_beta, divergence_boundary=divergence_boundary,
                                   refractory=refractory, smooth_reset=smooth_reset)
        self.recurrent = bool(recurrent)
        self.backend = check_choice("backend", backend, RECURRENT_BACKENDS)

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
            if neuron == "brf":
                check_brf_damping(omega, b_offset, self.dt, name="b_offset_init")
            self._register("omega", omega, learn_omega)
            self._register("b_offset", b_offset, learn_b_offset)

    # The configuration's fields under the layer's historical names (read-only views).
    neuron = property(lambda self: self.config.kind)
    dt = property(lambda self: self.config.dt)
    theta = property(lambda self: self.config.theta)
    gamma = property(lambda self: self.config.gamma)
    spike_fn = property(lambda self: self.config.spike_fn)
    alif_beta = property(lambda self: self.config.beta)
    rf_reset = property(lambda self: self.config.reset)
    bhrf_variant = property(lambda self: self.config.variant)
    ablation = property(lambda self: self.config.ablation)

    def _register(self, name: str, value: torch.Tensor, learnable: bool) -> None:
        if learnable:
            setattr(self, name, nn.Parameter(value))
        else:
            self.register_buffer(name, value)

    @property
    def state_names(self) -> Tuple[str, ...]:
        return STATE_NAMES[self.neuron]

    def parameters_of_neurons(self) -> tuple:
        return tuple(getattr(self, name) for name in self.config.param_names)

    def init_state(self, batch_size: int, *, dtype=None, device=None) -> tuple:
        """Zero state ``(z, u, v[, q])`` or ``(z, u, a)`` for a batch."""
        weight = self.linear.weight
        like = weight.new_zeros((), dtype=dtype or weight.dtype, device=device or weight.device)
        return zero_state(self.config, like, (batch_size, self.hidden_size))

    def forward(self, x: torch.Tensor, state: Optional[tuple] = None) -> tuple:
        """One step: ``x`` is ``(B, m)``; returns the new state, whose first entry is the spike tensor.

        Raises:
            TypeError: ``x`` is not a real floating-point tensor or not of the parameters' dtype; a state
                tensor has another dtype.
            ValueError: ``x`` is not ``(B, input_size)``, has an empty batch, is on another device or contains
                NaN/inf; ``state`` has the wrong number of tensors (another neuron kind) or shapes.
        """
        check_input("x", x, width=self.input_size, ndim=2)
        check_nonempty("x", x, 0, "batch")
        x = check_neuron_input(type(self).__name__, "x", x, self.linear.weight)
        reference = x.new_empty(x.shape[0], self.hidden_size)
        state = zero_state(self.config, reference) if state is None else \
            _check_hidden_state(self.config, state, reference, "state")
        return self.step(x, state)

    def step(self, x: torch.Tensor, state: tuple) -> tuple:
        """:meth:`forward` without the argument checks, for loops that checked once."""
        inputs = torch.cat((x, state[0]), dim=1) if self.recurrent else x
        return neuron_step(self.config, self.parameters_of_neurons(), self.linear(inputs), state,
                           backend="auto" if self.backend == "compiled" else self.backend)

    def extra_repr(self) -> str:
        extras = [f"neuron={self.neuron!r}", f"dt={self.dt}", f"theta={self.theta}"]
        if self.neuron == "rf":
            extras.append(f"rf_reset={self.config.reset!r}")
        if self.neuron == "bhrf":
            extras.append(f"bhrf_variant={self.config.variant!r}")
        if self.neuron == "alif" and self.alif_beta != F.ALIF_BETA:
            extras.append(f"alif_beta={self.alif_beta}")
        if self.config.input_gain != 1.0:
            extras.append(f"input_gain={self.config.input_gain:g}")
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


class RecurrentSNN(PaperNetwork):
    """The paper's network from the core's modules: ``hidden`` (:class:`RecurrentLayer`) and ``out``
    (:class:`LIReadout`); its state-dict keys are the authors'.

    Args:
        input_size, hidden_size, output_size: m, h, C.
        neuron: ``"brf"``, ``"rf"``, ``"bhrf"`` or ``"alif"``.
        tau_out_init: ``(mean, std)`` of the readout time constants.
        **layer_kwargs: passed to :class:`RecurrentLayer` (omega/b' init, dt, ablations, backend, ...).

    Use :meth:`from_task` for a task's published configuration. ``forward`` is :meth:`PaperNetwork.forward`:

    >>> net = RecurrentSNN(4, 36, 6, omega_init=(3.0, 5.0))
    >>> out = net(torch.rand(50, 2, 4), spike_hook=lambda t, z: torch.zeros_like(z))
    >>> float(out.spike_count), bool(out.readout.eq(0).all())
    (0.0, True)
    """

    AUTHORS_KEYS = {key: key for key in ("hidden.linear.weight", "hidden.omega", "hidden.b_offset", "hidden.tau_mem",
                                         "hidden.tau_adp", "out.linear.weight", "out.linear.bias", "out.tau_mem")}

    def __init__(self, input_size: int, hidden_size: int, output_size: int, neuron: str = "brf", *,
                 tau_out_init: Tuple[float, float] = (20.0, 5.0), generator: Optional[torch.Generator] = None,
                 **layer_kwargs):
        super().__init__()
        self._set_sizes(input_size, hidden_size, output_size, neuron)
        self.hidden = RecurrentLayer(input_size, hidden_size, neuron, generator=generator, **layer_kwargs)
        self.out = LIReadout(hidden_size, output_size, tau_init=tau_out_init, generator=generator)

    @classmethod
    def from_task(cls, task, neuron: str = "brf", generator: Optional[torch.Generator] = None,
                  **overrides) -> "RecurrentSNN":
        """The network and initialisation the paper used for ``task`` (a name or :class:`TaskConfig`)."""
        sizes, options = paper_network_args(task, neuron, overrides)
        return cls(*sizes, neuron, generator=generator, **options)

    def neuron_config(self) -> NeuronConfig:
        return self.hidden.config

    def neuron_parameters(self) -> tuple:
        return self.hidden.parameters_of_neurons()

    def recurrent_weight(self) -> torch.Tensor:
        return self.hidden.linear.weight

    def readout_parameters(self):
        return self.out.linear.weight, self.out.linear.bias, self.out.tau_mem

    backend = property(lambda self: self.hidden.backend)
    recurrent = property(lambda self: self.hidden.recurrent)

    def extra_repr(self) -> str:
        return ""
