"""snnTorch's state conventions (``snntorch/_neurons/leaky.py``, ``rleaky.py``) around the core update, for every
neuron of :mod:`snntorch_ext`.

* States are non-persistent buffers, empty until the first step and re-zeroed when they do not fit the input.
* Three calling styles, chosen by what is passed: all states (``spk, u, v, q = brf(cur, u, v, q)``, as
  ``snn.Synaptic``), packed in the neuron's ``State`` NamedTuple (``spk, state = brf(cur, state)``), or the
  membrane only (``spk, mem = brf(cur, mem)``, as ``snn.Leaky``: ``mem`` is ``u``, the rest stays in the module;
  recurrent neurons ``spk, mem = rbrf(cur, spk, mem)``). An empty state (what ``reset_mem()`` / ``init_leaky()``
  return) or an all-zero ``mem`` the neuron did not return starts afresh.
* ``init_hidden=True``: the state stays inside (passing one is a ``TypeError``); the neuron returns the spikes, or
  ``(spk, mem)`` with ``output=True``, so :mod:`snntorch.backprop` works unchanged.
* The size may be omitted (``BRF()``): the first input gives it (PyTorch's lazy modules; the Parameter objects an
  optimiser holds stay the same). ``per_channel=True``: dimension 1 indexes the neurons (conv feature maps).
* One deliberate difference: a passed state that does not fit the input raises, where snnTorch replaces it by
  zeros.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

import torch
from torch import nn
from snntorch import SpikingNeuron

from brf_plugins._checks import (check_bool, check_finite_float, check_neuron_input, check_positive_int, check_state,
                                 check_threshold)
from brf_plugins.init import constant_tensor, materialize_per_neuron, parameter_values, register_per_neuron
from brf_plugins.neurons import neuron_step, sequence

from .surrogate import double_gaussian

__all__ = ["StatefulNeuron", "SNNTORCH_ONLY_ARGS", "reject_unsupported"]

SNNTORCH_ONLY_ARGS: Dict[str, str] = {
    "beta": "{cls} has no leak factor `beta`: a resonator's membrane decays through its damping, set per neuron by "
            "`b_offset` (a larger |b'| decays faster) together with its frequency `omega`. Pass b_offset=(low, high) (and omega=(low, high)) instead of beta.",
    "learn_beta": "{cls} has no `learn_beta` (it has no leak factor beta): its decay `b_offset` and frequency "
                  "`omega` are trained by default; switch them with learn_b_offset=... / learn_omega=....",
    "inhibition": "{cls} does not implement snnTorch's `inhibition` (only the most active neuron may fire); leave "
                  "it out.",
    "state_quant": "{cls} does not implement `state_quant`: the resonator state must stay in float32/float64 "
                   "(its phase drifts in lower precision). Quantise the weights instead.",
    "reset_delay": "{cls} has no `reset_delay`: its reset is built into the dynamics (the refractory variable q, "
                   "or RF's reset_mechanism), applied on the step of the spike.",
    "conv2d_channels": "{cls}'s recurrence is dense over the neurons (all_to_all=True) or one-to-one "
                       "(all_to_all=False, V); a convolutional recurrence is not implemented. For conv feature maps "
                       "use per_channel=True (dense over channels at each position, or one-to-one).",
    "kernel_size": "{cls}'s recurrence is dense over the neurons (all_to_all=True) or one-to-one (all_to_all=False, "
                   "V); a convolutional recurrence (kernel_size) is not implemented.",
}
"""snnTorch's constructor arguments that mean nothing for the neurons of :mod:`snntorch_ext`, and what to use
instead (formatted with the public class name; subclasses override entries through ``snntorch_hints``)."""


def _buffer_hooks() -> bool:
    """Whether a global buffer registration hook is installed (``torch.nn.modules.module``'s registry)."""
    return bool(getattr(nn.modules.module, "_global_buffer_registration_hooks", None))


def reject_unsupported(owner: type, kwargs: dict) -> None:
    """Raise ``TypeError`` for keyword arguments ``owner`` does not take: snnTorch's names with what to use
    instead, anything else as Python's own message, both naming the public class."""
    if not kwargs:
        return
    name = next(iter(kwargs))
    hints = {**SNNTORCH_ONLY_ARGS, **getattr(owner, "snntorch_hints", {})}
    if name in hints:
        raise TypeError(f"{owner.__name__}() does not take `{name}` (an snnTorch argument): "
                        + hints[name].format(cls=owner.__name__))
    raise TypeError(f"{owner.__name__}() got an unexpected keyword argument {name!r}.")


def check_size(owner: type, num_neurons, *inits) -> Optional[int]:
    """The layer size: a positive int, or ``None`` (inferred from a 1-D tensor among ``inits``, else from the first
    input). A float in first position is most likely snn.Leaky's ``beta`` passed positionally: say so."""
    if num_neurons is None:
        for init in inits:
            if isinstance(init, torch.Tensor) and init.dim() == 1 and init.numel() > 1:
                return init.numel()
        return None
    if isinstance(num_neurons, float) or (isinstance(num_neurons, torch.Tensor) and num_neurons.is_floating_point()):
        value = float(num_neurons) if not isinstance(num_neurons, torch.Tensor) or num_neurons.numel() == 1 else None
        hint = ""
        if value is not None and 0.0 <= value <= 1.0:
            hint = (" If that was snn.Leaky's beta: " + {**SNNTORCH_ONLY_ARGS, **getattr(owner, "snntorch_hints", {})}
                    ["beta"].format(cls=owner.__name__))
        raise TypeError(f"`num_neurons` must be a positive int: {owner.__name__}'s first argument is the layer size "
                        f"(omit it to infer it from the first input), got {num_neurons!r}.{hint}")
    return check_positive_int("num_neurons", num_neurons)


class StatefulNeuron(SpikingNeuron):
    """Base of the neurons of :mod:`snntorch_ext` (module docstring). Subclasses set ``state_names``,
    ``reset_choices`` and :meth:`neuron_config` / :meth:`neuron_parameters`, the core neuron they adapt."""

    state_names: Tuple[str, ...] = ()
    mem_style: Tuple[str, ...] = ()
    """The leading states that make up the snnTorch-style call (``("u",)`` for ``spk, mem = brf(cur, mem)``,
    ``("spk", "u")`` for ``spk, mem = rbrf(cur, spk, mem)``)."""
    State: type = tuple
    """The NamedTuple of the packed state (``spk, state = neuron(cur, state)``)."""
    reset_choices: Tuple[str, ...] = ("subtract", "zero", "none")
    reset_help: str = ""

    snntorch_hints: Dict[str, str] = {}
    """Per-class overrides of :data:`SNNTORCH_ONLY_ARGS` (the messages for snnTorch's arguments and attributes)."""

    def __init__(self, num_neurons: Optional[int] = None, *, threshold=1.0, spike_grad=None,
                 surrogate_disable: bool = False, init_hidden: bool = False, output: bool = False,
                 reset_mechanism: str = "none", learn_threshold: bool = False, graded_spikes_factor=1.0,
                 learn_graded_spikes_factor: bool = False, input_gain: float = 1.0, per_channel: bool = False):
        num_neurons = check_size(type(self), num_neurons, threshold)
        for flag, value in (("surrogate_disable", surrogate_disable), ("init_hidden", init_hidden),
                            ("output", output), ("learn_threshold", learn_threshold),
                            ("learn_graded_spikes_factor", learn_graded_spikes_factor), ("per_channel", per_channel)):
            check_bool(flag, value)
        if spike_grad is None:
            spike_grad = double_gaussian()
        elif not callable(spike_grad):
            raise TypeError(f"`spike_grad` must be a callable spike function such as snntorch.surrogate.atan() or "
                            f"snntorch_ext.surrogate.double_gaussian(), got {type(spike_grad).__name__}.")
        if not isinstance(reset_mechanism, str):
            raise TypeError(f"`reset_mechanism` must be a string, got {type(reset_mechanism).__name__}.")
        check_threshold("threshold", threshold)
        threshold = constant_tensor("threshold", threshold, num_neurons or 1, learnable=learn_threshold)
        graded_spikes_factor = constant_tensor("graded_spikes_factor", graded_spikes_factor, num_neurons or 1,
                                               learnable=learn_graded_spikes_factor)
        super().__init__(threshold=threshold, spike_grad=spike_grad, surrogate_disable=surrogate_disable,
                         init_hidden=init_hidden, inhibition=False, learn_threshold=learn_threshold,
                         reset_mechanism=reset_mechanism, state_quant=False, output=output,
                         graded_spikes_factor=graded_spikes_factor,
                         learn_graded_spikes_factor=learn_graded_spikes_factor)
        self.num_neurons = num_neurons
        self.per_channel = per_channel
        self.input_gain = check_finite_float("input_gain", input_gain, positive=True)
        self._lazy: Dict[str, Callable[[int], torch.Tensor]] = {}
        for name in self.state_names:
            self.register_buffer(name, torch.zeros(0), persistent=False)

    # -- reset mechanism: SpikingNeuron calls this from __init__ and from the reset_mechanism setter.
    def _reset_cases(self, reset_mechanism):
        if reset_mechanism not in self.reset_choices:
            choices = ", ".join(repr(c) for c in self.reset_choices)
            raise ValueError(f"`reset_mechanism` of {type(self).__name__} must be one of {choices}; got "
                             f"{reset_mechanism!r}. {self.reset_help}".rstrip())

    def _register(self, name: str, init, learnable: bool, *, generator=None, dt: float = None) -> None:
        """A per-neuron tensor from its init spec (:func:`brf_plugins.init.parameter_values`, in the default dtype),
        drawn once the size is known (lazy: an uninitialised Parameter/buffer until the first input)."""
        check_bool(f"learn_{name}", learnable)
        make = lambda n: parameter_values(name, n, init, dt=dt, generator=generator,  # noqa: E731
                                          dtype=torch.get_default_dtype())
        if self.num_neurons is None:
            self._lazy[name] = make
        register_per_neuron(self, name, None if self.num_neurons is None else make(self.num_neurons), learnable)

    # -- lazy size ---------------------------------------------------------------------------------------------
    @property
    def is_lazy(self) -> bool:
        """True until the size is known (``num_neurons`` omitted and no input seen yet)."""
        return self.num_neurons is None

    def _neuron_dim(self, sequence: bool = False) -> int:
        """The input dimension that indexes the neurons: the last one, or the channels (``per_channel``)."""
        return (2 if sequence else 1) if self.per_channel else -1

    def materialize(self, num_neurons: int) -> None:
        """Draw the per-neuron parameters for ``num_neurons`` (the first call does it when the size was omitted),
        as a module built with that size would."""
        num_neurons = check_positive_int("num_neurons", num_neurons)
        if self.num_neurons is not None:
            if num_neurons != self.num_neurons:
                raise ValueError(f"{type(self).__name__} already has {self.num_neurons} neurons, not {num_neurons}.")
            return
        self.num_neurons = num_neurons
        materialize_per_neuron(self, {name: make(num_neurons) for name, make in self._lazy.items()}, (num_neurons,))
        self._lazy = {}
        self._after_materialize()

    def _after_materialize(self) -> None:
        """Checks and modules that need the size (BRF's damping limit, the recurrent weights)."""

    def _infer_size(self, input_: torch.Tensor, sequence: bool) -> None:
        if not (self.per_channel or self.is_lazy):
            return   # the usual checks (check_neuron_input) follow
        if not isinstance(input_, torch.Tensor):
            raise TypeError(f"`input_` must be a torch.Tensor, got {type(input_).__name__}.")
        if self.per_channel:
            need, layout = (3, "(T, B, C, ...)") if sequence else (2, "(B, C, ...)")
            if input_.dim() < need:
                raise ValueError(f"`input_` must have at least {need} dimensions {layout} for {type(self).__name__}"
                                 f"(per_channel=True), got shape {tuple(input_.shape)}.")
        elif sequence and input_.dim() != 3:
            raise ValueError(f"`input_` must have 3 dimensions (T, B, num_neurons), got shape {tuple(input_.shape)}.")
        elif input_.dim() == 0:
            raise ValueError("`input_` must have at least one dimension (..., neurons), got a scalar.")
        if self.is_lazy:
            self.materialize(input_.shape[self._neuron_dim(sequence)])

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # A lazy module loads a saved one: the saved tensors give the size (as PyTorch's lazy modules do).
        if self.is_lazy:
            for name in self._lazy:
                if prefix + name in state_dict:
                    self.materialize(state_dict[prefix + name].shape[0])
                    break
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
        # SpikingNeuron stores the reset as a buffer index; keep the string the update reads in sync with it.
        if hasattr(self, "reset_mechanism_val") and (prefix + "reset_mechanism_val") in state_dict:
            name = list(SpikingNeuron.reset_dict)[int(self.reset_mechanism_val)]
            if name in self.reset_choices:
                self._reset_mechanism = name

    # -- snnTorch's attribute names ------------------------------------------------------------------------------
    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            hints = {**SNNTORCH_ONLY_ARGS, **type(self).snntorch_hints}
            if name in hints and not name.startswith("_"):
                raise AttributeError(f"{type(self).__name__} has no attribute `{name}` (an snnTorch name): "
                                     + hints[name].format(cls=type(self).__name__)) from None
            raise

    # -- the core neuron this module adapts ------------------------------------------------------------------
    def neuron_config(self):
        """The :class:`brf_plugins.neurons.NeuronConfig` of this neuron, from its current attributes."""
        raise NotImplementedError

    config_attributes: Tuple[str, ...] = ("dt", "gamma", "input_gain", "spike_grad", "surrogate_disable",
                                          "_reset_mechanism", "variant", "adaptation", "ablation", "per_channel")
    """The plain attributes :meth:`neuron_config` (and :meth:`_graded`) may read; with the threshold and the graded
    spikes factor (by identity and version) they key :meth:`_step_config`'s cache. A subclass whose
    configuration reads another attribute adds it here."""

    def _step_config(self):
        """``(neuron_config(), multiply)``, cached while the threshold and graded spikes factor (identity,
        ``_version``, ``requires_grad``) and :attr:`config_attributes` are unchanged: building a config checks every
        constant (~35 us per step otherwise). ``multiply`` is False where the factor is a constant 1."""
        if torch.compiler.is_compiling():   # traced once: no cache to consult (nor tensor versions to read)
            return self.neuron_config(), True
        theta, graded = self.threshold, self.graded_spikes_factor
        d = self.__dict__
        attributes = tuple(tuple(v.items()) if isinstance(v, dict) else v
                           for v in (d.get(n) for n in self.config_attributes))
        cached = d.get("_config_cache")
        if (cached is not None and cached[0] is theta and cached[1] == theta._version
                and cached[2] == theta.requires_grad and cached[3] is graded and cached[4] == graded._version
                and cached[5] == graded.requires_grad and cached[6] == attributes):
            return cached[7], cached[8]
        cfg = self.neuron_config()
        multiply = (graded.requires_grad or graded.is_meta or graded.dtype != self._reference_tensor().dtype
                    or not bool(graded.eq(1).all()))
        d["_config_cache"] = (theta, theta._version, theta.requires_grad, graded, graded._version,
                              graded.requires_grad, attributes, cfg, multiply)
        return cfg, multiply

    def neuron_parameters(self) -> tuple:
        raise NotImplementedError

    def _theta(self):
        """The threshold for the core: a float when it is a fixed scalar (what the fused kernels take), else the
        tensor (learnable or per neuron)."""
        theta = self.threshold
        if theta.numel() == 1 and not theta.requires_grad:
            return float(theta)
        return theta

    def _spike_fn(self):
        return self._surrogate_bypass if self.surrogate_disable else self.spike_grad

    def _current(self, input_: torch.Tensor, states: tuple) -> torch.Tensor:
        """The current of the core update (recurrent neurons add their recurrence)."""
        return input_

    def _core_state(self, states: tuple) -> tuple:
        """This module's states as the core's ``(z, ...)``: feed-forward resonators do not keep ``z``."""
        return tuple(states) if self.state_names[0] == "spk" else (None, *states)

    def _module_states(self, core_state: tuple, spk: torch.Tensor) -> tuple:
        return (spk, *core_state[1:]) if self.state_names[0] == "spk" else tuple(core_state[1:])

    # -- the state protocol ---------------------------------------------------------------------------------

    def _reference_tensor(self) -> torch.Tensor:
        """A per-neuron parameter: its dtype and device are what the input must have."""
        return self.neuron_parameters()[0]

    def _begin(self, input_: torch.Tensor, given: tuple, *, sequence: bool = False, style: str = "full") -> tuple:
        """``(input_, states)``: the checked input (:func:`brf_plugins._checks.check_neuron_input`) and the states
        to start from (given ones, checked, else the stored ones, else zeros); a lazy neuron's size is fixed here."""
        self._infer_size(input_, sequence)
        d = self._neuron_dim(sequence)
        if self.per_channel:
            if input_.shape[d] != self.num_neurons:
                raise ValueError(f"`input_` has {input_.shape[d]} channels (dimension {d}, shape "
                                 f"{tuple(input_.shape)}) but {type(self).__name__} has num_neurons = "
                                 f"{self.num_neurons} (per_channel=True).")
            input_ = check_neuron_input(type(self).__name__, "input_", input_.movedim(d, -1),
                                        self._reference_tensor()).movedim(-1, d)
        else:
            input_ = check_neuron_input(type(self).__name__, "input_", input_, self._reference_tensor(),
                                        width=self.num_neurons, width_name="num_neurons",
                                        ndim=3 if sequence else None)
        if sequence and input_.shape[0] == 0:
            raise ValueError("`input_` has no time steps (shape (0, B, num_neurons)); sequences need T >= 1.")
        reference = input_[0] if sequence else input_
        # An empty state (what reset_mem()/init_*() return) means a fresh start: states kept in the module from an
        # earlier sample must not leak into it.
        fresh = any(s is not None and s.numel() == 0 for s in given)
        if self.init_hidden and any(s is not None for s in given):
            raise TypeError(f"{', '.join(f'`{n}`' for n in self.state_names)} should not be passed as arguments "
                            f"while `init_hidden=True`: the neuron keeps its state itself (clear it with "
                            f"snntorch.utils.reset(net) or .reset_mem()).")
        # spk, mem = neuron(cur, mem) with a mem the neuron did not return (user code's torch.zeros at the start of
        # a sample): all zeros means a fresh start of the states kept inside, as init_leaky() gives.
        zeros_start = None
        buffers = self._buffers   # the states' buffers (read directly: nn.Module's attribute lookup is slower)
        if style == "mem" and not fresh:
            k = len(self.mem_style)
            mem = given[k - 1]
            if mem is not buffers.get(self.mem_style[-1]):
                zeros_start = ~mem.ne(0).any()   # a 0-dim tensor: no host synchronisation
        states = []
        for name, state in zip(self.state_names, given):
            if state is not None and state.numel() > 0:
                states.append(check_state(name, state, reference))
                continue
            stored = buffers.get(name)
            if stored is None:
                stored = getattr(self, name)
            if (state is not None or fresh or stored.shape != reference.shape or stored.dtype != reference.dtype
                    or stored.device != reference.device):
                stored = torch.zeros_like(reference)
            elif zeros_start is not None:
                stored = torch.where(zeros_start, torch.zeros_like(stored), stored)
            states.append(stored)
        return input_, tuple(states)

    def _calling_style(self, given: tuple) -> Tuple[tuple, str]:
        """How ``forward`` was called: ``"packed"`` (one tuple of all states), ``"mem"`` (exactly the states of
        ``mem_style``, as ``spk, mem = leaky(cur, mem)``) or ``"full"`` (any other combination)."""
        first = given[0] if given else None
        if isinstance(first, (tuple, list)):
            names = ", ".join(self.state_names)
            if any(g is not None for g in given[1:]):
                raise TypeError(f"Pass the state of {type(self).__name__} either packed as one tuple ({names}) or "
                                f"as separate tensors, not both.")
            if len(first) != len(self.state_names):
                raise ValueError(f"The packed state of {type(self).__name__} must hold {len(self.state_names)} "
                                 f"tensors ({names}), got {len(first)}. Get a fresh one from .reset_mem().")
            return tuple(first), "packed"
        k = len(self.mem_style)
        if k and all(g is not None for g in given[:k]) and all(g is None for g in given[k:]) \
                and self.state_names[:k] == self.mem_style:
            return given, "mem"
        return given, "full"

    def _finish(self, spk: torch.Tensor, states: tuple, *, sequence: bool = False, style: str = "full"):
        """Store the new states and return what ``forward`` returns in the calling style (module docstring; the
        spikes once when they are the first state, as in ``snn.RLeaky``)."""
        self._store_states(states)
        if self.init_hidden:
            return (spk, states[self.state_names.index(self.mem_style[-1])]) if self.output else spk
        if style == "packed":
            return spk, self.State(*states)
        if style == "mem":
            states = states[:len(self.mem_style)]
        if self.state_names[0] == "spk" and not sequence:
            return tuple(states)
        return (spk, *states)

    def _store_states(self, states: tuple) -> None:
        """Keep the new states in their buffers: ``_buffers`` directly (``setattr`` costs ~25 us per state and
        step), unless a global buffer registration hook is installed or ``torch.compile`` traces."""
        buffers = self._buffers
        if _buffer_hooks() or torch.compiler.is_compiling():
            for name, state in zip(self.state_names, states):
                setattr(self, name, state)
            return
        for name, state in zip(self.state_names, states):
            if state is None or not isinstance(state, torch.Tensor) or name not in buffers:
                setattr(self, name, state)     # nn.Module's checks and messages
            else:
                buffers[name] = state

    def _graded(self, z: torch.Tensor, multiply: bool = True) -> torch.Tensor:
        """The spikes times the graded spikes factor (``multiply=False``: a constant 1)."""
        return z * self.graded_spikes_factor if multiply else z

    def _to_core(self, t: Optional[torch.Tensor], d: int) -> Optional[torch.Tensor]:
        """The core's layout (neurons last): a view with the channel dimension moved last (``per_channel``)."""
        return t.movedim(d, -1) if (self.per_channel and t is not None) else t

    def _to_user(self, t: Optional[torch.Tensor], d: int) -> Optional[torch.Tensor]:
        return t.movedim(-1, d) if (self.per_channel and t is not None) else t

    def _advance(self, input_: torch.Tensor, states: tuple):
        """One core update (:func:`brf_plugins.neurons.neuron_step`): ``(spikes, new_states)``."""
        cfg, multiply = self._step_config()
        params = self.neuron_parameters()
        if self.per_channel:
            states = tuple(self._to_core(s, 1) for s in states)
            input_ = self._to_core(input_, 1)
        new = neuron_step(cfg, params, self._current(input_, states), self._core_state(states))
        spk = self._graded(new[0], multiply)
        new = self._module_states(new, spk)
        if self.per_channel:
            return self._to_user(spk, 1), tuple(self._to_user(s, 1) for s in new)
        return spk, new

    def forward(self, input_: torch.Tensor, *states, **named):
        """One step of ``input_`` ``(batch, num_neurons)`` from the states in :attr:`state_names` order (by position
        or name) or one packed ``State``; returns the spikes, then the states as they were passed."""
        return self._forward(input_, self._given(states, named))

    def forward_sequence(self, input_: torch.Tensor, *states, **named):
        """:meth:`forward` over a time-first ``(T, batch, num_neurons)`` input, in one
        :func:`brf_plugins.neurons.sequence` call for feed-forward neurons; returns the spikes ``(T, batch,
        num_neurons)``, then the final state."""
        return self._core_sequence(input_, self._given(states, named))

    def _given(self, states: tuple, named: dict) -> tuple:
        names = self.state_names
        if len(states) > len(names):
            raise TypeError(f"{type(self).__name__} takes the current and at most {len(names)} states "
                            f"({', '.join(names)}), got {len(states)} states.")
        given = list(states) + [None] * (len(names) - len(states))
        for key, value in named.items():
            if key not in names:
                raise TypeError(f"{type(self).__name__}.forward() got an unexpected keyword argument {key!r}; its "
                                f"states are {', '.join(names)}.")
            if given[names.index(key)] is not None:
                raise TypeError(f"{type(self).__name__}.forward() got state {key!r} twice.")
            given[names.index(key)] = value
        return tuple(given)

    def _forward(self, input_: torch.Tensor, given: tuple):
        given, style = self._calling_style(given)
        input_, states = self._begin(input_, given, style=style)
        spk, states = self._advance(input_, states)
        return self._finish(spk, states, style=style)

    def _core_sequence(self, input_: torch.Tensor, given: tuple):
        """A whole feed-forward sequence through :func:`brf_plugins.neurons.sequence` (one fast-path call)."""
        given, style = self._calling_style(given)
        input_, states = self._begin(input_, given, sequence=True, style=style)
        cfg, multiply = self._step_config()   # the core takes the channels last (per_channel)
        states = self._core_state(tuple(self._to_core(s, 1) for s in states))
        z_all, new = sequence(cfg, self.neuron_parameters(), self._to_core(input_, 2), states)
        spikes = self._graded(z_all, multiply)
        new = self._module_states(new, spikes[-1])
        return self._finish(self._to_user(spikes, 2), tuple(self._to_user(s, 1) for s in new), sequence=True,
                            style=style)

    def _forward_sequence(self, input_: torch.Tensor, given: tuple):
        """Step through a time-first ``(T, B, num_neurons)`` input (neurons without a core sequence)."""
        given, style = self._calling_style(given)
        input_, states = self._begin(input_, given, sequence=True, style=style)
        spikes = []
        for x in input_:
            spk, states = self._advance(x, states)
            spikes.append(spk)
        return self._finish(torch.stack(spikes), states, sequence=True, style=style)

    def reset_mem(self) -> tuple:
        """Clear the state (the next step starts from zeros); returns the empty states as a ``State``, to unpack
        (``u, v, q = brf.reset_mem()``) or pass back, as snnTorch's ``init_*()`` results."""
        for name in self.state_names:
            old = getattr(self, name)
            setattr(self, name, torch.zeros(0, dtype=old.dtype, device=old.device))
        return self.State(*(getattr(self, name) for name in self.state_names))

    def init_leaky(self):
        """``snn.Leaky``'s helper: clear the state and return the (empty) membrane for
        ``spk, mem = neuron(cur, mem)`` (recurrent neurons: ``spk, mem`` for ``neuron(cur, spk, mem)``)."""
        states = self.reset_mem()
        mem = tuple(states[:len(self.mem_style)])
        return mem[0] if len(mem) == 1 else mem

    init_rleaky = init_leaky

    @staticmethod
    def _surrogate_bypass(input_):
        # snnTorch's bypass returns float32 whatever the input; keep the dtype (float64 runs stay float64).
        return (input_ > 0).to(input_.dtype)

    def detach_states(self) -> None:
        """Detach the stored states from the autograd graph (truncated BPTT), keeping their values."""
        for name in self.state_names:
            state = self._buffers.get(name)   # absent in an instance whose constructor raised (still in instances)
            if state is not None:
                self._buffers[name] = state.detach()

    @property
    def states(self) -> tuple:
        """The stored states, in ``state_names`` order."""
        return tuple(getattr(self, name) for name in self.state_names)

    @classmethod
    def reset_hidden(cls) -> None:
        """Clear the state of every instance of this class (snnTorch's classmethod over ``instances``)."""
        for neuron in cls.instances:
            if isinstance(neuron, cls) and all(n in neuron._buffers for n in neuron.state_names):
                neuron.reset_mem()

    @classmethod
    def detach_hidden(cls) -> None:
        """Detach the state of every instance of this class from the graph (snnTorch's classmethod)."""
        for neuron in cls.instances:
            if isinstance(neuron, cls):
                neuron.detach_states()

    def extra_repr(self) -> str:
        parts = [str(self.num_neurons) if self.num_neurons is not None else "num_neurons=<inferred on first call>"]
        if self.per_channel:
            parts.append("per_channel=True")
        if self.input_gain != 1.0:
            parts.append(f"input_gain={self.input_gain:g}")
        if self.init_hidden:
            parts.append("init_hidden=True")
        if self.output:
            parts.append("output=True")
        return ", ".join(parts)

