"""State handling shared by every neuron of :mod:`snntorch_ext`, following snnTorch 1.0's own neurons.

snnTorch's conventions (``snntorch/_neurons/leaky.py``, ``synaptic.py``, ``rleaky.py``), kept here:

* each hidden state is a buffer registered **non-persistent** (not in ``state_dict``), empty until the first step
  and lazily re-zeroed when it does not fit the input;
* states can be passed explicitly and are returned after the spikes. Three calling styles, chosen by what is passed
  (each neuron's docstring lists its states):

  - all states, as ``spk, syn, mem = synaptic(cur, syn, mem)``: ``spk, u, v, q = brf(cur, u, v, q)``;
  - packed, one tuple (the neuron's ``State`` NamedTuple, e.g. :class:`~snntorch_ext.BRFFeedForwardState`):
    ``spk, state = brf(cur, state)``;
  - membrane only, as ``spk, mem = leaky(cur, mem)``: ``spk, mem = brf(cur, mem)`` where ``mem`` is the real
    membrane ``u`` (the part compared with the threshold) and the rest of the state (``v``, ``q``) stays inside
    the module, exactly as ``snn.Leaky`` keeps ``self.mem``. ``mem = brf.init_leaky()`` starts a fresh sample.
    Recurrent neurons follow ``snn.RLeaky``: ``spk, mem = rbrf(cur, spk, mem)``;

  passing states with ``init_hidden=True`` is a ``TypeError``;
* with ``init_hidden=True`` the neuron returns the spikes only, unless ``output=True``;
* ``reset_mem()`` clears the state, ``reset_hidden()`` / ``detach_hidden()`` are classmethods over
  ``SpikingNeuron.instances``.

One deliberate difference: an explicitly passed state that does not fit the input (another batch size, layer,
dtype or device) raises with a message naming the state, where snnTorch silently replaces it by zeros. A state with
no elements, which is what ``reset_mem()`` returns, still means "start from zeros" for any batch size.
"""

from __future__ import annotations

from typing import Tuple

import torch
from torch import nn
from snntorch import SpikingNeuron

from brf_plugins._checks import (check_bool, check_finite_float, check_neuron_input, check_positive_int, check_state,
                                 check_threshold)
from brf_plugins.init import constant_tensor
from brf_plugins.neurons import neuron_step, sequence

from .surrogate import double_gaussian

__all__ = ["StatefulNeuron"]


class StatefulNeuron(SpikingNeuron):
    """Base of the neurons of :mod:`snntorch_ext`: snnTorch's state conventions around a core update.

    Subclasses set ``state_names`` (the order of the explicit states in ``forward`` and in the returned tuple),
    ``reset_choices`` (accepted ``reset_mechanism`` values) and :meth:`neuron_config` / :meth:`neuron_parameters`,
    the core neuron they adapt; every update is :func:`brf_plugins.neurons.neuron_step` of it.
    """

    state_names: Tuple[str, ...] = ()
    mem_style: Tuple[str, ...] = ()
    """The leading states that make up the snnTorch-style call (``("u",)`` for ``spk, mem = brf(cur, mem)``,
    ``("spk", "u")`` for ``spk, mem = rbrf(cur, spk, mem)``)."""
    State: type = tuple
    """The NamedTuple of the packed state (``spk, state = neuron(cur, state)``)."""
    reset_choices: Tuple[str, ...] = ("subtract", "zero", "none")
    reset_help: str = ""

    def __init__(self, num_neurons: int, *, threshold=1.0, spike_grad=None, surrogate_disable: bool = False,
                 init_hidden: bool = False, output: bool = False, reset_mechanism: str = "none",
                 learn_threshold: bool = False, graded_spikes_factor=1.0, learn_graded_spikes_factor: bool = False,
                 input_gain: float = 1.0):
        num_neurons = check_positive_int("num_neurons", num_neurons)
        for flag, value in (("surrogate_disable", surrogate_disable), ("init_hidden", init_hidden),
                            ("output", output), ("learn_threshold", learn_threshold),
                            ("learn_graded_spikes_factor", learn_graded_spikes_factor)):
            check_bool(flag, value)
        if spike_grad is None:
            spike_grad = double_gaussian()
        elif not callable(spike_grad):
            raise TypeError(f"`spike_grad` must be a callable spike function such as snntorch.surrogate.atan() or "
                            f"snntorch_ext.surrogate.double_gaussian(), got {type(spike_grad).__name__}.")
        if not isinstance(reset_mechanism, str):
            raise TypeError(f"`reset_mechanism` must be a string, got {type(reset_mechanism).__name__}.")
        check_threshold("threshold", threshold)
        threshold = constant_tensor("threshold", threshold, num_neurons, learnable=learn_threshold)
        graded_spikes_factor = constant_tensor("graded_spikes_factor", graded_spikes_factor, num_neurons,
                                               learnable=learn_graded_spikes_factor)
        super().__init__(threshold=threshold, spike_grad=spike_grad, surrogate_disable=surrogate_disable,
                         init_hidden=init_hidden, inhibition=False, learn_threshold=learn_threshold,
                         reset_mechanism=reset_mechanism, state_quant=False, output=output,
                         graded_spikes_factor=graded_spikes_factor,
                         learn_graded_spikes_factor=learn_graded_spikes_factor)
        self.num_neurons = num_neurons
        self.input_gain = check_finite_float("input_gain", input_gain, positive=True)
        for name in self.state_names:
            self.register_buffer(name, torch.zeros(0), persistent=False)

    # -- reset mechanism: SpikingNeuron calls this from __init__ and from the reset_mechanism setter.
    def _reset_cases(self, reset_mechanism):
        if reset_mechanism not in self.reset_choices:
            choices = ", ".join(repr(c) for c in self.reset_choices)
            raise ValueError(f"`reset_mechanism` of {type(self).__name__} must be one of {choices}; got "
                             f"{reset_mechanism!r}. {self.reset_help}".rstrip())

    def _register(self, name: str, value: torch.Tensor, learnable: bool) -> None:
        check_bool(f"learn_{name}", learnable)
        if learnable:
            setattr(self, name, nn.Parameter(value))
        else:
            self.register_buffer(name, value)

    # -- the core neuron this module adapts ------------------------------------------------------------------
    def neuron_config(self):
        """The :class:`brf_plugins.neurons.NeuronConfig` of this neuron, from its current attributes."""
        raise NotImplementedError

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

    def _begin(self, input_: torch.Tensor, given: tuple, *, sequence: bool = False) -> tuple:
        """Check the input (the package's dtype policy, :func:`brf_plugins._checks.check_neuron_input`) and return
        ``(input_, states)``: the input (cast up under autocast) and the states to start from: given ones
        (checked), else the stored ones, else zeros."""
        input_ = check_neuron_input(type(self).__name__, "input_", input_, self._reference_tensor(),
                                    width=self.num_neurons, width_name="num_neurons", ndim=3 if sequence else None)
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
        states = []
        for name, state in zip(self.state_names, given):
            if state is not None and state.numel() > 0:
                states.append(check_state(name, state, reference))
                continue
            stored = getattr(self, name)
            if (state is not None or fresh or stored.shape != reference.shape or stored.dtype != reference.dtype
                    or stored.device != reference.device):
                stored = torch.zeros_like(reference)
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
        """Store the new states and return what ``forward`` returns: the spikes, then the states in the calling
        style (the spikes only once when they are themselves the first state, as in ``snn.RLeaky``)."""
        for name, state in zip(self.state_names, states):
            setattr(self, name, state)
        if self.init_hidden and not self.output:
            return spk
        if style == "packed":
            return spk, self.State(*states)
        if style == "mem":
            states = states[:len(self.mem_style)]
        if self.state_names[0] == "spk" and not sequence:
            return tuple(states)
        return (spk, *states)

    def _graded(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.graded_spikes_factor

    def _advance(self, input_: torch.Tensor, states: tuple):
        """One core update (:func:`brf_plugins.neurons.neuron_step`): ``(spikes, new_states)``."""
        new = neuron_step(self.neuron_config(), self.neuron_parameters(), self._current(input_, states),
                          self._core_state(states))
        spk = self._graded(new[0])
        return spk, self._module_states(new, spk)

    def forward(self, input_: torch.Tensor, *states, **named):
        """One step: ``input_`` (the current, ``(batch, num_neurons)``), then the state in :attr:`state_names`
        order (by position or name, any omitted as zeros/the stored state) or packed in one ``State`` tuple.
        Returns the spikes, then the state in the form it was passed (see the class docstring)."""
        return self._forward(input_, self._given(states, named))

    def forward_sequence(self, input_: torch.Tensor, *states, **named):
        """A whole time-first sequence of currents ``(T, batch, num_neurons)``, from the state as in
        :meth:`forward` (without one: the state kept in the module, zeros on the first call and after
        ``reset_mem()``). Feed-forward neurons run one :func:`brf_plugins.neurons.sequence` call (where the fast
        paths plug in); the same results as calling the neuron T times. Returns the spikes of every step
        ``(T, batch, num_neurons)`` then the final state, or the spikes alone with ``init_hidden=True`` and
        ``output=False``."""
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
        input_, states = self._begin(input_, given)
        spk, states = self._advance(input_, states)
        return self._finish(spk, states, style=style)

    def _core_sequence(self, input_: torch.Tensor, given: tuple):
        """A whole feed-forward sequence through :func:`brf_plugins.neurons.sequence` (one fast-path call)."""
        given, style = self._calling_style(given)
        input_, states = self._begin(input_, given, sequence=True)
        z_all, new = sequence(self.neuron_config(), self.neuron_parameters(), input_, self._core_state(states))
        spikes = self._graded(z_all)
        return self._finish(spikes, self._module_states(new, spikes[-1]), sequence=True, style=style)

    def _forward_sequence(self, input_: torch.Tensor, given: tuple):
        """Step through a time-first ``(T, B, num_neurons)`` input; subclasses with a core sequence function
        override this."""
        given, style = self._calling_style(given)
        input_, states = self._begin(input_, given, sequence=True)
        spikes = []
        for x in input_:
            spk, states = self._advance(x, states)
            spikes.append(spk)
        return self._finish(torch.stack(spikes), states, sequence=True, style=style)

    def reset_mem(self) -> tuple:
        """Clear the hidden state; the next step starts from zeros shaped like its input. Returns the cleared
        (empty) states as the packed ``State`` NamedTuple, which unpacks like a tuple (``u, v, q =
        brf.reset_mem()``) and may be passed back (an empty state means zeros), as snnTorch's ``init_*()``
        helpers are used."""
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

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        # SpikingNeuron stores the reset as a buffer index; keep the string the update reads in sync with it.
        if hasattr(self, "reset_mechanism_val") and (prefix + "reset_mechanism_val") in state_dict:
            name = list(SpikingNeuron.reset_dict)[int(self.reset_mechanism_val)]
            if name in self.reset_choices:
                self._reset_mechanism = name

    def detach_states(self) -> None:
        """Detach the stored states from the autograd graph (truncated BPTT), keeping their values."""
        for name in self.state_names:
            setattr(self, name, getattr(self, name).detach())

    @property
    def states(self) -> tuple:
        """The stored states, in ``state_names`` order."""
        return tuple(getattr(self, name) for name in self.state_names)

    @classmethod
    def reset_hidden(cls) -> None:
        """Clear the state of every instance of this class (snnTorch's classmethod over ``instances``)."""
        for neuron in cls.instances:
            if isinstance(neuron, cls):
                neuron.reset_mem()

    @classmethod
    def detach_hidden(cls) -> None:
        """Detach the state of every instance of this class from the graph (snnTorch's classmethod)."""
        for neuron in cls.instances:
            if isinstance(neuron, cls):
                neuron.detach_states()

    def extra_repr(self) -> str:
        parts = [str(self.num_neurons)]
        if self.input_gain != 1.0:
            parts.append(f"input_gain={self.input_gain:g}")
        if self.init_hidden:
            parts.append("init_hidden=True")
        if self.output:
            parts.append("output=True")
        return ", ".join(parts)

